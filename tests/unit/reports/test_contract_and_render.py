"""Report contract (whitelist, periods, schedules) and rendering, without services."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from db.reports.query import FAMILIES, statement
from schemas.reports import SOURCES, TIME_DIMENSIONS, ReportDefinition, ReportQuery, ReportSchedule
from streams.reports.render import Report, to_csv, to_html, to_json


def test_every_whitelisted_name_has_exactly_one_sql_fragment():
    assert set(SOURCES) == set(FAMILIES)
    for name, src in SOURCES.items():
        fam = FAMILIES[name]
        assert set(src.metrics) == set(fam.metrics), name
        assert set(src.dimensions) == set(fam.dimensions), name
        assert set(src.filters) == set(fam.inner) | set(fam.outer), name
        assert not set(fam.inner) & set(fam.outer)
        assert set(TIME_DIMENSIONS) <= set(src.dimensions)


@pytest.mark.parametrize("bad, why", [
    ({"metrics": ["views; DROP TABLE content"]}, "engagement has no metric 'views; DROP TABLE content'"),
    ({"dimensions": ["day", "month"]}, "at most one of day, week, month"),
    ({"filters": {"platform) OR (true": ["x"]}}, "has no filter"),
    ({"filters": {"platform": []}}, "filter 'platform' needs 1 to 100 values"),
    ({"metrics": ["views", "views"]}, "a metric is named twice"),
    ({"timezone": "Mars/Olympus"}, "unknown IANA time zone 'Mars/Olympus'"),
    ({"period": {"start": "2026-02-01", "end": "2026-01-01"}}, "must be after its start"),
    ({"period": {"start": "1900-01-01", "end": "2026-01-01"}}, "between 2000-01-01 and 2100-01-01"),
    ({"limit": 10_001}, "less than or equal to 10000"),
    ({"sql": "SELECT 1"}, "Extra inputs are not permitted"),
])
def test_a_query_outside_the_whitelist_is_refused_with_the_reason(bad, why):
    with pytest.raises(ValidationError) as err:
        ReportQuery.model_validate({"source": "engagement", "metrics": ["views"], **bad})
    assert why in str(err.value)


def test_filter_values_are_parameters_never_sql():
    q = ReportQuery(source="engagement", metrics=["views"], dimensions=["platform"],
                    filters={"hashtag": ["'); DROP TABLE content; --"], "platform": ["tiktok"]})
    sql, params = statement(q)
    assert "DROP" not in sql
    assert params == [["'); DROP TABLE content; --"], ["tiktok"]]
    assert "unnest($6::text[]) f WHERE lower(h) = lower(f)" in sql and "g.platform = ANY($7::text[])" in sql


BERLIN_AT = datetime(2026, 3, 30, 7, 30, tzinfo=UTC)  # Monday 09:30 in Berlin, the day after DST began


@pytest.mark.parametrize("period, start, end", [
    ("last_24_hours", datetime(2026, 3, 29, 7, 30, tzinfo=UTC), BERLIN_AT),
    ("yesterday", datetime(2026, 3, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),  # 23 h
    ("last_7_days", datetime(2026, 3, 22, 23, 0, tzinfo=UTC), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),
    ("week_to_date", datetime(2026, 3, 29, 22, 0, tzinfo=UTC), BERLIN_AT),
    ("previous_week", datetime(2026, 3, 22, 23, 0, tzinfo=UTC), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),
    ("month_to_date", datetime(2026, 2, 28, 23, 0, tzinfo=UTC), BERLIN_AT),
    ("previous_month", datetime(2026, 1, 31, 23, 0, tzinfo=UTC), datetime(2026, 2, 28, 23, 0, tzinfo=UTC)),
    ({"start": "2026-03-01", "end": "2026-04-01"}, datetime(2026, 2, 28, 23, 0, tzinfo=UTC),
     datetime(2026, 3, 31, 22, 0, tzinfo=UTC)),
])
def test_periods_are_whole_days_of_the_reports_zone(period, start, end):
    q = ReportQuery(source="learning", metrics=["events"], period=period, timezone="Europe/Berlin")
    assert q.resolve(BERLIN_AT) == (start, end)


def test_a_schedule_fires_in_its_zone_across_a_dst_change():
    s = ReportSchedule(cron="0 9 * * 1", timezone="Europe/Berlin")
    assert s.next_after(datetime(2026, 3, 20, tzinfo=UTC)) == datetime(2026, 3, 23, 8, 0, tzinfo=UTC)  # CET
    assert s.next_after(datetime(2026, 3, 24, tzinfo=UTC)) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # CEST
    assert s.latest_at_or_before(datetime(2026, 3, 30, 7, 0, tzinfo=UTC)) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    with pytest.raises(ValidationError, match="not a 5-field cron expression"):
        ReportSchedule(cron="every monday")


def test_a_definition_refuses_pdf_and_repeated_formats():
    base = {"name": "r", "query": {"source": "learning", "metrics": ["events"]}}
    assert ReportDefinition.model_validate(base).formats == ["csv"]
    with pytest.raises(ValidationError):
        ReportDefinition.model_validate({**base, "formats": ["pdf"]})
    with pytest.raises(ValidationError, match="a format is named twice"):
        ReportDefinition.model_validate({**base, "formats": ["csv", "csv"]})


def _report(rows) -> Report:
    return Report(name='Weekly <b>"views"</b>', workspace_id="w", source="engagement",
                  start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 11, 8, tzinfo=UTC), timezone="UTC",
                  generated_at=datetime(2026, 11, 8, 9, tzinfo=UTC), columns=["day", "platform", "views", "rate"],
                  rows=rows, dimensions=2)


ROWS = [(date(2026, 11, 1), "tik,tok", 1200, 0.125), (date(2026, 11, 2), '<script>alert(1)</script>', 0, None)]


def test_csv_quotes_what_needs_it_and_leaves_missing_values_empty():
    assert to_csv(_report(ROWS)).decode() == (
        "day,platform,views,rate\n2026-11-01,\"tik,tok\",1200,0.125\n2026-11-02,<script>alert(1)</script>,0,\n")


#: producer-controlled text a spreadsheet would run as a formula or a DDE command (OWASP CSV injection)
FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "\t=1", "\r=1", "a\r=1+1", "x;=1+1", "  =1+1"]


def test_csv_neutralises_cells_that_would_start_a_formula_and_keeps_numbers_numbers():
    rows = [(date(2026, 11, 1), f, -5, -0.5) for f in FORMULAS] + [(date(2026, 11, 2), "tiktok", Decimal("-5"), None)]
    assert to_csv(_report(rows)).decode() == (
        "day,platform,views,rate\n"
        '2026-11-01,"\'=HYPERLINK(""http://x"",""y"")",-5,-0.5\n'
        "2026-11-01,'+cmd|' /C calc'!A0,-5,-0.5\n"
        "2026-11-01,'@SUM(1),-5,-0.5\n"
        "2026-11-01,'-2+3,-5,-0.5\n"
        "2026-11-01,'\t=1,-5,-0.5\n"
        '2026-11-01,"\'\r=1",-5,-0.5\n'
        '2026-11-01,"a\r=1+1",-5,-0.5\n'  # quoted: a spreadsheet does not start a row inside quotes
        '2026-11-01,"x;=1+1",-5,-0.5\n'  # quoted: `;` separates cells in comma-decimal locales
        "2026-11-01,'  =1+1,-5,-0.5\n"  # leading spaces may be trimmed on import
        "2026-11-02,tiktok,-5,\n")
    # JSON and HTML are not read by spreadsheets: they keep the values as sent
    assert orjson.loads(to_json(_report(rows[:1])))["rows"][0]["platform"] == FORMULAS[0]


def test_json_has_the_period_columns_and_rows():
    doc = orjson.loads(to_json(_report(ROWS)))
    assert doc["period"] == {"start": "2026-11-01T00:00:00Z", "end": "2026-11-08T00:00:00Z", "timezone": "UTC"}
    assert doc["rows"][0] == {"day": "2026-11-01", "platform": "tik,tok", "views": 1200, "rate": 0.125}
    assert doc["rows"][1]["rate"] is None


def test_html_escapes_every_value_and_draws_one_bar_per_row():
    page = to_html(_report(ROWS)).decode()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Weekly &lt;b&gt;&quot;views&quot;&lt;/b&gt;" in page
    assert page.count('<rect class="bar"') == 2
    assert page.count("<tr>") == 3  # header + 2 rows
    empty = to_html(_report([])).decode()
    assert "No rows in this period" in empty and '<rect class="bar"' not in empty
