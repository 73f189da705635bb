"""WIP and unbilled time: WIP by project, unbilled time by age bucket, by client and project.

WIP is at the selected month's end, the project with the oldest unbilled work first (or the
largest WIP first); unbilled time is as of the snapshot, so the period does not apply to it.
"""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from app.state import (
    ENTITY,
    context,
    in_reporting_currency,
    money,
    money_view,
    query,
    show_table,
)

ORDERS = {  # wip_order choice: the columns to sort by, descending
    "Oldest unbilled work first": ["oldest_unbilled_days", "wip_amount_reporting"],
    "Largest WIP first": ["wip_amount_reporting"],
}

ctx = context()
st.header("WIP and unbilled time")
st.subheader(f"WIP at the end of {ctx.month:%B %Y}")
wip = query("wip_by_engagement", ctx.month, ctx.entity_ids)
if ctx.practices:
    st.caption("The practice filter applies to unbilled time only: WIP is by project.")
in_reporting_currency("Tiles and the age chart add up several entities, so they are")
if wip.is_empty():
    st.info(f"No WIP at the end of {ctx.month:%B %Y} for these entities: every project's "
            "recognised revenue was invoiced, or no work was done.")
else:
    st.metric("WIP", money(wip["wip_amount_reporting"].sum(), ctx.reporting_currency))
    order = st.radio("Order", list(ORDERS), key="wip_order", horizontal=True)
    st.caption("Oldest unbilled work: days since the project's oldest approved billable time "
               "that is still unbilled today (none for fixed fee work or billed time).")
    shown = wip.sort(ORDERS[order], descending=True, nulls_last=True, maintain_order=True)
    if ctx.currency != ENTITY:  # the marts give these to-date amounts in entity currency only
        shown = shown.drop("recognised_revenue_to_date", "invoiced_amount_to_date")
    show_table(money_view(shown, ctx.currency), "wip_projects", f"wip-{ctx.month:%Y-%m}.csv")

st.subheader("Unbilled approved time today, by age")
st.caption("Unbilled time is what is approved and not yet invoiced as of the snapshot, so the "
           "period filter does not apply to it.")
by_currency = query("unbilled_by_age", ctx.entity_ids, ctx.practices)
if by_currency.is_empty():
    st.info("No unbilled approved time for these entities and practices: everything approved "
            "has been invoiced.")
    st.stop()
buckets = (by_currency.group_by("age_bucket", maintain_order=True)
           .agg(pl.col("hours", "unbilled_reporting", "entries").sum()))
st.metric("Unbilled approved time",
          money(buckets["unbilled_reporting"].sum(), ctx.reporting_currency))
st.altair_chart(
    alt.Chart(buckets.with_columns(pl.col("unbilled_reporting").cast(pl.Float64)).to_pandas())
    .mark_bar().encode(x=alt.X("age_bucket:N", sort=None, title="days since the work"),
                       y=alt.Y("unbilled_reporting:Q", title=ctx.reporting_currency)),
    width="stretch")
if ctx.currency == ENTITY:
    show_table(money_view(by_currency, ctx.currency), "wip_buckets", "unbilled-by-age.csv")
else:
    show_table(buckets, "wip_buckets", "unbilled-by-age.csv")
st.subheader("By client and project, oldest first")
show_table(money_view(query("unbilled_by_project", ctx.entity_ids, ctx.practices),
                      ctx.currency), "wip_unbilled_projects", "unbilled-by-project.csv")
