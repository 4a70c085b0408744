"""Alert rules and notifications in PostgreSQL (migration 0003, db/alerts.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.alerts import add_rule, listen_rule_changes, load_rules, record_notifications, rules_version
from db.pool import connect
from schemas.alerts import AlertRule
from streams.alerts.engine import AlertEngine

pytestmark = pytest.mark.services
WS = uuid.UUID(int=42)
T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _rule(**kw) -> AlertRule:
    base = dict(id=uuid.uuid4(), workspace_id=WS, alert_name="queue deep", metric="queue_depth.max",
                condition_op=">=", threshold_value=1000, window_s=60, severity="critical",
                notification_channels=["alert-notifications", "email"], for_duration_s=120,
                keep_firing_for_s=60, repeat_interval_s=900, nodata_after_s=300)
    return AlertRule(**(base | kw))


async def test_rules_round_trip_and_changes_are_notified(stack):
    conn = await connect(stack.dsn)
    listener = await connect(stack.dsn)
    changed: asyncio.Queue[int] = asyncio.Queue()
    remove = await listen_rule_changes(listener, lambda: changed.put_nowait(1))
    try:
        # each change is notified (without an id: migration 0023) and moves the change marker
        assert await rules_version(conn) == (0, 0)
        rule = _rule()
        await add_rule(conn, rule, created_by="test")
        assert await asyncio.wait_for(changed.get(), 5) == 1
        assert await rules_version(conn) == (1, 1)
        plain = _rule(alert_name="plain", condition_op="pct_change", severity="info", notification_channels=[],
                      nodata_after_s=None)
        await add_rule(conn, plain)
        assert await asyncio.wait_for(changed.get(), 5) == 1
        assert await rules_version(conn) == (1, 2)
        assert await load_rules(conn) == [rule, plain]

        await conn.execute("UPDATE performance_alerts SET threshold_value = 5, is_active = false WHERE id = $1", rule.id)
        assert await asyncio.wait_for(changed.get(), 5) == 1
        reloaded = {r.id: r for r in await load_rules(conn)}
        assert reloaded[rule.id].threshold_value == 5 and reloaded[rule.id].is_active is False
        await conn.execute("DELETE FROM performance_alerts WHERE id = $1", plain.id)
        assert await asyncio.wait_for(changed.get(), 5) == 1
        assert await rules_version(conn) == (1, 4)
    finally:
        await remove()
        await listener.close()
        await conn.close()


async def test_notifications_are_recorded_once(stack):
    rule = _rule(for_duration_s=0, keep_firing_for_s=0)
    engine = AlertEngine([rule])
    labels = {"queue": "ingest"}
    notes = []
    for i, v in enumerate([10, 5000, 7000, 20]):
        notes += engine.observe(WS, "queue_depth.max", labels, v, T0 + timedelta(minutes=i))
    assert [n.status for n in notes] == ["firing", "resolved"]
    conn = await connect(stack.dsn)
    try:
        await add_rule(conn, rule)
        assert await record_notifications(conn, notes) == 2
        assert await record_notifications(conn, notes) == 0  # redelivered: not recorded twice
        rows = await conn.fetch(
            "SELECT status::text AS status, severity::text AS severity, current_value, labels, alert_id, "
            "triggered_at, resolved_at FROM alert_notifications ORDER BY sent_at"
        )
    finally:
        await conn.close()
    assert [(r["status"], r["severity"], r["current_value"]) for r in rows] == [
        ("active", "critical", 5000.0), ("resolved", "critical", 20.0)]
    assert all(r["labels"] == labels and r["alert_id"] == rule.id for r in rows)
    assert rows[1]["triggered_at"] == T0 + timedelta(minutes=1) and rows[1]["resolved_at"] == T0 + timedelta(minutes=3)


async def test_a_key_postgresql_cannot_take_does_not_fail_the_lookup_of_genuine_notifications(stack):
    """A record written onto the notifications topic by a hostile client, with a key PostgreSQL
    cannot take (a NUL in its fingerprint, one over 32 characters, a time near the end of year 9999
    with a negative offset), is looked up with the genuine ones of the same round: it matches
    nothing, and the genuine ones are still found (the whole round's lookup failed before)."""
    from datetime import timezone

    from db.alerts import stored_notifications

    rule = _rule(for_duration_s=0, keep_firing_for_s=0)
    engine = AlertEngine([rule])
    genuine = []
    for i, v in enumerate([10, 5000]):
        genuine += engine.observe(WS, "queue_depth.max", {"queue": "ingest"}, v, T0 + timedelta(minutes=i))
    assert [n.status for n in genuine] == ["firing"]
    far = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    hostile = [genuine[0].model_copy(update={"fingerprint": "a\x00b"}),
               genuine[0].model_copy(update={"fingerprint": "f" * 33}),
               genuine[0].model_copy(update={"sent_at": far})]
    conn = await connect(stack.dsn)
    try:
        await add_rule(conn, rule)
        assert await record_notifications(conn, genuine) == 1
        found = await stored_notifications(conn, [*hostile, *genuine])
    finally:
        await conn.close()
    assert list(found.values()) == genuine
