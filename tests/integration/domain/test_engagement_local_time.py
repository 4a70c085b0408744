"""engagement_by_time in the account's zone (issue 25 item 8), on real PostgreSQL: each UTC
(day, hour) cell mapped to its account's local day, day of week and hour by
engagement_by_local_time, and the seed summaries grouping by the local hour / day of week.
Hand-computed: a daylight-saving change in Europe/Berlin both ways, Asia/Kolkata's half hour, an
account without a zone (UTC)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from db.pool import connect

pytestmark = pytest.mark.services

W = uuid.uuid4()

# (connector, UTC day, UTC hour, views_gained, interactions_gained) -> (local day, day of week, hour)
CELLS = [
    # Berlin, last Sunday of March 2026 (29th; 31 March is a Tuesday): 01:00 UTC the clocks go 02 -> 03
    ("be", date(2026, 3, 28), 23, 10, 1, (date(2026, 3, 29), 0, 0)),  # 23 UTC Sat = 00 CET Sunday
    ("be", date(2026, 3, 29), 0, 20, 2, (date(2026, 3, 29), 0, 1)),   # 00 UTC = 01 CET
    ("be", date(2026, 3, 29), 1, 40, 4, (date(2026, 3, 29), 0, 3)),   # 01 UTC = 03 CEST: no local 02 that day
    # Berlin, last Sunday of October 2026 (25th; 31 October is a Saturday): 01:00 UTC 03 -> 02
    ("be", date(2026, 10, 24), 22, 80, 8, (date(2026, 10, 25), 0, 0)),  # 22 UTC Sat = 00 CEST Sunday
    ("be", date(2026, 10, 25), 0, 100, 10, (date(2026, 10, 25), 0, 2)),  # 00 UTC = 02 CEST
    ("be", date(2026, 10, 25), 1, 300, 15, (date(2026, 10, 25), 0, 2)),  # 01 UTC = 02 CET: local 02 twice
    ("be", date(2026, 10, 25), 2, 1000, 100, (date(2026, 10, 25), 0, 3)),  # 02 UTC = 03 CET
    # Kolkata, +05:30 all year: a UTC hour goes whole to the local hour its start falls in
    ("in", date(2026, 3, 2), 10, 50, 5, (date(2026, 3, 2), 1, 15)),   # 10:00 UTC Mon = 15:30 IST -> 15
    ("in", date(2026, 3, 2), 18, 60, 6, (date(2026, 3, 2), 1, 23)),   # 18:00 UTC = 23:30 Mon -> 23
    ("in", date(2026, 3, 2), 19, 70, 7, (date(2026, 3, 3), 2, 0)),    # 19:00 UTC = 00:30 Tue -> 0
    # an account without a known zone and a cell without an account: UTC
    ("nz", date(2026, 3, 2), 19, 5, 5, (date(2026, 3, 2), 1, 19)),
    ("", date(2026, 3, 2), 19, 5, 0, (date(2026, 3, 2), 1, 19)),
]
PLATFORM = {"be": "tiktok", "in": "instagram", "nz": "youtube", "": "youtube"}


@pytest.fixture
async def conn(stack):
    c = await connect(stack.dsn)
    t = datetime(2026, 12, 1, tzinfo=UTC)
    for connector, zone in (("be", "Europe/Berlin"), ("in", "Asia/Kolkata"), ("nz", None)):
        await c.execute("""INSERT INTO connectors (workspace_id, id, platform, timezone, first_seen_at, last_seen_at)
            VALUES ($1, $2, $3, $4, $5, $5)""", W, connector, PLATFORM[connector], zone, t)
    await c.executemany(
        """INSERT INTO engagement_by_time (workspace_id, platform, connector_id, day, day_of_week, hour_of_day,
               windows, updates, minutes, views_gained, interactions_gained)
           VALUES ($1, $2, $3, $4, extract(dow FROM $4::date), $5, 1, 1, 5.0, $6, $7)""",
        [(W, PLATFORM[c], c, d, h, v, i) for c, d, h, v, i, _ in CELLS])
    try:
        yield c
    finally:
        await c.close()


async def test_each_utc_cell_gets_its_accounts_local_day_and_hour(conn):
    rows = await conn.fetch("""SELECT connector_id, day, hour_of_day, timezone, local_day, local_day_of_week, local_hour
                               FROM engagement_by_local_time WHERE workspace_id = $1""", W)
    got = {(r["connector_id"], r["day"], r["hour_of_day"]): (r["local_day"], r["local_day_of_week"], r["local_hour"])
           for r in rows}
    assert got == {(c, d, h): local for c, d, h, _v, _i, local in CELLS}
    zones = {r["connector_id"]: r["timezone"] for r in rows}
    assert zones == {"be": "Europe/Berlin", "in": "Asia/Kolkata", "nz": "UTC", "": "UTC"}


async def test_the_seed_summaries_group_by_the_local_hour_and_day(conn):
    by_hour = {(r["platform"], r["hour_of_day"]): (r["views_gained"], r["interactions_gained"], r["windows"])
               for r in await conn.fetch("SELECT * FROM engagement_summary_by_hour WHERE workspace_id = $1", W)}
    assert by_hour == {
        ("tiktok", 0): (10 + 80, 1 + 8, 2),        # Berlin midnight, both Sundays (23 and 22 UTC on Saturdays)
        ("tiktok", 1): (20, 2, 1),
        ("tiktok", 2): (100 + 300, 10 + 15, 2),    # October's doubled 02h (00 and 01 UTC)
        ("tiktok", 3): (40 + 1000, 4 + 100, 2),    # 01 UTC in March, 02 UTC in October
        ("instagram", 15): (50, 5, 1), ("instagram", 23): (60, 6, 1), ("instagram", 0): (70, 7, 1),
        ("youtube", 19): (5 + 5, 5 + 0, 2),
    }
    rate = await conn.fetchval("""SELECT engagement_rate FROM engagement_summary_by_hour
                                  WHERE workspace_id = $1 AND platform = 'tiktok' AND hour_of_day = 2""", W)
    assert rate == pytest.approx((10 + 15) / (100 + 300))  # 0.0625, from the sums
    by_day = {(r["platform"], r["day_of_week"]): (r["views_gained"], r["interactions_gained"], r["minutes"])
              for r in await conn.fetch("SELECT * FROM engagement_summary_by_day WHERE workspace_id = $1", W)}
    assert by_day == {
        # every Berlin cell is on a local Sunday, the Saturday UTC ones (23 and 22 UTC) too
        ("tiktok", 0): (10 + 20 + 40 + 80 + 100 + 300 + 1000, 1 + 2 + 4 + 8 + 10 + 15 + 100, 7 * 5.0),
        ("instagram", 1): (50 + 60, 5 + 6, 2 * 5.0),  # Monday 15h and 23h IST
        ("instagram", 2): (70, 7, 5.0),               # 19 UTC Monday = 00:30 Tuesday IST
        ("youtube", 1): (10, 5, 2 * 5.0),
    }
