"""The window stage without Kafka: routing stored rows to window-input messages, folding them into
panes exactly once per source offset, the changelog writes of a flush."""

from __future__ import annotations

import asyncio
import types
import uuid
from collections import namedtuple
from datetime import UTC, datetime

import orjson

from db.tables import TABLES
from schemas.decode import decode_message
from streams.config import Settings
from streams.dead_letters import DeadLetters
from streams.retry import Retrier
from streams.windows.input import window_messages, workspace_partition
from streams.windows.panes import WindowSpec
from streams.windows.stage import WindowStage

Msg = namedtuple("Msg", "topic partition offset key value")
WS_A, WS_B = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))


def _rows(kind: str, events: list[dict]) -> list[tuple]:
    decoded = decode_message(orjson.dumps(events), kind)
    assert decoded.rejected is None
    return list(map(TABLES[kind].row, decoded.events))


def _sample(ws: str, t: float, value: float, host: str = "a") -> dict:
    return {"sample_id": str(uuid.uuid4()), "workspace_id": ws, "metric_name": "lat",
            "timestamp": datetime.fromtimestamp(t, UTC).isoformat(), "value": value, "tags": {"host": host}}


def _stage() -> WindowStage:
    stage = WindowStage.__new__(WindowStage)  # no Faust app: the table is a dict and a list of sends
    stage.settings = Settings(window_tumbling_s=60, window_hopping_s=120, window_hop_step_s=60, window_grace_s=0)
    stage.specs = (WindowSpec(60), WindowSpec(120, 60))
    sent: list[tuple] = []
    stage.table = types.SimpleNamespace(data={}, send_changelog=lambda p, k, v, **kw: sent.append((p, k, v)))
    stage.sent = sent
    stage.states, stage._acks = {}, []
    stage._lock = asyncio.Lock()
    stage.budgets = {"input": 999_000, "late": 999_000, "rollups": 999_000, "changelog": 999_000}
    stage.max_future_s, stage.earliest = 300.0, 946684800.0
    stage._retrying = Retrier(0.01, 0.1)
    return stage


def test_stored_rows_go_to_their_workspace_partition_with_their_source_offsets():
    rows = _rows("performance_sample", [_sample(WS_A, 1000, 1), _sample(WS_B, 1001, 2), _sample(WS_A, 1002, 3)])
    msgs = [Msg("src", 3, 40, None, b""), Msg("src", 5, 7, None, b"")]
    out = window_messages("performance_sample", rows, [0, 0, 1], msgs, 8)
    by_key = {k.decode(): (p, orjson.loads(v)) for p, k, v in out}
    assert set(by_key) == {WS_A, WS_B}
    part, body = by_key[WS_A]
    assert part == workspace_partition(WS_A, 8) and body["k"] == "performance_sample" and body["t"] == "src"
    assert [(it[0], it[1], it[2][1], it[2][3]) for it in body["i"]] == [([3, 40], 1000.0, "lat", 1.0),
                                                                          ([5, 7], 1002.0, "lat", 3.0)]


def test_a_redelivered_message_is_folded_once_and_a_flush_writes_each_pane_once():
    stage = _stage()
    rows = _rows("performance_sample", [_sample(WS_A, 1000 + i, float(i)) for i in range(10)])
    [(part, _key, value)] = window_messages("performance_sample", rows, [0] * 10, [Msg("src", 0, 5, None, b"")], 4)
    st = stage.states[part] = stage.new_state()
    for _ in range(3):  # the first delivery, then two redeliveries of the same source offset
        assert stage.fold(st, orjson.loads(value), now=0.0) == []
    [panes] = st.windows["performance_sample"].panes.values()
    [agg] = panes.values()
    assert (agg.count, agg.sum) == (10, 45.0)
    later = _rows("performance_sample", [_sample(WS_A, 1015, 100.0)])  # the same pane
    [(_, _, value2)] = window_messages("performance_sample", later, [0], [Msg("src", 0, 6, None, b"")], 4)
    stage.fold(st, orjson.loads(value2), now=0.0)
    assert (agg.count, agg.sum) == (11, 145.0)
    # nothing is written until the flush, then each changed pane once, and the clock
    assert stage.sent == []
    import asyncio

    stage._lock = asyncio.Lock()
    asyncio.run(stage.flush())
    keys = [k.decode() for _, k, _ in stage.sent]
    assert len([k for k in keys if "|g|" in k]) == 1 and f"{part}|c" in keys
    [group] = [orjson.loads(v) for k, v in stage.table.data.items() if b"|g|" in k]
    [pane_value] = group.values()
    assert pane_value["u"] == {"src:0": 6}


def test_engagement_gains_come_from_consecutive_snapshots_and_a_drop_is_flagged():
    stage = _stage()
    post = str(uuid.uuid4())
    updates = [{"update_id": str(uuid.uuid4()), "workspace_id": WS_A, "content_id": post, "platform": "x",
                "recorded_at": datetime.fromtimestamp(1000 + 5 * i, UTC).isoformat(), "views": v}
               for i, v in enumerate([100, 150, 120, 200])]
    rows = _rows("engagement_update", updates)
    [(part, _, value)] = window_messages("engagement_update", rows, [0, 1, 2, 3],
                                         [Msg("src", 0, o, None, b"") for o in range(4)], 4)
    st = stage.states[part] = stage.new_state()
    stage.fold(st, orjson.loads(value), now=0.0)
    stage.fold(st, orjson.loads(value), now=0.0)  # redelivered: nothing changes
    [panes] = st.windows["engagement_update"].panes.values()
    [agg] = panes.values()
    s = agg.summary(60.0)
    assert (s["updates"], s["views_gained"], s["resets"]) == (4, 100, 1)  # 50 + 0 (120 < 150) + 50 (200 - 150)


def test_a_bad_alert_command_is_dead_lettered_with_its_reason():
    stage = _stage()
    letters: list[tuple] = []

    async def publish(key, value):
        letters.append((key, orjson.loads(value)))
        fut = asyncio.get_event_loop().create_future()
        fut.set_result(None)
        return fut

    stage._dead_letters = DeadLetters(publish, Retrier(0.01, 0.1), 1_000_000)
    bad = [Msg("cmds", 0, 3, None, b"{not json"), Msg("cmds", 1, 9, None, orjson.dumps({"command": "ack"}))]

    async def run():
        for m in bad:
            await stage.relay_command(m)

    asyncio.run(run())
    assert [(k, d["errors"][0]["reason"]) for k, d in letters] == [(b"cmds:0:3", "invalid_json"), (b"cmds:1:9", "schema")]
    assert letters[0][1]["value"] == "{not json"


async def test_a_workspaces_chunks_land_in_order_when_a_send_fails_midway():
    """#23 item 6: a produce retry used to resend the whole list after a partial success, so a later
    chunk landed before an earlier one and the pane's high-water source offset skipped the earlier."""
    import asyncio

    from aiokafka.errors import KafkaConnectionError

    from streams.windows.stage import send_waves

    stage = _stage()
    landed: list[bytes] = []
    failures = {b"ws-a:1": 1}  # the first chunk of ws-a fails once, after ws-a's second chunk was sent

    async def send(topic, key, value, partition, *rest):
        fut = asyncio.get_running_loop().create_future()
        if failures.get(value):
            failures[value] -= 1
            fut.set_exception(KafkaConnectionError("broker away"))
        else:
            landed.append(value)
            fut.set_result(None)
        return fut

    stage.app = types.SimpleNamespace(producer=types.SimpleNamespace(send=send))
    topic = types.SimpleNamespace(get_topic_name=lambda: "window-input")
    messages = [(0, b"ws-a", b"ws-a:1"), (0, b"ws-a", b"ws-a:2"), (1, b"ws-b", b"ws-b:1"), (0, b"ws-a", b"ws-a:3")]
    assert send_waves(messages) == [[messages[0], messages[2]], [messages[1]], [messages[3]]]
    await stage._send_all("test", topic, messages)
    a = [v for v in landed if v.startswith(b"ws-a")]
    assert a == [b"ws-a:1", b"ws-a:2", b"ws-a:3"]  # in order, and none before an earlier one
    assert landed.count(b"ws-b:1") == 2  # its wave was retried whole: a repeat, which the stage skips


def test_a_flush_torn_between_the_pane_and_the_snapshot_counts_a_redelivered_gain_once():
    """Issue #23, item 5: the pane record (gain 50, its offset mark) reached the changelog, the
    snapshot record (views 150) did not; the update is redelivered to the next owner."""
    from streams.windows import state as windows_state

    stage = _stage()
    post = str(uuid.uuid4())
    updates = [{"update_id": str(uuid.uuid4()), "workspace_id": WS_A, "content_id": post, "platform": "x",
                "recorded_at": datetime.fromtimestamp(1000 + 5 * i, UTC).isoformat(), "views": v}
               for i, v in enumerate([100, 150])]
    rows = _rows("engagement_update", updates)
    [(part, _, first)] = window_messages("engagement_update", rows[:1], [0], [Msg("src", 0, 0, None, b"")], 4)
    [(_, _, second)] = window_messages("engagement_update", rows[1:], [0], [Msg("src", 0, 1, None, b"")], 4)
    st = stage.states[part] = stage.new_state()
    stage.fold(st, orjson.loads(first), now=0.0)
    asyncio.run(stage.flush())
    after_first = dict(stage.table.data)
    stage.fold(st, orjson.loads(second), now=0.0)
    asyncio.run(stage.flush())
    # the torn changelog: every record as after the second flush, but the snapshots as after the first
    torn = {k: (after_first[k] if b"|s|" in k else v) for k, v in stage.table.data.items()}
    assert any(b"|s|" in k for k in torn) and torn != stage.table.data

    restored = windows_state.restore(list(torn.items()), {part}, stage.new_state, 2000.0, 0.0, 300.0)
    again = restored.states[part]
    stage.fold(again, orjson.loads(second), now=0.0)  # redelivered: its pane has it, its snapshot does not
    [panes] = again.windows["engagement_update"].panes.values()
    [agg] = panes.values()
    assert (agg.summary(60.0)["updates"], agg.summary(60.0)["views_gained"]) == (2, 50)  # not 100
    [snapshot] = again.snapshots.values()
    assert snapshot.counters["views"] == 150 and snapshot.offsets == {"src:0": 1}
    # and the next update gains from 150
    third = _rows("engagement_update", [{**updates[1], "update_id": str(uuid.uuid4()), "views": 170,
                                         "recorded_at": datetime.fromtimestamp(1010, UTC).isoformat()}])
    [(_, _, msg)] = window_messages("engagement_update", third, [0], [Msg("src", 0, 2, None, b"")], 4)
    stage.fold(again, orjson.loads(msg), now=0.0)
    [panes] = again.windows["engagement_update"].panes.values()
    assert sum(a.summary(60.0)["views_gained"] for a in panes.values()) == 70


def test_a_partition_whose_fetched_messages_never_reached_the_stage_is_sought_back():
    """Faust can drop messages it fetched around a recovery while its consumer's position moves on
    (seen in test_close_crash: the closer of one partition never arrived). Once the stage has been
    idle, each window-input partition whose end lies beyond what it received is sought back."""
    import time

    from aiokafka import TopicPartition

    stage = _stage()
    stage.input = types.SimpleNamespace(get_topic_name=lambda: "wi")
    sought: list[tuple[int, int]] = []

    async def seek(tp, offset):
        sought.append((tp.partition, offset))

    tps = [TopicPartition("wi", p) for p in range(4)] + [TopicPartition("other", 0)]
    ends = {0: 5, 1: 4, 2: 2, 3: 0}
    consumer = types.SimpleNamespace(
        assignment=lambda: set(tps), highwater=lambda tp: ends.get(tp.partition, 99),
        _committed_offset={tps[0]: 3, tps[1]: 2, tps[2]: 1}, seek=seek, earliest_offsets=_earliest({}))
    stage.app = types.SimpleNamespace(rebalancing=False, consumer=consumer,
                                      flow_control=types.SimpleNamespace(is_active=lambda: True))
    stage._received, stage._last_received = {0: 4, 2: 1}, time.monotonic()
    stage._reseeking, stage._reseek_at = {}, {}

    assert asyncio.run(stage.resume_undelivered(10.0)) == []  # not idle yet
    stage._last_received -= 11
    got = asyncio.run(stage.resume_undelivered(10.0))
    # 0: received up to its end (4 of 0..4); 1: nothing received, committed 2 of 4; 2: received 1 of
    # 0..1; 3: empty
    assert sorted(got) == [(1, 2, 4)] and sought == [(1, 2)]
    assert asyncio.run(stage.resume_undelivered(10.0)) == []  # and not again at once


def test_a_message_past_a_hole_seeks_its_partition_back_and_waits_for_the_missing_one():
    from aiokafka import TopicPartition

    stage = _stage()
    tp = TopicPartition("wi", 1)
    sought: list[int] = []

    async def seek(_tp, offset):
        sought.append(offset)

    earliest = {}
    stage.app = types.SimpleNamespace(consumer=types.SimpleNamespace(
        _committed_offset={tp: 5}, seek=seek, earliest_offsets=_earliest(earliest)))
    stage._received, stage._reseeking, stage._reseek_at = {}, {}, {}
    msg = lambda offset: types.SimpleNamespace(partition=1, offset=offset, tp=tp)  # noqa: E731

    async def deliver(offsets):
        return [await stage._in_order(msg(o)) for o in offsets]

    # 5, 6 in order; 8 skips 7: sought back to 7, and 8, 9 passed over until 7 comes; then in order
    assert asyncio.run(deliver([5, 6, 8, 9, 7, 8, 9])) == [True, True, False, False, True, True, True]
    assert sought == [7]
    # after a recovery the first expected is the committed offset
    stage._received = {}
    stage.app.consumer._committed_offset[tp] = 20
    assert asyncio.run(deliver([21])) == [False] and sought == [7, 20]
    # offsets deleted by retention are gone: it goes on from the earliest there is
    stage._received, stage._reseeking = {}, {}
    stage.app.consumer._committed_offset[tp] = 30
    earliest[tp] = 40
    assert asyncio.run(deliver([40, 41])) == [True, True] and sought == [7, 20]
    stage._received, stage._reseeking = {}, {}
    assert asyncio.run(deliver([42, 40])) == [False, True] and sought == [7, 20, 40]


def test_a_seek_back_that_faust_undid_is_repeated_while_other_partitions_keep_the_stage_busy():
    import time

    from aiokafka import TopicPartition

    stage = _stage()
    stage.input = types.SimpleNamespace(get_topic_name=lambda: "wi")
    tps = [TopicPartition("wi", 0), TopicPartition("wi", 1)]
    sought: list[tuple[int, int]] = []

    async def seek(tp, offset):
        sought.append((tp.partition, offset))

    consumer = types.SimpleNamespace(assignment=lambda: set(tps), highwater=lambda tp: 50, _committed_offset={},
                                     seek=seek, earliest_offsets=_earliest({}))
    stage.app = types.SimpleNamespace(rebalancing=False, consumer=consumer,
                                      flow_control=types.SimpleNamespace(is_active=lambda: True))
    now = time.monotonic()
    stage._received, stage._last_received = {0: 49, 1: 20}, now  # partition 0 busy, not idle
    stage._reseeking, stage._reseek_at = {1: 7}, {1: now}
    assert asyncio.run(stage.resume_undelivered(10.0)) == []  # sought just now
    stage._reseek_at[1] -= 11
    assert asyncio.run(stage.resume_undelivered(10.0)) == [(1, 7, 50)] and sought == [(1, 7)]


def _earliest(offsets: dict):
    async def earliest_offsets(*tps):
        return {tp: offsets[tp] for tp in tps if tp in offsets}
    return earliest_offsets


def test_an_hour_marked_again_while_it_is_recomputed_stays_pending():
    """A backfill's late events keep marking hours while the stage recomputes them; rows stored
    during a recompute may be missed by its query, so an hour marked meanwhile is done again (the
    90-day backfill test lost 1,125 of 20,182 windows when the second mark was cleared with the first)."""
    stage = _stage()
    stage.app = types.SimpleNamespace(rebalancing=False)
    stage.settings = Settings(recompute_max_hours=24)
    st = stage.states[0] = stage.new_state()
    st.windows["performance_sample"].closed_horizon = 10 * 3600.0
    key = ("performance_sample", WS_A)
    st.recompute[key] = {0.0, 3600.0}
    st.remarked = {("performance_sample", WS_A, 0.0), ("performance_sample", WS_A, 3600.0)}
    stage.report_recompute = lambda: None
    computed: list[list[float]] = []

    async def recompute_hours(kind, workspace, hours, horizon):
        computed.append(list(hours))
        if len(computed) == 1:  # meanwhile, late events of hour 1 arrive (fold marks it again)
            st.recompute[key].add(3600.0)
            st.remarked.add(("performance_sample", WS_A, 3600.0))
        return len(hours)

    stage._recompute_hours = recompute_hours
    asyncio.run(stage.recompute())
    assert st.recompute == {key: {3600.0}}  # hour 0 done; hour 1 marked again during its compute
    asyncio.run(stage.recompute())
    assert computed == [[0.0, 3600.0], [3600.0]] and st.recompute == {} and st.remarked == set()
