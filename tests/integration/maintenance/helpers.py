"""Old data for the retention tests: past partitions made with the partition manager, rows INSERTed
at chosen times."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from db.partitions import ensure_partition, period_of
from db.tables import CONTENT_PERFORMANCE_METRICS, LEARNING_EVENTS

WS = "11111111-1111-1111-1111-111111111111"


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def month_partitions(conn: asyncpg.Connection, spec, *months: tuple[int, int]) -> list[str]:
    names = []
    for y, m in months:
        period = period_of(spec, t(y, m, 1))
        await ensure_partition(conn, spec, period)
        names.append(period.name)
    return names


async def learning_events(conn: asyncpg.Connection, at: datetime, n: int) -> None:
    await conn.execute(
        """INSERT INTO learning_events (id, workspace_id, event_type, "timestamp", event_data)
           SELECT gen_random_uuid(), $1, 'user_feedback', $2::timestamptz + make_interval(secs => g), '{}'::jsonb
           FROM generate_series(1, $3) g""", WS, at, n)


async def engagement(conn: asyncpg.Connection, at: datetime, n: int) -> None:
    await conn.execute(
        """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, recorded_at)
           SELECT gen_random_uuid(), $1, gen_random_uuid(), 'tiktok', g, $2::timestamptz + make_interval(secs => g)
           FROM generate_series(1, $3) g""", WS, at, n)


async def count(conn: asyncpg.Connection, relation: str) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {relation}"))


async def exists(conn: asyncpg.Connection, relation: str) -> bool:
    return await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", relation)


async def several_months(conn: asyncpg.Connection) -> None:
    """As of 2024-07-15 (learning events 2 years -> cutoff 2022-07-15; engagement 6 months -> 2024-01-15):

    learning_events: 10 rows in each of 2022-04 .. 2022-08 (partitions), 3 rows of 2021-01 and 2 of
    2023-01 in DEFAULT; content_performance_metrics: 4 rows in each of 2023-10 .. 2024-02, 2 rows of
    2023-06 and 1 of 2025-03 in DEFAULT."""
    await month_partitions(conn, LEARNING_EVENTS, (2022, 4), (2022, 5), (2022, 6), (2022, 7), (2022, 8))
    for m in (4, 5, 6, 7, 8):
        await learning_events(conn, t(2022, m, 10), 10)
    await learning_events(conn, t(2021, 1, 5), 3)
    await learning_events(conn, t(2023, 1, 5), 2)
    await month_partitions(conn, CONTENT_PERFORMANCE_METRICS, (2023, 10), (2023, 11), (2023, 12), (2024, 1), (2024, 2))
    for y, m in ((2023, 10), (2023, 11), (2023, 12), (2024, 1), (2024, 2)):
        await engagement(conn, t(y, m, 10), 4)
    await engagement(conn, t(2023, 6, 3), 2)
    await engagement(conn, t(2025, 3, 1), 1)
