"""JSON Schema documents of the contracts, for producers in other languages. No I/O: the CLI
(`learnstream schemas export`) writes them to schemas/jsonschema/, and a test fails when the
committed files drift from the models."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

from schemas.alerts import AlertCommand, AlertNotification
from schemas.events import CONTRACTS, MAX_EVENTS_PER_MESSAGE, DeadLetter, UnroutedEvent
from schemas.learning import DATA_CONTRACTS
from schemas.rollups import LateEvent, Rollup

#: every document's `$id` is its file name, a relative URI: it claims no domain, resolves against
#: wherever the folder is read from (file:///.../schemas/jsonschema/, a producer's own URL), and every
#: `$ref` names a sibling file, so the folder alone resolves them all (no network)
SCHEMA_ID_BASE = ""


def _document(name: str, model: type[BaseModel], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"{SCHEMA_ID_BASE}{name}.json"}
    doc.update(model.model_json_schema(mode="validation"))
    if extra:
        doc.update(extra)
    return doc


def documents() -> dict[str, bytes]:
    """file name -> JSON bytes (sorted keys, indented, trailing newline)."""
    out: dict[str, bytes] = {}
    for kind, model in CONTRACTS.items():
        doc = _document(kind, model)
        # a message value is one event or an array of up to MAX_EVENTS_PER_MESSAGE events
        doc["$comment"] = (
            f"Kafka message value: one such object, or a JSON array of 1..{MAX_EVENTS_PER_MESSAGE} of them "
            "(see the *.message.json schema). Timestamps need a timezone offset."
        )
        out[f"{kind}.json"] = _dump(doc)
        message = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{SCHEMA_ID_BASE}{kind}.message.json",
            "title": f"{model.__name__} message",
            "oneOf": [
                {"$ref": f"{kind}.json"},
                {"type": "array", "minItems": 1, "maxItems": MAX_EVENTS_PER_MESSAGE, "items": {"$ref": f"{kind}.json"}},
            ],
        }
        out[f"{kind}.message.json"] = _dump(message)
    # learning_event.json is the raw log's gate (any event_data object); .routed adds the contract
    # of each known event_type's event_data: what routing into the domain tables requires
    routed = orjson.loads(out["learning_event.json"])
    routed["$id"] = f"{SCHEMA_ID_BASE}learning_event.routed.json"
    routed["title"] = "LearningEvent (routed)"
    routed["allOf"] = [
        {"if": {"properties": {"event_type": {"const": t}}, "required": ["event_type"]},
         "then": {"properties": {"event_data": {"$ref": f"learning_event_data.{t}.json"}}}}
        for t in DATA_CONTRACTS
    ]
    out["learning_event.routed.json"] = _dump(routed)
    for t, model in DATA_CONTRACTS.items():
        out[f"learning_event_data.{t}.json"] = _dump(_document(f"learning_event_data.{t}", model, {"$comment": _compat(model)}))
    out["dead_letter.json"] = _dump(_document("dead_letter", DeadLetter))
    out["unrouted_event.json"] = _dump(_document("unrouted_event", UnroutedEvent))
    out["alert_notification.json"] = _dump(_document("alert_notification", AlertNotification))
    out["alert_command.json"] = _dump(_document("alert_command", AlertCommand))
    out["rollup.json"] = _dump(_document("rollup", Rollup))
    out["late_event.json"] = _dump(_document("late_event", LateEvent))
    return out


def _compat(model: type[BaseModel]) -> str:
    """The compatibility rule (docs/ingest.md, "Changing a contract"), in each event_data schema."""
    if "version" in model.model_fields:  # here `version` is the described thing's own version
        how = "a new event_type name (`version` in this event_data is the described thing's own version)"
    else:
        how = "a new event_type name, or a `version` field in event_data that the new contract requires"
    return (
        "This schema is the reference for this event_type's event_data (unknown fields are ignored). "
        "Compatible change: adding an optional field. Any other change (a field removed, renamed, made "
        f"required, retyped or narrowed) comes as {how}; see docs/ingest.md."
    )


def _dump(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
