"""The provisioned Grafana analytics dashboards (deploy/grafana/dashboards/*.json): they load, every
panel's data source is one the provisioning defines, and every panel's SQL, its macros expanded as
Grafana would for a fixed range, runs on a migrated database as a member's own login (as the data
source logs in) and returns rows of that member's workspace only: asking for another workspace's
rows gives none, row-level security being the lock, not the dashboard's filter."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from db.pool import connect
from tests.integration.access.logins import member_logins
from tests.integration.analytics import rows
from tests.support import ROOT

pytestmark = pytest.mark.services

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
FROM, TO = "2026-11-01T00:00:00Z", "2026-12-31T00:00:00Z"


def _sources() -> dict[str, dict]:
    found = {}
    for f in sorted((GRAFANA / "provisioning" / "datasources").glob("*.yml")):
        for d in yaml.safe_load(f.read_text())["datasources"]:
            found[d["uid"]] = d
    return found


def _expand(sql: str, workspace: str) -> str:
    """The Grafana macros the panels use, as Grafana's PostgreSQL data source expands them for the
    range [FROM, TO], and the $workspace variable."""
    sql = re.sub(r"\$__timeFilter\(([^()]+)\)", rf"\1 BETWEEN '{FROM}' AND '{TO}'", sql)
    sql = sql.replace("$__timeFrom()", f"'{FROM}'").replace("$__timeTo()", f"'{TO}'")
    sql = sql.replace("${workspace}", workspace).replace("$workspace", workspace)
    assert "$" not in sql, f"an unexpanded macro or variable: {sql}"
    return sql


def _queries(dashboard: dict) -> list[tuple[str, str]]:
    """(title, rawSql) of every panel target and of every query variable."""
    found = [(p["title"], t["rawSql"]) for p in dashboard["panels"] for t in p["targets"]]
    found += [(f"variable {v['name']}", v["query"]) for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return found


def test_the_dashboards_load_and_their_data_sources_are_provisioned():
    assert DASHBOARDS, "no analytics dashboard"
    sources = _sources()
    providers = [p for f in (GRAFANA / "provisioning" / "dashboards").glob("*.yml")
                 for p in yaml.safe_load(f.read_text())["providers"]]
    assert "/etc/grafana/analytics-dashboards" in {p["options"]["path"] for p in providers}
    uids = set()
    for path in DASHBOARDS:
        d = json.loads(path.read_text())
        assert d["uid"] not in uids and d["title"]
        uids.add(d["uid"])
        assert len({p["id"] for p in d["panels"]}) == len(d["panels"])
        for p in d["panels"]:
            used = [p["datasource"], *(t["datasource"] for t in p["targets"])]
            for ds in used:
                assert ds["uid"] in sources, (p["title"], ds)
                assert sources[ds["uid"]]["type"] == ds["type"] == "grafana-postgresql-datasource"
            assert p["targets"] and all(t["rawSql"].strip() for t in p["targets"]), p["title"]
            assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        for v in d["templating"]["list"]:
            assert v["datasource"]["uid"] in sources
    # the data source logs in as a member login, with its password from a secret file, never a literal
    analytics = sources["learnstream-analytics"]
    assert analytics["user"] == "grafana_analytics"
    assert analytics["secureJsonData"]["password"] == "$__file{/run/secrets/grafana_db_password}"


async def test_every_panel_runs_as_a_member_and_shows_only_its_workspace(stack):
    async with member_logins(stack, [("grafana", 1, "viewer")]) as (owner, w, x, logins):
        await rows.insert(owner, w, x)
        member = await connect(logins["grafana"][1])
        try:
            assert not await member.fetchval("SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user")
            for path in DASHBOARDS:
                for title, sql in _queries(json.loads(path.read_text())):
                    mine = await member.fetch(_expand(sql, str(w)))
                    assert mine, f"{path.name}: {title}: no rows of the member's workspace"
                    if title == "variable workspace":
                        assert [r["__value"] for r in mine] == [str(w)]  # only its own workspace is offered
                        continue
                    # the other workspace has rows in every table read (rows.py), but not for this login
                    assert await member.fetch(_expand(sql, str(x))) == [], f"{path.name}: {title}"
                    # the owner (a member of learnstream_service) sees them: the empty answer above is the lock's
                    assert await owner.fetch(_expand(sql, str(x))), f"{path.name}: {title}: fixture lacks x's rows"
                    if title.startswith("Engagement gained per day"):
                        # views 100 -> 250 -> 400, likes 10 -> 20 -> 40: the first snapshot (28 Nov 08:00) gains 0
                        assert [(r["time"].isoformat(), r["views"], r["interactions"]) for r in mine] == [
                            ("2026-11-28T00:00:00+00:00", 250 - 100, 20 - 10),
                            ("2026-11-29T00:00:00+00:00", 400 - 250, 40 - 20)]
        finally:
            await member.close()
