"""The window-input wire format (issue #4): what the ingest side sends to the internal `window-input`
topic once a batch is stored, and what the window stage reads back, encoder and decoder side by side.

A message is one of
* a batch of one workspace's stored events of one kind (the key: the workspace id):
  `{"k": kind, "w": workspace id, "t": source topic, "i": [item, ...]}`, an item being the JSON
  array of an `*Item` below: `[[source partition, source offset], event time (epoch seconds),
  [event id, ...the kind's fields]]`, plus the error flag for a learning event;
* an alert command relayed from the `alert-commands` topic: `{"cmd": AlertCommand}`.

Guarantees:
* Every message of a workspace goes to the partition it hashes to (`workspace_partition`), so every
  series of a workspace, and every alert rule of it, lives on exactly one worker, whatever the
  producers' keys were.
* The bytes do not change: the topic carries data across upgrades, and a worker of new code reads
  what an old one wrote (pinned by tests/unit/windows/test_formats.py).
* `parse_input` validates whatever wrote the message, so folding it cannot fail half-way through on
  its content; a message that does not validate raises (the stage sets it aside).

The items are laid out as the NamedTuples below, which define the format (the encoder's columns and
the decoder's types come from them), but they travel and are decoded as plain tuples: pydantic
validates a tuple about three times faster than it builds a NamedTuple, and this is the hot path,
once per stored event. Read an item by unpacking it in field order, as `state.fold` does:
`(source_partition, offset), event_time, (event_id, metric_name, tags, value) = item`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from operator import itemgetter, methodcaller
from typing import Annotated, Any, Literal, NamedTuple, get_type_hints

import orjson
from pydantic import Field, TypeAdapter
from typing_extensions import TypedDict

from db.tables import TABLES
from schemas.alerts import AlertCommand
from streams.sizing import pack
from streams.windows.panes import is_learning_error

#: a number that may travel: finite (an event time, a sample's value)
Finite = Annotated[float, Field(allow_inf_nan=False)]


class Source(NamedTuple):
    """Where a stored event came from: its partition and offset in the source topic."""

    partition: int
    offset: int


# The event part of an item: the event id, then the fields its series and value come from (each
# named as its column in the kind's ingest table, the id being the table's first column, "id").


class PerformanceFields(NamedTuple):
    event_id: str
    metric_name: str
    tags: dict[str, str]
    value: Finite


class LearningFields(NamedTuple):
    event_id: str
    event_type: str
    source_system: str | None
    processing_time_ms: int | None


class EngagementFields(NamedTuple):
    event_id: str
    content_id: str
    platform: str
    connector_id: str | None
    # the cumulative counters, in panes.COUNTERS order
    views: int
    likes: int
    shares: int
    comments: int
    saves: int


class PerformanceItem(NamedTuple):
    source: Source
    time: Finite  # epoch seconds
    event: PerformanceFields


class LearningItem(NamedTuple):
    source: Source
    time: Finite  # epoch seconds
    event: LearningFields
    #: panes.is_learning_error of the stored event (its subtype and data do not travel)
    is_error: bool


class EngagementItem(NamedTuple):
    source: Source
    time: Finite  # epoch seconds
    event: EngagementFields


#: kind -> the layout of its items
ITEMS: dict[str, type[tuple]] = {
    "performance_sample": PerformanceItem,
    "learning_event": LearningItem,
    "engagement_update": EngagementItem,
}

#: an item's event time (the layouts all have it second)
item_time: Callable[[tuple], float] = itemgetter(1)


def workspace_partition(workspace_id: str, partitions: int) -> int:
    """The window-input partition of a workspace (CRC-32 of its text form)."""
    return zlib.crc32(workspace_id.encode()) % partitions


# -- encoding (the ingest side: stored rows -> window-input messages) --------------------------


def _event_getter(kind: str) -> Callable[[tuple], tuple]:
    """stored row -> the event part of its item, by a C-level itemgetter (orjson writes the UUIDs in C)."""
    columns = TABLES[kind].columns
    assert columns[0] == "id"
    fields = get_type_hints(ITEMS[kind])["event"]._fields
    return itemgetter(0, *(columns.index(f) for f in fields[1:]))


_EVENT_GETTERS = {kind: _event_getter(kind) for kind in ITEMS}
_TIMESTAMP = methodcaller("timestamp")


def window_messages(
    kind: str, rows: list[tuple], origin: list[int], messages: Sequence, partitions: int, budget: int = 999_488,
) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) window-input messages for the stored `rows` of one batch
    (`origin[i]`: the index in `messages` of the source message rows[i] came from), one per
    workspace, split to fit `budget`. Built with C-level map/zip/itemgetter: no Python code per
    row but a dict lookup when the batch holds several workspaces."""
    if not rows:
        return []
    columns = TABLES[kind].columns
    sources = [(m.partition, m.offset) for m in messages]
    events = map(_EVENT_GETTERS[kind], rows)
    wheres = map(sources.__getitem__, origin)
    times = map(_TIMESTAMP, map(itemgetter(TABLES[kind].time_index), rows))
    if kind == "learning_event":
        flags = map(is_learning_error, map(itemgetter(columns.index("event_subtype")), rows),
                    map(itemgetter(columns.index("event_data")), rows))
        items = list(zip(wheres, times, events, flags))
    else:
        items = list(zip(wheres, times, events))
    workspaces = list(map(itemgetter(columns.index("workspace_id")), rows))
    first = workspaces[0]
    if workspaces.count(first) == len(workspaces):
        by_workspace: dict[Any, list] = {first: items}
    else:
        by_workspace = {}
        for workspace, item in zip(workspaces, items):
            group = by_workspace.get(workspace)
            if group is None:
                group = by_workspace[workspace] = []
            group.append(item)
    topic = messages[0].topic
    out = []
    for workspace, group in by_workspace.items():
        workspace_id = str(workspace)
        partition = workspace_partition(workspace_id, partitions)
        key = workspace_id.encode()
        def encode(items, workspace_id=workspace_id):
            return orjson.dumps({"k": kind, "w": workspace_id, "t": topic, "i": items})

        for _, value in pack(group, encode, budget - len(key)):
            out.append((partition, key, value))
    return out


def command_message(command: AlertCommand, partitions: int) -> tuple[int, bytes, bytes]:
    """(partition, key, value): an alert command relayed to window-input on its workspace's partition."""
    workspace_id = str(command.workspace_id)
    return (workspace_partition(workspace_id, partitions), workspace_id.encode(),
            orjson.dumps({"cmd": command.model_dump(mode="json")}))


# -- decoding (the window stage) ----------------------------------------------------------------


def _as_tuple(layout: type[tuple]) -> Any:
    """The plain tuple type of a NamedTuple layout (nested layouts too), for validation."""
    hints = get_type_hints(layout, include_extras=True).values()
    return tuple[tuple(_as_tuple(t) if isinstance(t, type) and hasattr(t, "_fields") else t for t in hints)]


_ITEMS = {kind: TypeAdapter(list[_as_tuple(layout)]) for kind, layout in ITEMS.items()}


class WindowInput(TypedDict):
    """A decoded batch message (the wire's keys)."""

    #: the kind of its events
    k: Literal["performance_sample", "learning_event", "engagement_update"]
    #: the workspace id
    w: str
    #: the source topic (the items' partitions and offsets are in it)
    t: str
    #: the items, tuples laid out as ITEMS[k]
    i: list[Any]


_INPUT = TypeAdapter(WindowInput)


def parse_input(value: bytes) -> dict:
    """A window-input message: a WindowInput, validated (pydantic's ValidationError or orjson's
    JSONDecodeError: set it aside), or a command `{"cmd": ...}` as it is (validated by its reader)."""
    message = orjson.loads(value)
    if isinstance(message, dict) and "cmd" in message:
        return message
    message = _INPUT.validate_python(message)
    message["i"] = _ITEMS[message["k"]].validate_python(message["i"])
    return message
