"""Workspaces, organizations and who may read them (migration 0013): the SQL of that table family.

A person or dashboard reading the database directly logs in as a role of its own, a member of
learnstream_member, mapped to workspaces by workspace_members; the tables' policies decide by that
mapping of current_user. Roles are named by the operator and checked here (a plain lower-case
identifier, not a project or system role), and every statement quotes them with format('%I').
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

import asyncpg

MEMBER_GROUP = "learnstream_member"
SERVICE_GROUP = "learnstream_service"
MAINTENANCE_ROLE = "learnstream_maintenance"
ROLES = ("viewer", "editor", "admin", "owner")
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_RESERVED = ("learnstream", "pg_", "postgres")


class AccessError(ValueError):
    """A request about workspaces or access that cannot be done; the message says why."""


def check_role_name(name: str) -> str:
    if not _ROLE_NAME.match(name):
        raise AccessError(f"{name!r}: a role name is lower-case letters, digits and _, starting with a letter or _ (1-63)")
    if name.startswith(_RESERVED):
        raise AccessError(f"{name!r}: names starting with learnstream, pg_ or postgres are reserved")
    return name


# ------------------------------------------------------------------------------ workspaces

_REGISTER = """
INSERT INTO workspaces (id, name, registration)
SELECT w, w::text, 'auto' FROM unnest($1::uuid[]) AS w
ON CONFLICT (id) DO NOTHING
"""


async def register_workspaces(conn: asyncpg.Connection, ids: list[UUID]) -> int:
    """Register workspaces seen in events (mode `auto`); returns how many were new."""
    status = await conn.execute(_REGISTER, ids)
    return int(status.rsplit(" ", 1)[1])


async def existing_workspaces(conn: asyncpg.Connection, ids: list[UUID]) -> set[UUID]:
    rows = await conn.fetch("SELECT id FROM workspaces WHERE id = ANY($1::uuid[])", ids)
    return {r[0] for r in rows}


async def add_workspace(conn: asyncpg.Connection, name: str, workspace_id: UUID | None = None,
                        organization: str | None = None) -> asyncpg.Record:
    """Register a workspace (an organization named by its slug is made when missing)."""
    async with conn.transaction():
        org_id = None
        if organization:
            org_id = await conn.fetchval(
                "INSERT INTO organizations (name, slug) VALUES ($1, $1) ON CONFLICT (slug) DO UPDATE SET slug = "
                "EXCLUDED.slug RETURNING id",
                organization,
            )
        row = await conn.fetchrow(
            "INSERT INTO workspaces (id, name, organization_id, registration) "
            "VALUES (coalesce($1, gen_random_uuid()), $2, $3, 'cli') ON CONFLICT (id) DO NOTHING RETURNING id",
            workspace_id, name, org_id,
        )
        if row is None:
            raise AccessError(f"workspace {workspace_id} exists already")
        return await conn.fetchrow(_LIST_WORKSPACES + " WHERE w.id = $1", row["id"])


_LIST_WORKSPACES = """
SELECT w.id, w.name, w.registration, w.created_at, o.slug AS organization,
       (SELECT count(*) FROM workspace_members m WHERE m.workspace_id = w.id) AS members
FROM workspaces w LEFT JOIN organizations o ON o.id = w.organization_id
"""


async def list_workspaces(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(_LIST_WORKSPACES + " ORDER BY w.created_at, w.id")


# ------------------------------------------------------------------------------ access


@dataclass(frozen=True)
class Granted:
    role_name: str
    workspace_id: UUID
    role: str
    created_role: bool


async def _role(conn: asyncpg.Connection, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT rolname, rolcanlogin, pg_has_role(oid, $2, 'MEMBER') AS member, rolsuper, rolbypassrls "
        "FROM pg_roles WHERE rolname = $1",
        name, MEMBER_GROUP,
    )


async def grant_access(conn: asyncpg.Connection, role_name: str, workspace_id: UUID, role: str,
                       password: str | None) -> Granted:
    """Map `role_name` to a workspace with a workspace role, creating the login role (with
    `password`) when it does not exist. An existing role must already be a member role."""
    check_role_name(role_name)
    if role not in ROLES:
        raise AccessError(f"{role!r}: the workspace roles are {', '.join(ROLES)}")
    async with conn.transaction():
        if not await conn.fetchval("SELECT 1 FROM workspaces WHERE id = $1", workspace_id):
            raise AccessError(f"no workspace {workspace_id} (`learnstream workspaces add` registers one)")
        existing = await _role(conn, role_name)
        created = existing is None
        if created:
            if password is None:
                raise AccessError("a new role needs a password")
            sql = await conn.fetchval(
                "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE %I', $1::text, $2::text, $3::text)",
                                      role_name, password, MEMBER_GROUP)
            await conn.execute(sql)
        else:
            if not existing["member"] or existing["rolsuper"] or existing["rolbypassrls"]:
                raise AccessError(f"role {role_name} exists and is not a workspace member role; choose another name")
            if password is not None:
                sql = await conn.fetchval("SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)",
                                          role_name, password)
                await conn.execute(sql)
        await conn.execute(
            "INSERT INTO workspace_members (workspace_id, role_name, role) VALUES ($1, $2, $3) "
            "ON CONFLICT (workspace_id, role_name) DO UPDATE SET role = EXCLUDED.role, granted_at = now(), "
            "granted_by = current_user",
            workspace_id, role_name, role,
        )
    return Granted(role_name, workspace_id, role, created)


async def revoke_access(conn: asyncpg.Connection, role_name: str, workspace_id: UUID | None,
                        drop_role: bool = True) -> tuple[int, bool]:
    """Remove `role_name`'s membership of a workspace (all of them with None); drop the login role
    when it has no membership left here. Returns (memberships removed, role dropped)."""
    check_role_name(role_name)
    async with conn.transaction():
        status = await conn.execute(
            "DELETE FROM workspace_members WHERE role_name = $1 AND ($2::uuid IS NULL OR workspace_id = $2)",
            role_name, workspace_id,
        )
        removed = int(status.rsplit(" ", 1)[1])
        existing = await _role(conn, role_name)
        left = await conn.fetchval("SELECT count(*) FROM workspace_members WHERE role_name = $1", role_name)
        dropped = False
        if drop_role and existing is not None and existing["member"] and not left:
            await conn.execute(await conn.fetchval("SELECT format('DROP ROLE %I', $1::text)", role_name))
            dropped = True
    return removed, dropped


async def list_access(conn: asyncpg.Connection, workspace_id: UUID | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT m.role_name, m.workspace_id, w.name AS workspace, m.role::text AS role, m.granted_by, m.granted_at, "
        "       r.rolname IS NOT NULL AS role_exists "
        "FROM workspace_members m JOIN workspaces w ON w.id = m.workspace_id "
        "LEFT JOIN pg_roles r ON r.rolname = m.role_name "
        "WHERE $1::uuid IS NULL OR m.workspace_id = $1 ORDER BY w.name, m.role_name",
        workspace_id,
    )
