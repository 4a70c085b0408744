"""The report sources of the jobs' outputs (posting_times, trends, benchmarks, experiments) on the
hand-made rows of tests/integration/analytics/rows.py: exact rows, undefined values None, the other
workspace never in them; and one report of each run end to end into CSV."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from db.pool import connect
from db.reports import store
from db.reports.query import fetch
from schemas.reports import ReportDefinition, ReportQuery
from streams.reports.runner import run_report
from tests.integration.analytics import rows

pytestmark = pytest.mark.services


async def _rows(conn, w, source: str, metrics: list[str], dimensions: list[str], start: str, end: str,
                **filters: list[str]) -> list[tuple]:
    q = ReportQuery(source=source, metrics=metrics, dimensions=dimensions, filters=filters,
                    period={"start": start, "end": end})
    t0, t1 = q.resolve(datetime(2026, 12, 7, tzinfo=UTC))
    columns, got = await fetch(conn, w, q, t0, t1)
    assert columns == [*dimensions, *metrics]
    return got


async def test_the_job_sources_give_exact_rows(stack):
    w, x = uuid.uuid4(), uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        await rows.insert(conn, w, x)
        # posting times: one row per cell (the period does not filter them: the job keeps its latest run)
        metrics = ["cells", "best_score", "posts", "avg_engagement", "mean_confidence"]
        assert await _rows(conn, w, "posting_times", metrics, ["account", "weekday", "hour"], "2026-01-01",
                           "2026-01-02") == [
            ("acct1", 0, 0, 1, 10.0, 0, None, None),  # no engagement: undefined, not 0
            ("acct1", 1, 18, 1, 100.0, 12, 0.12, 0.545),  # 12 / 22
            ("acct1", 2, 7, 1, None, 1, 0.5, 0.091),  # one post: too few to be scored; 1 / 11
            ("acct1", 3, 9, 1, 80.0, 4, 0.09, 0.286),  # 4 / 14
            ("acct1", 5, 20, 1, 80.0, 8, 0.1, 0.444)]  # 8 / 18
        # all cells: engagement weighted by posts (0.12 * 12 + 0.09 * 4 + 0.1 * 8 + 0.5 * 1) / 25 = 3.1 / 25 = 0.124;
        # confidence (12/22 + 4/14 + 8/18 + 1/11) / 4 = 1.366522 / 4 = 0.342 (the cell without one left out)
        assert await _rows(conn, w, "posting_times", metrics, [], "2026-11-23", "2026-12-01",
                           platform=["tiktok"], account=["acct1"]) == [(5, 100.0, 25, 0.124, 0.342)]
        # by measure: every cell of acct1 is an engagement rate; 4 of its 5 cells have a score
        assert await _rows(conn, w, "posting_times", ["cells", "scored_cells"], ["measure"], "2026-11-23",
                           "2026-12-01", measure=["engagement_rate"]) == [("engagement_rate", 5, 4)]

        # trends active in [23 Nov, 1 Dec): all three; the detected newtag's impact is undefined, so
        # the mean is cats' alone; the reported one has no posts
        metrics = ["trends", "max_impact", "mean_impact", "posts", "recent_gain"]
        assert await _rows(conn, w, "trends", metrics, ["source"], "2026-11-23", "2026-12-01") == [
            ("detected", 2, 250.0, 250.0, 3 + 1, 1500 + 1200), ("reported", 1, 40.5, 40.5, None, None)]
        # by label: the reported trend has none; newtag is new (no impact), cats rising
        assert await _rows(conn, w, "trends", ["trends", "new_trends", "mean_impact"], ["status"], "2026-11-23",
                           "2026-12-01") == [("", 1, 0, 40.5), ("new", 1, 1, None), ("rising", 1, 0, 250.0)]
        assert await _rows(conn, w, "trends", ["trends"], ["trend_key"], "2026-11-23", "2026-12-01",
                           status=["new"]) == [("newtag", 1)]
        assert await _rows(conn, w, "trends", ["trends", "max_impact"], ["trend_key"], "2026-11-23", "2026-12-01",
                           trend_type=["hashtag"]) == [("cats", 1, 250.0), ("newtag", 1, None)]
        # [1 Nov, 21 Nov): only the reported trend (since 20 Nov, no end); by the week of its start
        assert await _rows(conn, w, "trends", ["trends"], ["week", "trend_key"], "2026-11-01", "2026-11-21") == [
            (date(2026, 11, 16), "minimal", 1)]

        # benchmarks whose period ended in (23 Nov, 1 Dec]: the week to 30 Nov
        metrics = ["comparisons", "value", "competitor_average", "competitor_median", "competitors", "percentile",
                   "ratio", "industry_average"]
        assert await _rows(conn, w, "benchmarks", metrics, ["metric"], "2026-11-23", "2026-12-01") == [
            ("follower_growth", 1, 10.0, None, None, 0, None, None, None),
            ("followers", 1, 1100.0, 1000.0, 1000.0, 2, 50.0, 1.1, 1200.0)]
        # both weeks: value (1000 + 1100) / 2 = 1050, ratio (1000/1500 + 1.1) / 2 = 0.883333; by week
        assert await _rows(conn, w, "benchmarks", ["comparisons", "value", "ratio"], ["metric"], "2026-11-16",
                           "2026-12-01", metric=["followers"]) == [("followers", 2, 1050.0, 0.883333)]
        assert await _rows(conn, w, "benchmarks", ["value"], ["week", "metric"], "2026-11-16", "2026-12-01",
                           metric=["followers"], account=["acct1"], platform=["tiktok"]) == [
            (date(2026, 11, 16), "followers", 1000.0), (date(2026, 11, 23), "followers", 1100.0)]

        # experiments: the draft (no start: its creation, 30 Nov) has no variant; without outcomes no rate
        metrics = ["experiments", "assigned", "outcomes", "judged", "converted", "conversion_rate"]
        assert await _rows(conn, w, "experiments", metrics, ["experiment", "variant"], "2026-11-23", "2026-12-01") == [
            ("caption", None, 1, 0, 0, 0, 0, None), ("thumbnail", "control", 1, 100, 80, 40, 8, 0.2),
            ("thumbnail", "treatment", 1, 100, 0, 0, 0, None)]
        # all running: 8 converted of the 40 judged (80 outcomes, 40 saying converted) = 0.2, the rate the
        # experiment_significance job compares (not 8 / 80 = 0.1)
        assert await _rows(conn, w, "experiments", metrics, [], "2026-11-23", "2026-12-01", status=["running"]) == [
            (1, 200, 80, 40, 8, 0.2)]
        assert await _rows(conn, w, "experiments", ["assigned"], ["variant"], "2026-11-23", "2026-12-01",
                           variant=["treatment"], experiment=["thumbnail"]) == [("treatment", 100)]
        # before any experiment started or was created: nothing
        assert await _rows(conn, w, "experiments", metrics, ["experiment"], "2026-11-01", "2026-11-23") == []
    finally:
        await conn.close()


async def test_a_report_of_posting_times_runs_into_csv(stack, tmp_path):
    w, x = uuid.uuid4(), uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        await rows.insert(conn, w, x)
        definition = ReportDefinition.model_validate({
            "name": "Best hours", "formats": ["csv"],
            "query": {"source": "posting_times", "metrics": ["best_score", "posts"],
                      "dimensions": ["account", "weekday", "hour"], "period": "last_7_days"}})
        await store.add_report(conn, w, definition, None)
        report = await store.find_report(conn, "Best hours", w)
        [done] = await run_report(conn, report, at=datetime(2026, 12, 7, tzinfo=UTC), out_dir=tmp_path)
    finally:
        await conn.close()
    assert done.status == "completed", done.error
    assert done.path.read_text() == ("account,weekday,hour,best_score,posts\n"
                                     "acct1,0,0,10.0,0\nacct1,1,18,100.0,12\nacct1,2,7,,1\nacct1,3,9,80.0,4\n"
                                     "acct1,5,20,80.0,8\n")  # Tue 07:00: one post, no score (an empty cell)
