"""The committed JSON Schema files match the models (run `learnstream schemas export` after a change)."""

from __future__ import annotations

from pathlib import Path

import orjson

from schemas.export import documents
from schemas.learning import DATA_CONTRACTS

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


def test_a_learning_events_data_schema_is_chosen_by_its_type_for_routing_only():
    assert "allOf" not in orjson.loads((DIR / "learning_event.json").read_bytes())  # the raw log: any event_data
    le = orjson.loads((DIR / "learning_event.routed.json").read_bytes())
    by_type = {c["if"]["properties"]["event_type"]["const"]: c["then"]["properties"]["event_data"]["$ref"]
               for c in le["allOf"]}
    assert by_type["model_prediction"] == "learning_event_data.model_prediction.json"
    pred = orjson.loads((DIR / by_type["model_prediction"]).read_bytes())
    assert {"prediction_id", "model_id", "prediction_type"} <= set(pred["required"])
    assert pred["additionalProperties"] is True  # unknown fields are ignored by routing, kept in the raw log
    assert set(by_type) == set(DATA_CONTRACTS)
