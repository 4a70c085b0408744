"""Posting alert notifications to the HTTP channels: Alertmanager's v2 API (a list of alerts per
request) and signed webhooks (one notification per request), over one aiohttp session.

Each post ends in a `PostResult`: delivered (any 2xx), or failed, and then either worth retrying
(5xx, 408, 429 with its Retry-After, a timeout, a connection error) or permanent (any other
answer: a 4xx, a redirect, which is not followed; an invalid URL). Retrying is the lanes' business
(service.py). A failure's detail keeps at most ANSWER_EXCERPT characters of the receiver's answer,
and never the channel's URL as configured (it may carry a password): its `safe_url` stands in."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from schemas.alerts import AlertNotification
from schemas.channels import AlertChannel
from streams.alerts.delivery.payloads import alertmanager_body, webhook_request

#: characters of a receiver's answer kept in a dead letter's detail
ANSWER_EXCERPT = 300


@dataclass
class PostResult:
    """How one POST to a channel went."""

    ok: bool
    #: failed, and retrying would not help (the receiver refused it)
    permanent: bool = False
    detail: str = ""
    #: seconds the receiver asked to wait before the next attempt (its Retry-After; 0: none)
    retry_after: float = 0.0


class HttpPoster:
    """Posts to Alertmanager and webhook channels; `open` it before posting, `close` it at the end.
    Alertmanager alerts are posted with endsAt `active_for_s` ahead."""

    def __init__(self, active_for_s: float, generator_url: str) -> None:
        self.active_for_s, self.generator_url = active_for_s, generator_url
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(headers={"User-Agent": "learnstream-alert-delivery/1"})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post_alertmanager(self, ch: AlertChannel, notes: list[AlertNotification]) -> PostResult:
        body = alertmanager_body(notes, datetime.now(UTC), self.active_for_s, self.generator_url)
        return await self._post(ch, alertmanager_endpoint(ch.url or ""), body, {"Content-Type": "application/json"})

    async def post_webhook(self, ch: AlertChannel, note: AlertNotification) -> PostResult:
        assert ch.secret is not None
        body, headers = webhook_request(note, ch.secret.get_secret_value(), int(time.time()))
        return await self._post(ch, ch.url or "", body, headers)

    async def _post(self, ch: AlertChannel, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
        assert self._session is not None
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=ch.timeout_s)) as resp:
                answer = (await resp.content.read(ANSWER_EXCERPT)).decode("utf-8", "replace").strip()
                status = resp.status
                retry_after = _retry_after(resp.headers.get("Retry-After"))
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return PostResult(False, detail=f"no answer within {ch.timeout_s:g} s")
        except aiohttp.InvalidURL as exc:
            return PostResult(False, permanent=True, detail=f"invalid URL: {exc.__class__.__name__}")
        except (aiohttp.ClientError, OSError) as exc:
            return PostResult(False, detail=f"{exc.__class__.__name__}: {_no_url(str(exc), ch)}"[:ANSWER_EXCERPT])
        if 200 <= status < 300:
            return PostResult(True)
        detail = f"HTTP {status}" + (f": {answer}" if answer else "")
        if status in (408, 429) or status >= 500:
            return PostResult(False, detail=detail, retry_after=retry_after)
        return PostResult(False, permanent=True, detail=detail)


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
