"""Custom reports on hand-made fixtures (real PostgreSQL, real headless Chromium): exact CSV and
JSON, the HTML page rendered and its screenshot read for the table and the chart, schedules (due,
advanced, missed, abandoned, a bad stored config), and the `learnstream reports` commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import orjson
import pytest
from PIL import Image

from db.pool import connect
from db.reports import query, store
from schemas.reports import ReportDefinition, ReportQuery
from streams.devkit.services import browser
from streams.reports.render import BAR_COLOUR, HEADER_COLOUR
from streams.reports.runner import run_due_reports, run_report
from tests.support import ROOT

pytestmark = pytest.mark.services

W, X = uuid.uuid4(), uuid.uuid4()
A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

#: (post, platform, time, views, likes, shares, comments): A and B on tiktok, C on instagram; each post's
#: first snapshot (1 Nov, all 0) lies before the reports' period
SNAPSHOTS = [
    (A, "tiktok", "2026-11-01T12:00", 0, 0, 0, 0), (B, "tiktok", "2026-11-01T12:00", 0, 0, 0, 0),
    (C, "instagram", "2026-11-01T12:00", 0, 0, 0, 0),
    (A, "tiktok", "2026-11-02T10:00", 100, 10, 0, 0), (A, "tiktok", "2026-11-02T20:00", 200, 20, 0, 0),
    (A, "tiktok", "2026-11-03T09:00", 300, 30, 0, 0),
    (B, "tiktok", "2026-11-02T12:00", 50, 5, 0, 0), (B, "tiktok", "2026-11-04T12:00", 80, 8, 2, 0),
    (C, "instagram", "2026-11-03T08:00", 1000, 100, 0, 50), (C, "instagram", "2026-11-09T00:00", 5000, 1, 0, 0),
]

#: by day and platform, what the posts gained (each snapshot minus its post's previous one, also when
#: that one lies before the period): 2 Nov A (100 - 0) + (200 - 100) views, (10 - 0) + (20 - 10)
#: likes, B 50 - 0 views, 5 likes: 250 / 25; 3 Nov C 1000 - 0, 100 + 50 interactions; A 300 - 200 and
#: 30 - 20; 4 Nov B 80 - 50 views, (8 - 5) + 2 interactions: 5 / 30 = 0.166667. C's 9 Nov snapshot is
#: past the period; workspace X is another tenant. (Before issue #25 item 3 the report summed each
#: post's latest cumulative snapshot of the day: 3 Nov tiktok 300 / 30, 4 Nov 80 / 10.)
DAILY_CSV = """day,platform,posts,views,interactions,engagement_rate
2026-11-02,tiktok,2,250,25,0.1
2026-11-03,instagram,1,1000,150,0.15
2026-11-03,tiktok,1,100,10,0.1
2026-11-04,tiktok,1,30,5,0.166667
"""

DAILY = {"name": "Daily engagement", "formats": ["csv", "json", "html"],
         "query": {"source": "engagement", "metrics": ["posts", "views", "interactions", "engagement_rate"],
                   "dimensions": ["day", "platform"], "period": {"start": "2026-11-02", "end": "2026-11-09"}}}


async def _fixture(conn) -> None:
    for post, kind, tags in ((A, "video", ["cats"]), (B, "image", ["dogs"]), (C, "video", ["cats", "dogs"])):
        platform = "instagram" if post == C else "tiktok"
        await conn.execute(
            """INSERT INTO content (workspace_id, id, platform, content_type, hashtags, published_at, first_seen_at,
                   last_seen_at, last_event_id) VALUES ($1, $2, $3, $4, $5, $6, $6, $6, $7)""",
            W, post, platform, kind, tags, datetime(2026, 11, 1, tzinfo=UTC), uuid.uuid4())
    rows = [(uuid.uuid4(), W, post, platform, views, likes, shares, comments, datetime.fromisoformat(t + "+00:00"))
            for post, platform, t, views, likes, shares, comments in SNAPSHOTS]
    rows.append((uuid.uuid4(), X, A, "tiktok", 999_999, 1, 1, 1, datetime(2026, 11, 2, 12, tzinfo=UTC)))
    await conn.executemany(
        """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, likes, shares,
               comments, saves, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9)""", rows)
    for ptime in (10, 20, 30, 40):
        await _event(conn, "model_prediction", ptime)
    await _event(conn, "user_feedback", 5)


async def _event(conn, kind: str, ms: int) -> None:
    await conn.execute(
        """INSERT INTO learning_events (id, workspace_id, event_type, "timestamp", event_data, processing_time_ms)
           VALUES ($1, $2, $3, '2026-11-03T12:00Z', '{}', $4)""", uuid.uuid4(), W, kind, ms)


async def _add(conn, body: dict, next_run_at=None) -> dict:
    definition = ReportDefinition.model_validate(body)
    await store.add_report(conn, W, definition, next_run_at)
    return await store.find_report(conn, definition.name, W)


async def test_a_report_gives_the_exact_rows_in_csv_and_json_and_records_each_execution(stack, tmp_path):
    conn = await connect(stack.dsn)
    try:
        await _fixture(conn)
        report = await _add(conn, DAILY)
        done = await run_report(conn, report, at=datetime(2026, 11, 10, tzinfo=UTC), out_dir=tmp_path)
        assert [(e.format, e.status, e.rows) for e in done] == [("csv", "completed", 4), ("json", "completed", 4),
                                                                 ("html", "completed", 4)]
        csv_path = next(e.path for e in done if e.format == "csv")
        assert csv_path == tmp_path / str(W) / "daily-engagement" / "daily-engagement-20261110T000000Z.csv"
        assert csv_path.read_text() == DAILY_CSV
        doc = orjson.loads(next(e.path for e in done if e.format == "json").read_bytes())
        assert doc["period"] == {"start": "2026-11-02T00:00:00Z", "end": "2026-11-09T00:00:00Z", "timezone": "UTC"}
        assert doc["rows"][1] == {"day": "2026-11-03", "platform": "instagram", "posts": 1, "views": 1000,
                                  "interactions": 150, "engagement_rate": 0.15}
        recorded = await store.executions(conn, W, report["id"], 10)
        assert sorted((x["format"], x["status"], x["rows"], x["output_url"]) for x in recorded) == sorted(
            (e.format, "completed", 4, str(e.path)) for e in done)
        assert all(x["duration_ms"] >= 0 and x["finished_at"] >= x["started_at"] for x in recorded)

        # filters, no dimension: what the posts gained in the period (A 300 - 0, C 1000 - 0)
        cats = await _add(conn, {"name": "cats", "query": {
            "source": "engagement", "metrics": ["posts", "views"], "filters": {"hashtag": ["cats"]},
            "period": {"start": "2026-11-02", "end": "2026-11-09"}}})
        [e] = await run_report(conn, cats, at=datetime(2026, 11, 10, tzinfo=UTC), out_dir=tmp_path)
        assert e.path.read_text() == "posts,views\n2,1300\n"  # A 300 + C 1000
        kinds = await _add(conn, {"name": "kinds", "query": {
            "source": "engagement", "metrics": ["posts", "views", "likes"], "dimensions": ["content_type"],
            "filters": {"platform": ["tiktok", "instagram"]}, "period": {"start": "2026-11-02", "end": "2026-11-09"}}})
        [e] = await run_report(conn, kinds, at=datetime(2026, 11, 10, tzinfo=UTC), out_dir=tmp_path)
        # B gained 80 views, 8 likes; A 300 and 30, C 1000 and 100
        assert e.path.read_text() == "content_type,posts,views,likes\nimage,1,80,8\nvideo,2,1300,130\n"
        # learning events: p95 of 10, 20, 30, 40 (continuous) = 30 + 0.85 * 10
        learning = await _add(conn, {"name": "latency", "query": {
            "source": "learning", "metrics": ["events", "mean_processing_ms", "p95_processing_ms", "max_processing_ms"],
            "dimensions": ["event_type"], "period": "last_7_days"}})
        [e] = await run_report(conn, learning, at=datetime(2026, 11, 5, 9, tzinfo=UTC), out_dir=tmp_path)
        assert e.path.read_text() == ("event_type,events,mean_processing_ms,p95_processing_ms,max_processing_ms\n"
                                      "model_prediction,4,25.0,38.5,40\nuser_feedback,1,5.0,5.0,5\n")
    finally:
        await conn.close()


async def test_the_engagement_source_reports_what_the_posts_gained_in_each_bucket(stack):
    """Issue #25 item 3: post A scraped on days 1 and 3 (1,000 then 1,500 views), post B daily (200,
    300, 400). Gained per day (a post's first snapshot gains 0): day 1 0 (both first snapshots),
    day 2 300 - 200 = 100 (B), day 3 (1,500 - 1,000) + (400 - 300) = 500 + 100 = 600; the week 700.
    The source used to sum each post's latest cumulative snapshot per bucket: 1,000 + 200 = 1,200 /
    300 / 1,500 + 400 = 1,900, and 1,900 for the week."""
    ws, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    day = {1: datetime(2026, 11, 2, 12, tzinfo=UTC), 2: datetime(2026, 11, 3, 12, tzinfo=UTC),
           3: datetime(2026, 11, 4, 12, tzinfo=UTC)}  # Monday to Wednesday: one week
    conn = await connect(stack.dsn)
    try:
        await conn.executemany(
            """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, likes,
                   recorded_at) VALUES ($1, $2, $3, 'tiktok', $4, $5, $6)""",
            [(uuid.uuid4(), ws, post, views, views // 10, day[d])
             for post, d, views in ((a, 1, 1000), (a, 3, 1500), (b, 1, 200), (b, 2, 300), (b, 3, 400))])

        async def rows(dimensions: list[str], start: datetime, end: datetime) -> list[tuple]:
            q = ReportQuery(source="engagement", metrics=["posts", "views", "likes", "engagement_rate"],
                            dimensions=dimensions)
            return (await query.fetch(conn, ws, q, start, end))[1]

        d = date.fromisoformat
        nov2, nov5 = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC)
        # likes are views / 10 in every snapshot, so every gain's rate is 0.1; day 1 gained no views: NULL
        assert await rows(["day"], nov2, nov5) == [(d("2026-11-02"), 2, 0, 0, None),
                                                   (d("2026-11-03"), 1, 100, 10, 0.1),
                                                   (d("2026-11-04"), 2, 500 + 100, 50 + 10, 0.1)]
        assert await rows(["week"], nov2, nov5) == [(d("2026-11-02"), 2, 0 + 100 + 600, 70, 0.1)]
        assert await rows([], nov2, nov5) == [(2, 700, 70, 0.1)]
        # a period from day 2: A's day-1 snapshot, before it, is what its day-3 snapshot gained from
        nov3 = datetime(2026, 11, 3, tzinfo=UTC)
        assert await rows(["day"], nov3, nov5) == [(d("2026-11-03"), 1, 100, 10, 0.1),
                                                   (d("2026-11-04"), 2, 600, 60, 0.1)]
        # the same definition as content_gains (migration 0028)
        assert await conn.fetchval("SELECT sum(views_gained) FROM content_gains WHERE workspace_id = $1", ws) == 700
    finally:
        await conn.close()


def _runs(img: Image.Image, y: int, colour: tuple[int, int, int]) -> int:
    """Contiguous runs of `colour` along row y."""
    runs, inside = 0, False
    for x in range(img.width):
        hit = img.getpixel((x, y))[:3] == colour
        runs += hit and not inside
        inside = hit
    return runs


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


async def test_the_html_report_opens_in_chromium_with_its_table_and_one_bar_per_row(stack, tmp_path):
    assert browser.find(), "Chromium is not installed: `learnstream services browser` installs it (make test runs it)"
    conn = await connect(stack.dsn)
    try:
        await _fixture(conn)
        report = await _add(conn, {**DAILY, "query": {**DAILY["query"], "metrics": ["views", "posts"]}})
        [e] = await run_report(conn, report, at=datetime(2026, 11, 10, tzinfo=UTC), out_dir=tmp_path, formats=["html"])
    finally:
        await conn.close()
    dom = browser.run(e.path.as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout.decode()
    body = re.search(r"<tbody>(.*)</tbody>", text, re.S).group(1)
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]
    assert cells == [[day, platform, views, posts] for day, platform, posts, views, _, _ in
                     (line.split(",") for line in DAILY_CSV.splitlines()[1:])]
    assert "<figcaption>views by day · platform</figcaption>" in text
    shot = tmp_path / "report.png"
    out = browser.run(e.path.as_uri(), f"--screenshot={shot}", "--window-size=1100,900")
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1100, 900)
    bar, header = _rgb(BAR_COLOUR), _rgb(HEADER_COLOUR)
    bar_rows = [y for y in range(img.height) if _runs(img, y, bar)]
    header_rows = [y for y in range(img.height) if _runs(img, y, header)]
    assert bar_rows and header_rows, "neither the chart nor the table header was drawn"
    assert max(bar_rows) < min(header_rows)  # the chart, then the table
    assert _runs(img, max(bar_rows), bar) == 4  # a bar per row, all standing on the axis
    # the tallest bar is 3 Nov instagram (1000 views): only it reaches the chart's top
    top = min(bar_rows)
    assert _runs(img, top, bar) == 1
    assert max(bar_rows) - top > 150  # full height (230 px plot) for 1000 views, 30 views about 7 px
    assert _runs(img, max(bar_rows) - 25, bar) == 2  # 250 and 1000 views; the 100- and 30-view bars are shorter


async def test_schedules_run_when_due_once_advance_and_survive_a_crash_and_a_bad_config(stack, tmp_path):
    conn = await connect(stack.dsn)
    try:
        await _fixture(conn)
        weekly = {**DAILY, "name": "weekly", "formats": ["csv", "html"],
                  "schedule": {"cron": "0 9 * * 1", "timezone": "UTC"}}
        weekly["query"] = {**DAILY["query"], "period": "previous_week"}
        first = datetime(2026, 11, 9, 9, tzinfo=UTC)  # Monday: its previous week is 2 to 9 Nov
        report = await _add(conn, weekly, next_run_at=first)
        assert await run_due_reports(conn, datetime(2026, 11, 9, 8, 59, tzinfo=UTC), tmp_path) == 0
        assert await run_due_reports(conn, datetime(2026, 11, 9, 9, 0, 30, tzinfo=UTC), tmp_path) == 2
        path = tmp_path / str(W) / "weekly" / "weekly-20261109T090000Z.csv"
        assert path.read_text() == DAILY_CSV
        sched = await conn.fetchrow("SELECT next_run_at, last_run_at FROM report_schedules WHERE report_id = $1",
                                    report["id"])
        assert (sched["next_run_at"], sched["last_run_at"]) == (datetime(2026, 11, 16, 9, tzinfo=UTC), first)
        assert await run_due_reports(conn, datetime(2026, 11, 9, 9, 1, tzinfo=UTC), tmp_path) == 0  # ran already

        # a worker stopped mid-run: its execution was left generating and the schedule still due
        await conn.execute("UPDATE report_schedules SET next_run_at = $1, last_run_at = NULL", first)
        stale = await store.start_execution(conn, W, report["id"], sched_id := await conn.fetchval(
            "SELECT id FROM report_schedules WHERE report_id = $1", report["id"]), "csv")
        path.write_text("partial")
        assert await run_due_reports(conn, datetime(2026, 11, 9, 9, 5, tzinfo=UTC), tmp_path) == 2
        assert path.read_text() == DAILY_CSV  # the same period, the same file
        assert await conn.fetchval("SELECT status::text || ': ' || error_message FROM report_executions WHERE id = $1",
                                   stale) == "failed: abandoned: the worker running it stopped; the schedule runs it again"

        # down for three weeks: the missed schedule runs once, for its latest fire time
        assert await run_due_reports(conn, datetime(2026, 11, 30, 10, tzinfo=UTC), tmp_path) == 2
        assert (tmp_path / str(W) / "weekly" / "weekly-20261130T090000Z.csv").exists()
        assert not (tmp_path / str(W) / "weekly" / "weekly-20261116T090000Z.csv").exists()
        assert await conn.fetchval("SELECT next_run_at FROM report_schedules WHERE id = $1", sched_id) == datetime(
            2026, 12, 7, 9, tzinfo=UTC)

        # a report stored by SQL with a config outside the whitelist fails with its reason; the others run
        bad = await conn.fetchval(
            """INSERT INTO custom_reports (workspace_id, name, report_type, query_config, formats)
               VALUES ($1, 'bad', 'engagement', '{"source": "engagement", "metrics": ["views; DROP TABLE content"]}',
                       '{csv}') RETURNING id""", W)
        await conn.execute("""INSERT INTO report_schedules (workspace_id, report_id, cron_expr, next_run_at)
                              VALUES ($1, $2, '0 9 * * 1', '2026-12-07T09:00Z')""", W, bad)
        assert await run_due_reports(conn, datetime(2026, 12, 7, 9, 0, 10, tzinfo=UTC), tmp_path) == 3
        failed = await conn.fetchrow("SELECT status::text, error_message FROM report_executions WHERE report_id = $1",
                                     bad)
        assert failed["status"] == "failed"
        assert "engagement has no metric 'views; DROP TABLE content'" in failed["error_message"]
        assert (tmp_path / str(W) / "weekly" / "weekly-20261207T090000Z.html").exists()
        assert await conn.fetchval("SELECT count(*) FROM content") == 3
    finally:
        await conn.close()


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", "reports", *args], cwd=ROOT, env=env,
                          capture_output=True, timeout=60)


async def test_the_reports_commands_add_list_run_show_and_rm(stack, tmp_path):
    conn = await connect(stack.dsn)
    try:
        await _fixture(conn)
    finally:
        await conn.close()
    env = {**os.environ, "LEARNSTREAM_DATABASE_URL": stack.dsn, "LEARNSTREAM_REPORTS_DIR": str(tmp_path)}
    added = _cli("add", "daily", "-w", str(W), "-s", "engagement", "-m", "posts", "-m", "views", "-m", "interactions",
                 "-m", "engagement_rate", "-d", "day", "-d", "platform", "--period", "2026-11-02/2026-11-09",
                 "--format", "csv", "--format", "html", "--schedule", "0 9 * * 1", env=env)
    assert added.returncode == 0, added.stderr
    assert re.match(r"added report 'daily' \([0-9a-f-]{36}\); next run \d{4}-\d\d-\d\d 09:00Z", added.stdout.decode())
    refused = _cli("add", "evil", "-w", str(W), "-s", "engagement", "-m", "views); DROP TABLE content; --", env=env)
    assert refused.returncode == 2
    assert "query: engagement has no metric 'views); DROP TABLE content; --'" in refused.stderr.decode()
    twice = _cli("add", "daily", "-w", str(W), "-s", "learning", "-m", "events", env=env)
    assert twice.returncode == 2 and "already has a report named 'daily'" in twice.stderr.decode()

    listed = _cli("list", env=env).stdout.decode()
    assert re.search(r"daily\s+" + str(W) + r" engagement\s+csv,html\s+0 9 \* \* 1 \(UTC\) next .*; never run", listed)
    ran = _cli("run", "daily", "--at", "2026-11-10T00:00:00Z", env=env)
    assert ran.returncode == 0, ran.stderr
    csv_line, html_line = ran.stdout.decode().splitlines()
    assert csv_line == f"csv: 4 rows -> {tmp_path / str(W) / 'daily' / 'daily-20261110T000000Z.csv'}"
    assert html_line.startswith("html: 4 rows -> ") and html_line.endswith(".html")
    assert Path(csv_line.split(" -> ")[1]).read_text() == DAILY_CSV
    shown = _cli("show", "daily", env=env).stdout.decode()
    assert '"metrics":["posts","views","interactions","engagement_rate"]' in shown
    assert re.search(r"csv\s+completed\s+4 rows", shown) and re.search(r"html\s+completed\s+4 rows", shown)
    missing = _cli("show", "nope", env=env)
    assert missing.returncode == 2 and missing.stderr.decode().strip() == "learnstream: error: no report named 'nope'"
    removed = _cli("rm", "daily", "-w", str(W), env=env)
    assert removed.returncode == 0 and "removed report 'daily'" in removed.stdout.decode()
    assert "no reports" in _cli("list", env=env).stdout.decode()


async def test_a_schedule_that_never_fires_is_skipped_and_the_other_workspaces_reports_run(stack, tmp_path):
    """Issue #23 item 3: one schedule with cron `0 0 31 2 *` (stored by SQL: the contract and `reports
    add` refuse it) used to stop every workspace's reports (the job's next-run computation raised)."""
    conn = await connect(stack.dsn)
    try:
        await _fixture(conn)
        weekly = {**DAILY, "name": "weekly", "formats": ["csv"], "schedule": {"cron": "0 9 * * 1", "timezone": "UTC"}}
        weekly["query"] = {**DAILY["query"], "period": "previous_week"}
        await _add(conn, weekly, next_run_at=datetime(2026, 11, 9, 9, tzinfo=UTC))
        never = await conn.fetchval(
            """INSERT INTO custom_reports (workspace_id, name, report_type, query_config, formats)
               VALUES ($1, 'never', 'engagement', $2, '{csv}') RETURNING id""",
            X, orjson.dumps(DAILY["query"]).decode())
        await conn.execute("INSERT INTO report_schedules (workspace_id, report_id, cron_expr) VALUES ($1, $2, '0 0 31 2 *')",
                           X, never)
        assert await run_due_reports(conn, datetime(2026, 11, 9, 9, 0, 30, tzinfo=UTC), tmp_path) == 1
        assert (tmp_path / str(W) / "weekly" / "weekly-20261109T090000Z.csv").read_text() == DAILY_CSV
        assert await conn.fetchval("SELECT next_run_at FROM report_schedules WHERE report_id = $1", never) is None
        # a 6-field cron is refused by the CHECK of migration 0019
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO report_schedules (workspace_id, report_id, cron_expr) "
                               "VALUES ($1, $2, '0 0 1 1 * 2027')", X, never)
    finally:
        await conn.close()
    env = {**os.environ, "LEARNSTREAM_DATABASE_URL": stack.dsn, "LEARNSTREAM_REPORTS_DIR": str(tmp_path)}
    listed = _cli("list", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.decode().splitlines()}
    assert "invalid: cron: '0 0 31 2 *' never fires (no date matches it) (skipped)" in lines["never"]
    assert "invalid" not in lines["weekly"]
    refused = _cli("add", "never2", "-w", str(W), "-s", "engagement", "-m", "views", "--schedule", "0 0 31 2 *", env=env)
    assert refused.returncode == 2
    assert refused.stderr.decode().startswith("learnstream: error:")
    assert "never fires" in refused.stderr.decode()
