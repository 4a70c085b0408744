"""The ingest topics' own consumer: Kafka -> batches -> BatchSink -> window stage -> offsets committed.

Faust runs everything else of the worker (the window stage's agent and table, alert commands,
timers), but the high-volume source topics do not go through its per-message Event/Stream path
(docs/ingest.md: one `wait_first` and an Event per message cap it at a few
thousand messages a second). They are read here by one `AIOKafkaConsumer` per worker, in its own
consumer group (`<app id>-ingest`), records handed to the sink a batch at a time.

The guarantees are those the Faust agents gave, kept by hand:
* **At least once, nothing acknowledged lost.** A batch's offsets are committed only once every
  message of it is stored or dead-lettered and its stored events are on window-input, and only
  after every earlier batch of the same topic was committed (batches complete in order per topic:
  each waits for the one before it before it sends to the window stage and commits). A crash before
  that redelivers the batch; the primary key turns the redelivery into skipped duplicates, and
  the window stage skips events it folded already by source offset.
* **Held, never skipped.** A batch that can be neither stored nor set aside (its dead letters
  refused for good by the DLQ, anything else raising out of it) is tried again whole with backoff,
  its offsets and its topic's later ones uncommitted, and /readyz (check `ingest`) names it until
  it goes through: a failed batch never lets later batches be stored but left uncommitted silently.
* **Rebalances.** Before partitions are revoked, the batches in flight are given
  `rebalance_drain_s` to finish and commit; what does not finish is cancelled and not committed
  (the next owner reads it again), and records fetched but not yet batched are dropped (likewise).
  After an assignment, positions start at the group's committed offsets.
* **Flow control.** At most `max_inflight_batches` batches per topic are in flight; a topic whose
  batches are all in flight and which has a full batch waiting is paused (its partitions are not
  fetched), so memory stays bounded while PostgreSQL is slow or away, and the consumer keeps
  polling (its group membership does not lapse during an outage).
* **Batching.** A batch is cut at `batch_max_events` messages or `batch_max_bytes` of values
  (a few thousand events of 1,000-event arrays) or `batch_within_s` after its first message arrived, or as
  soon as the topic has nothing in flight and the fetch brought no more
  (so a trickle is written at once and a flood in large batches).
* **Upgrades.** A partition without a committed offset in the ingest group starts where the app's
  Faust group (which consumed these topics before) committed, if it did.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from db.backoff import Backoff
from db.tables import TABLES
from schemas.events import DeadLetterError
from streams import metrics
from streams.config import Settings
from streams.dead_letters import DeadLetterRefused, DeadLetters, envelope
from streams.ingest.sink import BatchSink
from streams.kafka_auth import kafka_auth
from streams.rebalance import RebalanceHooks
from streams.windows.stage import WindowStage

log = logging.getLogger("learnstream.ingest")


class _Lane:
    """One source topic: its records waiting to form a batch, and its batches in flight, in order."""

    def __init__(self, sink: BatchSink, windowed: bool) -> None:
        self.sink, self.windowed = sink, windowed
        self.pending: list = []
        self.since = 0.0  # monotonic time the oldest pending record arrived
        self.inflight: set[asyncio.Task] = set()
        # resolves True once the last dispatched batch is committed (False: it was cancelled, and
        # no later batch of this topic may commit past it)
        self.previous: asyncio.Future | None = None


@dataclass
class _Held:
    """A batch that failed as a whole and is being tried again (IngestConsumer._handle)."""

    where: str  # "topic T partition P offset O[, partition …]": its first message in each partition
    since: float  # monotonic time of its first failure
    why: str  # its last failure
    attempts: int = 0  # failed attempts after the first


class IngestConsumer:
    """Consumes the source topics (`sinks`: topic name -> its BatchSink) into the sinks."""

    def __init__(self, settings: Settings, sinks: dict[str, BatchSink], stage: WindowStage | None,
                 dead_letters: DeadLetters, group_id: str | None = None, legacy_group_id: str | None = None) -> None:
        self.settings = settings
        self.group_id = group_id or f"{settings.app_id}-ingest"
        self.legacy_group_id = legacy_group_id if legacy_group_id is not None else settings.app_id
        self._lanes = {topic: _Lane(sink, sink.kind in TABLES) for topic, sink in sinks.items()}
        self._stage, self._dead_letters = stage, dead_letters
        self._consumer: AIOKafkaConsumer | None = None
        self._runner: asyncio.Task | None = None
        self._stopping = False
        self._rebalancing = False
        self._committed: dict[TopicPartition, int] = {}
        self._uncommitted: dict[TopicPartition, int] = {}  # stored, but the commit failed: retried
        self._paused: set[str] = set()
        self._held: dict[int, _Held] = {}  # id(batch's chain future) -> the batch held (see _handle)
        self._started = asyncio.Event()
        self._has_assignment = False  # the group gave this member its partitions (maybe none)
        self._last_fetch: float | None = None  # monotonic time the fetch loop last got an answer

    @property
    def topics(self) -> list[str]:
        return list(self._lanes)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            **kafka_auth(s).client_kwargs(),
            group_id=self.group_id,
            client_id=f"{s.app_id}-ingest",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=s.ingest_partition_fetch_bytes,
            fetch_max_bytes=max(s.ingest_partition_fetch_bytes * 4, 52_428_800),
            max_poll_interval_ms=int(max(300.0, 4 * s.rebalance_drain_s) * 1000),
            rebalance_timeout_ms=int(max(60.0, 2 * s.rebalance_drain_s) * 1000),
        )
        await self._adopt_legacy_offsets()
        self._consumer.subscribe(
            self.topics, listener=RebalanceHooks(self.partitions_revoked, self.partitions_assigned)
        )
        await self._consumer.start()
        self._runner = asyncio.ensure_future(self._run())
        self._runner.add_done_callback(self._ended)
        self._started.set()
        log.info("ingest consumer (group %s) started on %s", self.group_id, ", ".join(self.topics))

    async def stop(self, timeout: float | None = None) -> None:
        """Stop fetching; give the batches in flight `timeout` s to be stored and committed, cancel
        the rest (redelivered to the next owner); leave the group."""
        if self._stopping:
            return
        self._stopping = True
        timeout = self.settings.rebalance_drain_s if timeout is None else timeout
        if self._runner is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._runner), 1.0)
            except (TimeoutError, Exception):  # noqa: BLE001 - stopping regardless
                self._runner.cancel()
        if self._consumer is None:
            return
        await self._drain(timeout, "stopping")
        await self._commit_uncommitted()
        try:
            await self._consumer.stop()
        except Exception:  # leaving the group is best effort
            log.warning("ingest consumer did not stop cleanly", exc_info=True)
        log.info("ingest consumer stopped")

    def _ended(self, task: asyncio.Task) -> None:
        """The fetch loop ends only when stopped; if anything else ends it, the worker stops (and
        its orchestrator starts it again) rather than stay up without consuming."""
        if self._stopping or task.cancelled() or task.exception() is None:
            return
        log.critical("the ingest fetch loop failed; stopping the worker", exc_info=task.exception())
        os.kill(os.getpid(), signal.SIGTERM)

    # -- what the lag gauge and the window stage read ----------------------------------------
    def lags(self) -> dict[TopicPartition, int]:
        """Messages between the end of each assigned partition and the group's committed offset
        (partitions whose end is not known yet are left out)."""
        c = self._consumer
        if c is None or self._stopping:
            return {}
        out = {}
        for tp in c.assignment():
            end = c.highwater(tp)
            if end is None:
                continue
            out[tp] = max(0, end - self._committed.get(tp, 0))
        return out

    def status(self) -> dict:
        """What /readyz reads (streams/health.py): started, has its assignment, fetching."""
        c = self._consumer
        running = self._runner is not None and not self._runner.done() and not self._stopping
        return {
            "running": running,
            "assigned": self._has_assignment and not self._rebalancing,
            "partitions": len(c.assignment()) if c is not None and running else 0,
            "last_fetch_age_s": None if self._last_fetch is None else time.monotonic() - self._last_fetch,
            "held": self.held(),
        }

    # -- the fetch loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        s, c = self.settings, self._consumer
        assert c is not None
        within = s.batch_within_s
        while not self._stopping:
            try:
                self._flow()
                fetched = await c.getmany(timeout_ms=self._wait_ms(), max_records=s.batch_max_events)
                self._last_fetch = time.monotonic()
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:  # the broker is away or the group is moving: aiokafka reconnects
                log.warning("ingest fetch failed (%s: %s); retrying", exc.__class__.__name__, exc)
                await asyncio.sleep(0.5)
                continue
            now = time.monotonic()
            for tp, records in fetched.items():
                lane = self._lanes[tp.topic]
                if not lane.pending:
                    lane.since = now
                lane.pending.extend(records)
            if self._rebalancing:  # the listener drains and drops; nothing is dispatched meanwhile
                await asyncio.sleep(0.05)
                continue
            for topic, lane in self._lanes.items():
                while lane.pending and len(lane.inflight) < s.max_inflight_batches:
                    cut = _cut(lane.pending, s.batch_max_events, s.batch_max_bytes)
                    if not (cut < len(lane.pending) or now - lane.since >= within
                            or (not lane.inflight and not any(tp.topic == topic for tp in fetched))):
                        break  # not full, not due, and more may be coming
                    batch, lane.pending = lane.pending[:cut], lane.pending[cut:]
                    lane.since = now
                    self._dispatch(lane, batch)
            if self._uncommitted and not any(lane.inflight for lane in self._lanes.values()):
                await self._commit_uncommitted()

    def _wait_ms(self) -> int:
        """How long the next fetch may wait: until the oldest pending batch is due, 200 ms at most."""
        wait = 0.2
        now = time.monotonic()
        for lane in self._lanes.values():
            if lane.pending:
                if len(lane.inflight) < self.settings.max_inflight_batches:
                    wait = min(wait, max(0.0, lane.since + self.settings.batch_within_s - now))
                else:
                    wait = min(wait, 0.02)  # a slot frees when a batch is stored: look again soon
        return int(wait * 1000)

    def _flow(self) -> None:
        """Pause a topic whose batches are all in flight and which has a full batch waiting."""
        c = self._consumer
        assert c is not None
        full = {t for t, lane in self._lanes.items()
                if len(lane.inflight) >= self.settings.max_inflight_batches
                and _cut(lane.pending, self.settings.batch_max_events, self.settings.batch_max_bytes)
                < len(lane.pending)}
        if full == self._paused:
            return
        assigned = c.assignment()
        pause = [tp for tp in assigned if tp.topic in full - self._paused]
        resume = [tp for tp in assigned if tp.topic in self._paused - full]
        if pause:
            c.pause(*pause)
        if resume:
            c.resume(*resume)
        self._paused = full

    # -- one batch ---------------------------------------------------------------------------
    def _dispatch(self, lane: _Lane, records: list) -> None:
        loop = asyncio.get_event_loop()
        before = lane.previous
        mine: asyncio.Future = loop.create_future()
        lane.previous = mine
        task = asyncio.ensure_future(self._handle(lane, records, before, mine))
        lane.inflight.add(task)
        task.add_done_callback(lane.inflight.discard)

    async def _handle(self, lane: _Lane, records: list, before: asyncio.Future | None, mine: asyncio.Future) -> None:
        """Store (or dead-letter) a batch, hand its stored events to the window stage after the
        previous batch's, then commit its offsets after the previous batch's.

        A batch that can be neither stored nor set aside (the DLQ refuses its dead letters for good,
        or anything else raises) is **held**: tried again whole with capped, jittered backoff for as
        long as it fails, its offsets and every later batch's of the topic uncommitted (they wait
        for it), the topic paused once its batches are all in flight, /readyz check `ingest` naming
        it. It ends when the batch goes through, or is cancelled (revoked, stopping: redelivered).
        No exception leaves this task, and no later batch commits past an uncommitted one."""
        ok = False
        backoff = Backoff(self.settings.db_retry_initial_s, self.settings.db_retry_max_s)
        try:
            while True:
                try:
                    prior_ok = await self._attempt(lane, records, before)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - held, reported and retried, never skipped
                    self._hold(mine, records, exc)
                    await asyncio.sleep(backoff.next_delay())
            held = self._held.pop(id(mine), None)
            if held is not None:
                log.warning("held ingest batch %s went through after %.1f s and %d attempts",
                            held.where, time.monotonic() - held.since, held.attempts + 1)
            if prior_ok:
                await self._commit(_next_offsets(records))
                ok = True
        finally:
            self._held.pop(id(mine), None)
            if not mine.done():
                mine.set_result(ok)

    async def _attempt(self, lane: _Lane, records: list, before: asyncio.Future | None) -> bool:
        """One attempt at a batch (see _handle); True if the previous batch of the topic committed."""
        sink, stage = lane.sink, self._stage if lane.windowed else None
        stage_name = "ingest"
        try:
            outcome = await sink.process(records)
            prior_ok = await _after(before)
            stage_name = "windows"
            if stage is not None and outcome.stored_rows:
                await stage.send_stored(sink.kind, outcome.stored_rows, outcome.stored_origin, outcome.batch)
        except asyncio.CancelledError:
            raise
        except DeadLetterRefused:  # the DLQ's failure, not the messages': no message is to blame
            raise
        except Exception as exc:  # infrastructure is retried inside: this is the batch's own
            # (a failure no retry cures): its messages are taken one at a time, and those that
            # fail alone are dead-lettered; nothing of it may stop the stream
            log.exception("batch of %d messages failed at the %s stage; isolating the messages that cause it",
                          len(records), stage_name)
            prior_ok = await _after(before)
            await _isolate(sink, stage, self._dead_letters, records, stage_name, exc)
        return prior_ok

    def _hold(self, mine: asyncio.Future, records: list, exc: BaseException) -> None:
        """Record (for /readyz), log and count a failed attempt at a batch that is held."""
        why = f"{exc.__class__.__name__}: {exc}"[:500]
        held = self._held.get(id(mine))
        topic = records[0].topic
        metrics.INGEST_HELD_ATTEMPTS.labels(topic).inc()
        if held is None:
            held = self._held[id(mine)] = _Held(_where(records), time.monotonic(), why)
            log.error("ingest batch %s (%d messages) could be neither stored nor set aside; held: retried with "
                      "backoff, its offsets and the topic's later ones uncommitted until it goes through",
                      held.where, len(records), exc_info=exc)
            return
        held.attempts += 1
        if why != held.why:
            log.warning("held ingest batch %s failed again (attempt %d): %s", held.where, held.attempts + 1, why)
        held.why = why

    def held(self) -> list[str]:
        """The batches held (see _handle), each with since when and why: what /readyz names."""
        now = time.monotonic()
        return [f"{h.where} held for {now - h.since:.0f} s ({h.attempts + 1} attempts; its offsets and the "
                f"topic's later ones uncommitted): {h.why}" for h in self._held.values()]

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        c = self._consumer
        assert c is not None
        offsets = {**self._uncommitted, **offsets}
        assigned = c.assignment()
        offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
        if not offsets:
            self._uncommitted.clear()
            return
        try:
            await c.commit(offsets)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - rows are stored: a later commit (or a redelivery) covers them
            log.warning("committing ingest offsets failed (%s: %s); retried with the next batch",
                        exc.__class__.__name__, exc)
            metrics.INGEST_COMMIT_FAILURES.inc()
            self._uncommitted.update(offsets)
            return
        self._uncommitted.clear()
        self._committed.update(offsets)

    async def _commit_uncommitted(self) -> None:
        if self._uncommitted and self._consumer is not None:
            await self._commit({})

    async def _drain(self, timeout: float, why: str) -> None:
        """Wait up to `timeout` s for the batches in flight; cancel (and so not commit) the rest."""
        tasks = {t for lane in self._lanes.values() for t in lane.inflight}
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            log.warning("%s: %d batches not stored within %.0f s are cancelled (their messages are redelivered)",
                        why, len(pending), timeout)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- rebalances ----------------------------------------------------------------------------
    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._rebalancing = True
        for lane in self._lanes.values():
            lane.pending = [r for r in lane.pending if TopicPartition(r.topic, r.partition) not in revoked]
        await self._drain(self.settings.rebalance_drain_s, "partitions revoked")
        await self._commit_uncommitted()
        self._uncommitted = {tp: o for tp, o in self._uncommitted.items() if tp not in revoked}
        for tp in revoked:
            self._committed.pop(tp, None)
        self._paused = set()
        if revoked:
            log.info("ingest partitions revoked: %d", len(revoked))

    async def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        c = self._consumer
        assert c is not None
        for tp in assigned:
            offset = await c.committed(tp)
            if offset is not None:
                self._committed[tp] = offset
        for lane in self._lanes.values():
            lane.previous = None  # a new generation: batches of the old one are done or cancelled
        self._rebalancing = False
        self._has_assignment = True
        log.info("ingest partitions assigned: %d", len(assigned))

    async def _adopt_legacy_offsets(self) -> None:
        """Before joining: the partitions the ingest group has no offset for start where the app's
        Faust group (which consumed these topics before the ingest had its own group) committed,
        written into the ingest group (possible while it has no members: the first worker of an
        upgrade does it)."""
        if not self.legacy_group_id:
            return
        s = self.settings
        auth = kafka_auth(s).client_kwargs()
        admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap, **auth)
        ours = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, group_id=self.group_id, enable_auto_commit=False,
                                **auth)
        try:
            await admin.start()
            theirs = await admin.list_consumer_group_offsets(self.legacy_group_id)
            have = await admin.list_consumer_group_offsets(self.group_id)
            topics = set(self.topics)
            adopt = {tp: meta.offset for tp, meta in theirs.items()
                     if tp.topic in topics and meta.offset >= 0 and (tp not in have or have[tp].offset < 0)}
            if adopt:
                await ours.start()
                ours.assign(list(adopt))
                await ours.commit(adopt)
                log.warning("ingest: %d partitions had no offset in group %s; they start where group %s left them",
                            len(adopt), self.group_id, self.legacy_group_id)
        except Exception as exc:  # noqa: BLE001 - another worker is a member already (it adopted them), or none
            log.info("no offsets adopted from group %s (%s: %s)", self.legacy_group_id, exc.__class__.__name__, exc)
        finally:
            await ours.stop()
            await admin.close()


def _cut(records: list, max_messages: int, max_bytes: int) -> int:
    """How many of `records` the next batch takes: up to `max_messages`, and no more than
    `max_bytes` of values (at least one)."""
    size = 0
    for i, r in enumerate(records[:max_messages]):
        size += len(r.value or b"")
        if size > max_bytes:
            return max(1, i)
    return min(len(records), max_messages)


async def _after(before: asyncio.Future | None) -> bool:
    """Wait for the previous batch of the topic; True if it committed (or there was none)."""
    return True if before is None else await asyncio.shield(before)


def _where(records: Sequence) -> str:
    """'topic T partition P offset O, …': where a batch starts in each of its partitions."""
    first: dict[int, int] = {}
    for r in records:
        first.setdefault(r.partition, r.offset)
    return f"topic {records[0].topic} " + ", ".join(f"partition {p} offset {o}" for p, o in sorted(first.items()))


def _next_offsets(records: Sequence) -> dict[TopicPartition, int]:
    """The offsets to commit for `records`: each partition's last offset + 1."""
    out: dict[TopicPartition, int] = {}
    for r in records:
        out[TopicPartition(r.topic, r.partition)] = r.offset + 1
    return out


async def _isolate(sink: BatchSink, stage: WindowStage | None, dead_letters: DeadLetters, messages: list,
                   stage_name: str, exc: BaseException) -> None:
    """The last resort for a batch that failed as a whole: each message again on its own; one that
    fails alone goes to the DLQ with why. At the windows stage its events are stored already (the
    envelope says so: stage=windows)."""
    failed: list[tuple[object, str, BaseException]] = []
    if len(messages) == 1:
        failed.append((messages[0], stage_name, exc))
    else:
        for m in messages:
            where = "ingest"
            try:
                outcome = await sink.process([m])
                where = "windows"
                if stage is not None and outcome.stored_rows:
                    await stage.send_stored(sink.kind, outcome.stored_rows, outcome.stored_origin, outcome.batch)
            except (asyncio.CancelledError, DeadLetterRefused):  # the DLQ's failure: the batch is held
                raise
            except Exception as one:  # noqa: BLE001 - this message's own failure
                failed.append((m, where, one))
    now = datetime.now(UTC)
    for m, where, err in failed:
        reason = "database_rejected" if where == "ingest" else "window_stage"
        text = f"{err.__class__.__name__}: {err}"[:2000]
        log.error("message %s[%d]@%d set aside at the %s stage: %s", m.topic, m.partition, m.offset, where, text)
        await dead_letters([envelope(m, [DeadLetterError(reason=reason, message=text)], now, stage=where)])
        metrics.STAGE_FAILURES.labels(where, reason).inc()
        if where == "ingest":
            metrics.MESSAGES_CONSUMED.labels(m.topic).inc()
            metrics.EVENTS_CONSUMED.labels(m.topic).inc()
            metrics.INVALID_EVENTS.labels(m.topic, reason).inc()
