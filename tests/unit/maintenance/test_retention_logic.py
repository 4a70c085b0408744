"""The pure parts of retention: partition bounds from the catalog's text, which partitions are wholly
past a cutoff, the retry backoff, the registry."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from db.backoff import Backoff
from db.partitions import PARTITIONED
from db.retention import RETAINED, Options, Partition, expired, parse_bound


def t(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_bounds_are_parsed_from_pg_get_expr():
    assert parse_bound("FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')") == (
        t(2024, 1, 1), t(2024, 2, 1))
    # another session time zone prints another offset: the same instant
    assert parse_bound("FOR VALUES FROM ('2024-01-01 01:00:00+01') TO (MAXVALUE)") == (t(2024, 1, 1), None)
    assert parse_bound("FOR VALUES FROM (MINVALUE) TO ('2024-01-01 05:30:00+05:30')") == (None, t(2024, 1, 1))
    assert parse_bound("DEFAULT") is None
    with pytest.raises(ValueError, match="not a single-column range bound"):
        parse_bound("FOR VALUES IN ('a')")


def _p(name: str, lo, hi, default: bool = False) -> Partition:
    return Partition(name, lo, hi, default)


def test_only_partitions_wholly_before_the_cutoff_expire_never_default():
    parts = [_p("m03", t(2024, 3, 1), t(2024, 4, 1)), _p("m01", t(2024, 1, 1), t(2024, 2, 1)),
             _p("m02", t(2024, 2, 1), t(2024, 3, 1)), _p("d", None, None, default=True),
             _p("open", t(2023, 1, 1), None), _p("min", None, t(2023, 6, 1))]
    # cutoff inside March: m03 straddles it and stays; an upper bound equal to the cutoff expires
    assert [p.name for p in expired(parts, t(2024, 3, 15))] == ["min", "m01", "m02"]
    assert [p.name for p in expired(parts, t(2024, 3, 1))] == ["min", "m01", "m02"]
    assert [p.name for p in expired(parts, t(2024, 2, 29, 23, 59))] == ["min", "m01"]
    assert expired(parts, t(2000, 1, 1)) == []


def test_backoff_doubles_under_its_cap_with_full_jitter():
    opts = Options(retry_initial_s=0.1, retry_max_s=1.0)

    class Top(random.Random):
        def uniform(self, a, b):  # the top of the jitter range
            return b

    top = Backoff(opts.retry_initial_s, opts.retry_max_s, Top())
    assert [round(top.next_delay(), 3) for _ in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    rng = random.Random(7)
    third = []
    for _ in range(100):
        b = Backoff(opts.retry_initial_s, opts.retry_max_s, rng)
        third.append([b.next_delay() for _ in range(3)][-1])
    assert all(0 <= d <= 0.4 for d in third)


def test_the_registry_covers_every_partitioned_table_and_the_seed_maintenance_tables():
    assert {s.name for s in PARTITIONED} <= set(RETAINED)
    assert set(RETAINED) == {
        "learning_events", "system_performance_metrics", "content_performance_metrics", "performance_rollups",
        "learning_rollups", "engagement_rollups", "alert_notifications", "report_executions", "engagement_by_time"}
    assert [n for n, r in RETAINED.items() if r.partitioned] == [s.name for s in PARTITIONED]
    assert RETAINED["engagement_by_time"].is_date and RETAINED["engagement_by_time"].time_column == "day"
    assert RETAINED["learning_events"].archive == "archive.learning_events"
