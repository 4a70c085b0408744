"""What the delivery sends: Alertmanager's v2 alerts for each status (exact JSON), the webhook's
body and HMAC signature, the dead-letter envelope's bound; and the channel contract."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from uuid import UUID

import orjson
import pytest
from aiokafka import TopicPartition
from pydantic import ValidationError

from schemas.alerts import AlertNotification
from schemas.channels import AlertChannel, redact_url
from streams.alerts.delivery import alertmanager_endpoint, dead_letter_envelope
from streams.alerts.delivery.payloads import (
    alert_labels,
    alertmanager_alert,
    alertmanager_body,
    delivery_id,
    label_name,
    signature,
    verify_signature,
    webhook_request,
)
from streams.alerts.delivery.service import InFlight, LaneEntry

WS = UUID("11111111-2222-3333-4444-555555555555")
RULE = UUID("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
T0 = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 12, 6, 12, 0, 30, tzinfo=UTC)
NOW = datetime(2026, 12, 6, 12, 1, 0, tzinfo=UTC)


def note(status: str = "firing", **kw) -> AlertNotification:
    d = dict(fingerprint="0123456789abcdef", rule_id=RULE, rule_name="latency spike", workspace_id=WS,
             severity="critical", status=status, current_value=500.0, threshold=100.0, condition_op=">",
             window_s=10.0, labels={"host": "a"},
             message=f"[{status}] latency spike: api_latency.max = 500 (> 100) for host=a at 2026-12-06T12:00:00+00:00",
             triggered_at=T0, sent_at=T0)
    d.update(kw)
    return AlertNotification(**d)


LABELS = {"alertname": "latency spike", "severity": "critical", "workspace_id": str(WS), "rule_id": str(RULE),
          "fingerprint": "0123456789abcdef", "origin": "tenant", "host": "a"}


def test_firing_alert_for_alertmanager():
    assert alertmanager_alert(note(), NOW, 240, "http://dash/rules/{rule_id}?ws={workspace_id}") == {
        "labels": LABELS,
        "annotations": {
            "summary": "[firing] latency spike: api_latency.max = 500 (> 100) for host=a at 2026-12-06T12:00:00+00:00",
            "description": "latency spike: 500 (threshold > 100, windows of 10 s)",
            "value": "500", "threshold": "> 100", "window_s": "10", "learnstream_status": "firing",
        },
        "startsAt": "2026-12-06T12:00:00Z",
        "endsAt": "2026-12-06T12:05:00Z",  # now + 4 x resend: kept alive by re-posting
        "generatorURL": f"http://dash/rules/{RULE}?ws={WS}",
    }


def test_resolved_alert_for_alertmanager():
    n = note("resolved", current_value=50.0, resolved_at=T1, sent_at=T1,
             message="[resolved] latency spike: api_latency.max = 50 (> 100) for host=a at 2026-12-06T12:00:30+00:00")
    body = alertmanager_body([n], NOW, 240, "")
    assert orjson.loads(body) == [{
        "labels": LABELS,
        "annotations": {
            "summary": "[resolved] latency spike: api_latency.max = 50 (> 100) for host=a at 2026-12-06T12:00:30+00:00",
            "description": "latency spike: 50 (threshold > 100, windows of 10 s)",
            "value": "50", "threshold": "> 100", "window_s": "10", "learnstream_status": "resolved",
        },
        "startsAt": "2026-12-06T12:00:00Z",
        "endsAt": "2026-12-06T12:00:30Z",
    }]


def test_resolved_end_is_never_in_the_future_nor_before_the_start():
    later = datetime(2026, 12, 6, 12, 3, tzinfo=UTC)
    assert alertmanager_alert(note("resolved", resolved_at=later), NOW, 240, "")["endsAt"] == "2026-12-06T12:01:00Z"
    early = note("resolved", triggered_at=T1, resolved_at=T0)
    assert alertmanager_alert(early, NOW, 240, "")["endsAt"] == "2026-12-06T12:00:30Z"


def test_nodata_acknowledged_and_muted_stay_active_in_alertmanager():
    nodata = alertmanager_alert(note("nodata", current_value=None), NOW, 240, "")
    assert (nodata["annotations"]["value"], nodata["annotations"]["learnstream_status"], nodata["endsAt"]) == (
        "no data", "nodata", "2026-12-06T12:05:00Z")
    acked = alertmanager_alert(note("acknowledged", acknowledged_by="ops@x"), NOW, 240, "")
    assert (acked["annotations"]["acknowledged_by"], acked["endsAt"]) == ("ops@x", "2026-12-06T12:05:00Z")
    assert alertmanager_alert(note("muted"), NOW, 240, "")["endsAt"] == "2026-12-06T12:05:00Z"


def test_series_labels_are_made_valid_and_never_override_learnstream_s():
    n = note(labels={"host.name": "a", "9zone": "eu", "severity": "low", "host_name": "b", "empty": ""})
    assert alert_labels(n) == {
        "alertname": "latency spike", "severity": "critical", "workspace_id": str(WS), "rule_id": str(RULE),
        "fingerprint": "0123456789abcdef", "origin": "tenant", "_9zone": "eu", "host_name": "a", "host_name_2": "b",
        "series_severity": "low",
    }
    assert [label_name(x) for x in ("a-b", "", "ok_1", "1")] == ["a_b", "_", "ok_1", "_1"]


def test_a_workspaces_rule_cannot_pass_for_the_operator_in_alertmanager():
    """A rule named like an operator alert, critical, whose series labels claim the reserved names
    (in every spelling that label_name folds onto them): the reserved labels stay learnstream's and
    origin stays "tenant", which no inhibit rule of the shared Alertmanager takes as a source."""
    other = "99999999-2222-3333-4444-555555555555"
    n = note(rule_name="LearnstreamDatabaseDown", severity="critical", labels={
        "origin": "operator", "or-igin": "x", "alertname": "LearnstreamWorkerDown", "severity": "critical",
        "workspace_id": other, "rule_id": "r", "fingerprint": "f", "instance": "worker-1:9464",
        "series_origin": "s"})
    labels = alert_labels(n)
    assert {k: labels[k] for k in ("alertname", "severity", "workspace_id", "rule_id", "fingerprint", "origin")} == {
        "alertname": "LearnstreamDatabaseDown", "severity": "critical", "workspace_id": str(WS), "rule_id": str(RULE),
        "fingerprint": "0123456789abcdef", "origin": "tenant"}
    assert labels["series_origin"] == "operator" and labels["series_origin_2"] == "s"
    assert labels["series_workspace_id"] == other and labels["or_igin"] == "x"
    assert list(labels.values()).count("tenant") == 1


def test_alertmanager_endpoint():
    assert alertmanager_endpoint("http://am:9093") == "http://am:9093/api/v2/alerts"
    assert alertmanager_endpoint("http://am:9093/") == "http://am:9093/api/v2/alerts"
    assert alertmanager_endpoint("http://am:9093/api/v2/alerts") == "http://am:9093/api/v2/alerts"


def test_webhook_body_and_signature():
    n = note()
    body, headers = webhook_request(n, "s3cret-s3cret-s3cret", 1765022400)
    assert body == orjson.dumps(n.model_dump(mode="json"))
    assert orjson.loads(body)["fingerprint"] == "0123456789abcdef"
    did = delivery_id(n)
    # the signed string: timestamp, delivery id and body (issue #24: the id is inside the HMAC)
    expected = hmac.new(b"s3cret-s3cret-s3cret", f"1765022400.{did}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers == {
        "Content-Type": "application/json",
        "User-Agent": "learnstream-alert-delivery/1",
        "X-Learnstream-Timestamp": "1765022400",
        "X-Learnstream-Signature": f"sha256={expected}",
        "X-Learnstream-Delivery": delivery_id(n),
    }
    assert signature("s3cret-s3cret-s3cret", 1765022400, did, body) == f"sha256={expected}"
    assert delivery_id(n) == hashlib.sha256(b"0123456789abcdef|firing|2026-12-06T12:00:00Z").hexdigest()[:32]
    assert delivery_id(note("resolved")) != delivery_id(n)


def test_verify_signature_refuses_tampering_replay_and_wrong_keys():
    body, headers = webhook_request(note(), "s3cret-s3cret-s3cret", 1000)
    assert verify_signature("s3cret-s3cret-s3cret", headers, body, now=1100)
    assert not verify_signature("s3cret-s3cret-s3cret", headers, body + b" ", now=1100)
    assert not verify_signature("other-other-other!", headers, body, now=1100)
    assert not verify_signature("s3cret-s3cret-s3cret", headers, body, now=1000 + 301)  # replayed later
    forged = {**headers, "X-Learnstream-Timestamp": "1200"}  # a new timestamp needs the secret
    assert not verify_signature("s3cret-s3cret-s3cret", forged, body, now=1200)
    assert not verify_signature("s3cret-s3cret-s3cret", {}, body, now=1000)


def test_verify_signature_covers_the_delivery_id():
    """Issue #24: a request whose X-Learnstream-Delivery was changed (to make a deduping receiver
    drop it, or to replay it as a new one) no longer verifies."""
    body, headers = webhook_request(note(), "s3cret-s3cret-s3cret", 1000)
    assert verify_signature("s3cret-s3cret-s3cret", headers, body, now=1000)
    swapped = {**headers, "X-Learnstream-Delivery": delivery_id(note("resolved"))}
    assert not verify_signature("s3cret-s3cret-s3cret", swapped, body, now=1000)
    assert not verify_signature("s3cret-s3cret-s3cret", {**headers, "X-Learnstream-Delivery": ""}, body, now=1000)


def test_verify_signature_never_raises():
    """Issue #24: a non-ASCII header raised TypeError in hmac.compare_digest (str against str);
    every malformed request is now a plain False."""
    body, headers = webhook_request(note(), "s3cret-s3cret-s3cret", 1000)
    key = "s3cret-s3cret-s3cret"
    hostile = [
        {**headers, "X-Learnstream-Signature": "sha256=\u00e9" + "0" * 63},  # non-ASCII signature
        {**headers, "X-Learnstream-Delivery": "d\u00e9livery"},  # non-ASCII delivery id
        {**headers, "X-Learnstream-Timestamp": "\u0661\u0660\u0660\u0660"},  # Arabic-Indic digits: int() takes them
        {**headers, "X-Learnstream-Timestamp": "1e3"},
        {**headers, "X-Learnstream-Timestamp": "9" * 5000},
        {**headers, "X-Learnstream-Signature": None},
        {k: v for k, v in headers.items() if k != "X-Learnstream-Delivery"},  # missing
        {k: v for k, v in headers.items() if k != "X-Learnstream-Signature"},
        {**headers, "X-Learnstream-Signature": b"sha256=00"},
        None, 42, [],
    ]
    for h in hostile:
        assert verify_signature(key, h, body, now=1000) is False, h
    assert verify_signature(key, headers, "not bytes", now=1000) is False
    assert verify_signature(key, headers, body, now=float("nan")) is False


def test_channel_contract_and_masked_secret():
    ch = AlertChannel(workspace_id=WS, name="ops-hook", kind="webhook", url="https://u:pw@hooks.example/x",
                      secret="0123456789abcdef")
    assert "0123456789abcdef" not in repr(ch) and "0123456789abcdef" not in str(ch)
    assert ch.safe_url == "https://***@hooks.example/x"
    assert "u:pw" not in repr(ch) and "u:pw" not in str(ch) and "url='https://***@hooks.example/x'" in repr(ch)
    tokened = ch.model_copy(update={"url": "https://hooks.example/x?token=abc123"})
    assert tokened.safe_url == "https://hooks.example/x?token=***" and "abc123" not in repr(tokened)
    assert tokened.url == "https://hooks.example/x?token=abc123"  # the delivery posts to the URL itself
    assert redact_url("http://am:9093") == "http://am:9093"
    bad = [
        dict(kind="webhook", url="https://h/x"),  # no secret
        dict(kind="webhook", url="https://h/x", secret="short"),
        dict(kind="alertmanager"),  # no url
        dict(kind="alertmanager", url="ftp://h"),
        dict(kind="alertmanager", url="http://h", secret="0123456789abcdef"),
        dict(kind="topic", url="http://h"),
        dict(kind="email", url="http://h"),
    ]
    for kw in bad:
        with pytest.raises(ValidationError):
            AlertChannel(workspace_id=WS, name="x", **kw)
    with pytest.raises(ValidationError):
        AlertChannel(workspace_id=WS, name="bad name", kind="topic")


def test_dead_letter_envelope_is_bounded_and_keeps_no_secret():
    ch = AlertChannel(workspace_id=WS, name="hook", kind="webhook", url="https://u:pw@h/x", secret="0123456789abcdef")
    n = note()
    item = InFlight(TopicPartition("alert-notifications", 3), 42, orjson.dumps(n.model_dump(mode="json")), n)
    entry = LaneEntry(item, ch, first_attempt_at=T0, attempts=2)
    env = orjson.loads(dead_letter_envelope(item, ch, "rejected", "HTTP 400: no", entry, 100_000))
    dead_at = env.pop("dead_lettered_at")
    assert dead_at.endswith("Z")
    assert env == {
        "reason": "rejected", "detail": "HTTP 400: no", "channel": "hook", "channel_kind": "webhook",
        "channel_url": "https://***@h/x", "workspace_id": str(WS), "attempts": 2,
        "first_attempt_at": "2026-12-06T12:00:00Z", "source_topic": "alert-notifications", "partition": 3,
        "offset": 42, "notification": n.model_dump(mode="json"),
    }
    raw = b'{"not": "a notification", "pad": "' + b"\xc3\xa9" * 5000 + b'"}'
    bad = InFlight(TopicPartition("alert-notifications", 0), 7, raw)
    out = dead_letter_envelope(bad, None, "invalid_notification", "x", None, 2000, name=None)
    assert len(out) <= 2000
    env = orjson.loads(out)
    assert (env["value_truncated"], env["value_length"], env["value_sha256"]) == (
        True, len(raw), hashlib.sha256(raw).hexdigest())
    assert raw.decode().startswith(env["value"]) and env["value"]
