"""Memory bounded with many tenants (issue #23 item 12): what the window stage holds for a series
or a workspace is released once its windows have closed; engagement snapshots are bounded by count
as well as by time; a message or changelog value is held in no more memory than its length.
The same with a live worker and its RSS: `learnstream bench --soak-tenants N` (docs/bench.md)."""

from __future__ import annotations

import asyncio
import tracemalloc
import uuid

import orjson

from streams import memory
from streams.sizing import compact, fits, pack
from streams.windows import state as windows_state
from streams.windows.panes import WindowSpec
from tests.unit.windows.test_stage import _stage

SPECS = (WindowSpec(60, None, 10), WindowSpec(300, 60, 10))
T0 = 1_700_000_000.0


def _batch(kind: str, workspace: str, offset: int, t: float, post: str = "p") -> dict:
    event_id = str(uuid.uuid4())
    if kind == "performance_sample":
        item = [[0, offset], t, [event_id, "lat", {"host": "a"}, 1.5]]
    elif kind == "learning_event":
        item = [[0, offset], t, [event_id, "quiz", "lms", 120], False]
    else:
        item = [[0, offset], t, [event_id, post, "youtube", None, 10 * offset, 1, 0, 0, 0]]
    return {"k": kind, "w": workspace, "t": f"src-{kind}", "i": [item]}


def test_the_window_stage_keeps_nothing_of_1000_tenants_once_their_windows_closed():
    """Each of 1,000 workspaces sends one event of each kind; once every window closed and the
    stage flushed, no structure of the state, nor the table, holds anything of them (the
    engagement snapshots are kept: they live by SNAPSHOT_TTL_S and SNAPSHOT_MAX)."""
    stage = _stage()
    stage.specs = SPECS

    async def emitted(rollups):
        emitted.count += len(rollups)

    emitted.count = 0
    stage._emit = emitted
    partition = 0
    state = stage.states[partition] = windows_state.new_state(SPECS, 10.0)
    for i in range(1000):
        workspace = str(uuid.UUID(int=i + 1))
        for kind in windows_state.AGGREGATES:
            stage.fold(state, _batch(kind, workspace, i, T0 + i * 0.01), now=T0 + 20)

    async def run() -> None:
        stage._lock = asyncio.Lock()
        await stage.flush()
        assert sum(len(p) for w in state.windows.values() for p in w.panes.values()) == 3000
        assert len([k for k in stage.table.data if b"|g|" in k]) == 3000
        await stage._close(partition, state, wall_now=T0 + 20 + 10 + 400)  # quiet: the wall clock closes them
        await stage.flush()

    asyncio.run(run())

    assert emitted.count == 3000 * 6  # one tumbling and five hopping windows per series
    for windower in state.windows.values():
        assert windower.panes == {} and windower.dropped == [] and windower._ready == []
        assert len(windower._first_close) <= 4097
    assert state.offsets == {} and state.pane_groups == {} and state.recompute == {}
    assert state.dirty_panes == set() and state.dirty_recompute == set()
    assert set(state.record_parts) == {windows_state.snapshots_key(partition, b) for b in state.snapshot_buckets}
    assert [k for k in stage.table.data if b"|g|" in k] == []  # the pane records are gone, locally too
    assert len(state.snapshots) == 1000


def test_engagement_snapshots_are_bounded_by_count_oldest_first():
    state = windows_state.new_state(SPECS, 10.0)
    for i in range(120):
        windows_state.fold(state, _batch("engagement_update", "w1", i, T0 + i, post=f"post-{i}"), T0 + 200, 300)
    assert len(state.snapshots) == 120
    rewrite = windows_state.forget_excess_snapshots(state, limit=100)
    assert len(state.snapshots) == 100
    kept = {series for _, series in state.snapshots}
    assert all(orjson.loads(s)["content_id"] not in {f"post-{i}" for i in range(20)} for s in kept)
    assert rewrite and {w for w, _ in rewrite} == {"w1"}
    for bucket in rewrite:  # rewriting a bucket forgets its members without a snapshot
        windows_state.snapshots_value(state, bucket)
    assert sum(len(m) for m in state.snapshot_buckets.values()) == 100
    assert windows_state.forget_excess_snapshots(state, limit=100) == set()


def test_values_made_to_be_kept_hold_no_more_memory_than_their_length():
    """orjson's output sits in a buffer of at least 4 KB: a 200-byte changelog record or message
    held for long cost 20 times its size. What pack and fits return is compact."""
    items = [{"n": i, "text": "x" * 150} for i in range(1000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        packed = [data for item in items for _, data in pack([item], orjson.dumps, 10_000)]
        fitted = [fits(item, 10_000) for item in items]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    size = sum(map(len, packed)) + sum(map(len, fitted))
    assert held < size + 2000 * 100, (held, size)  # ~40 bytes of object header each, and the lists
    assert compact(b"abc") == b"abc"


def test_freed_memory_is_given_back_where_the_c_library_can():
    assert memory.release() in (True, False)
    import platform

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert memory.release() is True
