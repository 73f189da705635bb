"""Incremental facts: after edits in the sources and an incremental ingest, an incremental
``dbt build`` leaves the facts exactly as a full rebuild would.

The edits are the awkward ones for an incremental model: a time entry moved to another project,
hours changed, an entry deleted (found by the ingestion's deletion scan, in a later load than
the entry itself).
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import duckdb
import pytest

from pslake import transform
from tests.conftest import BuiltFirm, ingest_from_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FACT_QUERY = """
    select time_entry_id, engagement_id, client_id, hours, billable_amount, is_deleted
    from canonical.fct_time_entries order by time_entry_id
"""


def _edit_store(firm: Path) -> dict[str, int]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with sqlite3.connect(firm / "harvest.sqlite") as con:
        entries = con.execute(
            # recent entries: the deletion scan covers the last 60 days of time (ingestion)
            "select id, project_id from time_entries where billable = 1 "
            "order by spent_date desc, id limit 3").fetchall()
        (moved, old_project), (rehoured, _), (deleted, _) = entries
        other = con.execute(
            "select project_id from time_entries where billable = 1 and project_id <> ? "
            "order by id limit 1", (old_project,)).fetchone()[0]
        con.execute("update time_entries set project_id = ?, updated_at = ? where id = ?",
                    (other, stamp, moved))
        con.execute("update time_entries set hours = hours + 1, updated_at = ? where id = ?",
                    (stamp, rehoured))
        con.execute("delete from time_entries where id = ?", (deleted,))
    return {"moved": moved, "rehoured": rehoured, "deleted": deleted, "to_project": other}


def test_incremental_build_after_source_edits_equals_a_full_rebuild(
        small_warehouse: BuiltFirm, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(small_warehouse.data_dir, data_dir,
                    ignore=shutil.ignore_patterns("dbt", "*.lock", "*.pickle"))
    firm = data_dir / "sandbox"
    edits = _edit_store(firm)
    time.sleep(1.1)  # the edits' second has passed: the ingest does not defer them
    ingest_from_sandbox(firm, data_dir, sources=["harvest"], deletion_scan_hours=0)

    select = ["+fct_time_entries"]
    incremental = transform.build(data_dir, select=select, as_of=small_warehouse.as_of)
    assert incremental.success, incremental.failures
    warehouse = data_dir / transform.WAREHOUSE_FILE
    with duckdb.connect(str(warehouse), read_only=True) as con:
        after_incremental = con.execute(FACT_QUERY).fetchall()
        by_ref = {row[0]: row[1:] for row in con.execute(
            "select psa_time_entry_id, engagement_id, is_deleted from canonical.fct_time_entries"
        ).fetchall()}
        new_engagement = con.execute(
            "select engagement_id from canonical.map_engagement_ids where system_role = 'psa' "
            "and system_record_id = ?", [str(edits["to_project"])]).fetchone()[0]
    assert by_ref[str(edits["moved"])] == (new_engagement, False)
    assert by_ref[str(edits["deleted"])][1] is True

    rebuilt = transform.build(data_dir, select=select, as_of=small_warehouse.as_of,
                              full_refresh=True)
    assert rebuilt.success, rebuilt.failures
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(FACT_QUERY).fetchall() == after_incremental
