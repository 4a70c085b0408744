"""The jobs the worker runs (their SQL is in db/: one place per table family)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

from db.analytics.accuracy import (
    MAX_TOLERANCE_HOURS,
    MEASURED_TYPES,
    MIN_TOLERANCE_HOURS,
    TOLERANCE_FRACTION,
    accuracy_per_day,
    measure_due_predictions,
)
from db.analytics.benchmarks import (
    EDGE_TOLERANCE,
    INDUSTRY_MAX_SHARE,
    INDUSTRY_MIN_ACCOUNTS,
    INDUSTRY_MIN_TRACKERS,
    INDUSTRY_MIN_WORKSPACES,
    benchmark_accounts,
)
from db.analytics.experiments import CONTROL_NAME, MIN_ARM_SAMPLE, experiment_significance
from db.analytics.improvements import model_improvements
from db.analytics.posting_times import (
    AGE_HOURS,
    LIFETIME,
    LIFETIME_MIN_AGE_DAYS,
    MAX_AGE_HOURS,
    MIN_POSTS,
    PRIOR_POSTS,
    WINDOW_DAYS,
    Z,
    optimal_posting_times,
)
from db.analytics.styles import correlate_styles
from db.analytics.trends import BASELINE_DAYS, MIN_BASELINE_GAIN, MIN_GAIN, RATIO, RECENT_HOURS, detect_trends
from db.jobs import refresh_materialized_views
from streams import metrics
from streams.config import load_settings
from streams.jobs.runner import Job, Period, day_period, week_period
from streams.maintenance.runner import job as _maintenance
from streams.reports.runner import run_due_reports


def _until(fn):
    """A job computing what holds at a time: `--for START/END` computes it as of END, by default now."""
    async def run(conn, period: Period) -> int:
        return await fn(conn, period[1] if period else datetime.now(UTC))
    return run


def _over(fn):
    """A job computing a period (its period_of gives one for every fire time)."""
    async def run(conn, period: Period) -> int:
        assert period is not None
        return await fn(conn, *period)
    return run


def _whole(fn):
    """A job without a period (it recomputes everything it covers)."""
    async def run(conn, _period: Period) -> int:
        return await fn(conn)
    return run


def _skipped(job: str):
    """on_skip of a per-workspace job: the workspace is logged by db/analytics/per_workspace.py and
    counted here."""
    def count(_workspace, _exc) -> None:
        metrics.JOB_WORKSPACES_SKIPPED.labels(job).inc()
    return count


_refresh, _improvements = _whole(refresh_materialized_views), _whole(model_improvements)
_measure = _until(measure_due_predictions)
_posting_times = _until(partial(optimal_posting_times, on_skip=_skipped("optimal_posting_times")))
_trends = _until(detect_trends)
_styles = _until(partial(correlate_styles, on_skip=_skipped("style_correlation")))
_experiments = _until(experiment_significance)
_daily = _over(accuracy_per_day)


async def _benchmarks(conn, period: Period) -> int:
    assert period is not None
    return await benchmark_accounts(conn, *period, industry=load_settings().industry_benchmarks)


async def _reports(conn, period: Period) -> int:
    return await run_due_reports(conn, period[1] if period else datetime.now(UTC), load_settings().reports_dir)


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("refresh_materialized_views", "0 * * * *",
            "REFRESH CONCURRENTLY the seeds' materialized views (003 analytics_aggregated_daily/_weekly: "
            "engagement gained per UTC day / whole week, the rate over posts that report views; "
            "platform_performance_summary; 004 daily_learning_metrics, model_performance_summary)", _refresh),
        Job("prediction_accuracy", "*/15 * * * *",
            "content predictions of " + ", ".join(MEASURED_TYPES) + " whose horizon has passed: actual value "
            "from the post's first engagement snapshot at or after the horizon, if no later than "
            f"min({MAX_TOLERANCE_HOURS:g} h, max({MIN_TOLERANCE_HOURS:g} h, {TOLERANCE_FRACTION:g} x horizon)) after it "
            "(else the prediction expires, reason stale_outcome; a snapshot on which the figure is undefined, an "
            "engagement rate over 0 views, is passed over for the next within that tolerance, and with none the "
            "prediction expires after it, reason undefined_outcome); relative-error and ratio accuracy -> predictions, "
            "prediction_accuracy",
            _measure),
        Job("model_accuracy_daily", "15 0 * * *",
            "accuracy per model, prediction type and UTC day (mean relative-error and ratio accuracy, absolute and % "
            "error) -> "
            "model_accuracy_daily, for the day before and every day whose prediction_accuracy rows changed since the "
            "previous run (a late or backfilled outcome, a replaced or deleted row: prediction_accuracy_changes, "
            "migration 0044, one row per key and day; a change made during a run stays for the next); a day left "
            "without rows loses its daily row", _daily, period_of=day_period),
        Job("optimal_posting_times", "0 3 * * 1",
            f"per workspace, platform and account, in the account's time zone: engagement rate of the posts of the "
            f"last {WINDOW_DAYS} days at age {AGE_HOURS} h (interpolated between the post's snapshots; a post without "
            f"one between {AGE_HOURS} and {MAX_AGE_HOURS} h of age, or younger, is left out; an account that scores no cell "
            f"so, e.g. imported history, falls back to its posts at least {LIFETIME_MIN_AGE_DAYS} days old at their "
            f"latest snapshot, measured on it, its metric marked '{LIFETIME.strip()}') (interactions per post "
            f"where the platform reports no views) by publish day and "
            f"hour, shrunk toward the account's mean with a prior of {PRIOR_POSTS} posts and ranked by its lower "
            f"bound (z {Z:g}); a cell of fewer than {MIN_POSTS} posts is kept unranked -> optimal_posting_times (a "
            f"workspace whose data fails is skipped, counted in job_workspaces_skipped)",
            _posting_times),
        Job("detect_trends", "*/30 * * * *",
            f"hashtags and styles whose posts' interactions gained per hour (interpolated between a post's snapshots; its "
            f"first snapshot gains 0) over "
            f"the last {RECENT_HOURS} h reach {RATIO:g}x those of the same hours on the {BASELINE_DAYS} days before "
            f"(and at least {MIN_GAIN} interactions) -> trend_analysis, source 'detected', a row per key and episode (a "
            f"detection whose window touches the key's episode extends it, after a gap a new row); engagement_impact = % over "
            f"the baseline, NULL with status 'new' when the baseline gained under {MIN_BASELINE_GAIN}", _trends),
        Job("benchmarks", "30 3 * * 1",
            "each own account against the active competitors on its platform: followers, engagement rate and posts "
            "per week (the latest recorded in the period), follower growth over the period (from the latest count at or "
            f"before its start to the latest at or before its end, each at most {EDGE_TOLERANCE.days} day before its "
            "edge, else NULL; the % change x the period's length / the time between the two counts); the "
            "competitors' average, median and count, the account's percentile and ratio; with "
            "LEARNSTREAM_INDUSTRY_BENCHMARKS (off: NULL) the platform's industry average over the competitors that at "
            f"least {INDUSTRY_MIN_TRACKERS} OTHER workspaces track (NULL under {INDUSTRY_MIN_WORKSPACES} other "
            f"workspaces or {INDUSTRY_MIN_ACCOUNTS} accounts, or when one account is over {INDUSTRY_MAX_SHARE:.0%} of "
            "the sum) -> benchmark_comparisons, for the 7 days before",
            _benchmarks, period_of=week_period),
        Job("style_correlation", "45 2 * * *",
            "per workspace, Pearson's r between a post having a style tag and its engagement rate; each analysis's "
            "mean over its tags -> content_style_analysis.engagement_correlation (an analyser's own value is kept; a "
            "workspace whose data fails is skipped, counted in job_workspaces_skipped)",
            _styles),
        Job("model_improvements", "20 * * * *",
            "each model registered with a parent, against it on every numeric metric both report (positive = better; "
            "lower-is-better metrics by the words of their names) -> ai_improvement_tracking, "
            "improvement_type 'model_evaluation'",
            _improvements),
        Job("experiment_significance", "*/15 * * * *",
            f"each A/B experiment's treatments against its control ('{CONTROL_NAME}' or control_variant.name) on the "
            "conversion proportion of the subjects whose outcome says converted (results' judged): pooled "
            "two-proportion z-test (two-sided p), Newcombe interval of the difference, Bonferroni over the treatments, "
            "at 1 - significance_level; a winner only at a decision point (completed, past end_date, or "
            "minimum_sample_size reached in every arm; before it interim figures, significance.decision says why, or "
            f"names a missing control or treatment arm) and when significant with at least {MIN_ARM_SAMPLE} "
            "subjects per arm -> ab_testing_experiments (winner_variant, p_value, difference_ci_low/high, significance)",
            _experiments),
        Job("reports", "* * * * *",
            "custom reports whose schedule is due: each format written to the reports folder (LEARNSTREAM_REPORTS_DIR), "
            "an execution recorded per format, next_run_at advanced", _reports),
        Job("maintenance", "30 1 * * *",
            "retention (data_retention_policies): partitions made ahead; partitions wholly past a table's retention "
            "detached (lock_timeout, retried) and dropped or moved to schema archive; older rows of plain tables and "
            "DEFAULT partitions deleted or archived in batches; logged in maintenance_runs", _maintenance),
    )
}

#: an order that runs every job once on fresh data (measures before the daily accuracy, the views last)
ONCE_ORDER = ("prediction_accuracy", "model_accuracy_daily", "optimal_posting_times", "detect_trends", "benchmarks",
              "style_correlation", "model_improvements", "experiment_significance", "reports",
              "refresh_materialized_views", "maintenance")
assert set(ONCE_ORDER) == set(JOBS)


def once_period(name: str, now: datetime) -> Period:
    """The period a one-off run `now` uses (demo, bench): the daily accuracy over the day around
    now (the data is fresh), every other job its own default."""
    return (now - timedelta(days=1), now + timedelta(days=1)) if name == "model_accuracy_daily" else None
