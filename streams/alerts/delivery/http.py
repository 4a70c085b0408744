"""Posting alert notifications to the HTTP channels: Alertmanager's v2 API (a list of alerts per
request) and signed webhooks (one notification per request), over one aiohttp session.

Each post ends in a `PostResult`: delivered (any 2xx), or failed, and then either worth retrying
(5xx, 408, 429 with its Retry-After, a timeout, a connection error) or permanent (any other
answer: a 4xx, a redirect, which is not followed; an invalid URL). Retrying is the lanes' business
(service.py).

What a receiver answers never leaves this module beyond its status code: a failure's detail is
`HTTP <code> <the standard reason phrase>` (the receiver's own phrase and body are not read, so
a password in a 403 page lands in no log and no dead letter), and an error's detail is its class
and a fixed description, never the channel's URL as configured (it may carry a password).

Every connection goes through `GuardedConnector`: the target's host is resolved once, every
address it resolved to is checked against the operator's `OutboundPolicy` (streams/outbound.py:
no loopback, link-local, private, ... unless LEARNSTREAM_OUTBOUND_ALLOW lists it), and the
connection is made only to those addresses (DNS rebinding gets no second lookup). A refused
target is a permanent failure with reason `refused_target`. Redirects are not followed. The
operator's own LEARNSTREAM_ALERTMANAGER_URL (the built-in `alertmanager` channel) is trusted as
configured and posted to without the check."""

from __future__ import annotations

import asyncio
import http
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import aiohttp.abc

from schemas.alerts import AlertNotification
from schemas.channels import AlertChannel
from streams.alerts.delivery.payloads import alertmanager_body, webhook_request
from streams.outbound import OutboundPolicy, Refusal

#: characters of a failure's detail kept in a dead letter
ANSWER_EXCERPT = 300


class RefusedTarget(OSError):
    """The target resolved to an address the outbound policy refuses."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.text)
        self.refusal = refusal


class GuardedConnector(aiohttp.TCPConnector):
    """A TCPConnector that connects only to addresses the policy allows: the addresses resolved
    (by aiohttp's resolver, its DNS cache, or an IP literal in the URL) are checked before aiohttp
    connects to exactly those, so the address checked is the address connected to."""

    def __init__(self, policy: OutboundPolicy, **kwargs) -> None:
        super().__init__(**kwargs)
        self.policy = policy

    async def _resolve_host(self, host: str, port: int, traces=None):  # aiohttp's hook: every connection's addresses
        hosts = await super()._resolve_host(host, port, traces=traces)
        refusal = self.policy.refusal(host, port, [h["host"] for h in hosts])
        if refusal is not None:
            raise RefusedTarget(refusal)
        return hosts


@dataclass
class PostResult:
    """How one POST to a channel went."""

    ok: bool
    #: failed, and retrying would not help (the receiver refused it)
    permanent: bool = False
    detail: str = ""
    #: seconds the receiver asked to wait before the next attempt (its Retry-After; 0: none)
    retry_after: float = 0.0
    #: the dead letter's reason when permanent ('' : rejected); `refused_target`: the outbound policy
    reason: str = ""
    #: refused_target: why (a classify() label: loopback, private, ...)
    refused: str = ""


class HttpPoster:
    """Posts to Alertmanager and webhook channels; `open` it before posting, `close` it at the end.
    Alertmanager alerts are posted with endsAt `active_for_s` ahead. Every target is checked
    against `policy` but `trusted_url` (the operator's LEARNSTREAM_ALERTMANAGER_URL)."""

    def __init__(self, active_for_s: float, generator_url: str, policy: OutboundPolicy | None = None,
                 trusted_url: str | None = None, resolver: aiohttp.abc.AbstractResolver | None = None) -> None:
        self.active_for_s, self.generator_url = active_for_s, generator_url
        self.policy = policy or OutboundPolicy()
        self.trusted_url = trusted_url
        self._resolver = resolver  # None: aiohttp's (a test's own to play DNS tricks)
        self._session: aiohttp.ClientSession | None = None
        self._trusted: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        headers = {"User-Agent": "learnstream-alert-delivery/1"}
        connector = GuardedConnector(self.policy, **({"resolver": self._resolver} if self._resolver else {}))
        self._session = aiohttp.ClientSession(connector=connector, headers=headers)
        if self.trusted_url:
            self._trusted = aiohttp.ClientSession(headers=headers)

    async def close(self) -> None:
        for session in (self._session, self._trusted):
            if session is not None:
                await session.close()

    async def post_alertmanager(self, ch: AlertChannel, notes: list[AlertNotification]) -> PostResult:
        body = alertmanager_body(notes, datetime.now(UTC), self.active_for_s, self.generator_url)
        return await self._post(ch, alertmanager_endpoint(ch.url or ""), body, {"Content-Type": "application/json"})

    async def post_webhook(self, ch: AlertChannel, note: AlertNotification) -> PostResult:
        assert ch.secret is not None
        body, headers = webhook_request(note, ch.secret.get_secret_value(), int(time.time()))
        return await self._post(ch, ch.url or "", body, headers)

    async def _post(self, ch: AlertChannel, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
        trusted = ch.kind == "alertmanager" and self._trusted is not None and ch.url == self.trusted_url
        session = self._trusted if trusted else self._session
        assert session is not None
        try:
            async with session.post(url, data=body, headers=headers, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=ch.timeout_s)) as resp:
                status = resp.status  # the body is never read: it may say anything
                retry_after = _retry_after(resp.headers.get("Retry-After"))
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return PostResult(False, detail=f"no answer within {ch.timeout_s:g} s")
        except aiohttp.InvalidURL as exc:
            return PostResult(False, permanent=True, detail=f"invalid URL: {exc.__class__.__name__}")
        except (aiohttp.ClientError, OSError) as exc:
            refused = _refusal(exc)
            if refused is not None:
                return PostResult(False, permanent=True, reason="refused_target", refused=refused.reason,
                                  detail=f"refused target: {_no_url(refused.text, ch)}"[:ANSWER_EXCERPT])
            return PostResult(False, detail=_error_line(exc))
        if 200 <= status < 300:
            return PostResult(True)
        detail = status_line(status)
        if status in (408, 429) or status >= 500:
            return PostResult(False, detail=detail, retry_after=retry_after)
        return PostResult(False, permanent=True, detail=detail)


def status_line(status: int) -> str:
    """`HTTP 403 Forbidden`: the code and the standard reason phrase (never the receiver's own
    phrase, which it may fill with anything)."""
    try:
        return f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _refusal(exc: BaseException) -> Refusal | None:
    """The outbound policy's refusal inside an aiohttp error (a ClientConnectorDNSError wraps it)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        if isinstance(seen, RefusedTarget):
            return seen.refusal
        seen = getattr(seen, "os_error", None) if isinstance(seen, aiohttp.ClientConnectorError) else seen.__cause__
    return None


def _error_line(exc: BaseException) -> str:
    """A connection error's class and a fixed description: never its message, which can quote
    what the receiver sent (a malformed status line, headers) or the URL."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = getattr(exc.os_error, "errno", None)
        what = f"cannot connect (errno {errno})" if errno else "cannot connect"
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        what = "the server closed the connection"
    elif isinstance(exc, aiohttp.ClientResponseError):
        what = "malformed answer"
    else:
        what = "connection failed"
    return f"{exc.__class__.__name__}: {what}"


def alertmanager_endpoint(url: str) -> str:
    """An Alertmanager's base URL (or its /api/v2/alerts URL) -> its /api/v2/alerts URL."""
    url = url.rstrip("/")
    return url if url.endswith("/api/v2/alerts") else url + "/api/v2/alerts"


def _retry_after(value: str | None) -> float:
    """A Retry-After header in seconds (0 if absent, negative or not a number of seconds)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def _no_url(text: str, ch: AlertChannel) -> str:
    """An error text without the channel's URL (it may carry a password)."""
    return text.replace(ch.url or "\0", ch.safe_url) if ch.url else text
