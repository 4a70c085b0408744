"""The alert delivery's directory of channels: every workspace's channels and each rule's channel
names, read from PostgreSQL in one snapshot (db/channels.py) and reread as the delivery asks, plus
the built-in channels every workspace has: `topic` (the notifications topic itself) and, when
LEARNSTREAM_ALERTMANAGER_URL is set, `alertmanager`."""

from __future__ import annotations

import asyncio
import logging
import time
from uuid import UUID

import asyncpg
from pydantic import ValidationError

from db.channels import delivery_config
from db.pool import connect
from schemas.channels import BUILTIN_TOPIC, AlertChannel
from streams import metrics
from streams.config_rows import report_invalid

log = logging.getLogger("learnstream.alerts.delivery")

#: a load waits at most this long for a lock on alert_channels or performance_alerts (a lock someone
#: holds past it: the channels loaded last stay, and the load is tried again at the next refresh)
CHANNELS_LOCK_TIMEOUT_S = 5.0


class ChannelDirectory:
    """The channels and each rule's channel names, reread every `delivery_config_refresh_s` (and at
    once, at most once a second, when a notification names a rule or a channel not in the snapshot)."""

    def __init__(self, dsn: str, alertmanager_url: str | None, lock_timeout_s: float = CHANNELS_LOCK_TIMEOUT_S) -> None:
        self._dsn = dsn
        self.lock_timeout_s = lock_timeout_s
        self._lock_waits = 0  # loads in a row that timed out on a lock (logged at the first)
        self.channels: dict[tuple[UUID, str], AlertChannel] = {}
        self.rules: dict[UUID, list[str]] = {}
        self.loaded_at = 0.0
        self._lock = asyncio.Lock()
        self._default_am: str | None = None
        if alertmanager_url:
            try:
                AlertChannel(workspace_id=UUID(int=0), name="alertmanager", kind="alertmanager",
                             url=alertmanager_url)
                self._default_am = alertmanager_url
            except ValidationError as exc:
                log.error("LEARNSTREAM_ALERTMANAGER_URL is not usable (%s); channel `alertmanager` is not defined",
                          exc.errors()[0]["msg"])

    async def load(self) -> None:
        async with self._lock:
            conn = await connect(self._dsn, timeout=5)
            try:
                channels, rules, invalid = await delivery_config(conn, self.lock_timeout_s)
            finally:
                await conn.close()
            report_invalid("alert_channels", invalid)  # skipped: its notifications dead-letter as unknown_channel
            self.channels = {(c.workspace_id, c.name): c for c in channels}
            self.rules = rules
            self.loaded_at = time.monotonic()
            if self._lock_waits:
                log.info("alert channels: loaded again after %d loads that timed out on a lock", self._lock_waits)
                self._lock_waits = 0

    async def refresh(self, soon: float) -> bool:
        """Reload if the snapshot is older than `soon` seconds; False if the database did not answer."""
        if time.monotonic() - self.loaded_at < soon:
            return True
        try:
            await self.load()
            return True
        except asyncio.CancelledError:
            raise
        except asyncpg.LockNotAvailableError:  # someone's open transaction holds a conflicting lock
            metrics.CONFIG_LOCK_TIMEOUTS.labels("alert_channels").inc()
            self._lock_waits += 1
            if self._lock_waits == 1:
                log.warning("alert channels: a lock on alert_channels or performance_alerts was held longer than "
                            "%.1f s (an open transaction); using the %d channels read last and trying again at each "
                            "refresh (counted in learnstream_config_lock_timeouts_total; logged again when a load "
                            "succeeds)", self.lock_timeout_s, len(self.channels))
            self.loaded_at = time.monotonic()  # not again at once
            return False
        except Exception as exc:  # noqa: BLE001 - the last snapshot stands meanwhile
            log.warning("reading the alert channels failed (%s: %s); using the last ones read",
                        exc.__class__.__name__, exc)
            self.loaded_at = time.monotonic()  # not again at once
            return False

    def channel(self, workspace_id: UUID, name: str) -> AlertChannel | None:
        """The workspace's channel `name` (a built-in one if it has none of that name); None if neither."""
        ch = self.channels.get((workspace_id, name))
        if ch is not None:
            return ch
        if name == BUILTIN_TOPIC:
            return AlertChannel(workspace_id=workspace_id, name=name, kind="topic")
        if name == "alertmanager" and self._default_am:
            return AlertChannel(workspace_id=workspace_id, name=name, kind="alertmanager", url=self._default_am)
        return None
