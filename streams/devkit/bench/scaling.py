"""`learnstream bench --workers 1,2,3`: the same workload on 1, 2, 3, ... workers of one consumer group.

For each shape and each N, in one invocation: a fresh migrated database; its own topics (the three
ingest topics and every topic the worker uses: content, accounts, dead letters, window-input,
rollups, late events, alert notifications and commands; `partitions` partitions each; the workers'
internal topics get as many) and its own app id, so its own consumer groups; the same seeded
workload as the main bench (its mix and bad input) pre-loaded before the clock starts. Then N
`learnstream worker` processes are started together, windows and alerts on with a 60 s grace
(as the main bench's learnstream pipeline).

events/s runs from the first row committed to the last (ingested_at, as in the main bench). CPU
seconds are taken by psutil over the same span (from the last poll, every 0.25 s, that saw no row
to the first that saw them all): each worker; the PostgreSQL server (the postmaster, its live children and the
children it has reaped: the whole server, whatever else it serves); the Kafka broker. The
machine's CPU utilisation over that span is busy time / all the cores' time. The run then checks
that the rows stored equal the valid events sent (nothing lost, nothing written twice), stops the
workers and drops the database and the topics it made.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from db.databases import drop_database
from db.pool import connect
from db.tables import TABLES
from streams.config import Settings, admin_dsn
from streams.devkit.bench.alerts import prepared, worker_env
from streams.devkit.bench.runner import count_rows, row_span, workloads
from streams.devkit.services import principal_env
from streams.devkit.synthetic import Generator, Workload
from streams.publish import Publisher
from streams.topics import delete_topics, ensure_topics
from streams.worker import READY_LINE, start_worker, stop_worker

#: the topic of each workload kind, by its Settings field
INGEST_TOPIC = {"learning_event": "learning_topic", "performance_sample": "performance_topic",
                "engagement_update": "engagement_topic"}


@dataclass
class ScaleResult:
    shape: str
    workers: int
    partitions: int
    events: int  # sent, bad input included
    valid: int  # distinct valid events sent: the rows a correct run stores
    rows: int = 0
    seconds: float = 0.0
    events_per_s: float = 0.0
    #: seconds from the workers' start to the first row
    startup_s: float = 0.0
    #: seconds from the first row to the last worker's "Ready" (None: not all were ready by the last row),
    #: and the rate over the rows stored after it (all N workers up; None when there were none)
    last_ready_s: float | None = 0.0
    all_up_events_per_s: float | None = None
    worker_cpu_s: list[float] = field(default_factory=list)
    postgres_cpu_s: float | None = None
    kafka_cpu_s: float | None = None
    machine_cpu_pct: float = 0.0
    speedup: float | None = None  # events/s over that of 1 worker (None without a run of 1)
    efficiency: float | None = None  # events/s / (N x events/s of 1 worker)
    note: str = ""

    @property
    def complete(self) -> bool:
        return self.rows == self.valid

    @property
    def worker_cpu_sum(self) -> float:
        return sum(self.worker_cpu_s)


# -- CPU ---------------------------------------------------------------------------------------

def _own_cpu(p) -> float:
    t = p.cpu_times()
    return t.user + t.system


def tree_cpu(p) -> float:
    """CPU seconds of process `p`, the children it has reaped, and its live descendants (PostgreSQL:
    the postmaster, the backends of closed connections, the live backends and auxiliaries)."""
    import psutil

    t = p.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in p.children(recursive=True):
        try:
            total += _own_cpu(child)
        except psutil.Error:
            pass  # exited meanwhile: the next sample has it in its parent's children_*
    return total


class CpuMeter:
    """CPU seconds of the workers, PostgreSQL and Kafka, and the machine's busy time, between two
    samples; a process that has exited keeps its last reading."""

    def __init__(self, workers: list[int], postgres: int | None, kafka: int | None) -> None:
        import psutil

        def proc(pid: int | None):
            try:
                return psutil.Process(pid) if pid else None
            except psutil.Error:
                return None

        self.workers = [proc(pid) for pid in workers]
        self.postgres, self.kafka = proc(postgres), proc(kafka)
        self.last: dict[str, list[float | None]] = {}

    def sample(self) -> dict[str, list[float | None]]:
        import psutil

        def read(key: str, procs: list, how) -> list[float | None]:
            before = self.last.get(key, [None] * len(procs))
            out = []
            for p, prev in zip(procs, before, strict=True):
                try:
                    out.append(how(p) if p is not None else None)
                except psutil.Error:
                    out.append(prev)
            self.last[key] = out
            return out

        t = psutil.cpu_times()
        idle = t.idle + getattr(t, "iowait", 0.0)
        return {"workers": read("workers", self.workers, _own_cpu), "postgres": read("postgres", [self.postgres], tree_cpu),
                "kafka": read("kafka", [self.kafka], _own_cpu), "machine": [sum(t) - idle, sum(t)]}


def _delta(a: float | None, b: float | None) -> float | None:
    return b - a if a is not None and b is not None else None


def service_pids(settings: Settings) -> tuple[int | None, int | None]:
    """(PostgreSQL's postmaster, the Kafka broker): from the local services' state (postmaster.pid,
    kafka/broker.pid), else whatever process on this machine listens on their ports."""
    import psutil

    from streams.devkit.services import status

    st = status()
    pg, kafka = st["postgres"]["pid"], st["kafka"]["pid"]
    if pg and kafka:
        return pg, kafka
    ports = {"pg": urlsplit(settings.database_url).port, "kafka": int(settings.kafka_bootstrap.rsplit(":", 1)[1])}
    found: dict[str, int] = {}
    try:
        for c in psutil.net_connections(kind="tcp"):
            for name, port in ports.items():
                if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                    found[name] = c.pid
    except psutil.Error:
        pass
    return pg or found.get("pg"), kafka or found.get("kafka")


# -- one run -----------------------------------------------------------------------------------

async def _topics(settings: Settings, partitions: int, prefix: str) -> None:
    names = [v for k, v in settings.model_dump().items() if k.endswith("_topic") and str(v).startswith(prefix)]
    await ensure_topics(settings.kafka_bootstrap, names, partitions)


async def _run(base: Settings, loads: dict[str, Workload], shape: str, n: int, partitions: int, tag: str,
               log_dir: Path, timeout_s: float, extra_env: dict[str, str]) -> ScaleResult:
    settings = (await prepared(base, tag, "scale")).model_copy(
        update={"topic_partitions": partitions, "window_grace_s": 60.0})  # grace: as the main bench's learnstream
    prefixes = (f"bench.scale.{tag}.", f"{settings.app_id}-")
    expected = {TABLES[k].name: len(w.expected) for k, w in loads.items()}
    result = ScaleResult(shape, n, partitions, sum(w.events for w in loads.values()), sum(expected.values()))
    states = [Path(f"/tmp/learnstream-bench-scale-{tag}-{i}") for i in range(n)]
    workers = []
    try:
        await _topics(settings, partitions, f"bench.scale.{tag}.")
        t0 = time.monotonic()
        async with Publisher(settings.kafka_bootstrap) as pub:
            for kind, w in loads.items():
                await pub.send_all(getattr(settings, INGEST_TOPIC[kind]), w.messages)
        print(f"-- {n} worker{'s' if n > 1 else ''} ({shape}, {partitions} partitions): pre-loaded in "
              f"{time.monotonic() - t0:.1f} s; the clock starts at the first row", flush=True)
        logs = [log_dir / f"workers-{tag}-{i}.log" for i in range(n)]
        started = time.time()
        for i, state in enumerate(states):
            state.mkdir(parents=True, exist_ok=True)
            env = worker_env(settings, str(state))
            env.update(principal_env("admin"))  # the bench's workers run as the operator (their app ids vary)
            env.update(extra_env)
            workers.append(start_worker(env, logs[i]))
        meter = CpuMeter([w.pid for w in workers], *service_pids(base))
        await _measure(result, settings, expected, workers, logs, meter, started, timeout_s)
    finally:
        for w in workers:
            stop_worker(w)
        await drop_database(admin_dsn(base), settings.database_url.rsplit("/", 1)[1])
        try:
            await delete_topics(settings.kafka_bootstrap, prefixes)
        except Exception as exc:  # noqa: BLE001 - cleanup: say so, do not hide the result
            print(f"   could not delete the run's topics ({exc})", flush=True)
        for state in states:
            shutil.rmtree(state, ignore_errors=True)
    return result


async def _measure(result: ScaleResult, settings: Settings, expected: dict[str, int], workers: list, logs: list[Path],
                   meter: CpuMeter, started: float, timeout_s: float) -> None:
    ready: dict[int, float] = {}
    first_sample = last_sample = None
    conn = await connect(settings.database_url)
    try:
        deadline, last_print, rows = time.monotonic() + timeout_s, 0.0, 0
        while True:
            for i, log in enumerate(logs):
                if i not in ready and READY_LINE in log.read_text(errors="replace"):
                    ready[i] = time.time()
            # the span of the CPU figures: from the last poll that saw no row to the first that saw them all
            sample = meter.sample()
            rows = await count_rows(conn, expected)
            if not rows or first_sample is None:
                first_sample = sample
            last_sample = meter.sample()
            if dead := [i for i, w in enumerate(workers) if w.poll() is not None]:
                result.note = f"worker {dead[0]} exited with {workers[dead[0]].returncode}: see {logs[dead[0]]}"
                break
            if rows >= result.valid:
                break
            if time.monotonic() > deadline:
                result.note = f"timed out after {timeout_s:.0f} s"
                break
            if time.monotonic() - last_print >= 2:
                last_print = time.monotonic()
                print(f"   [{result.workers} workers {result.shape}] {rows:,}/{result.valid:,} rows", flush=True)
            await asyncio.sleep(0.25)
        await asyncio.sleep(1.0)  # anything written twice or late would show now
        result.rows = await count_rows(conn, expected)
        first, last = await row_span(conn, expected)
        if first and last and last > first:
            result.seconds = last - first
            result.events_per_s = (result.rows - 1) / result.seconds
            result.startup_s = first - started
            all_up = max(ready.values()) if len(ready) == len(workers) else None
            result.last_ready_s = None if all_up is None or all_up > last else max(0.0, all_up - first)
            if result.last_ready_s and last - all_up >= 1.0:
                # the workers start together but become ready seconds apart: the rate once all N are consuming
                result.all_up_events_per_s = await count_rows(conn, expected, all_up) / (last - all_up)
    finally:
        await conn.close()
    if first_sample and last_sample:
        result.worker_cpu_s = [d or 0.0 for d in map(_delta, first_sample["workers"], last_sample["workers"])]
        result.postgres_cpu_s = _delta(first_sample["postgres"][0], last_sample["postgres"][0])
        result.kafka_cpu_s = _delta(first_sample["kafka"][0], last_sample["kafka"][0])
        busy, total = (b - a for a, b in zip(first_sample["machine"], last_sample["machine"], strict=True))
        result.machine_cpu_pct = 100 * busy / total if total else 0.0
    if result.rows != result.valid:
        result.note = " ".join(x for x in (result.note, f"{result.rows:,} rows for {result.valid:,} valid events") if x)


def run_scaling_bench(base: Settings, *, workers: list[int], partitions: int, events: int, shapes: list[str],
                      mix: dict[str, float], seed: int, invalid_share: float, timeout_s: float, log_dir: Path,
                      worker_settings: dict[str, str] | None = None) -> list[ScaleResult]:
    """Each shape's workload on each N of `workers` in turn; the results in that order."""
    run_id = uuid.uuid4().hex[:8]
    log_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for shape in shapes:
        loads = workloads(Generator(seed=seed), events, mix, shape, invalid_share)
        print(f"== {shape}: {sum(w.events for w in loads.values()):,} events in "
              f"{sum(len(w.messages) for w in loads.values()):,} messages (seed {seed}, {invalid_share:.0%} invalid), "
              f"on {', '.join(map(str, workers))} workers", flush=True)
        mine = []
        for n in workers:
            r = asyncio.run(_run(base, loads, shape, n, partitions, f"{run_id}{shape[0]}{n}", log_dir, timeout_s,
                                 worker_settings or {}))
            print(f"   {r.events_per_s:,.0f} events/s, {r.rows:,} rows in {r.seconds:.1f} s {r.note}", flush=True)
            mine.append(r)
        one = next((r for r in mine if r.workers == 1 and r.events_per_s), None)
        for r in mine:
            if one and r.events_per_s:
                r.speedup = r.events_per_s / one.events_per_s
                r.efficiency = r.speedup / r.workers
        results += mine
    return results


def table(results: list[ScaleResult]) -> str:
    head = (f"{'shape':<8}{'workers':>7}{'events/s':>10}{'x 1 worker':>11}{'efficiency':>11}{'worker CPU s':>13}"
            f"{'PostgreSQL CPU s':>17}{'Kafka CPU s':>12}{'machine CPU %':>14}{'rows':>10}"
            f"{'secs':>7}  each worker CPU s; note")
    lines = [head, "-" * len(head)]

    def f(x, fmt):
        return format(x, fmt) if x is not None else "-"

    for r in results:
        each = "/".join(f"{c:.1f}" for c in r.worker_cpu_s)
        lines.append(
            f"{r.shape:<8}{r.workers:>7}{r.events_per_s:>10,.0f}{f(r.speedup, '>11.2f')}{f(r.efficiency, '>11.2f')}"
            f"{r.worker_cpu_sum:>13.1f}{f(r.postgres_cpu_s, '>17.1f')}{f(r.kafka_cpu_s, '>12.1f')}"
            f"{r.machine_cpu_pct:>14.0f}{r.rows:>10,}{r.seconds:>7.1f}  {each}"
            + _ready_note(r)
            + (f"; {r.note}" if r.note else ""))
    return "\n".join(lines)


def _ready_note(r: ScaleResult) -> str:
    if r.workers == 1:
        return ""
    if r.last_ready_s is None:
        return "; not every worker was ready by the last row"
    if r.last_ready_s < 0.5:
        return ""
    then = f", {r.all_up_events_per_s:,.0f} events/s after it" if r.all_up_events_per_s else ""
    return f"; last worker ready {r.last_ready_s:.1f} s after the first row{then}"


def as_json(results: list[ScaleResult]) -> list[dict]:
    return [{**asdict(r), "worker_cpu_sum": r.worker_cpu_sum, "complete": r.complete} for r in results]
