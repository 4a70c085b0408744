"""Alert delivery end to end (issue #13): a live spike through a worker to a real Alertmanager
(Debian's prometheus-alertmanager, read back through its v2 API, a silence created there holds the
next alert back), and to webhook receivers written here (signatures checked; a receiver that
fails for a while gets every notification once it recovers; one that answers 400, and one that is
down, get their notifications dead-lettered with the reason)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
import pytest
from aiohttp import web

from db.alerts import add_rule, record_notifications
from db.pool import connect
from schemas.alerts import AlertNotification, AlertRule
from streams.alerts.delivery.payloads import DELIVERY_HEADER, verify_signature
from streams.devkit.services import free_port
from streams.publish import publish_messages
from tests.integration.test_cli import run
from tests.support import NO_IDLE, QUICK_GROUP, SMALL, metric, read_topic, sample, window_base, workspace_messages

pytestmark = pytest.mark.services

SECRET = "test-secret-0123456789"
#: the receivers here are on 127.0.0.1, a loopback address the delivery refuses unless allowed
LOCAL = {"LEARNSTREAM_OUTBOUND_ALLOW": "127.0.0.1/32"}


def _rule(ws: uuid.UUID, name: str, channels: list[str], threshold: float = 100) -> AlertRule:
    return AlertRule(id=uuid.uuid4(), workspace_id=ws, alert_name=name, metric="api_latency.max", condition_op=">",
                     threshold_value=threshold, window_s=10, severity="critical", notification_channels=channels)


async def _add(stack, *rules: AlertRule) -> None:
    conn = await connect(stack.dsn)
    try:
        for r in rules:
            await add_rule(conn, r)
    finally:
        await conn.close()


def _cli(stack, *args: str, **env: str) -> str:
    out = run("alerts", "channels", *args, env=stack.env(**{**LOCAL, **env}))
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode()


async def _wait(predicate, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(interval)


class Receiver:
    """An HTTP server in the test: each path answers as told and records what it got."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.got: dict[str, list[tuple[dict, bytes]]] = {}
        self.fail_until: dict[str, float] = {}  # path -> monotonic time until which it answers 503
        self.status: dict[str, int] = {}  # path -> fixed status
        self.body: dict[str, str] = {}  # path -> the body answered with its fixed status
        #: path -> an event: a request is recorded (taken) but answered only once the event is set
        self.held: dict[str, asyncio.Event] = {}
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        body = await request.read()
        if path in self.status:
            return web.Response(status=self.status[path], text=self.body.get(path, "refused by the test"))
        until = self.fail_until.get(path)
        if until is not None and time.monotonic() < until:
            return web.Response(status=503, text="down for a while")
        self.got.setdefault(path, []).append((dict(request.headers), body))
        release = self.held.get(path)
        if release is not None:
            await release.wait()
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _spike(ws: str, base: float, windows: dict[int, float], host: str = "a", last: float | None = None) -> list[dict]:
    """Samples every 2 s of the given 10 s windows (value per window), and one at `last`."""
    out = [sample(ws, base + win * 10 + j * 2, v, "api_latency", host=host) for win, v in windows.items() for j in range(5)]
    if last is not None:
        out.append(sample(ws, last, 50, "api_latency", host=host))
    return out


# -- Alertmanager --------------------------------------------------------------------------------

@pytest.fixture
async def alertmanager(tmp_path, receiver):
    from streams.devkit.services import monitoring

    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: test\n"
        "  group_by: ['alertname', 'fingerprint']\n"
        "  group_wait: 1s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: test\n"
        "    webhook_configs:\n"
        f"      - url: {receiver.url}/from-alertmanager\n"
        "        send_resolved: true\n"
    )
    handle = await asyncio.to_thread(monitoring.start_alertmanager, config, None, tmp_path / "am")
    try:
        yield handle
    finally:
        await asyncio.to_thread(handle.stop)


async def _am_alerts(session: aiohttp.ClientSession, url: str, **params: str) -> list[dict]:
    async with session.get(f"{url}/api/v2/alerts", params=params) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_alertmanager_gets_firing_then_resolved_and_a_silence_holds_the_next_back(
        stack, start_worker, alertmanager, receiver):
    ws = uuid.uuid4()
    w = str(ws)
    out = _cli(stack, "add", "am", "-w", w, "--kind", "alertmanager", "--url", alertmanager.url, "--timeout", "5s")
    assert out.strip() == f"added alertmanager channel am of workspace {w} -> {alertmanager.url}"
    rule = _rule(ws, "latency spike", ["am", "topic"])
    await _add(stack, rule)
    worker = start_worker(**LOCAL, **NO_IDLE, LEARNSTREAM_ALERT_GENERATOR_URL="http://dash.example/rules/{rule_id}",
                          LEARNSTREAM_ALERTMANAGER_RESEND_S="2")
    base = window_base()
    topic = stack.topics["performance_sample"]
    from_am = "/from-alertmanager"

    async with aiohttp.ClientSession() as http:
        # 1. the spike window (1) closes when an event of window 2 passes its grace: firing
        await publish_messages(stack.bootstrap, topic, workspace_messages(_spike(w, base, {0: 50, 1: 500}, last=base + 26)))
        firing = await _wait(lambda: _am_alerts(http, alertmanager.url), 90, "the firing alert in Alertmanager")
        assert len(firing) == 1, firing
        alert = firing[0]
        fp = alert["labels"]["fingerprint"]
        assert alert["labels"] == {"alertname": "latency spike", "severity": "critical", "workspace_id": w,
                                   "rule_id": str(rule.id), "fingerprint": fp, "origin": "tenant", "host": "a"}
        assert alert["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
        assert (alert["annotations"]["learnstream_status"], alert["annotations"]["value"],
                alert["annotations"]["threshold"]) == ("firing", "500", "> 100")
        assert alert["startsAt"].startswith(datetime.fromtimestamp(base + 20, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        assert alert["generatorURL"] == f"http://dash.example/rules/{rule.id}"
        # Alertmanager routed it to its receiver
        sent = await _wait(lambda: _am_notified(receiver, from_am, "firing"), 30, "Alertmanager's firing notification")
        assert [a["labels"]["alertname"] for a in sent["alerts"]] == ["latency spike"]

        # kept alive by re-posting (every 2 s here): still active well past a first endsAt of 8 s
        await asyncio.sleep(12)
        assert [a["status"]["state"] for a in await _am_alerts(http, alertmanager.url)] == ["active"]

        # 2. window 2 (50) closes: resolved; Alertmanager no longer lists it and tells its receiver
        await publish_messages(stack.bootstrap, topic, workspace_messages(_spike(w, base, {2: 50}, last=base + 36)))

        async def gone():
            return await _am_alerts(http, alertmanager.url) == []

        await _wait(gone, 60, "the alert to resolve in Alertmanager")
        resolved = await _wait(lambda: _am_notified(receiver, from_am, "resolved"), 30,
                               "Alertmanager's resolved notification")
        assert [a["labels"]["fingerprint"] for a in resolved["alerts"]] == [fp]

        # 3. a silence on the rule's alertname holds the next firing back
        now = datetime.now(UTC)
        silence = {"matchers": [{"name": "alertname", "value": "latency spike", "isRegex": False, "isEqual": True}],
                   "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
                   "createdBy": "test", "comment": "maintenance"}
        async with http.post(f"{alertmanager.url}/api/v2/silences", json=silence) as resp:
            assert resp.status == 200, await resp.text()
            silence_id = (await resp.json())["silenceID"]
        notified_before = len(receiver.got.get(from_am, []))
        await publish_messages(stack.bootstrap, topic,
                               workspace_messages(_spike(w, base, {3: 50, 4: 500}, last=base + 56)))

        async def silenced():
            found = await _am_alerts(http, alertmanager.url, silenced="true")
            return found if found and found[0]["status"]["state"] == "suppressed" else None

        held = await _wait(silenced, 60, "the second firing alert, silenced")
        assert [(a["labels"]["fingerprint"], a["status"]["state"], a["status"]["silencedBy"]) for a in held] == [
            (fp, "suppressed", [silence_id])]
        assert await _am_alerts(http, alertmanager.url, silenced="false") == []
        await asyncio.sleep(4)  # several group intervals: Alertmanager sent nothing for it
        assert len(receiver.got.get(from_am, [])) == notified_before

    notes = await read_topic(stack.bootstrap, stack.notifications, expect=3, timeout=30)
    assert [n["status"] for n in notes] == ["firing", "resolved", "firing"]
    m = worker.metrics()
    assert metric(m, "learnstream_alert_deliveries_total", channel_kind="alertmanager", outcome="delivered") == 3
    assert metric(m, "learnstream_alert_deliveries_total", channel_kind="topic", outcome="delivered") == 3
    assert metric(m, "learnstream_alert_deliveries_total", channel_kind="alertmanager", outcome="dead_lettered") == 0


async def _am_notified(receiver: Receiver, path: str, status: str) -> dict | None:
    for _headers, body in receiver.got.get(path, []):
        doc = orjson.loads(body)
        if doc["status"] == status:
            return doc
    return None


# -- webhooks ------------------------------------------------------------------------------------

async def test_webhooks_signed_retried_until_the_receiver_recovers_and_refusals_dead_lettered(
        stack, start_worker, receiver):
    ws = uuid.uuid4()
    w = str(ws)
    undelivered = stack.undelivered
    down = f"http://127.0.0.1:{free_port()}/nobody"
    secret_file = f"/tmp/learnstream-test-{stack.tag}-secret"
    with open(secret_file, "w") as f:
        f.write(SECRET + "\n")
    _cli(stack, "add", "flaky", "-w", w, "--kind", "webhook", "--url", f"{receiver.url}/flaky",
         "--secret-file", secret_file, "--timeout", "2s")
    _cli(stack, "add", "refusing", "-w", w, "--kind", "webhook", "--url", f"{receiver.url}/refusing",
         LEARNSTREAM_CHANNEL_SECRET=SECRET)
    made = _cli(stack, "add", "down", "-w", w, "--kind", "webhook", "--url", down)
    assert "webhook secret (shown once" in made
    listed = _cli(stack, "list", "-w", w)
    assert SECRET not in listed and made.split(": ")[-1].strip() not in listed
    assert [line.split()[1:3] for line in listed.splitlines()[1:]] == [
        ["down", "webhook"], ["flaky", "webhook"], ["refusing", "webhook"]]
    receiver.status["/refusing"] = 400
    rule = _rule(ws, "latency spike", ["flaky", "refusing", "down", "nowhere"])
    await _add(stack, rule)
    receiver.fail_until["/flaky"] = time.monotonic() + 3600  # down until the notifications have queued up
    worker = start_worker(**LOCAL, **SMALL, LEARNSTREAM_DELIVERY_RETRY_INITIAL_S="0.2", LEARNSTREAM_DELIVERY_RETRY_MAX_S="1",
                          LEARNSTREAM_DELIVERY_RETRY_FOR_S="25")
    base = window_base()
    events = _spike(w, base, {0: 50, 1: 500, 2: 50}, host="a") + _spike(w, base, {0: 50, 1: 50, 2: 700, 3: 50}, host="b")
    events.sort(key=lambda e: e["timestamp"])  # in event time: one partition's watermark
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"], workspace_messages(events))
    # garbage on the notifications topic is dead-lettered, and the stream goes on
    await publish_messages(stack.bootstrap, stack.notifications, [(b"x", b'{"not": "a notification"}')])

    notes = await read_topic(stack.bootstrap, stack.notifications, expect=5, timeout=90)
    expected = sorted((n["fingerprint"], n["status"]) for n in notes if "fingerprint" in n)
    assert len(expected) == 4 and {s for _fp, s in expected} == {"firing", "resolved"}

    async def retried():
        return metric(worker.metrics(), "learnstream_alert_delivery_retries_total", channel_kind="webhook") >= 5

    await _wait(retried, 30, "the flaky receiver to be retried")
    assert receiver.got.get("/flaky") is None
    receiver.fail_until["/flaky"] = time.monotonic() + 3  # recovers in 3 s

    async def all_delivered():
        return len(receiver.got.get("/flaky", [])) >= 4

    await _wait(all_delivered, 60, "every notification at the recovered receiver")
    await asyncio.sleep(2)
    got = receiver.got["/flaky"]
    for headers, body in got:
        assert verify_signature(SECRET, headers, body, now=time.time()), headers
        assert not verify_signature("another-secret-0123456789", headers, body, now=time.time())
    delivered = sorted((orjson.loads(b)["fingerprint"], orjson.loads(b)["status"]) for _h, b in got)
    assert delivered == expected  # every notification, each once
    assert len({h[DELIVERY_HEADER] for h, _b in got}) == 4
    # in order per alert: firing before resolved
    order = [(orjson.loads(b)["fingerprint"], orjson.loads(b)["status"]) for _h, b in got]
    for fp in {fp for fp, _s in expected}:
        assert [s for f, s in order if f == fp] == ["firing", "resolved"]

    # refused (400): dead-lettered at once; down: after delivery_retry_for_s; unknown channel; garbage
    dead = await read_topic(stack.bootstrap, undelivered, expect=13, timeout=60)
    by = sorted((d["reason"], d["channel"] or "-") for d in dead)
    assert by == sorted([("rejected", "refusing")] * 4 + [("retries_exhausted", "down")] * 4
                        + [("unknown_channel", "nowhere")] * 4 + [("invalid_notification", "-")]), by
    refused = [d for d in dead if d["reason"] == "rejected"]
    assert {d["detail"] for d in refused} == {"HTTP 400 Bad Request"}  # the code, never the receiver's body
    assert {(d["channel_kind"], d["attempts"], d["workspace_id"]) for d in refused} == {("webhook", 1, w)}
    assert sorted((d["notification"]["fingerprint"], d["notification"]["status"]) for d in refused) == expected
    exhausted = [d for d in dead if d["reason"] == "retries_exhausted"]
    assert {d["channel_url"] for d in exhausted} == {down}
    # the lane's first notification was retried for the whole window; those queued behind it had
    # waited as long by then, and expire together with it after one more attempt each
    assert exhausted[0]["attempts"] > 5 and all(d["attempts"] >= 1 for d in exhausted)
    assert [d["value"] for d in dead if d["reason"] == "invalid_notification"] == ['{"not": "a notification"}']
    for d in dead:
        assert SECRET not in orjson.dumps(d).decode()

    m = worker.metrics()
    assert metric(m, "learnstream_alert_deliveries_total", channel_kind="webhook", outcome="delivered") == 4
    assert metric(m, "learnstream_alert_deliveries_total", channel_kind="webhook", outcome="dead_lettered") == 8
    assert {r: metric(m, "learnstream_alert_undelivered_total", reason=r)
            for r in ("rejected", "retries_exhausted", "unknown_channel", "invalid_notification")} == {
        "rejected": 4, "retries_exhausted": 4, "unknown_channel": 4, "invalid_notification": 1}
    assert metric(m, "learnstream_alert_delivery_pending") == 0
    assert SECRET not in worker.log()


# -- restarts ------------------------------------------------------------------------------------

async def test_a_crash_loses_no_delivery_and_open_alerts_stay_in_alertmanager(
        stack, start_worker, alertmanager, receiver):
    ws = uuid.uuid4()
    w = str(ws)
    _cli(stack, "add", "am", "-w", w, "--kind", "alertmanager", "--url", alertmanager.url)
    # an attempt's limit well past the time the test takes to kill a worker whose request is held
    _cli(stack, "add", "hook", "-w", w, "--kind", "webhook", "--url", f"{receiver.url}/hook", "--timeout", "60s",
         LEARNSTREAM_CHANNEL_SECRET=SECRET)
    high = _rule(ws, "latency high", ["am"])
    env = dict(**NO_IDLE, **QUICK_GROUP, LEARNSTREAM_ALERTMANAGER_RESEND_S="2", LEARNSTREAM_DELIVERY_RETRY_INITIAL_S="0.2",
               LEARNSTREAM_DELIVERY_RETRY_MAX_S="1")
    await _add(stack, high)
    first = start_worker(**LOCAL, **env)
    base = window_base()
    topic = stack.topics["performance_sample"]

    async with aiohttp.ClientSession() as http:
        # 1. firing, delivered to Alertmanager and committed; the worker is killed
        await publish_messages(stack.bootstrap, topic, workspace_messages(_spike(w, base, {0: 50, 1: 500}, last=base + 26)))
        alert = (await _wait(lambda: _am_alerts(http, alertmanager.url), 90, "the firing alert"))[0]

        async def settled(worker):
            m = worker.metrics()
            return (metric(m, "learnstream_alert_delivery_pending") == 0
                    and metric(m, "learnstream_alert_deliveries_total", channel_kind="alertmanager",
                               outcome="delivered") == 1)

        await _wait(lambda: settled(first), 30, "the delivery to settle")
        await asyncio.sleep(1.5)  # the commit after it (every fetch round, 0.5 s)
        first.kill()

        # nobody re-posts it: it expires in Alertmanager (endsAt 4 x 2 s ahead)
        async def expired():
            return await _am_alerts(http, alertmanager.url) == []

        await _wait(expired, 30, "the alert to expire in Alertmanager while no worker runs")

        # 2. the next worker takes the open alert up from alert_notifications and re-posts it
        second = start_worker(**LOCAL, **env)

        async def back():
            found = await _am_alerts(http, alertmanager.url)
            return found if found else None

        again = (await _wait(back, 60, "the open alert re-posted by the next worker"))[0]
        assert (again["labels"], again["startsAt"]) == (alert["labels"], alert["startsAt"])
        assert metric(second.metrics(), "learnstream_alert_deliveries_total", channel_kind="alertmanager",
                      outcome="delivered") == 0  # taken up, not delivered again: its offset was committed

        # 3. a notification consumed but not acknowledged by the receiver when the worker dies (it was
        #    down, retried, then took the request and had not answered) is delivered again by the next
        #    worker: the same notification under the same X-Learnstream-Delivery (at least once; the
        #    receiver dedupes by it), never a second notification of the alert
        receiver.fail_until["/hook"] = time.monotonic() + 3600
        await _add(stack, _rule(ws, "latency very high", ["hook"], threshold=200))
        await asyncio.sleep(3)  # the rules reload
        await publish_messages(stack.bootstrap, topic, workspace_messages(_spike(w, base, {2: 50, 3: 900}, last=base + 46)))

        async def stuck():
            m = second.metrics()
            return (metric(m, "learnstream_alert_delivery_pending") == 1
                    and metric(m, "learnstream_alert_delivery_retries_total", channel_kind="webhook") >= 2)

        await _wait(stuck, 90, "the webhook notification to be retried")
        held = receiver.held["/hook"] = asyncio.Event()
        receiver.fail_until["/hook"] = time.monotonic()  # back, but its answers are held

        async def taken():
            return receiver.got.get("/hook")

        await _wait(taken, 30, "the next retry, taken by the receiver", interval=0.05)
        second.kill()  # waiting for the answer: the delivery is not acknowledged
        del receiver.held["/hook"]
        held.set()
        third = start_worker(**LOCAL, **env)

        async def delivered():
            return len(receiver.got["/hook"]) >= 2

        await _wait(delivered, 60, "the notification delivered by the next worker")
        await asyncio.sleep(2)
        got = receiver.got["/hook"]
        assert [(orjson.loads(b)["rule_name"], orjson.loads(b)["status"]) for _h, b in got] == [
            ("latency very high", "firing")] * 2
        assert got[0][0][DELIVERY_HEADER] == got[1][0][DELIVERY_HEADER]  # one notification, delivered twice
        assert got[0][1] == got[1][1]
        for headers, body in got:
            assert verify_signature(SECRET, headers, body, now=time.time())
        assert metric(third.metrics(), "learnstream_alert_deliveries_total", channel_kind="webhook",
                      outcome="delivered") == 1
        assert [a["labels"]["alertname"] for a in await _am_alerts(http, alertmanager.url)] == ["latency high"]
        # the third worker took "latency high" up too (fired again in the same evaluation that resolved
        # its first instance: both notifications have the same sent_at), so it keeps it alive there
        assert "took up 1 open alerts for Alertmanager" in third.log()


# -- one channel down delays only itself (issue #23 item 9) --------------------------------------

class BlackHole:
    """A TCP server that accepts every connection, reads what it is sent and never answers."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hole"
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        while await reader.read(65536):
            pass

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in self._writers:
                w.close()


async def test_a_black_hole_channel_delays_only_itself(stack, start_worker, receiver):
    """10,000 notifications, each to a webhook that never answers and to a healthy one: the healthy
    one gets every notification, once and in order, while the black hole's are still retrying
    (on a per-channel cap of 100 and a global one of 500: a global cap alone fills with the black
    hole's and pauses the consumer)."""
    hole = BlackHole()
    await hole.start()
    try:
        ws = uuid.uuid4()
        w = str(ws)
        _cli(stack, "add", "hole", "-w", w, "--kind", "webhook", "--url", hole.url, "--timeout", "1s",
             LEARNSTREAM_CHANNEL_SECRET=SECRET)
        _cli(stack, "add", "healthy", "-w", w, "--kind", "webhook", "--url", f"{receiver.url}/healthy",
             LEARNSTREAM_CHANNEL_SECRET=SECRET)
        rule = _rule(ws, "latency spike", ["hole", "healthy"])
        await _add(stack, rule)
        worker = start_worker(**LOCAL, **SMALL, LEARNSTREAM_DELIVERY_MAX_PENDING="500",
                              LEARNSTREAM_DELIVERY_MAX_PENDING_PER_CHANNEL="100",
                              LEARNSTREAM_DELIVERY_RETRY_INITIAL_S="0.2", LEARNSTREAM_DELIVERY_RETRY_MAX_S="1")
        fingerprints = [f"fp{i:02d}" for i in range(16)]
        now = datetime.now(UTC)
        messages, recorded = [], []
        for seq in range(10_000):
            fp = fingerprints[seq % len(fingerprints)]
            note = {"fingerprint": fp, "rule_id": str(rule.id), "rule_name": rule.alert_name, "workspace_id": w,
                    "severity": "critical", "status": "firing" if seq // len(fingerprints) % 2 == 0 else "resolved",
                    "current_value": float(seq), "threshold": 100.0, "condition_op": ">", "window_s": 10.0,
                    "message": f"notification {seq}", "triggered_at": now.isoformat(),
                    "sent_at": (now + timedelta(microseconds=seq)).isoformat()}
            messages.append((fp.encode(), orjson.dumps(note)))
            recorded.append(AlertNotification.model_validate(note))
        conn = await connect(stack.dsn)  # recorded as the engine does (only those are delivered)
        try:
            assert await record_notifications(conn, recorded) == 10_000
        finally:
            await conn.close()
        await publish_messages(stack.bootstrap, stack.notifications, messages)

        async def all_healthy():
            return len(receiver.got.get("/healthy", [])) >= 10_000

        await _wait(all_healthy, 180, "every notification at the healthy channel", interval=1.0)
        await asyncio.sleep(2)
        got = [orjson.loads(b) for _h, b in receiver.got["/healthy"]]
        assert len(got) == 10_000
        assert len({h[DELIVERY_HEADER] for h, _b in receiver.got["/healthy"]}) == 10_000  # each once
        for fp in fingerprints:  # in the order sent, per alert
            values = [n["current_value"] for n in got if n["fingerprint"] == fp]
            assert values == sorted(values) and len(values) == 10_000 // len(fingerprints), fp

        # the black hole's are still retrying: none dead-lettered, its backlog still there
        m = worker.metrics()
        assert hole.connections >= 2
        assert metric(m, "learnstream_alert_delivery_retries_total", channel_kind="webhook") >= 1
        assert metric(m, "learnstream_alert_deliveries_total", channel_kind="webhook", outcome="delivered") == 10_000
        assert metric(m, "learnstream_alert_deliveries_total", channel_kind="webhook", outcome="dead_lettered") == 0
        assert metric(m, "learnstream_delivery_channel_backlog", channel=f"{w}/hole") == 10_000
        assert metric(m, "learnstream_delivery_channel_backlog", channel=f"{w}/healthy") == 0
        assert metric(m, "learnstream_alert_delivery_pending") <= 100
    finally:
        await hole.stop()
