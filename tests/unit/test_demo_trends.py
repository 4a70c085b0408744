"""The demo's line for a detected trend (issue 25 item 2): a 'new' trend (engagement_impact NULL,
a baseline too small to compare with) prints "new"; the old line, f"+{impact:,.0f}%", raised
TypeError on it."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.devkit.demo import trend_line

START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def _trend(impact: float | None, status: str) -> dict:
    return {"trend_type": "hashtag", "trend_key": "#quiet", "platform": "tiktok", "posts": 1,
            "engagement_impact": impact, "status": status, "recent_gain": 1500, "recent_hours": 6,
            "start_time": START, "end_time": START}


def test_a_new_trend_prints_new_not_a_percentage():
    assert trend_line(_trend(None, "new")) == (
        "hashtag #quiet on tiktok: 1 posts, new (1,500 interactions in the last 6 h, next to no baseline), "
        "since 2026-12-01 06:00Z")


def test_a_rising_trend_prints_its_percentage():
    # 200/h against 10/h: 100 x (20 - 1) = +1,900 %
    assert trend_line(_trend(100 * (200 / 10 - 1), "rising")) == (
        "hashtag #quiet on tiktok: 1 posts, +1,900% over the baseline, since 2026-12-01 06:00Z")


def test_a_row_without_the_gain_still_prints_new():
    assert trend_line(_trend(None, "new") | {"recent_gain": None}) == (
        "hashtag #quiet on tiktok: 1 posts, new, since 2026-12-01 06:00Z")
