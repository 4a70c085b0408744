"""The outbound policy (streams/outbound.py) and the delivery's HTTP client under it
(streams/alerts/delivery/http.py), against real local HTTP servers: refused targets are never
connected to, allowed ones are, and a receiver's answer never reaches a failure's detail."""

from __future__ import annotations

import ipaddress
import socket
from uuid import UUID

import pytest
from aiohttp import web

from schemas.alerts import AlertNotification
from schemas.channels import AlertChannel
from streams.alerts.delivery.http import HttpPoster, status_line
from streams.devkit.services import free_port
from streams.outbound import OutboundPolicy, check_url, classify

WS = UUID("11111111-2222-3333-4444-555555555555")
PASSWORD = "hunter2-the-admin-password"


@pytest.mark.parametrize(("address", "why"), [
    ("127.0.0.1", "loopback"), ("127.9.9.9", "loopback"), ("::1", "loopback"),
    ("169.254.169.254", "link_local"), ("fe80::1", "link_local"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fc00::1", "private"),
    ("fd12:3456::1", "private"), ("100.64.0.1", "cgnat"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "link_local"), ("::ffff:10.0.0.1", "private"), ("2002:7f00:1::", "loopback"),
    ("64:ff9b::a9fe:a9fe", "link_local"), ("240.0.0.1", "private"),
    # not flagged by every 3.11 patch release of ipaddress (site-local IPv6, IETF protocol assignments)
    ("fec0::1", "non_global"), ("192.0.0.8", "non_global"), ("2001:db8::1", "private"),
    ("8.8.8.8", None), ("::ffff:8.8.8.8", None), ("2606:4700:4700::1111", None),
])
def test_classify(address, why):
    assert classify(ipaddress.ip_address(address)) == why


def test_allow_list_entries():
    p = OutboundPolicy("127.0.0.1/32, alertmanager:9093, [::1]:8080, 10.0.0.5:8080, Hooks.Internal")
    assert p.refusal("127.0.0.1", 1234, ["127.0.0.1"]) is None
    assert p.refusal("localhost", 80, ["::ffff:127.0.0.1"]) is None  # mapped: judged as 127.0.0.1
    assert p.refusal("alertmanager", 9093, ["172.18.0.2"]) is None  # the name, whatever it resolves to
    assert p.refusal("ALERTMANAGER.", 9093, ["172.18.0.2"]) is None
    assert p.refusal("alertmanager", 9094, ["172.18.0.2"]).reason == "private"  # another port
    assert p.refusal("10.0.0.5", 8080, ["10.0.0.5"]) is None
    assert p.refusal("10.0.0.5", 8081, ["10.0.0.5"]).reason == "private"
    assert p.refusal("[::1]", 8080, ["::1"]) is None
    assert p.refusal("hooks.internal", 443, ["10.9.9.9"]) is None
    # every address a name resolves to is checked: one public among them does not let a private one by
    refused = p.refusal("rebind.example", 80, ["93.184.216.34", "169.254.169.254"])
    assert (refused.reason, refused.text) == ("link_local", "rebind.example resolves to 169.254.169.254 "
                                              "(link-local); not allowed unless listed in LEARNSTREAM_OUTBOUND_ALLOW")
    assert OutboundPolicy("").refusal("example.com", 443, ["93.184.216.34"]) is None
    assert OutboundPolicy("").refusal("x", 80, []).reason == "non_global"
    for bad in ("a b", "10.0.0.0/33", "h:0", "h:99999", "[::1]x", "u@h"):
        with pytest.raises(ValueError):
            OutboundPolicy(bad)


def test_check_url_resolves_like_the_delivery():
    assert check_url(OutboundPolicy(""), "http://localhost:9/x").reason == "loopback"
    assert check_url(OutboundPolicy("127.0.0.0/8, ::1"), "http://localhost:9/x") is None
    assert check_url(OutboundPolicy(""), "http://[::ffff:169.254.169.254]/latest").reason == "link_local"
    assert check_url(OutboundPolicy(""), "http://no-such-host.invalid/x") is None  # the delivery checks again


def test_status_line_is_the_standard_phrase():
    assert status_line(403) == "HTTP 403 Forbidden"
    assert status_line(599) == "HTTP 599"


def _note() -> AlertNotification:
    from datetime import UTC, datetime

    t = datetime(2026, 12, 6, 12, tzinfo=UTC)
    return AlertNotification(fingerprint="fp", rule_id=WS, rule_name="r", workspace_id=WS, severity="critical",
                             status="firing", current_value=1.0, threshold=0.0, condition_op=">", window_s=10,
                             message="m", triggered_at=t, sent_at=t)


@pytest.fixture
async def server():
    """A receiver on 127.0.0.1 that answers 403 with a password in its reason phrase and body."""
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        if request.path == "/redirect":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        return web.Response(status=403, reason=f"Forbidden {PASSWORD}", text=f"denied; db password={PASSWORD}")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port, hits
    await runner.cleanup()


async def _post(poster: HttpPoster, url: str):
    ch = AlertChannel(workspace_id=WS, name="hook", kind="webhook", url=url, secret="0123456789abcdef")
    await poster.open()
    try:
        return await poster.post_webhook(ch, _note())
    finally:
        await poster.close()


async def test_a_loopback_target_is_never_connected_to(server):
    port, hits = server
    for url in (f"http://127.0.0.1:{port}/x", f"http://localhost:{port}/x", f"http://[::ffff:127.0.0.1]:{port}/x",
                f"http://user:{PASSWORD}@127.0.0.1:{port}/x?token={PASSWORD}"):
        result = await _post(HttpPoster(60, "", OutboundPolicy("")), url)
        assert (result.ok, result.permanent, result.reason, result.refused) == (False, True, "refused_target",
                                                                                "loopback"), url
        assert PASSWORD not in result.detail
    assert hits == []
    # allowed by the operator: connected to; the 403's phrase and body stay out of the detail
    result = await _post(HttpPoster(60, "", OutboundPolicy(f"127.0.0.1:{port}")), f"http://127.0.0.1:{port}/x")
    assert (result.ok, result.permanent, result.reason, result.detail) == (False, True, "", "HTTP 403 Forbidden")
    assert hits == ["/x"]
    # another port of the same address is not allowed by that entry
    other = await _post(HttpPoster(60, "", OutboundPolicy(f"127.0.0.1:{port + 1}")), f"http://127.0.0.1:{port}/x")
    assert other.reason == "refused_target"
    # a redirect (to the metadata address) is not followed
    moved = await _post(HttpPoster(60, "", OutboundPolicy("127.0.0.1")), f"http://127.0.0.1:{port}/redirect")
    assert (moved.ok, moved.permanent, moved.detail) == (False, True, "HTTP 302 Found")
    assert hits == ["/x", "/redirect"]


async def test_the_operators_alertmanager_is_trusted_as_configured(server):
    port, hits = server
    url = f"http://127.0.0.1:{port}"
    am = AlertChannel(workspace_id=WS, name="alertmanager", kind="alertmanager", url=url)
    poster = HttpPoster(60, "", OutboundPolicy(""), trusted_url=url)
    await poster.open()
    try:
        assert (await poster.post_alertmanager(am, [_note()])).detail == "HTTP 403 Forbidden"
        # a tenant's webhook at the same address is not
        hook = AlertChannel(workspace_id=WS, name="h", kind="webhook", url=url + "/-/quit", secret="0123456789abcdef")
        assert (await poster.post_webhook(hook, _note())).reason == "refused_target"
    finally:
        await poster.close()
    assert hits == ["/api/v2/alerts"]


class _Rebinding:
    """A DNS resolver whose answers change under the delivery's feet (DNS rebinding): each lookup
    returns the next list of addresses."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups = 0

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
        self.lookups += 1
        addresses = self.answers[min(self.lookups, len(self.answers)) - 1]
        return [{"hostname": host, "host": a, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}
                for a in addresses]

    async def close(self) -> None:
        pass


async def test_the_addresses_connected_to_are_the_addresses_checked(server):
    """DNS rebinding: whatever a name resolved to when its channel was added, the connector checks
    the lookup it connects with, every address of it (127.0.0.1 alone, a public address beside
    127.0.0.1, an IPv4-mapped loopback), and refuses before any connection."""
    port, hits = server
    ch = AlertChannel(workspace_id=WS, name="hook", kind="webhook", url=f"http://rebind.example:{port}/x",
                      secret="0123456789abcdef")
    for answers in ([["127.0.0.1"]], [["93.184.216.34", "127.0.0.1"]], [["::ffff:127.0.0.1"]]):
        resolver = _Rebinding(*answers)
        poster = HttpPoster(60, "", OutboundPolicy(""), resolver=resolver)
        await poster.open()
        try:
            result = await poster.post_webhook(ch, _note())
        finally:
            await poster.close()
        assert (result.reason, result.refused, resolver.lookups) == ("refused_target", "loopback", 1), answers
    assert hits == []
