"""The window stage (issue #4): stored events -> event-time windows in a changelog-backed Faust
table -> closed windows as rollup rows, rollup messages and alert-engine input.

Flow:
1. The ingest agents, once a batch is stored, send its newly stored events in compact form to
   the internal `window-input` topic, one message per workspace per batch, on the partition that
   workspace hashes to (`workspace_partition`). So every series of a workspace - and every alert
   rule of it - lives on exactly one worker, whatever the producers' keys were. A batch's window
   messages are sent only after the previous batch's were (per source topic), so each source
   partition's events reach the window stage in offset order.
2. The window agent folds each event into its pane (streams/windows.py) and writes the changed
   panes to the Faust table `windows` (changelog topic `<app id>-windows-changelog`, partitioned
   like window-input). After a restart or a rebalance, Faust replays the changelog and the stage
   rebuilds its panes and clocks from the table (`_recovered`).
3. Exactly once into windows: each pane remembers, per source partition, the last source offset
   folded into it; an event redelivered (the worker died after sending it to window-input but
   before committing the source offset) is skipped. Engagement snapshots do the same per post.
4. Windows close on event time (watermark past end + grace) or, for a quiet partition, on wall
   clock time. A closed window is written to its rollup table (idempotent), published to the
   rollups topic and given to the alert engine, and only then are its panes tombstoned.
5. An event later than the grace period of a window goes to the late-events topic and is
   counted; it is never folded into the closed window (it is still stored in its ingest table).

Alert commands (ack, mute) from the `alert-commands` topic are relayed into window-input on the
workspace's partition, so the worker that owns the alert instances applies them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from pydantic import ValidationError

from db.rollups import write_rollups
from db.tables import TABLES
from schemas.alerts import AlertCommand
from schemas.events import DeadLetterError
from schemas.rollups import Rollup
from streams import metrics
from streams.alert_runtime import AlertRuntime
from streams.config import Settings
from streams.sink import Retrier, SharedPool, envelope
from streams.windows import (
    COUNTERS,
    EngagementAggregate,
    LearningAggregate,
    MetricAggregate,
    WindowSpec,
    Windower,
    engagement_delta,
    is_learning_error,
)

log = logging.getLogger("learnstream.windowing")

#: most events in one window-input message (keeps messages far below Kafka's 1 MiB default)
ITEMS_PER_MESSAGE = 2000
#: an engagement snapshot older than this (event time) behind the watermark is forgotten
SNAPSHOT_TTL_S = 7 * 86400.0

AGGREGATES: dict[str, type] = {
    "performance_sample": MetricAggregate,
    "learning_event": LearningAggregate,
    "engagement_update": EngagementAggregate,
}


def workspace_partition(workspace_id: str, partitions: int) -> int:
    """The window-input partition of a workspace (CRC-32 of its text form)."""
    return zlib.crc32(workspace_id.encode()) % partitions


def _sorted_json(d: dict) -> str:
    return orjson.dumps(d, option=orjson.OPT_SORT_KEYS).decode()


# -- 1. ingest side: stored rows -> window-input messages --------------------------------------


def _item_builder(kind: str) -> Callable[[tuple], list]:
    cols = TABLES[kind].columns
    at = {c: i for i, c in enumerate(cols)}
    if kind == "performance_sample":
        m, tg, v = at["metric_name"], at["tags"], at["value"]
        return lambda r: [r[m], r[tg], r[v]]
    if kind == "learning_event":
        et, ss, sub, data, ms = (at[c] for c in ("event_type", "source_system", "event_subtype", "event_data",
                                                 "processing_time_ms"))
        return lambda r: [r[et], r[ss], is_learning_error(r[sub], r[data]), r[ms]]
    cid, pl, cn = at["content_id"], at["platform"], at["connector_id"]
    counters = [at[c] for c in COUNTERS]
    return lambda r: [str(r[cid]), r[pl], r[cn], *[r[i] for i in counters]]


_BUILDERS = {kind: _item_builder(kind) for kind in TABLES}


def window_messages(kind: str, rows: list[tuple], sources: list, partitions: int) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) window-input messages for the stored `rows` of one batch; each
    item is [source partition, source offset, event time, event id, ...kind's fields]."""
    spec = TABLES[kind]
    ti, wi = spec.time_index, spec.columns.index("workspace_id")
    build = _BUILDERS[kind]
    by_ws: dict[Any, list] = {}
    topic = sources[0].topic if sources else ""
    for row, msg in zip(rows, sources):
        items = by_ws.get(row[wi])
        if items is None:
            items = by_ws[row[wi]] = []
        items.append([msg.partition, msg.offset, row[ti].timestamp(), str(row[0]), *build(row)])
    out = []
    for ws, items in by_ws.items():
        w = str(ws)
        part = workspace_partition(w, partitions)
        for i in range(0, len(items), ITEMS_PER_MESSAGE):
            value = orjson.dumps({"k": kind, "w": w, "t": topic, "i": items[i:i + ITEMS_PER_MESSAGE]})
            out.append((part, w.encode(), value))
    return out


# -- 2. the window agent's state ------------------------------------------------------------------


@dataclass
class Snapshot:
    """A post's latest cumulative counters (engagement deltas are taken against it)."""

    t: float
    counters: dict[str, int]
    upto: dict[str, int] = field(default_factory=dict)


@dataclass
class PartitionState:
    windows: dict[str, Windower]
    #: (kind, (workspace, series_key), pane start) -> {source "topic:partition": last offset folded}
    upto: dict[tuple, dict[str, int]] = field(default_factory=dict)
    #: (workspace, series_key) -> engagement snapshot
    snaps: dict[tuple[str, str], Snapshot] = field(default_factory=dict)


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


class WindowStage:
    def __init__(self, app: faust.App, settings: Settings, pool: SharedPool, alerts: AlertRuntime,
                 publish_dead_letter: Callable[[bytes | None, bytes], Awaitable[Any]]) -> None:
        self.app, self.settings, self._pool, self.alerts = app, settings, pool, alerts
        self.specs = (
            WindowSpec(settings.window_tumbling_s, None, settings.window_grace_s),
            WindowSpec(settings.window_hopping_s, settings.window_hop_step_s, settings.window_grace_s),
        )
        self.partitions = settings.topic_partitions
        self.input = app.topic(settings.window_input_topic, key_type=bytes, value_type=bytes,
                               partitions=self.partitions)
        self.rollups_topic = app.topic(settings.rollups_topic, key_type=bytes, value_type=bytes)
        self.late_topic = app.topic(settings.late_events_topic, key_type=bytes, value_type=bytes)
        # raw bytes keys and values (the app's serializers); the stage encodes them itself
        self.table = app.Table("windows", partitions=self.partitions, key_type=bytes, value_type=bytes)
        self.table.on_recover(self._recovered)
        self.states: dict[int, PartitionState] = {}
        self._lock = asyncio.Lock()
        self._publish_dead_letter = publish_dead_letter
        self._retrying = Retrier(settings.db_retry_initial_s, settings.db_retry_max_s)

    def _new_state(self) -> PartitionState:
        return PartitionState({k: Windower(self.specs, agg, self.settings.window_idle_s) for k, agg in AGGREGATES.items()})

    # -- ingest side -------------------------------------------------------------------------
    async def send_stored(self, kind: str, rows: list[tuple], sources: list) -> None:
        """Send a batch's stored rows to window-input; returns when the broker has them all."""
        futures = [await self.input.send(key=k, value=v, partition=p)
                   for p, k, v in window_messages(kind, rows, sources, self.partitions)]
        for fut in futures:
            await fut

    async def relay_command(self, message) -> None:
        """An alert-commands message -> window-input on its workspace's partition (or the DLQ)."""
        try:
            cmd = AlertCommand.model_validate_json(message.value or b"")
        except ValidationError as exc:
            reason = "invalid_json" if any(e["type"] == "json_invalid" for e in exc.errors()) else "schema"
            errors = [DeadLetterError(reason=reason, path=".".join(map(str, e["loc"])), message=e["msg"])
                      for e in exc.errors()]
            letter = envelope(message, errors, datetime.now(UTC))
            fut = await self._publish_dead_letter(f"{message.topic}:{message.partition}:{message.offset}".encode(),
                                                  orjson.dumps(letter.model_dump(mode="json")))
            await fut
            metrics.INVALID_EVENTS.labels(message.topic, reason).inc()
            return
        w = str(cmd.workspace_id)
        fut = await self.input.send(key=w.encode(), value=orjson.dumps({"cmd": cmd.model_dump(mode="json")}),
                                    partition=workspace_partition(w, self.partitions))
        await fut

    # -- window agent ------------------------------------------------------------------------
    async def process(self, partition: int, value: bytes) -> None:
        msg = orjson.loads(value)
        async with self._lock:
            if "cmd" in msg:
                await self.alerts.command(AlertCommand.model_validate(msg["cmd"]))
                return
            st = self.states.get(partition)
            if st is None:
                st = self.states[partition] = self._new_state()
            now = time.time()
            late = self._fold(partition, st, msg, now)
            if late:
                # one late-events message per window-input message: a JSON array of LateEvent
                fut = await self.late_topic.send(key=msg["w"].encode(), value=orjson.dumps(late))
                await fut
                metrics.LATE_EVENTS.labels(msg["k"]).inc(len(late))
            await self._close(partition, st)

    def _fold(self, partition: int, st: PartitionState, msg: dict, now: float) -> list[dict]:
        kind, ws, src = msg["k"], msg["w"], msg["t"]
        w = st.windows[kind]
        engagement = kind == "engagement_update"
        pending: dict[tuple, dict[str, int]] = {}
        dirty_snaps: set[tuple[str, str]] = set()
        late: list[dict] = []
        seen_upto: dict[tuple, int] = {}  # a snapshot's offset mark as it was before this message
        duplicates = resets = 0
        wm_before = w.watermark
        for it in msg["i"]:
            sp, off, t = it[0], it[1], it[2]
            tp = f"{src}:{sp}"
            if kind == "performance_sample":
                series = _sorted_json({"metric_name": it[4], "tags": it[5]})
                value: Any = it[6]
            elif kind == "learning_event":
                series = _sorted_json({"event_type": it[4], "source_system": it[5]})
                value = (it[6], it[7])
            else:
                series = _sorted_json({"content_id": it[4], "platform": it[5], "connector_id": it[6]})
                cur = dict(zip(COUNTERS, it[7:12]))
                snap = st.snaps.get((ws, series))
                if snap is not None:
                    mark = seen_upto.get((series, tp))
                    if mark is None:
                        mark = seen_upto[(series, tp)] = snap.upto.get(tp, -1)
                    if off <= mark:
                        duplicates += 1
                        continue
                if snap is None:
                    snap = st.snaps[(ws, series)] = Snapshot(t, cur)
                    seen_upto[(series, tp)] = -1
                    value = (t, cur, {}, 0)
                elif t < snap.t:  # an older snapshot arriving late: counted, no deltas from it
                    value = (t, cur, {}, 0)
                else:
                    d = engagement_delta(snap.counters, cur, (t - snap.t) / 60.0)
                    value = (t, cur, d.deltas, len(d.resets))
                    resets += len(d.resets)
                    # the snapshot keeps each counter's high-water mark: after a bad scrape that
                    # went down, the next good one gains only what is new
                    snap.t = t
                    snap.counters = {c: max(n, snap.counters.get(c, 0)) for c, n in cur.items()}
                snap.upto[tp] = off
                dirty_snaps.add((ws, series))
            key = (ws, series)
            if not engagement:
                pane = (kind, key, w.pane_of(t))
                done = st.upto.get(pane)
                if done is not None and off <= done.get(tp, -1):
                    duplicates += 1
                    continue
            missed = w.add(key, t, value, now)
            if missed:  # the LateEvent contract, built without per-event validation (hot when a replay is late)
                late.append({
                    "kind": kind, "workspace_id": ws, "event_id": it[3], "event_time": _iso(t), "source_topic": src,
                    "partition": sp, "offset": off, "watermark": _iso(w.watermark),
                    "missed": [{"window_s": s.size_s, "step_s": s.step, "window_start": _iso(start)}
                               for s, start in missed],
                    "received_at": _iso(now),
                })
            pane_start = w.pane_of(t)
            if pane_start in w.panes.get(key, ()):
                marks = pending.setdefault((kind, key, pane_start), {})
                marks[tp] = max(off, marks.get(tp, -1))
        if duplicates:
            metrics.WINDOW_DUPLICATES.labels(kind).inc(duplicates)
        if resets:
            metrics.ENGAGEMENT_RESETS.inc(resets)
        # persist what changed: panes (aggregate + offsets folded), snapshots, the clock
        for pane, marks in pending.items():
            _, key, ps = pane
            if ps not in w.panes.get(key, ()):
                continue  # closed and dropped within this very message (the watermark moved on)
            st.upto.setdefault(pane, {}).update(marks)
            self._put_pane(partition, st, pane)
        for sk in dirty_snaps:
            self._put_snap(partition, sk, st.snaps[sk])
        if w.watermark != wm_before:
            self._put_clock(partition, st)
        return late

    # -- table writes (changelog) -------------------------------------------------------------
    def _write(self, partition: int, key: str, value: bytes | None) -> None:
        k = key.encode()
        if value is None:
            self.table.data.pop(k, None)
            self.table.send_changelog(partition, k, None, value_serializer="raw")
        else:
            self.table.data[k] = value
            self.table.send_changelog(partition, k, value)

    def _put_pane(self, partition: int, st: PartitionState, pane: tuple) -> None:
        kind, (ws, series), ps = pane
        agg = st.windows[kind].panes[(ws, series)][ps]
        value = orjson.dumps({"a": agg.to_bytes().decode(), "u": st.upto[pane]})
        self._write(partition, f"{partition}|p|{kind}|{ws}|{ps!r}|{series}", value)

    def _put_snap(self, partition: int, sk: tuple[str, str], snap: Snapshot) -> None:
        self._write(partition, f"{partition}|s|{sk[0]}|{sk[1]}",
                    orjson.dumps({"t": snap.t, "c": snap.counters, "u": snap.upto}))

    def _put_clock(self, partition: int, st: PartitionState) -> None:
        clock = {k: [_finite(w.watermark), _finite(w.closed_horizon)] for k, w in st.windows.items()}
        self._write(partition, f"{partition}|c", orjson.dumps(clock))

    # -- closing -----------------------------------------------------------------------------
    async def close_due(self, caught_up: bool) -> None:
        """Timer: close what wall-clock time made due on quiet partitions. Only while the worker
        is caught up on its inputs: a partition that sees no events because the worker is busy
        with a backlog is not quiet, and closing its windows would make the backlog late."""
        if self.app.rebalancing:
            return
        async with self._lock:
            now = time.time() if caught_up else None
            for partition, st in list(self.states.items()):
                await self._close(partition, st, now)

    async def _close(self, partition: int, st: PartitionState, wall_now: float | None = None) -> None:
        rollups: list[Rollup] = []
        changed = False
        for kind, w in st.windows.items():
            before = w.closed_horizon
            closed = w.close_due(wall_now)
            if closed:
                closed_at = datetime.now(UTC)
                for c in closed:
                    ws, series = c.key
                    agg = c.aggregate
                    stats = agg.summary(c.spec.size_s) if kind == "engagement_update" else agg.summary()
                    rollups.append(Rollup(
                        kind=kind, workspace_id=ws, series_key=series, series=orjson.loads(series),
                        window_s=c.spec.size_s, step_s=c.spec.step, window_start=_ts(c.start), window_end=_ts(c.end),
                        closed_at=closed_at, stats=stats,
                    ))
                metrics.WINDOWS_CLOSED.labels(kind).inc(len(closed))
            if w.closed_horizon != before:
                changed = True
                # panes no window needs any more
                for pane in [p for p in st.upto if p[0] == kind and p[2] not in w.panes.get(p[1], ())]:
                    del st.upto[pane]
                    _, (ws, series), ps = pane
                    self._write(partition, f"{partition}|p|{kind}|{ws}|{ps!r}|{series}", None)
        if rollups:
            await self._emit(rollups)
        if changed:
            self._put_clock(partition, st)
            horizon = st.windows["engagement_update"].watermark
            for sk in [sk for sk, s in st.snaps.items() if s.t < horizon - SNAPSHOT_TTL_S]:
                del st.snaps[sk]
                self._write(partition, f"{partition}|s|{sk[0]}|{sk[1]}", None)

    async def _emit(self, rollups: list[Rollup]) -> None:
        pool = await self._pool.get()

        async def write() -> int:
            async with pool.acquire() as conn:
                return await write_rollups(conn, rollups)

        await self._retrying(f"writing {len(rollups)} rollups", write)
        futures = [
            await self.rollups_topic.send(key=str(r.workspace_id).encode(), value=orjson.dumps(r.model_dump(mode="json")))
            for r in rollups
        ]
        for fut in futures:
            await fut
        await self.alerts.windows_closed(rollups)

    # -- recovery ----------------------------------------------------------------------------
    def _active(self) -> set[int]:
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.input.get_topic_name()}

    async def _recovered(self) -> None:
        """After Faust restored the table (start, rebalance): rebuild panes, offsets, snapshots and
        clocks of the partitions this worker now owns, from the table."""
        async with self._lock:
            active = self._active()
            now = time.time()
            states: dict[int, PartitionState] = {p: self._new_state() for p in active}
            clocks: dict[int, dict] = {}
            for k, v in list(self.table.data.items()):
                text = k.decode()
                p = int(text.split("|", 1)[0])
                if p not in active:
                    self.table.data.pop(k, None)  # another worker's now (local copy only)
                    continue
                if v is None:
                    continue
                st = states[p]
                tag = text.split("|", 2)[1]
                d = orjson.loads(v)
                if tag == "p":
                    _, _, kind, ws, ps, series = text.split("|", 5)
                    agg = AGGREGATES[kind].from_bytes(d["a"].encode())
                    st.windows[kind].set_pane((ws, series), float(ps), agg)
                    st.upto[(kind, (ws, series), float(ps))] = d["u"]
                elif tag == "s":
                    _, _, ws, series = text.split("|", 3)
                    st.snaps[(ws, series)] = Snapshot(d["t"], d["c"], d["u"])
                elif tag == "c":
                    clocks[p] = d
            for p, clock in clocks.items():
                for kind, (wm, ch) in clock.items():
                    states[p].windows[kind].restore(_inf(wm), _inf(ch), now)
            self.states = states
            panes = sum(len(st.upto) for st in states.values())
            log.info("window state recovered: partitions %s, %d panes", sorted(active), panes)
        # in the background: the rules may not be loaded yet, and recovery must not wait for them
        # (closed windows wait in alerts.windows_closed until this is done)
        self.alerts.taking_up(lambda ws: workspace_partition(str(ws), self.partitions) in active)

    def report(self) -> None:
        for kind in AGGREGATES:
            metrics.OPEN_PANES.labels(kind).set(sum(
                len(p) for st in self.states.values() for p in st.windows[kind].panes.values()))


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _inf(x: float | None) -> float:
    return -math.inf if x is None else x
