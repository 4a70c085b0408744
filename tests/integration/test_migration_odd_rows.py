"""Migrations 0032 and 0038 over rows only hand SQL can make (issue 25 review items 4 and 15): a
database migrated up to 0031 gets them, then the rest of the migrations must apply. Before: 0032
failed (a NaN predicted_score -> CheckViolation on ratio_accuracy; before_metrics
{"latency_ms": 1e400} -> NumericValueOutOfRange in the sign-flip UPDATE), and without 0038 a zone
PostgreSQL does not know stayed in connectors.timezone."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime

import pytest

from db.databases import create_database, drop_database
from db.migrate import MIGRATIONS_DIR, migrate
from db.pool import connect
from tests.support import admin_dsn

pytestmark = pytest.mark.services

T = datetime(2026, 11, 1, tzinfo=UTC)


async def test_migrations_apply_over_nan_scores_huge_json_numbers_and_unknown_zones(services, tmp_path):
    early = tmp_path / "early"
    early.mkdir()
    for f in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(f.name[:4]) <= 31:
            shutil.copy(f, early / f.name)
    base = admin_dsn(services)
    name = f"t_odd_{uuid.uuid4().hex[:10]}"
    dsn = await create_database(base, name)
    try:
        conn = await connect(dsn)
        try:
            await migrate(conn, early)
            w, m = uuid.uuid4(), uuid.uuid4()
            await conn.execute("""INSERT INTO ml_models (workspace_id, id, name, version, model_type, created_at,
                updated_at, last_event_at) VALUES ($1, $2, 'v', '1', 'prediction', $3, $3, $3)""", w, m, T)
            acc = {}
            for key, predicted, actual in (("nan", float("nan"), 1.0), ("ok", 150.0, 300.0)):
                pid = acc[key] = uuid.uuid4()
                await conn.execute("""INSERT INTO predictions (workspace_id, id, model_id, prediction_type,
                    target_entity_type, target_entity_id, predicted_value, predicted_score, prediction_timestamp)
                    VALUES ($1, $2, $3, 'views', 'content', 'x', '{}', $4, $5)""", w, pid, m, predicted, T)
                await conn.execute("""INSERT INTO prediction_accuracy (workspace_id, prediction_id, model_id,
                    prediction_type, predicted_score, actual_score, absolute_error, accuracy_percentage, source,
                    measured_at) VALUES ($1, $2, $3, 'views', $4, $5, 0, 0, 'outcome', $6)""",
                                   w, pid, m, predicted, actual, T)
            imp = {}
            for key, before, after, pct in (
                ("huge", '{"latency_ms": 1e400}', '{"latency_ms": 100}', 50.0),
                ("ok", '{"latency_ms": 200}', '{"latency_ms": 100}', -50.0),  # the plain sign: flipped to +50
            ):
                iid = imp[key] = uuid.uuid4()
                await conn.execute("""INSERT INTO ai_improvement_tracking (workspace_id, id, improvement_type, metric,
                    before_metrics, after_metrics, improvement_percentage, source_event_type, recorded_at)
                    VALUES ($1, $2, 'latency', 'latency_ms', $3::text::jsonb, $4::text::jsonb, $5,
                            'improvement_measured', $6)""", w, iid, before, after, pct, T)
            for cid, tz in (("mars", "Mars/Olympus"), ("berlin", "Europe/Berlin")):
                await conn.execute("""INSERT INTO connectors (workspace_id, id, platform, timezone, first_seen_at,
                    last_seen_at) VALUES ($1, $2, 'tiktok', $3, $4, $4)""", w, cid, tz, T)

            assert [x.version for x in await migrate(conn)][:2] == [32, 33]  # before: 0032 failed

            ratio = {r[0]: r[1] for r in await conn.fetch("SELECT prediction_id, ratio_accuracy FROM prediction_accuracy")}
            assert ratio == {acc["nan"]: None, acc["ok"]: 100 * 150 / 300}  # NaN skipped; 50.0
            pct = {r[0]: r[1] for r in await conn.fetch("SELECT id, improvement_percentage FROM ai_improvement_tracking")}
            assert pct == {imp["huge"]: 50.0, imp["ok"]: 50.0}  # 1e400 is no double: left as it was
            zones = {r[0]: r[1] for r in await conn.fetch("SELECT id, timezone FROM connectors")}
            assert zones == {"mars": None, "berlin": "Europe/Berlin"}  # 0038: unknown to PostgreSQL -> NULL (UTC)
            await conn.fetch("SELECT * FROM engagement_summary_by_hour")  # the 0033 views read again
        finally:
            await conn.close()
    finally:
        await drop_database(base, name)
