"""The battery's test 6, ingest_schema_drift_quarantine (shared/RELIABILITY.md).

All three vendors are loaded while their records drift and break: the sandbox serves a share of
records malformed (a number field as text, ``hours: "7,5h"``, or a null primary key) and adds a
new field to every vendor's records after its first page; the test relay (``tests/relay.py``)
rewrites Harvest's later time entry pages so their records carry a new nested list (``tags``)
and call ``notes`` ``note`` (a renamed field).

pslake's policy is to evolve (DESIGN.md "Loading rules", STYLE rule 7): new fields become
columns, and records that break a table's contract go to the dataset's ``quarantine`` table with
the reason; it has no strict mode. So for every raw table, counted from the data against the
golden fault-free load: each golden record is loaded or quarantined (none silently dropped,
none both), loaded rows have the golden content, and the tallies say ``received = loaded +
quarantined`` for every resource.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
import requests

from ingestion.pipeline import ingest
from sandbox.server.app import SandboxThread
from tests.ingestion.battery import (
    FAST,
    RAW,
    RUN_COLUMNS,
    Golden,
    clean_env,
    compare,
    fingerprint,
    golden_load,
)
from tests.relay import Relay, Request, Response
from tests.reliability import record

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENTRIES = "/harvest/v2/time_entries"
# the kinds of drift injected: a new field at each vendor, a new nested list, a renamed field
DRIFT_KINDS = ("hubspot new field", "harvest new field", "netsuite new field", "nested list",
               "renamed field")
DRIFT_COLUMNS = {"raw_hubspot": "hs_pslake_drift_score", "raw_harvest": "approval_status",
                 "raw_netsuite": "custbody_drift_flag"}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)


@pytest.fixture(scope="module")
def golden(small_firm_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Golden:
    return golden_load(small_firm_template, tmp_path_factory.mktemp("golden"))


class _Drift:
    """The relay's rewrite: later time entry pages get ``tags`` and lose ``notes`` to ``note``."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.rewritten = 0

    def __call__(self, request: Request, response: Response) -> bytes | None:
        if request.path != ENTRIES or "cursor=" not in request.target or response.status != 200:
            return None
        page = orjson.loads(response.body)
        for entry in page["time_entries"]:
            entry["tags"] = [{"id": self.rng.randint(1, 9), "name": f"tag {i}"}
                             for i in range(self.rng.randint(0, 3))]
            entry["note"] = entry.pop("notes", None)
            self.rewritten += 1
        return orjson.dumps(page)


def _quarantined(warehouse: Path, schema: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        present = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = ?",
            [schema]).fetchall()}
        if "quarantine" not in present:
            return []
        cursor = con.execute(f"select * from {schema}.quarantine")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _new_columns(golden: Golden, warehouse: Path) -> list[str]:
    """Columns the drifted load has and the golden load's tables do not."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            f"where table_schema in ({', '.join(repr(s) for s in RAW)}) and table_name "
            "not like '\\_dlt%' escape '\\' and table_name <> 'quarantine'").fetchall()
    new = []
    for schema, table, column in rows:
        name = f"{schema}.{table}"
        if name in golden.prints and column not in golden.prints[name].columns \
                and column not in RUN_COLUMNS:
            new.append(f"{name}.{column}")
    return sorted(new)


def _account(golden: Golden, warehouse: Path) -> dict[str, dict[str, int]]:
    """Per raw table: golden records loaded, quarantined, both, neither, and loaded unknown."""
    loaded = fingerprint(warehouse, like=golden.prints, skip=("notes",))
    quarantine = {schema: _quarantined(warehouse, schema) for schema in RAW}
    out = {}
    for name, want in golden.prints.items():
        schema, table = name.split(".")
        if table == "quarantine" or not want.key:
            continue
        have = loaded.get(name)
        have_keys = set(have.rows) if have else set()
        held = [q for q in quarantine[schema] if q["table_name"] == table]
        keyed = {tuple(q[k] for k in want.key) for q in held
                 if all(q.get(k) is not None for k in want.key)}
        keyless = len(held) - len(keyed)  # a null key: matched by count
        golden_keys = set(want.rows)
        out[name] = {
            "golden": len(golden_keys), "loaded": len(have_keys & golden_keys),
            "quarantined": len(held), "both": len(have_keys & keyed),
            "unknown": len(have_keys - golden_keys) + len(keyed - golden_keys),
            "dropped": len(golden_keys - have_keys - keyed) - keyless,
        }
    return out


def _drift(server: SandboxThread, firm: Path, golden: Golden, seed: int, rate: float) -> None:
    reply = requests.put(f"{server.root}/_sandbox/faults", timeout=10, json={
        "malformed_rate": rate, "drift": True, "drift_after": 1, "seed": seed})
    assert reply.status_code == 200, reply.text
    drift = _Drift(seed)
    with Relay(server.port, rewrite=drift) as relay:
        relay.point(firm / "endpoints.json")
        result = ingest(data_dir=firm.parent, http=FAST)
    assert not result.errors, result.errors
    warehouse = firm.parent / "warehouse.duckdb"
    accounts = _account(golden, warehouse)
    new_columns = _new_columns(golden, warehouse)
    reasons = Counter(q["reason"] for schema in RAW for q in _quarantined(warehouse, schema))
    malformed = server.state.faults.injected.get("malformed", 0)
    dropped = sum(a["dropped"] for a in accounts.values())
    doubled = sum(a["both"] + a["unknown"] for a in accounts.values())
    unbalanced = [f"{run.vendor}.{t.table}" for run in result.runs
                  for t in run.tally.tables.values()
                  if t.received != t.passed + t.quarantined + t.deferred]
    # content of the keyed tables (associations follow their records: those of a record that
    # came without its id cannot be read, and the quarantine table is compared above)
    renamed = fingerprint(golden.data_dir / "warehouse.duckdb", like=golden.prints,
                          skip=("notes",))
    content = compare(renamed, fingerprint(warehouse, like=renamed),
                      [name for name, p in golden.prints.items() if p.key])
    changed = content.total("changed")
    injected = malformed + len(DRIFT_KINDS)
    record("ingest_schema_drift_quarantine", seed=seed, injected=injected,
           survived=injected if not (dropped or doubled or changed) else 0,
           bad_inputs=malformed, quarantined=dict(reasons), lost=dropped + changed,
           duplicates=doubled, drift_events=len(new_columns), new_columns=new_columns,
           rows_silently_dropped=dropped, records_rewritten=drift.rewritten,
           strict_mode="none: the policy is to evolve")
    assert dropped == 0, {n: a for n, a in accounts.items() if a["dropped"]}
    assert doubled == 0, {n: a for n, a in accounts.items() if a["both"] or a["unknown"]}
    assert changed == 0, {n: t for n, t in content.tables.items() if t["changed"]}
    assert not unbalanced, unbalanced
    assert sum(a["quarantined"] for a in accounts.values()) == sum(reasons.values()) > 0
    assert all(reason for reason in reasons), "every quarantined row has a reason"
    # every kind of drift evolved into a column, and the renamed field kept every value
    for schema, column in DRIFT_COLUMNS.items():
        assert any(c.startswith(schema) and c.endswith(f".{column}") for c in new_columns), column
    assert {"raw_harvest.time_entries.tags", "raw_harvest.time_entries.note"} <= set(
        new_columns), new_columns
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute(f"ATTACH '{golden.data_dir / 'warehouse.duckdb'}' AS g (READ_ONLY)")
        moved = con.execute(
            "select count(*), count(*) filter (where t.notes is not null and t.note is not null), "
            "count(*) filter (where coalesce(t.notes, t.note) is distinct from g_t.notes) "
            "from raw_harvest.time_entries t join g.raw_harvest.time_entries g_t using (id)"
        ).fetchone()
    assert moved is not None and moved[1] == 0 and moved[2] == 0, moved


@pytest.mark.parametrize("seed", [5])
def test_drifting_and_malformed_records_are_loaded_or_quarantined_and_none_dropped(
        served_firm: SandboxThread, small_firm: Path, golden: Golden, seed: int) -> None:
    _drift(served_firm, small_firm, golden, seed, rate=0.05)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(100, 110))
def test_many_seeds_of_drift_and_malformed_records_drop_nothing(
        served_firm: SandboxThread, small_firm: Path, golden: Golden, seed: int) -> None:
    _drift(served_firm, small_firm, golden, seed, rate=0.01 + (seed % 5) * 0.03)
