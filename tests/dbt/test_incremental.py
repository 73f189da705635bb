"""Incremental facts: after edits in the sources and an incremental ingest, an incremental
``dbt build`` leaves the facts, and the valued time entries built from them, exactly as a full
rebuild would.

The edits are the awkward ones for an incremental model: a time entry moved to another project,
hours changed, an entry deleted (found by the ingestion's deletion scan, in a later load than
the entry itself); a rate card changed in the ERP (no time entry changed: only the valued
entries that card prices must change); a person promoted and an invoice voided in the ERP (no
time entry or posting changed: the person's entries move to another card, the invoice's entries
are no longer invoiced).
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
VALUED_QUERY = "select * from marts.int_time_entries_valued_at_rate_card order by time_entry_id"


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _edit_entries(firm: Path) -> dict[str, int]:
    stamp = _stamp()
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


def _raise_consultant_cards(firm: Path) -> int:
    """The ERP raises every Consultant card (client and standard ones) by 7."""
    with sqlite3.connect(firm / "netsuite.sqlite") as con:
        return con.execute("update customrecord_pslake_rate_card set custrecord_rc_rate = "
                           "custrecord_rc_rate + 7, lastmodifieddate = ? "
                           "where custrecord_rc_role = 'Consultant'",
                           (_stamp().replace("T", " ").rstrip("Z"),)).rowcount


def _promote(firm: Path) -> str:
    """The ERP promotes the Consultant with the most time to Senior Consultant."""
    with sqlite3.connect(firm / "netsuite.sqlite") as con:
        employee = con.execute(
            "select employee.id from employee join timebill on timebill.employee = employee.id "
            "where employee.title = 'Consultant' group by 1 order by count(*) desc, 1 limit 1"
        ).fetchone()[0]
        con.execute("update employee set title = 'Senior Consultant', lastmodifieddate = ? "
                    "where id = ?", (_stamp().replace("T", " ").rstrip("Z"), employee))
    return str(employee)


def _void_invoice(firm: Path) -> str:
    """The ERP voids the invoice with the most time on it."""
    with sqlite3.connect(firm / "netsuite.sqlite") as con:
        invoice = con.execute(
            "select invoice from timebill where invoice is not null "
            "group by 1 order by count(*) desc, 1 limit 1").fetchone()[0]
        con.execute("update \"transaction\" set voided = 'T', lastmodifieddate = ? where id = ?",
                    (_stamp().replace("T", " ").rstrip("Z"), invoice))
    return str(invoice)


def _incremental_equals_full(data_dir: Path, as_of: object) -> list[tuple]:
    """Build incrementally, then fully; both must give the same facts and valued entries."""
    select = ["+fct_time_entries", "+int_time_entries_valued_at_rate_card"]
    warehouse = data_dir / transform.WAREHOUSE_FILE
    incremental = transform.build(data_dir, select=select, as_of=as_of)
    assert incremental.success, incremental.failures
    with duckdb.connect(str(warehouse), read_only=True) as con:
        facts = con.execute(FACT_QUERY).fetchall()
        valued = con.execute(VALUED_QUERY).fetchall()
    rebuilt = transform.build(data_dir, select=select, as_of=as_of, full_refresh=True)
    assert rebuilt.success, rebuilt.failures
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(FACT_QUERY).fetchall() == facts
        assert con.execute(VALUED_QUERY).fetchall() == valued
    return valued


def _rates(data_dir: Path) -> dict[str, object]:
    with duckdb.connect(str(data_dir / transform.WAREHOUSE_FILE), read_only=True) as con:
        return dict(con.execute("select time_entry_id, contracted_rate from "
                                "marts.int_time_entries_valued_at_rate_card").fetchall())


def _entries_on_invoice(data_dir: Path, erp_invoice_id: str) -> int:
    with duckdb.connect(str(data_dir / transform.WAREHOUSE_FILE), read_only=True) as con:
        return con.execute("select count(*) from marts.int_time_entries_valued_at_rate_card "
                           "where erp_invoice_id = ?", [erp_invoice_id]).fetchone()[0]


def test_incremental_build_after_source_edits_equals_a_full_rebuild(
        small_warehouse: BuiltFirm, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(small_warehouse.data_dir, data_dir,
                    ignore=shutil.ignore_patterns("dbt", "*.lock", "*.pickle"))
    firm = data_dir / "sandbox"

    # 1. entries moved, re-houred and deleted: the incremental runs read only the new loads
    edits = _edit_entries(firm)
    time.sleep(1.1)  # the edits' second has passed: the ingest does not defer them
    ingest_from_sandbox(firm, data_dir, sources=["harvest"], deletion_scan_hours=0)
    _incremental_equals_full(data_dir, small_warehouse.as_of)
    with duckdb.connect(str(data_dir / transform.WAREHOUSE_FILE), read_only=True) as con:
        by_ref = {row[0]: row[1:] for row in con.execute(
            "select psa_time_entry_id, engagement_id, is_deleted from canonical.fct_time_entries"
        ).fetchall()}
        new_engagement = con.execute(
            "select engagement_id from canonical.map_engagement_ids where system_role = 'psa' "
            "and system_record_id = ?", [str(edits["to_project"])]).fetchone()[0]
    assert by_ref[str(edits["moved"])] == (new_engagement, False)
    assert by_ref[str(edits["deleted"])][1] is True

    # 2. rate cards changed, no entry: every entry the cards price is revalued
    before = _rates(data_dir)
    assert _raise_consultant_cards(firm) > 0
    time.sleep(1.1)
    ingest_from_sandbox(firm, data_dir, sources=["netsuite"], deletion_scan_hours=0)
    _incremental_equals_full(data_dir, small_warehouse.as_of)
    after = _rates(data_dir)
    assert sum(1 for key, rate in after.items() if key in before and before[key] != rate) > 10

    # 3. a person promoted, no entry or posting changed: the person's entries revalued
    employee = _promote(firm)
    time.sleep(1.1)
    ingest_from_sandbox(firm, data_dir, sources=["netsuite"], deletion_scan_hours=0)
    _incremental_equals_full(data_dir, small_warehouse.as_of)
    with duckdb.connect(str(data_dir / transform.WAREHOUSE_FILE), read_only=True) as con:
        roles = con.execute(
            "select distinct valued.role_name from marts.int_time_entries_valued_at_rate_card "
            "as valued join canonical.map_resource_ids as ids using (resource_id) "
            "where ids.system_role = 'erp' and ids.system_record_id = ?", [employee]).fetchall()
    assert roles == [("Senior Consultant",)]

    # 4. an invoice voided, no posting changed: its entries are no longer invoiced
    invoice = _void_invoice(firm)
    assert _entries_on_invoice(data_dir, invoice) > 0
    time.sleep(1.1)
    ingest_from_sandbox(firm, data_dir, sources=["netsuite"], deletion_scan_hours=0)
    _incremental_equals_full(data_dir, small_warehouse.as_of)
    assert _entries_on_invoice(data_dir, invoice) == 0
