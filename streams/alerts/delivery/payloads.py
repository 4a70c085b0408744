"""What is sent to a channel, and how a webhook request is signed. Pure: no I/O, time passed in.

Alertmanager (`alertmanager_alerts`): one alert per notification, in the v2 API's form
(`POST /api/v2/alerts` takes a JSON list of them):

* labels: `alertname` (the rule's name), `severity`, `workspace_id`, `rule_id`, `fingerprint`
  (learnstream's alert instance id), `origin="tenant"` and the series' labels (names made valid
  for Alertmanager: characters other than letters, digits and `_` become `_`, a leading digit gets
  a `_`; a series label whose name is one of those above is sent as `series_<name>`; empty values
  are left out). The reserved labels are set last, so nothing a workspace controls (a rule's series
  labels) replaces them: every alert from a workspace's rule says `origin="tenant"`, which the
  shared Alertmanager's inhibit rules exclude (deploy/alertmanager/alertmanager.yml: only alerts
  with `origin="operator"`, which Prometheus adds, may inhibit; docs/security.md);
* annotations: `summary` (the notification's message), `description`, `value`, `threshold`,
  `window_s`, `learnstream_status` (firing, nodata, acknowledged, muted or resolved), and
  `acknowledged_by` when there is one;
* `startsAt` = triggered_at; `endsAt` = resolved_at for a resolved notification (never before
  startsAt, never after now), and `now + active_for_s` for every other status, as Prometheus does:
  the delivery re-posts the alerts still open every `alertmanager_resend_s`, so an alert stays
  active in Alertmanager while it is open here and expires there if nobody re-posts it;
* `generatorURL`: the settings' template with `{rule_id}`, `{workspace_id}`, `{fingerprint}`.

Webhook (`webhook_request`): the notification's JSON as the body, and headers

    Content-Type: application/json
    X-Learnstream-Timestamp: <unix seconds of this attempt>
    X-Learnstream-Delivery: <id of this notification, the same on every retry and redelivery>
    X-Learnstream-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<delivery id>." + body)>

The signed string is the timestamp header, a dot, the delivery header, a dot and the raw body
(bytes; both headers are ASCII). A receiver recomputes the HMAC over them, compares it in constant
time, and refuses a timestamp older than its tolerance (5 minutes is usual): a replayed request
carries an old timestamp, and a new timestamp needs the secret (see `verify_signature`). The
delivery id is signed too, so a receiver that dedupes by X-Learnstream-Delivery (delivery is at
least once) cannot be made to drop a notification by a request whose id was swapped.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta

import orjson

from schemas.alerts import AlertNotification

SIGNATURE_HEADER = "X-Learnstream-Signature"
TIMESTAMP_HEADER = "X-Learnstream-Timestamp"
DELIVERY_HEADER = "X-Learnstream-Delivery"
USER_AGENT = "learnstream-alert-delivery/1"

#: labels learnstream sets on every Alertmanager alert (a series label of one of these names is renamed)
RESERVED_LABELS = ("alertname", "severity", "workspace_id", "rule_id", "fingerprint", "origin")
#: the `origin` of every alert a workspace's rule raises (Prometheus' alerts carry origin="operator")
TENANT_ORIGIN = "tenant"
_INVALID = re.compile(r"[^A-Za-z0-9_]")


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def label_name(name: str) -> str:
    """`name` as a valid Alertmanager label name ([a-zA-Z_][a-zA-Z0-9_]*)."""
    out = _INVALID.sub("_", name) or "_"
    return "_" + out if out[0].isdigit() else out


def alert_labels(n: AlertNotification) -> dict[str, str]:
    reserved = {"alertname": n.rule_name, "severity": str(n.severity), "workspace_id": str(n.workspace_id),
                "rule_id": str(n.rule_id), "fingerprint": n.fingerprint, "origin": TENANT_ORIGIN}
    series: dict[str, str] = {}
    for name, value in sorted(n.labels.items()):
        if value == "":
            continue
        key = label_name(name)
        if key in RESERVED_LABELS:
            key = "series_" + key
        base, i = key, 2
        while key in series or key in RESERVED_LABELS:
            key, i = f"{base}_{i}", i + 1
        series[key] = value
    return {**series, **reserved}  # the reserved labels last: they win whatever the series says


def alertmanager_alert(n: AlertNotification, now: datetime, active_for_s: float, generator_url: str) -> dict:
    """One Alertmanager v2 postable alert for notification `n` (see the module docstring)."""
    value = "no data" if n.current_value is None else f"{n.current_value:g}"
    annotations = {
        "summary": n.message,
        "description": f"{n.rule_name}: {value} (threshold {n.condition_op} {n.threshold:g}, "
                       f"windows of {n.window_s:g} s)",
        "value": value,
        "threshold": f"{n.condition_op} {n.threshold:g}",
        "window_s": f"{n.window_s:g}",
        "learnstream_status": n.status,
    }
    if n.acknowledged_by:
        annotations["acknowledged_by"] = n.acknowledged_by
    if n.status == "resolved":
        ends = min(n.resolved_at or n.sent_at, now)
        ends = max(ends, n.triggered_at)
    else:
        ends = now + timedelta(seconds=active_for_s)
    alert = {
        "labels": alert_labels(n),
        "annotations": annotations,
        "startsAt": rfc3339(n.triggered_at),
        "endsAt": rfc3339(ends),
    }
    if generator_url:
        alert["generatorURL"] = generator_url.format(rule_id=n.rule_id, workspace_id=n.workspace_id,
                                                     fingerprint=n.fingerprint)
    return alert


def alertmanager_body(notes: list[AlertNotification], now: datetime, active_for_s: float, generator_url: str) -> bytes:
    return orjson.dumps([alertmanager_alert(n, now, active_for_s, generator_url) for n in notes])


def notification_json(n: AlertNotification) -> bytes:
    """The notification as on the alert-notifications topic."""
    return orjson.dumps(n.model_dump(mode="json"))


def delivery_id(n: AlertNotification) -> str:
    """The notification's identity (fingerprint, status, sent_at: alert_notifications' key), hashed."""
    key = f"{n.fingerprint}|{n.status}|{rfc3339(n.sent_at)}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def signed_bytes(timestamp: int | str, delivery: str, body: bytes) -> bytes:
    """What the signature covers: `<timestamp>.<delivery id>.` + body."""
    return f"{timestamp}.{delivery}.".encode("ascii") + body


def signature(secret: str, timestamp: int, delivery: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 with `secret` over `<timestamp>.<delivery id>.` + body."""
    mac = hmac.new(secret.encode(), signed_bytes(timestamp, delivery, body), hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_request(n: AlertNotification, secret: str, timestamp: int) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of a webhook POST of notification `n`, signed at `timestamp` (unix seconds)."""
    body = notification_json(n)
    delivery = delivery_id(n)
    return body, {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, delivery, body),
        DELIVERY_HEADER: delivery,
    }


def verify_signature(secret: str, headers, body: bytes, now: float, tolerance_s: float = 300.0) -> bool:
    """A receiver's check: the signature (over the timestamp, the delivery id and the body) matches,
    compared in constant time, and the timestamp is within `tolerance_s` of `now`. Never raises:
    a missing, non-ASCII or malformed header, or a body that is not bytes, is False."""
    try:
        ts_text, delivery, given = (headers.get(h) for h in (TIMESTAMP_HEADER, DELIVERY_HEADER, SIGNATURE_HEADER))
        if not all(isinstance(v, str) for v in (ts_text, delivery, given)):
            return False
        if not (ts_text.isascii() and ts_text.isdigit() and len(ts_text) <= 12):
            return False
        if not abs(now - int(ts_text)) <= tolerance_s:  # a NaN `now` is out of tolerance too
            return False
        given_b = given.encode("ascii")  # UnicodeEncodeError: not a signature of ours
        expected = signature(secret, int(ts_text), delivery, bytes(body)).encode("ascii")
        return hmac.compare_digest(given_b, expected)
    except Exception:  # noqa: BLE001 - anything a sender can put in a header is a refusal, never an error
        return False
