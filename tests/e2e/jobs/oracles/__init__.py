"""Oracle fixtures (issue #25): for every job and seed view that computes something, crafted data
whose answer is worked out by hand in the fixture's module, fed through the topics to a real
worker, then the job run and its rows compared exactly.

One module per job family. Each exports

    def feed(ws: str) -> Feed             # the messages of one workspace (its own, unique)
    async def check(conn, ws, run) -> None  # runs its jobs (run(name, period=None) -> JobRun) and asserts

tests/e2e/jobs/test_oracles.py starts one worker for all of them (a worker start costs ~10 s),
publishes every feed, waits until each feed's `wait` counts hold, then calls each check in turn.
Jobs compute across workspaces; a check asserts on its own workspace only, and runs the jobs it
needs itself (with the period its arithmetic assumes), so the checks do not depend on each other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Feed:
    """One workspace's messages, by topic, and the rows to wait for before checking."""

    content: list[dict] = field(default_factory=list)  # content-items
    accounts: list[dict] = field(default_factory=list)  # account-snapshots
    engagement: list[dict] = field(default_factory=list)  # engagement-updates
    learning: list[dict] = field(default_factory=list)  # learning-events
    #: table -> rows of the workspace to wait for (SELECT count(*) FROM <table> WHERE workspace_id = ws)
    wait: dict[str, int] = field(default_factory=dict)


def iso(t: datetime) -> str:
    return t.isoformat()


def post(ws: str, content_id: str, published: datetime, *, platform: str = "tiktok", connector: str | None = "me",
         hashtags: list[str] | None = None, observed: datetime | None = None, **extra) -> dict:
    """A content-items observation of a post."""
    return {"event_id": str(uuid.uuid4()), "workspace_id": ws, "content_id": content_id, "platform": platform,
            "connector_id": connector, "hashtags": hashtags or [], "published_at": iso(published),
            "observed_at": iso(observed or published), **extra}


def scrape(ws: str, content_id: str, at: datetime, *, platform: str = "tiktok", connector: str | None = "me",
           views: int = 0, likes: int = 0, shares: int = 0, comments: int = 0, saves: int = 0) -> dict:
    """An engagement-updates snapshot of a post (cumulative counters, as a scraper reads them)."""
    return {"update_id": str(uuid.uuid4()), "workspace_id": ws, "content_id": content_id, "platform": platform,
            "connector_id": connector, "recorded_at": iso(at), "views": views, "likes": likes, "shares": shares,
            "comments": comments, "saves": saves}


def account(ws: str, connector: str, at: datetime, followers: int, *, relationship: str = "own",
            platform: str = "tiktok", **extra) -> dict:
    """An account-snapshots snapshot of an own or a competitor's account."""
    return {"snapshot_id": str(uuid.uuid4()), "workspace_id": ws, "connector_id": connector, "platform": platform,
            "relationship": relationship, "handle": f"@{connector}", "recorded_at": iso(at), "followers": followers,
            **extra}


def event(ws: str, event_type: str, at: datetime, data: dict, **extra) -> dict:
    """A learning event."""
    return {"event_id": str(uuid.uuid4()), "workspace_id": ws, "event_type": event_type, "timestamp": iso(at),
            "event_data": data, **extra}
