"""What every `learnstream` command shares: expected failures reported in one line, a command's
coroutine run on one connection to the configured database, and durations given on the command line.

An expected failure (the services away, a migration refused, a bad value, any `CommandError`) prints
one line `learnstream: error: …` on stderr and exits 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import NoReturn, TypeVar

import asyncpg
import click

from db.migrate import MigrationError
from schemas.alert_rules import duration_s
from streams.config import load_settings
from streams.topics import KafkaUnavailable

T = TypeVar("T")


class CommandError(Exception):
    """A failure a command expects and reports in one line (exit status 2): a service that is not
    there, a schema that is not current, a name that does not exist."""


EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    CommandError,
    KafkaUnavailable,
    MigrationError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    ConnectionError,
    OSError,
    ValueError,
)


def fail(text: str) -> NoReturn:
    """Print `learnstream: error: TEXT` on stderr and exit 2."""
    click.echo(f"learnstream: error: {text}", err=True)
    sys.exit(2)


def expected_failures(fn):
    """Decorate a command: the failures in EXPECTED_ERRORS become one line and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EXPECTED_ERRORS as exc:
            fail(str(exc))

    return wrapper


def run_on_database(go: Callable[[asyncpg.Connection], Awaitable[T]], *, admin: bool = False) -> T:
    """Run `go(conn)` on one connection to the configured database (LEARNSTREAM_DATABASE_URL or the
    services' env file), closed afterwards. `admin`: as the schema owner (operators' commands that
    manage roles: LEARNSTREAM_ADMIN_DATABASE_URL, else LEARNSTREAM_DATABASE_URL)."""
    from db.pool import connect
    from streams.config import admin_dsn

    async def wrapped() -> T:
        settings = load_settings()
        conn = await connect(admin_dsn(settings) if admin else settings.database_url)
        try:
            return await go(conn)
        finally:
            await conn.close()

    return asyncio.run(wrapped())


def text_table(headers: list[str], rows: list[list[str]], right: frozenset[int] = frozenset()) -> list[str]:
    """Lines of a plain-text table: columns two spaces apart, each as wide as its widest cell, the
    columns numbered in `right` aligned right (numbers), trailing spaces cut."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    return ["  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(line, widths))).rstrip()
            for line in [headers, *rows]]


def parse_duration(text: str) -> timedelta:
    """A duration as the rules write it (`90s`, `15m`, `1.5h`, `2d`, or seconds); a bad one is the
    option's usage error."""
    try:
        return timedelta(seconds=duration_s(text))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def parse_time(text: str, option: str) -> datetime:
    """A time on the command line: ISO (`2026-03-15`, `2026-03-15T01:30:00+01:00`; UTC when it has
    no offset) or a duration ago (`90m`, `2d`); a bad one is the option's usage error."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        try:
            return datetime.now(UTC) - timedelta(seconds=duration_s(text))
        except ValueError:
            raise click.BadParameter(f"{text!r} is neither an ISO time (2026-03-15T01:30:00Z) nor a duration ago "
                                     "(90m, 2d)", param_hint=option) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
