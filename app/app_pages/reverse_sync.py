"""Reverse sync: the last runs, approvals waiting and dead letters.

The runs' planned / applied / held / failed changes; firm-wide, so shown only to users who see
every entity.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from app.state import firm_wide_only, query, show_table

WAITING = {  # tile label: the item types of sync_open_items it counts
    "Approvals waiting": ["approval_waiting"],
    "Conflicts": ["conflict"],
    "Dead letters": ["write_retrying", "write_given_up"],
}

st.header("Reverse sync to the CRM")
firm_wide_only("The reverse sync writes the CRM for the whole firm, run by run, not per entity, "
               "month or practice")
runs = query("sync_runs")
if runs.is_empty():
    st.info("No sync run yet: `pslake sync plan` then `pslake sync apply` "
            "(the journal reaches this page at the next `pslake transform`).")
else:
    latest = runs.row(0, named=True)
    started = f"{latest['started_at']:%Y-%m-%d %H:%M}" if latest["started_at"] else "-"
    columns = st.columns(5)
    columns[0].metric("Last run", f"{latest['run_kind']} {latest['run_status']}",
                      help=f"{latest['run_id']}, started {started} by {latest['actor']}")
    columns[1].metric("Planned", f"{latest['planned_count']:,}")
    columns[2].metric("Applied", f"{latest['written_count']:,}",
                      help="Changes written to the CRM by the run")
    columns[3].metric("Held for approval", f"{latest['held_count']:,}")
    columns[4].metric("Failed", f"{latest['failed_count']:,}",
                      help=f"{latest['given_up_count']:,} given up after the retry limit")
    show_table(runs, "sync_runs", "sync-runs.csv")
st.subheader("Waiting: approvals, conflicts, dead letters")
items = query("sync_open_items")
for column, (label, item_types) in zip(st.columns(len(WAITING)), WAITING.items(), strict=True):
    column.metric(label, f"{items.filter(pl.col('item_type').is_in(item_types)).height:,}")
show_table(items, "sync_items", "sync-open-items.csv",
           empty="Nothing waiting: no change needs approval and no write failed.")
