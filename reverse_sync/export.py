"""The journal, copied into the warehouse (schema ``raw_reverse_sync``) for dbt and the dashboard.

``pslake transform`` calls :func:`export_journal` before dbt runs, so the marts (integration
health's reverse-sync failures, the sync's runs and open items) see the journal as it was when
the build started. The journal itself stays in SQLite (see :mod:`reverse_sync.journal`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pyarrow as pa

from reverse_sync.journal import STATE_FILE, sync_dir

SCHEMA = "raw_reverse_sync"

# table -> (query on the journal, columns with their types); the latest plan's changes only
TABLES: dict[str, tuple[str, dict[str, pa.DataType]]] = {
    "runs": (
        "select run_id, kind, plan_run_id, started_at, finished_at, status, actor, summary "
        "from runs",
        {"run_id": pa.string(), "kind": pa.string(), "plan_run_id": pa.string(),
         "started_at": pa.string(), "finished_at": pa.string(), "status": pa.string(),
         "actor": pa.string(), "summary": pa.string()},
    ),
    "changes": (
        "select run_id, change_id, object, record_key, crm_id, field, current_value, "
        "desired_value, reason, decision, rule, status, detail, updated_at from changes "
        "where run_id = (select run_id from runs where kind = 'plan' "
        "order by started_at desc, run_id desc limit 1)",
        {"run_id": pa.string(), "change_id": pa.string(), "object": pa.string(),
         "record_key": pa.string(), "crm_id": pa.string(), "field": pa.string(),
         "current_value": pa.string(), "desired_value": pa.string(), "reason": pa.string(),
         "decision": pa.string(), "rule": pa.string(), "status": pa.string(),
         "detail": pa.string(), "updated_at": pa.string()},
    ),
    "dead_letters": (
        "select change_id, object, record_key, crm_id, field, desired_value, reason, "
        "http_status, attempts, first_failed_at, last_failed_at, next_attempt_at, state, run_id "
        "from dead_letters",
        {"change_id": pa.string(), "object": pa.string(), "record_key": pa.string(),
         "crm_id": pa.string(), "field": pa.string(), "desired_value": pa.string(),
         "reason": pa.string(), "http_status": pa.int64(), "attempts": pa.int64(),
         "first_failed_at": pa.string(), "last_failed_at": pa.string(),
         "next_attempt_at": pa.string(), "state": pa.string(), "run_id": pa.string()},
    ),
}


def export_journal(con: duckdb.DuckDBPyConnection, data_dir: Path | None = None
                   ) -> dict[str, int]:
    """Replace the ``raw_reverse_sync`` tables with the journal's rows; returns rows per table.

    No journal yet (the sync never ran): the tables are created empty, so dbt always finds them.
    """
    journal = sync_dir(data_dir) / STATE_FILE
    source = (sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=30)
              if journal.exists() else None)
    counts = {}
    try:
        con.execute(f"create schema if not exists {SCHEMA}")
        for table, (query, columns) in TABLES.items():
            rows = source.execute(query).fetchall() if source is not None else []
            arrow = pa.table({name: pa.array([r[i] for r in rows], type=kind)
                              for i, (name, kind) in enumerate(columns.items())})
            con.register("journal_rows", arrow)
            try:
                con.execute(f"create or replace table {SCHEMA}.{table} as "
                            "select * from journal_rows")
            finally:
                con.unregister("journal_rows")
            counts[table] = len(rows)
    finally:
        if source is not None:
            source.close()
    return counts
