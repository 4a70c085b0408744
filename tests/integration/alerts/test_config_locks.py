"""The workers' configuration loads never hang on someone's table lock (issue #24, defence in depth
beside migration 0026): the alert rules' reload and the delivery's channel directory run with a
lock_timeout; on timeout they keep what they loaded last, count it, log once, and try again in the
next round. The lock here is a real one, held by the service role in another connection (members
can no longer take one that conflicts with a reader: tests/integration/access/test_member_locks.py)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import REGISTRY

from db.pool import connect
from db.workspaces import add_workspace

pytestmark = pytest.mark.services

RULE = ("INSERT INTO performance_alerts (workspace_id, alert_name, metric, condition_op, threshold_value) "
        "VALUES ($1, $2, 'processing_time_ms.p95', '>', 500) RETURNING id")


def timeouts(what: str) -> float:
    return REGISTRY.get_sample_value("learnstream_config_lock_timeouts_total", {"what": what}) or 0.0


def messages(caplog, start: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(start)]


async def test_a_rule_reload_gives_up_on_a_held_lock_and_keeps_the_last_rules(stack, caplog):
    from streams.alerts.runtime import AlertRuntime

    caplog.set_level(logging.INFO, logger="learnstream.alerts")
    owner = await connect(stack.dsn)
    locker = await connect(stack.dsn)
    ws = (await add_workspace(owner, "one"))["id"]
    first = await owner.fetchval(RULE, ws, "first")
    runtime = AlertRuntime(stack.dsn, pool=None, publish=None, lock_timeout_s=0.3)
    task = asyncio.create_task(runtime.follow_rules())
    before = timeouts("alert_rules")
    try:
        await asyncio.wait_for(runtime.rules_loaded.wait(), 10)
        assert set(runtime.engine.rules) == {first}
        # someone holds the rules' table; meanwhile the rules' change marker moves (as a committed change does)
        tx = locker.transaction()
        await tx.start()
        await locker.execute("LOCK TABLE performance_alerts IN ACCESS EXCLUSIVE MODE")
        second = await locker.fetchval(RULE, ws, "second")
        # (another workspace's row: the locker's insert holds its own workspace's row until it commits)
        await owner.execute("INSERT INTO alert_rules_version (workspace_id, version) VALUES (gen_random_uuid(), 1)",
                            timeout=5)
        await owner.execute("SELECT pg_notify('learnstream_alert_rules', '')", timeout=5)
        deadline = time.monotonic() + 10
        while timeouts("alert_rules") - before < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        # it tried (again at the next check), gave up each time, kept the rules, logged once, and goes on
        assert timeouts("alert_rules") - before >= 2
        assert not task.done()
        assert set(runtime.engine.rules) == {first}
        warned = messages(caplog, "alert rules: a lock on performance_alerts was held longer than 0.3 s")
        assert len(warned) == 1, warned
        assert "keeping the 1 rules loaded last" in warned[0]
        # the lock ends: the next check loads the rules
        await tx.commit()
        deadline = time.monotonic() + 10
        while set(runtime.engine.rules) != {first, second} and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert set(runtime.engine.rules) == {first, second}
        assert len(messages(caplog, "alert rules: loaded again after")) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await locker.close()
        await owner.close()


async def test_the_channel_directory_gives_up_on_a_held_lock_and_keeps_the_last_channels(stack, caplog):
    from streams.alerts.delivery.channels import ChannelDirectory

    caplog.set_level(logging.INFO, logger="learnstream.alerts.delivery")
    owner = await connect(stack.dsn)
    locker = await connect(stack.dsn)
    channel = "INSERT INTO alert_channels (workspace_id, name, kind) VALUES ($1, $2, 'topic')"
    try:
        ws = (await add_workspace(owner, "one"))["id"]
        await owner.execute(channel, ws, "ops")
        directory = ChannelDirectory(stack.dsn, None, lock_timeout_s=0.3)
        await directory.load()
        assert set(directory.channels) == {(ws, "ops")}
        before = timeouts("alert_channels")
        async with locker.transaction():
            await locker.execute("LOCK TABLE alert_channels IN ACCESS EXCLUSIVE MODE")
            await locker.execute(channel, ws, "oncall")
            for _ in range(3):
                started = time.monotonic()
                assert await directory.refresh(0) is False
                assert time.monotonic() - started < 3  # gave up after its lock_timeout, did not hang
                assert set(directory.channels) == {(ws, "ops")}  # the last ones read stand
            # not again at once: the next refresh waits its interval
            assert await directory.refresh(60) is True
            assert timeouts("alert_channels") - before == 3
        warned = messages(caplog, "alert channels: a lock on alert_channels or performance_alerts")
        assert len(warned) == 1 and "using the 1 channels read last" in warned[0]
        assert await directory.refresh(0) is True
        assert set(directory.channels) == {(ws, "ops"), (ws, "oncall")}
        assert messages(caplog, "alert channels: loaded again after") == [
            "alert channels: loaded again after 3 loads that timed out on a lock"]
        # the reason is told apart from a database that did not answer
        assert not messages(caplog, "reading the alert channels failed")
    finally:
        await locker.close()
        await owner.close()


async def test_without_the_timeout_the_same_lock_would_hang_the_load(stack):
    """What the timeout prevents: the snapshot's reads wait for the lock as long as it is held."""
    from db.channels import delivery_config

    owner = await connect(stack.dsn)
    locker = await connect(stack.dsn)
    try:
        async with locker.transaction():
            await locker.execute("LOCK TABLE alert_channels IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(delivery_config(owner), 1.0)
    finally:
        await locker.close()
        await owner.close()
