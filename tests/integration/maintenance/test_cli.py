"""`learnstream maintenance run --dry-run | run | status` against a test database, exact lines."""

from __future__ import annotations

import re

import pytest

from db.pool import connect
from tests.integration.maintenance.helpers import several_months
from tests.integration.test_cli import run
from tests.support import free_port

pytestmark = pytest.mark.services

ARGS = ("--now", "2024-07-15", "--table", "content_performance_metrics")
CPM = "content_performance_metrics"
PLAN = [
    f"{CPM}: archive after 6 mons, cutoff 2024-01-15",
    *(f"  {{verb}} {CPM}_y2024m{m:02d} [2024-{m:02d}-01, 2024-{m + 1:02d}-01)" for m in (6, 7, 8, 9)),
    *(line for lo, hi in (("2023-10", "2023-11"), ("2023-11", "2023-12"), ("2023-12", "2024-01"))
      for line in (f"  {{detach}} {CPM}_y{lo[:4]}m{lo[5:]} [{lo}-01, {hi}-01): 4 rows{{attempts}}",
                   f"  {{archive}} {CPM}_y{lo[:4]}m{lo[5:]} [{lo}-01, {hi}-01) into archive.{CPM}: 4 rows")),
    f"  {{archive}} 2 rows of {CPM}_default into archive.{CPM} in 1 batch",
]


def _lines(out) -> list[str]:
    assert out.returncode == 0, out.stderr.decode()
    # the last line ends with the run's duration
    return [re.sub(r"; \d+\.\d\d s$", "; S s", line) for line in out.stdout.decode().splitlines()]


async def test_dry_run_run_and_status(stack):
    conn = await connect(stack.dsn)
    try:
        await several_months(conn)
    finally:
        await conn.close()
    env = stack.env()

    dry = _lines(run("maintenance", "run", "--dry-run", *ARGS, env=env))
    assert dry == ["maintenance dry run 1 as of 2024-07-15T00:00:00+00:00",
                   *(line.format(verb="would create", detach="would detach", archive="would archive", attempts="")
                     for line in PLAN),
                   "dry run succeeded: partitions would be created 4, detached 3 (dropped 0, archived 3), skipped 0; "
                   "rows would be archived 14, deleted 0; S s"]

    real = _lines(run("maintenance", "run", *ARGS, env=env))
    assert real == ["maintenance run 2 as of 2024-07-15T00:00:00+00:00",
                    *(line.format(verb="created", detach="detached", archive="archived",
                                  attempts=", 1 attempt (lock_timeout 100 ms)") for line in PLAN),
                    "succeeded: partitions created 4, detached 3 (dropped 0, archived 3), skipped 0; "
                    "rows archived 14, deleted 0; S s"]

    again = _lines(run("maintenance", "run", *ARGS, env=env))
    assert again == ["maintenance run 3 as of 2024-07-15T00:00:00+00:00",
                     f"{CPM}: archive after 6 mons, cutoff 2024-01-15", "  nothing to do",
                     "succeeded: partitions created 0, detached 0 (dropped 0, archived 0), skipped 0; "
                     "rows archived 0, deleted 0; S s"]

    conn = await connect(stack.dsn)
    try:
        await conn.execute(f"ANALYZE {CPM}")
    finally:
        await conn.close()
    status = _lines(run("maintenance", "status", "--now", "2024-07-15", "--runs", "3", env=env))
    start = status.index(next(s for s in status if s.startswith(f"{CPM}:")))
    assert re.fullmatch(rf"{CPM}: archive after 6 mons \(batches of 5000\), cutoff 2024-01-15, last cleanup "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", status[start])
    parts = status[start + 1:start + 1 + 7]
    assert parts[:2] == [f"    {CPM + '_y2024m01':<44} {'[2024-01-01, 2024-02-01)':<26} ~4 rows",
                         f"    {CPM + '_y2024m02':<44} {'[2024-02-01, 2024-03-01)':<26} ~4 rows"]
    default = next(s for s in status[start:] if f"{CPM}_default" in s)
    assert default == f"    {CPM + '_default':<44} {'DEFAULT':<26} ~1 row"
    assert status[status.index(default) + 1] == "  next run: nothing to do"
    learning = status.index(next(s for s in status if s.startswith("learning_events:")))
    assert status[learning] == ("learning_events: drop after 2 years (batches of 5000), cutoff 2022-07-15, "
                                "last cleanup never")
    assert "  next run:" in status[learning:]
    nxt = status.index("  next run:", learning)
    assert status[nxt + 1:nxt + 8] == [
        "    would detach learning_events_y2022m04 [2022-04-01, 2022-05-01): 10 rows",
        "    would drop learning_events_y2022m04 [2022-04-01, 2022-05-01)",
        "    would detach learning_events_y2022m05 [2022-05-01, 2022-06-01): 10 rows",
        "    would drop learning_events_y2022m05 [2022-05-01, 2022-06-01)",
        "    would detach learning_events_y2022m06 [2022-06-01, 2022-07-01): 10 rows",
        "    would drop learning_events_y2022m06 [2022-06-01, 2022-07-01)",
        "    would delete 3 rows of learning_events_default in 1 batch"]
    runs = status[status.index("last runs:") + 1:]
    assert [re.sub(r"^  (\d) \S+ \S+ ", r"  \1 T ", re.sub(r"\(\d+\.\d\d s\)", "(S s)", r)) for r in runs] == [
        "  3 T run cli succeeded (S s): partitions created 0, detached 0, skipped 0; rows archived 0, deleted 0",
        "  2 T run cli succeeded (S s): partitions created 4, detached 3, skipped 0; rows archived 14, deleted 0",
        "  1 T dry run cli succeeded (S s): partitions created 4, detached 3, skipped 0; rows archived 14, deleted 0"]


async def test_a_failing_table_exits_1_and_an_unreachable_database_exits_2(stack):
    conn = await connect(stack.dsn)
    try:
        await conn.execute("ALTER TABLE data_retention_policies DROP CONSTRAINT data_retention_policies_supported_table")
        await conn.execute("INSERT INTO data_retention_policies (table_name, retention_period) VALUES ('content', '1 day')")
    finally:
        await conn.close()
    out = run("maintenance", "run", env=stack.env())
    assert out.returncode == 1
    assert "  ERROR: unknown table: not in the retention registry (db/retention.py RETAINED); nothing done" in \
        out.stdout.decode().splitlines()
    assert out.stderr.decode() == ("learnstream: maintenance run 1 failed for: content (see above; the other tables "
                                   "ran)\n")

    down = stack.env(LEARNSTREAM_DATABASE_URL=f"postgresql://nobody:x@127.0.0.1:{free_port()}/none")
    for args in (("run",), ("run", "--dry-run"), ("status",)):
        out = run("maintenance", *args, env=down)
        assert out.returncode == 2
        assert out.stderr.decode().startswith("learnstream: error:")
        assert "Traceback" not in out.stderr.decode()
    bad = run("maintenance", "run", "--table", "content", env=stack.env())
    assert bad.returncode == 2 and b"no table 'content' has retention" in bad.stderr
