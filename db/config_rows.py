"""Configuration rows (alert rules, alert channels, report schedules) read one by one: a row its
contract refuses is set aside as an InvalidRow, and the others still load. A member with write
access (or a row older than migration 0019's CHECKs) can store a row the code refuses; one such row
must not stop every workspace's alerts, deliveries or reports."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from pydantic import ValidationError


@dataclass(frozen=True)
class InvalidRow:
    """A stored row its contract refuses: which table, whose, which row (its id or name), and why."""

    table: str
    workspace_id: UUID
    key: str
    reason: str


def reason(exc: Exception) -> str:
    """One line saying why a row was refused (field: message; ...)."""
    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors():
            field = ".".join(str(x) for x in e["loc"])
            msg = e["msg"].removeprefix("Value error, ")
            parts.append(f"{field}: {msg}" if field else msg)
        return "; ".join(parts)
    return f"{exc.__class__.__name__}: {exc}"
