"""The window stage (issue #4): stored events -> event-time windows in a changelog-backed Faust
table -> closed windows as rollup rows, rollup messages and alert-engine input.

Flow:
1. The ingest consumer (streams/ingest/consumer.py), once a batch is stored, sends its stored events in compact form to
   the internal `window-input` topic, one message per workspace per batch, on the partition that
   workspace hashes to (`workspace_partition`). So every series of a workspace - and every alert
   rule of it - lives on exactly one worker, whatever the producers' keys were. A batch's window
   messages are sent only after the previous batch's were (per source topic), so each source
   partition's events reach the window stage in offset order.
2. The window agent folds each event into its pane (streams/windows/panes.py) and writes the changed
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter, methodcaller
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from typing_extensions import TypedDict

import faust
import orjson
from pydantic import Field, TypeAdapter, ValidationError

from db.pool import SharedPool
from db.rollups import recompute_windows, upsert_rollups, write_rollups
from db.tables import TABLES
from schemas.alerts import AlertCommand
from schemas.events import DeadLetter, DeadLetterError
from schemas.rollups import Rollup, series_key
from streams import metrics
from streams.alerts.runtime import AlertRuntime
from streams.config import Settings
from streams.retry import PermanentFailure, Retrier
from streams.dead_letters import DeadLetters, envelope
from streams.sizing import ItemTooLarge, MessageLimits, fits, pack
from streams.windows.panes import (
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


#: engagement snapshots of a workspace are kept in this many changelog records
SNAPSHOT_BUCKETS = 64


def _bucket(series: str) -> int:
    return zlib.crc32(series.encode()) % SNAPSHOT_BUCKETS


#: closed windows that receive late events are recomputed per hour of window start
RECOMPUTE_BUCKET_S = 3600.0


# -- 1. ingest side: stored rows -> window-input messages --------------------------------------


def _getter(kind: str) -> Callable[[tuple], tuple]:
    """row -> (id, ...the kind's fields), by a C-level itemgetter; orjson writes the UUIDs in C."""
    cols = TABLES[kind].columns
    fields = {
        "performance_sample": ("metric_name", "tags", "value"),
        "learning_event": ("event_type", "source_system", "processing_time_ms"),
        "engagement_update": ("content_id", "platform", "connector_id", *COUNTERS),
    }[kind]
    return itemgetter(0, *(cols.index(f) for f in fields))


_GETTERS = {kind: _getter(kind) for kind in TABLES}
_TIMESTAMP = methodcaller("timestamp")


def window_messages(
    kind: str, rows: list[tuple], origin: list[int], messages: Sequence, partitions: int, budget: int = 999_488,
) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) window-input messages for the stored `rows` of one batch
    (`origin[i]`: the index in `messages` of the message rows[i] came from). Each item is
    [[source partition, source offset], event time (epoch seconds), [id, ...kind's fields]] (+ the
    error flag of a learning event). Built with C-level map/zip/itemgetter: no Python code per row but a dict
    lookup when the batch holds several workspaces."""
    if not rows:
        return []
    cols = TABLES[kind].columns
    sources = [(m.partition, m.offset) for m in messages]
    evs = map(_GETTERS[kind], rows)
    wheres = map(sources.__getitem__, origin)
    times = map(_TIMESTAMP, map(itemgetter(TABLES[kind].time_index), rows))
    if kind == "learning_event":
        flags = map(is_learning_error, map(itemgetter(cols.index("event_subtype")), rows),
                    map(itemgetter(cols.index("event_data")), rows))
        items = list(zip(wheres, times, evs, flags))
    else:
        items = list(zip(wheres, times, evs))
    workspaces = list(map(itemgetter(cols.index("workspace_id")), rows))
    first = workspaces[0]
    if workspaces.count(first) == len(workspaces):
        by_ws: dict[Any, list] = {first: items}
    else:
        by_ws = {}
        for ws, item in zip(workspaces, items):
            group = by_ws.get(ws)
            if group is None:
                group = by_ws[ws] = []
            group.append(item)
    topic = messages[0].topic
    out = []
    for ws, group in by_ws.items():
        w = str(ws)
        part = workspace_partition(w, partitions)
        key = w.encode()
        for _, value in pack(group, lambda items: orjson.dumps({"k": kind, "w": w, "t": topic, "i": items}),
                             budget - len(key)):
            out.append((part, key, value))
    return out


# what a window-input message may hold: validated on read (whoever wrote it), so that folding it
# cannot fail half-way through on its content
_Source = tuple[int, int]
_Time = Annotated[float, Field(allow_inf_nan=False)]
_ITEMS = {
    "performance_sample": TypeAdapter(list[tuple[_Source, _Time, tuple[str, str, dict[str, str], _Time]]]),
    "learning_event": TypeAdapter(list[tuple[_Source, _Time, tuple[str, str, str | None, int | None], bool]]),
    "engagement_update": TypeAdapter(list[tuple[_Source, _Time, tuple[str, str, str, str | None,
                                                                     int, int, int, int, int]]]),
}


class _Input(TypedDict):
    k: Literal["performance_sample", "learning_event", "engagement_update"]
    w: str
    t: str
    i: list[Any]


_INPUT = TypeAdapter(_Input)


def parse_input(value: bytes) -> dict:
    """A window-input message, validated (ValidationError: set it aside). Commands pass as they are."""
    msg = orjson.loads(value)
    if isinstance(msg, dict) and "cmd" in msg:
        return msg
    msg = _INPUT.validate_python(msg)
    msg["i"] = _ITEMS[msg["k"]].validate_python(msg["i"])
    return msg


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
    #: (workspace, bucket) -> series with a snapshot there: one changelog record each
    snap_buckets: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    #: (kind, workspace, pane start) -> series with a pane there: one changelog record each
    groups: dict[tuple, set[str]] = field(default_factory=dict)
    #: changed since the last flush to the changelog
    dirty_panes: set[tuple] = field(default_factory=set)
    dirty_snaps: set[tuple[str, str]] = field(default_factory=set)
    clock_dirty: bool = False
    #: (kind, workspace) -> starts of the hours (RECOMPUTE_BUCKET_S) of closed windows that late
    #: events reached: recomputed from the stored rows (`recompute`), kept in the changelog meanwhile
    recompute: dict[tuple[str, str], set[float]] = field(default_factory=dict)
    dirty_recompute: set[tuple[str, str]] = field(default_factory=set)
    #: changelog key -> how many records it was last written as (a large value is split)
    chunks: dict[str, int] = field(default_factory=dict)


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


class WindowStage:
    def __init__(self, app: faust.App, settings: Settings, pool: SharedPool, alerts: AlertRuntime,
                 dead_letters: DeadLetters, limits: MessageLimits | None = None) -> None:
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
        self._acks: list[Callable[[], Awaitable[Any]]] = []
        self._dead_letters = dead_letters
        self._retrying = Retrier(settings.db_retry_initial_s, settings.db_retry_max_s)
        limits = limits or MessageLimits(max_request_size=settings.producer_max_request_size)
        self.budgets = {
            "input": limits.budget(settings.window_input_topic),
            "late": limits.budget(settings.late_events_topic),
            "rollups": limits.budget(settings.rollups_topic),
            "changelog": limits.budget(f"{settings.app_id}-windows-changelog"),
        }
        self.max_future_s = settings.timestamp_max_future_s
        self.earliest = settings.timestamp_earliest.timestamp()

    def _new_state(self) -> PartitionState:
        return PartitionState({k: Windower(self.specs, agg, self.settings.window_idle_s) for k, agg in AGGREGATES.items()})

    # -- ingest side -------------------------------------------------------------------------
    async def send_stored(self, kind: str, rows: list[tuple], origin: list[int], messages: Sequence) -> None:
        """Send a batch's stored rows to window-input; returns when the broker has them all."""
        out = window_messages(kind, rows, origin, messages, self.partitions, self.budgets["input"])
        await self._send_all(f"sending {len(out)} window-input messages", self.input, out)

    async def _send_all(self, what: str, topic, messages: list[tuple[int | None, bytes, bytes]]) -> None:
        """Produce (partition, key, value) messages and wait until the broker has them all; broker
        outages are retried (a retry may repeat a message: every consumer of these is idempotent)."""

        name = topic.get_topic_name()
        send = self.app.producer.send  # the producer itself: Faust's Topic.send costs more than the bytes

        async def attempt() -> None:
            futures = [await send(name, k, v, p, None, None) for p, k, v in messages]
            for fut in futures:
                await fut

        if messages:
            await self._retrying(what, attempt)

    async def relay_command(self, message) -> None:
        """An alert-commands message -> window-input on its workspace's partition (or the DLQ)."""
        try:
            cmd = AlertCommand.model_validate_json(message.value or b"")
        except ValidationError as exc:
            reason = "invalid_json" if any(e["type"] == "json_invalid" for e in exc.errors()) else "schema"
            errors = [DeadLetterError(reason=reason, path=".".join(map(str, e["loc"])), message=e["msg"])
                      for e in exc.errors()]
            letter = envelope(message, errors, datetime.now(UTC))
            await self._dead_letters([letter])
            metrics.INVALID_EVENTS.labels(message.topic, reason).inc()
            return
        w = str(cmd.workspace_id)
        await self._send_all("relaying an alert command", self.input, [
            (workspace_partition(w, self.partitions), w.encode(), orjson.dumps({"cmd": cmd.model_dump(mode="json")}))])

    # -- window agent ------------------------------------------------------------------------
    async def process(self, message, ack: Callable[[], Awaitable[Any]]) -> None:
        """Fold a window-input message. `ack` is called once what it changed is in the changelog
        (see `flush`), so a crash before that redelivers it. A message that cannot be folded
        (malformed, or failing the stage for what it carries) is dead-lettered and acknowledged:
        the stream goes on."""
        partition = message.partition
        async with self._lock:
            self._acks.append(ack)
            try:
                msg = parse_input(message.value or b"")
            except (orjson.JSONDecodeError, ValidationError) as exc:
                await self._set_aside(message, "schema", f"not a window-input message: {_short(exc)}")
                return
            try:
                if "cmd" in msg:
                    await self.alerts.command(AlertCommand.model_validate(msg["cmd"]))
                    return
                st = self.states.get(partition)
                if st is None:
                    st = self.states[partition] = self._new_state()
                now = time.time()
                msg = await self._accepted(message, msg, now)
                late = self._fold(partition, st, msg, now)
                if late:
                    # late-events messages: JSON arrays of LateEvent, split to fit
                    key = msg["w"].encode()
                    parts = pack(late, orjson.dumps, self.budgets["late"] - len(key))
                    await self._send_all(f"sending {len(late)} late events", self.late_topic,
                                         [(None, key, v) for _, v in parts])
                    metrics.LATE_EVENTS.labels(msg["k"]).inc(len(late))
                    log.info("%d late %s events of %s on partition %d (watermark %s); their windows will be "
                             "recomputed", len(late), msg["k"], msg["w"], partition, late[0]["watermark"])
                await self._close(partition, st)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - what it carries broke the stage: set it aside
                log.exception("window stage failed on %s[%d]@%d; dead-lettered, going on",
                              message.topic, message.partition, message.offset)
                await self._set_aside(message, "window_stage", f"{exc.__class__.__name__}: {_short(exc)}")

    async def _set_aside(self, message, reason: str, text: str) -> None:
        log.warning("window-input %s[%d]@%d set aside (%s): %s", message.topic, message.partition, message.offset,
                    reason, text[:300])
        letter = envelope(message, [DeadLetterError(reason=reason, message=text)], datetime.now(UTC), stage="windows")
        await self._dead_letters([letter])
        metrics.STAGE_FAILURES.labels("windows", reason).inc()

    async def _accepted(self, message, msg: dict, now: float) -> dict:
        """Items timed outside the acceptance window (the ingest sinks refuse those already; this
        holds against any other writer of window-input) are dead-lettered, the rest kept."""
        items = msg["i"]
        if not items:
            return msg
        times = list(map(itemgetter(1), items))
        lo, hi = self.earliest, now + self.max_future_s
        if min(times) >= lo and max(times) <= hi:
            return msg
        kept = [it for it in items if lo <= it[1] <= hi]
        bad = len(items) - len(kept)
        await self._set_aside(message, "timestamp_out_of_range",
                              f"{bad} of {len(items)} items timed outside [{_iso(lo)}, now + {self.max_future_s:g} s]")
        return {**msg, "i": kept}

    def _fold(self, partition: int, st: PartitionState, msg: dict, now: float) -> list[dict]:
        """Fold one window-input message (a batch of one workspace's events of one kind). The
        message is one step of event time: every event in it is judged late or not against the
        horizon before it, then the watermark moves to its newest event."""
        kind, ws, src = msg["k"], msg["w"], msg["t"]
        w = st.windows[kind]
        engagement = kind == "engagement_update"
        learning = kind == "learning_event"
        dirty_snaps: set[tuple[str, str]] = set()
        late: list[dict] = []
        seen_upto: dict[tuple, int] = {}  # a snapshot's offset mark as it was before this message
        duplicates = resets = 0
        wm_before = w.watermark
        pane_of, upto_get = w.pane_of, st.upto.get
        tps: dict[int, str] = {}
        series_of: dict[tuple, str] = {}  # canonical series keys, made once per message
        groups: dict[tuple, list] = {}  # (key, pane start) -> values
        members: dict[tuple, list] = {}  # (key, pane start) -> (source "topic:partition", offset, time, id)
        t_max = -math.inf
        for it in msg["i"]:
            (sp, off), t, ev = it[0], it[1], it[2]
            tp = tps.get(sp)
            if tp is None:
                tp = tps[sp] = f"{src}:{sp}"
            if kind == "performance_sample":
                raw = (ev[1], tuple(ev[2].items()))
                series = series_of.get(raw)
                if series is None:
                    series = series_of[raw] = series_key({"metric_name": ev[1], "tags": ev[2]})
                value: Any = ev[3]
            elif learning:
                raw = (ev[1], ev[2])
                series = series_of.get(raw)
                if series is None:
                    series = series_of[raw] = series_key({"event_type": ev[1], "source_system": ev[2]})
                value = (it[3], ev[3])
            else:
                raw = (ev[1], ev[2], ev[3])
                series = series_of.get(raw)
                if series is None:
                    series = series_of[raw] = series_key(
                        {"content_id": ev[1], "platform": ev[2], "connector_id": ev[3]})
                cur = dict(zip(COUNTERS, ev[4:9]))
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
                    st.snap_buckets.setdefault((ws, _bucket(series)), set()).add(series)
                    seen_upto[(series, tp)] = -1
                    value = (t, cur, {}, 0)
                elif t < snap.t:  # an older snapshot arriving late: counted, no deltas from it
                    value = (t, cur, {}, 0)
                else:
                    d = engagement_delta(snap.counters, cur)
                    value = (t, cur, d.deltas, len(d.resets))
                    resets += len(d.resets)
                    # the snapshot keeps each counter's high-water mark: after a bad scrape that
                    # went down, the next good one gains only what is new
                    snap.t = t
                    snap.counters = {c: max(n, snap.counters.get(c, 0)) for c, n in cur.items()}
                snap.upto[tp] = off
                dirty_snaps.add((ws, series))
            ps = pane_of(t)
            gk = ((ws, series), ps)
            if not engagement:
                done = upto_get((kind, gk[0], ps))
                if done is not None and off <= done.get(tp, -1):
                    duplicates += 1
                    continue
            g = groups.get(gk)
            if g is None:
                g = groups[gk] = []
                members[gk] = []
            g.append(value)
            members[gk].append((tp, off, t, ev[0], sp))
            if t > t_max:
                t_max = t
        pending: dict[tuple, dict[str, int]] = {}
        wm_iso = received = None
        for gk, values in groups.items():
            key, ps = gk
            missed = w.add_many(key, ps, values)
            if missed:  # the LateEvent contract, built without per-event validation (hot when a replay is late)
                hours = st.recompute.get((kind, ws))
                if hours is None:
                    hours = st.recompute[(kind, ws)] = set()
                for _, start in missed:
                    hours.add(math.floor(start / RECOMPUTE_BUCKET_S) * RECOMPUTE_BUCKET_S)
                st.dirty_recompute.add((kind, ws))
                if wm_iso is None:
                    wm_iso, received = _iso(w.watermark), _iso(now)
                gone = [{"window_s": sp_.size_s, "step_s": sp_.step, "window_start": _iso(start)} for sp_, start in missed]
                for tp, off, t, eid, sp in members[gk]:
                    late.append({
                        "kind": kind, "workspace_id": ws, "event_id": eid, "event_time": _iso(t), "source_topic": src,
                        "partition": sp, "offset": off, "watermark": wm_iso, "missed": gone, "received_at": received,
                    })
            if ps in w.panes.get(key, ()):
                marks = pending[(kind, key, ps)] = {}
                for tp, off, *_ in members[gk]:
                    marks[tp] = off  # a source partition's items come in offset order
        # never past the wall clock + the allowed skew (one event from the future would make every
        # later one late): the ingest refuses such events, this holds for any writer of window-input
        w.advance(min(t_max, now + self.max_future_s), now)
        if duplicates:
            metrics.WINDOW_DUPLICATES.labels(kind).inc(duplicates)
        if resets:
            metrics.ENGAGEMENT_RESETS.inc(resets)
        # what changed is written to the changelog by the next flush
        for pane, marks in pending.items():
            _, key, ps = pane
            if ps not in w.panes.get(key, ()):
                continue  # closed and dropped within this very message (the watermark moved on)
            st.upto.setdefault(pane, {}).update(marks)
            st.dirty_panes.add(pane)
            st.groups.setdefault((kind, key[0], ps), set()).add(key[1])
        st.dirty_snaps |= dirty_snaps
        if w.watermark != wm_before:
            st.clock_dirty = True
        return late

    async def flush(self) -> None:
        """Timer: write the panes, snapshots and clocks changed since the last flush to the
        changelog (each once, however many messages changed it), then acknowledge the messages
        folded meanwhile. Faust flushes the producer before it commits their offsets."""
        async with self._lock:
            for partition, st in self.states.items():
                for group in {(kind, key[0], ps) for kind, key, ps in st.dirty_panes}:
                    self._put_group(partition, st, group)
                for bucket in {(ws, _bucket(series)) for ws, series in st.dirty_snaps}:
                    self._put_snaps(partition, st, bucket)
                if st.clock_dirty:
                    self._put_clock(partition, st)
                for kw in st.dirty_recompute:
                    self._put_recompute(partition, st, kw)
                st.dirty_panes, st.dirty_snaps, st.clock_dirty, st.dirty_recompute = set(), set(), False, set()
            acks, self._acks = self._acks, []
        for ack in acks:
            await ack()

    # -- table writes (changelog) -------------------------------------------------------------
    def _write(self, partition: int, key: str, value: bytes | None) -> None:
        k = key.encode()
        if value is None:
            self.table.data.pop(k, None)
            self.table.send_changelog(partition, k, None, value_serializer="raw")
        else:
            self.table.data[k] = value
            self.table.send_changelog(partition, k, value)

    def _write_map(self, partition: int, st: PartitionState, key: str, value: dict) -> None:
        """A JSON object as one changelog record `key`, or, when it would not fit in one message,
        split by its entries over `key`, `key|1`, `key|2`, ...; an empty one (and any records a
        larger version used) is tombstoned."""
        before = st.chunks.get(key, 1)
        if not value:
            parts: list[bytes] = []
        else:
            budget = self.budgets["changelog"] - len(key) - 8
            parts = [v for _, v in pack(list(value.items()), lambda items: orjson.dumps(dict(items)), budget)]
        for n, part in enumerate(parts):
            self._write(partition, key if n == 0 else f"{key}|{n}", part)
        for n in range(max(1, len(parts)), before):
            self._write(partition, f"{key}|{n}", None)
        if not parts:
            self._write(partition, key, None)
            st.chunks.pop(key, None)
        else:
            st.chunks[key] = len(parts)

    # One changelog record per (kind, workspace, pane start) holds every series' pane there, and
    # one per (workspace, bucket) holds a share of its engagement snapshots: a flush writes a few
    # records, not one per series (each Faust send costs more than the bytes it carries).
    def _put_group(self, partition: int, st: PartitionState, group: tuple) -> None:
        kind, ws, ps = group
        panes = st.windows[kind].panes
        value = {}
        for series in st.groups.get(group, ()):
            agg = panes.get((ws, series), {}).get(ps)
            if agg is not None:
                value[series] = {"a": agg.to_bytes().decode(), "u": st.upto[(kind, (ws, series), ps)]}
        self._write_map(partition, st, f"{partition}|g|{kind}|{ws}|{ps!r}", value)

    def _put_snaps(self, partition: int, st: PartitionState, bucket: tuple[str, int]) -> None:
        ws, b = bucket
        members = st.snap_buckets.get(bucket, set())
        value = {}
        for series in list(members):
            snap = st.snaps.get((ws, series))
            if snap is None:
                members.discard(series)
            else:
                value[series] = {"t": snap.t, "c": snap.counters, "u": snap.upto}
        if not members:
            st.snap_buckets.pop(bucket, None)
        self._write_map(partition, st, f"{partition}|s|{ws}|{b}", value)

    def _put_recompute(self, partition: int, st: PartitionState, kw: tuple[str, str]) -> None:
        hours = st.recompute.get(kw)
        self._write_map(partition, st, f"{partition}|r|{kw[0]}|{kw[1]}", dict.fromkeys(map(repr, sorted(hours or ())), 1))

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
        tombstones: list[tuple] = []
        dropped = False
        for kind, w in st.windows.items():
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
            if w.dropped:  # panes no window needs any more
                dropped = True
                for key, ps in w.dropped:
                    if st.upto.pop((kind, key, ps), None) is not None:
                        st.dirty_panes.discard((kind, key, ps))
                        members = st.groups.get((kind, key[0], ps))
                        if members is not None:
                            members.discard(key[1])
                            if not members:  # a pane start's panes all close together
                                del st.groups[(kind, key[0], ps)]
                                tombstones.append((kind, key[0], ps))
                w.dropped.clear()
        if rollups or dropped:
            # the clock before the tombstones: recovered with the clock but without a tombstone,
            # a closed window is not closed twice
            self._put_clock(partition, st)
        for group in tombstones:
            self._write_map(partition, st, f"{partition}|g|{group[0]}|{group[1]}|{group[2]!r}", {})
        if rollups:
            await self._emit(rollups)

    def forget_old_snapshots(self) -> None:
        """Drop engagement snapshots older than SNAPSHOT_TTL_S behind their partition's watermark."""
        for partition, st in self.states.items():
            horizon = st.windows["engagement_update"].watermark
            old = [sk for sk, snap in st.snaps.items() if snap.t < horizon - SNAPSHOT_TTL_S]
            for sk in old:
                del st.snaps[sk]
            for bucket in {(ws, _bucket(series)) for ws, series in old}:
                self._put_snaps(partition, st, bucket)

    async def _emit(self, rollups: list[Rollup]) -> None:
        pool = await self._pool.get()

        async def write(some: list[Rollup]) -> int:
            async with pool.acquire() as conn:
                return await write_rollups(conn, some)

        try:
            await self._retrying(f"writing {len(rollups)} rollups", lambda: write(rollups))
        except PermanentFailure:  # some window's values: write them one by one, set aside what fails
            kept = []
            for r in rollups:
                try:
                    await self._retrying("writing a rollup", lambda r=r: write([r]))
                    kept.append(r)
                except PermanentFailure as exc:
                    await self._set_aside_rollup(r, "database_rejected", str(exc))
            rollups = kept
        rollups = await self._publish_rollups(rollups)
        await self.alerts.windows_closed(rollups, self._set_aside_rollup)

    async def _publish_rollups(self, rollups: list[Rollup]) -> list[Rollup]:
        """Publish to the rollups topic (each within its budget: one that is not is dead-lettered)."""
        out, sent = [], []
        for r in rollups:
            key = str(r.workspace_id).encode()
            try:
                out.append((None, key, fits(dict(r), self.budgets["rollups"] - len(key))))
                sent.append(r)
            except ItemTooLarge as exc:
                await self._set_aside_rollup(r, "window_stage", str(exc))
        await self._send_all(f"publishing {len(out)} rollups", self.rollups_topic, out)
        return sent

    async def _set_aside_rollup(self, r: Rollup, reason: str, text: str, stage: str = "windows") -> None:
        """A closed window the stage could not store or publish, as a dead letter (value: the rollup)."""
        letter = DeadLetter(
            source_topic=self.settings.rollups_topic, partition=-1, offset=-1, key=str(r.workspace_id),
            key_encoding="utf-8", value=orjson.dumps(r.model_dump(mode="json")).decode(), value_encoding="utf-8",
            errors=[DeadLetterError(reason=reason, message=text)], received_at=datetime.now(UTC), stage=stage,
        )
        await self._dead_letters([letter])
        metrics.STAGE_FAILURES.labels(stage, reason).inc()

    # -- corrections ---------------------------------------------------------------------------
    async def recompute(self) -> int:
        """Timer: recompute, from the stored rows, the closed windows that late events reached (a
        backfill, a producer catching up), `recompute_max_hours` hours of one (kind, workspace)
        per transaction; write the changed ones with revision + 1 and publish them as corrections.
        Alerts do not see corrections. Returns the windows corrected."""
        if self.app.rebalancing:
            return 0
        todo: list[tuple[int, str, str, list[float], float]] = []
        async with self._lock:
            for partition, st in self.states.items():
                for (kind, ws), hours in st.recompute.items():
                    todo.append((partition, kind, ws, sorted(hours), st.windows[kind].closed_horizon))
        corrected = 0
        step = self.settings.recompute_max_hours
        for partition, kind, ws, hours, horizon in todo:
            if not math.isfinite(horizon):
                continue
            for i in range(0, len(hours), step):
                chunk = hours[i:i + step]
                corrected += await self._recompute_hours(kind, ws, chunk, horizon)
                async with self._lock:
                    st = self.states.get(partition)
                    if st is None:
                        break  # the partition moved meanwhile: its new owner recomputes from the changelog
                    left = st.recompute.get((kind, ws))
                    if left is not None:
                        left.difference_update(chunk)
                        if not left:
                            del st.recompute[(kind, ws)]
                        st.dirty_recompute.add((kind, ws))
                    self.report_recompute()
        return corrected

    async def _recompute_hours(self, kind: str, ws: str, hours: list[float], horizon: float) -> int:
        pool = await self._pool.get()
        rollups: list[Rollup] = []
        for lo, hi in _runs(hours, RECOMPUTE_BUCKET_S):
            async def compute(lo=lo, hi=hi) -> list[Rollup]:
                async with pool.acquire() as conn:
                    found = await recompute_windows(
                        conn, kind, ws, _ts(lo), _ts(hi), [(s.size_s, s.step) for s in self.specs],
                        self.settings.window_grace_s, _ts(horizon), datetime.now(UTC))
                    return await upsert_rollups(conn, found) if found else []
            try:
                rollups += await self._retrying(f"recomputing {kind} windows of {ws}", compute)
            except PermanentFailure as exc:
                log.error("recomputing %s windows of %s in [%s, %s) failed for good: %s", kind, ws,
                          _iso(lo), _iso(hi), exc)
                metrics.STAGE_FAILURES.labels("windows", "recompute").inc()
        if rollups:
            await self._publish_rollups(rollups)
            metrics.WINDOWS_RECOMPUTED.labels(kind).inc(len(rollups))
        log.info("recomputed %s windows of %s in %d hours from %s: %d corrected", kind, ws, len(hours),
                 _iso(hours[0]), len(rollups))
        return len(rollups)

    def report_recompute(self) -> None:
        for kind in AGGREGATES:
            metrics.RECOMPUTE_PENDING.labels(kind).set(sum(
                len(h) for st in self.states.values() for (k, _), h in st.recompute.items() if k == kind))

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
            stale: list[tuple[int, str]] = []
            for k, v in list(self.table.data.items()):
                text = k.decode()
                p = int(text.split("|", 1)[0])
                if p not in active:
                    self.table.data.pop(k, None)  # another worker's now (local copy only)
                    continue
                if v is None:
                    continue
                st = states[p]
                parts = text.split("|")
                tag = parts[1]
                # a record split over key, key|1, ... (see _write_map): remember how many there are
                width = {"g": 5, "s": 4, "r": 4}.get(tag)
                if width is not None:
                    base = "|".join(parts[:width])
                    n = int(parts[width]) + 1 if len(parts) > width else 1
                    st.chunks[base] = max(st.chunks.get(base, 1), n)
                d = orjson.loads(v)
                if tag == "r":
                    st.recompute.setdefault((parts[2], parts[3]), set()).update(map(float, d))
                elif tag == "g":
                    kind, ws, ps_text = parts[2], parts[3], parts[4]
                    ps = float(ps_text)
                    if not self.earliest - 86400 <= ps <= now + self.max_future_s:
                        # healing state from before the acceptance window: a pane of a time no
                        # event may have now (year 1, year 2999) is dropped
                        log.warning("partition %d: dropping a %s pane at %s, outside the accepted times",
                                    p, kind, ps_text)
                        stale.append((p, "|".join(parts[:5])))
                        continue
                    for series, pane in d.items():
                        agg = AGGREGATES[kind].from_bytes(pane["a"].encode())
                        st.windows[kind].set_pane((ws, series), ps, agg)
                        st.upto[(kind, (ws, series), ps)] = pane["u"]
                        st.groups.setdefault((kind, ws, ps), set()).add(series)
                elif tag == "s":
                    ws = parts[2]
                    for series, snap in d.items():
                        st.snaps[(ws, series)] = Snapshot(snap["t"], snap["c"], snap["u"])
                        st.snap_buckets.setdefault((ws, _bucket(series)), set()).add(series)
                elif tag == "c":
                    clocks[p] = d
            ceiling = now + self.max_future_s
            for p, clock in clocks.items():
                for kind, (wm, ch) in clock.items():
                    wm, ch = _inf(wm), _inf(ch)
                    if wm > ceiling or ch > ceiling:
                        # healing state from before the acceptance window (issue #8): a watermark an
                        # event from the future had moved makes every later event late; it is set
                        # back to the clock (events older than that are late, and their windows
                        # recomputed from the stored rows), and the windows of that far-off time are gone
                        log.warning("partition %d: %s watermark %s is in the future; set back to %s",
                                    p, kind, _iso(wm), _iso(now))
                        wm, ch = min(wm, now), min(ch, now)
                        states[p].clock_dirty = True
                    states[p].windows[kind].restore(wm, ch, now)
            self.states = states
            for p, key in stale:
                self._write_map(p, states[p], key, {})
            self._acks = []  # folded but not flushed: Faust redelivers them from the committed offset
            panes = sum(len(st.upto) for st in states.values())
            log.info("window state recovered: partitions %s, %d panes", sorted(active), panes)
        # in the background: the rules may not be loaded yet, and recovery must not wait for them
        # (closed windows wait in alerts.windows_closed until this is done)
        self.alerts.taking_up(lambda ws: workspace_partition(str(ws), self.partitions) in active)

    def report(self) -> None:
        for kind in AGGREGATES:
            metrics.OPEN_PANES.labels(kind).set(sum(
                len(p) for st in self.states.values() for p in st.windows[kind].panes.values()))


def _runs(starts: list[float], width: float) -> list[tuple[float, float]]:
    """Sorted bucket starts -> [lo, hi) ranges of consecutive buckets."""
    out: list[list[float]] = []
    for h in starts:
        if out and out[-1][1] == h:
            out[-1][1] = h + width
        else:
            out.append([h, h + width])
    return [(lo, hi) for lo, hi in out]


def _short(exc: BaseException, limit: int = 2000) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "…"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _inf(x: float | None) -> float:
    return -math.inf if x is None else x
