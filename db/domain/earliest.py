"""The statement that keeps an entity's created_at at its earliest event, whatever the order of
arrival: the upserts write the latest event of a batch and change a row only for a newer event,
so an older event of an entity that arrives later (or an earlier one in the same batch) would
otherwise leave created_at at a later time. Built at import from constant names only."""

from __future__ import annotations


def earliest_created_at(table: str, key: str) -> str:
    """UPDATE `table`.created_at (keyed by workspace_id, id) to the earliest event time of the
    batch's records whose `key` (a uuid field of the record) is the row's id, where that is earlier."""
    assert table.isidentifier() and key.isidentifier()
    return f"""
UPDATE {table} t SET created_at = r.first_ts
FROM (SELECT r.workspace_id, r.{key} AS id, min(r.ts) AS first_ts
      FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, {key} uuid)
      GROUP BY r.workspace_id, r.{key}) AS r
WHERE t.workspace_id = r.workspace_id AND t.id = r.id AND r.first_ts < t.created_at
"""
