"""The bytes the window stage writes and reads back across an upgrade, pinned.

The window-input topic carries stored events from the ingest side to the window stage, and the
changelog of the `windows` table is restored after a restart or an upgrade: a worker of the new
code must read what the old one wrote, byte for byte. The expected values below were produced by
the code as it was before the stage was split into input.py / state.py / stage.py (issue 21), and
must not be regenerated to make a change pass: a change here is a change of a stored format.
Window-input messages and the relayed command are pinned byte for byte. Changelog records are
pinned by key and by value in canonical form (see `_pinned`: the order of a record's entries
follows set iteration, which varies from one process to the next even before the split), those
holding a quantile sketch by the SHA-256 of that form; and restoring the records must rebuild the
state that wrote them.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import types
import uuid
from collections import namedtuple
from datetime import UTC, datetime

import orjson

from db.tables import TABLES
from schemas.alerts import AlertCommand
from streams.config import Settings
from streams.windows.input import command_message, parse_input, window_messages
from streams.windows.panes import WindowSpec
from streams.windows.stage import WindowStage
from streams.windows.state import record_writes, restore

Msg = namedtuple("Msg", "topic partition offset key value")
WS = uuid.UUID(int=1)
PARTITION = 3


def _uuid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _row(kind: str, **values) -> tuple:
    """A stored row of `kind` (the columns not given are NULL)."""
    return tuple(values.get(c) for c in TABLES[kind].columns)


PERFORMANCE = [
    _row("performance_sample", id=_uuid(100 + i), workspace_id=WS, metric_name="lat", timestamp=_ts(t), value=v,
         tags={"host": host})
    for i, (t, v, host) in enumerate([(1000, 1.5, "a"), (1010.25, 2.0, "b"), (1065, 3.0, "a")])
]
LEARNING = [
    _row("learning_event", id=_uuid(200 + i), workspace_id=WS, event_type="prediction", event_subtype=subtype,
         timestamp=_ts(t), source_system=system, processing_time_ms=ms, event_data=data)
    for i, (t, subtype, system, ms, data) in enumerate([
        (1001, None, "tutor", 12, {}), (1002, "error", None, None, {}), (1070, None, "tutor", 30, {"error": "x"})])
]
ENGAGEMENT = [
    _row("engagement_update", id=_uuid(300 + i), workspace_id=WS, content_id=_uuid(7), platform="x",
         connector_id=connector, recorded_at=_ts(t), views=views, likes=likes, shares=0, comments=2, saves=0)
    for i, (t, views, likes, connector) in enumerate([(1003, 100, 1, None), (1033, 150, 4, "scraper"),
                                                      (1063, 120, 5, None)])
]
SOURCES = [Msg("src", 3, 40, None, b""), Msg("src", 5, 7, None, b"")]

# -- window-input ------------------------------------------------------------------------------

WINDOW_INPUT = {
    "performance_sample": (
        b'{"k":"performance_sample","w":"00000000-0000-0000-0000-000000000001","t":"src","i":['
        b'[[3,40],1000.0,["00000000-0000-0000-0000-000000000064","lat",{"host":"a"},1.5]],'
        b'[[5,7],1010.25,["00000000-0000-0000-0000-000000000065","lat",{"host":"b"},2.0]],'
        b'[[3,40],1065.0,["00000000-0000-0000-0000-000000000066","lat",{"host":"a"},3.0]]]}'),
    "learning_event": (
        b'{"k":"learning_event","w":"00000000-0000-0000-0000-000000000001","t":"src","i":['
        b'[[3,40],1001.0,["00000000-0000-0000-0000-0000000000c8","prediction","tutor",12],false],'
        b'[[5,7],1002.0,["00000000-0000-0000-0000-0000000000c9","prediction",null,null],true],'
        b'[[3,40],1070.0,["00000000-0000-0000-0000-0000000000ca","prediction","tutor",30],true]]}'),
    "engagement_update": (
        b'{"k":"engagement_update","w":"00000000-0000-0000-0000-000000000001","t":"src","i":['
        b'[[3,40],1003.0,["00000000-0000-0000-0000-00000000012c","00000000-0000-0000-0000-000000000007","x",null,'
        b'100,1,0,2,0]],'
        b'[[5,7],1033.0,["00000000-0000-0000-0000-00000000012d","00000000-0000-0000-0000-000000000007","x","scraper",'
        b'150,4,0,2,0]],'
        b'[[3,40],1063.0,["00000000-0000-0000-0000-00000000012e","00000000-0000-0000-0000-000000000007","x",null,'
        b'120,5,0,2,0]]]}'),
}
ROWS = {"performance_sample": PERFORMANCE, "learning_event": LEARNING, "engagement_update": ENGAGEMENT}


def test_window_input_encoding_is_pinned():
    for kind, rows in ROWS.items():
        out = window_messages(kind, rows, [0, 1, 0], SOURCES, 4)
        assert out == [(PARTITION, str(WS).encode(), WINDOW_INPUT[kind])], kind


def test_a_relayed_alert_command_is_pinned():
    # (pinned from the code before the split, as relay_command sent it)
    command = AlertCommand.model_validate({
        "command": "mute", "workspace_id": str(WS), "rule_id": str(_uuid(9)), "until": "2026-12-07T10:00:00+00:00",
        "by": "ops", "issued_at": "2026-12-06T21:00:00.5+00:00"})
    assert command_message(command, 4) == (PARTITION, str(WS).encode(), (
        b'{"cmd":{"command":"mute","workspace_id":"00000000-0000-0000-0000-000000000001","fingerprint":null,'
        b'"rule_id":"00000000-0000-0000-0000-000000000009","until":"2026-12-07T10:00:00Z","by":"ops",'
        b'"issued_at":"2026-12-06T21:00:00.500000Z"}}'))
    assert parse_input(command_message(command, 4)[2]) == {"cmd": command.model_dump(mode="json")}


def test_window_input_decodes_to_the_fields_it_was_made_of():
    msg = parse_input(WINDOW_INPUT["performance_sample"])
    assert (msg["k"], msg["w"], msg["t"]) == ("performance_sample", str(WS), "src")
    assert msg["i"] == [
        ((3, 40), 1000.0, (str(_uuid(100)), "lat", {"host": "a"}, 1.5)),
        ((5, 7), 1010.25, (str(_uuid(101)), "lat", {"host": "b"}, 2.0)),
        ((3, 40), 1065.0, (str(_uuid(102)), "lat", {"host": "a"}, 3.0)),
    ]
    msg = parse_input(WINDOW_INPUT["learning_event"])
    assert msg["i"] == [
        ((3, 40), 1001.0, (str(_uuid(200)), "prediction", "tutor", 12), False),
        ((5, 7), 1002.0, (str(_uuid(201)), "prediction", None, None), True),
        ((3, 40), 1070.0, (str(_uuid(202)), "prediction", "tutor", 30), True),
    ]
    msg = parse_input(WINDOW_INPUT["engagement_update"])
    assert msg["i"] == [
        ((3, 40), 1003.0, (str(_uuid(300)), str(_uuid(7)), "x", None, 100, 1, 0, 2, 0)),
        ((5, 7), 1033.0, (str(_uuid(301)), str(_uuid(7)), "x", "scraper", 150, 4, 0, 2, 0)),
        ((3, 40), 1063.0, (str(_uuid(302)), str(_uuid(7)), "x", None, 120, 5, 0, 2, 0)),
    ]


# -- the changelog -----------------------------------------------------------------------------
# The stage without Faust: the table is a dict and a list of the records sent to its changelog.


def _stage() -> WindowStage:
    stage = WindowStage.__new__(WindowStage)
    stage.settings = Settings(window_tumbling_s=60, window_hopping_s=120, window_hop_step_s=60, window_grace_s=0)
    stage.specs = (WindowSpec(60), WindowSpec(120, 60))
    sent: list[tuple] = []
    stage.table = types.SimpleNamespace(data={}, send_changelog=lambda p, k, v, **kw: sent.append((p, k, v)))
    stage.sent = sent
    stage.states, stage._acks = {}, []
    stage.budgets = {"input": 999_000, "late": 999_000, "rollups": 999_000, "changelog": 999_000}
    stage.max_future_s, stage.earliest = 300.0, 946684800.0
    stage.partitions = 4
    stage.app = types.SimpleNamespace(rebalancing=False)
    stage._lock = asyncio.Lock()
    stage.emitted = []

    async def emit(rollups):
        stage.emitted.extend(rollups)

    stage._emit = emit
    return stage


def _messages(kind: str, rows: list[tuple], origin: list[int], sources: list) -> list[dict]:
    out = []
    for partition, _, value in window_messages(kind, rows, origin, sources, 4):
        assert partition == PARTITION
        out.append(parse_input(value))
    return out


def _pinned(records: list[tuple]) -> list[tuple]:
    """(partition, key, value) with the value in canonical form: its JSON re-encoded with the keys
    of every object sorted (numbers as written: 1063.0 stays a float). The entries of a record
    holding several series or sources follow set iteration order, which varies from one process
    to the next; the reader does not depend on it. A long value is pinned by its SHA-256."""
    out = []
    for p, k, v in records:
        if v is not None:
            v = orjson.dumps(orjson.loads(v), option=orjson.OPT_SORT_KEYS)
            if len(v) > 400:
                v = "sha256:" + hashlib.sha256(v).hexdigest()
        out.append((p, k, v))
    return out


def scenario() -> tuple[WindowStage, dict]:
    """Fold the sample of each kind, flush; move the watermark on and close what that closed; fold
    an event late for two windows, flush. Returns the stage and what each step sent."""
    stage = _stage()
    st = stage.states[PARTITION] = stage.new_state()
    out: dict = {"late": []}
    for kind, rows in ROWS.items():
        for msg in _messages(kind, rows, [0, 1, 0], SOURCES):
            out["late"] += stage.fold(st, msg, 2000.0)
    asyncio.run(stage.flush())
    out["flush"], stage.sent[:] = list(stage.sent), []
    later = [_row("performance_sample", id=_uuid(110), workspace_id=WS, metric_name="lat", timestamp=_ts(1150),
                  value=9.0, tags={"host": "a"})]
    for msg in _messages("performance_sample", later, [0], [Msg("src", 3, 41, None, b"")]):
        out["late"] += stage.fold(st, msg, 2000.0)
    asyncio.run(stage.close_due(caught_up=False))
    out["close"], stage.sent[:] = list(stage.sent), []
    late = [_row("learning_event", id=_uuid(210), workspace_id=WS, event_type="prediction", timestamp=_ts(1005),
                 source_system="tutor", processing_time_ms=5, event_data={})]
    for msg in _messages("learning_event", late, [0], [Msg("src", 3, 42, None, b"")]):
        out["late"] += stage.fold(st, msg, 2000.0)
    asyncio.run(stage.flush())
    out["flush2"], stage.sent[:] = list(stage.sent), []
    return stage, out


# what each step of the scenario sent to the changelog (the flushes: in key order)
FLUSH = [
    (3, b'3|c',
     b'{"engagement_update":[1063.0,1063.0],"learning_event":[1070.0,1070.0],"performance_sample":[1065.0,1065.0]}'),
    (3, b'3|g|engagement_update|00000000-0000-0000-0000-000000000001|1020.0',
     'sha256:a881749e1ae17bc574048cb96f7510baa50be488b80c53a406d5495f9d17a59c'),
    (3, b'3|g|engagement_update|00000000-0000-0000-0000-000000000001|960.0',
     (b'{"{\\"connector_id\\":null,\\"content_id\\":\\"00000000-0000-0000-0000-000000000007\\"'
      b',\\"platform\\":\\"x\\"}":{"a":"{\\"u\\":1,\\"d\\":{\\"views\\":0,\\"likes\\":0,\\"shares\\":0'
      b',\\"comments\\":0,\\"saves\\":0},\\"r\\":0,\\"t\\":1003.0,\\"l\\":{\\"views\\":100,\\"likes\\"'
      b':1,\\"shares\\":0,\\"comments\\":2,\\"saves\\":0}}","u":{"src:3":40}}}')),
    (3, b'3|g|learning_event|00000000-0000-0000-0000-000000000001|1020.0',
     'sha256:8f93c72ac860c14da8bd65f2dddbd7e25bbe4ed7b231360b2083d5e31844f304'),
    (3, b'3|g|learning_event|00000000-0000-0000-0000-000000000001|960.0',
     'sha256:c8ad059b584babc03ba95adbbec0e14df776afba3310a4389d7e2a5d1bd78f1a'),
    (3, b'3|g|performance_sample|00000000-0000-0000-0000-000000000001|1020.0',
     'sha256:8025cbaf6ee4b5d3061b5e2306139bf5416dccaa2c976019aa24f94705da8044'),
    (3, b'3|g|performance_sample|00000000-0000-0000-0000-000000000001|960.0',
     'sha256:10e0b1eb267fa955917d33e663b0dd1a527c0ff86bd2370e87ec597c8f8fe270'),
    (3, b'3|s|00000000-0000-0000-0000-000000000001|22',
     (b'{"{\\"connector_id\\":\\"scraper\\",\\"content_id\\":\\"00000000-0000-0000-0000-0000000'
      b'00007\\",\\"platform\\":\\"x\\"}":{"c":{"comments":2,"likes":4,"saves":0,"shares":0,"'
      b'views":150},"t":1033.0,"u":{"src:5":7}}}')),
    (3, b'3|s|00000000-0000-0000-0000-000000000001|54',
     (b'{"{\\"connector_id\\":null,\\"content_id\\":\\"00000000-0000-0000-0000-000000000007\\"'
      b',\\"platform\\":\\"x\\"}":{"c":{"comments":2,"likes":5,"saves":0,"shares":0,"views":'
      b'120},"t":1063.0,"u":{"src:3":40}}}')),
]
CLOSE = [
    (3, b'3|c',
     b'{"engagement_update":[1063.0,1063.0],"learning_event":[1070.0,1070.0],"performance_sample":[1150.0,1150.0]}'),
    (3, b'3|g|performance_sample|00000000-0000-0000-0000-000000000001|1020.0',
     None),
    (3, b'3|g|performance_sample|00000000-0000-0000-0000-000000000001|960.0',
     None),
]
FLUSH2 = [
    (3, b'3|c',
     b'{"engagement_update":[1063.0,1063.0],"learning_event":[1070.0,1070.0],"performance_sample":[1150.0,1150.0]}'),
    (3, b'3|g|learning_event|00000000-0000-0000-0000-000000000001|960.0',
     'sha256:4b45af417e6aa0d8e10f5138ca0b172876bae965acead5c243a146e01593cb78'),
    (3, b'3|g|performance_sample|00000000-0000-0000-0000-000000000001|1140.0',
     'sha256:e2f6972aad26c8f55b4c47be26d75e804347e0aed5124502085dc6b625e553b6'),
    (3, b'3|r|learning_event|00000000-0000-0000-0000-000000000001',
     b'{"0.0":1}'),
]
# the late-events items of the event late for two windows (LateEvent)
LATE_EVENTS = [{'kind': 'learning_event',
                'workspace_id': '00000000-0000-0000-0000-000000000001',
                'event_id': '00000000-0000-0000-0000-0000000000d2',
                'event_time': '1970-01-01T00:16:45+00:00',
                'source_topic': 'src',
                'partition': 3,
                'offset': 42,
                'watermark': '1970-01-01T00:17:50+00:00',
                'missed': [{'window_s': 60, 'step_s': 60, 'window_start': '1970-01-01T00:16:00+00:00'},
                           {'window_s': 120, 'step_s': 60, 'window_start': '1970-01-01T00:15:00+00:00'}],
                'received_at': '1970-01-01T00:33:20+00:00'}]
# the windows the scenario closed: (kind, series key, size, step, start, end, stats)
ROLLUPS = [
    ('performance_sample',
     '{"metric_name":"lat","tags":{"host":"a"}}',
     60.0,
     60.0,
     960.0,
     1020.0,
     {'count': 1,
      'sum': 1.5,
      'min': 1.5,
      'max': 1.5,
      'mean': 1.5,
      'p50': 1.5067630358630413,
      'p95': 1.5067630358630413,
      'p99': 1.5067630358630413}),
    ('performance_sample',
     '{"metric_name":"lat","tags":{"host":"b"}}',
     60.0,
     60.0,
     960.0,
     1020.0,
     {'count': 1,
      'sum': 2.0,
      'min': 2.0,
      'max': 2.0,
      'mean': 2.0,
      'p50': 1.993661701417351,
      'p95': 1.993661701417351,
      'p99': 1.993661701417351}),
    ('performance_sample',
     '{"metric_name":"lat","tags":{"host":"a"}}',
     120.0,
     60.0,
     900.0,
     1020.0,
     {'count': 1,
      'sum': 1.5,
      'min': 1.5,
      'max': 1.5,
      'mean': 1.5,
      'p50': 1.5067630358630413,
      'p95': 1.5067630358630413,
      'p99': 1.5067630358630413}),
    ('performance_sample',
     '{"metric_name":"lat","tags":{"host":"b"}}',
     120.0,
     60.0,
     900.0,
     1020.0,
     {'count': 1,
      'sum': 2.0,
      'min': 2.0,
      'max': 2.0,
      'mean': 2.0,
      'p50': 1.993661701417351,
      'p95': 1.993661701417351,
      'p99': 1.993661701417351}),
    ('performance_sample',
     '{"metric_name":"lat","tags":{"host":"a"}}',
     60.0,
     60.0,
     1020.0,
     1080.0,
     {'count': 1,
      'sum': 3.0,
      'min': 3.0,
      'max': 3.0,
      'mean': 3.0,
      'p50': 2.974233423476717,
      'p95': 2.974233423476717,
      'p99': 2.974233423476717}),
    ('performance_sample',
     '{"metric_name":"lat","tags":{"host":"a"}}',
     120.0,
     60.0,
     960.0,
     1080.0,
     {'count': 2,
      'sum': 4.5,
      'min': 1.5,
      'max': 3.0,
      'mean': 2.25,
      'p50': 1.5067630358630413,
      'p95': 1.5067630358630413,
      'p99': 1.5067630358630413}),
    ('performance_sample',
     '{"metric_name":"lat","tags":{"host":"b"}}',
     120.0,
     60.0,
     960.0,
     1080.0,
     {'count': 1,
      'sum': 2.0,
      'min': 2.0,
      'max': 2.0,
      'mean': 2.0,
      'p50': 1.993661701417351,
      'p95': 1.993661701417351,
      'p99': 1.993661701417351}),
    ('performance_sample',
     '{"metric_name":"lat","tags":{"host":"a"}}',
     120.0,
     60.0,
     1020.0,
     1140.0,
     {'count': 1,
      'sum': 3.0,
      'min': 3.0,
      'max': 3.0,
      'mean': 3.0,
      'p50': 2.974233423476717,
      'p95': 2.974233423476717,
      'p99': 2.974233423476717}),
    ('learning_event',
     '{"event_type":"prediction","source_system":"tutor"}',
     60.0,
     60.0,
     960.0,
     1020.0,
     {'count': 1,
      'errors': 0,
      'error_rate': 0.0,
      'processing_ms_mean': 12.0,
      'processing_ms_p50': 12.06167417903937,
      'processing_ms_p95': 12.06167417903937,
      'processing_ms_p99': 12.06167417903937,
      'processing_ms_max': 12.0}),
    ('learning_event',
     '{"event_type":"prediction","source_system":null}',
     60.0,
     60.0,
     960.0,
     1020.0,
     {'count': 1,
      'errors': 1,
      'error_rate': 1.0,
      'processing_ms_mean': None,
      'processing_ms_p50': None,
      'processing_ms_p95': None,
      'processing_ms_p99': None,
      'processing_ms_max': None}),
    ('learning_event',
     '{"event_type":"prediction","source_system":"tutor"}',
     120.0,
     60.0,
     900.0,
     1020.0,
     {'count': 1,
      'errors': 0,
      'error_rate': 0.0,
      'processing_ms_mean': 12.0,
      'processing_ms_p50': 12.06167417903937,
      'processing_ms_p95': 12.06167417903937,
      'processing_ms_p99': 12.06167417903937,
      'processing_ms_max': 12.0}),
    ('learning_event',
     '{"event_type":"prediction","source_system":null}',
     120.0,
     60.0,
     900.0,
     1020.0,
     {'count': 1,
      'errors': 1,
      'error_rate': 1.0,
      'processing_ms_mean': None,
      'processing_ms_p50': None,
      'processing_ms_p95': None,
      'processing_ms_p99': None,
      'processing_ms_max': None}),
    ('engagement_update',
     '{"connector_id":null,"content_id":"00000000-0000-0000-0000-000000000007","platform":"x"}',
     60.0,
     60.0,
     960.0,
     1020.0,
     {'updates': 1,
      'resets': 0,
      'views_gained': 0,
      'likes_gained': 0,
      'shares_gained': 0,
      'comments_gained': 0,
      'saves_gained': 0,
      'velocity_per_min': 0.0,
      'engagement_rate': 0.03}),
    ('engagement_update',
     '{"connector_id":null,"content_id":"00000000-0000-0000-0000-000000000007","platform":"x"}',
     120.0,
     60.0,
     900.0,
     1020.0,
     {'updates': 1,
      'resets': 0,
      'views_gained': 0,
      'likes_gained': 0,
      'shares_gained': 0,
      'comments_gained': 0,
      'saves_gained': 0,
      'velocity_per_min': 0.0,
      'engagement_rate': 0.03}),
]


SPLIT = [(3, b"3|r|learning_event|00000000-0000-0000-0000-000000000001", 115),
         (3, b"3|r|learning_event|00000000-0000-0000-0000-000000000001|1", 121),
         (3, b"3|r|learning_event|00000000-0000-0000-0000-000000000001|2", 123),
         (3, b"3|r|learning_event|00000000-0000-0000-0000-000000000001|3", 131)]
SPLIT_BYTES = (
    b'{"0.0":1,"3600.0":1,"7200.0":1,"10800.0":1,"14400.0":1,"18000.0":1,"21600.0":1,"25200.0":1,"28800.0":1,'
    b'"32400.0":1}{"36000.0":1,"39600.0":1,"43200.0":1,"46800.0":1,"50400.0":1,"54000.0":1,"57600.0":1,'
    b'"61200.0":1,"64800.0":1,"68400.0":1}{"72000.0":1,"75600.0":1,"79200.0":1,"82800.0":1,"86400.0":1,'
    b'"90000.0":1,"93600.0":1,"97200.0":1,"100800.0":1,"104400.0":1}{"108000.0":1,"111600.0":1,"115200.0":1,'
    b'"118800.0":1,"122400.0":1,"126000.0":1,"129600.0":1,"133200.0":1,"136800.0":1,"140400.0":1}')


def test_changelog_records_are_pinned():
    stage, out = scenario()
    assert sorted(_pinned(out["flush"]), key=lambda r: r[1]) == FLUSH
    # the clock before the tombstones: recovered with the clock but without a tombstone, a closed
    # window is not closed twice
    assert _pinned(out["close"]) == CLOSE
    assert sorted(_pinned(out["flush2"]), key=lambda r: r[1]) == FLUSH2
    assert out["late"] == LATE_EVENTS
    assert [(r.kind, r.series_key, r.window_s, r.step_s, r.window_start.timestamp(), r.window_end.timestamp(),
             r.stats) for r in stage.emitted] == ROLLUPS


def test_a_record_too_large_for_one_message_is_split_and_its_extra_parts_tombstoned_when_it_shrinks():
    st = _stage().new_state()
    key = f"{PARTITION}|r|learning_event|{WS}"
    writes = record_writes(st, key, {repr(h * 3600.0): 1 for h in range(40)}, 200)
    assert [(PARTITION, k.encode(), len(v)) for k, v in writes] == SPLIT
    assert b"".join(v for _, v in writes) == SPLIT_BYTES
    assert record_writes(st, key, {"0.0": 1}, 200) == [(key, b'{"0.0":1}')] + [(f"{key}|{n}", None) for n in (1, 2, 3)]
    assert record_writes(st, key, {}, 200) == [(key, None)]


def _recover(records: dict[bytes, bytes]) -> dict:
    """The states recovered from `records` (the table as Faust restored it) by a worker owning PARTITION."""
    return restore(records.items(), {PARTITION}, _stage().new_state, now=time.time(), earliest=0.0,  # times of 1970
                   max_future_s=300.0).states


def _summary(st) -> dict:
    """Everything a partition's state holds, comparable."""
    return {
        "clocks": {k: (w.watermark, w.closed_horizon) for k, w in st.windows.items()},
        "panes": {k: {key: {ps: agg.to_bytes() for ps, agg in panes.items()} for key, panes in w.panes.items()}
                  for k, w in st.windows.items()},
        "offsets": st.offsets, "snapshots": {k: (s.time, s.counters, s.offsets) for k, s in st.snapshots.items()},
        "snapshot_buckets": st.snapshot_buckets, "pane_groups": st.pane_groups, "recompute": st.recompute,
        "record_parts": st.record_parts,
    }


def test_the_changelog_restores_the_state_it_was_written_from():
    stage, _ = scenario()
    st = stage.states[PARTITION]
    key = f"{PARTITION}|r|engagement_update|{WS}"  # and a record split over several
    for k, v in record_writes(st, key, {repr(h * 3600.0): 1 for h in range(40)}, 200):
        stage.table.data[k.encode()] = v
    st.recompute[("engagement_update", str(WS))] = {h * 3600.0 for h in range(40)}
    recovered = _recover(stage.table.data)
    assert list(recovered) == [PARTITION]
    assert _summary(recovered[PARTITION]) == _summary(st)
    assert recovered[PARTITION].record_parts[key] == 4
