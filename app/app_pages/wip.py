"""WIP and unbilled time: value by age bucket, by client and project, the oldest first."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from app.state import context, money, money_view, query, show_table

ctx = context()
st.header("WIP and unbilled time")
st.subheader(f"WIP at the end of {ctx.month:%B %Y}")
wip = money_view(query("wip_by_engagement", ctx.month, ctx.entity_ids), ctx.currency)
if ctx.practices:
    st.caption("The practice filter applies to unbilled time only: WIP is by project.")
if "wip_amount_reporting" in wip.columns and not wip.is_empty():
    st.metric("WIP", money(wip["wip_amount_reporting"].sum(), ctx.reporting_currency))
show_table(wip, "wip_projects", f"wip-{ctx.month:%Y-%m}.csv",
           empty="No WIP for this period and these entities.")

st.subheader("Unbilled approved time today, by age")
buckets = query("unbilled_by_age", ctx.entity_ids, ctx.practices)
if buckets.is_empty():
    st.info("No unbilled approved time for these entities and practices.")
    st.stop()
st.metric("Unbilled approved time",
          money(buckets["unbilled_reporting"].sum(), ctx.reporting_currency))
st.altair_chart(
    alt.Chart(buckets.with_columns(pl.col("unbilled_reporting").cast(pl.Float64)).to_pandas())
    .mark_bar().encode(x=alt.X("age_bucket:N", sort=None, title="days since the work"),
                       y=alt.Y("unbilled_reporting:Q", title=ctx.reporting_currency)),
    width="stretch")
show_table(buckets, "wip_buckets", "unbilled-by-age.csv")
st.subheader("By client and project, oldest first")
show_table(money_view(query("unbilled_by_project", ctx.entity_ids, ctx.practices),
                      ctx.currency), "wip_unbilled_projects", "unbilled-by-project.csv")
