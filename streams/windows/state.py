"""The window stage's state per window-input partition, and its changelog records (issue #4). Pure:
no Faust, no Kafka, no database; the stage (stage.py) does the I/O around it.

* `fold`: one decoded window-input batch (input.py) in; the state changed (panes, offsets,
  snapshots, what the next flush must write) and the late events out.
* `close_windows`: the windows the horizon closed, as rollups, and the pane groups no window needs
  any more (their records are tombstoned).
* The changelog records: each kind's key and value encoded and decoded side by side below, and
  `restore` to rebuild the states from the records Faust restored. The records are read back after
  a restart or an upgrade, so their bytes do not change (pinned by tests/unit/windows/test_formats.py).

Exactly once into windows: each pane remembers, per source partition, the last source offset folded
into it, and an item at or below that mark is skipped (a redelivery: the worker died after sending
it to window-input but before committing the source offset); an engagement snapshot does the same
per post. The marks are written to the changelog with the panes, in the same record.

An engagement update changes two records, its pane (the gain) and its post's snapshot (the counters
the next gain is taken from). A flush writes a partition's pane records before its snapshot records,
and Kafka keeps a producer's records of a partition in order, so a worker that dies mid-flush leaves
a prefix: panes newer than snapshots, never the reverse. On redelivery the snapshot's mark is below
the update and the pane's is not: the update moves the snapshot as it did the first time, and the
pane does not count its gain twice (issue #23, item 5).
"""

from __future__ import annotations

import heapq
import logging
import math
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from schemas.rollups import Rollup, series_key
from streams.sizing import ItemTooLarge, pack
from streams.windows.input import WindowInput
from streams.windows.panes import (
    COUNTERS,
    EngagementAggregate,
    LearningAggregate,
    MetricAggregate,
    Windower,
    WindowSpec,
    engagement_delta,
)

log = logging.getLogger("learnstream.windowing")

#: kind -> the aggregate of its panes
AGGREGATES: dict[str, type] = {
    "performance_sample": MetricAggregate,
    "learning_event": LearningAggregate,
    "engagement_update": EngagementAggregate,
}

#: an engagement snapshot older than this (event time) behind the watermark is forgotten
SNAPSHOT_TTL_S = 7 * 86400.0

#: a partition keeps at most this many engagement snapshots (the oldest by event time are forgotten
#: first): bounded by count as well as by time, whatever the number of posts (issue #23 item 12)
SNAPSHOT_MAX = 50_000

#: engagement snapshots of a workspace are kept in this many changelog records
SNAPSHOT_BUCKETS = 64

#: closed windows that receive late events are recomputed per hour of window start
RECOMPUTE_BUCKET_S = 3600.0


def snapshot_bucket(series: str) -> int:
    """The changelog record (of its workspace's SNAPSHOT_BUCKETS) that holds a post's snapshot."""
    return zlib.crc32(series.encode()) % SNAPSHOT_BUCKETS


def iso(t: float) -> str:
    """Epoch seconds as ISO 8601 (UTC)."""
    return datetime.fromtimestamp(t, UTC).isoformat()


@dataclass
class Snapshot:
    """A post's latest cumulative counters (engagement deltas are taken against it)."""

    time: float
    counters: dict[str, int]
    #: source "topic:partition" -> the last offset folded into this snapshot
    offsets: dict[str, int] = field(default_factory=dict)


# Below, a pane is named by (kind, (workspace, series key), pane start), and a pane group, the
# panes of one changelog record, by (kind, workspace, pane start).


@dataclass
class PartitionState:
    """What the window stage holds for one window-input partition."""

    #: kind -> its windows (panes keyed by (workspace, series key))
    windows: dict[str, Windower]
    #: pane -> {source "topic:partition": the last offset folded into it}
    offsets: dict[tuple, dict[str, int]] = field(default_factory=dict)
    #: (workspace, series key) -> engagement snapshot
    snapshots: dict[tuple[str, str], Snapshot] = field(default_factory=dict)
    #: (workspace, bucket) -> series with a snapshot there: one changelog record each
    snapshot_buckets: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    #: pane group -> series with a pane there: one changelog record each
    pane_groups: dict[tuple, set[str]] = field(default_factory=dict)
    #: changed since the last flush to the changelog
    dirty_panes: set[tuple] = field(default_factory=set)
    dirty_snapshots: set[tuple[str, str]] = field(default_factory=set)
    clock_dirty: bool = False
    #: (kind, workspace) -> starts of the hours (RECOMPUTE_BUCKET_S) of closed windows that late
    #: events reached: recomputed from the stored rows by the stage, kept in the changelog meanwhile
    recompute: dict[tuple[str, str], set[float]] = field(default_factory=dict)
    dirty_recompute: set[tuple[str, str]] = field(default_factory=set)
    #: (kind, workspace, hour) marked since the stage began recomputing that hour (in memory only):
    #: events stored while it computed, which its query may not have seen - the hour stays pending
    remarked: set[tuple[str, str, float]] = field(default_factory=set)
    #: changelog key -> how many records it was last written as (a large value is split)
    record_parts: dict[str, int] = field(default_factory=dict)


def new_state(specs: tuple[WindowSpec, ...], idle_s: float) -> PartitionState:
    return PartitionState({kind: Windower(specs, aggregate, idle_s) for kind, aggregate in AGGREGATES.items()})


# -- folding ------------------------------------------------------------------------------------


class Folded(NamedTuple):
    """What folding a batch produced besides the state it changed."""

    #: the items too late for some of their windows, as late-events items (the LateEvent contract)
    late: list[dict]
    #: items skipped as already folded (redeliveries)
    duplicates: int
    #: engagement counters that went down
    resets: int


def fold(state: PartitionState, batch: WindowInput, now: float, max_future_s: float) -> Folded:
    """Fold one window-input batch (one workspace's events of one kind). The batch is one step of
    event time: every item in it is judged late or not against the horizon before it, then the
    watermark moves to its newest event, never past `now` + `max_future_s` (one event from the
    future would make every later one late: the ingest refuses such events, this holds for any
    writer of window-input). What changed is marked dirty for the next flush."""
    kind, workspace, topic = batch["k"], batch["w"], batch["t"]
    windower = state.windows[kind]
    performance = kind == "performance_sample"
    learning = kind == "learning_event"
    dirty_snapshots: set[tuple[str, str]] = set()
    late: list[dict] = []
    snapshot_marks: dict[tuple, int] = {}  # (series, source) -> a snapshot's offset mark as it was before this batch
    duplicates = resets = 0
    watermark_before = windower.watermark
    pane_of, pane_offsets = windower.pane_of, state.offsets.get
    source_names: dict[int, str] = {}  # source partition -> "topic:partition"
    series_keys: dict[tuple, str] = {}  # canonical series keys, made once per batch
    pane_values: dict[tuple, list] = {}  # ((workspace, series), pane start) -> values
    pane_items: dict[tuple, list] = {}  # ((workspace, series), pane start) -> (source, offset, time, id, partition)
    newest = -math.inf
    for item in batch["i"]:
        # the layouts of input.ITEMS, unpacked (cheaper than building them)
        if learning:
            (source_partition, offset), event_time, event, is_error = item
        else:
            (source_partition, offset), event_time, event = item
        source = source_names.get(source_partition)
        if source is None:
            source = source_names[source_partition] = f"{topic}:{source_partition}"
        if performance:
            event_id, metric_name, tags, sample_value = event
            raw = (metric_name, tuple(tags.items()))
            series = series_keys.get(raw)
            if series is None:
                series = series_keys[raw] = series_key({"metric_name": metric_name, "tags": tags})
            value: Any = sample_value
        elif learning:
            event_id, event_type, source_system, processing_time_ms = event
            raw = (event_type, source_system)
            series = series_keys.get(raw)
            if series is None:
                series = series_keys[raw] = series_key({"event_type": event_type, "source_system": source_system})
            value = (is_error, processing_time_ms)
        else:
            event_id, content_id, platform, connector_id, views, likes, shares, comments, saves = event
            raw = (content_id, platform, connector_id)
            series = series_keys.get(raw)
            if series is None:
                series = series_keys[raw] = series_key(
                    {"content_id": content_id, "platform": platform, "connector_id": connector_id})
            counters = dict(zip(COUNTERS, (views, likes, shares, comments, saves)))
            snapshot = state.snapshots.get((workspace, series))
            if snapshot is not None:
                mark = snapshot_marks.get((series, source))
                if mark is None:
                    mark = snapshot_marks[(series, source)] = snapshot.offsets.get(source, -1)
                if offset <= mark:
                    duplicates += 1
                    continue
            if snapshot is None:
                snapshot = state.snapshots[(workspace, series)] = Snapshot(event_time, counters)
                state.snapshot_buckets.setdefault((workspace, snapshot_bucket(series)), set()).add(series)
                snapshot_marks[(series, source)] = -1
                value = (event_time, counters, {}, 0)
            elif event_time < snapshot.time:  # an older snapshot arriving late: counted, no deltas from it
                value = (event_time, counters, {}, 0)
            else:
                delta = engagement_delta(snapshot.counters, counters)
                value = (event_time, counters, delta.deltas, len(delta.resets))
                resets += len(delta.resets)
                # the snapshot keeps each counter's high-water mark: after a bad scrape that
                # went down, the next good one gains only what is new
                snapshot.time = event_time
                snapshot.counters = {c: max(n, snapshot.counters.get(c, 0)) for c, n in counters.items()}
            snapshot.offsets[source] = offset
            dirty_snapshots.add((workspace, series))
        pane_start = pane_of(event_time)
        pane = ((workspace, series), pane_start)
        # an engagement update its pane has already (a flush torn after the panes, before the
        # snapshots) moved the snapshot above as it did the first time, and stops here
        done = pane_offsets((kind, pane[0], pane_start))
        if done is not None and offset <= done.get(source, -1):
            duplicates += 1
            continue
        values = pane_values.get(pane)
        if values is None:
            values = pane_values[pane] = []
            pane_items[pane] = []
        values.append(value)
        pane_items[pane].append((source, offset, event_time, event_id, source_partition))
        if event_time > newest:
            newest = event_time
    marks_of: dict[tuple, dict[str, int]] = {}
    watermark_iso = received = None
    for pane, values in pane_values.items():
        key, pane_start = pane
        missed = windower.add_many(key, pane_start, values)
        if missed:  # the LateEvent contract, built without per-event validation (hot when a replay is late)
            hours = state.recompute.get((kind, workspace))
            if hours is None:
                hours = state.recompute[(kind, workspace)] = set()
            for _, start in missed:
                hour = math.floor(start / RECOMPUTE_BUCKET_S) * RECOMPUTE_BUCKET_S
                hours.add(hour)
                state.remarked.add((kind, workspace, hour))
            state.dirty_recompute.add((kind, workspace))
            if watermark_iso is None:
                watermark_iso, received = iso(windower.watermark), iso(now)
            gone = [{"window_s": spec.size_s, "step_s": spec.step, "window_start": iso(start)}
                    for spec, start in missed]
            for _source, offset, event_time, event_id, source_partition in pane_items[pane]:
                late.append({
                    "kind": kind, "workspace_id": workspace, "event_id": event_id, "event_time": iso(event_time),
                    "source_topic": topic, "partition": source_partition, "offset": offset,
                    "watermark": watermark_iso, "missed": gone, "received_at": received,
                })
        if pane_start in windower.panes.get(key, ()):
            marks = marks_of[(kind, key, pane_start)] = {}
            for source, offset, *_ in pane_items[pane]:
                marks[source] = offset  # a source partition's items come in offset order
    windower.advance(min(newest, now + max_future_s), now)
    for pane, marks in marks_of.items():
        _, key, pane_start = pane
        if pane_start not in windower.panes.get(key, ()):
            continue  # closed and dropped within this very batch (the watermark moved on)
        state.offsets.setdefault(pane, {}).update(marks)
        state.dirty_panes.add(pane)
        state.pane_groups.setdefault((kind, key[0], pane_start), set()).add(key[1])
    state.dirty_snapshots |= dirty_snapshots
    if windower.watermark != watermark_before:
        state.clock_dirty = True
    return Folded(late, duplicates, resets)


# -- closing ------------------------------------------------------------------------------------


class Closing(NamedTuple):
    #: the windows closed, as rollups, in close order per kind
    rollups: list[Rollup]
    #: kind -> how many windows of it closed
    closed: dict[str, int]
    #: pane groups left without panes: their records are to be tombstoned
    emptied_groups: list[tuple]
    #: whether any pane was dropped (the clock is then written before the tombstones)
    dropped: bool


def _utc_now() -> datetime:
    return datetime.now(UTC)


def close_windows(state: PartitionState, wall_now: float | None = None,
                  clock: Callable[[], datetime] = _utc_now) -> Closing:
    """The windows the horizon closed (moved on by `wall_now` on a quiet partition, see
    panes.Windower), as rollups closed at `clock()`; forget the panes no window needs any more."""
    rollups: list[Rollup] = []
    closed_counts: dict[str, int] = {}
    emptied: list[tuple] = []
    dropped = False
    for kind, windower in state.windows.items():
        closed = windower.close_due(wall_now)
        if closed:
            closed_at = clock()
            for window in closed:
                workspace, series = window.key
                aggregate = window.aggregate
                stats = aggregate.summary(window.spec.size_s) if kind == "engagement_update" else aggregate.summary()
                rollups.append(Rollup(
                    kind=kind, workspace_id=workspace, series_key=series, series=orjson.loads(series),
                    window_s=window.spec.size_s, step_s=window.spec.step, window_start=_ts(window.start),
                    window_end=_ts(window.end), closed_at=closed_at, stats=stats,
                ))
            closed_counts[kind] = len(closed)
        if windower.dropped:  # panes no window needs any more
            dropped = True
            for key, pane_start in windower.dropped:
                if state.offsets.pop((kind, key, pane_start), None) is not None:
                    state.dirty_panes.discard((kind, key, pane_start))
                    group = (kind, key[0], pane_start)
                    members = state.pane_groups.get(group)
                    if members is not None:
                        members.discard(key[1])
                        if not members:  # a pane start's panes all close together
                            del state.pane_groups[group]
                            emptied.append(group)
            windower.dropped.clear()
    return Closing(rollups, closed_counts, emptied, dropped)


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def forget_old_snapshots(state: PartitionState) -> set[tuple[str, int]]:
    """Drop the engagement snapshots older than SNAPSHOT_TTL_S behind the watermark; returns the
    (workspace, bucket) records to rewrite."""
    horizon = state.windows["engagement_update"].watermark
    old = [key for key, snapshot in state.snapshots.items() if snapshot.time < horizon - SNAPSHOT_TTL_S]
    for key in old:
        del state.snapshots[key]
    state.dirty_snapshots.update(old)  # their records rewritten by the next flush, after its panes
    return {(workspace, snapshot_bucket(series)) for workspace, series in old}


def forget_excess_snapshots(state: PartitionState, limit: int = SNAPSHOT_MAX) -> set[tuple[str, int]]:
    """Drop the oldest engagement snapshots (event time) beyond `limit`; returns the (workspace,
    bucket) records to rewrite. A post forgotten so counts its next update as its first (no gains
    from it), as one quiet for SNAPSHOT_TTL_S does."""
    excess = len(state.snapshots) - limit
    if excess <= 0:
        return set()
    old = heapq.nsmallest(excess, state.snapshots, key=lambda key: state.snapshots[key].time)
    for key in old:
        del state.snapshots[key]
    state.dirty_snapshots.update(old)  # their records rewritten by the next flush, after its panes
    return {(workspace, snapshot_bucket(series)) for workspace, series in old}


# -- the changelog records ------------------------------------------------------------------------
# Keys are text, `<partition>|<tag>|...` (the partition first: a worker keeps the records of the
# partitions it owns); values are JSON. A record kind whose value is a map of entries may be split
# over `key`, `key|1`, `key|2`, ... when it would not fit in one message (`record_writes`).
#
# One record per pane group (kind, workspace, pane start) holds every series' pane there, and one
# per (workspace, bucket) holds a share of its engagement snapshots: a flush writes a few records,
# not one per series (each Faust send costs more than the bytes it carries).

PANES, SNAPSHOTS, RECOMPUTE, CLOCK = "g", "s", "r", "c"
#: tag -> how many `|`-separated fields a key of that kind has (a split part's number follows)
_KEY_FIELDS = {PANES: 5, SNAPSHOTS: 4, RECOMPUTE: 4, CLOCK: 2}
#: the record kinds written by `record_writes` (the clock is one record, never split)
_SPLITTABLE = {PANES, SNAPSHOTS, RECOMPUTE}


class RecordKey(NamedTuple):
    partition: int
    tag: str
    #: the fields after the tag
    fields: list[str]
    #: the key without the number of its split part
    base: str
    #: which part of a split record (0: the first, or the whole)
    part: int


def parse_key(text: str) -> RecordKey:
    fields = text.split("|")
    width = _KEY_FIELDS.get(fields[1], len(fields))
    part = int(fields[width]) if len(fields) > width else 0
    return RecordKey(int(fields[0]), fields[1], fields[2:width], "|".join(fields[:width]), part)


# panes: `<partition>|g|<kind>|<workspace>|<pane start, repr>` ->
#   {series key: {"a": the aggregate's to_bytes() as text, "u": {source "topic:partition": last offset folded}}}

def panes_key(partition: int, group: tuple) -> str:
    kind, workspace, pane_start = group
    return f"{partition}|{PANES}|{kind}|{workspace}|{pane_start!r}"


def panes_value(state: PartitionState, group: tuple) -> dict:
    kind, workspace, pane_start = group
    panes = state.windows[kind].panes
    value = {}
    for series in state.pane_groups.get(group, ()):
        aggregate = panes.get((workspace, series), {}).get(pane_start)
        if aggregate is not None:
            value[series] = {"a": aggregate.to_bytes().decode(),
                             "u": state.offsets[(kind, (workspace, series), pane_start)]}
    return value


def restore_panes(state: PartitionState, kind: str, workspace: str, pane_start: float, value: dict) -> None:
    for series, pane in value.items():
        state.windows[kind].set_pane((workspace, series), pane_start, AGGREGATES[kind].from_bytes(pane["a"].encode()))
        state.offsets[(kind, (workspace, series), pane_start)] = pane["u"]
        state.pane_groups.setdefault((kind, workspace, pane_start), set()).add(series)


# snapshots: `<partition>|s|<workspace>|<bucket>` ->
#   {series key: {"t": event time, "c": {counter: value}, "u": {source "topic:partition": last offset folded}}}

def snapshots_key(partition: int, bucket: tuple[str, int]) -> str:
    workspace, number = bucket
    return f"{partition}|{SNAPSHOTS}|{workspace}|{number}"


def snapshots_value(state: PartitionState, bucket: tuple[str, int]) -> dict:
    """The bucket's snapshots (forgetting the series whose snapshot is gone)."""
    workspace, _ = bucket
    members = state.snapshot_buckets.get(bucket, set())
    value = {}
    for series in list(members):
        snapshot = state.snapshots.get((workspace, series))
        if snapshot is None:
            members.discard(series)
        else:
            value[series] = {"t": snapshot.time, "c": snapshot.counters, "u": snapshot.offsets}
    if not members:
        state.snapshot_buckets.pop(bucket, None)
    return value


def restore_snapshots(state: PartitionState, workspace: str, value: dict) -> None:
    for series, snapshot in value.items():
        state.snapshots[(workspace, series)] = Snapshot(snapshot["t"], snapshot["c"], snapshot["u"])
        state.snapshot_buckets.setdefault((workspace, snapshot_bucket(series)), set()).add(series)


# recompute: `<partition>|r|<kind>|<workspace>` -> {hour start (repr): 1}

def recompute_key(partition: int, kind_workspace: tuple[str, str]) -> str:
    kind, workspace = kind_workspace
    return f"{partition}|{RECOMPUTE}|{kind}|{workspace}"


def recompute_value(state: PartitionState, kind_workspace: tuple[str, str]) -> dict:
    return dict.fromkeys(map(repr, sorted(state.recompute.get(kind_workspace) or ())), 1)


def restore_recompute(state: PartitionState, kind: str, workspace: str, value: dict) -> None:
    state.recompute.setdefault((kind, workspace), set()).update(map(float, value))


# clock: `<partition>|c` -> {kind: [watermark, closed horizon]} (null: -infinity); one record, never split

def clock_key(partition: int) -> str:
    return f"{partition}|{CLOCK}"


def clock_value(state: PartitionState) -> bytes:
    return orjson.dumps({kind: [_finite(w.watermark), _finite(w.closed_horizon)] for kind, w in state.windows.items()})


def read_clock(value: dict) -> dict[str, tuple[float, float]]:
    """kind -> (watermark, closed horizon)."""
    return {kind: (_infinite(watermark), _infinite(horizon)) for kind, (watermark, horizon) in value.items()}


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _infinite(x: float | None) -> float:
    return -math.inf if x is None else x


def record_writes(state: PartitionState, key: str, value: dict, budget: int,
                  too_large: list[str] | None = None) -> list[tuple[str, bytes | None]]:
    """The (key, value or None: a tombstone) records that write a map record: one, or, when it would
    not fit in `budget` bytes, split by its entries over `key`, `key|1`, `key|2`, ...; an empty one
    (and any parts a larger version used) is tombstoned. Remembers how many parts it has now.

    No entry is larger than a message by construction (a pane's sketch is bounded: panes.py; the
    worker refuses budgets below sizing.MIN_BUDGET; tests/unit/windows/test_bounded_sketch.py);
    should one be all the same, it is left out of the record, logged and its entry name appended to
    `too_large`, and the others are written: a flush never fails for what a message carried."""
    before = state.record_parts.get(key, 1)
    if not value:
        parts: list[bytes] = []
    else:
        encode = lambda entries: orjson.dumps(dict(entries))  # noqa: E731
        room = budget - len(key) - 8
        try:
            parts = [v for _, v in pack(list(value.items()), encode, room)]
        except ItemTooLarge:
            kept = []
            for entry in value.items():
                size = len(encode([entry]))
                if size <= room:
                    kept.append(entry)
                else:
                    log.error("changelog record %s: entry %.200s encodes to %d bytes, more than the %d a "
                              "message may carry; left out of the record (kept in memory)", key, entry[0], size, room)
                    if too_large is not None:
                        too_large.append(entry[0])
            if not kept:
                return []  # nothing to write: the record as last written stays
            parts = [v for _, v in pack(kept, encode, room)]
    writes: list[tuple[str, bytes | None]] = [(key if n == 0 else f"{key}|{n}", part) for n, part in enumerate(parts)]
    writes += [(f"{key}|{n}", None) for n in range(max(1, len(parts)), before)]
    if not parts:
        writes.append((key, None))
        state.record_parts.pop(key, None)
    else:
        state.record_parts[key] = len(parts)
    return writes


# -- restoring ----------------------------------------------------------------------------------


class Restored(NamedTuple):
    #: window-input partition -> its state
    states: dict[int, PartitionState]
    #: keys of records of partitions not owned (the caller drops its local copies)
    foreign: list[bytes]
    #: (partition, key) of map records to tombstone: panes of times no event may have now
    stale: list[tuple[int, str]]


def restore(records: Iterable[tuple[bytes, bytes | None]], owned: set[int], new: Callable[[], PartitionState],
            now: float, earliest: float, max_future_s: float) -> Restored:
    """Rebuild the states of the `owned` partitions from their changelog records (key, value; None:
    deleted), as of wall clock `now`. Heals state from before the acceptance window (times earlier
    than `earliest` - 1 day or later than `now` + `max_future_s`), logging what it heals."""
    states: dict[int, PartitionState] = {p: new() for p in owned}
    clocks: dict[int, dict] = {}
    foreign: list[bytes] = []
    stale: list[tuple[int, str]] = []
    for raw_key, raw_value in records:
        key = parse_key(raw_key.decode())
        if key.partition not in owned:
            foreign.append(raw_key)  # another worker's now
            continue
        if raw_value is None:
            continue
        state = states[key.partition]
        if key.tag in _SPLITTABLE:  # a record split over key, key|1, ...: remember how many parts there are
            state.record_parts[key.base] = max(state.record_parts.get(key.base, 1), key.part + 1)
        value = orjson.loads(raw_value)
        if key.tag == RECOMPUTE:
            kind, workspace = key.fields
            restore_recompute(state, kind, workspace, value)
        elif key.tag == PANES:
            kind, workspace, pane_start_text = key.fields
            pane_start = float(pane_start_text)
            if not earliest - 86400 <= pane_start <= now + max_future_s:
                # healing state from before the acceptance window: a pane of a time no event may
                # have now (year 1, year 2999) is dropped
                log.warning("partition %d: dropping a %s pane at %s, outside the accepted times",
                            key.partition, kind, pane_start_text)
                stale.append((key.partition, key.base))
                continue
            restore_panes(state, kind, workspace, pane_start, value)
        elif key.tag == SNAPSHOTS:
            restore_snapshots(state, key.fields[0], value)
        elif key.tag == CLOCK:
            clocks[key.partition] = value
    ceiling = now + max_future_s
    for partition, clock in clocks.items():
        for kind, (watermark, horizon) in read_clock(clock).items():
            if watermark > ceiling or horizon > ceiling:
                # healing state from before the acceptance window (issue #8): a watermark an event
                # from the future had moved makes every later event late; it is set back to the
                # clock (events older than that are late, and their windows recomputed from the
                # stored rows), and the windows of that far-off time are gone
                log.warning("partition %d: %s watermark %s is in the future; set back to %s",
                            partition, kind, iso(watermark), iso(now))
                watermark, horizon = min(watermark, now), min(horizon, now)
                states[partition].clock_dirty = True
            states[partition].windows[kind].restore(watermark, horizon, now)
    return Restored(states, foreign, stale)
