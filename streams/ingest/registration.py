"""Events for a workspace that is not registered (migration 0013's workspaces table).

`auto`: the workspace is registered on first sight (registration 'auto'), in its own statement before
the batch is written, so every stored row names a registered workspace. `registered`: the events are
dead-lettered with reason unknown_workspace and the rest of the batch is written. Known workspaces are
cached per worker; only ids not seen before cost a query.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import asyncpg

from db.workspaces import existing_workspaces, register_workspaces

Mode = Literal["auto", "registered"]


class WorkspaceRegistry:
    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self._known: set[UUID] = set()

    def all_known(self, ids: set[UUID]) -> bool:
        return ids <= self._known

    async def unknown(self, conn: asyncpg.Connection, ids: set[UUID]) -> set[UUID]:
        """Of `ids`, those whose events may not be stored (always empty in mode auto)."""
        new = ids - self._known
        if not new:
            return set()
        if self.mode == "auto":
            await register_workspaces(conn, list(new))
            self._known |= new
            return set()
        found = await existing_workspaces(conn, list(new))
        self._known |= found
        return new - found
