"""Alert lifecycle engine (issue #4). Pure: no I/O, time is passed in.

Per (rule, labels) fingerprint, in the manner of Prometheus alerting rules and Alertmanager:

* `observe(workspace, metric, labels, value, at)` is called with each closed window's value.
  While the rule's condition holds the instance is *pending*; once it has held for
  `for_duration` it is *firing* (one `firing` notification). When the condition stops holding it
  stays firing for `keep_firing_for`, then *resolves* (one `resolved` notification). A condition
  that clears while pending sends nothing (`for` suppresses blips).
* `tick(now)` runs on a wall-clock timer: re-sends `firing` every `repeat_interval` unless
  acknowledged; marks a series silent for `nodata_after` as *nodata* (one `nodata`, and a
  `resolved` when data returns); sends what a mute held back once the mute expires.
* `command(cmd)`: `ack` (status `acknowledged`; repeats stop until it resolves), `mute` a
  fingerprint or a rule until a time (a `muted` status change now; nothing else is sent while
  muted), `unmute`.
* `set_rules(rules)`: rules reloaded without restart; instances of removed or deactivated rules
  that had notified are resolved.
* Bounded: `tick` drops an instance whose series has been quiet (no window) for `expire_after_s`
  (or `EXPIRY_WINDOWS` of the rule's windows, if longer) after the rule's `nodata_after_s`; one
  that had notified (firing, nodata, acknowledged) is resolved first. So the instances held are
  those of series seen lately, not of every series ever seen. A muted instance that is owed a
  notification waits for its mute to end.
* `restore_mutes(mutes, now)`: the mutes in force (stored, as `command` does not store them)
  after a restart or a rebalance.
* Idempotent re-close: an instance ignores a window that does not end after the last one it
  evaluated. A worker that dies after a closed window's notifications were sent, before the
  window's closed marker reached the changelog, leaves the window to the next owner, which closes
  it again; `restore` takes up each alert's last evaluated window end from its last notification
  (a resolved one too, as `settled`), so that window sends nothing the second time.

Every call returns the notifications to publish, in order. Exactly one per state change, per
fingerprint; the only repeats are `repeat_interval` re-sends, flagged `repeat=True`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from schemas.alerts import AlertCommand, AlertNotification, AlertRule, describe, fingerprint

#: an instance quiet this many of its rule's windows (or expire_after_s if longer) is dropped
EXPIRY_WINDOWS = 3
#: the statuses of an instance whose alert is open (its last notification is not `resolved`)
_OPEN = ("firing", "nodata", "acknowledged", "muted")


@dataclass
class Instance:
    rule_id: UUID
    fingerprint: str
    labels: dict[str, str]
    state: str = "inactive"  # inactive | pending | firing | nodata
    pending_since: datetime | None = None
    triggered_at: datetime | None = None
    clear_since: datetime | None = None
    last_value: float | None = None
    last_seen: datetime | None = None
    last_sent: datetime | None = None
    last_sent_status: str | None = None
    acknowledged_by: str | None = None
    owed: str | None = None  # a status change a mute held back
    #: the end (event time) of the last window evaluated: one that does not end later is a window
    #: closed again (after a crash), evaluated already
    evaluated_to: datetime | None = None


def _holds(rule: AlertRule, value: float, previous: float | None) -> bool:
    t = rule.threshold_value
    match rule.condition_op:
        case ">":
            return value > t
        case ">=":
            return value >= t
        case "<":
            return value < t
        case "<=":
            return value <= t
        case "=":
            return value == t
        case "!=":
            return value != t
        case "pct_change":
            if previous is None or previous == 0:
                return False
            return abs((value - previous) / previous) * 100.0 >= t
    raise ValueError(rule.condition_op)  # pragma: no cover - the contract forbids others


class AlertEngine:
    def __init__(self, rules: Iterable[AlertRule] = (), expire_after_s: float = 3600.0) -> None:
        self.rules: dict[UUID, AlertRule] = {}
        self.expire_after_s = expire_after_s
        self.instances: dict[str, Instance] = {}
        #: mutes by (workspace, fingerprint) and (workspace, rule id): a mute applies only in the
        #: workspace that issued it, whatever target it names
        self._mute_fp: dict[tuple[UUID, str], datetime] = {}
        self._mute_rule: dict[tuple[UUID, UUID], datetime] = {}
        #: alerts taken up resolved (no instance): fingerprint -> (rule id, workspace, the window end
        #: it resolved at), the evaluated_to of the instance its series makes next; released once
        #: the rule's quiet_bound has passed since
        self.settled: dict[str, tuple[UUID, UUID, datetime]] = {}
        for r in rules:
            self.rules[r.id] = r
        self._index()

    # -- rules -------------------------------------------------------------------------------
    def set_rules(self, rules: Iterable[AlertRule], now: datetime) -> list[AlertNotification]:
        old, self.rules = self.rules, {r.id: r for r in rules}
        self._index()
        out = []
        for fp, inst in list(self.instances.items()):
            rule = self.rules.get(inst.rule_id)
            if rule is not None and rule.is_active:
                continue
            if inst.last_sent_status in _OPEN:
                gone = rule or old[inst.rule_id]  # a removed rule: its last definition
                out += self._emit(gone, inst, "resolved", inst.last_value, now, resolved_at=now, force=True)
            del self.instances[fp]
        return out

    def _watching(self, workspace_id: UUID, metric: str, window_s: float | None = None) -> list[AlertRule]:
        return [
            r for r in self._by_series.get((workspace_id, metric), ())
            if r.is_active and (window_s is None or r.window_s == window_s)
        ]

    def watches(self, workspace_id: UUID, metric: str) -> bool:
        """Whether any rule watches `metric` of the workspace (a cheap test before observe)."""
        return (workspace_id, metric) in self._by_series

    def _index(self) -> None:
        self._by_series: dict[tuple[UUID, str], list[AlertRule]] = {}
        for r in self.rules.values():
            if r.is_active:
                self._by_series.setdefault((r.workspace_id, r.metric), []).append(r)

    # -- state across restarts -----------------------------------------------------------------
    def restore(self, last: Iterable[AlertNotification]) -> None:
        """Take up alert instances from their last recorded notification (a restart or a
        rebalance): a firing alert stays firing without a second `firing`, and a window it was
        evaluated on already (closed again: its closed marker was not written) sends nothing. An
        alert whose last notification is `resolved` is kept only as the window end it resolved at
        (`settled`)."""
        for n in last:
            rule = self.rules.get(n.rule_id)
            if rule is None or not rule.is_active or n.fingerprint in self.instances:
                continue
            if n.status == "resolved":
                if n.resolved_at is not None:
                    self.settled[n.fingerprint] = (rule.id, rule.workspace_id, n.resolved_at)
                continue
            state = "nodata" if n.status == "nodata" else "firing"
            inst = self.instances[n.fingerprint] = Instance(rule.id, n.fingerprint, dict(n.labels), state=state)
            inst.triggered_at, inst.last_value = n.triggered_at, n.current_value
            inst.last_sent, inst.last_sent_status, inst.acknowledged_by = n.sent_at, n.status, n.acknowledged_by
            # quiet since: the notification (a nodata one: the rule's nodata_after before it)
            inst.last_seen = n.sent_at - timedelta(seconds=(rule.nodata_after_s or 0) if state == "nodata" else 0)
            # it fired on the window ending at triggered_at (a nodata one on no window: a window that
            # comes now is data that is back)
            inst.evaluated_to = None if state == "nodata" else n.triggered_at

    def forget(self, keep) -> None:
        """Drop the instances of workspaces for which keep(workspace_id) is false (moved to
        another worker in a rebalance)."""
        for fp, inst in list(self.instances.items()):
            rule = self.rules.get(inst.rule_id)
            if rule is None or not keep(rule.workspace_id):
                del self.instances[fp]
        self.settled = {fp: mark for fp, mark in self.settled.items() if keep(mark[1])}

    def _instance(self, rule: AlertRule, labels: dict[str, str]) -> Instance:
        fp = fingerprint(rule.id, labels)
        inst = self.instances.get(fp)
        if inst is None:
            inst = self.instances[fp] = Instance(rule.id, fp, dict(labels))
            mark = self.settled.pop(fp, None)
            inst.evaluated_to = mark[2] if mark is not None else None
        return inst

    # -- mutes -------------------------------------------------------------------------------
    def restore_mutes(self, mutes: Iterable[tuple[UUID, str, str, datetime]], now: datetime) -> None:
        """Replace the mutes with `mutes`: (workspace, scope 'rule' or 'fingerprint', target: the
        rule's id or the fingerprint, until); those ended by `now` are left out."""
        self._mute_fp, self._mute_rule = {}, {}
        for ws, scope, target, until in mutes:
            if now >= until:
                continue
            if scope == "rule":
                self._mute_rule[(ws, UUID(str(target)))] = until
            else:
                self._mute_fp[(ws, target)] = until

    def mutes(self) -> list[tuple[UUID, str, str, datetime]]:
        """The mutes held: (workspace, scope, target, until)."""
        return ([(ws, "rule", str(r), t) for (ws, r), t in self._mute_rule.items()]
                + [(ws, "fingerprint", f, t) for (ws, f), t in self._mute_fp.items()])

    def _muted(self, inst: Instance, now: datetime) -> bool:
        rule = self.rules.get(inst.rule_id)
        if rule is None:
            return False
        ws = rule.workspace_id
        until = max(
            (t for t in (self._mute_fp.get((ws, inst.fingerprint)), self._mute_rule.get((ws, inst.rule_id))) if t),
            default=None,
        )
        return until is not None and now < until

    def foreign(self, cmd: AlertCommand) -> bool:
        """Does the command name an alert instance or a rule of another workspace than its own?
        (Such a command is refused: a workspace acts on its own alerts only.) A target the
        engine does not know is not foreign: a mute of it is kept for the command's workspace."""
        if cmd.fingerprint:
            inst = self.instances.get(cmd.fingerprint)
            rule = self.rules.get(inst.rule_id) if inst else None
            if rule is not None and rule.workspace_id != cmd.workspace_id:
                return True
        if cmd.rule_id is not None:
            rule = self.rules.get(cmd.rule_id)
            if rule is not None and rule.workspace_id != cmd.workspace_id:
                return True
        return False

    # -- sending -----------------------------------------------------------------------------
    def _emit(
        self, rule: AlertRule, inst: Instance, status: str, value: float | None, at: datetime,
        *, resolved_at: datetime | None = None, repeat: bool = False, force: bool = False,
        sent: datetime | None = None,
    ) -> list[AlertNotification]:
        """`at`: the event time the change belongs to; `sent`: the wall clock now (default `at`)."""
        sent = sent or at
        if not force and self._muted(inst, sent):
            inst.owed = status
            return []
        inst.owed = None
        inst.last_sent, inst.last_sent_status = sent, status
        return [
            AlertNotification(
                fingerprint=inst.fingerprint, rule_id=rule.id, rule_name=rule.alert_name,
                workspace_id=rule.workspace_id, severity=rule.severity, status=status,
                current_value=value, threshold=rule.threshold_value, condition_op=rule.condition_op,
                window_s=rule.window_s, labels=inst.labels, message=describe(rule, value, inst.labels, status, at),
                triggered_at=inst.triggered_at or at, resolved_at=resolved_at, sent_at=sent, repeat=repeat,
                acknowledged_by=inst.acknowledged_by,
            )
        ]

    def _resolve(
        self, rule: AlertRule, inst: Instance, value: float | None, at: datetime, sent: datetime | None = None
    ) -> list[AlertNotification]:
        out = []
        if inst.last_sent_status in _OPEN:
            out = self._emit(rule, inst, "resolved", value, at, resolved_at=at, sent=sent)
        else:
            inst.owed = None  # it fired and resolved inside a mute: nobody was told, nothing to take back
        inst.state, inst.pending_since, inst.clear_since = "inactive", None, None
        inst.triggered_at, inst.acknowledged_by = None, None
        return out

    # -- inputs ------------------------------------------------------------------------------
    def observe(
        self, workspace_id: UUID, metric: str, labels: dict[str, str], value: float, at: datetime,
        window_s: float | None = None, now: datetime | None = None,
    ) -> list[AlertNotification]:
        """A closed window's value of `metric` for the series `labels`, at the window's end (event
        time: `for` and `keep_firing_for` count in it); `now` is the wall clock (sent_at, repeats,
        NoData and mutes count in it; default `at`). With `window_s`, only rules over windows of
        that size see it."""
        now = now or at
        out: list[AlertNotification] = []
        for rule in self._watching(workspace_id, metric, window_s):
            inst = self._instance(rule, labels)
            if inst.evaluated_to is not None and at <= inst.evaluated_to:
                continue  # closed again after a crash: evaluated (and notified) already
            inst.evaluated_to = at
            previous = inst.last_value
            inst.last_value, inst.last_seen = value, now
            if inst.state == "nodata":  # data is back
                out += self._resolve(rule, inst, value, at, now)
            if _holds(rule, value, previous):
                inst.clear_since = None
                if inst.state == "inactive":
                    inst.state, inst.pending_since = "pending", at
                if inst.state == "pending" and at - inst.pending_since >= timedelta(seconds=rule.for_duration_s):
                    inst.state, inst.triggered_at = "firing", at
                    out += self._emit(rule, inst, "firing", value, at, sent=now)
            elif inst.state == "pending":
                inst.state, inst.pending_since = "inactive", None
            elif inst.state == "firing":
                inst.clear_since = inst.clear_since or at
                if at - inst.clear_since >= timedelta(seconds=rule.keep_firing_for_s):
                    out += self._resolve(rule, inst, value, at, now)
        return out

    def quiet_bound(self, rule: AlertRule) -> timedelta:
        """How long a series of `rule` may be quiet before its instance is dropped."""
        return timedelta(seconds=(rule.nodata_after_s or 0) + max(self.expire_after_s, EXPIRY_WINDOWS * rule.window_s))

    def tick(self, now: datetime) -> list[AlertNotification]:
        """Wall-clock duties: mute expiry, repeats, NoData, expiry of quiet instances."""
        self._mute_fp = {k: t for k, t in self._mute_fp.items() if now < t}
        self._mute_rule = {k: t for k, t in self._mute_rule.items() if now < t}
        out: list[AlertNotification] = []
        expired: list[str] = []
        for fp, inst in self.instances.items():
            rule = self.rules.get(inst.rule_id)
            if rule is None or not rule.is_active:
                continue
            muted = self._muted(inst, now)
            if inst.last_seen is not None and now - inst.last_seen >= self.quiet_bound(rule):
                is_open = inst.last_sent_status in _OPEN
                if muted and (is_open or inst.owed):
                    continue  # what the mute holds back is told when it ends
                if is_open:  # its series is gone: resolved, so it is not taken up again
                    out += self._emit(rule, inst, "resolved", None, now, resolved_at=now)
                expired.append(fp)
                continue
            if not muted:
                # after a mute: what changed meanwhile, or, if nothing did, the state it hid
                want = inst.owed
                if want is None and inst.last_sent_status == "muted" and inst.state in ("firing", "nodata"):
                    want = inst.state
                if want is not None and want != inst.last_sent_status:
                    out += self._emit(rule, inst, want, inst.last_value, now,
                                      resolved_at=now if want == "resolved" else None)
                inst.owed = None
            if (
                inst.state == "firing" and not muted and inst.acknowledged_by is None
                and inst.last_sent is not None and now - inst.last_sent >= timedelta(seconds=rule.repeat_interval_s)
            ):
                out += self._emit(rule, inst, "firing", inst.last_value, now, repeat=True)
            if (
                rule.nodata_after_s and inst.last_seen is not None and inst.state != "nodata"
                and now - inst.last_seen >= timedelta(seconds=rule.nodata_after_s)
            ):
                inst.state, inst.triggered_at, inst.pending_since, inst.clear_since = "nodata", now, None, None
                out += self._emit(rule, inst, "nodata", None, now)
        for fp in expired:
            del self.instances[fp]
        for fp, (rule_id, _, resolved_at) in list(self.settled.items()):
            rule = self.rules.get(rule_id)
            if rule is None or not rule.is_active or now - resolved_at >= self.quiet_bound(rule):
                del self.settled[fp]
        return out

    def command(self, cmd: AlertCommand) -> list[AlertNotification]:
        """Apply an ack, mute or unmute of the command's workspace (a command naming another
        workspace's alert or rule changes nothing: see `foreign`)."""
        now = cmd.issued_at
        if self.foreign(cmd):
            return []
        ws = cmd.workspace_id
        if cmd.command == "ack":
            inst = self.instances.get(cmd.fingerprint or "")
            rule = self.rules.get(inst.rule_id) if inst else None
            if inst is None or rule is None or inst.state not in ("firing", "nodata") or inst.acknowledged_by:
                return []
            inst.acknowledged_by = cmd.by or "unknown"
            return self._emit(rule, inst, "acknowledged", inst.last_value, now, force=True)
        if cmd.command == "unmute":
            if cmd.fingerprint:
                self._mute_fp.pop((ws, cmd.fingerprint), None)
            else:
                self._mute_rule.pop((ws, cmd.rule_id), None)
            return self.tick(now)
        # mute: announce it for the instances that are notifying now
        if cmd.fingerprint:
            self._mute_fp[(ws, cmd.fingerprint)] = cmd.until
            targets = [self.instances[cmd.fingerprint]] if cmd.fingerprint in self.instances else []
        else:
            self._mute_rule[(ws, cmd.rule_id)] = cmd.until
            targets = [i for i in self.instances.values() if i.rule_id == cmd.rule_id]
        out = []
        for inst in targets:
            rule = self.rules.get(inst.rule_id)
            if rule is not None and inst.state in ("firing", "nodata"):
                out += self._emit(rule, inst, "muted", inst.last_value, now, force=True)
                inst.owed = None
        return out
