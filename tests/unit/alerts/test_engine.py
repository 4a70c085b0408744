"""The alert lifecycle engine, with explicit time (no services)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.alerts import AlertCommand, AlertNotification, AlertRule, fingerprint
from streams.alerts.engine import AlertEngine

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WS = uuid.UUID(int=1)
LABELS = {"host": "worker-1"}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rule(**kw) -> AlertRule:
    base = dict(id=uuid.UUID(int=7), workspace_id=WS, alert_name="latency high", metric="api_latency.p95",
                condition_op=">", threshold_value=500.0, window_s=60, severity="critical")
    return AlertRule(**(base | kw))


def feed(engine: AlertEngine, values: list[float], step: float = 60, start: float = 0) -> list[AlertNotification]:
    out = []
    for i, v in enumerate(values):
        out += engine.observe(WS, "api_latency.p95", LABELS, v, at(start + i * step))
    return out


def statuses(notes: list[AlertNotification]) -> list[str]:
    return [n.status for n in notes]


def test_a_spike_fires_once_and_its_end_resolves_once():
    e = AlertEngine([rule()])
    notes = feed(e, [100, 120, 900, 950, 990, 300, 200, 100])
    assert statuses(notes) == ["firing", "resolved"]
    firing, resolved = notes
    assert firing.current_value == 900 and firing.triggered_at == at(120) and firing.severity == "critical"
    assert firing.fingerprint == fingerprint(rule().id, LABELS) and firing.labels == LABELS
    assert resolved.resolved_at == at(300) and resolved.triggered_at == at(120)
    assert "api_latency.p95 = 900 (> 500)" in firing.message


def test_for_suppresses_short_blips():
    e = AlertEngine([rule(for_duration_s=120)])
    assert feed(e, [900, 100, 900, 900, 100]) == []  # never held 120 s
    notes = feed(e, [900, 900, 900], start=600)  # holds at 600, 660, 720: fires at 720
    assert statuses(notes) == ["firing"] and notes[0].triggered_at == at(720)


def test_keep_firing_for_rides_out_a_dip():
    e = AlertEngine([rule(keep_firing_for_s=120)])
    notes = feed(e, [900, 100, 900, 100, 100, 100])
    assert statuses(notes) == ["firing", "resolved"]
    assert notes[1].resolved_at == at(300)  # clear since 180, resolved 120 s later


def test_repeat_interval_resends_until_acknowledged():
    e = AlertEngine([rule(repeat_interval_s=300)])
    [first] = feed(e, [900])
    assert e.tick(at(200)) == []
    [again] = e.tick(at(300))
    assert again.status == "firing" and again.repeat and again.triggered_at == at(0)
    ack = AlertCommand(command="ack", workspace_id=WS, fingerprint=first.fingerprint, by="ana", issued_at=at(310))
    [acked] = e.command(ack)
    assert acked.status == "acknowledged" and acked.acknowledged_by == "ana"
    assert e.command(ack) == []  # already acknowledged
    assert e.tick(at(1000)) == []  # no repeats once acknowledged
    [resolved] = feed(e, [100], start=1020)
    assert resolved.status == "resolved"


def test_a_mute_suppresses_and_expires():
    e = AlertEngine([rule()])
    feed(e, [100])
    mute = AlertCommand(command="mute", workspace_id=WS, rule_id=rule().id, until=at(600), issued_at=at(30))
    assert e.command(mute) == []  # nothing firing yet to announce
    assert feed(e, [900, 950], start=60) == []  # fires during the mute: held back
    assert e.tick(at(300)) == []
    [late] = e.tick(at(600))  # mute expired: the firing is sent now
    assert late.status == "firing" and late.triggered_at == at(60)
    # muting a firing alert announces it, then resolution during the mute is sent at expiry
    fp = late.fingerprint
    [muted] = e.command(AlertCommand(command="mute", workspace_id=WS, fingerprint=fp, until=at(1200), issued_at=at(700)))
    assert muted.status == "muted"
    assert feed(e, [100], start=800) == []
    [resolved] = e.tick(at(1200))
    assert resolved.status == "resolved"


def test_an_alert_that_fires_and_resolves_inside_a_mute_stays_silent():
    e = AlertEngine([rule()])
    e.command(AlertCommand(command="mute", workspace_id=WS, rule_id=rule().id, until=at(600), issued_at=at(0)))
    assert feed(e, [900, 100], start=60) == []
    assert e.tick(at(601)) == []


def test_a_muted_alert_still_firing_at_expiry_is_announced_again():
    e = AlertEngine([rule()])
    [fired] = feed(e, [900])
    e.command(AlertCommand(command="mute", workspace_id=WS, fingerprint=fired.fingerprint, until=at(300), issued_at=at(10)))
    [again] = e.tick(at(300))
    assert again.status == "firing" and not again.repeat


def test_nodata_fires_when_the_metric_stops_and_resolves_when_it_returns():
    e = AlertEngine([rule(nodata_after_s=180)])
    assert feed(e, [100, 110]) == []
    assert e.tick(at(200)) == []
    [nodata] = e.tick(at(240))  # last seen at 60
    assert nodata.status == "nodata" and nodata.current_value is None and "no data" in nodata.message
    assert e.tick(at(500)) == []  # once
    [back] = feed(e, [120], start=600)
    assert back.status == "resolved"


def test_a_rule_added_or_removed_takes_effect_without_restart():
    e = AlertEngine([])
    assert feed(e, [900]) == []  # no rule yet
    assert e.set_rules([rule()], now=at(30)) == []
    [fired] = feed(e, [900], start=60)
    assert fired.status == "firing"
    [gone] = e.set_rules([], now=at(100))
    assert gone.status == "resolved" and gone.rule_name == "latency high"
    assert feed(e, [900], start=120) == []


def test_percent_change_and_other_operators():
    e = AlertEngine([rule(condition_op="pct_change", threshold_value=50)])
    assert statuses(feed(e, [100, 120, 200, 210])) == ["firing", "resolved"]  # +67% at 120 s
    low = AlertEngine([rule(condition_op="<=", threshold_value=10, metric="api_latency.p95")])
    assert statuses(feed(low, [50, 10, 5, 11])) == ["firing", "resolved"]


def test_labels_make_separate_instances():
    e = AlertEngine([rule()])
    a = e.observe(WS, "api_latency.p95", {"host": "a"}, 900, at(0))
    b = e.observe(WS, "api_latency.p95", {"host": "b"}, 900, at(0))
    c = e.observe(uuid.UUID(int=2), "api_latency.p95", {"host": "a"}, 900, at(0))  # other workspace
    assert [n.status for n in a + b] == ["firing", "firing"] and c == []
    assert a[0].fingerprint != b[0].fingerprint


def test_commands_are_validated():
    with pytest.raises(ValidationError):
        AlertCommand(command="mute", workspace_id=WS, rule_id=uuid.uuid4(), issued_at=at(0))  # no until
    with pytest.raises(ValidationError):
        AlertCommand(command="ack", workspace_id=WS, rule_id=uuid.uuid4(), issued_at=at(0))  # ack names a fingerprint
    with pytest.raises(ValidationError):
        AlertCommand(command="unmute", workspace_id=WS, issued_at=at(0))  # no target


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.sampled_from([0.0, 100.0, 499.0, 500.0, 501.0, 2000.0]), min_size=1, max_size=40),
    for_s=st.sampled_from([0, 60, 180]),
    keep_s=st.sampled_from([0, 60, 180]),
    ticks=st.lists(st.integers(0, 3000), max_size=10),
)
def test_one_notification_per_state_change(values, for_s, keep_s, ticks):
    """Whatever the history, a fingerprint never sends the same status twice in a row (except
    flagged repeats), `resolved` only follows a notified alert, and firing matches the oracle."""
    e = AlertEngine([rule(for_duration_s=for_s, keep_firing_for_s=keep_s, repeat_interval_s=10_000)])
    events = [(i * 60, v) for i, v in enumerate(values)] + [(t, None) for t in ticks]
    notes: list[AlertNotification] = []
    for t, v in sorted(events, key=lambda x: (x[0], x[1] is None)):
        notes += e.tick(at(t)) if v is None else feed(e, [v], start=t)
    sent = [n.status for n in notes if not n.repeat]
    assert all(a != b for a, b in zip(sent, sent[1:]))
    assert not sent or sent[0] == "firing"
    # oracle: fires iff some run of values > 500 lasts for_s (in 60 s steps)
    need = for_s // 60 + 1
    run = best = 0
    for v in values:
        run = run + 1 if v > 500 else 0
        best = max(best, run)
    assert ("firing" in sent) == (best >= need)


def test_cli_durations_and_lines():
    import click

    from streams.alerts.cli import format_line
    from streams.cli_support import parse_duration

    assert parse_duration("90s") == timedelta(seconds=90) and parse_duration("1.5h") == timedelta(minutes=90)
    with pytest.raises(click.BadParameter):
        parse_duration("tomorrow")
    e = AlertEngine([rule(nodata_after_s=60)])
    [fired] = feed(e, [900])
    assert format_line(fired) == ("2026-11-23 12:00:00Z CRITICAL firing       latency high: 900 > 500 host=worker-1 "
                                  f"[{fired.fingerprint}]")
    [nodata] = e.tick(at(120))
    assert "nodata       latency high: no data host=worker-1" in format_line(nodata)


# -- bounded state (issue #23 item 8) --------------------------------------------------------------


def _series(e: AlertEngine, n: int, value: float, t: float) -> list[AlertNotification]:
    out = []
    for i in range(n):
        out += e.observe(WS, "api_latency.p95", {"host": f"h{i}"}, value, at(t))
    return out


def test_quiet_series_are_dropped_and_a_series_that_comes_back_works_again():
    e = AlertEngine([rule()], expire_after_s=600)
    assert _series(e, 1000, 100, 0) == []  # 1,000 series, all ok
    fired = _series(e, 3, 900, 60)  # 3 of them fire, then all go quiet
    assert statuses(fired) == ["firing"] * 3 and len(e.instances) == 1000
    assert e.tick(at(599)) == []  # quiet 599 s (ok ones) / 539 s (firing ones): not yet
    assert len(e.instances) == 997 + 3
    assert e.tick(at(600)) == []
    assert len(e.instances) == 3  # the ok ones are dropped silently
    gone = e.tick(at(660))
    assert statuses(gone) == ["resolved"] * 3 and len(e.instances) == 0  # the open ones resolved first
    assert all(n.current_value is None and n.resolved_at == at(660) for n in gone)
    # a series that comes back starts afresh
    assert statuses(_series(e, 1, 900, 700)) == ["firing"]


def test_expiry_waits_for_nodata_and_for_several_windows():
    e = AlertEngine([rule(nodata_after_s=120, window_s=3600)], expire_after_s=60)
    feed(e, [100])
    [nodata] = e.tick(at(120))
    assert nodata.status == "nodata"
    assert e.tick(at(120 + 3 * 3600 - 1)) == []  # 3 windows of an hour after nodata_after
    [resolved] = e.tick(at(120 + 3 * 3600))
    assert resolved.status == "resolved" and e.instances == {}


def test_a_restored_nodata_instance_expires():
    e = AlertEngine([rule(nodata_after_s=120)], expire_after_s=600)
    feed(e, [100])
    [nodata] = e.tick(at(120))
    restarted = AlertEngine([rule(nodata_after_s=120)], expire_after_s=600)
    restarted.restore([nodata])
    assert restarted.tick(at(700)) == [] and len(restarted.instances) == 1
    [resolved] = restarted.tick(at(720))  # quiet since 0: 120 + 600 s
    assert resolved.status == "resolved" and restarted.instances == {}


def test_a_muted_open_instance_is_kept_until_its_mute_ends():
    e = AlertEngine([rule()], expire_after_s=600)
    [fired] = feed(e, [900])
    [muted] = e.command(AlertCommand(command="mute", workspace_id=WS, fingerprint=fired.fingerprint,
                                     until=at(2000), issued_at=at(10)))
    assert muted.status == "muted"
    assert e.tick(at(1000)) == [] and len(e.instances) == 1
    [resolved] = e.tick(at(2000))
    assert resolved.status == "resolved" and e.instances == {}


def test_mutes_restored_after_a_restart():
    e = AlertEngine([rule()])
    [fired] = feed(e, [900])
    e.command(AlertCommand(command="mute", workspace_id=WS, rule_id=rule().id, until=at(600), issued_at=at(10)))
    stored = e.mutes()
    assert stored == [(WS, "rule", str(rule().id), at(600))]
    # a new engine (a restarted worker) from the last notification and the stored mutes
    last = fired.model_copy(update={"status": "muted", "sent_at": at(10)})
    restarted = AlertEngine([rule()])
    restarted.restore([last])
    restarted.restore_mutes(stored + [(WS, "fingerprint", "f" * 32, at(5))], now=at(20))  # an ended one is left out
    assert restarted.mutes() == stored
    assert restarted.tick(at(300)) == []  # still muted: nothing
    [again] = restarted.tick(at(600))
    assert again.status == "firing" and again.sent_at == at(600)


def test_a_command_naming_another_workspaces_alert_changes_nothing():
    """Issue #24: anyone able to write alert-commands acked and muted any tenant's alerts (the
    command's workspace_id was not checked against the alert's). Now a command acts only on its
    own workspace's alerts and rules; a mute of a target the engine does not know yet is kept for
    the workspace that issued it, and never mutes another workspace's alert of that id."""
    other = uuid.UUID(int=2)
    e = AlertEngine([rule()])
    [fired] = feed(e, [900])
    ack = AlertCommand(command="ack", workspace_id=other, fingerprint=fired.fingerprint, by="mallory", issued_at=at(10))
    by_fp = AlertCommand(command="mute", workspace_id=other, fingerprint=fired.fingerprint, until=at(9000),
                         issued_at=at(10))
    by_rule = AlertCommand(command="mute", workspace_id=other, rule_id=rule().id, until=at(9000), issued_at=at(10))
    for cmd in (ack, by_fp, by_rule):
        assert e.command(cmd) == []
    assert e.mutes() == [] and e.instances[fired.fingerprint].acknowledged_by is None
    assert [e.foreign(cmd) for cmd in (ack, by_fp, by_rule)] == [True, True, True]  # the runtime counts them
    assert e.instances[fired.fingerprint].state == "firing"

    # mutes restored from alert_mutes rows of another workspace do not apply here either
    fresh = AlertEngine([rule()])
    fresh.restore_mutes([(other, "rule", str(rule().id), at(9000)), (other, "fingerprint", fired.fingerprint, at(9000))],
                        now=at(0))
    [again] = feed(fresh, [900])
    assert again.status == "firing"
    # the workspace's own ack still works
    own = AlertCommand(command="ack", workspace_id=WS, fingerprint=fired.fingerprint, by="ana", issued_at=at(20))
    assert e.foreign(own) is False
    assert [n.status for n in e.command(own)] == ["acknowledged"]


# -- windows closed again after a crash ---------------------------------------------------------
# A worker that dies after a closed window's notifications were sent, before the window's closed
# marker reached the changelog, leaves the window to the next owner, which closes it again (the
# window stage writes the clock after handing the windows to the alert runtime). The next owner
# takes the alerts up from their last notification, and its notifications carry its own wall
# clock (sent_at, the delivery id): without the guard the windows evaluated again sent a second,
# distinct notification for one transition.


def _closed(e: AlertEngine, values: list[float], start: float = 0, late: float = 5) -> list[AlertNotification]:
    """Windows of 60 s ending at start, start + 60, ..., evaluated `late` seconds after their end
    (the wall clock: sent_at)."""
    out = []
    for i, v in enumerate(values):
        end = at(start + i * 60)
        out += e.observe(WS, "api_latency.p95", LABELS, v, end, 60, end + timedelta(seconds=late))
    return out


def test_windows_closed_again_after_a_crash_send_nothing_new():
    e = AlertEngine([rule()])
    sent = _closed(e, [900, 100, 900])  # windows 1, 2, 3: fires, resolves, fires again
    assert statuses(sent) == ["firing", "resolved", "firing"]
    restarted = AlertEngine([rule()])
    restarted.restore(sent[-1:])  # the last notification of the alert (open_alerts)
    assert _closed(restarted, [100, 900], start=60, late=30) == []  # windows 2 and 3 closed again
    [resolved] = _closed(restarted, [100], start=180)  # the next window goes on from window 3
    assert (resolved.status, resolved.triggered_at, resolved.resolved_at) == ("resolved", at(120), at(180))


def test_windows_closed_again_after_the_alert_resolved_send_nothing_new():
    e = AlertEngine([rule()])
    sent = _closed(e, [900, 100])
    assert statuses(sent) == ["firing", "resolved"]
    restarted = AlertEngine([rule()])
    restarted.restore(sent[-1:])  # a resolved alert is taken up too (as the window it resolved at)
    assert _closed(restarted, [900, 100], late=30) == []
    assert restarted.settled == {}  # its series came back: its instance holds the mark now
    [fired] = _closed(restarted, [900], start=120)
    assert (fired.status, fired.triggered_at, fired.sent_at) == ("firing", at(120), at(125))


def test_a_window_closed_again_does_not_count_twice_for_pct_change_or_for():
    e = AlertEngine([rule(condition_op="pct_change", threshold_value=50, for_duration_s=60)])
    assert _closed(e, [100, 200]) == []  # +100 %: pending at 60
    assert _closed(e, [200], start=60) == []  # window 2 again: not a 0 % change, still pending since 60
    [fired] = _closed(e, [400], start=120)  # +100 % again, held since 60
    assert (fired.status, fired.triggered_at) == ("firing", at(120))


def test_a_settled_alert_is_released_once_its_series_is_quiet():
    e = AlertEngine([rule()], expire_after_s=600)
    sent = _closed(e, [900, 100])
    restarted = AlertEngine([rule()], expire_after_s=600)
    restarted.restore(sent[-1:])
    assert restarted.instances == {} and list(restarted.settled) == [sent[-1].fingerprint]
    assert restarted.tick(at(60 + 599)) == [] and len(restarted.settled) == 1
    assert restarted.tick(at(60 + 600)) == [] and restarted.settled == {} and restarted.instances == {}


def test_a_restored_nodata_alert_takes_an_earlier_window_as_data_back():
    e = AlertEngine([rule(nodata_after_s=120)])
    _closed(e, [100])
    [nodata] = e.tick(at(200))
    restarted = AlertEngine([rule(nodata_after_s=120)])
    restarted.restore([nodata])
    [back] = _closed(restarted, [100], start=60)  # a backlog's window, ending before the nodata
    assert (back.status, back.resolved_at) == ("resolved", at(60))
