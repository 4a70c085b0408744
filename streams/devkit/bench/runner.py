"""Runs the bench: pre-load a seeded workload into Kafka, then for each pipeline (a subprocess
with its own consumer group and database) measure throughput and latency.

Throughput: the pipeline drains the pre-loaded topics; events/s = (rows - 1) / (last row's
ingested_at - first row's ingested_at), i.e. from its first row committed to its last, so start-up
(reported apart) does not count. ingested_at is clock_timestamp() per row (migration 0002).
Latency: after draining, a paced live stream (event time = publish time) runs for a few seconds;
p50/p95/p99 of ingested_at - event time over those rows.
Peak RSS and CPU seconds come from psutil on the pipeline process.
With `windows_close` (`--windows-close`) the learnstream pipeline runs on windows scaled down with
the workload's event-time spread, and after its last row the bench waits until every window the
workload opened is closed and stored, so its CPU seconds include closing, storing rollups and the
alert engine (docs/bench.md, "Windows closed").
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson

from db.databases import create_migrated_database, drop_database, dsn_for
from db.rollups import window_counts
from db.tables import TABLES
from streams.config import Settings, admin_dsn
from streams.devkit.services import free_port, principal_env
from streams.devkit.synthetic import Generator, Workload
from streams.metrics import scrape, total
from streams.publish import Publisher
from streams.topics import ensure_topics

PIPELINES = {
    "limit": [sys.executable, "-m", "streams.devkit.bench.peers.limit"],
    "learnstream": [sys.executable, "-m", "streams.cli", "worker", "--log-level", "warn"],
    # the same worker with the window stage and alert engine off: what windows + alerts cost
    "ingest-only": [sys.executable, "-m", "streams.cli", "worker", "--log-level", "warn"],
    "naive-faust": [sys.executable, "-m", "streams.devkit.bench.peers.naive_faust", "worker", "-l", "warn"],
    "quix": [sys.executable, "-m", "streams.devkit.bench.peers.quix"],
}
#: bad input the limit pipeline can skip without validating (it stores naive timestamps as UTC)
BENCH_MEMBER_FAULTS = ("schema", "not_an_object", "naive_timestamp")
BENCH_MESSAGE_FAULTS = ("invalid_json", "invalid_utf8")
#: the workload's event times: spread at random over this many seconds before its generation
SPREAD_S = 60.0
#: --windows-close: the default bench's event-time spread and windows (60 s spread, 60 s tumbling,
#: 300 s hopping by 60 s, grace 60 s) scaled down 30 times, so every series has as many windows and
#: panes as there, and the last window closes about idle + 10 s + 2 s after the last event, not 6 min
WINDOWS_CLOSE_SPREAD_S = 2.0
WINDOWS_CLOSE = {"window_tumbling_s": "2", "window_hopping_s": "10", "window_hop_step_s": "2",
                 "window_grace_s": "2", "window_idle_s": "0.5"}
#: --windows-close: seconds the worker's idle CPU is measured for, once every window is stored
IDLE_MEASURE_S = 3.0
#: --windows-close: every window is taken as stored once the rollup rows have not grown for this long
QUIET_S = 6.0


@dataclass
class Result:
    pipeline: str
    shape: str
    events: int
    rows: int
    complete: bool
    seconds: float
    events_per_s: float
    startup_s: float
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0
    ratio_to_limit: float | None = None
    #: learnstream only, from its own metrics: seconds inside COPY + INSERT transactions
    db_write_s: float | None = None
    note: str = ""
    #: learnstream with windows_close (docs/bench.md, "Windows closed"): seconds from the last row
    #: to the last window stored, windows closed (the worker's metric), rows in the rollup tables,
    #: late events set aside, whether the rollups count every stored row in each of its windows
    close_s: float | None = None
    windows_closed: int | None = None
    rollup_rows: int | None = None
    late_events: int | None = None
    rollups_match: bool | None = None
    #: worker CPU seconds at the last row (= cpu_s) and at the last window stored; its idle CPU
    #: seconds per second once all was closed; CPU s to the last window minus idle rate x close_s
    cpu_to_last_window_s: float | None = None
    idle_cpu_per_s: float | None = None
    cpu_closed_s: float | None = None
    #: learnstream, when ingest-only ran on the same shape: (CPU s to the last window stored, idle
    #: subtracted, or cpu_s without windows_close) / ingest-only's CPU s - 1, and 1 - events/s ratio
    window_cpu_cost: float | None = None
    window_rate_cost: float | None = None


@dataclass
class Plan:
    events: int
    shapes: list[str]
    pipelines: list[str]
    mix: dict[str, float]
    seed: int = 42
    invalid_share: float = 0.01
    timeout_s: float = 180.0
    latency_rate: int = 1000
    latency_seconds: float = 5.0
    partitions: int = 8
    out_dir: Path = Path("bench-results")
    profile: bool = False
    #: run the learnstream pipeline until every window the workload opened is closed and stored
    windows_close: bool = False
    #: extra LEARNSTREAM_* settings for the learnstream pipeline (tuning experiments)
    worker_env: dict[str, str] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)


def _say(msg: str) -> None:
    print(msg, flush=True)


def workloads(gen: Generator, events: int, mix: dict[str, float], shape: str,
              invalid_share: float) -> dict[str, Workload]:
    """The bench's workload: `events` in the `mix`, 1,000-event arrays or single-event messages,
    with `invalid_share` bad input of the kinds the limit pipeline can skip; kind -> Workload."""
    array_size = 1000 if shape == "arrays" else 1
    loads = {}
    for kind, share in mix.items():
        n = int(events * share)
        if n:
            loads[kind] = gen.workload(
                kind, n, array_size=array_size, invalid_share=invalid_share, duplicate_share=0,
                member_faults=BENCH_MEMBER_FAULTS, message_faults=BENCH_MESSAGE_FAULTS,
            )
    return loads


async def count_rows(conn: asyncpg.Connection, tables: Iterable[str], since: float | None = None) -> int:
    """Rows stored in `tables`, all together (with `since`: those ingested at or after that epoch second)."""
    total = 0
    for table in tables:
        if since is None:
            total += await conn.fetchval(f"SELECT count(*) FROM {table}")
        else:
            total += await conn.fetchval(f"SELECT count(*) FROM {table} WHERE ingested_at >= to_timestamp($1)", since)
    return total


async def row_span(conn: asyncpg.Connection, tables: Iterable[str]) -> tuple[float | None, float | None]:
    """(first, last) ingested_at over `tables`, as epoch seconds; (None, None) without rows."""
    firsts, lasts = [], []
    for table in tables:
        row = await conn.fetchrow(f"SELECT min(ingested_at) AS a, max(ingested_at) AS b FROM {table}")
        if row["a"]:
            firsts.append(row["a"].timestamp())
            lasts.append(row["b"].timestamp())
    return (min(firsts) if firsts else None, max(lasts) if lasts else None)


class Bench:
    def __init__(self, settings: Settings, plan: Plan) -> None:
        self.s, self.plan = settings, plan
        self.run_id = uuid.uuid4().hex[:8]

    # -- workload ---------------------------------------------------------------------------
    def _generator(self) -> Generator:
        return Generator(seed=self.plan.seed,
                         spread_s=WINDOWS_CLOSE_SPREAD_S if self.plan.windows_close else SPREAD_S)

    def _workloads(self, shape: str, gen: Generator) -> dict[str, Workload]:
        return workloads(gen, self.plan.events, self.plan.mix, shape, self.plan.invalid_share)

    def _topics(self, shape: str, pipeline: str) -> dict[str, str]:
        # each pipeline reads its own copy of the workload: its latency phase cannot leak into
        # another pipeline's topics
        return {k: f"bench.{self.run_id}.{shape}.{pipeline}.{k}" for k in TABLES}

    # -- one pipeline -----------------------------------------------------------------------
    async def _database(self, name: str) -> str:
        """A fresh migrated database, made by the owner (admin_database_url); -> the workers' DSN of it."""
        await drop_database(admin_dsn(self.s), name)
        await create_migrated_database(admin_dsn(self.s), name)
        return dsn_for(self.s.database_url, name)

    async def run_pipeline(self, name: str, shape: str, loads: dict[str, Workload], topics: dict[str, str]) -> Result:
        import psutil

        dbname = f"bench_{self.run_id}_{shape}_{name.replace('-', '_')}"
        dsn = await self._database(dbname)
        expected = {TABLES[k].name: len(w.expected) for k, w in loads.items()}
        want = sum(expected.values())
        events = sum(w.events for w in loads.values())
        state = Path(f"/tmp/learnstream-bench-{self.run_id}-{name}-{shape}")
        ours = name in ("learnstream", "ingest-only")
        metrics_port = free_port() if ours else 0
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNSTREAM_")}
        env.update(
            LEARNSTREAM_KAFKA_BOOTSTRAP=self.s.kafka_bootstrap, LEARNSTREAM_DATABASE_URL=dsn,
            LEARNSTREAM_ADMIN_DATABASE_URL=dsn_for(admin_dsn(self.s), dbname),  # the limit lifts FORCE RLS
            LEARNSTREAM_APP_ID=f"bench-{self.run_id}-{shape}-{name}",
            LEARNSTREAM_LEARNING_TOPIC=topics["learning_event"],
            LEARNSTREAM_PERFORMANCE_TOPIC=topics["performance_sample"],
            LEARNSTREAM_ENGAGEMENT_TOPIC=topics["engagement_update"],
            LEARNSTREAM_CONTENT_TOPIC=f"bench.{self.run_id}.{shape}.{name}.content",
            LEARNSTREAM_ACCOUNTS_TOPIC=f"bench.{self.run_id}.{shape}.{name}.accounts",
            LEARNSTREAM_DLQ_TOPIC=f"bench.{self.run_id}.dlq", LEARNSTREAM_METRICS_PORT=str(metrics_port),
            **{f"LEARNSTREAM_{t.upper()}_TOPIC": f"bench.{self.run_id}.{shape}.{name}.{t}" for t in
               ("window_input", "rollups", "late_events", "alert_notifications", "alert_commands")},
            LEARNSTREAM_TOPIC_PARTITIONS=str(self.plan.partitions),
            LEARNSTREAM_STATE_DIR=str(state), LEARNSTREAM_DATA_DIR=str(state / "data"),
        )
        env.update(principal_env("admin"))  # the bench's pipelines run as the operator (their app ids vary)
        if ours:
            env.update(self.plan.worker_env)
        if name == "learnstream":
            # the workload's event times are spread at random over a minute (2 s with windows_close)
            # and its topics are read partition by partition: a grace period of the spread keeps
            # the replay on time
            if self.plan.windows_close:
                for k, v in WINDOWS_CLOSE.items():
                    env.setdefault(f"LEARNSTREAM_{k.upper()}", v)
            env.setdefault("LEARNSTREAM_WINDOW_GRACE_S", "60")
        if name == "ingest-only":
            env["LEARNSTREAM_WINDOWS_ENABLED"] = "false"
        state.mkdir(parents=True, exist_ok=True)
        log_path = state / "pipeline.log"
        started = time.time()
        proc = subprocess.Popen(PIPELINES[name], env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
        ps = psutil.Process(proc.pid)
        profiler = None
        if self.plan.profile and name == "learnstream":
            from streams.devkit.bench.profile import attach

            prof_path = self.plan.out_dir / f"profile-{self.run_id}-{name}-{shape}.raw"
            self.plan.out_dir.mkdir(parents=True, exist_ok=True)
            profiler = attach(proc.pid, prof_path)
        peak_rss, cpu = 0, 0.0
        conn = await asyncpg.connect(dsn)
        note = ""
        try:
            deadline = time.monotonic() + self.plan.timeout_s
            last_print, rows = 0.0, 0
            while True:
                try:
                    peak_rss = max(peak_rss, ps.memory_info().rss)
                    t = ps.cpu_times()
                    cpu = t.user + t.system
                except psutil.NoSuchProcess:
                    pass
                rows = await count_rows(conn, expected)
                now = time.monotonic()
                if proc.poll() is not None:
                    note = f"exited with {proc.returncode}: see {log_path}"
                    break
                if rows >= want or now > deadline:
                    if rows < want:
                        note = f"timed out after {self.plan.timeout_s:.0f}s"
                    break
                if now - last_print >= 2:
                    last_print = now
                    _say(f"   [{name} {shape}] {rows:,}/{want:,} rows")
                await asyncio.sleep(0.2)
            windows_note = ""
            if metrics_port:
                try:
                    m = scrape(metrics_port)
                    write_s: float | None = total(m, "learnstream_copy_duration_seconds_sum")
                    if name == "learnstream":
                        windows_note = (f"at the last row: windows closed {int(total(m, 'learnstream_windows_closed_total')):,}, "
                                        f"late events {int(total(m, 'learnstream_late_events_total')):,}")
                except OSError:
                    write_s = None
            first, last = await row_span(conn, expected)
            seconds = (last - first) if first and last else 0.0
            rate = (rows - 1) / seconds if seconds > 0 else 0.0
            startup = (first - started) if first else 0.0
            result = Result(name, shape, events, rows, rows >= want, seconds, rate, startup,
                            note=" ".join(x for x in (note, windows_note) if x))
            if metrics_port:
                result.db_write_s = write_s
            if name == "learnstream" and self.plan.windows_close and result.complete and proc.poll() is None:
                await self._windows_closed(result, conn, ps, metrics_port, expected, cpu, last)
            if result.complete and proc.poll() is None:
                await self._latency(result, conn, shape, topics, ps)
                try:
                    peak_rss = max(peak_rss, ps.memory_info().rss)
                except psutil.NoSuchProcess:
                    pass
            result.peak_rss_mb = peak_rss / 2**20
            result.cpu_s = cpu
        finally:
            await conn.close()
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            if profiler is not None:
                profiler.wait(30)
                from streams.devkit.bench.profile import summarize

                _say(f"   profile of {name} ({shape}), raw stacks in {prof_path}:")
                _say("\n".join("      " + line for line in summarize(prof_path).splitlines()))
            await drop_database(admin_dsn(self.s), dbname)
        return result

    async def _windows_closed(self, result: Result, conn: asyncpg.Connection, ps, metrics_port: int,
                              expected: dict[str, int], cpu_at_last_row: float, last_row: float | None) -> None:
        """After the last row: wait until every window the workload opened is closed and stored
        (no open pane, the rollup rows = the windows closed, unchanged for QUIET_S), noting when
        the rollup rows last grew and the worker's CPU then; then its idle CPU rate over
        IDLE_MEASURE_S; then check the rollups against the stored rows."""

        def cpu_now() -> float:
            t = ps.cpu_times()
            return t.user + t.system

        async def rollup_rows() -> int:
            return sum(n for spans in (await window_counts(conn)).values() for n, _ in spans.values())

        deadline = time.monotonic() + self.plan.timeout_s
        # rollups stored by the last row count from it (none, with WINDOWS_CLOSE: they all close after it)
        stored, stored_at, cpu_at = await rollup_rows(), last_row or time.time(), cpu_at_last_row
        closed = panes = late = 0
        while time.monotonic() < deadline:
            cpu = cpu_now()
            rows = await rollup_rows()
            if rows != stored:
                stored, stored_at, cpu_at = rows, time.time(), cpu
            m = await asyncio.to_thread(scrape, metrics_port)
            closed = int(total(m, "learnstream_windows_closed_total"))
            panes = int(total(m, "learnstream_window_open_panes"))
            late = int(total(m, "learnstream_late_events_total"))
            pending = int(total(m, "learnstream_recompute_pending_hour_buckets"))
            # quiet for longer than the open-panes gauge's report interval (5 s) and a hop step
            if closed and panes == 0 and pending == 0 and stored >= closed and time.time() - stored_at >= QUIET_S:
                break
            await asyncio.sleep(0.2)
        else:
            result.note += f" windows: {panes:,} panes still open after {self.plan.timeout_s:.0f}s"
        idle_from = cpu_now()
        await asyncio.sleep(IDLE_MEASURE_S)
        idle_rate = (cpu_now() - idle_from) / IDLE_MEASURE_S
        result.close_s = stored_at - last_row if last_row else None
        result.windows_closed, result.rollup_rows, result.late_events = closed, stored, late
        result.cpu_to_last_window_s, result.idle_cpu_per_s = cpu_at, idle_rate
        result.cpu_closed_s = cpu_at - idle_rate * max(0.0, result.close_s or 0.0)
        # every stored row lies in window_s / step_s windows of each spec: the rollups count it that often
        counts = await window_counts(conn)
        result.rollups_match = True
        for kind in counts:
            if TABLES[kind].name not in expected:
                continue
            table_rows = await conn.fetchval(f"SELECT count(*) FROM {TABLES[kind].name}")
            for (window_s, step_s), (_, events_counted) in counts[kind].items():
                if events_counted != table_rows * round(window_s / step_s):
                    result.rollups_match = False
                    result.note += (f" rollups: {kind} {window_s:g}/{step_s:g} s windows count {events_counted:,}"
                                    f" events of {table_rows:,} rows")
            if not counts[kind]:
                result.rollups_match = False
                result.note += f" rollups: no {kind} windows"
        _say(f"   [learnstream] windows closed {closed:,} ({stored:,} rollup rows), last stored "
             f"{result.close_s or 0:.1f}s after the last row; CPU s {cpu_at_last_row:.2f} at the last row, "
             f"{cpu_at:.2f} at the last window, idle {idle_rate:.3f} CPU s/s")

    async def _latency(self, result: Result, conn: asyncpg.Connection, shape: str, topics: dict[str, str], ps) -> None:
        """Publish a paced live stream and read event -> row latency from the rows."""
        kind = "performance_sample"
        table = TABLES[kind].name
        rate, seconds = self.plan.latency_rate, self.plan.latency_seconds
        array_size = 1000 if shape == "arrays" else 1
        per_tick = max(1, rate // 10) if array_size == 1 else array_size
        interval = per_tick / rate
        gen = Generator(seed=self.plan.seed + 1000)
        marker = datetime.now(UTC)
        ids: list[str] = []

        async def paced() -> None:
            async with Publisher(self.s.kafka_bootstrap, linger_ms=0) as publisher:
                t_next = time.monotonic()
                end = t_next + seconds
                while time.monotonic() < end:
                    events = []
                    for _ in range(per_tick):
                        ev = gen.performance_sample()
                        ev["timestamp"] = datetime.now(UTC).isoformat()
                        events.append(ev)
                        ids.append(ev["sample_id"])
                    msgs = ([(None, orjson.dumps(e)) for e in events] if array_size == 1
                            else [(None, orjson.dumps(events))])
                    await publisher.send_all(topics[kind], msgs)
                    t_next += interval
                    await asyncio.sleep(max(0.0, t_next - time.monotonic()))

        await paced()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            n = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE id = ANY($1::uuid[])", ids)
            if n >= len(ids):
                break
            await asyncio.sleep(0.2)
        q = await conn.fetchrow(
            f"""SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY
                   extract(epoch FROM ingested_at - "timestamp")) AS q, count(*) AS n
                FROM {table} WHERE id = ANY($1::uuid[]) AND ingested_at >= $2""",
            ids, marker,
        )
        if q["q"] and q["n"] == len(ids):
            result.latency_p50_ms, result.latency_p95_ms, result.latency_p99_ms = (x * 1000 for x in q["q"])
        else:
            result.note += f" latency: {q['n']}/{len(ids)} rows within 60 s"

    # -- the whole run ----------------------------------------------------------------------
    async def run(self) -> list[Result]:
        plan = self.plan
        for shape in plan.shapes:
            gen = self._generator()
            loads = self._workloads(shape, gen)
            total = sum(w.events for w in loads.values())
            _say(f"== {shape}: {total:,} events in {sum(len(w.messages) for w in loads.values()):,} messages "
                 f"(seed {plan.seed}, {plan.invalid_share:.0%} invalid), pre-loaded for each pipeline")
            for name in plan.pipelines:
                topics = self._topics(shape, name)
                await ensure_topics(self.s.kafka_bootstrap, list(topics.values()), plan.partitions)
                t0 = time.monotonic()
                async with Publisher(self.s.kafka_bootstrap) as publisher:
                    for kind, w in loads.items():
                        await publisher.send_all(topics[kind], w.messages)
                _say(f"-- {name} ({shape}): pre-loaded in {time.monotonic() - t0:.1f}s; its clock starts at its first row")
                r = await self.run_pipeline(name, shape, loads, topics)
                plan.results.append(r)
                _say(f"   {r.events_per_s:,.0f} events/s, {r.rows:,} rows in {r.seconds:.1f}s"
                     f"{' (INCOMPLETE: ' + r.note + ')' if not r.complete else ''}")
            limit = next((r for r in plan.results if r.shape == shape and r.pipeline == "limit" and r.events_per_s), None)
            for r in plan.results:
                if r.shape == shape and limit:
                    r.ratio_to_limit = r.events_per_s / limit.events_per_s
            window_costs([r for r in plan.results if r.shape == shape])
        return plan.results


def window_costs(results: list[Result]) -> None:
    """The window stage's cost on one shape, on learnstream's result: CPU (learnstream's CPU s, to
    its last window stored less idle when windows were waited for, over ingest-only's, minus 1)
    and throughput (1 - learnstream's events/s over ingest-only's)."""
    ours = next((r for r in results if r.pipeline == "learnstream" and r.complete), None)
    bare = next((r for r in results if r.pipeline == "ingest-only" and r.complete), None)
    if ours is None or bare is None or not bare.cpu_s or not bare.events_per_s:
        return
    cpu = ours.cpu_closed_s if ours.cpu_closed_s is not None else ours.cpu_s
    ours.window_cpu_cost = cpu / bare.cpu_s - 1
    ours.window_rate_cost = 1 - ours.events_per_s / bare.events_per_s


def windows_table(results: list[Result]) -> str:
    """--windows-close: what closing cost, per learnstream run."""
    head = (f"{'shape':<8}{'windows':>9}{'rollups':>9}{'late':>6}{'match':>7}{'close s':>9}{'CPU s row':>11}"
            f"{'CPU s win':>11}{'idle/s':>8}{'CPU s net':>11}{'CPU cost':>10}{'rate cost':>11}")
    lines = [head, "-" * len(head)]

    def f(x, fmt):
        return format(x, fmt) if x is not None else "-"

    for r in results:
        if r.pipeline != "learnstream" or r.windows_closed is None:
            continue
        lines.append(
            f"{r.shape:<8}{r.windows_closed:>9,}{f(r.rollup_rows, '>9,')}{f(r.late_events, '>6,')}"
            f"{'yes' if r.rollups_match else 'NO':>7}{f(r.close_s, '>9.1f')}{r.cpu_s:>11.2f}"
            f"{f(r.cpu_to_last_window_s, '>11.2f')}{f(r.idle_cpu_per_s, '>8.3f')}{f(r.cpu_closed_s, '>11.2f')}"
            f"{f(r.window_cpu_cost, '>10.1%')}{f(r.window_rate_cost, '>11.1%')}"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def table(results: list[Result]) -> str:
    head = (f"{'pipeline':<12}{'shape':<8}{'events/s':>11}{'x limit':>9}{'rows':>10}{'secs':>7}"
            f"{'start s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'RSS MB':>8}{'CPU s':>8}{'DB s':>7}  note")
    lines = [head, "-" * len(head)]

    def f(x, fmt):
        return format(x, fmt) if x is not None else "-"

    for r in results:
        lines.append(
            f"{r.pipeline:<12}{r.shape:<8}{r.events_per_s:>11,.0f}{f(r.ratio_to_limit, '>9.2f')}{r.rows:>10,}"
            f"{r.seconds:>7.1f}{r.startup_s:>8.1f}{f(r.latency_p50_ms, '>9.0f')}{f(r.latency_p95_ms, '>9.0f')}"
            f"{f(r.latency_p99_ms, '>9.0f')}{r.peak_rss_mb:>8.0f}{r.cpu_s:>8.1f}{f(r.db_write_s, '>7.1f')}  {r.note}"
        )
    return "\n".join(lines)


def write_json(plan: Plan, results: list[Result]) -> Path:
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    path = plan.out_dir / f"bench-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    doc = {
        "at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "plan": {k: v for k, v in asdict(plan).items() if k not in ("results", "out_dir")},
        "results": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(doc, indent=2))
    return path
