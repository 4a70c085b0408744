"""Workspaces, organizations and who may read them (migration 0013): the SQL of that table family.

A person or dashboard reading the database directly logs in as a role of its own, a member of
learnstream_member, mapped to workspaces by workspace_members; the tables' policies decide by that
mapping of current_user. Roles are named by the operator and checked here (a plain lower-case
identifier, not a project or system role); they are made, changed and dropped by the database's
access_grant / access_revoke (migration 0023: SECURITY DEFINER, for learnstream_access_admin), which
check again, quote with format('%I'), and receive a password only as its SCRAM verifier.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
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


#: PostgreSQL's own choice for the verifiers it computes (scram_iterations)
SCRAM_ITERATIONS = 4096


def scram_sha256_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677, as its own
    pg_be_scram_build_secret): 'SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>', base64.
    Sent instead of the password, which so never leaves this process. (PostgreSQL normalizes a
    password with SASLprep first; for ASCII passwords, the only kind this project generates, that
    changes nothing.)"""
    salt = secrets.token_bytes(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _refused(exc: asyncpg.PostgresError) -> AccessError:
    if str(exc).startswith("permission denied for function access_"):
        return AccessError(f"{exc}: the login needs learnstream_access_admin "
                           "(GRANT learnstream_access_admin TO <login>, as the schema's owner)")
    return AccessError(str(exc))


# the refusals of the access_* functions (migration 0023): their messages are for the operator
_REFUSALS = (asyncpg.InsufficientPrivilegeError, asyncpg.InvalidParameterValueError, asyncpg.NoDataFoundError)


async def grant_access(conn: asyncpg.Connection, role_name: str, workspace_id: UUID, role: str,
                       password: str | None) -> Granted:
    """Map `role_name` to a workspace with a workspace role, creating the login role (with
    `password`) when it does not exist. An existing role must already be a member role. Done by
    the database's access_grant (migration 0023), which gets the password's SCRAM verifier only;
    the connection's role needs learnstream_access_admin, not CREATEROLE."""
    check_role_name(role_name)
    if role not in ROLES:
        raise AccessError(f"{role!r}: the workspace roles are {', '.join(ROLES)}")
    verifier = None if password is None else scram_sha256_verifier(password)
    try:
        created = await conn.fetchval("SELECT access_grant($1, $2, $3::workspace_role, $4)",
                                      role_name, workspace_id, role, verifier)
    except _REFUSALS as exc:
        raise _refused(exc) from None
    return Granted(role_name, workspace_id, role, created)


async def revoke_access(conn: asyncpg.Connection, role_name: str, workspace_id: UUID | None,
                        drop_role: bool = True) -> tuple[int, bool]:
    """Remove `role_name`'s membership of a workspace (all of them with None); drop the login role
    when it has no membership left here. Returns (memberships removed, role dropped). A role that
    is not a plain member login (a superuser, a service role, ...) is refused (access_revoke)."""
    check_role_name(role_name)
    try:
        row = await conn.fetchrow("SELECT removed, dropped FROM access_revoke($1, $2, $3)",
                                  role_name, workspace_id, drop_role)
    except _REFUSALS as exc:
        raise _refused(exc) from None
    return row["removed"], row["dropped"]


async def list_access(conn: asyncpg.Connection, workspace_id: UUID | None = None) -> list[asyncpg.Record]:
    try:
        return await conn.fetch("SELECT * FROM access_list($1)", workspace_id)
    except asyncpg.InsufficientPrivilegeError as exc:
        raise _refused(exc) from None
