"""Alert notification channels (issue #13, migration 0017): where a rule's notifications are
delivered. No I/O.

A rule's `notification_channels` names channels of its workspace. A channel is one of:

* `alertmanager`: POSTed to Alertmanager's v2 API (`<url>/api/v2/alerts`), so its routing,
  grouping, inhibition and silences apply;
* `webhook`: the notification's JSON POSTed to `url`, signed with HMAC-SHA256 over the
  timestamp, the delivery id and the body with the channel's `secret`;
* `topic`: nothing more to do: every notification is on the `alert-notifications` topic already.

The name `topic` is built in (every workspace has it, nothing to add). The secret is a
`SecretStr`: its repr and str are masked, and so is the URL's userinfo and query in them (see
`redact_url`), so a channel can be logged.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator, model_validator

ChannelKind = Literal["alertmanager", "webhook", "topic"]
KINDS: tuple[str, ...] = ("alertmanager", "webhook", "topic")
#: the channel every workspace has: the alert-notifications topic
BUILTIN_TOPIC = "topic"

ChannelName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class AlertChannel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workspace_id: UUID
    name: ChannelName
    kind: ChannelKind
    url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    secret: SecretStr | None = Field(None, description="webhook: the HMAC-SHA256 key (16 to 512 characters)")
    timeout_s: float = Field(10.0, gt=0, le=300, description="one HTTP attempt's time limit")
    is_active: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http:// or https:// URL with a host")
        return v

    @model_validator(mode="after")
    def _fits_kind(self) -> AlertChannel:
        if self.kind == "topic":
            if self.url is not None or self.secret is not None:
                raise ValueError("a topic channel has no url and no secret")
            return self
        if self.url is None:
            raise ValueError(f"an {self.kind} channel needs a url")
        if self.kind == "webhook":
            if self.secret is None:
                raise ValueError("a webhook channel needs a secret (it signs every request)")
            if not 16 <= len(self.secret.get_secret_value()) <= 512:
                raise ValueError("a webhook secret has 16 to 512 characters")
        elif self.secret is not None:
            raise ValueError("only a webhook channel has a secret")
        return self

    @property
    def safe_url(self) -> str:
        return redact_url(self.url) if self.url else ""

    def __repr_args__(self):
        # repr and str show the URL masked too (it may carry a password or a token)
        for name, value in super().__repr_args__():
            yield name, (redact_url(value) if name == "url" and value else value)


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def redact_url(url: str) -> str:
    """`url` as members, logs and listings see it: the user and password it may carry become `***`,
    and so does every query value (`?token=***&x=***`; a bare query part: `***`) and the
    fragment. The same function as the database's mask_url (migration 0024), character for character."""
    masked = _USERINFO.sub(r"\1***@", url, count=1)
    without_fragment, hash_sign, _fragment = masked.partition("#")
    base, question, query = without_fragment.partition("?")
    if question:
        parts = [p.split("=", 1)[0] + "=***" if "=" in p else ("***" if p else "") for p in query.split("&")]
        base += "?" + "&".join(parts)
    return base + ("#***" if hash_sign else "")
