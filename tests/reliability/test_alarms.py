"""The battery's test 13, freshness_and_volume_alarms (shared/RELIABILITY.md).

On a copy of the small firm's warehouse, the PSA's pipeline stops (its loads are seven hours
old, past `_dlt_loads`' error_after of six) and its newest load writes a tenth of what the loads
before it wrote. `pslake transform` must raise both: `dbt source freshness` errors for the PSA,
integration health shows the error and flags the volume drop, and the volume test warns.
"""

from __future__ import annotations

import duckdb
import pytest

from pslake import transform
from tests.conftest import BuiltFirm
from tests.reliability import record

pytestmark = pytest.mark.integration

HISTORY = [100, 110, 95, 105, 90, 100]  # rows each hourly load before the newest wrote
DROPPED_ROWS = 10                       # what the newest wrote: a 90 % drop


def _replay_loads(con: duckdb.DuckDBPyConnection) -> None:
    """Give the PSA's time entries a history of hourly loads, the newest one with a drop."""
    newest, = con.execute("select max(cast(load_id as double)) from raw_harvest._dlt_loads "
                          "where status = 0").fetchall()[0]
    sizes = [*HISTORY, DROPPED_ROWS]
    offset = 0
    for hour, size in enumerate(sizes, 1):
        load_id = f"{newest + 3600 * hour:.4f}"
        con.execute("insert into raw_harvest._dlt_loads select ? as load_id, schema_name, "
                    "status, inserted_at, schema_version_hash from raw_harvest._dlt_loads "
                    "where status = 0 order by load_id desc limit 1", [load_id])
        con.execute("update raw_harvest.time_entries set _dlt_load_id = ? where id in "
                    "(select id from raw_harvest.time_entries order by id limit ? offset ?)",
                    [load_id, size, offset])
        offset += size


def test_a_stopped_pipeline_and_a_ninety_percent_volume_drop_both_raise_an_alarm(
        small_warehouse: BuiltFirm, tmp_path) -> None:
    data_dir = small_warehouse.copy_to(tmp_path / "data")
    with duckdb.connect(str(data_dir / transform.WAREHOUSE_FILE)) as con:
        _replay_loads(con)
        con.execute("update raw_harvest._dlt_loads set inserted_at = now() - interval 7 hour")
    result = transform.build(data_dir, as_of=small_warehouse.as_of,
                             select=["stg_pslake__source_freshness", "mart_integration_health"])
    assert result.success, result.failures  # alarms warn; they do not stop the build
    ledger = {v.source: v.status for v in result.freshness if v.table == "_dlt_loads"}
    with duckdb.connect(str(data_dir / transform.WAREHOUSE_FILE), read_only=True) as con:
        health = {row[0]: row[1:] for row in con.execute(
            "select system_role, source_freshness_status, latest_load_row_count, "
            "is_volume_anomaly, latest_load_volume_z from marts.mart_integration_health"
        ).fetchall()}
    warned = result.tests.warned
    raised = int(ledger["harvest"] == "error") + int(health["psa"][2] is True)
    record("freshness_and_volume_alarms", injected=2, survived=raised,
           alarms_expected=2, alarms_raised=raised, volume_test_warned=warned,
           detection_delay_loads=0 if health["psa"][2] else None,
           volume_z=float(health["psa"][3]) if health["psa"][3] is not None else None)
    assert ledger["harvest"] == "error" and ledger["hubspot"] == ledger["netsuite"] == "pass"
    assert health["psa"][0] == "error"
    assert health["psa"][1] == DROPPED_ROWS and health["psa"][2] is True
    assert health["psa"][3] is not None and health["psa"][3] <= -3
    assert health["crm"][2] is False and health["erp"][2] is False  # no false alarm
    assert warned == 1  # the volume test, on the PSA's row
