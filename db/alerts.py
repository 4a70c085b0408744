"""Alert rules and notifications in PostgreSQL (migration 0003): the one place for their SQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import asyncpg

from schemas.alerts import AlertNotification, AlertRule

#: NOTIFY channel of the performance_alerts trigger; the payload is the changed rule's id
RULES_CHANNEL = "learnstream_alert_rules"

_RULE_COLUMNS = (
    "id", "workspace_id", "alert_name", "alert_type", "metric", "condition_op", "threshold_value",
    "window_s", "severity", "notification_channels", "is_active", "for_duration_s", "keep_firing_for_s",
    "repeat_interval_s", "nodata_after_s",
)
#: notification status -> the seed's alert_status (firing is 'active')
_STATUS = {"firing": "active", "resolved": "resolved", "nodata": "nodata", "acknowledged": "acknowledged",
           "muted": "muted"}


async def load_rules(conn: asyncpg.Connection) -> list[AlertRule]:
    """Every rule (active or not: the engine needs to know which were deactivated)."""
    rows = await conn.fetch(
        f"SELECT {', '.join(_RULE_COLUMNS)}, severity::text AS severity_text FROM performance_alerts ORDER BY created_at"
    )
    out = []
    for r in rows:
        d = {c: r[c] for c in _RULE_COLUMNS}
        d["severity"] = r["severity_text"]
        d["notification_channels"] = list(d["notification_channels"])
        if d["nodata_after_s"] is None:
            del d["nodata_after_s"]
        out.append(AlertRule(**d))
    return out


async def add_rule(conn: asyncpg.Connection, rule: AlertRule, created_by: str | None = None) -> None:
    cols = ", ".join(_RULE_COLUMNS)
    params = ", ".join(f"${i}" for i in range(1, len(_RULE_COLUMNS) + 1))
    values = [getattr(rule, c) for c in _RULE_COLUMNS]
    await conn.execute(
        f"INSERT INTO performance_alerts ({cols}, created_by) VALUES ({params}, ${len(_RULE_COLUMNS) + 1})",
        *values, created_by,
    )


async def record_notifications(conn: asyncpg.Connection, notes: Iterable[AlertNotification]) -> int:
    """Insert notification rows; a notification already recorded is skipped. Returns rows inserted."""
    rows = [
        (n.rule_id, n.workspace_id, n.fingerprint, _STATUS[n.status], n.severity, n.current_value, n.threshold,
         dict(n.labels), n.message, n.triggered_at, n.resolved_at, n.acknowledged_by, n.repeat, n.sent_at)
        for n in notes
    ]
    if not rows:
        return 0
    result = await conn.fetchval(
        """
        WITH input AS (
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::alert_status[], $5::alert_severity[],
                                 $6::float8[], $7::float8[], $8::jsonb[], $9::text[], $10::timestamptz[],
                                 $11::timestamptz[], $12::text[], $13::bool[], $14::timestamptz[])
                AS t(alert_id, workspace_id, fingerprint, status, severity, current_value, threshold_value,
                     labels, alert_message, triggered_at, resolved_at, acknowledged_by, is_repeat, sent_at)
        ), ins AS (
            INSERT INTO alert_notifications (alert_id, workspace_id, fingerprint, status, severity, current_value,
                threshold_value, labels, alert_message, triggered_at, resolved_at, acknowledged_by, is_repeat, sent_at)
            SELECT * FROM input
            ON CONFLICT (fingerprint, status, sent_at) DO NOTHING
            RETURNING 1
        )
        SELECT count(*) FROM ins
        """,
        *[list(col) for col in zip(*rows)],
    )
    return int(result)


async def listen_rule_changes(conn: asyncpg.Connection, on_change: Callable[[str], None]) -> Callable[[], asyncio.Future]:
    """Call `on_change(rule_id)` for every change to performance_alerts; returns an async remover."""

    def _listener(_conn, _pid, _channel, payload: str) -> None:
        on_change(payload)

    await conn.add_listener(RULES_CHANNEL, _listener)
    return lambda: conn.remove_listener(RULES_CHANNEL, _listener)
