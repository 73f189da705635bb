"""Utilization: by practice, role and person against target, and a heat map of people x weeks."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from app.state import context, query, show_table

HEATMAP_PEOPLE = 40

ctx = context()
st.header(f"Utilization, {ctx.month:%B %Y}")
by_practice = query("utilization_by_practice", ctx.month, ctx.entity_ids, ctx.practices)
by_person = query("utilization_by_person", ctx.month, ctx.entity_ids, ctx.practices)
if by_person.is_empty():
    st.info("No capacity or time for this period, entity and practice: pick another filter.")
    st.stop()

st.subheader("By practice, against target")
practice_long = by_practice.select(
    "practice_name",
    pl.col("utilization").cast(pl.Float64).alias("Utilization"),
    pl.col("utilization_target").cast(pl.Float64).alias("Target"),
).unpivot(index="practice_name", variable_name="measure", value_name="ratio")
st.altair_chart(
    alt.Chart(practice_long.to_pandas()).mark_bar().encode(
        x=alt.X("ratio:Q", axis=alt.Axis(format="%"), title=None),
        y=alt.Y("practice_name:N", title=None), color="measure:N", yOffset="measure:N"),
    width="stretch")
show_table(by_practice, "utilization_practice", f"utilization-practice-{ctx.month:%Y-%m}.csv")

st.subheader("By role, against target")
capacity = pl.col("capacity_hours").cast(pl.Float64)
by_role = (by_person.group_by("role_name")
           .agg(pl.len().alias("people"), pl.col("capacity_hours").sum(),
                pl.col("billable_hours").sum(),
                (pl.col("utilization_target").cast(pl.Float64) * capacity).sum()
                .alias("targeted_hours"))
           .with_columns(
               pl.when(capacity > 0)
               .then(pl.col("billable_hours").cast(pl.Float64) / capacity).round(4)
               .alias("utilization"),
               pl.when(capacity > 0).then(pl.col("targeted_hours") / capacity).round(4)
               .alias("utilization_target"))
           .drop("targeted_hours")
           .sort("utilization", "role_name", nulls_last=True))
show_table(by_role, "utilization_role", f"utilization-role-{ctx.month:%Y-%m}.csv")

st.subheader("By person, lowest first")
show_table(by_person, "utilization_person", f"utilization-person-{ctx.month:%Y-%m}.csv")

st.subheader("People x weeks (12 weeks to the end of the period)")
heat = query("utilization_heatmap", ctx.month_end, ctx.entity_ids, ctx.practices)
if heat.is_empty():
    st.info("No weekly utilization for these filters.")
else:
    lowest = (heat.group_by("person").agg(pl.col("utilization").cast(pl.Float64).mean())
              .sort("utilization", nulls_last=True).head(HEATMAP_PEOPLE)["person"])
    if heat["person"].n_unique() > HEATMAP_PEOPLE:
        st.caption(f"The {HEATMAP_PEOPLE} people with the lowest utilization over these weeks; "
                   "the CSV has everyone.")
    shown = heat.filter(pl.col("person").is_in(lowest.implode()))
    st.altair_chart(
        alt.Chart(shown.with_columns(pl.col("utilization").cast(pl.Float64)).to_pandas())
        .mark_rect().encode(
            x=alt.X("week_start_date:O", title="week", timeUnit="yearmonthdate"),
            y=alt.Y("person:N", title=None, sort=lowest.to_list()),
            color=alt.Color("utilization:Q", scale=alt.Scale(scheme="redyellowgreen",
                                                             domain=[0, 1])),
            tooltip=["person", "week_start_date", alt.Tooltip("utilization:Q", format=".0%")])
        .properties(height=max(200, 16 * lowest.len())),
        width="stretch")
    show_table(heat, "utilization_heat", f"utilization-weeks-{ctx.month:%Y-%m}.csv")
