"""The alert engine inside a worker (issue #4): rules from PostgreSQL, loaded at start and reloaded
on a change (LISTEN/NOTIFY as a hint, a change marker as the proof) without restart; closed windows in, notifications out to the
`alert-notifications` topic and alert_notifications rows; the wall-clock tick; instances taken up
from the notifications table, and mutes from alert_mutes (written here as mute commands are
applied), after a restart or a rebalance.

The notifications table is an outbox: a notification is recorded (unpublished), published, then
marked published. A worker taking a workspace up publishes what was recorded and never marked (a
crash in between); such a resend has the same fingerprint, status and sent_at (the delivery id),
so a consumer recognises it.

The engine itself (streams/alerts/engine.py) is pure; this module is its I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from db.alerts import (
    RULES_CHANNEL,
    StoredMute,
    delete_mute,
    load_mutes,
    load_rules_versioned,
    mark_published,
    open_alerts,
    record_notifications,
    rules_version,
    save_mute,
    unpublished,
)
from db.pool import SharedPool, connect
from schemas.alerts import AlertCommand, AlertNotification
from schemas.rollups import Rollup
from streams import metrics
from streams.alerts.engine import AlertEngine
from streams.config_rows import report_invalid
from streams.retry import Backoff, PermanentFailure, Retrier

log = logging.getLogger("learnstream.alerts")

#: a worker reloads its rules at most this often (a member who may edit rules cannot make it reload
#: faster by editing them in a loop)
RULES_RELOAD_MIN_INTERVAL_S = 1.0
#: and checks the rules' change marker this often without a notification (one missed is not lost)
RULES_CHECK_INTERVAL_S = 2.0
#: a reload waits at most this long for a lock on the rules' table (a lock someone holds past it: the
#: rules loaded last stay, and the reload is tried again at the next check)
RULES_LOCK_TIMEOUT_S = 5.0

#: publish one notification: (key, value) -> awaitable that completes when the broker has it
Publish = Callable[[bytes, bytes], Awaitable[Any]]


def observations(r: Rollup) -> Iterable[tuple[str, dict[str, str], float]]:
    """(metric, labels, value) of a closed window, as alert rules name them:
    performance `<metric_name>.<stat>` labelled by the tags; learning `learning.<stat>` labelled
    by event_type and source_system; engagement `engagement.<stat>` labelled by content_id,
    platform and connector_id."""
    if r.kind == "performance_sample":
        prefix, labels = f"{r.series['metric_name']}.", dict(r.series["tags"])
    else:
        prefix = "learning." if r.kind == "learning_event" else "engagement."
        labels = {k: str(v) for k, v in r.series.items() if v is not None}
    for stat, value in r.stats.items():
        if value is not None:
            yield prefix + stat, labels, float(value)


class AlertRuntime:
    def __init__(self, dsn: str, pool: SharedPool, publish: Publish, retry: tuple[float, float] = (0.2, 5.0),
                 max_age_s: float = 3600.0, expire_after_s: float = 3600.0,
                 lock_timeout_s: float = RULES_LOCK_TIMEOUT_S) -> None:
        self.engine = AlertEngine(expire_after_s=expire_after_s)
        #: windows that ended longer ago than this (history, a backfill) are not evaluated
        self.max_age_s = max_age_s
        self._dsn, self._pool, self._publish, self._retry = dsn, pool, publish, retry
        self.lock_timeout_s = lock_timeout_s
        self._lock_waits = 0  # reloads in a row that timed out on a lock (logged at the first)
        self._retrying = Retrier(*retry)
        self.rules_loaded = asyncio.Event()
        self._reload = asyncio.Event()
        #: how many times follow_rules (re)loaded the rules
        self.rule_reloads = 0
        self._lock = asyncio.Lock()  # engine calls and their publishing, in order
        self.taken_up = asyncio.Event()
        self._taking_up: asyncio.Task | None = None

    # -- rules -------------------------------------------------------------------------------
    async def follow_rules(self) -> None:
        """Load the rules, then reload them whenever performance_alerts changed. A NOTIFY on
        RULES_CHANNEL is only a hint (anyone may send one): it makes the worker read the change
        marker (rules_version, written by the table's trigger alone), and the rules are reloaded
        only when that moved, at most once per RULES_RELOAD_MIN_INTERVAL_S; the marker is also read
        every RULES_CHECK_INTERVAL_S. Runs for the worker's life; a lost connection is re-made and
        the rules reloaded (a change made meanwhile is not missed)."""
        backoff = Backoff(*self._retry)
        while True:
            conn = None
            try:
                conn = await connect(self._dsn)
                await conn.add_listener(RULES_CHANNEL, lambda *_: self._reload.set())
                backoff.attempt = 0
                loaded = None  # the marker the rules in the engine were read with
                last_reload = float("-inf")
                while not conn.is_closed():
                    if loaded is not None:
                        try:
                            await asyncio.wait_for(self._reload.wait(), RULES_CHECK_INTERVAL_S)
                        except TimeoutError:
                            pass
                        await asyncio.sleep(0.05)  # one check for a burst of notifications
                        self._reload.clear()
                        if await rules_version(conn) == loaded:
                            metrics.ALERT_RULE_CHECKS.labels("unchanged").inc()
                            continue
                        wait = last_reload + RULES_RELOAD_MIN_INTERVAL_S - time.monotonic()
                        if wait > 0:
                            await asyncio.sleep(wait)
                    self._reload.clear()
                    try:
                        marker, rules, invalid = await load_rules_versioned(conn, self.lock_timeout_s)
                    except asyncpg.LockNotAvailableError:
                        last_reload = time.monotonic()
                        self._lock_timed_out()
                        if loaded is None:  # nothing loaded yet: no change marker to wait on
                            await asyncio.sleep(RULES_CHECK_INTERVAL_S)
                        continue
                    loaded = marker
                    last_reload = time.monotonic()
                    if self._lock_waits:
                        log.info("alert rules: loaded again after %d reloads that timed out on a lock", self._lock_waits)
                        self._lock_waits = 0
                    self.rule_reloads += 1
                    metrics.ALERT_RULE_CHECKS.labels("reloaded").inc()
                    report_invalid("performance_alerts", invalid)
                    async with self._lock:
                        notes = self.engine.set_rules(rules, datetime.now(UTC))
                        await self._send(notes)
                    if not self.rules_loaded.is_set():
                        log.info("loaded %d alert rules", len(rules))
                    else:
                        log.info("alert rules changed: %d rules now", len(rules))
                    self.rules_loaded.set()
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                delay = backoff.next_delay()
                log.warning("alert rules: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()

    def _lock_timed_out(self) -> None:
        """A reload gave up on a lock on performance_alerts (someone's open transaction holds one that
        conflicts with reading it): counted each time, logged at the first of a row."""
        metrics.CONFIG_LOCK_TIMEOUTS.labels("alert_rules").inc()
        self._lock_waits += 1
        if self._lock_waits == 1:
            log.warning("alert rules: a lock on performance_alerts was held longer than %.1f s (an open "
                        "transaction); keeping the %d rules loaded last and trying again at each check "
                        "(counted in learnstream_config_lock_timeouts_total; logged again when a reload succeeds)",
                        self.lock_timeout_s, len(self.engine.rules))

    def taking_up(self, owns: Callable[[UUID], bool]) -> None:
        """take_up in a task; inputs wait for it."""
        self.taken_up.clear()
        if self._taking_up is not None:
            self._taking_up.cancel()
        self._taking_up = asyncio.ensure_future(self.take_up(owns))

    async def take_up(self, owns: Callable[[UUID], bool]) -> None:
        """After a rebalance: drop the instances of workspaces now elsewhere, take up the open ones
        of the workspaces now here from their last notification (and the window each alert that
        resolved within max_age_s resolved at: the windows a worker that died closed and notified
        may be closed again here, and send nothing then), and their mutes in force."""
        await self.rules_loaded.wait()
        pool = await self._pool.get()
        last = await self._retrying("loading open alerts", lambda: self._fetch_open(pool))
        async with self._lock:  # no command meanwhile: the mutes read are the mutes applied
            mutes = await self._retrying("loading alert mutes", lambda: self._fetch_mutes(pool))
            now = datetime.now(UTC)
            self.engine.forget(owns)
            self.engine.restore(n for n in last if owns(n.workspace_id))
            self.engine.restore_mutes(((m.workspace_id, m.scope, m.target, m.muted_until) for m in mutes
                                      if owns(m.workspace_id)), now)
            self._report()
            await self._publish_leftovers(pool, owns)
        self.taken_up.set()

    async def _publish_leftovers(self, pool: asyncpg.Pool, owns: Callable[[UUID], bool]) -> None:
        """Publish the notifications of these workspaces recorded and not marked published."""

        async def fetch() -> list[AlertNotification]:
            async with pool.acquire() as conn:
                return await unpublished(conn)

        notes = [n for n in await self._retrying("loading unpublished alert notifications", fetch)
                 if owns(n.workspace_id)]
        if notes:
            log.warning("publishing %d alert notifications recorded but not published before", len(notes))
            await self._send(notes, recorded=True)

    async def _fetch_open(self, pool: asyncpg.Pool) -> list[AlertNotification]:
        # a resolution older than max_age_s guards no window: such windows are not evaluated
        since = datetime.fromtimestamp(time.time() - self.max_age_s, UTC)
        async with pool.acquire() as conn:
            return await open_alerts(conn, resolved_since=since)

    @staticmethod
    async def _fetch_mutes(pool: asyncpg.Pool) -> list[StoredMute]:
        async with pool.acquire() as conn:
            return await load_mutes(conn, datetime.now(UTC))

    # -- inputs ------------------------------------------------------------------------------
    async def windows_closed(self, rollups: list[Rollup], set_aside=None) -> None:
        """Evaluate closed windows (those that ended within max_age_s: history is stored and
        rolled up, never alerted on). A window the engine fails on is handed to `set_aside`
        (rollup, reason, text) for the DLQ, and the rest go on."""
        await self.taken_up.wait()
        engine = self.engine
        notes: list[AlertNotification] = []
        async with self._lock:
            now = datetime.now(UTC)
            oldest = now.timestamp() - self.max_age_s
            for r in rollups:
                if r.window_end.timestamp() < oldest:
                    metrics.ALERTS_SKIPPED_OLD.inc()
                    continue
                try:
                    for metric, labels, value in observations(r):
                        if engine.watches(r.workspace_id, metric):
                            notes += engine.observe(r.workspace_id, metric, labels, value, r.window_end, r.window_s, now)
                except Exception as exc:  # this window's values broke the engine
                    log.exception("alert engine failed on a %s window of %s", r.kind, r.workspace_id)
                    if set_aside is not None:
                        await set_aside(r, "alert_runtime", f"{exc.__class__.__name__}: {exc}", "alerts")
            closed_at = {(r.workspace_id, r.window_end): r.closed_at for r in rollups}
            await self._send(notes, closed_at)
            self._report()

    async def command(self, cmd: AlertCommand) -> None:
        """Apply an ack, mute or unmute; a mute is stored (alert_mutes) so that a restart or the
        next owner of the workspace keeps it, an unmute deletes it."""
        await self.taken_up.wait()
        async with self._lock:
            if self.engine.foreign(cmd):  # another workspace's alert or rule: nothing changes, nothing stored
                metrics.ALERT_COMMANDS_REFUSED.labels("foreign_workspace").inc()
                log.warning("alert %s of workspace %s refused: it names an alert or rule of another workspace",
                            cmd.command, cmd.workspace_id)
                return
            notes = self.engine.command(cmd)
            if cmd.command in ("mute", "unmute"):
                await self._store_mute(cmd)
            await self._send(notes)

    async def _store_mute(self, cmd: AlertCommand) -> None:
        scope, target = ("fingerprint", cmd.fingerprint) if cmd.fingerprint else ("rule", str(cmd.rule_id))
        pool = await self._pool.get()

        async def store() -> None:
            async with pool.acquire() as conn:
                if cmd.command == "mute":
                    await save_mute(conn, cmd.workspace_id, scope, target, cmd.until, cmd.by, cmd.issued_at)
                else:
                    await delete_mute(conn, cmd.workspace_id, scope, target)

        try:
            await self._retrying(f"storing an alert {cmd.command}", store)
        except PermanentFailure as exc:  # applied here, not kept across a restart
            log.error("alert %s of %s %s not stored: %s", cmd.command, scope, target, exc)
            metrics.STAGE_FAILURES.labels("alerts", "database_rejected").inc()

    async def tick(self) -> None:
        if not self.taken_up.is_set():
            return
        async with self._lock:
            await self._send(self.engine.tick(datetime.now(UTC)))
            self._report()

    def _report(self) -> None:
        metrics.ALERT_INSTANCES.set(len(self.engine.instances))

    # -- output ------------------------------------------------------------------------------
    async def _send(self, notes: list[AlertNotification], closed_at: dict | None = None,
                    recorded: bool = False) -> None:
        """Record (unless `recorded`), publish, mark published."""
        if not notes:
            return
        pool = await self._pool.get()

        async def record() -> int:
            async with pool.acquire() as conn:
                return await record_notifications(conn, notes)

        try:
            if not recorded:
                await self._retrying(f"recording {len(notes)} alert notifications", record)
        except PermanentFailure as exc:  # not the database's state: these notifications' content
            log.error("alert notifications could not be recorded (%s); publishing them anyway", exc)
            metrics.STAGE_FAILURES.labels("alerts", "database_rejected").inc(len(notes))

        async def publish() -> None:
            futures = [await self._publish(n.fingerprint.encode(), orjson.dumps(n.model_dump(mode="json")))
                       for n in notes]
            for fut in futures:
                if isinstance(fut, Awaitable):
                    await fut

        try:
            await self._retrying(f"publishing {len(notes)} alert notifications", publish)
        except PermanentFailure as exc:  # e.g. a notification over the topic's size limit: recorded, not sent
            log.error("alert notifications recorded but not published: %s", exc)
            metrics.STAGE_FAILURES.labels("alerts", "publish").inc(len(notes))
            return

        async def mark() -> int:
            async with pool.acquire() as conn:
                return await mark_published(conn, notes)

        try:  # unmarked, they would be published again by the next owner: a recognisable repeat
            await self._retrying(f"marking {len(notes)} alert notifications published", mark)
        except PermanentFailure as exc:
            log.error("alert notifications published but not marked: %s", exc)
        now = time.time()
        for n in notes:
            metrics.ALERT_NOTIFICATIONS.labels(n.status).inc()
            window_end = n.resolved_at if n.status == "resolved" else n.triggered_at
            closed = (closed_at or {}).get((n.workspace_id, window_end))
            if closed is not None:
                metrics.ALERT_SECONDS.labels(n.status).observe(max(0.0, now - closed.timestamp()))
            log.info("%s", n.message)
