"""Alert rules, notifications and mutes in PostgreSQL (migrations 0003, 0016: a rule's name is unique in
its workspace, 0020: mutes, the notifications' outbox, 0021: the delivery backlog): the one place for
their SQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import NamedTuple
from uuid import UUID

import asyncpg

from db.config_rows import InvalidRow, reason
from db.pool import set_lock_timeout
from schemas.alerts import AlertNotification, AlertRule

#: NOTIFY channel of the performance_alerts trigger (migration 0023): an empty payload, a hint only.
#: PostgreSQL lets any client LISTEN and NOTIFY any channel, so a listener trusts `rules_version`
#: (which only the trigger writes), never the notification
RULES_CHANNEL = "learnstream_alert_rules"
#: first key of the advisory locks of `lock_workspace_rules` (the second: the workspace's hash)
_RULES_LOCK = 0x6C73_6172  # "lsar"

_RULE_COLUMNS = (
    "id", "workspace_id", "alert_name", "alert_type", "metric", "condition_op", "threshold_value",
    "window_s", "severity", "notification_channels", "is_active", "for_duration_s", "keep_firing_for_s",
    "repeat_interval_s", "nodata_after_s",
)
#: notification status -> the seed's alert_status (firing is 'active')
_STATUS = {"firing": "active", "resolved": "resolved", "nodata": "nodata", "acknowledged": "acknowledged",
           "muted": "muted"}
_NOTIFICATION_STATUS = {v: k for k, v in _STATUS.items()}


_SELECT_RULES = f"SELECT {', '.join(_RULE_COLUMNS)}, severity::text AS severity_text FROM performance_alerts"


def _rule(r: asyncpg.Record) -> AlertRule:
    d = {c: r[c] for c in _RULE_COLUMNS}
    d["severity"] = r["severity_text"]
    d["notification_channels"] = list(d["notification_channels"])
    if d["nodata_after_s"] is None:
        del d["nodata_after_s"]
    return AlertRule(**d)


def _checked(rows: list[asyncpg.Record]) -> tuple[list[AlertRule], list[InvalidRow]]:
    good, bad = [], []
    for r in rows:
        try:
            good.append(_rule(r))
        except ValueError as exc:  # pydantic's ValidationError: a row the contract refuses
            bad.append(InvalidRow("performance_alerts", r["workspace_id"], f"{r['id']} {r['alert_name']!r}",
                                  reason(exc)))
    return good, bad


async def load_rules_checked(conn: asyncpg.Connection, workspace_ids: list[UUID] | None = None,
                             ) -> tuple[list[AlertRule], list[InvalidRow]]:
    """Every rule (active or not: the engine needs to know which were deactivated), or those of
    `workspace_ids`, oldest first; each row validated on its own: the rules, and the rows the
    contract refuses (an empty name, a NaN threshold, ...: the others still load)."""
    rows = await conn.fetch(
        _SELECT_RULES + " WHERE $1::uuid[] IS NULL OR workspace_id = ANY($1::uuid[]) ORDER BY created_at, id",
        workspace_ids,
    )
    return _checked(rows)


async def load_rules(conn: asyncpg.Connection, workspace_ids: list[UUID] | None = None) -> list[AlertRule]:
    """The valid rules of load_rules_checked (the invalid rows left out)."""
    return (await load_rules_checked(conn, workspace_ids))[0]


async def rules_version(conn: asyncpg.Connection) -> tuple[int, int]:
    """The rules' change marker (migration 0023): it moves with every committed change to
    performance_alerts, and nothing else moves it."""
    row = await conn.fetchrow("SELECT count(*), coalesce(sum(version), 0)::bigint FROM alert_rules_version")
    return row[0], row[1]


async def load_rules_versioned(conn: asyncpg.Connection, lock_timeout_s: float | None = None,
                               ) -> tuple[tuple[int, int], list[AlertRule], list[InvalidRow]]:
    """`rules_version` and load_rules_checked of every workspace, from one snapshot. With
    `lock_timeout_s`, a table lock held by someone else longer than that raises
    asyncpg.LockNotAvailableError instead of waiting for it."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await set_lock_timeout(conn, lock_timeout_s)
        version = await rules_version(conn)
        rules, invalid = await load_rules_checked(conn)
    return version, rules, invalid


async def get_rule(conn: asyncpg.Connection, rule_id: UUID) -> AlertRule | None:
    """The rule `rule_id`; None if there is none, or the row is invalid (load_rules_checked)."""
    row = await conn.fetchrow(_SELECT_RULES + " WHERE id = $1", rule_id)
    return None if row is None else next(iter(_checked([row])[0]), None)


async def rules_named(conn: asyncpg.Connection, name: str, workspace_id: UUID | None = None) -> list[AlertRule]:
    """The rules named `name` (in `workspace_id`, or in any workspace: one per workspace at most);
    invalid rows left out."""
    rows = await conn.fetch(
        _SELECT_RULES + " WHERE alert_name = $1 AND ($2::uuid IS NULL OR workspace_id = $2) ORDER BY workspace_id",
        name, workspace_id,
    )
    return _checked(rows)[0]


async def lock_workspace_rules(conn: asyncpg.Connection, workspace_ids: list[UUID]) -> None:
    """Inside a transaction: hold off other rule-set changes of these workspaces until it ends
    (`alerts rules apply` plans and applies against rules nobody changes meanwhile)."""
    for ws in sorted(workspace_ids):
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _RULES_LOCK, str(ws))
    await conn.execute("SELECT 1 FROM performance_alerts WHERE workspace_id = ANY($1::uuid[]) FOR UPDATE",
                       workspace_ids)


async def rule_history(conn: asyncpg.Connection, rule_id: UUID) -> dict:
    """created_by, created_at, updated_at of a rule, with its notifications: how many, the last one
    (sent_at, status as notifications name it) and how many instances are open (last notification
    not resolved)."""
    row = await conn.fetchrow(
        """
        SELECT a.created_by, a.created_at, a.updated_at,
               (SELECT count(*) FROM alert_notifications n WHERE n.alert_id = a.id) AS notifications,
               last.sent_at AS last_sent_at, last.status::text AS last_status,
               (SELECT count(*) FROM (
                    SELECT DISTINCT ON (n.fingerprint) n.status FROM alert_notifications n
                    WHERE n.alert_id = a.id ORDER BY n.fingerprint, n.sent_at DESC) f
                WHERE f.status <> 'resolved') AS open_instances
        FROM performance_alerts a
        LEFT JOIN LATERAL (
            SELECT sent_at, status FROM alert_notifications n WHERE n.alert_id = a.id
            ORDER BY sent_at DESC LIMIT 1) last ON true
        WHERE a.id = $1
        """,
        rule_id,
    )
    out = dict(row)
    out["last_status"] = _NOTIFICATION_STATUS.get(out["last_status"])
    return out


async def add_rule(conn: asyncpg.Connection, rule: AlertRule, created_by: str | None = None) -> None:
    cols = ", ".join(_RULE_COLUMNS)
    params = ", ".join(f"${i}" for i in range(1, len(_RULE_COLUMNS) + 1))
    values = [getattr(rule, c) for c in _RULE_COLUMNS]
    await conn.execute(
        f"INSERT INTO performance_alerts ({cols}, created_by) VALUES ({params}, ${len(_RULE_COLUMNS) + 1})",
        *values, created_by,
    )


async def update_rule(conn: asyncpg.Connection, rule: AlertRule) -> bool:
    """Set every field of rule `rule.id` (but its workspace) to `rule`'s. Returns whether it existed."""
    cols = [c for c in _RULE_COLUMNS if c not in ("id", "workspace_id")]
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(cols, 2))
    status = await conn.execute(
        f"UPDATE performance_alerts SET {sets}, updated_at = now() WHERE id = $1",
        rule.id, *[getattr(rule, c) for c in cols],
    )
    return status != "UPDATE 0"


async def set_rule_active(conn: asyncpg.Connection, rule_id: UUID, active: bool) -> bool:
    """Enable or disable a rule. Returns whether that changed it (False: it was already so)."""
    status = await conn.execute(
        "UPDATE performance_alerts SET is_active = $2, updated_at = now() WHERE id = $1 AND is_active <> $2",
        rule_id, active,
    )
    return status != "UPDATE 0"


async def remove_rule(conn: asyncpg.Connection, rule_id) -> bool:
    """Delete a rule (its notifications stay, as history). Returns whether it existed."""
    return (await conn.execute("DELETE FROM performance_alerts WHERE id = $1", rule_id)) != "DELETE 0"


async def performance_metric_names(conn: asyncpg.Connection, workspace_id: UUID | None = None) -> list[str]:
    """The metric_names of performance samples that closed windows exist for (in `workspace_id` or
    any): the names alert rules may watch as `<metric_name>.<stat>`. A skip scan of the rollups'
    (workspace_id, metric_name, window_start) index: one probe per (workspace, name), not a read
    of every window."""
    rows = await conn.fetch(
        """
        WITH RECURSIVE seen AS (
            (SELECT workspace_id, metric_name FROM performance_rollups
             WHERE $1::uuid IS NULL OR workspace_id = $1
             ORDER BY workspace_id, metric_name LIMIT 1)
            UNION ALL
            SELECT nxt.workspace_id, nxt.metric_name FROM seen, LATERAL (
                SELECT r.workspace_id, r.metric_name FROM performance_rollups r
                WHERE (r.workspace_id, r.metric_name) > (seen.workspace_id, seen.metric_name)
                  AND ($1::uuid IS NULL OR r.workspace_id = $1)
                ORDER BY r.workspace_id, r.metric_name LIMIT 1) nxt
        )
        SELECT DISTINCT metric_name FROM seen ORDER BY metric_name
        """,
        workspace_id,
    )
    return [r[0] for r in rows]


async def record_notifications(conn: asyncpg.Connection, notes: Iterable[AlertNotification]) -> int:
    """Insert notification rows, unpublished (the outbox: `mark_published` once on the topic); a
    notification already recorded is skipped. Returns rows inserted."""
    rows = [
        (n.rule_id, n.workspace_id, n.fingerprint, _STATUS[n.status], n.severity, n.current_value, n.threshold,
         dict(n.labels), n.message, n.triggered_at, n.resolved_at, n.acknowledged_by, n.repeat, n.sent_at,
         n.rule_name, n.condition_op, n.window_s)
        for n in notes
    ]
    if not rows:
        return 0
    result = await conn.fetchval(
        """
        WITH input AS (
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::alert_status[], $5::alert_severity[],
                                 $6::float8[], $7::float8[], $8::jsonb[], $9::text[], $10::timestamptz[],
                                 $11::timestamptz[], $12::text[], $13::bool[], $14::timestamptz[], $15::text[],
                                 $16::text[], $17::float8[])
                AS t(alert_id, workspace_id, fingerprint, status, severity, current_value, threshold_value,
                     labels, alert_message, triggered_at, resolved_at, acknowledged_by, is_repeat, sent_at,
                     rule_name, condition_op, window_s)
        ), ins AS (
            INSERT INTO alert_notifications (alert_id, workspace_id, fingerprint, status, severity, current_value,
                threshold_value, labels, alert_message, triggered_at, resolved_at, acknowledged_by, is_repeat, sent_at,
                rule_name, condition_op, window_s)
            SELECT * FROM input
            ON CONFLICT (fingerprint, status, sent_at) DO NOTHING
            RETURNING 1
        )
        SELECT count(*) FROM ins
        """,
        *[list(col) for col in zip(*rows)],
    )
    return int(result)


async def listen_rule_changes(conn: asyncpg.Connection, on_change: Callable[[], None]) -> Callable[[], asyncio.Future]:
    """Call `on_change()` for every notification that performance_alerts may have changed (a
    committed change sends one; so can anyone else: check `rules_version`); returns an async remover."""

    def _listener(_conn, _pid, _channel, _payload: str) -> None:
        on_change()

    await conn.add_listener(RULES_CHANNEL, _listener)
    return lambda: conn.remove_listener(RULES_CHANNEL, _listener)


async def mark_published(conn: asyncpg.Connection, notes: Iterable[AlertNotification]) -> int:
    """Mark recorded notifications as on the topic. Returns the rows marked now."""
    keys = [(n.fingerprint, _STATUS[n.status], n.sent_at) for n in notes]
    if not keys:
        return 0
    status = await conn.execute(
        """
        UPDATE alert_notifications n SET published_at = now()
        FROM unnest($1::text[], $2::alert_status[], $3::timestamptz[]) AS k(fingerprint, status, sent_at)
        WHERE n.fingerprint = k.fingerprint AND n.status = k.status AND n.sent_at = k.sent_at
          AND n.published_at IS NULL
        """,
        *[list(col) for col in zip(*keys)],
    )
    return int(status.split()[-1])


async def unpublished(conn: asyncpg.Connection, limit: int = 10_000) -> list[AlertNotification]:
    """Notifications recorded and not marked published (a worker stopped between the two), oldest
    first, as they were recorded."""
    rows = await conn.fetch(
        """
        SELECT n.*, coalesce(n.rule_name, a.alert_name) AS name, coalesce(n.condition_op, a.condition_op) AS op,
               coalesce(n.window_s, a.window_s) AS win
        FROM alert_notifications n LEFT JOIN performance_alerts a ON a.id = n.alert_id
        WHERE n.published_at IS NULL AND coalesce(n.rule_name, a.alert_name) IS NOT NULL
        ORDER BY n.sent_at, n.fingerprint LIMIT $1
        """,
        limit,
    )
    return [_notification(r, r["name"], r["op"], r["win"]) for r in rows]


async def stored_notifications(conn: asyncpg.Connection, notes: Iterable[AlertNotification],
                               ) -> dict[tuple[str, str, datetime], AlertNotification]:
    """The stored rows of `notes` (by fingerprint, status and sent_at: the table's key), as
    notifications: what the delivery compares a consumed notification with before delivering it
    (only what the engine recorded is delivered; a row stored before migration 0020 takes its
    rule's name, operator and window from the rule)."""
    keys = [(n.fingerprint, _STATUS[n.status], n.sent_at) for n in notes if storable_key(n)]
    if not keys:
        return {}
    rows = await conn.fetch(
        """
        SELECT n.*, coalesce(n.rule_name, a.alert_name) AS name, coalesce(n.condition_op, a.condition_op) AS op,
               coalesce(n.window_s, a.window_s) AS win
        FROM alert_notifications n
        JOIN unnest($1::text[], $2::alert_status[], $3::timestamptz[]) AS k(fingerprint, status, sent_at)
          ON n.fingerprint = k.fingerprint AND n.status = k.status AND n.sent_at = k.sent_at
        LEFT JOIN performance_alerts a ON a.id = n.alert_id
        """,
        *[list(col) for col in zip(*keys)],
    )
    out = {}
    for r in rows:
        if r["name"] is None or r["op"] is None or r["win"] is None:
            continue
        n = _notification(r, r["name"], r["op"], r["win"])
        out[(n.fingerprint, n.status, n.sent_at)] = n
    return out


#: alert_notifications.fingerprint is varchar(32)
FINGERPRINT_MAX = 32


def storable_key(note: AlertNotification) -> bool:
    """Whether `note`'s key (fingerprint, status, sent_at) could be a stored row's at all: a key
    PostgreSQL cannot take (a NUL, a fingerprint over 32 characters, a time it cannot hold) is no
    recorded notification, and must not make the query of the others fail."""
    if len(note.fingerprint) > FINGERPRINT_MAX or "\x00" in note.fingerprint:
        return False
    try:
        note.sent_at.astimezone(UTC)
    except (OverflowError, ValueError):
        return False
    return True


def _notification(r: asyncpg.Record, rule_name: str, condition_op: str, window_s: float) -> AlertNotification:
    return AlertNotification(
        fingerprint=r["fingerprint"], rule_id=r["alert_id"], rule_name=rule_name,
        workspace_id=r["workspace_id"], severity=str(r["severity"]), status=_NOTIFICATION_STATUS[str(r["status"])],
        current_value=r["current_value"], threshold=r["threshold_value"], condition_op=condition_op,
        window_s=window_s, labels=r["labels"], message=r["alert_message"],
        triggered_at=r["triggered_at"], resolved_at=r["resolved_at"], sent_at=r["sent_at"],
        repeat=r["is_repeat"], acknowledged_by=r["acknowledged_by"],
    )


async def open_alerts(conn: asyncpg.Connection, resolved_since: datetime | None = None) -> list[AlertNotification]:
    """The last notification of every alert instance that has not resolved (what a worker takes up
    after a restart or a rebalance), and with `resolved_since` of every one that resolved in a
    notification sent since then (the worker's guard against windows closed again). One evaluation
    may send an alert's resolved and its next firing with the same sent_at: the later is the one of
    the later instance (triggered_at), and within one instance the resolved."""
    rows = await conn.fetch(
        """
        SELECT * FROM (
            SELECT DISTINCT ON (n.fingerprint) n.*, a.alert_name AS name, a.condition_op AS op, a.window_s AS win
            FROM alert_notifications n JOIN performance_alerts a ON a.id = n.alert_id
            ORDER BY n.fingerprint, n.sent_at DESC, n.triggered_at DESC, (n.status = 'resolved') DESC
        ) last WHERE status <> 'resolved' OR sent_at >= $1
        """,
        resolved_since,
    )
    return [_notification(r, r["name"], r["op"], r["win"]) for r in rows]


# ------------------------------------------------------------------------------ mutes (0020)


class StoredMute(NamedTuple):
    workspace_id: UUID
    scope: str  # 'rule' (target: the rule's id) or 'fingerprint'
    target: str
    muted_until: datetime


async def save_mute(conn: asyncpg.Connection, workspace_id: UUID, scope: str, target: str, until: datetime,
                    by: str | None, issued_at: datetime) -> None:
    """Record a mute in force (a later mute of the same target replaces it)."""
    await conn.execute(
        """
        INSERT INTO alert_mutes (workspace_id, scope, target, muted_until, muted_by, issued_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (workspace_id, scope, target)
        DO UPDATE SET muted_until = EXCLUDED.muted_until, muted_by = EXCLUDED.muted_by, issued_at = EXCLUDED.issued_at
        """,
        workspace_id, scope, target, until, by, issued_at,
    )


async def delete_mute(conn: asyncpg.Connection, workspace_id: UUID, scope: str, target: str) -> None:
    await conn.execute("DELETE FROM alert_mutes WHERE workspace_id = $1 AND scope = $2 AND target = $3",
                       workspace_id, scope, target)


async def load_mutes(conn: asyncpg.Connection, now: datetime) -> list[StoredMute]:
    """The mutes in force at `now`; those that ended are deleted."""
    await conn.execute("DELETE FROM alert_mutes WHERE muted_until <= $1", now)
    rows = await conn.fetch("SELECT workspace_id, scope, target, muted_until FROM alert_mutes WHERE muted_until > $1",
                            now)
    return [StoredMute(r["workspace_id"], r["scope"], r["target"], r["muted_until"]) for r in rows]


# ------------------------------------------------------------------------------ delivery backlog (0021)


class BacklogRow(NamedTuple):
    """A notification deferred for one channel: where it was consumed (topic, partition, offset)
    and its value as consumed."""

    workspace_id: UUID
    channel: str
    topic: str
    partition: int
    offset: int
    value: bytes
    deferred_at: datetime | None = None


class BacklogSummary(NamedTuple):
    workspace_id: UUID
    channel: str
    partition: int
    rows: int
    last_offset: int


async def defer_deliveries(conn: asyncpg.Connection, group: str, rows: list[BacklogRow]) -> int:
    """Write `rows` to the backlog of consumer group `group` (a row there already is left as it is);
    returns how many were new."""
    if not rows:
        return 0
    status = await conn.execute(
        """
        INSERT INTO alert_delivery_backlog (consumer_group, workspace_id, channel, source_topic, source_partition,
                                            source_offset, notification)
        SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::bytea[])
        ON CONFLICT DO NOTHING
        """,
        group, [r.workspace_id for r in rows], [r.channel for r in rows], [r.topic for r in rows],
        [r.partition for r in rows], [r.offset for r in rows], [r.value for r in rows],
    )
    return int(status.split()[-1])


async def deferred_deliveries(conn: asyncpg.Connection, group: str, workspace_id: UUID, channel: str, topic: str,
                              partition: int, after: int, limit: int) -> list[BacklogRow]:
    """The next `limit` rows of one channel's backlog from one partition, after offset `after`, in
    offset order."""
    rows = await conn.fetch(
        """
        SELECT source_offset, notification, deferred_at FROM alert_delivery_backlog
        WHERE consumer_group = $1 AND source_topic = $2 AND source_partition = $3 AND workspace_id = $4
          AND channel = $5 AND source_offset > $6
        ORDER BY source_offset LIMIT $7
        """,
        group, topic, partition, workspace_id, channel, after, limit,
    )
    return [BacklogRow(workspace_id, channel, topic, partition, r["source_offset"], r["notification"],
                       r["deferred_at"]) for r in rows]


async def drop_deferred(conn: asyncpg.Connection, group: str, rows: list[BacklogRow]) -> int:
    """Delete backlog rows (their notifications were delivered, dead-lettered or skipped)."""
    if not rows:
        return 0
    status = await conn.execute(
        """
        DELETE FROM alert_delivery_backlog b
        USING unnest($2::uuid[], $3::text[], $4::text[], $5::int[], $6::bigint[]) AS d(ws, ch, t, p, o)
        WHERE b.consumer_group = $1 AND b.workspace_id = d.ws AND b.channel = d.ch AND b.source_topic = d.t
          AND b.source_partition = d.p AND b.source_offset = d.o
        """,
        group, [r.workspace_id for r in rows], [r.channel for r in rows], [r.topic for r in rows],
        [r.partition for r in rows], [r.offset for r in rows],
    )
    return int(status.split()[-1])


async def backlog_summary(conn: asyncpg.Connection, group: str, topic: str,
                          partitions: list[int]) -> list[BacklogSummary]:
    """Per channel and partition (of those given): the rows waiting and the last offset among them."""
    rows = await conn.fetch(
        """
        SELECT workspace_id, channel, source_partition, count(*) AS n, max(source_offset) AS last
        FROM alert_delivery_backlog
        WHERE consumer_group = $1 AND source_topic = $2 AND source_partition = ANY($3::int[])
        GROUP BY workspace_id, channel, source_partition
        """,
        group, topic, partitions,
    )
    return [BacklogSummary(r["workspace_id"], r["channel"], r["source_partition"], r["n"], r["last"]) for r in rows]
