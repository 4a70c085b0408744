"""Fault drills on the real services, each in the middle of a stream with the window stage on:
the Kafka broker stopped and started, PostgreSQL restarted, one of two workers SIGKILLed.

Each drill checks the exact outcome - the stored ids are the ids published, each stored once; the
tumbling and hopping rollups count every sample exactly once - and measures how long recovery
took: from the fault ending to the last expected row, and to the last expected window, being in
the database (printed, visible with -s, and recorded as properties of the test in the JUnit XML).

The stream: performance samples of the synthetic generator in rounds of advancing event time,
for one workspace per window-input partition, each workspace's samples in event-time order in
arrays keyed by it (one source partition per workspace). A partition's watermark is then moved
by one workspace only, in order, so no sample is ever late, whatever order a fault makes the
partitions go on in: every window is exact. A final "closing" sample per workspace, far ahead,
closes the last windows (only event time closes them: NO_IDLE).

Timings, in seconds from the fault's end (the broker / PostgreSQL answering again, the SIGKILL):
resumed_s (a row stored again), backlog_s (every row published before then stored),
rows_recovered_s / windows_recovered_s (the stream's last row / last window stored; the stream
goes on after the fault, so these include its remaining rounds), and outage_s (stop to ready).

The Kafka and PostgreSQL drills stop the session's shared local services: run them while no other
test session uses those services.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import pytest

from db.pool import connect
from streams.devkit.synthetic import Generator
from streams.publish import publish_messages
from streams.windows.input import workspace_partition
from tests.support import NO_IDLE, metric, sample, window_base, workspace_messages

pytestmark = pytest.mark.services

#: LEARNSTREAM_TOPIC_PARTITIONS of the test workers (tests/support.py Stack.env): window-input's
PARTITIONS = 4
#: NO_IDLE's windows: tumbling 10 s; hopping 20 s every 10 s
TUMBLING_S, HOPPING_S, HOP_STEP_S = 10.0, 20.0, 10.0
#: the metric of the closing samples (their own windows stay open; left out of the checks)
CLOSER = "fault_drill_closer"
TABLE = "system_performance_metrics"


def _t(ev: dict) -> float:
    return datetime.fromisoformat(ev["timestamp"]).timestamp()


def _one_workspace_per_window_partition(rng: random.Random) -> list[str]:
    found: dict[int, str] = {}
    while len(found) < PARTITIONS:
        ws = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        found.setdefault(workspace_partition(ws, PARTITIONS), ws)
    return [found[p] for p in range(PARTITIONS)]


class Stream:
    """Rounds of `per_round` generator samples published to the stack's performance topic;
    round r (from 1) is timed in (base + (r-1)*round_s, base + r*round_s], so the windows close
    one after the other as the stream goes on (10 s windows, 5 s grace)."""

    def __init__(self, stack, seed: int, *, per_round: int = 100, round_s: float = 1.0, per_message: int = 10) -> None:
        self.bootstrap, self.topic = stack.bootstrap, stack.topics["performance_sample"]
        self.gen = Generator(seed=seed, workspaces=PARTITIONS, spread_s=round_s)
        self.gen.workspaces = _one_workspace_per_window_partition(self.gen.rng)
        self.base = window_base()
        self.per_round, self.round_s, self.per_message = per_round, round_s, per_message
        self.rounds = 0
        self.sent: dict[str, dict] = {}  # sample_id -> sample (the windowed ones)
        self.closers: dict[str, dict] = {}
        #: (monotonic time the broker acknowledged a publish, ids published by then)
        self.published: list[tuple[float, int]] = []

    def round(self) -> list[tuple[bytes | None, bytes]]:
        self.rounds += 1
        self.gen.now = datetime.fromtimestamp(self.base + self.rounds * self.round_s, UTC)
        samples = [self.gen.performance_sample() for _ in range(self.per_round)]
        self.sent.update((s["sample_id"], s) for s in samples)
        out: list[tuple[bytes | None, bytes]] = []
        for ws in self.gen.workspaces:
            mine = sorted((s for s in samples if s["workspace_id"] == ws), key=_t)
            out += workspace_messages(mine, per=self.per_message)
        return out

    async def publish(self, messages: list[tuple[bytes | None, bytes]]) -> None:
        await publish_messages(self.bootstrap, self.topic, messages)
        self.published.append((time.monotonic(), len(self.ids)))

    async def run(self, rounds: int, every_s: float) -> None:
        for _ in range(rounds):
            await self.publish(self.round())
            await asyncio.sleep(every_s)

    async def close(self) -> None:
        """One sample per workspace far beyond the stream, each in its own message keyed by its
        workspace, so it follows that workspace's samples in their source partition."""
        t = self.base + (self.rounds + 1) * self.round_s + 100
        closers = [sample(ws, t, 1.0, metric_name=CLOSER, host="closer") for ws in self.gen.workspaces]
        self.closers.update((s["sample_id"], s) for s in closers)
        await self.publish(workspace_messages(closers, per=1))

    def published_by(self, t: float) -> int:
        return max((n for at, n in self.published if at <= t), default=0)

    @property
    def ids(self) -> set[str]:
        return set(self.sent) | set(self.closers)

    def windows(self) -> dict[tuple, list]:
        """(workspace, metric_name, tags, window_s, step_s, window_start) -> [count, sum] of every
        tumbling and hopping window of the samples sent (all closed once the closers are in)."""
        out: dict[tuple, list] = defaultdict(lambda: [0, 0.0])
        for s in self.sent.values():
            series = (s["workspace_id"], s["metric_name"], tuple(sorted(s["tags"].items())))
            pane = math.floor(_t(s) / HOP_STEP_S) * HOP_STEP_S  # = the tumbling window's start
            for size, step, start in ((TUMBLING_S, TUMBLING_S, pane), (HOPPING_S, HOP_STEP_S, pane - HOP_STEP_S),
                                      (HOPPING_S, HOP_STEP_S, pane)):
                w = out[(*series, size, step, start)]
                w[0] += 1
                w[1] += s["value"]
        return out


class Progress:
    """Samples, every 0.25 s, the stored rows and the closed windows of the stream (reconnecting
    while PostgreSQL is down), so a drill can tell when the last of them landed."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.samples: list[tuple[float, int, int]] = []  # (monotonic time, rows, windows)
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        conn: asyncpg.Connection | None = None
        try:
            while True:
                try:
                    if conn is None or conn.is_closed():
                        conn = await asyncio.wait_for(asyncpg.connect(self.dsn), 2)
                    rows = await conn.fetchval(f"SELECT count(*) FROM {TABLE}")
                    windows = await conn.fetchval(
                        "SELECT count(*) FROM performance_rollups WHERE metric_name <> $1", CLOSER)
                    self.samples.append((time.monotonic(), rows, windows))
                except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    if conn is not None and not conn.is_closed():
                        conn.terminate()
                    conn = None
                await asyncio.sleep(0.25)
        finally:  # the test's database is dropped after the test: no session of ours may linger
            if conn is not None and not conn.is_closed():
                conn.terminate()

    async def __aenter__(self) -> Progress:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    @property
    def rows(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def first(self, since: float, done: Callable[[int, int], bool]) -> float | None:
        """Seconds from `since` to the first sample at or after it where done(rows, windows)."""
        return next((t - since for t, r, w in self.samples if t >= since and done(r, w)), None)

    def resumed(self, since: float) -> float | None:
        """Seconds from `since` to the first row stored after it."""
        before = max((r for t, r, _w in self.samples if t < since), default=0)
        return self.first(since, lambda rows, _w: rows > before)

    def timings(self, stream: Stream, fault_end: float, want: tuple[int, int]) -> dict[str, float | None]:
        """Seconds from the fault's end until: a row is stored again (resumed), everything
        published before the fault ended is stored (backlog), the last row of the stream is stored
        (rows), the last window of the stream is stored (windows)."""
        backlog = stream.published_by(fault_end)
        return {
            "resumed_s": self.resumed(fault_end),
            "backlog_s": self.first(fault_end, lambda rows, _w: rows >= backlog),
            "rows_recovered_s": self.first(fault_end, lambda rows, _w: rows >= want[0]),
            "windows_recovered_s": self.first(fault_end, lambda _r, windows: windows >= want[1]),
        }

    async def wait(self, done: Callable[[int, int], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.samples and done(*self.samples[-1][1:]):
                return True
            await asyncio.sleep(0.1)
        return False


async def complete(progress: Progress, stream: Stream, timeout: float = 60) -> tuple[int, int]:
    """Wait until every row and every window of the stream is in (the exact check follows);
    return the targets (rows, windows)."""
    want = (len(stream.ids), len(stream.windows()))
    await progress.wait(lambda rows, windows: rows >= want[0] and windows >= want[1], timeout)
    return want


async def offsets_committed(worker, stack, timeout: float = 30) -> None:
    """The worker's consumer lag is 0 on every partition of the stream's topic and of window-input
    (each reported, Faust committing every acknowledged offset): nothing is left to redeliver."""
    topics = {stack.topics["performance_sample"], f"t{stack.tag}.window-input"}
    deadline = time.monotonic() + timeout
    while True:
        lags = {(dict(k[1])["topic"], int(dict(k[1])["partition"])): v for k, v in worker.metrics().items()
                if k[0] == "learnstream_consumer_lag_messages" and dict(k[1])["topic"] in topics}
        window_parts = {p for t, p in lags if t.endswith(".window-input")}
        if {t for t, _ in lags} == topics and window_parts == set(range(PARTITIONS)) and not any(lags.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"offsets not all committed after {timeout:.0f} s: lag {lags}")
        await asyncio.sleep(0.5)


async def check_exact(dsn: str, stream: Stream, corrections_s: float = 30) -> None:
    """The stored ids are exactly the ids published, each once; the closed windows are exactly
    the windows of the stream, each sample counted once in each of its windows - once the
    corrections are in: events a fault made late for windows already closed (redelivered to a
    worker whose restored clock had passed them) are counted by recomputing those windows from the
    stored rows (revision + 1, a timer), so a window may be short for a few seconds after it
    exists. Checked again for up to `corrections_s`; how long that took is printed."""
    t0 = time.monotonic()
    while True:
        try:
            await _check_exact(dsn, stream)
        except AssertionError:
            if time.monotonic() - t0 > corrections_s:
                raise
            await asyncio.sleep(1)
            continue
        if time.monotonic() - t0 > 0.5:
            print(f"\n[fault drill] exact after the corrections, {time.monotonic() - t0:.1f}s after the windows were in")
        return


async def _check_exact(dsn: str, stream: Stream) -> None:
    conn = await connect(dsn)
    try:
        ids = [str(r[0]) for r in await conn.fetch(f"SELECT id FROM {TABLE}")]
        rollups = await conn.fetch(
            "SELECT workspace_id::text AS ws, metric_name, tags, window_s, step_s, window_start, count, sum "
            "FROM performance_rollups WHERE metric_name <> $1", CLOSER)
    finally:
        await conn.close()
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} rows stored twice"
    missing, extra = stream.ids - set(ids), set(ids) - stream.ids
    assert not missing and not extra, f"{len(missing)} ids missing, {len(extra)} unexpected"

    want = stream.windows()
    got = {(r["ws"], r["metric_name"], tuple(sorted(r["tags"].items())), r["window_s"], r["step_s"],
            r["window_start"].timestamp()): (r["count"], r["sum"]) for r in rollups}
    assert len(got) == len(rollups)
    tumbling = sum(c for k, (c, _) in got.items() if k[3] == k[4])
    # the sum of `count` over the tumbling rows (window_s = step_s) = the samples, each once
    assert tumbling == len(stream.sent), f"tumbling windows count {tumbling} samples of {len(stream.sent)}"
    assert sum(c for k, (c, _) in got.items() if k[3] != k[4]) == 2 * len(stream.sent)  # 2 hopping windows each
    missing_w = sorted(set(want) - set(got))
    extra_w = sorted(set(got) - set(want))
    assert not missing_w and not extra_w, f"windows missing: {missing_w[:5]} ({len(missing_w)}); extra: {extra_w[:5]}"
    wrong = {k: (got[k][0], c) for k, (c, _) in want.items() if got[k][0] != c}
    assert not wrong, f"{len(wrong)} windows with a wrong count (got, want): {list(wrong.items())[:5]}"
    for k, (_, s) in want.items():
        assert got[k][1] == pytest.approx(s), k


def report(record_property, drill: str, **seconds: float | None) -> None:
    """Print (visible with -s) and record (JUnit XML properties) the drill's timings."""
    parts = []
    for name, value in seconds.items():
        record_property(name, None if value is None else round(value, 2))
        parts.append(f"{name}={'n/a' if value is None else f'{value:.1f}s'}")
    print(f"\n[fault drill] {drill}: {', '.join(parts)}")


def _skip_unless_local(env: str, what: str) -> None:
    if os.environ.get(env) or os.environ.get("LEARNSTREAM_TEST_CONTAINERS") == "1":
        pytest.skip(f"{what} needs the local services of `learnstream services`")


def _alive(worker, when: str) -> None:
    assert worker.proc.poll() is None, f"worker exited ({worker.proc.returncode}) {when}:\n{worker.log()[-6000:]}"


@pytest.mark.serial  # stops the shared services: run alone
async def test_kafka_broker_stopped_and_started_mid_stream(stack, start_worker, record_property):
    _skip_unless_local("LEARNSTREAM_KAFKA_BOOTSTRAP", "stopping Kafka")
    from streams.devkit.services.kafka import kafka_start, kafka_stop

    # small batches (5 messages of 5 samples): the worker is still working through part one
    # when the broker goes, with batches, window-input sends and commits in flight
    worker = start_worker(**NO_IDLE, LEARNSTREAM_BATCH_MAX_EVENTS="5")
    stream = Stream(stack, seed=31, per_message=5)
    async with Progress(stack.dsn) as progress:
        await stream.publish([m for _ in range(20) for m in stream.round()])  # part one: 2,000 samples at once
        assert await progress.wait(lambda rows, _w: rows > 0, 30), "no row stored before the broker stop"
        at_stop = progress.rows
        t_stop = time.monotonic()
        await asyncio.to_thread(kafka_stop)
        try:
            await asyncio.sleep(5)
            _alive(worker, "while the broker was down")
        finally:
            bootstrap = await asyncio.to_thread(kafka_start)
        t_up = time.monotonic()
        assert bootstrap == stack.bootstrap
        assert at_stop < len(stream.sent), "the worker had stored part one before the broker stop: not mid-stream"

        await stream.run(rounds=20, every_s=0.2)  # part two
        await stream.close()
        want = await complete(progress, stream)
        _alive(worker, "after the broker restart")
    await check_exact(stack.dsn, stream)
    await offsets_committed(worker, stack)
    _alive(worker, "after the broker restart")
    report(record_property, "Kafka broker stopped and started", outage_s=t_up - t_stop,
           **progress.timings(stream, t_up, want))


@pytest.mark.serial  # stops the shared services: run alone
async def test_postgres_restarted_mid_stream_with_windows(stack, start_worker, record_property):
    _skip_unless_local("LEARNSTREAM_DATABASE_URL", "stopping PostgreSQL")
    from streams.devkit.services.postgres import pg_start, pg_stop

    worker = start_worker(**NO_IDLE)
    stream = Stream(stack, seed=32)
    async with Progress(stack.dsn) as progress:
        # 40 rounds over ~15 s, 40 s of event time: windows close all along, during the outage too
        producer = asyncio.create_task(stream.run(rounds=40, every_s=0.3))
        assert await progress.wait(lambda _r, windows: windows > 0, 30), "no window closed before the outage"
        t_stop = time.monotonic()
        await asyncio.to_thread(pg_stop)
        try:
            await asyncio.sleep(4)
            _alive(worker, "while PostgreSQL was down")
            assert metric(worker.metrics(), "learnstream_db_up") == 0
        finally:
            await asyncio.to_thread(pg_start)
        t_up = time.monotonic()
        assert not producer.done(), "the stream ended before PostgreSQL was back: not mid-stream"
        await producer
        await stream.close()
        want = await complete(progress, stream)
    await check_exact(stack.dsn, stream)
    await offsets_committed(worker, stack)
    _alive(worker, "after the PostgreSQL restart")
    m = worker.metrics()
    assert metric(m, "learnstream_db_up") == 1
    assert metric(m, "learnstream_db_retries_total", table=TABLE) > 0
    report(record_property, "PostgreSQL restarted", outage_s=t_up - t_stop, **progress.timings(stream, t_up, want))


def _window_partitions(worker) -> list[int] | None:
    """The window partitions the worker owns since its last rebalance (None: none recovered yet)."""
    found = re.findall(r"window state recovered: partitions \[([\d, ]*)\]", worker.log())
    return None if not found else [int(p) for p in found[-1].split(",") if p.strip()]


@pytest.mark.serial  # a rebalance on a machine the parallel run keeps busy: measured alone, like the other drills
async def test_one_of_two_workers_sigkilled_mid_stream(stack, start_worker, record_property):
    # the group notices the dead member after its session timeout: 10 s here (Faust's default
    # broker_session_timeout is 60 s, too long for a drill)
    group = dict(BROKER_SESSION_TIMEOUT="10", BROKER_HEARTBEAT_INTERVAL="1")
    survivor = start_worker(**NO_IDLE, **group)
    victim = start_worker(**NO_IDLE, **group)
    deadline = time.monotonic() + 60
    while not all(_window_partitions(w) for w in (survivor, victim)) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert all(_window_partitions(w) for w in (survivor, victim)), "the two workers did not share the partitions"

    stream = Stream(stack, seed=33)
    async with Progress(stack.dsn) as progress:
        producer = asyncio.create_task(stream.run(rounds=40, every_s=0.3))
        assert await progress.wait(lambda _r, windows: windows > 0, 30), "no window closed before the kill"
        victim.kill()
        t_kill = time.monotonic()
        assert not producer.done(), "the stream ended before the kill: not mid-stream"
        await producer
        await stream.close()
        want = await complete(progress, stream, timeout=75)
    await check_exact(stack.dsn, stream)
    assert _window_partitions(survivor) == list(range(PARTITIONS)), "the survivor did not take over every partition"
    await offsets_committed(survivor, stack)
    _alive(survivor, "after the other worker was killed")
    report(record_property, "one of two workers SIGKILLed", **progress.timings(stream, t_kill, want))
