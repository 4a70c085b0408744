"""`learnstream workspaces add|list` and `learnstream access grant|revoke|list`: tenants and who
may read them directly (migration 0013's row-level security decides by the role a client logs in as)."""

from __future__ import annotations

import secrets
import sys
from uuid import UUID

import click

from streams.cli_support import expected_failures, run_on_database
from streams.config import load_settings


@click.group("workspaces")
def workspaces() -> None:
    """The tenants: every row of the data belongs to one workspace."""


@workspaces.command("add")
@click.argument("name")
@click.option("--id", "workspace_id", type=click.UUID, help="the workspace's id (the one its events carry); default: a new one")
@click.option("--organization", metavar="SLUG", help="the organization it belongs to (made when missing)")
@expected_failures
def add_cmd(name: str, workspace_id: UUID | None, organization: str | None) -> None:
    """Register workspace NAME (needed before its events are stored when
    LEARNSTREAM_WORKSPACE_REGISTRATION=registered)."""
    from db.workspaces import add_workspace

    row = run_on_database(lambda conn: add_workspace(conn, name, workspace_id, organization))
    click.echo(f"added workspace {row['name']!r} {row['id']}" + (f" in {row['organization']}" if row["organization"] else ""))


@workspaces.command("list")
@expected_failures
def list_cmd() -> None:
    """Every workspace: id, name, how it was registered (cli, auto = first seen in events,
    backfill = named by data older than the table), organization, members."""
    from db.workspaces import list_workspaces

    rows = run_on_database(list_workspaces)
    click.echo(f"{'id':<36}  {'name':<24} {'registered':<10} {'organization':<16} members")
    for r in rows:
        click.echo(f"{str(r['id']):<36}  {r['name'][:24]:<24} {r['registration']:<10} {(r['organization'] or '-')[:16]:<16} "
                   f"{r['members']}")
    click.echo(f"{len(rows)} workspaces")


@click.group("access")
def access() -> None:
    """Database roles for people and dashboards that read the tables directly. Each sees only the
    workspaces it is a member of (row-level security on current_user): a viewer reads; an editor
    also edits alert rules and reports; an admin also manages members; an owner also renames its
    workspace and names other owners. The database does the work (access_grant/access_revoke,
    migration 0023): the login running these needs learnstream_access_admin, not CREATEROLE, and
    only plain member logins are ever made, changed or dropped (never a superuser or a service
    role)."""


@access.command("grant")
@click.argument("role_name", metavar="ROLE")
@click.option("--workspace", "workspace_id", type=click.UUID, required=True, help="the workspace's id")
@click.option("--role", "workspace_role", type=click.Choice(["viewer", "editor", "admin", "owner"]),
              default="viewer", show_default=True, help="what ROLE may do in the workspace")
@click.option("--password-stdin", is_flag=True,
              help="read ROLE's password from standard input (one line); without it a new role gets a generated "
                   "password, printed once, and an existing role keeps its own")
@expected_failures
def grant_cmd(role_name: str, workspace_id: UUID, workspace_role: str, password_stdin: bool) -> None:
    """Let login ROLE read workspace --workspace (creating the role when it does not exist). The
    password goes to the server only as its SCRAM-SHA-256 verifier, computed here."""
    from db.workspaces import grant_access

    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin: standard input gave an empty password")

    async def go(conn):
        generated = None
        if password is None and not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role_name):
            generated = secrets.token_urlsafe(18)
        return await grant_access(conn, role_name, workspace_id, workspace_role, password or generated), generated

    granted, generated = run_on_database(go, admin=True)
    click.echo(f"{'created role' if granted.created_role else 'role'} {granted.role_name}: {granted.role} of workspace "
               f"{granted.workspace_id}")
    if generated:  # the only password this command prints: one it made
        click.echo(f"password (shown once): {generated}")
        click.echo(f"connect: {_dsn_for(granted.role_name)}")


def _dsn_for(role_name: str) -> str:
    """The service's DSN with ROLE as the user and the password left out."""
    from db.databases import dsn_as

    return dsn_as(load_settings().database_url, role_name, "PASSWORD")


@access.command("revoke")
@click.argument("role_name", metavar="ROLE")
@click.option("--workspace", "workspace_id", type=click.UUID, help="only this workspace (default: all of ROLE's)")
@click.option("--keep-role", is_flag=True, help="keep the login role even when it has no membership left")
@expected_failures
def revoke_cmd(role_name: str, workspace_id: UUID | None, keep_role: bool) -> None:
    """Remove ROLE's membership; the role is dropped when it has none left in this database. A role
    that is not a plain member login (a superuser, a service role, an operator's) is refused."""
    from db.workspaces import revoke_access

    removed, dropped = run_on_database(lambda conn: revoke_access(conn, role_name, workspace_id, not keep_role),
                                       admin=True)
    click.echo(f"removed {removed} membership{'s' if removed != 1 else ''} of {role_name}"
               + ("; dropped the role" if dropped else ""))
    if not removed:
        sys.exit(1)


@access.command("list")
@click.option("--workspace", "workspace_id", type=click.UUID, help="only this workspace")
@expected_failures
def list_access_cmd(workspace_id: UUID | None) -> None:
    """Who may read which workspace, with what role (no passwords: they are not stored readable)."""
    from db.workspaces import list_access

    rows = run_on_database(lambda conn: list_access(conn, workspace_id), admin=True)
    click.echo(f"{'role':<24} {'workspace':<36}  {'name':<20} {'as':<7} granted")
    for r in rows:
        missing = "" if r["role_exists"] else "  (login role missing)"
        click.echo(f"{r['role_name']:<24} {str(r['workspace_id']):<36}  {r['workspace'][:20]:<20} {r['role']:<7} "
                   f"{r['granted_at']:%Y-%m-%d %H:%M}Z by {r['granted_by']}{missing}")
    click.echo(f"{len(rows)} memberships")
