"""The committed JSON Schema files match the models (run `learnstream schemas export` after a change)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import orjson
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from schemas.export import documents
from schemas.learning import DATA_CONTRACTS
from streams.devkit.mix import MixGenerator
from streams.devkit.synthetic import Generator

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


def _docs() -> dict[str, dict]:
    return {p.name: orjson.loads(p.read_bytes()) for p in sorted(DIR.glob("*.json"))}


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_ids_claim_no_domain_and_every_ref_names_a_file_of_the_folder():
    docs = _docs()
    for name, doc in docs.items():
        assert doc["$id"] == name, "an $id is its file name (a relative URI), no domain"
        for ref in _refs(doc):
            target = ref.split("#", 1)[0]
            assert target == "" or target in docs, f"{name}: $ref {ref} is not a file of schemas/jsonschema"


def _offline_registry(how: str, docs: dict[str, dict]) -> tuple[Registry, Callable[[str], dict]]:
    """The folder alone, by $id, or by file path (file:// URIs read from disk): nothing else."""
    if how == "by $id":
        registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs.values())
        return registry, lambda name: docs[name]

    def retrieve(uri: str) -> Resource:
        parsed = urlparse(uri)
        path = Path(parsed.path)
        assert parsed.scheme == "file" and path.parent == DIR, f"would fetch {uri}"
        return Resource.from_contents(orjson.loads(path.read_bytes()))

    schema = lambda name: {"$schema": docs[name]["$schema"], "$ref": (DIR / name).as_uri()}  # noqa: E731
    return Registry(retrieve=retrieve), schema


@pytest.mark.parametrize("how", ["by $id", "by file path"])
def test_a_standard_validator_needs_only_the_folder(how, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a schema reference went to the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    registry, schema = _offline_registry(how, _docs())

    def valid(name: str, instance: object) -> bool:
        v = Draft202012Validator(schema(name), registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
        return v.is_valid(instance)

    mix = MixGenerator(seed=4).generate(200, array_size=1000)
    events = orjson.loads(mix.messages["learning_event"][0][1])
    prediction = next(e for e in events if e["event_type"] == "model_prediction")
    assert all(valid("learning_event.routed.json", e) for e in events)
    # the routed schema really reaches the type's event_data schema; the raw log's does not look
    broken = {**prediction, "event_data": {**prediction["event_data"], "model_id": "not-a-uuid"}}
    assert not valid("learning_event.routed.json", broken)
    assert valid("learning_event.json", broken)
    g = Generator(seed=4)
    for kind in ("performance_sample", "engagement_update", "learning_event"):
        batch = [g.event(kind) for _ in range(3)]
        assert valid(f"{kind}.message.json", batch) and valid(f"{kind}.message.json", batch[0])
        assert not valid(f"{kind}.message.json", [*batch, {**batch[0], "workspace_id": 1}])
        assert not valid(f"{kind}.message.json", [])
