"""The delivery's lanes are released once idle (issue #23 item 12): after many workspaces' notifications
are delivered and delivery_lane_idle_s has passed, no lane (nor its task) is left; a later notification
starts a new lane and is delivered, in order; a lane with work or an open Alertmanager alert stays.
The HTTP sender is a fake (no Kafka, no PostgreSQL: nothing here is written to a backlog)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition

from schemas.alerts import AlertNotification
from schemas.channels import AlertChannel
from streams.alerts.delivery.http import PostResult
from streams.alerts.delivery.service import AlertDelivery
from streams.config import Settings


async def accept(svc: AlertDelivery, tp, offset: int, raw: bytes) -> None:
    """Consume `raw` as a notification the engine recorded (its stored row is itself)."""
    from schemas.alerts import AlertNotification

    n = AlertNotification.model_validate_json(raw)
    await svc._accept(tp, offset, raw, {(n.fingerprint, n.status, n.sent_at): n})

TP = TopicPartition("learnstream.alerts.notifications", 0)
IDLE_S = 0.2


class FakePoster:
    """Records what each channel was sent; `hold` (a workspace) makes its posts wait for `release`."""

    def __init__(self) -> None:
        self.sent: list[tuple[uuid.UUID, str, str]] = []
        self.hold: uuid.UUID | None = None
        self.release = asyncio.Event()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def post_webhook(self, ch: AlertChannel, note: AlertNotification) -> PostResult:
        if ch.workspace_id == self.hold:
            await self.release.wait()
        self.sent.append((ch.workspace_id, ch.name, note.fingerprint))
        return PostResult(ok=True)

    async def post_alertmanager(self, ch: AlertChannel, notes: list[AlertNotification]) -> PostResult:
        self.sent.extend((ch.workspace_id, ch.name, n.fingerprint) for n in notes)
        return PostResult(ok=True)


def note(ws: uuid.UUID, rule: uuid.UUID, fingerprint: str, status: str = "firing") -> bytes:
    now = datetime.now(UTC)
    return AlertNotification(
        fingerprint=fingerprint, rule_id=rule, rule_name="r", workspace_id=ws, severity="critical", status=status,
        current_value=1.0, threshold=0.0, condition_op=">", window_s=10.0, message="m", triggered_at=now,
        sent_at=now,
    ).model_dump_json().encode()


async def published(key, value) -> None:
    raise AssertionError(f"nothing should be dead-lettered: {value!r}")


@pytest.fixture
async def delivery():
    svc = AlertDelivery(Settings(delivery_lane_idle_s=IDLE_S), published, 100_000, group_id="unit-delivery")
    svc.http = FakePoster()
    svc.directory.loaded_at = float("inf")  # the snapshot set below is never reread from PostgreSQL
    yield svc
    await svc.stop()


def channels(svc: AlertDelivery, n: int, kind: str = "webhook") -> list[tuple[uuid.UUID, uuid.UUID]]:
    """n workspaces, each with one channel `hook` of `kind` and one rule naming it: (workspace, rule)."""
    out = []
    for _ in range(n):
        ws, rule = uuid.uuid4(), uuid.uuid4()
        if kind == "webhook":
            ch = AlertChannel(workspace_id=ws, name="hook", kind="webhook", url="http://receiver.invalid/hook",
                              secret="s" * 16)
        else:
            ch = AlertChannel(workspace_id=ws, name="hook", kind="alertmanager", url="http://am.invalid:9093")
        svc.directory.channels[(ws, "hook")] = ch
        svc.directory.rules[rule] = ["hook"]
        out.append((ws, rule))
    return out


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_idle_lanes_are_released_and_a_later_notification_starts_a_new_one(delivery):
    svc, poster = delivery, delivery.http
    tenants = channels(svc, 200)
    offset = 0
    for ws, rule in tenants:
        await accept(svc, TP, offset, note(ws, rule, f"fp-{offset}"))
        offset += 1
    await until(lambda: len(poster.sent) == len(tenants))
    assert len(svc._lanes) == len(tenants)
    tasks = [lane.task for lane in svc._lanes.values()]

    svc._pruner = asyncio.ensure_future(svc._release_lanes())
    await until(lambda: not svc._lanes and all(t.done() for t in tasks))  # released, then their tasks cancelled
    assert all(t.cancelled() for t in tasks)
    assert svc._pending == 0 and all(i.done for i in svc._inflight[TP])

    # a released lane's channel gets its next notifications, in order, from a new lane
    ws, rule = tenants[0]
    for fp in ("again-1", "again-2", "again-3"):
        await accept(svc, TP, offset, note(ws, rule, fp))
        offset += 1
    await until(lambda: len(poster.sent) == len(tenants) + 3)
    assert [fp for w, _n, fp in poster.sent if w == ws] == ["fp-0", "again-1", "again-2", "again-3"]
    assert list(svc._lanes) == [(ws, "hook")]
    await until(lambda: not svc._lanes)
    assert svc._pending == 0


async def test_a_lane_with_work_or_an_open_alertmanager_alert_is_kept(delivery):
    svc, poster = delivery, delivery.http
    (busy_ws, busy_rule), (quiet_ws, quiet_rule) = channels(svc, 2)
    [(am_ws, am_rule)] = channels(svc, 1, kind="alertmanager")
    poster.hold = busy_ws  # its receiver does not answer (yet)
    await accept(svc, TP, 0, note(busy_ws, busy_rule, "busy"))
    await accept(svc, TP, 1, note(quiet_ws, quiet_rule, "quiet"))
    await accept(svc, TP, 2, note(am_ws, am_rule, "open"))
    await until(lambda: len(poster.sent) == 2)
    svc._pruner = asyncio.ensure_future(svc._release_lanes())
    await until(lambda: (quiet_ws, "hook") not in svc._lanes)
    await asyncio.sleep(3 * IDLE_S)
    assert set(svc._lanes) == {(busy_ws, "hook"), (am_ws, "hook")}

    poster.release.set()  # delivered: then idle, then released
    await until(lambda: (busy_ws, "hook") not in svc._lanes)
    await accept(svc, TP, 3, note(am_ws, am_rule, "open", status="resolved"))  # nothing open any more
    await until(lambda: not svc._lanes)
    assert [fp for _w, _n, fp in poster.sent] == ["quiet", "open", "busy", "open"]
    assert svc._pending == 0


async def test_a_failing_round_does_not_end_the_release_loop(delivery, caplog):
    svc, poster = delivery, delivery.http
    [(ws, rule)] = channels(svc, 1)
    real, calls = svc._release_idle_lanes, []

    async def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return await real()

    svc._release_idle_lanes = flaky
    await accept(svc, TP, 0, note(ws, rule, "fp"))
    await until(lambda: len(poster.sent) == 1)
    svc._pruner = asyncio.ensure_future(svc._release_lanes())
    await until(lambda: not svc._lanes)
    assert len(calls) >= 2 and not svc._pruner.done()
    assert "a bug" in caplog.text
