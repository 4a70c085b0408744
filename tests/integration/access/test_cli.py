"""`learnstream workspaces` and `learnstream access` as an operator uses them (real PostgreSQL):
roles made and dropped, passwords printed only when generated, logins that work with them."""

from __future__ import annotations

import subprocess
import sys
import uuid

import asyncpg
import pytest

from db.pool import connect
from tests.support import ROOT, login_dsn

pytestmark = pytest.mark.services


def _cli(stack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=ROOT, env=stack.env(), input=stdin,
                          capture_output=True, text=True, timeout=60)



async def test_workspaces_and_access_commands(stack):
    ws = str(uuid.uuid4())
    dana, gina = f"dana_{uuid.uuid4().hex[:6]}", f"gina_{uuid.uuid4().hex[:6]}"
    try:
        out = _cli(stack, "workspaces", "add", "Acme EU", "--id", ws, "--organization", "acme")
        assert (out.returncode, out.stdout) == (0, f"added workspace 'Acme EU' {ws} in acme\n"), out.stderr
        again = _cli(stack, "workspaces", "add", "Acme EU", "--id", ws)
        assert again.returncode == 2 and again.stderr.strip() == f"learnstream: error: workspace {ws} exists already"
        listed = _cli(stack, "workspaces", "list").stdout.splitlines()
        assert listed[1].split() == [ws, "Acme", "EU", "cli", "acme", "0"] and listed[-1] == "1 workspaces"

        # a generated password is printed once, and it works
        out = _cli(stack, "access", "grant", dana, "--workspace", ws, "--role", "editor")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == f"created role {dana}: editor of workspace {ws}"
        password = lines[1].removeprefix("password (shown once): ")
        assert len(password) >= 20 and lines[2].startswith(f"connect: postgresql://{dana}:PASSWORD@")
        conn = await asyncpg.connect(login_dsn(stack.dsn, dana, password))
        try:
            assert [str(r[0]) for r in await conn.fetch("SELECT id FROM workspaces")] == [ws]
        finally:
            await conn.close()
        # one taken from stdin is never printed; an existing role keeps its password and is told so
        out = _cli(stack, "access", "grant", gina, "--workspace", ws, "--password-stdin", stdin="correct horse\n")
        assert out.stdout == f"created role {gina}: viewer of workspace {ws}\n" and "correct horse" not in out.stderr
        out = _cli(stack, "access", "grant", gina, "--workspace", ws, "--role", "admin")
        assert out.stdout == f"role {gina}: admin of workspace {ws}\n"
        conn = await asyncpg.connect(login_dsn(stack.dsn, gina, "correct horse"))
        await conn.close()

        listed = _cli(stack, "access", "list", "--workspace", ws).stdout.splitlines()
        assert [line.split()[:5] for line in listed[1:-1]] == sorted(
            [[dana, ws, "Acme", "EU", "editor"], [gina, ws, "Acme", "EU", "admin"]])
        assert listed[-1] == "2 memberships"

        # refusals: reserved names, unknown workspaces, a role that is not a member role
        for args, message in (
            (("learnstream_service", "--workspace", ws), "'learnstream_service': names starting with learnstream, pg_ "
                                                         "or postgres are reserved"),
            (("Bad-Name", "--workspace", ws), "'Bad-Name': a role name is lower-case letters, digits and _, starting "
                                              "with a letter or _ (1-63)"),
            ((dana, "--workspace", str(uuid.uuid4())), "no workspace"),
        ):
            out = _cli(stack, "access", "grant", *args)
            assert out.returncode == 2 and message in out.stderr, out.stderr

        # revoke: the membership goes, then the role with its last membership
        out = _cli(stack, "access", "revoke", dana, "--workspace", ws)
        assert (out.returncode, out.stdout) == (0, f"removed 1 membership of {dana}; dropped the role\n")
        out = _cli(stack, "access", "revoke", dana)
        assert (out.returncode, out.stdout) == (1, f"removed 0 memberships of {dana}\n")
        owner = await connect(stack.dsn)
        try:
            assert await owner.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", dana) == 0
        finally:
            await owner.close()
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
            await asyncpg.connect(login_dsn(stack.dsn, dana, password))
    finally:
        owner = await connect(stack.dsn)
        try:
            await owner.execute("DELETE FROM workspace_members")
            for role in (dana, gina):
                await owner.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await owner.close()
