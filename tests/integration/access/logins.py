"""Member logins of two workspaces for the access tests (each test file's `people` fixture)."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator

from db.pool import connect
from db.workspaces import add_workspace, grant_access
from tests.support import login_dsn


@contextlib.asynccontextmanager
async def member_logins(stack, people: list[tuple[str, int, str]]) -> AsyncIterator[tuple]:
    """Workspaces w1 and w2 and a login of its own for each (name, 1 or 2, workspace role) of
    `people`: yields (the owner's connection, w1, w2, {name: (role name, DSN)}); the memberships
    and logins are removed afterwards."""
    suffix = uuid.uuid4().hex[:8]
    owner = await connect(stack.dsn)
    w1 = (await add_workspace(owner, "one"))["id"]
    w2 = (await add_workspace(owner, "two"))["id"]
    roles = {}
    for name, which, role in people:
        roles[name] = (f"{name}_{suffix}", secrets.token_urlsafe(12))
        await grant_access(owner, roles[name][0], w1 if which == 1 else w2, role, roles[name][1])
    try:
        yield owner, w1, w2, {n: (r, login_dsn(stack.dsn, r, p)) for n, (r, p) in roles.items()}
    finally:
        await owner.close()
        admin = await connect(stack.dsn)
        try:
            await admin.execute("DELETE FROM workspace_members")
            for role, _ in roles.values():
                await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await admin.close()
