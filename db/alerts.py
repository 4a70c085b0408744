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


async def remove_rule(conn: asyncpg.Connection, rule_id) -> bool:
    """Delete a rule (its notifications stay, as history). Returns whether it existed."""
    return (await conn.execute("DELETE FROM performance_alerts WHERE id = $1", rule_id)) != "DELETE 0"


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


async def open_alerts(conn: asyncpg.Connection) -> list[AlertNotification]:
    """The last notification of every alert instance that has not resolved (what a worker takes up
    after a restart or a rebalance)."""
    rows = await conn.fetch(
        """
        SELECT * FROM (
            SELECT DISTINCT ON (n.fingerprint) n.*, a.alert_name, a.condition_op, a.window_s
            FROM alert_notifications n JOIN performance_alerts a ON a.id = n.alert_id
            ORDER BY n.fingerprint, n.sent_at DESC
        ) last WHERE status <> 'resolved'
        """
    )
    back = {v: k for k, v in _STATUS.items()}
    return [
        AlertNotification(
            fingerprint=r["fingerprint"], rule_id=r["alert_id"], rule_name=r["alert_name"],
            workspace_id=r["workspace_id"], severity=str(r["severity"]), status=back[str(r["status"])],
            current_value=r["current_value"], threshold=r["threshold_value"], condition_op=r["condition_op"],
            window_s=r["window_s"], labels=r["labels"], message=r["alert_message"],
            triggered_at=r["triggered_at"], resolved_at=r["resolved_at"], sent_at=r["sent_at"],
            repeat=r["is_repeat"], acknowledged_by=r["acknowledged_by"],
        )
        for r in rows
    ]
