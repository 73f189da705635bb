"""The battery's test 10, dbt_gates_catch_bad_data (shared/RELIABILITY.md).

Bad rows go into the raw tables behind staging of a copy of the small firm's warehouse, as if a
loader had let them through: duplicate keys, missing foreign keys, time on people who do not
exist, negative hours, a transaction type the models do not know, an invoice in a currency with
no FX rate.
`dbt build --store-failures` must catch each with the dbt test named for it, that test must
count exactly the rows injected (in dbt's result and in the table it stores), and no other test
may fail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pslake import transform
from tests.conftest import BuiltFirm
from tests.reliability import record

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# name: (the dbt test that must catch it, rows it must count, the corruption)
INJECTIONS: dict[str, tuple[str, int, str]] = {
    "duplicate time entry ids": (
        "unique_stg_harvest__time_entries_time_entry_id", 3,
        "insert into raw_harvest.time_entries select * from raw_harvest.time_entries "
        "order by id limit 3"),
    # (a null primary key cannot reach the raw table: dlt declares it not null)
    "time entries without a person": (
        "not_null_stg_harvest__time_entries_user_id", 2,
        "insert into raw_harvest.time_entries select * replace (id + 920000000 as id, "
        "null as user__id) from raw_harvest.time_entries order by id limit 2 offset 10"),
    "time on people who do not exist": (
        "relationships_stg_harvest__time_entries_user_id__user_id__ref_stg_harvest__users_", 4,
        "insert into raw_harvest.time_entries select * replace (id + 900000000 as id, "
        "user__id + 900000000 as user__id) from raw_harvest.time_entries order by id "
        "limit 4 offset 20"),
    "negative hours": (
        "accepted_range_stg_harvest__time_entries_hours__0", 2,
        "insert into raw_harvest.time_entries select * replace (id + 910000000 as id, "
        "-hours as hours) from raw_harvest.time_entries order by id limit 2 offset 30"),
    "unknown transaction types": (
        "accepted_values_stg_netsuite__transactions_transaction_type__CustInvc__CustPymt__CustCred",
        2,
        "insert into raw_netsuite.transaction select * replace (id + 900000000 as id, "
        "'Custom' || cast(id as varchar) as type) from raw_netsuite.transaction "
        "where type = 'CustPymt' order by id limit 2"),
    "an invoice in a currency with no FX rate": (
        "not_null_fct_invoices_rate_to_reporting", 1,
        "update raw_netsuite.transaction set currency = 999 where id = "
        "(select min(id) from raw_netsuite.transaction where type = 'CustInvc')"),
}


def _failing(outcome: Any) -> dict[str, Any]:
    """The tests that failed or warned (skipped ones, downstream of a failure, left out)."""
    return {r.node.name: r for r in outcome.result.results
            if r.node.resource_type in ("test", "unit_test")
            and str(getattr(r.status, "value", r.status)) in ("fail", "warn", "error")}


def test_each_kind_of_bad_row_is_caught_by_its_named_test_counting_exactly_what_was_injected(
        small_warehouse: BuiltFirm, tmp_path: Path) -> None:
    data_dir = small_warehouse.copy_to(tmp_path / "data")
    warehouse = data_dir / transform.WAREHOUSE_FILE
    with duckdb.connect(str(warehouse)) as con:
        for _, _, corruption in INJECTIONS.values():
            con.execute(corruption)
    outcome = transform.invoke_dbt(
        "build", ["--store-failures", "--vars",
                  json.dumps({"as_of": small_warehouse.as_of.isoformat()})], data_dir, None)
    assert outcome.exception is None, outcome.exception
    failing = _failing(outcome)
    caught = {name: int(result.failures or 0) for name, result in failing.items()}
    expected = {test: rows for test, rows, _ in INJECTIONS.values()}
    with duckdb.connect(str(warehouse), read_only=True) as con:  # the rows dbt kept
        stored = {name: con.execute(f"select count(*) from {result.node.relation_name}")
                  .fetchall()[0][0]
                  for name, result in failing.items() if name in expected}
    detected = sum(min(caught.get(test, 0), rows) for test, rows in expected.items())
    record("dbt_gates_catch_bad_data", injected=sum(expected.values()), survived=detected,
           bad_inputs=sum(expected.values()),
           per_rule={kind: {"injected": rows, "detected": caught.get(test, 0),
                            "stored": stored.get(test, 0)}
                     for kind, (test, rows, _) in INJECTIONS.items()},
           false_positives=sorted(set(caught) - set(expected)))
    assert {t: caught.get(t) for t in expected} == expected  # recall, exactly
    assert stored == expected  # store_failures keeps exactly those rows
    assert set(caught) == set(expected), "tests failing that no injection explains"
