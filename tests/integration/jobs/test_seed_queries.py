"""Seed 001's key queries 3 and 4 and its monitoring views, as written, over tables the jobs fill
(real PostgreSQL): they return what the fixture implies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.pool import connect
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner

pytestmark = pytest.mark.services

W = uuid.uuid4()


async def test_key_queries_3_and_4_over_detected_trends_and_model_improvements(stack):
    now = datetime.now(UTC).replace(microsecond=0)
    conn = await connect(stack.dsn)
    try:
        # a post whose #surge interactions jump in the last 6 h: 6,000 against 60 a window on the days before
        cid = uuid.uuid4()
        await conn.execute("""INSERT INTO content (workspace_id, id, platform, hashtags, published_at, first_seen_at,
            last_seen_at, last_event_id) VALUES ($1, $2, 'tiktok', '{#surge}', $3, $3, $3, $4)""",
                           W, cid, now - timedelta(days=9), uuid.uuid4())
        points, v = [(now - timedelta(days=8), 0)], 0
        for d in range(7, 0, -1):
            points.append((now - timedelta(days=d, hours=6), v))
            v += 60
            points.append((now - timedelta(days=d), v))
        points += [(now - timedelta(hours=6), v), (now - timedelta(minutes=1), v + 6000)]
        for at, likes in points:
            await conn.execute("""INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform,
                views, likes, recorded_at) VALUES ($1, $2, $3, 'tiktok', 100000, $4, $5)""", uuid.uuid4(), W, cid, likes, at)
        # a retrained model: auc 0.80 -> 0.88 (+10 %), log_loss 0.50 -> 0.40 (+20 %: lower is better)
        parent, child = uuid.uuid4(), uuid.uuid4()
        for mid, version, metrics, up in ((parent, "1", {"auc": 0.80, "log_loss": 0.5}, None),
                                          (child, "2", {"auc": 0.88, "log_loss": 0.4}, parent)):
            await conn.execute("""INSERT INTO ml_models (workspace_id, id, name, version, model_type, performance_metrics,
                parent_model_id, created_at, updated_at, last_event_at)
                VALUES ($1, $2, 'm', $3, 'prediction', $4, $5, $6, $6, $6)""", W, mid, version, metrics, up,
                                   now - timedelta(days=1))
        runner = JobRunner(stack.dsn, JOBS)
        for job in ("detect_trends", "model_improvements"):
            assert (await runner.run(job)).status == "succeeded"

        # 001 query 3, as written
        q3 = await conn.fetch("""SELECT trend_type, platform, AVG(engagement_impact) as avg_impact FROM trend_analysis
            WHERE start_time >= NOW() - INTERVAL '30 days' GROUP BY trend_type, platform ORDER BY avg_impact DESC""")
        assert [(r["trend_type"], r["platform"]) for r in q3] == [("hashtag", "tiktok")]
        assert q3[0]["avg_impact"] == pytest.approx(100 * ((6000 / 6) / (60 / 6) - 1))
        # 001 query 4, as written
        q4 = await conn.fetch("""SELECT improvement_type, AVG(improvement_percentage) as avg_improvement,
            COUNT(*) as improvement_count FROM ai_improvement_tracking WHERE recorded_at >= NOW() - INTERVAL '7 days'
            GROUP BY improvement_type ORDER BY avg_improvement DESC""")
        assert [(r["improvement_type"], r["improvement_count"]) for r in q4] == [("model_evaluation", 2)]
        assert q4[0]["avg_improvement"] == pytest.approx((10.0 + 20.0) / 2)
        # the monitoring views over the same rows
        view = await conn.fetch("SELECT * FROM trend_analysis_view")
        assert [(r["trend_type"], r["trend_count"]) for r in view] == [("hashtag", 1)]
        dash = await conn.fetch("SELECT * FROM ai_performance_dashboard")
        assert [(r["improvement_type"], r["improvement_count"]) for r in dash] == [("model_evaluation", 2)]
    finally:
        await conn.close()
