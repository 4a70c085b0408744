"""What a worker does with the configuration rows a loader set aside (db/config_rows.py): one log
line per row (workspace, row, why) the first time this process sees it refused, and the gauge
`learnstream_config_rows_invalid{table}` of the rows refused in the table's latest read. The other
rows keep working."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from db.config_rows import InvalidRow
from streams import metrics

log = logging.getLogger("learnstream.config")

#: (table, workspace, row, reason) already logged by this process: a loader that rereads every
#: few seconds logs a bad row once, not on every read (again if it changes)
_logged: set[tuple[str, str, str, str]] = set()


def report_invalid(table: str, rows: Iterable[InvalidRow]) -> None:
    """The invalid rows of `table` as its loader just read them."""
    rows = list(rows)
    metrics.CONFIG_ROWS_INVALID.labels(table=table).set(len(rows))
    for r in rows:
        key = (r.table, str(r.workspace_id), r.key, r.reason)
        if key in _logged:
            continue
        _logged.add(key)
        log.error("invalid %s row skipped: workspace %s, %s: %s", r.table, r.workspace_id, r.key, r.reason)
