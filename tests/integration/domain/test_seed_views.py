"""The seeds' views of 0007 over the domain tables of 0006: seed 001's five key queries as the seed
writes them (query 5 through its fix, cross_platform_patterns), every view's values, and row-level
security through the views (security_invoker).

Fixture rows go straight into the base tables, for two workspaces that share ids (a content item,
a model, a competitor): a view that joined or grouped without workspace_id would mix them. The
expected values are worked out by hand from the constants below.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from db.pool import connect
from tests.support import become_member

pytestmark = pytest.mark.services

W1 = uuid.UUID("11111111-1111-4111-8111-111111111111")
W2 = uuid.UUID("22222222-2222-4222-8222-222222222222")


def _u(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


# content: C1's id is used by both workspaces (ids are unique only within a workspace)
C1, C2, C3, C_UNKNOWN = _u(0xC1), _u(0xC2), _u(0xC3), _u(0xC9)
P1, P2, P3, Q1, Q2 = _u(0xA1), _u(0xA2), _u(0xA3), _u(0xB1), _u(0xB2)
M1 = _u(0xD1)  # model id used by both workspaces
T0 = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
T1 = datetime(2025, 2, 20, 8, 30, tzinfo=UTC)

SEED_VIEWS = [
    "ai_learning_patterns", "cross_platform_patterns", "ai_performance_dashboard",
    "style_performance_view", "trend_analysis_view", "viral_score_predictions", "published_posts",
    "engagement_summary_by_hour", "engagement_summary_by_day", "audience_demographics_latest",
    "competitor_benchmark_summary", "posts_core", "posts_content", "post_insights",
    "time_series_metrics",
]
BASE_TABLES = [
    "identified_patterns", "pattern_occurrences", "content", "content_style_analysis",
    "trend_analysis", "ai_improvement_tracking", "ml_models", "predictions",
    "content_performance_metrics", "system_performance_metrics", "engagement_by_time",
    "audience_demographics", "competitor_profiles", "competitor_metrics",
]

# (workspace, id, type, name, description, signature, success_rate, average_engagement); the
# table derives both from counters: success_count / judged_count and engagement_sum / _count
PATTERNS = [
    (W1, P1, "hook", "question hook", "opens with a question", {"hook": "question"}, 80.0, 0.12),
    (W1, P2, "hook", "count hook", None, {"hook": "countdown", "pattern_name": "from the signature"}, 60.0, 0.2),
    (W1, P3, "format", "carousel", None, {"format": "carousel"}, 55.0, 0.05),
    (W2, Q1, "hook", "question hook", None, {"hook": "question"}, 10.0, 0.9),
    (W2, Q2, "audio", "trending song", None, {"audio": "song-1"}, 90.0, 0.5),
]

# (workspace, id, platform, connector, status, external_id)
CONTENT = [
    (W1, C1, "tiktok", "acct-1", "published", "tt-1"),
    (W1, C2, "instagram", "acct-2", "published", "ig-2"),
    (W1, C3, "tiktok", "acct-1", "draft", None),
    (W2, C1, "youtube", "chan-9", "published", "yt-9"),
]

# (workspace, pattern, content, success, engagement)
OCCURRENCES = [
    (W1, P1, C1, True, 0.2),
    (W1, P1, C1, False, 0.1),
    (W1, P1, C2, True, 0.3),
    (W1, P2, C1, True, 0.4),
    (W1, P2, C2, None, None),     # not judged
    (W1, P3, C3, False, 0.05),
    (W1, P3, None, True, 1.0),    # no content: no platform, left out
    (W1, P1, C_UNKNOWN, True, 1.0),  # content not described yet: left out
    (W2, Q1, C1, True, 0.9),
]

# (workspace, content, style_tags, engagement_correlation)
STYLES = [
    (W1, C1, ["funny", "fast"], 0.8),
    (W1, C2, ["funny", "fast"], 0.4),
    (W1, C3, ["calm"], 0.1),
    (W1, C1, ["calm"], None),
    (W2, C1, ["funny", "fast"], -0.5),
]


def _now_relative(now: datetime) -> tuple[list, list]:
    # (workspace, platform, trend_type, trend_key, engagement_impact, start_time)
    trends = [
        (W1, "tiktok", "hashtag", "#a", 10.0, now - timedelta(days=2)),
        (W1, "tiktok", "hashtag", "#b", 20.0, now - timedelta(days=5)),
        (W1, "tiktok", "hashtag", "#c", 100.0, now - timedelta(days=40)),  # outside 30 days
        (W1, "instagram", "audio", "song", 5.0, now - timedelta(days=1)),
        (W2, "tiktok", "hashtag", "#a", -3.0, now - timedelta(days=2)),
    ]
    # (workspace, improvement_type, improvement_percentage, recorded_at)
    improvements = [
        (W1, "accuracy", 10.0, now - timedelta(days=1)),
        (W1, "accuracy", 30.0, now - timedelta(days=3)),
        (W1, "latency", 5.0, now - timedelta(days=2)),
        (W1, "latency", 50.0, now - timedelta(days=10)),  # outside 7 days
        # fixed times around a UTC midnight (the dashboard cuts days in UTC)
        (W1, "engagement", 10.0, datetime(2025, 1, 1, 23, 30, tzinfo=UTC)),
        (W1, "engagement", 20.0, datetime(2025, 1, 2, 0, 30, tzinfo=UTC)),
        (W1, "engagement", 40.0, datetime(2025, 1, 2, 12, 0, tzinfo=UTC)),
        (W2, "accuracy", 99.0, now - timedelta(days=1)),
    ]
    return trends, improvements


# predictions: (workspace, id, target_entity_type, target_entity_id, score, confidence, features, status)
PREDICTIONS = [
    (W1, _u(0xE1), "content", str(C1), 0.9, 0.8, {"hook": 1}, "active"),
    (W1, _u(0xE2), "content", "not-a-uuid", 0.5, 0.6, None, "validated"),
    (W1, _u(0xE3), "content", str(C2).upper(), 0.3, 0.7, {"len": 12}, "invalidated"),
    (W1, _u(0xE4), "content", str(C3), 0.1, None, None, "expired"),
    (W1, _u(0xE5), "account", "acct-1", 0.7, 0.9, None, "active"),  # not content
    (W2, _u(0xE1), "content", str(C1), 0.2, 0.5, None, "active"),
]
MODEL_VERSION = {W1: "v1.2", W2: "w2-v9"}
PREDICTED_AT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

# content_performance_metrics: (workspace, id, content, platform, connector, views, likes, shares,
# comments, saves, recorded_at)
CPM = [
    (W1, _u(0xF1), C1, "tiktok", "acct-1", 1000, 100, 10, 20, 5, datetime(2025, 3, 1, 10, tzinfo=UTC)),
    (W1, _u(0xF2), C1, "tiktok", "acct-1", 2000, 150, 30, 40, 10, datetime(2025, 3, 1, 11, tzinfo=UTC)),
    (W1, _u(0xF3), C2, "instagram", "acct-2", 0, 0, 0, 0, 0, datetime(2025, 3, 1, 12, tzinfo=UTC)),
    (W2, _u(0xF4), C1, "youtube", "chan-9", 50, 5, 0, 1, 0, datetime(2025, 3, 1, 10, tzinfo=UTC)),
]
# system_performance_metrics: (workspace, id, name, category, timestamp, value, unit, tags, source)
SPM = [
    (W1, _u(0x51), "latency_ms", "api", datetime(2025, 3, 1, 10, tzinfo=UTC), 12.5, "ms", {"route": "/x"}, "api-gw"),
    (W1, _u(0x52), "queue_depth", None, datetime(2025, 3, 1, 10, 5, tzinfo=UTC), 3.0, None, {}, None),
    (W2, _u(0x53), "latency_ms", "api", datetime(2025, 3, 1, 10, tzinfo=UTC), 99.0, "ms", {}, "api-gw"),
]

# engagement_by_time: (workspace, platform, connector, day_of_week, hour_of_day, windows, updates,
# minutes, views_gained, interactions_gained)
EBT = [
    (W1, "tiktok", "acct-1", 1, 9, 2, 10, 10.0, 100, 10),
    (W1, "tiktok", "acct-2", 1, 9, 1, 5, 5.0, 900, 45),
    (W1, "tiktok", "acct-1", 2, 9, 1, 2, 5.0, 0, 0),
    (W1, "tiktok", "acct-1", 1, 10, 3, 6, 15.0, 300, 30),
    (W1, "instagram", "acct-3", 1, 9, 1, 1, 0.0, 0, 0),
    (W2, "tiktok", "acct-9", 1, 9, 7, 7, 7.0, 70, 70),
]

# audience_demographics: (workspace, connector, platform, recorded_at, age_ranges, total_followers)
DEMOGRAPHICS = [
    (W1, "acct-1", "tiktok", datetime(2025, 3, 1, tzinfo=UTC), {"18-24": 50.0}, 100),
    (W1, "acct-1", "tiktok", datetime(2025, 3, 8, tzinfo=UTC), {"18-24": 55.0}, 120),
    (W1, "acct-2", "instagram", datetime(2025, 3, 1, tzinfo=UTC), {"25-34": 40.0}, 10),
    (W2, "acct-1", "tiktok", datetime(2025, 3, 9, tzinfo=UTC), {"18-24": 1.0}, 999),
]

D0 = date(2025, 3, 31)
# competitors: (workspace, id, name) and metrics (workspace, competitor, recorded_date, followers)
COMPETITORS = [(W1, "comp-a", "Alpha"), (W1, "comp-b", "Beta"), (W1, "comp-c", "Gamma"), (W2, "comp-a", "Other Alpha")]
COMPETITOR_METRICS = [
    (W1, "comp-a", D0 - timedelta(days=40), 500),
    (W1, "comp-a", D0 - timedelta(days=31), 600),
    (W1, "comp-a", D0 - timedelta(days=8), 900),
    (W1, "comp-a", D0 - timedelta(days=3), 950),
    (W1, "comp-a", D0, 1000),
    (W1, "comp-b", D0 - timedelta(days=5), 250),
    (W1, "comp-b", D0, 300),
    (W2, "comp-a", D0 - timedelta(days=6), 4000),
    (W2, "comp-a", D0 + timedelta(days=1), 5000),
]


def _r(value):
    return round(value, 9) if isinstance(value, float) else value


def _rows(records) -> list[tuple]:
    return [tuple(_r(v) for v in r) for r in records]


def _exp(rows) -> list[tuple]:
    return [tuple(_r(v) for v in r) for r in rows]


async def _seed(conn, now: datetime) -> None:
    await conn.executemany(
        """INSERT INTO identified_patterns (workspace_id, id, pattern_type, pattern_name,
               pattern_description, pattern_signature, signature_hash, judged_count, success_count,
               engagement_sum, engagement_count, context, first_detected, last_detected, created_at,
               last_event_at)
           VALUES ($1, $2, $3, $4, $5, $6, md5($6::jsonb::text), 20, $7, $8, 1, $9, $10, $11, $12, $11)""",
        [
            (w, i, t, n, d, s, round(sr / 5), ae, {"source": n}, T0, T1, T0)  # sr % of 20 judged
            for w, i, t, n, d, s, sr, ae in PATTERNS
        ],
    )
    await conn.executemany(
        """INSERT INTO content (workspace_id, id, platform, connector_id, external_id, url, title,
               caption, hashtags, mentions, author, content_type, status, published_at,
               first_seen_at, last_seen_at, last_event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)""",
        [
            (w, i, p, c, e, f"https://{p}.example/{e}" if e else None, f"title {p}", f"caption {p}",
             ["a", p], ["@" + c], f"author-{c}", "video", s, T1 if s == "published" else None,
             T0, T1, uuid.uuid4())
            for w, i, p, c, s, e in CONTENT
        ],
    )
    await conn.executemany(
        """INSERT INTO pattern_occurrences (workspace_id, id, pattern_id, source_type, source_id,
               content_id, detection_timestamp, success, engagement)
           VALUES ($1, $2, $3, 'content', coalesce($4::uuid::text, 'none'), $4, $5, $6, $7)""",
        [(w, uuid.uuid4(), p, c, T1, s, e) for w, p, c, s, e in OCCURRENCES],
    )
    await conn.executemany(
        """INSERT INTO content_style_analysis (workspace_id, id, content_id, style_tags,
               engagement_correlation, created_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        [(w, uuid.uuid4(), c, tags, corr, T1) for w, c, tags, corr in STYLES],
    )
    trends, improvements = _now_relative(now)
    await conn.executemany(
        """INSERT INTO trend_analysis (workspace_id, platform, trend_type, trend_key,
               engagement_impact, start_time, created_at, last_event_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6, $6)""",
        trends,
    )
    await conn.executemany(
        """INSERT INTO ai_improvement_tracking (workspace_id, id, improvement_type,
               improvement_percentage, source_event_type, recorded_at)
           VALUES ($1, $2, $3, $4, 'improvement_measured', $5)""",
        [(w, uuid.uuid4(), t, pct, at) for w, t, pct, at in improvements],
    )
    await conn.executemany(
        """INSERT INTO ml_models (workspace_id, id, name, version, model_type, status, created_at,
               updated_at, last_event_at)
           VALUES ($1, $2, 'viral', $3, 'prediction', 'active', $4, $4, $4)""",
        [(w, M1, v, T0) for w, v in MODEL_VERSION.items()],
    )
    await conn.executemany(
        """INSERT INTO predictions (workspace_id, id, model_id, prediction_type, target_entity_type,
               target_entity_id, predicted_value, predicted_score, confidence_score, input_features,
               prediction_timestamp, status)
           VALUES ($1, $2, $3, 'viral_score', $4, $5, $6, $7, $8, $9, $10, $11)""",
        [(w, i, M1, tt, ti, {"score": s}, s, c, f, PREDICTED_AT, st) for w, i, tt, ti, s, c, f, st in PREDICTIONS],
    )
    await conn.executemany(
        """INSERT INTO content_performance_metrics (workspace_id, id, content_id, platform,
               connector_id, views, likes, shares, comments, saves, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        CPM,
    )
    await conn.executemany(
        """INSERT INTO system_performance_metrics (workspace_id, id, metric_name, metric_category,
               "timestamp", value, unit, tags, source_component)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        SPM,
    )
    await conn.executemany(
        """INSERT INTO engagement_by_time (workspace_id, platform, connector_id, day_of_week,
               hour_of_day, windows, updates, minutes, views_gained, interactions_gained, day)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        [(*row, date(2025, 3, 2) + timedelta(days=row[3])) for row in EBT],  # 2 Mar 2025 was a Sunday
    )
    await conn.executemany(
        """INSERT INTO audience_demographics (workspace_id, connector_id, platform, recorded_at,
               age_ranges, total_followers, snapshot_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        [(*row, uuid.uuid4()) for row in DEMOGRAPHICS],
    )
    await conn.executemany(
        """INSERT INTO competitor_profiles (workspace_id, id, name, platform, handle, first_seen_at,
               last_seen_at)
           VALUES ($1, $2, $3, 'tiktok', $4, $5, $6)""",
        [(w, i, n, "@" + i, T0, T1) for w, i, n in COMPETITORS],
    )
    await conn.executemany(
        """INSERT INTO competitor_metrics (workspace_id, competitor_id, recorded_date, recorded_at,
               followers, snapshot_id)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        [
            (w, c, d, datetime(d.year, d.month, d.day, 23, tzinfo=UTC), f, uuid.uuid4())
            for w, c, d, f in COMPETITOR_METRICS
        ],
    )


@pytest.fixture
async def db(stack):
    conn = await connect(stack.dsn)
    now = datetime.now(UTC)
    await _seed(conn, now)
    try:
        yield conn
    finally:
        await conn.close()


async def _as_workspace(conn, workspace: uuid.UUID | None) -> None:
    """Inside a transaction: read as a member of `workspace` (None: of a workspace without data)."""
    await become_member(conn, workspace or uuid.uuid4())


# ----------------------------------------------------------------------------------------------
# Seed 001's key queries, exactly as the seed writes them (query 5 through the fixed view)

Q1_TOP_PATTERNS = """
SELECT
    pattern_type,
    AVG(success_rate) as avg_success,
    COUNT(*) as pattern_count
FROM ai_learning_patterns
GROUP BY pattern_type
ORDER BY avg_success DESC
LIMIT 10;
"""
Q2_STYLES = """
SELECT
    style_tags,
    AVG(engagement_correlation) as avg_engagement
FROM content_style_analysis
GROUP BY style_tags
ORDER BY avg_engagement DESC
LIMIT 10;
"""
Q3_TRENDS = """
SELECT
    trend_type,
    platform,
    AVG(engagement_impact) as avg_impact
FROM trend_analysis
WHERE start_time >= NOW() - INTERVAL '30 days'
GROUP BY trend_type, platform
ORDER BY avg_impact DESC;
"""
Q4_IMPROVEMENTS = """
SELECT
    improvement_type,
    AVG(improvement_percentage) as avg_improvement,
    COUNT(*) as improvement_count
FROM ai_improvement_tracking
WHERE recorded_at >= NOW() - INTERVAL '7 days'
GROUP BY improvement_type
ORDER BY avg_improvement DESC;
"""
# 001's query 5 joins ai_learning_patterns.content_id, which does not exist; the fix (0007):
Q5_CROSS_PLATFORM = """
SELECT pattern_type, platform, platform_success
FROM cross_platform_patterns
ORDER BY platform_success DESC;
"""

EXPECTED_QUERIES = {
    W1: {
        Q1_TOP_PATTERNS: [("hook", 70.0, 2), ("format", 55.0, 1)],
        Q2_STYLES: [(["funny", "fast"], 0.6), (["calm"], 0.1)],
        Q3_TRENDS: [("hashtag", "tiktok", 15.0), ("audio", "instagram", 5.0)],
        Q4_IMPROVEMENTS: [("accuracy", 20.0, 2), ("latency", 5.0, 1)],
        # hook/tiktok: occurrences P1 success, P1 fail, P2 success -> 2 of 3 judged
        # hook/instagram: P1 success, P2 unjudged -> 1 of 1; format/tiktok: 0 of 1
        Q5_CROSS_PLATFORM: [("hook", "instagram", 100.0), ("hook", "tiktok", 200.0 / 3), ("format", "tiktok", 0.0)],
    },
    W2: {
        Q1_TOP_PATTERNS: [("audio", 90.0, 1), ("hook", 10.0, 1)],
        Q2_STYLES: [(["funny", "fast"], -0.5)],
        Q3_TRENDS: [("hashtag", "tiktok", -3.0)],
        Q4_IMPROVEMENTS: [("accuracy", 99.0, 1)],
        Q5_CROSS_PLATFORM: [("hook", "youtube", 100.0)],
    },
}


async def test_seed_001_key_queries_run_as_written_per_workspace(db):
    for workspace, queries in EXPECTED_QUERIES.items():
        tx = db.transaction()
        await tx.start()
        try:
            await _as_workspace(db, workspace)
            for sql, expected in queries.items():
                assert _rows(await db.fetch(sql)) == _exp(expected), (workspace, sql)
        finally:
            await tx.rollback()


async def test_seed_001_query_1_without_rls_spans_workspaces(db):
    # the seed's queries are not scoped themselves: for a caller RLS does not restrict (the owner)
    # they aggregate every workspace; the views below are per workspace
    assert _rows(await db.fetch(Q1_TOP_PATTERNS)) == _exp(
        [("audio", 90.0, 1), ("format", 55.0, 1), ("hook", 50.0, 3)]
    )


async def test_seed_001_query_5_as_written_fails_on_the_missing_column(db):
    import asyncpg

    with pytest.raises(asyncpg.UndefinedColumnError, match="content_id"):
        await db.fetch(
            """SELECT pattern_type, platform, AVG(success_rate) as platform_success
               FROM ai_learning_patterns
               JOIN content_performance_metrics
                 ON content_performance_metrics.content_id = ai_learning_patterns.content_id
               GROUP BY pattern_type, platform ORDER BY platform_success DESC"""
        )


# ----------------------------------------------------------------------------------------------
# Seed 001's views


async def test_ai_learning_patterns(db):
    rows = await db.fetch(
        """SELECT workspace_id, id, pattern_type, pattern_data, success_rate, average_engagement,
                  context, first_observed, last_observed, created_at
           FROM ai_learning_patterns ORDER BY workspace_id, id"""
    )
    assert [tuple(r) for r in rows] == [
        (W1, P1, "hook", {"pattern_name": "question hook", "pattern_description": "opens with a question",
                          "hook": "question"}, 80.0, 0.12, {"source": "question hook"}, T0, T1, T0),
        # the signature's own pattern_name wins; no description -> no key
        (W1, P2, "hook", {"pattern_name": "from the signature", "hook": "countdown"}, 60.0, 0.2,
         {"source": "count hook"}, T0, T1, T0),
        (W1, P3, "format", {"pattern_name": "carousel", "format": "carousel"}, 55.0, 0.05,
         {"source": "carousel"}, T0, T1, T0),
        (W2, Q1, "hook", {"pattern_name": "question hook", "hook": "question"}, 10.0, 0.9,
         {"source": "question hook"}, T0, T1, T0),
        (W2, Q2, "audio", {"pattern_name": "trending song", "audio": "song-1"}, 90.0, 0.5,
         {"source": "trending song"}, T0, T1, T0),
    ]


async def test_cross_platform_patterns(db):
    rows = await db.fetch(
        """SELECT workspace_id, pattern_type, platform, platform_success, pattern_count,
                  occurrence_count, judged_occurrences, average_engagement
           FROM cross_platform_patterns ORDER BY workspace_id, pattern_type, platform"""
    )
    assert _rows(rows) == _exp([
        (W1, "format", "tiktok", 0.0, 1, 1, 1, 0.05),
        (W1, "hook", "instagram", 100.0, 2, 2, 1, 0.3),
        (W1, "hook", "tiktok", 200.0 / 3, 2, 3, 3, (0.2 + 0.1 + 0.4) / 3),
        # W2's content shares C1's id; joined by workspace, W1's occurrences never reach it
        (W2, "hook", "youtube", 100.0, 1, 1, 1, 0.9),
    ])


async def test_ai_performance_dashboard_cuts_days_in_utc(db):
    tx = db.transaction()
    await tx.start()
    try:
        # a session time zone where the three 'engagement' rows would fall on other days
        await db.execute("SET LOCAL TimeZone = 'America/New_York'")
        rows = await db.fetch(
            """SELECT workspace_id, date, improvement_type, daily_improvement, improvement_count
               FROM ai_performance_dashboard WHERE improvement_type = 'engagement' ORDER BY date"""
        )
        assert _rows(rows) == _exp([
            (W1, datetime(2025, 1, 1, tzinfo=UTC), "engagement", 10.0, 1),
            (W1, datetime(2025, 1, 2, tzinfo=UTC), "engagement", 30.0, 2),
        ])
    finally:
        await tx.rollback()
    counts = await db.fetch(
        "SELECT workspace_id, count(*), sum(improvement_count) FROM ai_performance_dashboard "
        "GROUP BY workspace_id ORDER BY workspace_id"
    )
    # W1: accuracy on 2 days, latency on 2 days, engagement on 2 days; W2: one row
    assert _rows(counts) == [(W1, 6, 7), (W2, 1, 1)]


async def test_style_performance_view(db):
    rows = await db.fetch(
        """SELECT workspace_id, style_tags, avg_engagement, usage_count FROM style_performance_view
           ORDER BY workspace_id, style_tags"""
    )
    assert _rows(rows) == _exp([
        (W1, ["calm"], 0.1, 2),
        (W1, ["funny", "fast"], 0.6, 2),
        (W2, ["funny", "fast"], -0.5, 1),
    ])


async def test_trend_analysis_view(db):
    rows = await db.fetch(
        """SELECT workspace_id, platform, trend_type, avg_impact, trend_count FROM trend_analysis_view
           ORDER BY workspace_id, platform, trend_type"""
    )
    assert _rows(rows) == _exp([
        (W1, "instagram", "audio", 5.0, 1),
        (W1, "tiktok", "hashtag", 15.0, 2),
        (W2, "tiktok", "hashtag", -3.0, 1),
    ])


async def test_trend_analysis_view_keeps_a_trend_still_reported(db):
    """A trend's reports fold into one row (earliest start, latest end): one that started 40 days
    ago and was reported 3 days ago is current, in the 30-day window (0035; 0007 filtered on
    start_time and left it out). One that started and ended 40 days ago stays out."""
    w = uuid.UUID("33333333-3333-4333-8333-333333333333")
    now = datetime.now(UTC)
    tr = db.transaction()
    await tr.start()
    try:
        await db.executemany(
            """INSERT INTO trend_analysis (workspace_id, platform, trend_type, trend_key, engagement_impact,
                   start_time, end_time, created_at, last_event_at) VALUES ($1, 'tiktok', 'hashtag', $2, $3, $4, $5, $4, $4)""",
            [(w, "#long", 1000.0, now - timedelta(days=40), now - timedelta(days=3)),
             (w, "#over", 500.0, now - timedelta(days=40), now - timedelta(days=35)),
             (w, "#new", 40.0, now - timedelta(days=2), None)])
        rows = await db.fetch("SELECT avg_impact, trend_count FROM trend_analysis_view WHERE workspace_id = $1", w)
        assert _rows(rows) == [((1000.0 + 40.0) / 2, 2)]  # before 0035: [(40.0, 1)]
    finally:
        await tr.rollback()


# ----------------------------------------------------------------------------------------------
# Seed 003's views


async def test_viral_score_predictions(db):
    rows = await db.fetch(
        """SELECT id, workspace_id, content_id, prediction_type, predicted_score, confidence_score,
                  prediction_factors, model_id, model_version, status, lifecycle_status, predicted_at
           FROM viral_score_predictions ORDER BY workspace_id, id"""
    )
    assert _rows(rows) == _exp([
        (_u(0xE1), W1, C1, "viral_score", 0.9, 0.8, {"hook": 1}, M1, "v1.2", "completed", "active", PREDICTED_AT),
        (_u(0xE2), W1, None, "viral_score", 0.5, 0.6, None, M1, "v1.2", "completed", "validated", PREDICTED_AT),
        (_u(0xE3), W1, C2, "viral_score", 0.3, 0.7, {"len": 12}, M1, "v1.2", "failed", "invalidated", PREDICTED_AT),
        (_u(0xE4), W1, C3, "viral_score", 0.1, None, None, M1, "v1.2", "failed", "expired", PREDICTED_AT),
        # the same model id in W2 is W2's model (joined by workspace: one row per prediction)
        (_u(0xE1), W2, C1, "viral_score", 0.2, 0.5, None, M1, "w2-v9", "completed", "active", PREDICTED_AT),
    ])


async def test_published_posts(db):
    rows = await db.fetch(
        """SELECT id, workspace_id, content_id, connector_id, platform, platform_post_id, url,
                  published_at, created_at, updated_at
           FROM published_posts ORDER BY workspace_id, id"""
    )
    assert [tuple(r) for r in rows] == [
        (C1, W1, C1, "acct-1", "tiktok", "tt-1", "https://tiktok.example/tt-1", T1, T0, T1),
        (C2, W1, C2, "acct-2", "instagram", "ig-2", "https://instagram.example/ig-2", T1, T0, T1),
        (C1, W2, C1, "chan-9", "youtube", "yt-9", "https://youtube.example/yt-9", T1, T0, T1),
    ]  # C3 is a draft


async def test_engagement_summary_by_hour(db):
    rows = await db.fetch(
        """SELECT workspace_id, platform, hour_of_day, windows, updates, minutes, views_gained,
                  interactions_gained, engagement_rate, engagement_velocity
           FROM engagement_summary_by_hour ORDER BY workspace_id, platform, hour_of_day"""
    )
    assert _rows(rows) == _exp([
        (W1, "instagram", 9, 1, 1, 0.0, 0, 0, None, None),
        # 100 + 900 views and 10 + 45 interactions over 10 + 5 + 5 minutes: 55 / 1000, not the
        # mean of the rows' rates (0.1 and 0.05)
        (W1, "tiktok", 9, 4, 17, 20.0, 1000, 55, 0.055, 50.0),
        (W1, "tiktok", 10, 3, 6, 15.0, 300, 30, 0.1, 20.0),
        (W2, "tiktok", 9, 7, 7, 7.0, 70, 70, 1.0, 10.0),
    ])


async def test_engagement_summary_by_day(db):
    rows = await db.fetch(
        """SELECT workspace_id, platform, day_of_week, windows, updates, minutes, views_gained,
                  interactions_gained, engagement_rate, engagement_velocity
           FROM engagement_summary_by_day ORDER BY workspace_id, platform, day_of_week"""
    )
    assert _rows(rows) == _exp([
        (W1, "instagram", 1, 1, 1, 0.0, 0, 0, None, None),
        (W1, "tiktok", 1, 6, 21, 30.0, 1300, 85, 85 / 1300, 1300 / 30),
        (W1, "tiktok", 2, 1, 2, 5.0, 0, 0, None, 0.0),
        (W2, "tiktok", 1, 7, 7, 7.0, 70, 70, 1.0, 10.0),
    ])


async def test_audience_demographics_latest(db):
    rows = await db.fetch(
        """SELECT workspace_id, connector_id, platform, recorded_at, age_ranges, total_followers
           FROM audience_demographics_latest ORDER BY workspace_id, connector_id"""
    )
    assert [tuple(r) for r in rows] == [
        (W1, "acct-1", "tiktok", datetime(2025, 3, 8, tzinfo=UTC), {"18-24": 55.0}, 120),
        (W1, "acct-2", "instagram", datetime(2025, 3, 1, tzinfo=UTC), {"25-34": 40.0}, 10),
        (W2, "acct-1", "tiktok", datetime(2025, 3, 9, tzinfo=UTC), {"18-24": 1.0}, 999),
    ]


async def test_competitor_benchmark_summary(db):
    rows = await db.fetch(
        """SELECT workspace_id, competitor_id, name, recorded_date, followers,
                  follower_change_7d, follower_change_7d_since,
                  follower_change_30d, follower_change_30d_since
           FROM competitor_benchmark_summary ORDER BY workspace_id, competitor_id"""
    )
    d = lambda n: D0 + timedelta(days=n)  # noqa: E731
    assert [tuple(r) for r in rows] == [
        # latest D0 1000; the latest row >= 7 days before is D0-8 (900), >= 30 days D0-31 (600)
        (W1, "comp-a", "Alpha", D0, 1000, 100, d(-8), 400, d(-31)),
        # only 5 days of history: no 7- or 30-day change
        (W1, "comp-b", "Beta", D0, 300, None, None, None, None),
        # no metrics yet: the profile with nulls
        (W1, "comp-c", "Gamma", None, None, None, None, None, None),
        # W2's comp-a (same id) has its own, later rows
        (W2, "comp-a", "Other Alpha", d(1), 5000, 1000, d(-6), None, None),
    ]


# ----------------------------------------------------------------------------------------------
# Seed 002's views


async def test_posts_core_and_posts_content(db):
    core = await db.fetch(
        """SELECT id, workspace_id, status, platform, connector_id, author, published_at,
                  created_at, updated_at FROM posts_core ORDER BY workspace_id, id"""
    )
    assert [tuple(r) for r in core] == [
        (C1, W1, "published", "tiktok", "acct-1", "author-acct-1", T1, T0, T1),
        (C2, W1, "published", "instagram", "acct-2", "author-acct-2", T1, T0, T1),
        (C3, W1, "draft", "tiktok", "acct-1", "author-acct-1", None, T0, T1),
        (C1, W2, "published", "youtube", "chan-9", "author-chan-9", T1, T0, T1),
    ]
    content = await db.fetch(
        """SELECT post_id, workspace_id, title, caption, hashtags, mentions, content_type
           FROM posts_content ORDER BY workspace_id, post_id"""
    )
    assert [tuple(r) for r in content] == [
        (C1, W1, "title tiktok", "caption tiktok", ["a", "tiktok"], ["@acct-1"], "video"),
        (C2, W1, "title instagram", "caption instagram", ["a", "instagram"], ["@acct-2"], "video"),
        (C3, W1, "title tiktok", "caption tiktok", ["a", "tiktok"], ["@acct-1"], "video"),
        (C1, W2, "title youtube", "caption youtube", ["a", "youtube"], ["@chan-9"], "video"),
    ]


async def test_post_insights(db):
    rows = await db.fetch(
        """SELECT workspace_id, post_id, platform, connector_id, views, likes, shares, comments, saves,
                  engagement_rate, recorded_at
           FROM post_insights ORDER BY workspace_id, recorded_at, post_id"""
    )
    assert _rows(rows) == _exp([
        (W1, C1, "tiktok", "acct-1", 1000, 100, 10, 20, 5, 135 / 1000, CPM[0][10]),
        (W1, C1, "tiktok", "acct-1", 2000, 150, 30, 40, 10, 230 / 2000, CPM[1][10]),
        (W1, C2, "instagram", "acct-2", 0, 0, 0, 0, 0, None, CPM[2][10]),
        (W2, C1, "youtube", "chan-9", 50, 5, 0, 1, 0, 6 / 50, CPM[3][10]),
    ])


async def test_time_series_metrics(db):
    rows = await db.fetch(
        """SELECT workspace_id, entity_type, entity_id, metric_name, metric_value, recorded_at,
                  platform, connector_id, metric_category, unit, tags, aggregation_level
           FROM time_series_metrics"""
    )
    names = ("views", "likes", "shares", "comments", "saves")
    expected = [
        (w, "content", str(c), name, float(value), at, p, conn, "engagement", "count", {}, "raw")
        for w, _, c, p, conn, *counts, at in CPM
        for name, value in zip(names, counts, strict=True)
    ] + [
        (w, "system", src, name, value, ts, None, None, cat, unit, tags, "raw")
        for w, _, name, cat, ts, value, unit, tags, src in SPM
    ]
    assert len(rows) == 4 * 5 + 3

    def key(r):
        return tuple(str(v) for v in r)

    assert sorted((tuple(r) for r in rows), key=key) == sorted(expected, key=key)
    # one metric of one content item over time, as a 002 dashboard reads it
    likes = await db.fetch(
        """SELECT recorded_at, metric_value FROM time_series_metrics
           WHERE workspace_id = $1 AND entity_type = 'content' AND entity_id = $2
             AND metric_name = 'likes' ORDER BY recorded_at""",
        W1, str(C1),
    )
    assert [tuple(r) for r in likes] == [(CPM[0][10], 100.0), (CPM[1][10], 150.0)]


# ----------------------------------------------------------------------------------------------
# Row-level security through the views (security_invoker)

# rows each view shows to W1 and to W2 (from the expectations above)
VIEW_ROWS = {
    "ai_learning_patterns": (3, 2),
    "cross_platform_patterns": (3, 1),
    "ai_performance_dashboard": (6, 1),
    "style_performance_view": (2, 1),
    "trend_analysis_view": (2, 1),
    "viral_score_predictions": (4, 1),
    "published_posts": (2, 1),
    "engagement_summary_by_hour": (3, 1),
    "engagement_summary_by_day": (3, 1),
    "audience_demographics_latest": (2, 1),
    "competitor_benchmark_summary": (3, 1),
    "posts_core": (3, 1),
    "posts_content": (3, 1),
    "post_insights": (3, 1),
    "time_series_metrics": (17, 6),
}


def test_every_view_is_covered():
    assert sorted(VIEW_ROWS) == sorted(SEED_VIEWS)


async def test_views_apply_the_tables_row_level_security(db):
    # as the owner (the service's policy): every workspace
    for view, (n1, n2) in VIEW_ROWS.items():
        assert await db.fetchval(f"SELECT count(*) FROM {view}") == n1 + n2, view
    for workspace, index in ((None, None), (W1, 0), (W2, 1)):
        tx = db.transaction()
        await tx.start()
        try:
            await _as_workspace(db, workspace)
            await db.execute(f"SET LOCAL learnstream.workspace_id = '{W1 if workspace == W2 else W2}'")  # no effect
            for view, counts in VIEW_ROWS.items():
                got = await db.fetch(f"SELECT workspace_id, count(*) FROM {view} GROUP BY workspace_id")
                assert [tuple(r) for r in got] == ([] if workspace is None else [(workspace, counts[index])]), \
                    (view, workspace)
            if workspace is not None:
                # the joins' other side is filtered too: the same content id / model id in the other
                # workspace is invisible, so each W1 occurrence / prediction finds only W1's row
                assert await db.fetchval("SELECT count(*) FROM viral_score_predictions") == (4 if index == 0 else 1)
        finally:
            await tx.rollback()
    assert await db.fetchval("SELECT count(*) FROM ai_learning_patterns") == 5


async def test_a_reader_role_sees_only_its_workspace_through_the_views(db):
    """The case security_invoker exists for: a role that does not own the tables reads a view
    owned by the tables' owner. Without security_invoker it would see every workspace."""
    tx = db.transaction()
    await tx.start()
    try:
        await become_member(db, W2)
        for view in SEED_VIEWS:
            got = await db.fetch(f"SELECT workspace_id, count(*) FROM {view} GROUP BY workspace_id")
            assert [tuple(r) for r in got] == [(W2, VIEW_ROWS[view][1])], view
    finally:
        await tx.rollback()
