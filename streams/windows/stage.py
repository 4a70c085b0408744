"""The window stage (issue #4), its Faust side: stored events -> event-time windows in a
changelog-backed Faust table -> closed windows as rollup rows, rollup messages and alert-engine input.
The wire format of its input is streams/windows/input.py; the state it keeps per partition, the fold
and the changelog records are streams/windows/state.py (pure); the pane math is panes.py. This
module does the I/O: the agents' work, the timers' work, the table and its changelog, storing and
publishing rollups, the hand-off to the alert engine, dead letters.

Flow:
1. The ingest consumer (streams/ingest/consumer.py), once a batch is stored, sends its stored events
   (`send_stored`) to the internal `window-input` topic, one message per workspace per batch, on the
   partition that workspace hashes to. A batch's window messages are sent only after the previous
   batch's were (per source topic), so each source partition's events reach the window stage in
   offset order.
2. The window agent (`process`) folds each message into its partition's panes (state.fold); the
   flush timer (`flush`) writes the changed panes, snapshots and clocks to the Faust table `windows`
   (changelog topic `<app id>-windows-changelog`, partitioned like window-input) and only then
   acknowledges the messages folded meanwhile. After a restart or a rebalance, Faust replays the
   changelog and the stage rebuilds its states from the table (`_recovered`, state.restore).
3. Exactly once into windows: each pane remembers, per source partition, the last source offset
   folded into it; an event redelivered (the worker died after sending it to window-input but
   before committing the source offset) is skipped. Engagement snapshots do the same per post.
4. Windows close on event time (watermark past end + grace) or, for a quiet partition, on wall
   clock time (`close_due`). A closed window is written to its rollup table (idempotent), published
   to the rollups topic and given to the alert engine, and only then are its panes tombstoned.
5. An event later than the grace period of a window goes to the late-events topic and is
   counted; it is never folded into the closed window (it is still stored in its ingest table).
   The closed windows it reached are recomputed from the stored rows (`recompute`).

Alert commands (ack, mute) from the `alert-commands` topic are relayed into window-input on the
workspace's partition (`relay_command`), so the worker that owns the alert instances applies them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from pydantic import ValidationError

from db.pool import SharedPool
from db.rollups import recompute_windows, upsert_rollups, write_rollups
from schemas.alerts import AlertCommand
from schemas.events import DeadLetter, DeadLetterError
from schemas.rollups import Rollup
from streams import metrics
from streams.alerts.runtime import AlertRuntime
from streams.config import Settings
from streams.dead_letters import DeadLetters, envelope
from streams.retry import PermanentFailure, Retrier
from streams.sizing import ItemTooLarge, MessageLimits, fits, pack
from streams.windows import state as windows_state
from streams.windows.input import command_message, item_time, parse_input, window_messages, workspace_partition
from streams.windows.panes import WindowSpec
from streams.windows.state import PartitionState

log = logging.getLogger("learnstream.windowing")


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class WindowStage:
    """The window stage of one worker: the window-input partitions it owns, their states, and the
    table that keeps them. Every change to the states happens under one lock (the agents and the
    timers run on one event loop)."""

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
        #: window-input partition -> the last offset handed to `process` since the last recovery
        self._received: dict[int, int] = {}
        #: window-input partition -> the offset it was sought back to (see _in_order), and when
        self._reseeking: dict[int, int] = {}
        self._reseek_at: dict[int, float] = {}
        self._last_received = time.monotonic()
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

    def new_state(self) -> PartitionState:
        return windows_state.new_state(self.specs, self.settings.window_idle_s)

    # -- ingest side -------------------------------------------------------------------------
    async def send_stored(self, kind: str, rows: list[tuple], origin: list[int], messages: Sequence) -> None:
        """Send a batch's stored rows to window-input; returns when the broker has them all."""
        out = window_messages(kind, rows, origin, messages, self.partitions, self.budgets["input"])
        await self._send_all(f"sending {len(out)} window-input messages", self.input, out)

    async def _send_all(self, what: str, topic, messages: list[tuple[int | None, bytes, bytes]]) -> None:
        """Produce (partition, key, value) messages and wait until the broker has them all; broker
        outages are retried (a retry may repeat a message: every consumer of these is idempotent).

        Messages of one key to one partition (a workspace's chunks of a batch) land in their order:
        they go in waves, the n-th of each key in the n-th wave, and a wave is retried whole before
        the next starts. (Retrying the whole list after a partial failure let a later chunk land
        before an earlier one, whose items the pane's high-water source offset then skipped.)"""

        name = topic.get_topic_name()
        send = self.app.producer.send  # the producer itself: Faust's Topic.send costs more than the bytes

        for wave in send_waves(messages):
            async def attempt(wave: list[tuple[int | None, bytes, bytes]] = wave) -> None:
                futures = [await send(name, k, v, p, None, None) for p, k, v in wave]
                for fut in futures:
                    await fut

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
        await self._send_all("relaying an alert command", self.input, [command_message(cmd, self.partitions)])

    # -- window agent ------------------------------------------------------------------------
    async def process(self, message, ack: Callable[[], Awaitable[Any]]) -> None:
        """Fold a window-input message. `ack` is called once what it changed is in the changelog
        (see `flush`), so a crash before that redelivers it. A message that cannot be folded
        (malformed, or failing the stage for what it carries) is dead-lettered and acknowledged:
        the stream goes on."""
        partition = message.partition
        if not await self._in_order(message):
            return  # neither folded nor acknowledged: sought back, it comes again in order
        async with self._lock:
            self._acks.append(ack)
            try:
                batch = parse_input(message.value or b"")
            except (orjson.JSONDecodeError, ValidationError) as exc:
                await self._set_aside(message, "schema", f"not a window-input message: {_short(exc)}")
                return
            try:
                if "cmd" in batch:
                    await self.alerts.command(AlertCommand.model_validate(batch["cmd"]))
                    return
                state = self.states.get(partition)
                if state is None:
                    state = self.states[partition] = self.new_state()
                now = time.time()
                batch = await self._accepted(message, batch, now)
                late = self.fold(state, batch, now)
                if late:
                    # late-events messages: JSON arrays of LateEvent, split to fit
                    key = batch["w"].encode()
                    parts = pack(late, orjson.dumps, self.budgets["late"] - len(key))
                    await self._send_all(f"sending {len(late)} late events", self.late_topic,
                                         [(None, key, v) for _, v in parts])
                    metrics.LATE_EVENTS.labels(batch["k"]).inc(len(late))
                    log.info("%d late %s events of %s on partition %d (watermark %s); their windows will be "
                             "recomputed", len(late), batch["k"], batch["w"], partition, late[0]["watermark"])
                await self._close(partition, state)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # what it carries broke the stage: set it aside
                log.exception("window stage failed on %s[%d]@%d; dead-lettered, going on",
                              message.topic, message.partition, message.offset)
                await self._set_aside(message, "window_stage", f"{exc.__class__.__name__}: {_short(exc)}")

    async def _in_order(self, message) -> bool:
        """Whether `message` follows what this partition delivered before. Window-input offsets
        have no holes, so a message past the next one expected (one past the last received, or the
        committed offset after a recovery) means the consumer skipped some: Faust can drop messages
        it fetched around a recovery while its position moves on (faust-streaming #216, #221). The
        partition is then sought back to the first one missing, and the messages that arrive before
        it are passed over (not acknowledged: they come again after it). A seek Faust undoes (a
        batch it was delivering goes on past it) is repeated by `resume_undelivered`. Should this
        fail, the message is taken as it is (out of order is better than a stopped agent)."""
        partition, offset = message.partition, message.offset
        try:
            waiting = self._reseeking.get(partition)
            if waiting is not None:
                if offset != waiting:
                    _forget_gaps(self.app.consumer, message.tp, waiting)
                    return False
                del self._reseeking[partition]
                _forget_gaps(self.app.consumer, message.tp, waiting)
            else:
                received = self._received.get(partition)
                expected = received + 1 if received is not None else self.app.consumer._committed_offset.get(message.tp)
                if expected is not None and offset > expected:
                    if await self._seek_back(message.tp, expected, offset) != offset:
                        return False
        except asyncio.CancelledError:
            raise
        except Exception:  # the order check must not stop the agent
            log.exception("window-input partition %d: checking the order of offset %d failed; taken as it is",
                          partition, offset)
        self._last_received = time.monotonic()
        if offset > self._received.get(partition, -1):
            self._received[partition] = offset
        return True

    async def _seek_back(self, tp, expected: int, seen: int) -> int:
        """Seek `tp` back to `expected`, the first offset the stage has not received (`seen`: the
        first offset past the hole; None: unknown) - or to the partition's earliest offset when
        retention deleted the ones before it, which are gone. Returns the offset sought (`seen`
        itself: no seek, that message is the next there is)."""
        consumer = self.app.consumer
        earliest = (await consumer.earliest_offsets(tp)).get(tp)
        if earliest is not None and expected < earliest:
            log.error("window-input partition %d: offsets %d..%d were deleted (retention) before the window stage "
                      "read them; going on from %d", tp.partition, expected, earliest - 1, earliest)
            metrics.STAGE_FAILURES.labels("windows", "input_deleted").inc()
            expected = earliest
            if seen == earliest:
                return seen
        log.warning("window-input partition %d: offsets %d..%s were skipped by the consumer; seeking back to %d",
                    tp.partition, expected, "?" if seen is None else seen - 1, expected)
        metrics.WINDOW_INPUT_RESEEKS.inc()
        self._reseeking[tp.partition] = expected
        self._reseek_at[tp.partition] = time.monotonic()
        _forget_gaps(consumer, tp, expected)
        await consumer.seek(tp, expected)
        return expected

    async def _set_aside(self, message, reason: str, text: str) -> None:
        log.warning("window-input %s[%d]@%d set aside (%s): %s", message.topic, message.partition, message.offset,
                    reason, text[:300])
        letter = envelope(message, [DeadLetterError(reason=reason, message=text)], datetime.now(UTC), stage="windows")
        await self._dead_letters([letter])
        metrics.STAGE_FAILURES.labels("windows", reason).inc()

    async def _accepted(self, message, batch: dict, now: float) -> dict:
        """Items timed outside the acceptance window (the ingest sinks refuse those already; this
        holds against any other writer of window-input) are dead-lettered, the rest kept."""
        items = batch["i"]
        if not items:
            return batch
        times = list(map(item_time, items))
        lo, hi = self.earliest, now + self.max_future_s
        if min(times) >= lo and max(times) <= hi:
            return batch
        kept = [item for item in items if lo <= item_time(item) <= hi]
        bad = len(items) - len(kept)
        await self._set_aside(message, "timestamp_out_of_range",
                              f"{bad} of {len(items)} items timed outside "
                              f"[{windows_state.iso(lo)}, now + {self.max_future_s:g} s]")
        return {**batch, "i": kept}

    def fold(self, state: PartitionState, batch: dict, now: float) -> list[dict]:
        """Fold one window-input batch into a partition's state (state.fold) and count what it
        skipped; returns its late events."""
        folded = windows_state.fold(state, batch, now, self.max_future_s)
        if folded.duplicates:
            metrics.WINDOW_DUPLICATES.labels(batch["k"]).inc(folded.duplicates)
        if folded.resets:
            metrics.ENGAGEMENT_RESETS.inc(folded.resets)
        return folded.late

    async def flush(self) -> None:
        """Timer: write the panes, snapshots and clocks changed since the last flush to the
        changelog (each record once, however many messages changed it), then acknowledge the
        messages folded meanwhile. Faust flushes the producer before it commits their offsets.
        A partition's pane records go before its snapshot records: a flush cut short leaves panes
        newer than snapshots, which a redelivery repairs (state.py, "exactly once")."""
        async with self._lock:
            for partition, state in self.states.items():
                for group in {(kind, key[0], pane_start) for kind, key, pane_start in state.dirty_panes}:
                    self._write_panes(partition, state, group)
                for bucket in {(workspace, windows_state.snapshot_bucket(series))
                               for workspace, series in state.dirty_snapshots}:
                    self._write_snapshots(partition, state, bucket)
                if state.clock_dirty:
                    self._write_clock(partition, state)
                for kind_workspace in state.dirty_recompute:
                    self._write_recompute(partition, state, kind_workspace)
                state.dirty_panes, state.dirty_snapshots, state.dirty_recompute = set(), set(), set()
                state.clock_dirty = False
            acks, self._acks = self._acks, []
        for ack in acks:
            await ack()

    # -- table writes (changelog; the records: state.py) ----------------------------------------
    def _write(self, partition: int, key: str, value: bytes | None) -> None:
        k = key.encode()
        if value is None:
            self.table.data.pop(k, None)
            self.table.send_changelog(partition, k, None, value_serializer="raw")
        else:
            self.table.data[k] = value
            self.table.send_changelog(partition, k, value)

    def _write_record(self, partition: int, state: PartitionState, key: str, value: dict) -> None:
        """A map record, split to fit the changelog's messages (state.record_writes); empty: tombstoned."""
        too_large: list[str] = []
        for k, v in windows_state.record_writes(state, key, value, self.budgets["changelog"], too_large):
            self._write(partition, k, v)
        if too_large:
            metrics.STAGE_FAILURES.labels("windows", "record_too_large").inc(len(too_large))

    def _write_panes(self, partition: int, state: PartitionState, group: tuple, empty: bool = False) -> None:
        """A pane group's record (`empty`: its tombstone)."""
        value = {} if empty else windows_state.panes_value(state, group)
        self._write_record(partition, state, windows_state.panes_key(partition, group), value)

    def _write_snapshots(self, partition: int, state: PartitionState, bucket: tuple[str, int]) -> None:
        value = windows_state.snapshots_value(state, bucket)
        self._write_record(partition, state, windows_state.snapshots_key(partition, bucket), value)

    def _write_recompute(self, partition: int, state: PartitionState, kind_workspace: tuple[str, str]) -> None:
        value = windows_state.recompute_value(state, kind_workspace)
        self._write_record(partition, state, windows_state.recompute_key(partition, kind_workspace), value)

    def _write_clock(self, partition: int, state: PartitionState) -> None:
        self._write(partition, windows_state.clock_key(partition), windows_state.clock_value(state))

    # -- closing -----------------------------------------------------------------------------
    async def close_due(self, caught_up: bool) -> None:
        """Timer: close what wall-clock time made due on quiet partitions. Only while the worker
        is caught up on its inputs: a partition that sees no events because the worker is busy
        with a backlog is not quiet, and closing its windows would make the backlog late."""
        if self.app.rebalancing:
            return
        async with self._lock:
            now = time.time() if caught_up else None
            for partition, state in list(self.states.items()):
                await self._close(partition, state, now)

    async def _close(self, partition: int, state: PartitionState, wall_now: float | None = None) -> None:
        """Emit the windows closed (state.close_windows), then tombstone the records of the pane
        groups they emptied. Stored before their state is dropped: a crash (or an outage) between
        the two recovers the panes, closes the windows again, and the rollup tables keep one row of
        each (write_rollups is idempotent); the other order lost them."""
        closing = windows_state.close_windows(state, wall_now)
        for kind, count in closing.closed.items():
            metrics.WINDOWS_CLOSED.labels(kind).inc(count)
        if closing.rollups:
            await self._emit(closing.rollups)
        if closing.rollups or closing.dropped:
            # the clock before the tombstones: recovered with the clock but without a tombstone,
            # a closed window is not closed twice
            self._write_clock(partition, state)
        for group in closing.emptied_groups:
            self._write_panes(partition, state, group, empty=True)

    def forget_old_snapshots(self) -> None:
        """Drop engagement snapshots older than SNAPSHOT_TTL_S behind their partition's watermark,
        and the oldest beyond SNAPSHOT_MAX a partition."""
        for state in self.states.values():
            # their buckets are rewritten by the next flush, after the panes: written here, a bucket
            # could carry a snapshot changed since the last flush ahead of its pane (a crash then
            # skips the redelivered update by the snapshot's mark, and its gain is lost)
            windows_state.forget_old_snapshots(state)
            windows_state.forget_excess_snapshots(state)

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
            for partition, state in self.states.items():
                for (kind, workspace), hours in state.recompute.items():
                    todo.append((partition, kind, workspace, sorted(hours), state.windows[kind].closed_horizon))
        corrected = 0
        step = self.settings.recompute_max_hours
        for partition, kind, workspace, hours, horizon in todo:
            if not math.isfinite(horizon):
                continue
            for i in range(0, len(hours), step):
                some = hours[i:i + step]
                async with self._lock:
                    state = self.states.get(partition)
                    if state is None:
                        break  # the partition moved meanwhile: its new owner recomputes from the changelog
                    # what late events mark from now on may be rows this query does not see
                    state.remarked.difference_update((kind, workspace, h) for h in some)
                corrected += await self._recompute_hours(kind, workspace, some, horizon)
                async with self._lock:
                    if self.states.get(partition) is not state:
                        break  # the partition moved meanwhile: its new owner recomputes from the changelog
                    left = state.recompute.get((kind, workspace))
                    if left is not None:
                        # an hour marked again while it was computed stays pending (clearing it lost
                        # the windows of rows stored meanwhile: 1,125 of a 90-day backfill's 20,182)
                        again = {h for h in some if (kind, workspace, h) in state.remarked}
                        left.difference_update(set(some) - again)
                        if not left:
                            del state.recompute[(kind, workspace)]
                        state.dirty_recompute.add((kind, workspace))
                    self.report_recompute()
        return corrected

    async def _recompute_hours(self, kind: str, workspace: str, hours: list[float], horizon: float) -> int:
        pool = await self._pool.get()
        rollups: list[Rollup] = []
        for lo, hi in _runs(hours, windows_state.RECOMPUTE_BUCKET_S):
            async def compute(lo=lo, hi=hi) -> list[Rollup]:
                async with pool.acquire() as conn:
                    found = await recompute_windows(
                        conn, kind, workspace, _ts(lo), _ts(hi), [(s.size_s, s.step) for s in self.specs],
                        self.settings.window_grace_s, _ts(horizon), datetime.now(UTC))
                    return await upsert_rollups(conn, found) if found else []
            try:
                rollups += await self._retrying(f"recomputing {kind} windows of {workspace}", compute)
            except PermanentFailure as exc:
                log.error("recomputing %s windows of %s in [%s, %s) failed for good: %s", kind, workspace,
                          windows_state.iso(lo), windows_state.iso(hi), exc)
                metrics.STAGE_FAILURES.labels("windows", "recompute").inc()
        if rollups:
            await self._publish_rollups(rollups)
            metrics.WINDOWS_RECOMPUTED.labels(kind).inc(len(rollups))
        log.info("recomputed %s windows of %s in %d hours from %s: %d corrected", kind, workspace, len(hours),
                 windows_state.iso(hours[0]), len(rollups))
        return len(rollups)

    def report_recompute(self) -> None:
        for kind in windows_state.AGGREGATES:
            metrics.RECOMPUTE_PENDING.labels(kind).set(sum(
                len(hours) for state in self.states.values() for (k, _), hours in state.recompute.items() if k == kind))

    # -- recovery ----------------------------------------------------------------------------
    def _active(self) -> set[int]:
        topic = self.input.get_topic_name()
        return {assigned.partition for assigned in self.app.assignor.assigned_actives() if assigned.topic == topic}

    async def _recovered(self) -> None:
        """After Faust restored the table (start, rebalance): rebuild panes, offsets, snapshots and
        clocks of the partitions this worker now owns, from the table (state.restore)."""
        async with self._lock:
            active = self._active()
            restored = windows_state.restore(list(self.table.data.items()), active, self.new_state, time.time(),
                                             self.earliest, self.max_future_s)
            for key in restored.foreign:
                self.table.data.pop(key, None)  # another worker's now (local copy only)
            self.states = states = restored.states
            for partition, key in restored.stale:
                self._write_record(partition, states[partition], key, {})
            self._acks = []  # folded but not flushed: Faust redelivers them from the committed offset
            self._received, self._reseeking, self._reseek_at = {}, {}, {}
            self._last_received = time.monotonic()
            panes = sum(len(state.offsets) for state in states.values())
            log.info("window state recovered: partitions %s, %d panes", sorted(active), panes)
        # in the background: the rules may not be loaded yet, and recovery must not wait for them
        # (closed windows wait in alerts.windows_closed until this is done)
        self.alerts.taking_up(lambda workspace: workspace_partition(str(workspace), self.partitions) in active)

    # -- input that Faust fetched but never delivered ----------------------------------------------
    async def resume_undelivered(self, idle_s: float) -> list[tuple[int, int, int]]:
        """Timer: seek back a window-input partition whose messages the consumer fetched but never
        handed to the stage (see `_in_order`): one still waiting for the offset it was sought back
        to after `idle_s` (Faust can undo a seek), or - once the stage has received nothing for
        `idle_s`, so the agent's buffer is empty - one whose end lies beyond the next offset it
        expects (one past the last received, or the committed one: a tail never delivered, which
        no later message reveals; proven by test_close_crash). Not while rebalancing. Returns
        (partition, offset sought, end) of each."""
        app = self.app
        if app.rebalancing or not app.flow_control.is_active():
            return []
        now = time.monotonic()
        idle = not self._lock.locked() and now - self._last_received >= idle_s
        consumer = app.consumer
        topic = self.input.get_topic_name()
        committed = consumer._committed_offset  # faust keeps the committed positions (see app.partition_lags)
        sought = []
        for tp in consumer.assignment():
            if tp.topic != topic:
                continue
            waiting = self._reseeking.get(tp.partition)
            if waiting is not None:
                if now - self._reseek_at.get(tp.partition, now) < idle_s:
                    continue
                expected = waiting
            elif not idle:
                continue
            else:
                received = self._received.get(tp.partition)
                expected = max(received + 1 if received is not None else -1, committed.get(tp) or -1)
            try:
                end = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - no fetch yet for this partition
                continue
            if end is None or expected < 0 or expected >= end:
                continue
            sought.append((tp.partition, await self._seek_back(tp, expected, None), end))
        if sought:
            self._last_received = time.monotonic()
        return sought

    def report(self) -> None:
        for kind in windows_state.AGGREGATES:
            metrics.OPEN_PANES.labels(kind).set(sum(
                len(panes) for state in self.states.values() for panes in state.windows[kind].panes.values()))


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


def send_waves(messages: list[tuple[int | None, bytes, bytes]]) -> list[list[tuple[int | None, bytes, bytes]]]:
    """The messages in waves: the n-th message of each (partition, key) in the n-th wave (one wave
    when every key has one message: the usual case)."""
    seen: dict[tuple[int | None, bytes], int] = {}
    waves: list[list[tuple[int | None, bytes, bytes]]] = []
    for m in messages:
        n = seen.get((m[0], m[1]), 0)
        seen[(m[0], m[1])] = n + 1
        if n == len(waves):
            waves.append([])
        waves[n].append(m)
    return waves


def _forget_gaps(consumer, tp, offset: int) -> None:
    """Drop what Faust's consumer noted as gaps at or after `offset` of `tp`. Faust takes a jump in
    a partition's offsets for a gap (transaction markers, compaction) and commits across it as if
    acknowledged; window-input has none, so a jump there is messages it dropped, which the stage
    sought back to and has not folded yet."""
    gaps = getattr(consumer, "_gap", {}).get(tp)
    if gaps:
        gaps.chop(offset, 2**63)
