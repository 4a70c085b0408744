"""The committed JSON Schema files match the models (run `learnstream schemas export` after a change)."""

from __future__ import annotations

from pathlib import Path

import orjson

from schemas.export import documents

DIR = Path(__file__).resolve().parents[2] / "schemas" / "jsonschema"


def test_exported_json_schemas_match_the_models():
    docs = documents()
    on_disk = {p.name for p in DIR.glob("*.json")}
    assert on_disk == set(docs), "schema files added or missing: run `learnstream schemas export`"
    stale = [name for name, body in docs.items() if (DIR / name).read_bytes() != body]
    assert stale == [], f"out of date: {stale}; run `learnstream schemas export`"


def test_schemas_say_what_producers_must_know():
    le = orjson.loads((DIR / "learning_event.json").read_bytes())
    assert set(le["required"]) == {"event_id", "workspace_id", "event_type", "timestamp", "event_data"}
    assert le["additionalProperties"] is False
    assert le["properties"]["timestamp"]["format"] == "date-time"
    msg = orjson.loads((DIR / "learning_event.message.json").read_bytes())
    assert msg["oneOf"][1]["maxItems"] == 1000
