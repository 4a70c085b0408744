"""Hand-made rows of the analytics jobs' tables for the read tests (the CLI, the report sources,
the Grafana panels): workspace `w` gets the rows the tests assert, workspace `x` one row of each
that must never show when `w` is asked for (or read by `w`'s member)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # Monday: when the weekly jobs "ran"
MODEL, MODEL_X = uuid.uuid4(), uuid.uuid4()
EXPERIMENT, DRAFT = uuid.uuid4(), uuid.uuid4()

#: optimal_posting_times of w's account acct1 (Europe/Berlin): (day of week, hour, score, avg engagement,
#: posts, confidence). Fri 20:00 and Wed 09:00 tie at 80: more posts rank first. Sun 00:00 has no engagement.
#: Tue 07:00 has one post, too few to be scored (score NULL): ranked last.
CELLS = [(1, 18, 100.0, 0.12, 12, 12 / 22), (3, 9, 80.0, 0.09, 4, 4 / 14), (5, 20, 80.0, 0.1, 8, 8 / 18),
         (0, 0, 10.0, None, 0, None), (2, 7, None, 0.5, 1, 1 / 11)]


async def insert(conn, w: uuid.UUID, x: uuid.UUID) -> None:
    for ws, account, cells in ((w, "acct1", CELLS), (x, "acctx", [(2, 12, 100.0, 0.5, 3, 3 / 13)])):
        await conn.executemany(
            """INSERT INTO optimal_posting_times (workspace_id, platform, connector_id, day_of_week, hour_of_day, timezone,
                   optimization_score, avg_engagement, sample_size, confidence, computed_at)
               VALUES ($1, 'tiktok', $2, $3, $4, 'Europe/Berlin', $5, $6, $7, $8, $9)""",
            [(ws, account, *c, T0) for c in cells])

    trends = [  # (workspace, platform, type, key, source, impact, trend data, start, end)
        (w, "tiktok", "hashtag", "cats", "detected", 250.0, {"status": "rising", "posts": 3, "recent_gain": 1500},
         datetime(2026, 11, 29, 18, tzinfo=UTC), datetime(2026, 11, 30, 0, tzinfo=UTC)),
        (w, "tiktok", "hashtag", "newtag", "detected", None, {"status": "new", "posts": 1, "recent_gain": 1200},
         datetime(2026, 11, 30, 0, tzinfo=UTC), datetime(2026, 11, 30, 6, tzinfo=UTC)),
        (w, "instagram", "style", "minimal", "reported", 40.5, {"note": "=HYPERLINK(1)"},
         datetime(2026, 11, 20, tzinfo=UTC), None),
        (x, "tiktok", "hashtag", "dogs", "detected", 900.0, {"posts": 9, "recent_gain": 9000},
         datetime(2026, 11, 29, 18, tzinfo=UTC), datetime(2026, 11, 30, 0, tzinfo=UTC)),
    ]
    await conn.executemany(
        """INSERT INTO trend_analysis (workspace_id, platform, trend_type, trend_key, source, engagement_impact, trend_data,
               start_time, end_time, created_at, last_event_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $8)""",
        trends)

    benchmarks = [  # (workspace, account, metric, start, end, value, average, median, count, percentile, ratio)
        (w, "acct1", "followers", date(2026, 11, 16), date(2026, 11, 23), 1000.0, 1500.0, 1500.0, 2, 0.0, 1000 / 1500),
        (w, "acct1", "followers", date(2026, 11, 23), date(2026, 11, 30), 1100.0, 1000.0, 1000.0, 2, 50.0, 1.1),
        (w, "acct1", "follower_growth", date(2026, 11, 23), date(2026, 11, 30), 10.0, None, None, 0, None, None),
        (x, "acctx", "followers", date(2026, 11, 23), date(2026, 11, 30), 5.0, 5.0, 5.0, 1, 50.0, 1.0),
    ]
    industry = {(w, "followers", date(2026, 11, 30)): 1200.0}  # the rest: under the thresholds, NULL
    await conn.executemany(
        """INSERT INTO benchmark_comparisons (workspace_id, connector_id, platform, metric, period_start, period_end,
               user_value, competitor_average, competitor_median, competitor_count, percentile, ratio, computed_at,
               industry_average)
           VALUES ($1, $2, 'tiktok', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        [(*b, T0, industry.get((b[0], b[2], b[4]))) for b in benchmarks])

    for ws, model in ((w, MODEL), (x, MODEL_X)):
        await conn.execute(
            """INSERT INTO ml_models (workspace_id, id, name, version, model_type, status, created_at, updated_at,
                   last_event_at) VALUES ($1, $2, 'viral', '2', 'regression', 'active', $3, $3, $3)""", ws, model, T0)
    accuracy = [  # (workspace, model, type, predicted, actual, absolute error, % error, accuracy %, ratio accuracy %
        #          = 100 x min / max, measured at)
        (w, MODEL, "views", 100.0, 80.0, 20.0, 25.0, 75.0, 80.0, datetime(2026, 11, 28, tzinfo=UTC)),
        (w, MODEL, "views", 100.0, 100.0, 0.0, 0.0, 100.0, 100.0, datetime(2026, 11, 29, tzinfo=UTC)),
        (w, MODEL, "views", 60.0, 40.0, 20.0, 50.0, 50.0, 100 * 40 / 60, datetime(2026, 11, 29, 12, tzinfo=UTC)),
        (w, MODEL, "likes", 5.0, 0.0, 5.0, None, 0.0, None, datetime(2026, 11, 29, tzinfo=UTC)),
        (x, MODEL_X, "views", 1.0, 1.0, 0.0, 0.0, 100.0, 100.0, datetime(2026, 11, 29, tzinfo=UTC)),
    ]
    for ws, model, kind, predicted, actual, err, pct, acc, ratio, at in accuracy:
        pid = uuid.uuid4()
        await conn.execute(
            """INSERT INTO predictions (workspace_id, id, model_id, prediction_type, predicted_value, predicted_score,
                   prediction_timestamp, actual_score) VALUES ($1, $2, $3, $4, '{}', $5, $6, $7)""",
            ws, pid, model, kind, predicted, at, actual)
        await conn.execute(
            """INSERT INTO prediction_accuracy (workspace_id, prediction_id, model_id, prediction_type, predicted_score,
                   actual_score, absolute_error, percentage_error, accuracy_percentage, ratio_accuracy, source,
                   measured_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'engagement', $11)""",
            ws, pid, model, kind, predicted, actual, err, pct, acc, ratio, at)

    await conn.executemany(
        """INSERT INTO model_accuracy_daily (workspace_id, model_id, prediction_type, day, predictions, mean_accuracy,
               mean_absolute_error, mean_percentage_error, computed_at) VALUES ($1, $2, 'views', $3, $4, $5, $6, $7, $8)""",
        [(w, MODEL, date(2026, 11, 28), 1, 75.0, 20.0, 25.0, T0), (w, MODEL, date(2026, 11, 29), 2, 75.0, 10.0, 25.0, T0),
         (x, MODEL_X, date(2026, 11, 29), 1, 100.0, 0.0, 0.0, T0)])

    patterns = [  # (workspace, type, name, occurrences, judged, succeeded, engagement sum, engagement count)
        (w, "hook", "question opener", 10, 4, 3, 300.0, 3),
        (w, "hook", "=countdown()", 2, 0, 0, 0.0, 0),  # a name a spreadsheet would run as a formula
        (w, "format", "split screen", 6, 5, 1, 50.0, 2),
        (x, "hook", "other", 9, 9, 9, 9.0, 1),
    ]
    for ws, kind, name, n, judged, ok, esum, ecount in patterns:
        await conn.execute(
            """INSERT INTO identified_patterns (workspace_id, pattern_type, pattern_name, pattern_signature, signature_hash,
                   occurrence_frequency, judged_count, success_count, engagement_sum, engagement_count, first_detected,
                   last_detected, created_at, last_event_at)
               VALUES ($1, $2, $3::text, '{}', md5($3::text), $4, $5, $6, $7, $8, $9, $9, $9, $9)""",
            ws, kind, name, n, judged, ok, esum, ecount, T0)

    # control: 80 outcomes, 40 of them say converted (the others carry a value only), 8 did: 8 / 40 = 0.2
    results = {"control": {"assigned": 100, "outcomes": 80, "judged": 40, "converted": 8, "conversion_rate": 0.2,
                           "mean_value": 1.5},
               "treatment": {"assigned": 100, "outcomes": 0, "judged": 0, "converted": 0, "conversion_rate": None,
                             "mean_value": None}}
    for ws, eid, name, status, res, size in ((w, EXPERIMENT, "thumbnail", "running", results, 200),
                                             (w, DRAFT, "caption", "draft", {}, 0),
                                             (x, uuid.uuid4(), "other", "running", results, 200)):
        await conn.execute(
            """INSERT INTO ab_testing_experiments (workspace_id, id, experiment_name, status, results, current_sample_size,
                   start_date, created_at, updated_at, last_event_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8)""",
            ws, eid, name, status, res, size,
            None if status == "draft" else datetime(2026, 11, 23, tzinfo=UTC), T0)

    # engagement snapshots of one post of w (and one of x) for the engagement-per-day panel: views
    # 100 then 250 on 28 Nov, 400 on 29 Nov -> gained 0 (first), 150, 150
    post, post_x = uuid.uuid4(), uuid.uuid4()
    snaps = [(w, post, datetime(2026, 11, 28, 8, tzinfo=UTC), 100, 10), (w, post, datetime(2026, 11, 28, 20, tzinfo=UTC),
              250, 20), (w, post, datetime(2026, 11, 29, 8, tzinfo=UTC), 400, 40),
             (x, post_x, datetime(2026, 11, 28, 8, tzinfo=UTC), 5, 1), (x, post_x, datetime(2026, 11, 29, 8, tzinfo=UTC),
                                                                      9000, 900)]
    await conn.executemany(
        """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, likes, shares,
               comments, saves, recorded_at) VALUES (gen_random_uuid(), $1, $2, 'tiktok', $4, $5, 0, 0, 0, $3)""", snaps)
