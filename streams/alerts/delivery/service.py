"""Alert delivery: the worker's own consumer of the alert-notifications topic (group
`<app id>-delivery`), delivering each notification to the channels its rule names: one lane per
channel, the notifications in flight until every channel is done with them, the offsets committed
behind them, the dead letters. The channels are looked up in `channels.ChannelDirectory`, posted
to by `http.HttpPoster` (which also tells the answers worth retrying from the refusals), and the
bodies sent are built in `payloads`.

* **Independent of the window stage.** Its own `AIOKafkaConsumer` and tasks: a channel that is slow
  or down holds back nothing but its own deliveries (never windows, never another channel).
* **At least once.** A notification's offset is committed only once every channel it goes to has
  delivered it or dead-lettered it (to `alert_undelivered_topic`, acknowledged by Kafka), and only
  after every earlier notification of its partition (a partition's committed offset is the end of
  its finished prefix). A crash or a rebalance before that redelivers it: a receiver may see a
  notification twice (webhooks carry X-Learnstream-Delivery to dedupe by).
* **Order.** One lane per channel (workspace, name) delivers in the order consumed; notifications
  are keyed by fingerprint, so an alert's firing reaches a channel before its resolved.
* **Retries.** 5xx, 408, 429 (its Retry-After honoured), timeouts and connection errors are retried
  with capped exponential backoff and full jitter (`delivery_retry_initial_s` .. `_max_s`) for
  `delivery_retry_for_s` from when it was consumed, then dead-lettered (`retries_exhausted`); any other
  answer but 2xx (a 4xx, a redirect) is permanent and dead-lettered at once (`rejected`), with a
  detail of the status code and its standard phrase only (the receiver's body is never read).
* **Outbound policy.** A target that resolves to an address the operator has not allowed
  (streams/outbound.py: loopback, link-local, private, ...; LEARNSTREAM_OUTBOUND_ALLOW) is never
  connected to: dead-lettered at once (`refused_target`), counted in
  learnstream_outbound_refused_total{channel_kind, reason}.
  Alertmanager lanes post up to 64 queued alerts per request; a batch refused as a whole is sent
  one alert at a time, so only the culprit is dead-lettered.
* **Only what the engine produced.** A notification is delivered only if it matches, field for
  field, the row the alert engine recorded in alert_notifications before publishing it (same
  fingerprint, status, sent_at, workspace, rule, message, labels, ...: one query per fetch
  round); anything else on the topic (written by another client: it would be signed with the
  workspace's webhook secret) is dead-lettered `unknown_notification` and counted
  (learnstream_alert_notifications_forged_total). A notification the engine could not record
  (it publishes it anyway) is therefore not delivered either.
* **Bad content** never stops it: a value that is not an AlertNotification is dead-lettered
  (`invalid_notification`), a channel name the workspace does not have (`unknown_channel`), a
  notification older than `delivery_retry_for_s` when consumed (`expired`), one the delivery itself
  failed on (`delivery_error`). Every dead letter is
  counted (learnstream_alert_undelivered_total{reason}) and bounded in size.
* **One channel down delays only itself.** A lane holds at most `delivery_max_pending_per_channel`
  notifications in memory; what its channel is sent beyond that is written to its backlog in
  PostgreSQL (`alert_delivery_backlog`, migration 0021) and counts as handled for the offsets, so
  the consumer moves on and the other channels' notifications keep flowing. Once a lane has a
  backlog on a partition, that partition's further notifications for it go there too (order), and
  the lane reads it back, in offset order, as it makes room; a row is deleted once the
  notification is delivered, dead-lettered or skipped (a crash before that delivers it again: at
  least once). The rows of a partition are delivered by its owner: after an assignment they are
  taken up, and read once the consumer has passed the last of them and the notifications consumed
  again meanwhile (which go behind, or are already there) are written: a read that saw only the rows
  committed before them would move past them. Gauge
  learnstream_delivery_channel_backlog{channel}.
* **Lanes come and go.** A lane (its task, queue and bookkeeping) is released once it has been
  idle for `delivery_lane_idle_s`: nothing in memory or being delivered (retries included), no
  backlog rows waiting or being written, no open alert to keep alive on Alertmanager. Its channel's
  next notification starts a new one; the old one held nothing, so the order and the offsets are
  as before. Memory goes with the channels in use, not with every channel ever delivered to.
* **Flow control.** Above `delivery_max_pending` notifications consumed and not yet handled (which
  takes `delivery_max_pending / delivery_max_pending_per_channel` channels full at once) the
  consumer pauses. So does it above `HELD_PER_PENDING` (20) times `delivery_max_pending` held for
  the commit, handled or not: behind a notification still on its way to a channel that is down
  (retried up to `delivery_retry_for_s`) the partition's handled ones wait to be committed. They
  keep only their offset (a handled notification drops its value), so the memory stays bounded; a
  channel that is down for that long and that many notifications holds every channel back.
* **Alertmanager keep-alive.** The alerts still open on an Alertmanager channel are re-posted every
  `alertmanager_resend_s` with endsAt 4 times that ahead (Prometheus' convention), so they stay
  active while open here and expire there if no worker re-posts them. After an assignment the open
  alerts of the assigned partitions are taken up from alert_notifications.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from db.alerts import (
    BacklogRow,
    backlog_summary,
    defer_deliveries,
    deferred_deliveries,
    drop_deferred,
    open_alerts,
    stored_notifications,
)
from db.pool import connect, create_pool
from schemas.alerts import AlertNotification
from schemas.channels import AlertChannel
from streams import metrics
from streams.alerts.delivery.channels import ChannelDirectory
from streams.alerts.delivery.http import ANSWER_EXCERPT, HttpPoster
from streams.alerts.delivery.payloads import rfc3339
from streams.config import Settings
from streams.dead_letters import DeadLetterPublisher, fit_value, value_text
from streams.loops import guarded
from streams.outbound import OutboundPolicy
from streams.rebalance import RebalanceHooks
from streams.retry import Backoff, PermanentFailure, Retrier

log = logging.getLogger("learnstream.alerts.delivery")

#: alerts per Alertmanager request
AM_BATCH = 64
#: lanes labelled in learnstream_delivery_channel_backlog (the rest are summed as `other`)
BACKLOG_LABELS = 20
#: how often a lane with a backlog looks for room to read it back when idle
BACKLOG_POLL_S = 0.5
#: the longest between two looks for idle lanes to release (else a quarter of delivery_lane_idle_s)
LANE_CHECK_MAX_S = 30.0
#: notifications held for the commit (handled or not) per `delivery_max_pending` before the consumer
#: pauses: the handled ones behind one still on its way keep only their offset (no payload)
HELD_PER_PENDING = 20


# -- what is in flight ---------------------------------------------------------------------------
@dataclass(eq=False, slots=True)
class InFlight:
    """A notification consumed and not yet committed (its offset, its raw value, what it parsed to):
    done once `remaining` channels are down to 0 (each delivered it, dead-lettered it or skipped it),
    when it drops its value (kept behind an unfinished one for the commit: its offset is enough)."""

    tp: TopicPartition
    offset: int
    raw: bytes | None
    note: AlertNotification | None = None
    remaining: int = 0
    abandoned: bool = False  # its partition was revoked: the next owner delivers it
    #: read back from a channel's backlog (not in the consumer's offsets: its row is deleted when done)
    row: BacklogRow | None = None

    @property
    def done(self) -> bool:
        return self.remaining <= 0

    def drop_payload(self) -> None:
        self.raw = None
        self.note = None


@dataclass(eq=False)
class LaneEntry:
    """An in-flight notification queued in one channel's lane, on its way to that channel (the
    channel as it was defined when the notification was routed), with its attempts so far."""

    inflight: InFlight
    channel: AlertChannel
    #: monotonic time it was consumed: it is retried for delivery_retry_for_s from then (a backlog
    #: behind a channel that is down expires together, not one retry_for after another)
    queued: float = field(default_factory=time.monotonic)
    first_attempt_at: datetime | None = None
    attempts: int = 0


@dataclass(eq=False)
class Spill:
    """One lane's backlog rows from one partition: `waiting` not read back yet (counting those being
    written), read back up to offset `after`; `ready_at`: after an assignment, not read back until
    the consumer has passed that offset and nothing is being written to it (the notifications consumed
    again go behind it first, some below it)."""

    waiting: int = 0
    writing: int = 0
    routed: int = 0
    after: int = -1
    ready_at: int = -1


class Lane:
    """One channel's deliveries, in order."""

    def __init__(self, owner: AlertDelivery, channel: AlertChannel) -> None:
        self.owner, self.channel = owner, channel
        self.queue: asyncio.Queue[LaneEntry] = asyncio.Queue()
        #: entries in memory (queued or being delivered): at most delivery_max_pending_per_channel
        self.load = 0
        #: its backlog in PostgreSQL, per partition
        self.spill: dict[TopicPartition, Spill] = {}
        #: Alertmanager: the open alerts delivered here (fingerprint -> last notification, its partition)
        self.active: dict[str, tuple[AlertNotification, TopicPartition]] = {}
        self.last_keepalive = time.monotonic()
        #: monotonic time it was last given an entry or finished a batch (idle since then, see idle())
        self.touched = time.monotonic()
        self.task = asyncio.ensure_future(self._run())

    @property
    def kind(self) -> str:
        return self.channel.kind

    @property
    def backlog(self) -> int:
        return self.load + sum(sp.waiting for sp in self.spill.values())

    def put(self, entry: LaneEntry) -> None:
        self.load += 1
        self.touched = time.monotonic()
        self.queue.put_nowait(entry)

    def idle(self, now: float, idle_s: float) -> bool:
        """Nothing to do for `idle_s`: nothing in memory or being delivered (a batch retrying counts
        in `load`), no backlog rows waiting or being written, no open alert to keep alive."""
        return (self.load <= 0 and self.queue.empty() and not self.spill and not self.active
                and now - self.touched >= idle_s)

    async def _run(self) -> None:
        resend = self.owner.settings.alertmanager_resend_s
        cap = self.owner.settings.delivery_max_pending_per_channel
        while True:
            try:
                if self.spill and self.load <= cap // 2:
                    await self.owner.refill(self)
                wait = BACKLOG_POLL_S if self.spill else None
                if self.kind == "alertmanager" and self.active:
                    due = max(0.0, self.last_keepalive + resend - time.monotonic())
                    wait = due if wait is None else min(wait, due)
                try:
                    first = await asyncio.wait_for(self.queue.get(), wait)
                except TimeoutError:
                    if self.kind == "alertmanager" and time.monotonic() - self.last_keepalive >= resend:
                        await self.keep_alive()
                    continue
                batch = [first]
                while self.kind == "alertmanager" and len(batch) < AM_BATCH and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                try:
                    await self.owner.deliver(self, batch)
                finally:
                    self.load -= len(batch)
                    self.touched = time.monotonic()
                if self.kind == "alertmanager" and self.active and time.monotonic() - self.last_keepalive >= resend:
                    await self.keep_alive()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not end the lane: its entries would never finish
                log.exception("delivery lane %s failed; going on", self.channel.name)
                await asyncio.sleep(1.0)

    async def keep_alive(self) -> None:
        """Re-post the open alerts (best effort: a failure is retried at the next round)."""
        self.last_keepalive = time.monotonic()
        if not self.active:
            return
        notes = [n for n, _tp in self.active.values()]
        for i in range(0, len(notes), AM_BATCH):
            result = await self.owner.http.post_alertmanager(self.channel, notes[i:i + AM_BATCH])
            if not result.ok:
                log.warning("re-posting %d open alerts to %s failed: %s", len(notes), self.channel.safe_url,
                            result.detail)
                return

    def remember(self, n: AlertNotification, tp: TopicPartition) -> None:
        if n.status == "resolved":
            self.active.pop(n.fingerprint, None)
        else:
            self.active[n.fingerprint] = (n, tp)


class AlertDelivery:
    def __init__(self, settings: Settings, publish: DeadLetterPublisher, budget: int,
                 group_id: str | None = None) -> None:
        self.settings = settings
        self.group_id = group_id or f"{settings.app_id}-delivery"
        self.topic = settings.alert_notifications_topic
        self._publish, self._budget = publish, budget
        self.directory = ChannelDirectory(settings.database_url, settings.alertmanager_url)
        # Alertmanager alerts end 4 resends ahead: they expire there unless re-posted (keep-alive)
        self.http = HttpPoster(4 * settings.alertmanager_resend_s, settings.alert_generator_url,
                               OutboundPolicy(settings.outbound_allow), trusted_url=settings.alertmanager_url)
        self._lanes: dict[tuple[UUID, str], Lane] = {}
        self._inflight: dict[TopicPartition, deque[InFlight]] = {}
        self._pending = 0
        self._paused = False
        #: backlogs: the pool, the entries to write this round, the rows done (to delete), the
        #: entries read back (per partition, to abandon at a revocation), the consumer's position
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._spilling: list[tuple[Lane, Spill, InFlight, BacklogRow]] = []
        self._done_rows: list[BacklogRow] = []
        self._read_back: dict[TopicPartition, set[InFlight]] = {}
        self._position: dict[TopicPartition, int] = {}
        self._backlog_labels: set[str] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._runner: asyncio.Task | None = None
        self._pruner: asyncio.Task | None = None
        self._stopping = False
        self._retrying = Retrier(settings.db_retry_initial_s, settings.db_retry_max_s)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Create the topics, read the channels, join the group; retried until it succeeds
        (Kafka or PostgreSQL away at start delay delivery, never the rest of the worker)."""
        from streams.kafka_auth import kafka_auth
        from streams.topics import ensure_topics

        s = self.settings
        backoff = Backoff(s.db_retry_initial_s, s.db_retry_max_s * 6)
        await self.http.open()
        while not self._stopping:
            try:
                auth = kafka_auth(s)
                await ensure_topics(s.kafka_bootstrap, [self.topic, s.alert_undelivered_topic], s.topic_partitions,
                                    replication_factor=s.topic_replication_factor, auth=auth)
                await self.directory.load()
                consumer = AIOKafkaConsumer(
                    bootstrap_servers=s.kafka_bootstrap, group_id=self.group_id, client_id=self.group_id,
                    **auth.client_kwargs(),
                    enable_auto_commit=False, auto_offset_reset="earliest",
                )
                consumer.subscribe([self.topic],
                                   listener=RebalanceHooks(self.partitions_revoked, self.partitions_assigned))
                self._consumer = consumer
                try:
                    await consumer.start()
                except BaseException:
                    self._consumer = None
                    await consumer.stop()
                    raise
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried: delivery waits, the worker goes on
                delay = backoff.next_delay()
                log.warning("alert delivery could not start (%s: %s); retrying in %.1f s",
                            exc.__class__.__name__, exc, delay)
                await asyncio.sleep(delay)
        if self._stopping:
            return
        self._runner = asyncio.ensure_future(self._run())
        self._pruner = asyncio.ensure_future(self._release_lanes())
        log.info("alert delivery (group %s) started on %s", self.group_id, self.topic)

    async def stop(self) -> None:
        """Stop: what is not delivered everywhere is not committed (redelivered to the next owner)."""
        if self._stopping:
            return
        self._stopping = True
        for task in (self._runner, self._pruner):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for lane in self._lanes.values():
            lane.task.cancel()
        await asyncio.gather(*(lane.task for lane in self._lanes.values()), return_exceptions=True)
        if self._consumer is not None:
            try:
                await self._flush_backlog()
                await self._commit_done()
                await self._consumer.stop()
            except Exception:  # a bug must not end the lane: its entries would never finish
                log.warning("alert delivery consumer did not stop cleanly", exc_info=True)
        if self._pool is not None:
            await self._pool.close()
        await self.http.close()
        log.info("alert delivery stopped")

    # -- the fetch loop ----------------------------------------------------------------------
    async def _run(self) -> None:
        c = self._consumer
        assert c is not None
        while not self._stopping:
            try:
                self._flow()
                fetched = await c.getmany(timeout_ms=500, max_records=500)
                await self.directory.refresh(self.settings.delivery_config_refresh_s)
                stored = await self._stored([r.value for records in fetched.values() for r in records])
                for tp, records in fetched.items():
                    for r in records:
                        await self._accept(tp, r.offset, r.value, stored)
                        self._position[tp] = r.offset
                await self._flush_backlog()
                await self._commit_done()
                self._show_backlog()
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:  # the broker is away or the group is moving: aiokafka reconnects
                log.warning("alert delivery fetch failed (%s: %s); retrying", exc.__class__.__name__, exc)
                await asyncio.sleep(0.5)
            except Exception:  # a bug must not end the lane: its entries would never finish
                log.exception("alert delivery loop failed; going on")
                await asyncio.sleep(1.0)

    def _flow(self) -> None:
        """Pause above delivery_max_pending notifications not yet handled, or above HELD_PER_PENDING
        times that held for the commit (handled or not: behind one a channel that is down still
        retries, the handled ones wait, payload dropped, up to delivery_retry_for_s)."""
        c = self._consumer
        assert c is not None
        cap = self.settings.delivery_max_pending
        held = sum(len(q) for q in self._inflight.values())
        full = self._pending >= cap or held >= HELD_PER_PENDING * cap
        if full != self._paused:
            (c.pause if full else c.resume)(*c.assignment())
            self._paused = full

    async def _stored(self, values: list[bytes | None]) -> dict:
        """The stored notification rows (alert_notifications, by key) of this round's values: only
        a notification the engine recorded is delivered. The round's keys are looked up in one
        query, retried while PostgreSQL is away; if that query fails on its content, each key is
        looked up alone, so one hostile record never costs the others their delivery (a key whose
        own lookup fails is no recorded notification)."""
        notes = []
        for raw in values:
            try:
                notes.append(AlertNotification.model_validate_json(raw or b""))
            except ValidationError:
                pass  # dead-lettered by _accept
        if not notes:
            return {}

        def fetch(some: list[AlertNotification]) -> Callable[[], Awaitable[dict]]:
            async def run() -> dict:
                async with (await self._db()).acquire() as conn:
                    return await stored_notifications(conn, some)
            return run

        what = "checking alert notifications against alert_notifications"
        try:
            return await self._retrying(what, fetch(notes))
        except PermanentFailure as exc:
            log.warning("alert notifications checked one by one: the round's lookup failed (%s)", exc)
        stored: dict = {}
        for note in notes:
            try:
                stored.update(await self._retrying(what, fetch([note])))
            except PermanentFailure as exc:
                log.warning("alert notification %s could not be looked up (%s); not delivered",
                            note.fingerprint[:64].encode("unicode_escape").decode(), exc)
        return stored

    async def _accept(self, tp: TopicPartition, offset: int, raw: bytes | None, stored: dict) -> None:
        """Route one consumed notification to its channels (or dead-letter it): only one that
        matches its stored row (`stored`: alert_notifications by key) field for field."""
        inflight = InFlight(tp, offset, raw)
        self._inflight.setdefault(tp, deque()).append(inflight)
        self._settle(+1)
        try:
            note = AlertNotification.model_validate_json(raw or b"")
        except ValidationError as exc:
            inflight.remaining = 1
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            await self._dead_letter(inflight, None, "invalid_notification",
                                    f"{where + ': ' if where else ''}{first['msg']}"[:ANSWER_EXCERPT])
            return
        inflight.note = note
        if stored.get((note.fingerprint, note.status, note.sent_at)) != note:
            # not what the engine recorded: forged by whoever can write the topic (it would be signed
            # with the workspace's webhook secret), or altered; never delivered
            inflight.remaining = 1
            metrics.ALERT_FORGED.inc()
            log.warning("alert notification %s at %s:%d of workspace %s matches no stored notification; not delivered",
                        note.fingerprint[:64], tp.topic, offset, note.workspace_id)
            await self._dead_letter(inflight, None, "unknown_notification",
                                    "not a notification the alert engine recorded (alert_notifications)")
            return
        try:
            targets = await self._targets(note)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never stop the stream: this notification is set aside
            log.exception("routing alert notification %s failed", note.fingerprint)
            inflight.remaining = 1
            await self._dead_letter(inflight, None, "delivery_error",
                                    f"{exc.__class__.__name__}: {exc}"[:ANSWER_EXCERPT])
            return
        inflight.remaining = len(targets)
        expired = (datetime.now(UTC) - note.sent_at).total_seconds() > self.settings.delivery_retry_for_s
        for name, ch in targets.items():
            if ch is None:
                await self._dead_letter(inflight, None, "unknown_channel",
                                        f"workspace {note.workspace_id} has no alert channel {name!r}", name=name)
            elif not ch.is_active:
                metrics.ALERT_DELIVERIES.labels(ch.kind, "skipped").inc()
                self._finish(inflight)
            elif ch.kind == "topic":
                metrics.ALERT_DELIVERIES.labels("topic", "delivered").inc()
                self._finish(inflight)
            elif expired:
                await self._dead_letter(inflight, ch, "expired", f"sent at {rfc3339(note.sent_at)}, more than "
                                        f"{self.settings.delivery_retry_for_s:g} s before it was consumed")
            else:
                self._route(self._lane(ch), inflight, ch)
        if not targets:  # nothing to deliver (else the last channel to finish settles it)
            inflight.drop_payload()
            self._settle(-1)

    async def _targets(self, note: AlertNotification) -> dict[str, AlertChannel | None]:
        """The channels of the notification's rule (None: the workspace has no channel of that name);
        for a resolved one, also the Alertmanager channels that show it open."""
        names = self.directory.rules.get(note.rule_id)
        if names is None or any(self.directory.channel(note.workspace_id, n) is None for n in names):
            await self.directory.refresh(1.0)  # a rule or a channel made since the last read
            names = self.directory.rules.get(note.rule_id)
        targets = {n: self.directory.channel(note.workspace_id, n) for n in names or ()}
        if note.status == "resolved":  # an Alertmanager showing it open hears it resolved, whatever the rule says now
            for (ws, name), lane in self._lanes.items():
                if ws == note.workspace_id and note.fingerprint in lane.active and name not in targets:
                    targets[name] = lane.channel
        return targets

    def _lane(self, ch: AlertChannel) -> Lane:
        key = (ch.workspace_id, ch.name)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(self, ch)
        elif lane.channel != ch:
            if lane.channel.kind != ch.kind:
                lane.active.clear()
            lane.channel = ch  # changed since: the queued entries keep the definition they were routed with
        return lane

    # -- idle lanes ---------------------------------------------------------------------------
    async def _release_lanes(self) -> None:
        """Release the lanes idle for delivery_lane_idle_s, every quarter of it (at most LANE_CHECK_MAX_S);
        a round that fails is logged and counted (streams.loops), and the next one tries again."""
        idle_s = self.settings.delivery_lane_idle_s
        release = guarded("alert delivery lanes")(self._release_idle_lanes)
        while not self._stopping:
            await asyncio.sleep(min(idle_s / 4, LANE_CHECK_MAX_S))
            await release()

    async def _release_idle_lanes(self) -> int:
        """Drop the idle lanes from `_lanes` and cancel their tasks (waiting on their queues: they hold
        nothing); a notification for one of them later starts a new lane. The number released."""
        now = time.monotonic()
        idle_s = self.settings.delivery_lane_idle_s
        idle = [key for key, lane in self._lanes.items() if lane.idle(now, idle_s)]
        tasks = []
        for key in idle:
            lane = self._lanes.pop(key)
            lane.task.cancel()
            tasks.append(lane.task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
            log.debug("released %d idle delivery lanes (%d left)", len(tasks), len(self._lanes))
        return len(tasks)

    # -- backlogs -----------------------------------------------------------------------------
    def _route(self, lane: Lane, inflight: InFlight, ch: AlertChannel) -> None:
        """Into the lane's memory, or (the lane full, or a backlog of this partition waiting in
        front of it) to its backlog, written at the end of the round."""
        tp = inflight.tp
        sp = lane.spill.get(tp)
        if (sp is None or sp.waiting <= 0) and lane.load < self.settings.delivery_max_pending_per_channel:
            lane.put(LaneEntry(inflight, ch))
            return
        if sp is None:
            sp = lane.spill[tp] = Spill()
        sp.waiting += 1
        sp.writing += 1
        sp.routed += 1
        row = BacklogRow(ch.workspace_id, ch.name, tp.topic, tp.partition, inflight.offset, inflight.raw or b"")
        self._spilling.append((lane, sp, inflight, row))

    async def _db(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await create_pool(self.settings.database_url, timeout=5)
            return self._pool

    async def _flush_backlog(self) -> None:
        """Write this round's backlog entries (each then counts as handled for the offsets: retried
        while PostgreSQL is away), and delete the rows done."""
        if self._spilling:
            spilling, self._spilling = self._spilling, []

            async def write() -> None:
                async with (await self._db()).acquire() as conn:
                    await defer_deliveries(conn, self.group_id, [row for _l, _s, _i, row in spilling])

            try:
                await self._retrying("writing the alert delivery backlog", write)
            except PermanentFailure as exc:  # kept in memory instead (over the lane's cap): nothing lost
                log.error("the alert delivery backlog could not be written (%s); keeping %d notifications in memory",
                          exc, len(spilling))
                for lane, sp, inflight, _row in spilling:
                    sp.writing -= 1
                    sp.waiting -= 1
                    # its lane, or a new one if it was released meanwhile (its spill revoked)
                    self._lane(lane.channel).put(LaneEntry(inflight, lane.channel))
            else:
                for _lane, sp, inflight, _row in spilling:
                    sp.writing -= 1
                    self._finish(inflight)
        if self._done_rows:
            done, self._done_rows = self._done_rows, []
            try:
                async with (await self._db()).acquire() as conn:
                    await drop_deferred(conn, self.group_id, done)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - deleted at the next round
                log.warning("deleting %d delivered backlog rows failed (%s: %s); retrying", len(done),
                            exc.__class__.__name__, exc)
                self._done_rows[:0] = done

    async def _ready(self, tp: TopicPartition, sp: Spill) -> bool:
        """May the spill be read back? After a take-up, not before the consumer has passed `ready_at`
        AND nothing is being written to it: the round that passed it may be writing offsets below
        the rows taken up, and a read on another connection that saw only the committed (higher)
        ones would move `after` past them for good. Once ready, the rows written come in offset order."""
        if sp.ready_at < 0:
            return True
        if sp.writing > 0:
            return False
        if self._position.get(tp, -1) >= sp.ready_at:
            sp.ready_at = -1
            return True
        c = self._consumer
        if c is None or tp not in c.assignment():
            return False
        committed = await c.committed(tp)
        if committed is not None and committed > sp.ready_at:
            sp.ready_at = -1
            return True
        return False

    async def refill(self, lane: Lane) -> None:
        """Read the lane's backlog back into its memory, up to its cap (the lane's own task)."""
        cap = self.settings.delivery_max_pending_per_channel
        for tp, sp in list(lane.spill.items()):
            room = cap - lane.load
            if room <= 0:
                return
            if sp.waiting <= 0 and sp.writing <= 0:
                del lane.spill[tp]
                continue
            try:
                if not await self._ready(tp, sp):
                    continue
                routed, writing = sp.routed, sp.writing
                async with (await self._db()).acquire() as conn:
                    rows = await deferred_deliveries(conn, self.group_id, lane.channel.workspace_id, lane.channel.name,
                                                     tp.topic, tp.partition, sp.after, room)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - read at the next round
                log.warning("reading the delivery backlog of %s failed (%s: %s); retrying", lane.channel.name,
                            exc.__class__.__name__, exc)
                return
            if lane.spill.get(tp) is not sp:  # revoked meanwhile: its next owner delivers them
                continue
            for row in rows:
                sp.after = row.offset
                sp.waiting -= 1
                self._read_back_entry(lane, tp, row)
            if len(rows) < room and writing == 0 and sp.routed == routed:
                sp.waiting = 0  # all read: nothing more was being written or sent to it
            if sp.waiting <= 0 and sp.writing <= 0:
                del lane.spill[tp]

    def _read_back_entry(self, lane: Lane, tp: TopicPartition, row: BacklogRow) -> None:
        inflight = InFlight(tp, row.offset, row.value, remaining=1, row=row)
        try:
            inflight.note = AlertNotification.model_validate_json(row.value)
        except ValidationError:  # written valid: a row edited by hand
            log.error("backlog row %s/%s at %s:%d is not a notification; deleting it", row.workspace_id, row.channel,
                      row.topic, row.offset)
            self._done_rows.append(row)
            return
        ch = self.directory.channel(row.workspace_id, row.channel)
        if ch is None:
            asyncio.ensure_future(self._dead_letter(
                inflight, None, "unknown_channel", f"workspace {row.workspace_id} has no alert channel {row.channel!r}",
                name=row.channel))
            return
        if not ch.is_active:
            metrics.ALERT_DELIVERIES.labels(ch.kind, "skipped").inc()
            self._finish(inflight)
            return
        self._read_back.setdefault(tp, set()).add(inflight)
        age = (datetime.now(UTC) - row.deferred_at).total_seconds() if row.deferred_at else 0.0
        lane.put(LaneEntry(inflight, ch, queued=time.monotonic() - max(0.0, age)))

    def _show_backlog(self) -> None:
        sizes = sorted(((lane.backlog, f"{ws}/{name}") for (ws, name), lane in self._lanes.items() if lane.backlog),
                       reverse=True)
        shown = {label: float(n) for n, label in sizes[:BACKLOG_LABELS]}
        if len(sizes) > BACKLOG_LABELS:
            shown["other"] = float(sum(n for n, _label in sizes[BACKLOG_LABELS:]))
        for label in self._backlog_labels - shown.keys():
            metrics.DELIVERY_CHANNEL_BACKLOG.remove(label)
        for label, n in shown.items():
            metrics.DELIVERY_CHANNEL_BACKLOG.labels(label).set(n)
        self._backlog_labels = set(shown)

    # -- one lane's batch --------------------------------------------------------------------
    async def deliver(self, lane: Lane, batch: list[LaneEntry]) -> None:
        """Deliver `batch` (in order) to the lane's channel: retried until it succeeds, is refused,
        or has been failing for delivery_retry_for_s."""
        s = self.settings
        backoff = Backoff(s.delivery_retry_initial_s, s.delivery_retry_max_s)
        while True:
            batch = [e for e in batch if not e.inflight.abandoned]
            if not batch:
                return
            ch = batch[0].channel
            now = datetime.now(UTC)
            for e in batch:
                e.first_attempt_at = e.first_attempt_at or now
                e.attempts += 1
            notes = [e.inflight.note for e in batch]
            if ch.kind == "alertmanager":
                result = await self.http.post_alertmanager(ch, notes)
            else:
                result = await self.http.post_webhook(ch, notes[0])
            if result.ok:
                for e in batch:
                    metrics.ALERT_DELIVERIES.labels(ch.kind, "delivered").inc()
                    if ch.kind == "alertmanager":
                        lane.remember(e.inflight.note, e.inflight.tp)
                    self._finish(e.inflight)
                return
            if result.permanent:
                if len(batch) > 1:  # find the one refused
                    for e in batch:
                        await self.deliver(lane, [e])
                    return
                if result.reason == "refused_target":
                    metrics.OUTBOUND_REFUSED.labels(ch.kind, result.refused).inc()
                    log.error("alert channel %s/%s (%s): %s; notification %s not delivered", ch.workspace_id,
                              ch.name, ch.safe_url, result.detail, batch[0].inflight.note.fingerprint)
                else:
                    log.error("alert channel %s (%s) refused notification %s: %s", ch.name, ch.safe_url,
                              batch[0].inflight.note.fingerprint, result.detail)
                await self._dead_letter_entry(lane, batch[0], result.reason or "rejected", result.detail)
                return
            metrics.ALERT_DELIVERY_RETRIES.labels(ch.kind).inc()
            waited = time.monotonic() - min(e.queued for e in batch)
            if waited >= s.delivery_retry_for_s:
                log.error("alert channel %s (%s) failed for %.0f s; dead-lettering %d notifications: %s",
                          ch.name, ch.safe_url, waited, len(batch), result.detail)
                for e in batch:
                    await self._dead_letter_entry(lane, e, "retries_exhausted", result.detail)
                return
            if backoff.attempt == 0:
                log.warning("alert channel %s (%s) failed (%s); retrying with backoff for up to %.0f s",
                            ch.name, ch.safe_url, result.detail, s.delivery_retry_for_s)
            delay = max(backoff.next_delay(), min(result.retry_after, s.delivery_retry_max_s))
            await asyncio.sleep(min(delay, max(0.0, s.delivery_retry_for_s - waited)))

    async def _dead_letter_entry(self, lane: Lane, e: LaneEntry, reason: str, detail: str) -> None:
        if lane.kind == "alertmanager" and e.inflight.note.status == "resolved":
            lane.active.pop(e.inflight.note.fingerprint, None)
        await self._dead_letter(e.inflight, e.channel, reason, detail, entry=e)

    # -- finishing, dead letters, offsets ---------------------------------------------------------
    def _finish(self, inflight: InFlight) -> None:
        inflight.remaining -= 1
        if inflight.remaining == 0:
            inflight.drop_payload()  # every channel is done with it: the commit needs only its offset
        if inflight.remaining == 0 and not inflight.abandoned:
            if inflight.row is None:
                self._settle(-1)
            else:
                self._done_rows.append(inflight.row)
                self._read_back.get(inflight.tp, set()).discard(inflight)

    def _settle(self, change: int) -> None:
        self._pending += change
        metrics.ALERT_DELIVERY_PENDING.set(self._pending)

    async def _dead_letter(self, inflight: InFlight, ch: AlertChannel | None, reason: str, detail: str,
                           entry: LaneEntry | None = None, name: str | None = None) -> None:
        value = dead_letter_envelope(inflight, ch, reason, detail, entry, self._budget, name=name)
        key = (inflight.note.fingerprint.encode() if inflight.note else None)

        async def publish() -> None:
            fut = await self._publish(key, value)
            if isinstance(fut, Awaitable):
                await fut

        try:
            await self._retrying("publishing an undelivered alert notification", publish)
        except PermanentFailure as exc:
            log.error("an undelivered notification could not be dead-lettered either: %s", exc)
        metrics.ALERT_UNDELIVERED.labels(reason).inc()
        metrics.ALERT_DELIVERIES.labels(ch.kind if ch else "unknown", "dead_lettered").inc()
        self._finish(inflight)

    async def _commit_done(self) -> None:
        c = self._consumer
        if c is None:
            return
        offsets = {}
        for tp, q in self._inflight.items():
            last = None
            while q and q[0].done:
                last = q.popleft().offset
            if last is not None:
                offsets[tp] = last + 1
        assigned = c.assignment()
        offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
        if not offsets:
            return
        try:
            await c.commit(offsets)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - delivered already: a redelivery repeats them, no loss
            log.warning("committing alert delivery offsets failed (%s: %s)", exc.__class__.__name__, exc)

    # -- rebalances ----------------------------------------------------------------------------
    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._flush_backlog()
        await self._commit_done()
        dropped = 0
        for tp in revoked:
            for inflight in self._inflight.pop(tp, ()):
                dropped += not inflight.done
                inflight.abandoned = True
            for inflight in self._read_back.pop(tp, ()):
                inflight.abandoned = True
            self._position.pop(tp, None)
        for lane in self._lanes.values():
            lane.active = {fp: v for fp, v in lane.active.items() if v[1] not in revoked}
            for tp in revoked:
                lane.spill.pop(tp, None)
        self._settle(-dropped)

    async def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Take up the open alerts of the assigned partitions for the Alertmanager keep-alive, and
        their channels' backlogs."""
        c = self._consumer
        if c is None or not assigned:
            return
        await self._take_up_open_alerts(c, assigned)
        await self._take_up_backlogs(assigned)

    async def _take_up_backlogs(self, assigned: set[TopicPartition]) -> None:
        ours = sorted(tp.partition for tp in assigned if tp.topic == self.topic)
        try:
            async with (await self._db()).acquire() as conn:
                found = await backlog_summary(conn, self.group_id, self.topic, ours)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - taken up at the next assignment
            log.warning("taking up the alert delivery backlogs failed (%s: %s)", exc.__class__.__name__, exc)
            return
        taken = 0
        for b in found:
            ch = self.directory.channel(b.workspace_id, b.channel)
            if ch is None:  # left for when it comes back (or is dead-lettered by a later owner)
                log.warning("the alert delivery backlog of %s/%s (%d notifications) names a channel that no longer "
                            "exists; left in place", b.workspace_id, b.channel, b.rows)
                continue
            tp = TopicPartition(self.topic, b.partition)
            lane = self._lane(ch)
            sp = lane.spill.setdefault(tp, Spill())
            sp.waiting = max(sp.waiting, b.rows)
            sp.after = -1
            sp.ready_at = max(sp.ready_at, b.last_offset)
            taken += b.rows
        if taken:
            log.info("took up %d notifications from the alert delivery backlogs", taken)

    async def _take_up_open_alerts(self, c: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        partitions = sorted(c.partitions_for_topic(self.topic) or ())
        if not partitions:
            return
        try:
            await self.directory.load()
            conn = await connect(self.settings.database_url, timeout=5)
            try:
                last = await open_alerts(conn)
            finally:
                await conn.close()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next notification of each alert takes it up instead
            log.warning("taking up open alerts for the Alertmanager keep-alive failed (%s: %s)",
                        exc.__class__.__name__, exc)
            return
        ours = {tp.partition for tp in assigned if tp.topic == self.topic}
        taken = 0
        for n in last:
            p = DefaultPartitioner()(n.fingerprint.encode(), partitions, partitions)
            if p not in ours:
                continue
            for name in self.directory.rules.get(n.rule_id, ()):
                ch = self.directory.channel(n.workspace_id, name)
                if ch is not None and ch.kind == "alertmanager" and ch.is_active:
                    self._lane(ch).remember(n, TopicPartition(self.topic, p))
                    taken += 1
        if taken:
            log.info("took up %d open alerts for Alertmanager", taken)


# -- helpers ------------------------------------------------------------------------------------
def dead_letter_envelope(inflight: InFlight, ch: AlertChannel | None, reason: str, detail: str,
                         entry: LaneEntry | None, budget: int, name: str | None = None) -> bytes:
    """The undelivered-topic message: why, which channel (never its secret), the attempts, where it
    came from, and the notification (a value too large keeps a prefix of it instead)."""
    now = datetime.now(UTC)
    env: dict[str, Any] = {
        "reason": reason,
        "detail": detail,
        "channel": ch.name if ch else name,
        "channel_kind": ch.kind if ch else None,
        "channel_url": ch.safe_url if ch else None,
        "workspace_id": str(inflight.note.workspace_id) if inflight.note else None,
        "attempts": entry.attempts if entry else 0,
        "first_attempt_at": rfc3339(entry.first_attempt_at) if entry and entry.first_attempt_at else None,
        "dead_lettered_at": rfc3339(now),
        "source_topic": inflight.tp.topic,
        "partition": inflight.tp.partition,
        "offset": inflight.offset,
    }
    if inflight.note is not None:
        env["notification"] = inflight.note.model_dump(mode="json")
        out = orjson.dumps(env)
        if len(out) <= budget:
            return out
        del env["notification"]
    raw = inflight.raw or b""
    text, encoding = value_text(raw)
    env["value_length"] = len(raw)
    if encoding == "base64":
        env["value_encoding"] = encoding
    env["value"] = text
    out = orjson.dumps(env)
    if len(out) <= budget:
        return out
    env["value_truncated"] = True
    env["value_sha256"] = hashlib.sha256(raw).hexdigest()
    fitted = fit_value(raw, encoding or "utf-8", lambda prefix: orjson.dumps({**env, "value": prefix}), budget)
    if fitted is None:  # not even without its value (not with a budget of MIN_BUDGET or more)
        return orjson.dumps({**env, "value": ""})
    return fitted
