"""The battery's test 9, ingest_idempotent_rerun (shared/RELIABILITY.md).

The small firm, ingested and built by dbt once for the whole test run (``small_warehouse``), is
copied and ingested again with no change at the vendors, then built again. The raw tables must
hold the same rows with the same content; the only rows a rerun may write are the reference
lists replaced on every run (HubSpot's owners, pipelines, stages and property definitions: same
content, new load id) and dlt's bookkeeping (``_dlt_loads``, ``_dlt_pipeline_state``). Canonical
tables and marts must come out the same, except columns that by design say when a run happened.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from ingestion.pipeline import ingest
from pslake import transform
from sandbox.server.app import SandboxThread
from tests.conftest import BuiltFirm
from tests.ingestion.battery import FAST, RAW, clean_env, differences, differing_columns
from tests.reliability import record

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Replaced on every run (ingestion/hubspot/README.md): the rerun writes them again, same content.
REPLACED_EVERY_RUN = ("raw_hubspot.owners", "raw_hubspot.deal_pipelines",
                      "raw_hubspot.deal_stages", "raw_hubspot.properties")
# Columns whose whole point is the latest run: they change on every run, by design (the newest
# load of the CRM is the rerun, which wrote the owners list again). Those measured on the clock
# count the boundaries crossed: hours since the latest load differ when a clock hour turns
# between the two builds, exception ages (first to last seen, in days) when midnight does.
RUN_TIME_COLUMNS = {
    "marts.mart_integration_health": ("latest_load_id", "latest_loaded_at",
                                      "latest_load_row_count", "hours_since_latest_load",
                                      "source_freshness_checked_at", "max_exception_age_days",
                                      "avg_exception_age_days",
                                      "exceptions_open_over_7_days_count"),
    "marts.rec_exception_log": ("last_seen_at",),
    "marts.rec_exceptions": ("last_seen_at",),
}


def _rows(warehouse: Path, schemas: tuple[str, ...]) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_schema "
            f"in ({', '.join(repr(s) for s in schemas)})").fetchall()
        return {f"{s}.{t}": con.execute(f'select count(*) from {s}."{t}"').fetchone()[0]
                for s, t in tables}


def test_an_identical_rerun_changes_no_raw_row_and_no_mart(
        small_warehouse: BuiltFirm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)
    data = tmp_path / "data"
    shutil.copytree(small_warehouse.data_dir, data)
    before, after = small_warehouse.warehouse, data / transform.WAREHOUSE_FILE
    with SandboxThread(data / "sandbox"):
        result = ingest(data_dir=data, http=FAST)
    assert not result.errors, result.errors
    raw_changed = differences(before, after, RAW)
    # rows written again: the same content under the rerun's load id (each counts twice)
    rewritten = {name: n // 2 for name, n in differences(before, after, RAW,
                                                         keep=("_dlt_load_id",)).items()}
    counts_before, counts_after = _rows(before, RAW), _rows(after, RAW)
    new_rows = {name: counts_after[name] - counts_before.get(name, 0) for name in counts_after
                if counts_after[name] != counts_before.get(name, 0)}
    # the models only (``dbt run``): the data tests write no table the comparison reads
    rebuilt = transform.build(data, as_of=small_warehouse.as_of, command="run")
    assert rebuilt.success, rebuilt.failures
    marts_changed = differences(before, after, ("canonical", "marts"), skip=RUN_TIME_COLUMNS)
    changed = sum(raw_changed.values()) + sum(marts_changed.values())
    record("ingest_idempotent_rerun", rows_changed=changed,
           raw_rows_changed=sum(raw_changed.values()),
           mart_rows_changed=sum(marts_changed.values()),
           new_raw_rows=sum(n for name, n in new_rows.items() if not name.split(".")[1]
                            .startswith("_dlt")),
           rows_rewritten_same_content=sum(rewritten.values()),
           loads_added=sum(n for name, n in new_rows.items() if name.endswith("._dlt_loads")))
    assert not any(raw_changed.values()), {k: v for k, v in raw_changed.items() if v}
    assert not any(marts_changed.values()), {
        name: (n, differing_columns(before, after, name)) for name, n in marts_changed.items() if n}
    assert set(new_rows) <= {f"{s}.{t}" for s in RAW for t in ("_dlt_loads",
                                                               "_dlt_pipeline_state")}, new_rows
    assert {name for name, n in rewritten.items() if n} <= set(REPLACED_EVERY_RUN), rewritten
