"""Reverse sync: the last runs, approvals waiting and dead letters.

The runs' planned / applied / held / failed changes; firm-wide, so shown only to users who see
every entity.
"""

from __future__ import annotations

import streamlit as st

from app.state import firm_wide_only, query, show_table

st.header("Reverse sync to the CRM")
firm_wide_only("The reverse sync writes the CRM for the whole firm")
runs = query("sync_runs")
if runs.is_empty():
    st.info("No sync run yet: `pslake sync plan` then `pslake sync apply` "
            "(the journal reaches this page at the next `pslake transform`).")
else:
    latest = runs.row(0, named=True)
    columns = st.columns(4)
    columns[0].metric("Last run", f"{latest['run_kind']} {latest['run_status']}")
    columns[1].metric("Planned", f"{latest['planned_count']:,}")
    columns[2].metric("Written", f"{latest['written_count']:,}")
    columns[3].metric("Held / failed", f"{latest['held_count']:,} / {latest['failed_count']:,}")
    show_table(runs, "sync_runs", "sync-runs.csv")
st.subheader("Waiting: approvals, dead letters, given up")
items = query("sync_open_items")
show_table(items, "sync_items", "sync-open-items.csv",
           empty="Nothing waiting: no change needs approval and no write failed.")
