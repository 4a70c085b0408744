"""No exception leaves a timer, task or loop of the worker (issue #23, item 2), on real Kafka and
PostgreSQL: a timer whose every round fails for a reason that is not the infrastructure's is
logged with its traceback, counted, and named by /readyz, while the worker goes on storing events;
once the cause is gone, its next round clears it."""

from __future__ import annotations

import asyncio

import pytest

from db.pool import connect
from tests.e2e.test_monitoring import publish_learning_events, wait_for_status
from tests.support import metric, wait_for_rows

pytestmark = pytest.mark.services


async def test_a_timer_failing_every_round_is_reported_and_the_worker_goes_on(stack, start_worker):
    conn = await connect(stack.dsn)
    try:
        # the parked-events timer's statement fails with an error of no known class (SQLSTATE P0001)
        await conn.execute("""
            CREATE FUNCTION t_refuse() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN RAISE EXCEPTION 'parked events are refused today'; END $$;
            CREATE TRIGGER t_refuse BEFORE DELETE ON parked_events FOR EACH STATEMENT EXECUTE FUNCTION t_refuse();
        """)
        worker = start_worker(LEARNSTREAM_DOMAIN_RESUME_INTERVAL_S="0.5")
        base = f"http://127.0.0.1:{worker.metrics_port}"
        deadline = asyncio.get_running_loop().time() + 60
        while True:  # (early on, the ingest consumer's assignment may be what is missing)
            body = wait_for_status(f"{base}/readyz", 503, timeout=60)
            if "loops" in body["failed"] or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
        assert "loops" in body["failed"]
        assert "parked_events_resume: RaiseError: parked events are refused today" in body["checks"]["loops"]["detail"]
        n = await publish_learning_events(stack.bootstrap, stack.topics["learning_event"], 50, seed=5)
        assert (await wait_for_rows(stack.dsn, {"learning_events": n}))["learning_events"] == n  # it goes on
        assert worker.proc.poll() is None
        assert metric(worker.metrics(), "learnstream_loop_failures_total", loop="parked_events_resume",
                      kind="unexpected") >= 2
        assert "Traceback" in worker.log() and "parked events are refused today" in worker.log()

        await conn.execute("DROP TRIGGER t_refuse ON parked_events")
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            body = wait_for_status(f"{base}/readyz", 200, timeout=60)
            if body["checks"]["loops"]["ok"] or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
        assert body["checks"]["loops"] == {"ok": True, "detail": "every timer and task's last round succeeded"}
    finally:
        await conn.close()
