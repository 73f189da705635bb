"""The battery's test 7, ingest_json_fuzz (shared/RELIABILITY.md).

After a first load of Harvest, each Hypothesis example is a handful of time entry records drawn
from the time entry's JSON schema (below) and then mutated: wrong types, huge strings,
NaN/Infinity, deep nesting, invalid UTF-8, duplicate keys, missing fields, odd Unicode,
elements that are not objects, and now and then a record cut off mid-way. The test relay
(``tests/relay.py``) puts them on the first page of the time entries an incremental ``pslake``
run reads, and truncates some of those pages at the byte level on the way (toxiproxy's
``limit_data``). Every record carries a tag, so its fate
can be read from the warehouse.

No example may crash the run uncontrolled (an exception out of ``ingest``). Either the run loads
and every record is loaded or quarantined with a reason, exactly once, the valid ones loaded;
or the run is rejected as a whole (a page that is no JSON at all: a record cut off) with one
line per vendor, no record of the example loaded, and the line holds no record payload and no
secret.

(``hypothesis-jsonschema`` is not among the project's dependencies; the few JSON Schema keywords
the schema uses are turned into strategies here.)
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from ingestion.pipeline import ingest
from sandbox.server.app import SandboxThread
from tests.ingestion.battery import FAST, clean_env, secrets_of
from tests.relay import Faults, Relay, Request, Response
from tests.reliability import record

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENTRIES = "/harvest/v2/time_entries"
TAG = "pslake_fuzz"
REF = {"type": "object", "required": ["id", "name"],
       "properties": {"id": {"type": "integer", "minimum": 1, "maximum": 2**40},
                      "name": {"type": "string", "maxLength": 30}}}
# A Harvest time entry as the API documents it (the fields pslake's contract types, and more).
TIME_ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["spent_date", "hours", "user", "client", "project", "task", "billable",
                 "is_locked", "created_at"],
    "properties": {
        "spent_date": {"type": "string", "format": "date"},
        "hours": {"type": "number", "minimum": 0, "maximum": 24},
        "rounded_hours": {"type": "number", "minimum": 0, "maximum": 24},
        "notes": {"type": ["string", "null"], "maxLength": 200},
        "user": REF, "client": REF, "project": REF, "task": REF,
        "billable": {"type": "boolean"}, "is_locked": {"type": "boolean"},
        "is_billed": {"type": "boolean"},
        "billable_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1000},
        "cost_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1000},
        "external_reference": {"type": "null"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
TYPED = ("hours", "spent_date", "id", "billable", "is_locked", "cost_rate", "user",
         "created_at", "updated_at", "rounded_hours")
MUTATIONS = ("valid", "wrong_type", "huge_string", "nan_infinity", "deep_nesting",
             "invalid_utf8", "duplicate_key", "missing_fields", "unicode", "not_object")
_BAD_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80abc")


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A strategy for the JSON Schema keywords used above."""
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    options = []
    for kind in kinds:
        if kind == "object":
            props = schema.get("properties", {})
            required = set(schema.get("required", ()))
            options.append(st.fixed_dictionaries(
                {k: from_schema(v) for k, v in props.items() if k in required},
                optional={k: from_schema(v) for k, v in props.items() if k not in required}))
        elif kind == "integer":
            options.append(st.integers(schema.get("minimum"), schema.get("maximum")))
        elif kind == "number":
            options.append(st.decimals(schema.get("minimum"), schema.get("maximum"), places=2)
                           .map(float))
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "null":
            options.append(st.none())
        elif schema.get("format") == "date":
            options.append(st.dates(dt.date(2020, 1, 1), dt.date(2026, 12, 31))
                           .map(dt.date.isoformat))
        elif schema.get("format") == "date-time":
            options.append(st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2026, 11, 30))
                           .map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")))
        else:
            options.append(st.text(max_size=schema.get("maxLength", 50)))
    return st.one_of(options)


@dataclass(frozen=True)
class Mutation:
    """What to do to a valid record."""

    kind: str
    target: str = ""
    value: Any = None


_odd_value = st.one_of(st.text(max_size=20), st.integers(), st.floats(allow_nan=False),
                       st.booleans(), st.none(), st.lists(st.integers(), max_size=3),
                       st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
MUTATION = st.one_of(
    st.just(Mutation("valid")),
    st.builds(Mutation, st.just("wrong_type"), st.sampled_from(TYPED), _odd_value),
    st.builds(Mutation, st.just("huge_string"), st.just("notes"),
              st.integers(100_000, 1_500_000)),
    st.builds(Mutation, st.just("nan_infinity"),
              st.sampled_from(("hours", "cost_rate", "billable_rate", "custom_score")),
              st.sampled_from((b"NaN", b"Infinity", b"-Infinity"))),
    st.builds(Mutation, st.just("deep_nesting"), st.sampled_from(("list", "object")),
              st.integers(2, 300)),
    st.builds(Mutation, st.just("invalid_utf8"), st.just("notes"), st.sampled_from(_BAD_UTF8)),
    st.builds(Mutation, st.just("duplicate_key"), st.sampled_from((*TYPED, "notes")),
              _odd_value),
    st.builds(Mutation, st.just("missing_fields"), st.just(""),
              st.lists(st.sampled_from(("id", "updated_at", "hours", "spent_date", "user")),
                       min_size=1, max_size=3, unique=True)),
    st.builds(Mutation, st.just("unicode"), st.just("notes"),
              st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)),
    st.builds(Mutation, st.just("not_object"), st.just(""),
              st.sampled_from((b"42", b'"a string"', b"[1, 2]", b"null", b"true"))),
)
# one example in six ends with a record cut off mid-way (the page is then no JSON at all)
EXAMPLE = st.tuples(st.lists(st.tuples(from_schema(TIME_ENTRY), MUTATION), min_size=3,
                             max_size=12),
                    st.sampled_from((None, None, None, None, None, 0.5)))


_PLAIN = {"spent_date": "2026-11-02", "hours": 1.5, "notes": "plain", "billable": True,
          "is_locked": False, "created_at": "2026-11-02T09:00:00Z",
          **{name: {"id": 1, "name": name} for name in ("user", "client", "project", "task")}}
CUT_OFF = [(_PLAIN, Mutation("valid")), (_PLAIN, Mutation("valid"))]


@dataclass
class Fuzzed:
    """One record as sent: its tag, what was done to it, its bytes and its own values."""

    tag: str
    mutation: Mutation
    raw: bytes
    values: dict[str, Any]


def _json(value: Any) -> bytes:
    # the standard library's encoder: integers past 64 bits are fuzz input too
    return json.dumps(value, separators=(",", ":")).encode()


def _encode(values: dict[str, Any], mutation: Mutation) -> bytes:
    """The record's JSON, with the mutations JSON cannot express written in as raw bytes."""
    raw_parts: dict[str, bytes] = {}
    kind = mutation.kind
    if kind == "nan_infinity":
        values[mutation.target] = "\x00raw\x00"
        raw_parts[mutation.target] = mutation.value
    elif kind == "invalid_utf8":
        values["notes"] = "\x00raw\x00"
        raw_parts["notes"] = b'"bad ' + mutation.value + b' bytes"'
    elif kind == "deep_nesting":
        depth = mutation.value
        nested = (b"[" * depth + b"1" + b"]" * depth if mutation.target == "list"
                  else b'{"a":' * depth + b"1" + b"}" * depth)
        values["external_reference"] = "\x00raw\x00"
        raw_parts["external_reference"] = nested
    body = _json(values)
    for _name, part in raw_parts.items():
        body = body.replace(b'"\\u0000raw\\u0000"', part, 1)
    if kind == "duplicate_key":
        body = body[:-1] + b"," + _json(mutation.target) + b":" + _json(mutation.value) + b"}"
    return body


def _build(entry: dict[str, Any], mutation: Mutation, tag: str, record_id: int,
           updated_at: str) -> Fuzzed:
    values = {"id": record_id, **entry, "updated_at": updated_at, TAG: tag}
    kind = mutation.kind
    if kind == "not_object":
        return Fuzzed(tag, mutation, mutation.value, {})
    if kind == "wrong_type":
        values[mutation.target] = mutation.value
    elif kind == "huge_string":
        values["notes"] = f"{tag} " + "x" * mutation.value
    elif kind == "missing_fields":
        for name in mutation.value:
            values.pop(name, None)
    elif kind == "unicode":
        values["notes"] = mutation.value
    return Fuzzed(tag, mutation, _encode(dict(values), mutation), values)


class _Injector:
    """The relay's rewrite: the example's records first on the first page of time entries."""

    def __init__(self) -> None:
        self.records: list[bytes] = []

    def __call__(self, request: Request, response: Response) -> bytes | None:
        if (request.path != ENTRIES or "cursor=" in request.target or response.status != 200
                or not self.records):
            return None
        body = response.body
        at = body.index(b'"time_entries":[') + len(b'"time_entries":[')
        separator = b"" if body[at:at + 1] == b"]" else b","
        return body[:at] + b",".join(self.records) + separator + body[at:]


@dataclass
class Rig:
    """The served firm behind the relay, its first load done, and the tallies of the test."""

    data_dir: Path
    relay: Relay
    injector: _Injector
    secrets: list[str]
    start: dt.datetime
    examples: itertools.count[int] = field(default_factory=itertools.count)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7_000_000_000, 10))
    outcomes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    crashes: int = 0
    leaks: int = 0


@pytest.fixture
def rig(served_firm: SandboxThread, small_firm: Path, monkeypatch: pytest.MonkeyPatch
        ) -> Iterator[Rig]:
    clean_env(monkeypatch)
    injector = _Injector()
    with Relay(served_firm.port, rewrite=injector) as relay:
        relay.point(small_firm / "endpoints.json")
        first = ingest(data_dir=small_firm.parent, sources=["harvest"], http=FAST)
        assert not first.errors, first.errors
        yield Rig(small_firm.parent, relay, injector, secrets_of(small_firm),
                  dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))


def _fates(data_dir: Path, tags: set[str]) -> tuple[Counter[str], Counter[str], dict[str, str]]:
    """How often each tag is in the raw table and in quarantine, and its quarantine reason."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        columns = {r[0] for r in con.execute("describe raw_harvest.time_entries").fetchall()}
        loaded = Counter(r[0] for r in con.execute(
            f"select {TAG} from raw_harvest.time_entries where {TAG} is not null").fetchall()
        ) if TAG in columns else Counter()
        held = con.execute(
            "select json_extract_string(record, '$.pslake_fuzz'), reason from "
            "raw_harvest.quarantine where table_name = 'time_entries'").fetchall() if \
            con.execute("select count(*) from information_schema.tables where table_schema = "
                        "'raw_harvest' and table_name = 'quarantine'").fetchone()[0] else []
    quarantined = Counter(tag for tag, _ in held if tag in tags)
    reasons = {tag: reason for tag, reason in held if tag in tags}
    return Counter({t: n for t, n in loaded.items() if t in tags}), quarantined, reasons


def _strays(data_dir: Path) -> int:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        found = con.execute("select count(*) from information_schema.tables where table_schema "
                            "= 'raw_harvest' and table_name = 'quarantine'").fetchone()[0]
        return con.execute("select count(*) from raw_harvest.quarantine where reason = "
                           "'not a JSON object'").fetchone()[0] if found else 0


def _try(rig: Rig, example: list[tuple[dict[str, Any], Mutation]], cut: float | None) -> None:
    """Send one example through a run and check what became of each record."""
    number = next(rig.examples)
    stamp = rig.start + dt.timedelta(seconds=2 * number)
    batch = [_build(entry, mutation, f"ex{number}-{i}", next(rig.ids),
                    (stamp + dt.timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z"))
             for i, (entry, mutation) in enumerate(example)]
    if cut is not None:  # the last record cut off: the page's JSON ends inside it
        last = batch[-1]
        batch[-1] = Fuzzed(last.tag, Mutation("cut_off"), last.raw[:int(len(last.raw) * cut)],
                           last.values)
    rig.kinds.update(f.mutation.kind for f in batch)
    rig.injector.records = [f.raw for f in batch]
    strays_before = _strays(rig.data_dir)
    try:
        result = ingest(data_dir=rig.data_dir, sources=["harvest"], http=FAST,
                        deletion_scan_hours=24)
    except Exception:
        rig.crashes += 1
        raise
    finally:
        rig.injector.records = []
    tagged = [f for f in batch if f.mutation.kind != "not_object"]
    tags = {f.tag for f in tagged}
    loaded, quarantined, reasons = _fates(rig.data_dir, tags)
    if result.errors:
        rig.outcomes["rejected-run"] += len(batch)
        text = "\n".join(result.errors)
        payloads = [*rig.secrets, *tags, *(str(f.values.get("notes"))[:40] for f in tagged
                                           if len(str(f.values.get("notes") or "")) >= 8)]
        rig.leaks += sum(1 for p in payloads if p in text)
        assert len(result.errors) == 1 and "\n" not in result.errors[0], result.errors
        assert not any(p in text for p in payloads), "a record's data is in the error line"
        assert not loaded and not quarantined, "a rejected run loaded part of the example"
        return
    rig.outcomes["loaded"] += sum(loaded.values())
    rig.outcomes["quarantined"] += sum(quarantined.values())
    strays = sum(1 for f in batch if f.mutation.kind == "not_object")
    rig.outcomes["quarantined"] += strays
    for f in tagged:
        fates = loaded[f.tag] + quarantined[f.tag]
        assert fates == 1, (f.mutation, f.raw[:300], loaded[f.tag], quarantined[f.tag])
        if quarantined[f.tag]:
            assert reasons[f.tag], f.mutation
        if f.mutation.kind == "valid":
            assert loaded[f.tag] == 1, (reasons.get(f.tag), f.raw[:300])
    # elements that are not objects carry no tag: each is one quarantined row
    assert _strays(rig.data_dir) - strays_before == strays


def _fuzz(rig: Rig, seed: int, examples: int) -> None:
    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example])
    @given(example=EXAMPLE)
    @example(example=(CUT_OFF, 0.5))  # always one page that is no JSON at all
    def run(example: tuple[list[tuple[dict[str, Any], Mutation]], float | None]) -> None:
        _try(rig, *example)

    try:
        run()
    finally:
        tried = sum(rig.kinds.values())
        bad = tried - rig.kinds["valid"]
        truncated = rig.relay.injected["truncate"]
        record("ingest_json_fuzz", seed=seed, injected=bad + truncated,
               survived=(bad + truncated) if not (rig.crashes or rig.leaks) else 0,
               bad_inputs=bad + truncated, quarantined=rig.outcomes["quarantined"],
               leaked=rig.leaks, examples=next(rig.examples), records_tried=tried,
               split=dict(rig.outcomes), by_mutation=dict(rig.kinds),
               truncated_bodies=truncated, crashes=rig.crashes)
    assert rig.crashes == 0 and rig.leaks == 0


def _truncate_entries(rig: Rig, seed: int) -> None:
    rig.relay.faults = Faults(rate=0.25, kinds=("truncate",), seed=seed, only=ENTRIES)


@pytest.mark.parametrize("seed", [7])
def test_fuzzed_records_are_loaded_or_quarantined_or_reject_the_run_without_leaking(
        rig: Rig, seed: int) -> None:
    _truncate_entries(rig, seed)
    _fuzz(rig, seed, examples=6)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(100, 106))
def test_many_seeds_of_fuzzed_records_never_crash_or_leak(rig: Rig, seed: int) -> None:
    _truncate_entries(rig, seed)
    _fuzz(rig, seed, examples=40)
