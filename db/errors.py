"""What a PostgreSQL failure means for the caller: the data of some row (never retried: the row is
found and set aside), the database or the connection (retried until it answers), or unknown
(retried a bounded number of times, then treated as the data's). The one place this is decided for
database errors; streams/retry.py adds Kafka's."""

from __future__ import annotations

import asyncpg
from asyncpg.exceptions import _base as asyncpg_base

CONTENT, TRANSIENT, UNKNOWN = "content", "transient", "unknown"

#: SQLSTATE classes caused by a row's data: data exception, integrity constraint, program limit
#: exceeded (an index row too large, a value too deep)
_CONTENT_CLASSES = ("22", "23", "54")
#: SQLSTATE classes of the server's or the connection's state: connection exception, insufficient
#: resources, operator intervention (shutdown, cancel), system error, transaction rollback
#: (serialization, deadlock), object in use / lock not available, schema or privilege problems
#: (a migration not applied, a revoked grant: the operator's to fix, not the event's), config file
_TRANSIENT_CLASSES = ("08", "53", "57", "58", "40", "55", "42", "F0", "25")


def classify_db(exc: BaseException) -> str | None:
    """CONTENT, TRANSIENT or UNKNOWN for a database-side error; None when `exc` is not one."""
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        if state[:2] in _CONTENT_CLASSES:
            return CONTENT
        if state[:2] in _TRANSIENT_CLASSES:
            return TRANSIENT
        return UNKNOWN
    if isinstance(exc, asyncpg_base.DataError):  # raised by asyncpg itself while encoding a value
        return CONTENT
    if isinstance(exc, (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)):
        # "connection is closed", "another operation is in progress" after a lost connection
        return TRANSIENT
    return None
