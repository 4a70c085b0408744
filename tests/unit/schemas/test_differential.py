"""Pydantic and the exported JSON Schemas give the same verdict (no services).

Producers outside Python validate with schemas/jsonschema/; the worker validates with pydantic. For
every ingest kind, for every learning event_data contract (check_event_data against
learning_event_data.<type>.json) and for the routed learning event (learning_event.routed.json), valid
events from the dev kit are mutated field by field (type swaps, numeric strings, integral floats,
epoch numbers and non-RFC 3339 strings for times, non-canonical UUIDs, out-of-range numbers,
over-long strings, missing required fields, unknown fields, misspelt enum values, ...) and both
verdicts are compared with a standard validator (jsonschema, Draft 2020-12, formats asserted).

The only cases left out are those that hit a documented exception (docs/ingest.md, "What the JSON
Schemas cannot say"), each recognised by what the case holds, not by the disagreement: there
pydantic must refuse what the schema accepts, never the other way round.
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import orjson
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from schemas.decode import decode_message
from schemas.events import CONTRACTS
from schemas.learning import DATA_CONTRACTS, check_event_data
from schemas.types import MAX_OBJECT_BYTES, NESTED_TIME_RANGE, _unstorable, safe_dumps
from streams.devkit.mix import MixGenerator
from streams.devkit.synthetic import Generator

DIR = Path(__file__).resolve().parents[3] / "schemas" / "jsonschema"
FORMATS = Draft202012Validator.FORMAT_CHECKER
SEED = 20260522
T0 = "2026-11-30T10:15:30.250+01:00"
U0 = "0b6f1c9e-3d4a-4c4e-9a51-2f7d8e6b1a20"
ZONES = frozenset(available_timezones())


# --- the validator: every exported file, by its $id, no network --------------------------------

def _load() -> tuple[dict[str, dict], Registry]:
    docs = {p.name: json.loads(p.read_text()) for p in sorted(DIR.glob("*.json"))}
    registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs.values())
    return docs, registry


DOCS, REGISTRY = _load()


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(DOCS[name], registry=REGISTRY, format_checker=FORMATS)


def test_the_installed_validator_really_checks_formats():
    assert not FORMATS.conforms("2026-11-30 10:15:30Z", "date-time")  # rfc3339-validator is installed
    assert not FORMATS.conforms("2026-11-30T10:15Z", "date-time")
    assert FORMATS.conforms("2026-11-30T10:15:30Z", "date-time")
    assert not FORMATS.conforms(U0.replace("-", ""), "uuid")
    assert not FORMATS.conforms("{" + U0 + "}", "uuid")
    assert FORMATS.conforms(U0, "uuid")


# --- the schema walk -----------------------------------------------------------------------------

def _resolve(s: dict, root: dict) -> dict:
    while "$ref" in s and s["$ref"].startswith("#/$defs/"):
        s = {**root["$defs"][s["$ref"].rsplit("/", 1)[1]], **{k: v for k, v in s.items() if k != "$ref"}}
    return s


def _field(s: dict, root: dict) -> dict:
    """A property's schema without the `null` of an optional field (a union of several kept as anyOf)."""
    s = _resolve(s, root)
    if "anyOf" in s:
        rest = [_resolve(x, root) for x in s["anyOf"] if _resolve(x, root).get("type") != "null"]
        if len(rest) == 1:
            s = {**{k: v for k, v in s.items() if k != "anyOf"}, **rest[0]}
    return s


def _free_form(s: dict) -> bool:
    return s.get("type") == "object" and "properties" not in s and s.get("additionalProperties", True) is True


def _sample(s: dict) -> Any:
    """A plausible value for an absent optional field, to mutate from."""
    t = s.get("type")
    if "enum" in s:
        return s["enum"][0]
    if "const" in s:
        return s["const"]
    if t == "string":
        zone = "zone" in s.get("title", "").lower()
        return {"date-time": T0, "uuid": U0}.get(s.get("format", ""), "Europe/Berlin" if zone else "abc")
    if t == "integer":
        return max(s.get("minimum", 1), 1)
    if t == "number":
        return max(s.get("minimum", 0.5), 0.5) if s.get("maximum", 2) >= 0.5 else s["maximum"]
    if t == "boolean":
        return True
    if t == "array":
        return []
    if t == "object":
        return {}
    return None


# --- mutations -----------------------------------------------------------------------------------

SWAPS: list[tuple[str, Any]] = [
    ("true", True), ("false", False), ("int 0", 0), ("int 1", 1), ("int -1", -1), ("float", 2.5),
    ("string", "x"), ("empty string", ""), ("null", None), ("object", {}), ("array", []), ("array of int", [1]),
    ("numeric string", "149"), ("float string", "1.5"), ("bool string", "true"), ("epoch", 1765000000),
]


def _time_variants(t: str) -> list[tuple[str, Any]]:
    date, clock = t[:10], t[11:19]
    return [
        ("space separator", f"{date} {clock}Z"), ("no seconds", f"{date}T{clock[:5]}Z"), ("naive", f"{date}T{clock}"),
        ("offset without colon", f"{date}T{clock}+0100"), ("offset hours only", f"{date}T{clock}+01"),
        ("date only", date), ("lower-case t and z", f"{date}t{clock}z"), ("comma fraction", f"{date}T{clock},5Z"),
        ("nanoseconds", f"{date}T{clock}.123456789Z"), ("negative zero offset", f"{date}T{clock}-00:00"),
        ("hour 24", f"{date}T24:00:00Z"), ("leap second", f"{date}T23:59:60Z"), ("month 13", f"{date[:4]}-13-01T{clock}Z"),
        ("february 30", f"{date[:4]}-02-30T{clock}Z"), ("full-width digits", f"{date}T{clock}Z".replace("2", "\uff12")),
        ("epoch int", 1765000000), ("epoch float", 1765000000.5), ("epoch millis", 1765000000000),
        ("epoch string", "1765000000"), ("year 1999", "1999-12-31T23:59:59Z"), ("year 2150", "2150-01-01T00:00:00Z"),
        ("year 1", "0001-01-01T00:00:00+00:00"), ("year 9999", "9999-12-31T23:59:59Z"),
        ("trailing newline", t + "\n"), ("leading space", " " + t), ("words", "yesterday"),
    ]


def _uuid_variants(u: str) -> list[tuple[str, Any]]:
    h = u.replace("-", "")
    return [
        ("no hyphens", h), ("braces", "{" + u + "}"), ("urn", "urn:uuid:" + u), ("upper case", u.upper()),
        ("hyphen moved", f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:28]}-{h[28:]}"), ("trailing brace", u + "}"),
        ("not hex", "g" + u[1:]), ("short", u[:-1]), ("trailing newline", u + "\n"), ("as integer", int(h, 16) % 2**63),
    ]


def _string_variants(v: Any, s: dict) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    text = v if isinstance(v, str) else "abc"
    if "enum" in s or "const" in s:
        values = s.get("enum", [s.get("const")])
        out += [("enum upper", text.upper()), ("enum misspelt", text + "x"), ("enum padded", " " + text),
                ("enum capitalised", text.capitalize())] + [(f"enum {x}", x) for x in values]
    if "pattern" in s:
        out += [("pattern space", text + " "), ("pattern leading dash", "-" + text), ("pattern unicode", text + "\u00fc"),
                ("pattern trailing newline", text + "\n"), ("pattern dots", text + ".v2:x/y")]
    if "maxLength" in s:
        n = s["maxLength"]
        out += [("at max length", "x" * n), ("over max length", "x" * (n + 1)), ("over max length, 2-byte", "\u00e9" * (n + 1)),
                ("at max length, astral", "\U0001f600" * n)]
    if s.get("minLength", 0) > 0:
        out.append(("under min length", ""))
    if "zone" in s.get("title", "").lower():
        out += [("zone UTC", "UTC"), ("zone lower-case", "europe/berlin"), ("zone unknown", "Mars/Olympus_Mons")]
    return out


def _number_variants(v: Any, s: dict) -> list[tuple[str, Any]]:
    integer = s.get("type") == "integer"
    base = v if isinstance(v, int | float) and not isinstance(v, bool) else _sample(s)
    out: list[tuple[str, Any]] = [
        ("as string", str(base)), ("as float string", f"{float(base)}"), ("huge", 1e308), ("huge negative", -1e308),
        ("2**63", 2**63), ("2**64", 2**64), ("negative zero", -0.0),
    ]
    if integer:
        out += [("integral float", float(base)), ("fractional", base + 0.5), ("1e3 float", 1e3),
                ("integral float 2**53", 2.0**53)]
    else:
        out += [("as int", int(base)), ("tiny", 5e-324)]
    for key, sign in (("minimum", -1), ("maximum", 1), ("exclusiveMinimum", -1), ("exclusiveMaximum", 1)):
        if key in s:
            edge = s[key]
            step = 1 if integer else 0.001
            out += [(f"{key}", edge), (f"beyond {key}", edge + sign * step), (f"{key} as float", float(edge))]
    return out


def _object_variants(s: dict) -> list[tuple[str, Any]]:
    if _free_form(s):
        return [("nested values", {"a": [1, 2.5, {"b": None, "c": "é"}], "d": True}),
                ("NUL in object", {"note": "a\u0000b"}), ("NUL in key", {"a\u0000": 1}),
                ("object over the byte limit", {"blob": "x" * (MAX_OBJECT_BYTES + 1)})]
    if "additionalProperties" in s and isinstance(s["additionalProperties"], dict):  # a map
        inner = _field(s["additionalProperties"], {})
        good = _sample(inner)
        return [("map value wrong type", {"k": [good]}), ("map value null", {"k": None}), ("map empty key", {"": good}),
                ("map long key", {"k" * 101: good}), ("map value numeric string", {"k": "1"}),
                ("map value number", {"k": 1}), ("map value bool", {"k": True}), ("map ok", {"k": good}),
                ("map too many", {f"k{i}": good for i in range(s.get("maxProperties", 64) + 1)}),
                ("map at max", {f"k{i}": good for i in range(s.get("maxProperties", 64))})]
    return []


def _array_variants(v: Any, s: dict, root: dict) -> list[tuple[str, Any]]:
    items = _field(s.get("items", {}), root)
    first = v[0] if isinstance(v, list) and v else _sample(items)
    out = [("one item", [first]), ("null item", [None]), ("bool item", [True]), ("number item", [1]),
           ("string item", ["1"]), ("nested array", [[first]])]
    if "maxItems" in s:
        out += [("at max items", [first] * s["maxItems"]), ("over max items", [first] * (s["maxItems"] + 1))]
    if s.get("minItems", 0) > 0:
        out.append(("under min items", []))
    if items.get("format") == "uuid":
        out += [("item " + label, [x]) for label, x in _uuid_variants(U0)]
    return out


def _values(v: Any, s: dict, root: dict) -> list[tuple[str, Any]]:
    """Replacement values for a field holding `v` (or absent: v is None) under schema `s`."""
    out = list(SWAPS)
    fmt = s.get("format")
    if fmt == "date-time":
        out += _time_variants(v if isinstance(v, str) else T0)
    elif fmt == "uuid":
        out += _uuid_variants(v if isinstance(v, str) else U0)
    types = {s.get("type")} | {_resolve(x, root).get("type") for x in s.get("anyOf", [])}
    if "string" in types:
        out += _string_variants(v, s)
    if types & {"integer", "number"}:
        out += _number_variants(v, s)
    if "boolean" in types:
        out += [("bool as int", 1), ("bool as string", "false"), ("yes", "yes")]
    if "object" in types:
        out += _object_variants(s)
    if "array" in types:
        out += _array_variants(v, s, root)
    return out


Case = tuple[str, Any]  # (label, mutated instance)


def mutations(obj: dict, schema: dict, root: dict, depth: int = 0) -> Iterator[Case]:
    """Field-by-field mutations of `obj` under `schema` (recursing into nested models)."""
    props = schema.get("properties", {})
    yield "unknown field", {**obj, "unknown_field_x": 1}
    for name in sorted(props):
        s = _field(props[name], root)
        present = name in obj
        v = obj.get(name)
        if present:
            yield f"{name}: missing", {k: x for k, x in obj.items() if k != name}
        else:
            yield f"{name}: sample", {**obj, name: _sample(s)}
        for label, nv in _values(v, s, root):
            yield f"{name}: {label}", {**obj, name: nv}
        if depth < 3 and "properties" in s:
            inner = v if isinstance(v, dict) else {k: _sample(_field(p, root)) for k, p in s["properties"].items()
                                                   if k in s.get("required", [])}
            for label, m in mutations(inner, s, root, depth + 1):
                yield f"{name}.{label}", {**obj, name: m}
        items = _field(s.get("items", {}), root) if s.get("type") == "array" else {}
        if depth < 3 and "properties" in items:
            first = v[0] if isinstance(v, list) and v else {k: _sample(_field(p, root)) for k, p in items["properties"].items()
                                                            if k in items.get("required", [])}
            rest = v[1:] if isinstance(v, list) else []
            for label, m in mutations(first, items, root, depth + 1):
                yield f"{name}[0].{label}", {**obj, name: [m, *rest]}


# --- the documented exceptions, recognised by what an instance holds -------------------------------

def exceptions(x: Any, s: dict, root: dict, data_contract: bool) -> set[str]:
    """The documented exceptions `x` hits under schema `s` (see docs/ingest.md)."""
    found: set[str] = set()
    s = _field(s, root)
    if isinstance(x, str):
        if x.endswith("\n") and ("pattern" in s or "format" in s):
            found.add("trailing newline: the validator's Python `$` (ECMA-262's does not match before it)")
        if s.get("format") == "date-time" and data_contract and FORMATS.conforms(x, "date-time"):
            t = datetime.fromisoformat(x.strip().upper().replace("Z", "+00:00"))
            if t.tzinfo is not None and not NESTED_TIME_RANGE[0] <= t < NESTED_TIME_RANGE[1]:
                found.add("a time inside event_data out of NESTED_TIME_RANGE")
        if "zone" in s.get("title", "").lower() and len(x) <= 64 and x not in ZONES:
            found.add("a time zone not in the IANA database")
    elif isinstance(x, dict):
        if _free_form(s):
            raw = safe_dumps(x)
            if raw is None or len(raw) > MAX_OBJECT_BYTES:
                found.add("an object over MAX_OBJECT_BYTES")
            try:
                orjson.dumps(x)  # what writes JSONB: no integer past 64 bits
            except TypeError:
                found.add("an object PostgreSQL cannot store (NUL, non-finite number, an integer past 64 bits)")
            if _unstorable(x):
                found.add("an object PostgreSQL cannot store (NUL, non-finite number, an integer past 64 bits)")
        for k, v in x.items():
            if k in s.get("properties", {}):
                found |= exceptions(v, s["properties"][k], root, data_contract)
            elif isinstance(s.get("additionalProperties"), dict):
                found |= exceptions(v, s["additionalProperties"], root, data_contract)
    elif isinstance(x, list) and isinstance(s.get("items"), dict):
        for v in x:
            found |= exceptions(v, s["items"], root, data_contract)
    return found


# --- the comparison -----------------------------------------------------------------------------

def _roundtrip(x: Any) -> Any:
    return json.loads(json.dumps(x))


def _compare(cases: list[Case], schema_name: str, pydantic_ok: Callable[[Any], bool], data_contract: bool = False,
             extra_exceptions: Callable[[Any], set[str]] | None = None) -> tuple[int, list[str], Counter]:
    validator, root = _validator(schema_name), DOCS[schema_name]
    seen: set[str] = set()
    disagreements: list[str] = []
    excluded: Counter = Counter()
    n = 0
    for label, inst in cases:
        key = json.dumps(inst, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        n += 1
        inst = _roundtrip(inst)
        ours, theirs = pydantic_ok(inst), validator.is_valid(inst)
        hit = exceptions(inst, root, root, data_contract) | (extra_exceptions(inst) if extra_exceptions else set())
        if hit:
            excluded.update(hit)
            # an exception only ever makes pydantic stricter than the schema
            assert ours <= theirs, f"{schema_name} {label}: pydantic accepts what the schema refuses ({hit})"
            continue
        if ours != theirs:
            got = "accepts" if ours else "refuses"
            disagreements.append(f"{schema_name} [{label}] pydantic {got}, the schema "
                                 f"{'accepts' if theirs else 'refuses'}: {json.dumps(inst)[:160]}")
    return n, disagreements, excluded


def _decodes(kind: str) -> Callable[[Any], bool]:
    return lambda inst: decode_message(json.dumps(inst).encode(), kind).rejected is None


def _routable(event_type: str) -> Callable[[Any], bool]:
    def ok(data: Any) -> bool:
        return check_event_data(event_type, data).record is not None
    return ok


def _seeds() -> dict[str, list[dict]]:
    """Valid events of every kind: the synthetic workload's and the domain mix's."""
    rng = random.Random(SEED)
    g = Generator(seed=SEED)
    mix = MixGenerator(seed=SEED).generate(300, array_size=1000)
    events = {kind: [e for _, v in msgs for e in orjson.loads(v)] for kind, msgs in mix.messages.items()}
    seeds = {kind: rng.sample(evs, min(2, len(evs))) for kind, evs in events.items()}
    for kind in ("learning_event", "performance_sample", "engagement_update"):
        seeds[kind] = [g.event(kind) for _ in range(2)] + seeds.get(kind, [])
    by_type: dict[str, list[dict]] = {}
    for e in events["learning_event"]:
        by_type.setdefault(e["event_type"], []).append(e)
    seeds["by_type"] = [rng.choice(evs) for _, evs in sorted(by_type.items())]
    return seeds


SEEDS = _seeds()
RESULTS: dict[str, tuple[int, list[str], Counter]] = {}


def _report(name: str, result: tuple[int, list[str], Counter]) -> None:
    n, disagreements, _ = result
    RESULTS[name] = result
    assert n > 0
    assert disagreements == [], f"{len(disagreements)} of {n} cases disagree:\n" + "\n".join(disagreements[:40])


@pytest.mark.parametrize("kind", sorted(CONTRACTS))
def test_decode_message_and_the_kinds_schema_agree(kind):
    root = DOCS[f"{kind}.json"]
    for ev in SEEDS[kind]:
        assert decode_message(orjson.dumps(ev), kind).rejected is None and _validator(f"{kind}.json").is_valid(ev)
    cases = [c for ev in SEEDS[kind] for c in mutations(ev, root, root)]
    _report(kind, _compare(cases, f"{kind}.json", _decodes(kind)))


@pytest.mark.parametrize("event_type", sorted(DATA_CONTRACTS))
def test_check_event_data_and_the_types_schema_agree(event_type):
    name = f"learning_event_data.{event_type}.json"
    root = DOCS[name]
    seeds = [e["event_data"] for e in SEEDS["by_type"] if e["event_type"] == event_type]
    assert seeds, f"the mix sends no {event_type}"
    for data in seeds:
        assert check_event_data(event_type, data).record is not None and _validator(name).is_valid(data)
    cases = [c for data in seeds for c in mutations(data, root, root)]
    _report(event_type, _compare(cases, name, _routable(event_type), data_contract=True))


def test_a_routed_learning_event_and_learning_event_routed_json_agree():
    """The envelope and its event_data together: stored and routable by pydantic, valid by the
    routed schema (an event_type without a contract: the envelope alone)."""
    def routable(ev: Any) -> bool:
        decoded = decode_message(json.dumps(ev).encode(), "learning_event")
        if decoded.rejected is not None:
            return False
        verdict = check_event_data(decoded.events[0].event_type, decoded.events[0].event_data)
        return verdict is None or verdict.record is not None

    def data_exceptions(ev: Any) -> set[str]:
        t = ev.get("event_type") if isinstance(ev, dict) else None
        name = f"learning_event_data.{t}.json"
        if isinstance(t, str) and name in DOCS and isinstance(ev.get("event_data"), dict):
            return exceptions(ev["event_data"], DOCS[name], DOCS[name], True)
        return set()

    cases: list[Case] = []
    for ev in SEEDS["by_type"]:
        data_root = DOCS[f"learning_event_data.{ev['event_type']}.json"]
        cases += [(f"event_data.{label}", {**ev, "event_data": m})
                  for label, m in mutations(ev["event_data"], data_root, data_root)]
        cases += [(f"{ev['event_type']} as {t}", {**ev, "event_type": t}) for t in ("model_prediction", "Unknown.Type")]
    rng = random.Random(SEED)
    cases = rng.sample(cases, min(len(cases), 1500))
    _report("routed", _compare(cases, "learning_event.routed.json", routable, extra_exceptions=data_exceptions))


def test_the_comparison_covered_enough_cases():
    if len(RESULTS) < len(CONTRACTS) + len(DATA_CONTRACTS) + 1:
        pytest.skip("run with the whole module")
    total = sum(n for n, _, _ in RESULTS.values())
    excluded = sum((ex for _, _, ex in RESULTS.values()), Counter())
    assert total >= 3000, total
    # every exception the mutations can reach was reached (the acceptance window is not applied here:
    # decode_message without `accept`; a message over 1 MiB is not generated)
    assert set(excluded) == {
        "an object over MAX_OBJECT_BYTES", "a time zone not in the IANA database",
        "a time inside event_data out of NESTED_TIME_RANGE",
        "an object PostgreSQL cannot store (NUL, non-finite number, an integer past 64 bits)",
        "trailing newline: the validator's Python `$` (ECMA-262's does not match before it)",
    }, excluded


def test_copy_is_not_shared():  # the mutations never alter the seeds
    before = copy.deepcopy(SEEDS)
    for ev in SEEDS["learning_event"]:
        root = DOCS["learning_event.json"]
        for _ in mutations(ev, root, root):
            pass
    assert SEEDS == before
