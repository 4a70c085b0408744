"""Events for a workspace that is not registered (migration 0013's workspaces table).

`auto`: the workspace is registered on first sight (registration 'auto'), in its own statement before
the batch is written, so every stored row names a registered workspace. `registered`: the events are
dead-lettered with reason unknown_workspace and the rest of the batch is written. Known workspaces are
cached per worker, the MAX_CACHED most recently seen (memory does not grow with the number of
workspaces ever seen: #23 item 12); only ids not in the cache cost a query.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal
from uuid import UUID

import asyncpg

from db.workspaces import existing_workspaces, register_workspaces

Mode = Literal["auto", "registered"]

#: workspaces a worker remembers as registered (least recently seen forgotten first)
MAX_CACHED = 50_000


class WorkspaceRegistry:
    def __init__(self, mode: Mode, max_cached: int = MAX_CACHED) -> None:
        self.mode = mode
        self._max = max_cached
        self._known: OrderedDict[UUID, None] = OrderedDict()

    def __len__(self) -> int:
        """Workspaces remembered now (at most max_cached)."""
        return len(self._known)

    def all_known(self, ids: set[UUID]) -> bool:
        known = self._known
        if not all(i in known for i in ids):
            return False
        for i in ids:
            known.move_to_end(i)
        return True

    def _remember(self, ids: set[UUID]) -> None:
        known = self._known
        for i in ids:
            known[i] = None
            known.move_to_end(i)
        while len(known) > self._max:
            known.popitem(last=False)

    async def unknown(self, conn: asyncpg.Connection, ids: set[UUID]) -> set[UUID]:
        """Of `ids`, those whose events may not be stored (always empty in mode auto)."""
        new = {i for i in ids if i not in self._known}
        if not new:
            return set()
        if self.mode == "auto":
            await register_workspaces(conn, list(new))
            self._remember(new)
            return set()
        found = await existing_workspaces(conn, list(new))
        self._remember(set(found))
        return new - set(found)
