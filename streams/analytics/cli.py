"""`learnstream analytics posting-times|trends|benchmarks|accuracy|patterns|experiments`: what the
analytics jobs computed, read without SQL, as a table, JSON or CSV (db/analytics/read.py holds the
one query of each)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from uuid import UUID

import click
import orjson

from streams.cli_support import expected_failures, parse_time, run_on_database, text_table

#: how an undefined value (NULL) shows in a table; JSON has null, CSV an empty cell
UNDEFINED = "—"
FORMATS = ("table", "json", "csv")


def _cell(v) -> str:
    if v is None:
        return UNDEFINED
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float):
        return repr(v)
    return str(v)


def show(table, fmt: str, *, hide: tuple[str, ...] = ()) -> str:
    """A db.analytics.read.Table as text: `table` (aligned columns, numbers right, NULL as —, the
    columns in `hide` left out), `json` (an array of objects, null for NULL, times in UTC) or `csv`
    (a header line, NULL as an empty cell, formula-like text guarded as in the reports)."""
    if fmt == "json":
        return orjson.dumps([dict(zip(table.columns, row)) for row in table.rows],
                            option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z, default=str).decode() + "\n"
    if fmt == "csv":
        from streams.reports.render import csv_table

        return csv_table(table.columns, table.rows).decode()
    keep = [i for i, c in enumerate(table.columns) if c not in hide]
    rows = [[_cell(row[i]) for i in keep] for row in table.rows]
    numeric = {j for j, i in enumerate(keep)
               if any(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in table.rows)}
    lines = text_table([table.columns[i] for i in keep], rows, frozenset(numeric))
    return "\n".join(lines) + "\n" + ("(no rows)\n" if not rows else "")


def _workspace(_ctx, _param, value: str | None) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a workspace id (a UUID)") from None


def _since(_ctx, _param, value: str | None) -> datetime | None:
    return None if value is None else parse_time(value, "--since")


def _common(fn: Callable) -> Callable:
    """--workspace, --format and --limit, shared by every view."""
    for option in reversed((
        click.option("--workspace", "-w", callback=_workspace, metavar="UUID",
                     help="only this workspace [default: every workspace the login may read]"),
        click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                     help="table (NULL shown as —), json (null) or csv (an empty cell)"),
        click.option("--limit", type=click.IntRange(1, 10_000), default=1000, show_default=True, help="rows at most"),
    )):
        fn = option(fn)
    return fn


def _print(go, fmt: str, workspace: UUID | None, table_hides: tuple[str, ...] = ()) -> None:
    """Print a view; a table (for people) leaves out `table_hides` and, with --workspace, the
    workspace column; json and csv keep every column."""
    table = run_on_database(go)
    click.echo(show(table, fmt, hide=(("workspace_id",) if workspace else ()) + table_hides), nl=False)


@click.group("analytics")
def analytics() -> None:
    """What the analytics jobs computed, without SQL: optimal posting times, trends, benchmarks,
    prediction accuracy, patterns and A/B experiments (`learnstream jobs list` shows when each job
    last ran).

    Reads LEARNSTREAM_DATABASE_URL: as the workers' login, every workspace (narrow with
    --workspace); as a member's own login (`learnstream access grant`), row-level security keeps the
    rows of its workspaces whatever is asked. An undefined value (a trend over a zero baseline, a
    growth from one snapshot) is NULL: — in a table, null in JSON, an empty cell in CSV. In a table
    the workspace column is left out when --workspace names it."""


@analytics.command("posting-times")
@_common
@click.option("--platform", help="only this platform")
@click.option("--account", "--connector", "account", help="only this account (connector id)")
@click.option("--top", type=click.IntRange(0, 168), default=3, show_default=True,
              help="best hours of the week per account; 0: every hour with posts")
@expected_failures
def posting_times_cmd(workspace, fmt, limit, platform, account, top) -> None:
    """The best hours of the week to post, per account, best first (job optimal_posting_times).

    day and hour are in the account's time zone (timezone); score is 0-100 against the account's
    best hour, ranked by a lower bound so that a few lucky posts do not win, NULL for an hour with
    too few posts to be scored (listed after the scored ones); measure says what avg_engagement is:
    engagement_rate (interactions / views) or interactions_per_post (a platform that reports no
    views), at age 24 h, or with " (lifetime, posts >= 7 days)" for an account none of whose
    hours scores at 24 h (e.g. imported history): its posts at least 7 days old, on their latest
    counts; posts their number; confidence = posts / (posts + 10), the weight of the hour's own
    posts against the account's mean."""
    from db.analytics import read

    _print(lambda conn: read.posting_times(conn, workspace, platform=platform, account=account, top=top or None,
                                           limit=limit), fmt, workspace)


@analytics.command("trends")
@_common
@click.option("--platform", help="only this platform")
@click.option("--type", "trend_type", help="only this trend type (hashtag, style, audio, ...)")
@click.option("--source", type=click.Choice(["detected", "reported"]),
              help="detected by the detect_trends job, or reported by a producer [default: both]")
@click.option("--since", callback=_since, metavar="TIME",
              help="only trends still trending at or after this time (or without an end): ISO, or a duration ago (2d)")
@expected_failures
def trends_cmd(workspace, fmt, limit, platform, trend_type, source, since) -> None:
    """Trends, the highest engagement impact first (job detect_trends, and trend_detected events).

    status labels a detected trend: rising (impact_pct measured), or new (its baseline gained too
    few interactions to compare with: impact_pct NULL; listed last); a reported trend has none.
    impact_pct is the % of engagement gained over the key's baseline; posts and recent_gain (the
    interactions its posts gained in the recent window) are those of the latest detection;
    start_time..end_time is when it trended."""
    from db.analytics import read

    _print(lambda conn: read.trends(conn, workspace, platform=platform, trend_type=trend_type, source=source,
                                    since=since, limit=limit), fmt, workspace)


@analytics.command("benchmarks")
@_common
@click.option("--platform", help="only this platform")
@click.option("--account", "--connector", "account", help="only this own account (connector id)")
@click.option("--metric", help="only this metric (followers, follower_growth, ...)")
@click.option("--all-periods", is_flag=True, help="every period compared, not only each account's latest")
@expected_failures
def benchmarks_cmd(workspace, fmt, limit, platform, account, metric, all_periods) -> None:
    """Own accounts against their competitors on the same platform (job benchmarks), per metric and
    period [period_start, period_end).

    value is the account's; competitor_average and competitor_median the active competitors'
    (competitors: how many had a value); percentile the account's place among them (those below plus
    half the ties, in %); ratio = value / competitor_average; industry_average the platform's
    average over the competitor accounts other workspaces share (NULL unless the operator set
    LEARNSTREAM_INDUSTRY_BENCHMARKS, and under its thresholds).
    NULL where undefined (no competitor; a growth needs two snapshots: an account with one has no
    growth row)."""
    from db.analytics import read

    _print(lambda conn: read.benchmarks(conn, workspace, platform=platform, account=account, metric=metric,
                                        every_period=all_periods, limit=limit), fmt, workspace)


@analytics.command("accuracy")
@_common
@click.option("--model", help="only this model name")
@click.option("--type", "prediction_type", help="only this prediction type (views, engagement_rate, ...)")
@click.option("--since", callback=_since, metavar="TIME",
              help="only predictions measured at or after this time: ISO, or a duration ago (30d)")
@expected_failures
def accuracy_cmd(workspace, fmt, limit, model, prediction_type, since) -> None:
    """Prediction accuracy per model, prediction type and source of the actual value (job
    prediction_accuracy: `engagement`; prediction_outcome events: `outcome`; user_feedback: `feedback`).

    predictions: how many were measured; accuracy_pct (relative-error accuracy, 100 x max(0, 1 -
    |p - a| / |a|): asymmetric, 3x too high scores 0, 3x too low 33.3), mean_absolute_error and
    mean_percentage_error are their means (the percentage error is NULL where every actual was 0);
    ratio_accuracy_pct the mean ratio accuracy (100 x min(p, a) / max(p, a): symmetric) over the
    ratio_judged predictions where it is defined; first_measured..last_measured when they were
    measured. A prediction whose outcome came too late after its horizon is not judged (expired)."""
    from db.analytics import read

    _print(lambda conn: read.accuracy(conn, workspace, model=model, prediction_type=prediction_type, since=since,
                                      limit=limit), fmt, workspace)


@analytics.command("patterns")
@_common
@click.option("--type", "pattern_type", help="only this pattern type")
@click.option("--status", type=click.Choice(["active", "resolved", "ignored", "false_positive"]),
              help="only patterns in this status")
@click.option("--min-judged", type=click.IntRange(0), default=0, show_default=True,
              help="only patterns with at least this many judged occurrences (a success rate on few is noise)")
@expected_failures
def patterns_cmd(workspace, fmt, limit, pattern_type, status, min_judged) -> None:
    """Identified patterns (pattern_detection events), ranked by success_lower_pct, then the rate.

    occurrences: how often it was seen; judged: the occurrences that say whether their content
    succeeded; success_rate_pct: the % of those that did (NULL with none judged: listed last);
    success_lower_pct: the lower bound of its 95 % Wilson score interval (z = 1.959964), so a lucky
    1 of 1 (100 %, bound 20.7 %) ranks after 90 of 100 (90 %, bound 82.6 %); avg_engagement: the
    mean engagement reported with its occurrences."""
    from db.analytics import read

    _print(lambda conn: read.patterns(conn, workspace, pattern_type=pattern_type, status=status,
                                      min_judged=min_judged, limit=limit), fmt, workspace)


@analytics.command("experiments")
@_common
@click.option("--status", type=click.Choice(["draft", "running", "completed", "cancelled"]),
              help="only experiments in this status")
@click.option("--experiment", help="only the experiment of this name")
@expected_failures
def experiments_cmd(workspace, fmt, limit, status, experiment) -> None:
    """A/B experiments, one row per variant (ab_experiment, ab_assignment and ab_outcome events;
    the verdict of the experiment_significance job).

    \b
    assigned: subjects assigned to the variant; outcomes: those with an outcome; judged: those whose
    outcome says `converted` (true or false); converted: those that converted; conversion_rate =
    converted / judged (NULL with none judged), the rate the job compares; mean_value: the mean
    outcome value. The job's sample at its last run (tested, tested_converted: judged and converted
    then), and on each treatment's row its comparison with the control (role: control):
    difference of the rates, p_value (two-proportion z-test, Bonferroni-adjusted over the
    treatments), ci_low..ci_high (Newcombe's interval of the difference); NULL where undefined or
    before a run. winner: the job's winner, NULL ("no winner yet") unless the experiment is at a
    decision point (completed, past its end_date, or every arm at its minimum_sample_size) and a
    treatment is significantly better with at least 30 subjects in both arms (or the control
    significantly better than every treatment); decision: "final" or why not ("interim: 120 of
    400 planned per arm", "interim: no planned sample", "cancelled", "no control arm: no variant
    named 'control'", "no treatment arm: only the control is assigned"); declared_winner: what a producer
    declared (decides nothing); judged_at: the run that last changed the verdict. An experiment
    without variants is one row whose variant is NULL. The table leaves out mean_value, tested,
    tested_converted, declared_winner, start_date, end_date and judged_at (json and csv have all)."""
    from db.analytics import read

    _print(lambda conn: read.experiments(conn, workspace, status=status, experiment=experiment, limit=limit),
           fmt, workspace, ("mean_value", "tested", "tested_converted", "declared_winner", "start_date", "end_date",
                            "judged_at"))
