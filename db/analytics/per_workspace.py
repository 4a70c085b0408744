"""One tenant's bad row never stops another tenant: the loop of the jobs that compute each
workspace in its own transaction (optimal posting times, style correlation).

A workspace whose computation fails on its data (asyncpg.DataError and its subclasses: SQLSTATE
class 22, e.g. a value out of range, a time zone PostgreSQL does not know) is rolled back, logged
and reported to `on_skip` (the job's metric), and the run goes on with the next workspace; its old
rows stay as they were. Any other error (the connection, a lock, a missing grant) fails the run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from uuid import UUID

import asyncpg

log = logging.getLogger("learnstream.jobs")

#: called with (workspace, error) for each workspace skipped
OnSkip = Callable[[UUID, BaseException], None]


async def each_workspace(conn: asyncpg.Connection, job: str, workspaces: Iterable[UUID],
                         compute: Callable[[UUID], Awaitable[int]], on_skip: OnSkip | None = None) -> int:
    """compute(workspace) for each workspace in its own transaction; -> the sum of their results
    (the skipped ones count 0)."""
    total = 0
    for workspace in workspaces:
        try:
            async with conn.transaction():
                total += await compute(workspace)
        except asyncpg.DataError as exc:
            log.warning("job %s: workspace %s skipped, its data failed the computation: %s: %s",
                        job, workspace, exc.__class__.__name__, exc)
            if on_skip is not None:
                on_skip(workspace, exc)
    return total
