"""Integration health: per source, the last load and its volume, freshness, quarantine, exceptions.

Firm-wide: shown only to users who see every entity.
"""

from __future__ import annotations

import streamlit as st

from app.state import firm_wide_only, query, show_table

st.header("Integration health")
firm_wide_only("Integration health counts every entity's records, per source system and "
               "load, not per month or practice")
health = query("integration_health")
if health.is_empty():
    st.info("No loads recorded yet: run `pslake ingest` then `pslake transform`.")
    st.stop()
for column, row in zip(st.columns(health.height), health.iter_rows(named=True), strict=True):
    hours = row["hours_since_latest_load"]
    column.metric(f"{row['system_name']} ({row['system_role']})",
                  "never loaded" if hours is None else f"{hours} h since last load",
                  f"{row['quarantined_row_count'] or 0} quarantined", delta_color="off",
                  help=f"{row['record_count']:,} rows held; the last load wrote "
                       f"{row['latest_load_row_count']:,}")
    stale = row["stale_source_table_count"] or 0
    column.caption(f"source freshness: {row['source_freshness_status']}"
                   + (f" ({stale} stale {'table' if stale == 1 else 'tables'})" if stale else ""))
    if row["is_volume_anomaly"]:
        column.warning(f"volume drop: the last load wrote {row['latest_load_row_count']:,} rows, "
                       f"{abs(row['latest_load_volume_z'] or 0):.1f} standard deviations below "
                       "the loads before it")
show_table(health, "health_systems", "integration-health.csv")
