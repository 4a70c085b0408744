"""`learnstream analytics …` on hand-made rows of the jobs' tables (tests/integration/analytics/rows.py):
exact rows in JSON and CSV, NULL shown as null / an empty cell / —, the filters, and a member's own
login reading only its workspace's rows."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import orjson
import pytest
from click.testing import CliRunner

from tests.integration.access.logins import member_logins
from tests.integration.analytics import rows
from tests.support import ROOT

pytestmark = pytest.mark.services

MON = "2026-11-30T03:00:00Z"


async def _cli(stack, *args: str, dsn: str | None = None) -> str:
    from streams.cli import cli, register

    register()
    env = stack.env(**({"LEARNSTREAM_DATABASE_URL": dsn} if dsn else {}))
    out = await asyncio.to_thread(CliRunner().invoke, cli, ["analytics", *args], env=env, prog_name="learnstream")
    assert out.exit_code == 0, out.output
    return out.stdout


async def _json(stack, *args: str, dsn: str | None = None) -> list[dict]:
    return orjson.loads(await _cli(stack, *args, "--format", "json", dsn=dsn))


async def test_every_view_in_json_csv_and_table_with_undefined_values_shown_as_such(stack):
    async with member_logins(stack, [("reader", 1, "viewer")]) as (owner, w, x, logins):
        await rows.insert(owner, w, x)
        ws = str(w)

        # posting times: the 3 best cells by score; the tie at 80 goes to the cell with more posts (8 > 4);
        # confidence = posts / (posts + 10): 12/22 = 0.545, 8/18 = 0.444, 4/14 = 0.286 (3 places)
        def cell(rank, day, hour, score, eng, posts, conf):
            return {"workspace_id": ws, "platform": "tiktok", "account": "acct1", "rank": rank, "day": day, "hour": hour,
                    "timezone": "Europe/Berlin", "score": score, "measure": "engagement_rate", "avg_engagement": eng,
                    "posts": posts,
                    "confidence": conf, "computed_at": MON}

        best = [cell(1, "Mon", 18, 100.0, 0.12, 12, 0.545), cell(2, "Fri", 20, 80.0, 0.1, 8, 0.444),
                cell(3, "Wed", 9, 80.0, 0.09, 4, 0.286)]
        assert await _json(stack, "posting-times", "-w", ws) == best
        # --top 0: every cell, the one without engagement too (NULL stays null), and last the one post's
        # cell, too few posts to be scored (score NULL, ranked after every scored cell)
        assert await _json(stack, "posting-times", "-w", ws, "--top", "0") == [
            *best, cell(4, "Sun", 0, 10.0, None, 0, None), cell(5, "Tue", 7, None, 0.5, 1, 0.091)]
        assert await _cli(stack, "posting-times", "-w", ws, "--top", "0", "--format", "csv") == (
            "workspace_id,platform,account,rank,day,hour,timezone,score,measure,avg_engagement,posts,confidence,"
            "computed_at\n"
            f"{ws},tiktok,acct1,1,Mon,18,Europe/Berlin,100.0,engagement_rate,0.12,12,0.545,2026-11-30T03:00:00+00:00\n"
            f"{ws},tiktok,acct1,2,Fri,20,Europe/Berlin,80.0,engagement_rate,0.1,8,0.444,2026-11-30T03:00:00+00:00\n"
            f"{ws},tiktok,acct1,3,Wed,9,Europe/Berlin,80.0,engagement_rate,0.09,4,0.286,2026-11-30T03:00:00+00:00\n"
            f"{ws},tiktok,acct1,4,Sun,0,Europe/Berlin,10.0,engagement_rate,,0,,2026-11-30T03:00:00+00:00\n"
            f"{ws},tiktok,acct1,5,Tue,7,Europe/Berlin,,engagement_rate,0.5,1,0.091,2026-11-30T03:00:00+00:00\n")
        assert await _json(stack, "posting-times", "-w", ws, "--account", "nobody") == []
        assert await _json(stack, "posting-times", "-w", ws, "--top", "1", "--platform", "tiktok") == best[:1]

        # trends: by impact, the undefined impact (a zero baseline) last; a reported trend has no posts
        cats = {"workspace_id": ws, "platform": "tiktok", "trend_type": "hashtag", "trend_key": "cats",
                "source": "detected", "status": "rising", "impact_pct": 250.0, "posts": 3, "recent_gain": 1500,
                "start_time": "2026-11-29T18:00:00Z", "end_time": "2026-11-30T00:00:00Z"}
        minimal = {"workspace_id": ws, "platform": "instagram", "trend_type": "style", "trend_key": "minimal",
                   "source": "reported", "status": None, "impact_pct": 40.5, "posts": None, "recent_gain": None,
                   "start_time": "2026-11-20T00:00:00Z", "end_time": None}
        newtag = {"workspace_id": ws, "platform": "tiktok", "trend_type": "hashtag", "trend_key": "newtag",
                  "source": "detected", "status": "new", "impact_pct": None, "posts": 1, "recent_gain": 1200,
                  "start_time": "2026-11-30T00:00:00Z", "end_time": "2026-11-30T06:00:00Z"}
        assert await _json(stack, "trends", "-w", ws) == [cats, minimal, newtag]
        assert await _json(stack, "trends", "-w", ws, "--limit", "1") == [cats]
        # cats ended at 00:00, before --since; minimal has no end (still trending)
        assert await _json(stack, "trends", "-w", ws, "--since", "2026-11-30T03:00:00Z") == [minimal, newtag]
        assert await _json(stack, "trends", "-w", ws, "--source", "detected", "--type", "hashtag",
                           "--since", "2026-11-30T03:00:00Z") == [newtag]
        assert await _cli(stack, "trends", "-w", ws, "--format", "csv") == (
            "workspace_id,platform,trend_type,trend_key,source,status,impact_pct,posts,recent_gain,start_time,end_time\n"
            f"{ws},tiktok,hashtag,cats,detected,rising,250.0,3,1500,2026-11-29T18:00:00+00:00,2026-11-30T00:00:00+00:00\n"
            f"{ws},instagram,style,minimal,reported,,40.5,,,2026-11-20T00:00:00+00:00,\n"
            f"{ws},tiktok,hashtag,newtag,detected,new,,1,1200,2026-11-30T00:00:00+00:00,2026-11-30T06:00:00+00:00\n")

        # benchmarks: each metric's latest period; growth has no competitor, so no average, percentile, ratio
        def bench(metric, start, end, value, avg, n, pct, ratio, industry=None):
            return {"workspace_id": ws, "account": "acct1", "platform": "tiktok", "metric": metric,
                    "period_start": start, "period_end": end, "value": value, "competitor_average": avg,
                    "competitor_median": avg, "competitors": n, "percentile": pct, "ratio": ratio,
                    "industry_average": industry, "computed_at": MON}

        growth = bench("follower_growth", "2026-11-23", "2026-11-30", 10.0, None, 0, None, None)
        followers = bench("followers", "2026-11-23", "2026-11-30", 1100.0, 1000.0, 2, 50.0, 1.1, 1200.0)
        assert await _json(stack, "benchmarks", "-w", ws) == [growth, followers]
        # every period: the week before too, its ratio 1000 / 1500 = 0.666667 (6 places)
        assert await _json(stack, "benchmarks", "-w", ws, "--all-periods", "--metric", "followers") == [
            followers, bench("followers", "2026-11-16", "2026-11-23", 1000.0, 1500.0, 2, 0.0, 0.666667)]

        # accuracy per model and type: views (75 + 100 + 50) / 3 = 75 %, ratio accuracy (80 + 100 + 66.667) / 3
        # = 82.222 %, errors (20 + 0 + 20) / 3 = 13.333333, % errors (25 + 0 + 50) / 3 = 25; likes' actual was
        # 0: its % error and ratio accuracy are undefined (0 judged)
        def acc(kind, n, accuracy, ratio, judged, mae, mpe, first, last):
            return {"workspace_id": ws, "model": "viral", "version": "2", "prediction_type": kind, "source": "engagement",
                    "predictions": n, "accuracy_pct": accuracy, "ratio_accuracy_pct": ratio, "ratio_judged": judged,
                    "mean_absolute_error": mae,
                    "mean_percentage_error": mpe, "first_measured": first, "last_measured": last}

        likes = acc("likes", 1, 0.0, None, 0, 5.0, None, "2026-11-29T00:00:00Z", "2026-11-29T00:00:00Z")
        assert await _json(stack, "accuracy", "-w", ws) == [
            likes, acc("views", 3, 75.0, 82.222, 3, 13.333333, 25.0, "2026-11-28T00:00:00Z", "2026-11-29T12:00:00Z")]
        # since 29 Nov: views (100 + 50) / 2 = 75 %, ratio (100 + 66.667) / 2 = 83.333 %, errors (0 + 20) / 2 = 10,
        # % errors (0 + 50) / 2 = 25
        assert await _json(stack, "accuracy", "-w", ws, "--since", "2026-11-29", "--model", "viral",
                           "--type", "views") == [
            acc("views", 2, 75.0, 83.333, 2, 10.0, 25.0, "2026-11-29T00:00:00Z", "2026-11-29T12:00:00Z")]

        # patterns: success 3/4 = 75 %, 1/5 = 20 %, none judged (NULL) last; engagement 300/3, 50/2, none.
        # Ranked by the Wilson 95 % lower bound (z = 1.959964, z² = 3.841459):
        # 3/4: (0.75 + 3.841459/8 - 1.959964 sqrt(0.75 * 0.25 / 4 + 3.841459/64)) / (1 + 3.841459/4)
        #      = (1.230182 - 1.959964 * 0.326952) / 1.960365 = 0.589368 / 1.960365 = 30.064 %;
        # 1/5: (0.2 + 3.841459/10 - 1.959964 sqrt(0.2 * 0.8 / 5 + 3.841459/100)) / (1 + 3.841459/5)
        #      = (0.584146 - 1.959964 * 0.265357) / 1.768292 = 0.064055 / 1.768292 = 3.622 %
        def pattern(kind, name, n, judged, rate, lower, eng):
            return {"workspace_id": ws, "pattern_type": kind, "pattern_name": name, "status": "active",
                    "occurrences": n, "judged": judged, "success_rate_pct": rate, "success_lower_pct": lower,
                    "avg_engagement": eng,
                    "confidence": None, "first_detected": MON, "last_detected": MON}

        split = pattern("format", "split screen", 6, 5, 20.0, 3.622, 25.0)
        assert await _json(stack, "patterns", "-w", ws) == [
            pattern("hook", "question opener", 10, 4, 75.0, 30.064, 100.0), split,
            pattern("hook", "=countdown()", 2, 0, None, None, None)]
        assert await _json(stack, "patterns", "-w", ws, "--min-judged", "5") == [split]
        # CSV: the formula-like name is written as text (a leading '), NULLs empty
        assert await _cli(stack, "patterns", "-w", ws, "--format", "csv", "--status", "active", "--type", "hook") == (
            "workspace_id,pattern_type,pattern_name,status,occurrences,judged,success_rate_pct,success_lower_pct,"
            "avg_engagement,confidence,first_detected,last_detected\n"
            f"{ws},hook,question opener,active,10,4,75.0,30.064,100.0,,2026-11-30T03:00:00+00:00,2026-11-30T03:00:00+00:00\n"
            f"{ws},hook,'=countdown(),active,2,0,,,,,2026-11-30T03:00:00+00:00,2026-11-30T03:00:00+00:00\n")

        # experiments: a variant per row; without outcomes no conversion rate; a draft without assignments
        # control: 8 converted of 40 judged (80 outcomes, 40 saying converted): 8 / 40 = 0.2
        def arm(name, status, variant, assigned, outcomes, judged, converted, rate, value, size, start):
            return {"workspace_id": ws, "experiment": name, "status": status, "variant": variant, "assigned": assigned,
                    "outcomes": outcomes, "judged": judged, "converted": converted, "conversion_rate": rate,
                    "mean_value": value,
                    "tested": None, "tested_converted": None, "difference": None, "p_value": None, "ci_low": None,
                    "ci_high": None, "role": None, "winner": None, "decision": None, "declared_winner": None,
                    "sample_size": size,
                    "start_date": start, "end_date": None, "judged_at": None}

        control = arm("thumbnail", "running", "control", 100, 80, 40, 8, 0.2, 1.5, 200, "2026-11-23T00:00:00Z")
        treatment = arm("thumbnail", "running", "treatment", 100, 0, 0, 0, None, None, 200, "2026-11-23T00:00:00Z")
        assert await _json(stack, "experiments", "-w", ws) == [
            arm("caption", "draft", None, None, None, None, None, None, None, 0, None), control, treatment]
        assert await _json(stack, "experiments", "-w", ws, "--status", "running", "--experiment", "thumbnail") == [
            control, treatment]
        assert await _cli(stack, "experiments", "-w", ws, "--format", "csv") == (
            "workspace_id,experiment,status,variant,assigned,outcomes,judged,converted,conversion_rate,mean_value,tested,"
            "tested_converted,difference,p_value,ci_low,ci_high,role,winner,decision,declared_winner,sample_size,"
            "start_date,end_date,judged_at\n"
            f"{ws},caption,draft,,,,,,,,,,,,,,,,,,0,,,\n"
            f"{ws},thumbnail,running,control,100,80,40,8,0.2,1.5,,,,,,,,,,,200,2026-11-23T00:00:00+00:00,,\n"
            f"{ws},thumbnail,running,treatment,100,0,0,0,,,,,,,,,,,,,200,2026-11-23T00:00:00+00:00,,\n")
        # a table: aligned, numbers right, NULL as —, no workspace column when --workspace names it
        assert await _cli(stack, "experiments", "-w", ws, "--status", "running") == (
            "experiment  status   variant    assigned  outcomes  judged  converted  conversion_rate  difference  p_value  "
            "ci_low  ci_high  role  winner  decision  sample_size\n"
            "thumbnail   running  control         100        80      40          8              0.2  —           —        "
            "—       —        —     —       —                 200\n"
            "thumbnail   running  treatment       100         0       0          0                —  —           —        "
            "—       —        —     —       —                 200\n")
        assert await _cli(stack, "benchmarks", "-w", ws, "--metric", "nothing") == (
            "account  platform  metric  period_start  period_end  value  competitor_average  competitor_median  "
            "competitors  percentile  ratio  industry_average  computed_at\n(no rows)\n")

        # the demo (`make demo`, step 9) shows the busiest workspace's (w: 4 cells to x's 1) as the command does
        from streams.devkit.demo import analytics_lines

        shown = "\n".join(await analytics_lines(owner))
        for command in ("posting-times --top 3", "trends --limit 5", "benchmarks", "accuracy"):
            printed = await _cli(stack, *command.split(), "--workspace", ws)
            block = "\n".join("     " + line for line in printed.splitlines())
            assert f"   $ learnstream analytics {command} --workspace {ws}\n{block}" in shown, command

        # the workers' login without --workspace: both workspaces; a member's own login: its workspace only
        everyone = await _json(stack, "trends")
        assert {r["workspace_id"] for r in everyone} == {ws, str(x)}
        reader_dsn = logins["reader"][1]
        assert await _json(stack, "trends", dsn=reader_dsn) == [cats, minimal, newtag]
        assert await _json(stack, "trends", "-w", str(x), dsn=reader_dsn) == []
        for view in ("posting-times", "benchmarks", "accuracy", "patterns", "experiments"):
            assert {r["workspace_id"] for r in await _json(stack, view, dsn=reader_dsn)} == {ws}, view


def test_the_entry_point_reads_and_refuses_a_bad_workspace_in_one_line(stack):
    run = [sys.executable, "-m", "streams.cli", "analytics"]
    out = subprocess.run([*run, "posting-times", "--format", "csv"], cwd=ROOT, env=stack.env(), capture_output=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (b"workspace_id,platform,account,rank,day,hour,timezone,score,measure,avg_engagement,posts,"
                          b"confidence,computed_at\n")
    out = subprocess.run([*run, "trends", "-w", "nope"], cwd=ROOT, env=stack.env(), capture_output=True, timeout=60)
    assert out.returncode == 2 and b"'nope' is not a workspace id (a UUID)" in out.stderr
