"""Overview: the firm's KPIs for the period, the change on the previous month, and trends.

The KPIs come from ``mart_exec_kpis_monthly`` (per entity). With practices picked, revenue,
margin and utilization come from the practice marts instead; the other KPIs are not split by
practice, and a caption says so.
"""

from __future__ import annotations

import datetime as dt

import altair as alt
import polars as pl
import streamlit as st

from app.queries import PRACTICE_KPI_COLUMNS
from app.state import ENTITY, compact_money, context, money, percent, query, show_table

ctx = context()
st.header("Overview")
first = (ctx.month - dt.timedelta(days=365)).replace(day=1)
trend = query("kpi_trend", first, ctx.month, ctx.entity_ids, ctx.every_entity)
if ctx.practices:
    by_practice = query("practice_kpi_trend", first, ctx.month, ctx.entity_ids, ctx.practices)
    trend = trend.drop(PRACTICE_KPI_COLUMNS).join(by_practice, on="month_start_date",
                                                  how="left")
current = trend.filter(pl.col("month_start_date") == ctx.month)
if current.is_empty():
    st.info("No KPIs for this period and these entities: pick another month or entity.")
    st.stop()
now = current.row(0, named=True)
before_rows = trend.filter(pl.col("month_start_date") < ctx.month)
before = before_rows.row(-1, named=True) if not before_rows.is_empty() else {}
cur = ctx.reporting_currency
if ctx.practices:
    st.caption(f"Revenue, margin and utilization are for {', '.join(ctx.practices)} only; WIP, "
               "unbilled time, AR, DSO, time-to-bill lag and exceptions are for whole entities "
               "(the marts do not split them by practice).")
if ctx.currency == ENTITY:
    st.caption(f"KPIs add up several entities, so they stay in the reporting currency ({cur}).")


def delta(name: str, fmt: str = "money") -> str | None:
    """The change on the previous month, formatted like the figure."""
    if before.get(name) is None or now.get(name) is None:
        return None
    change = now[name] - before[name]
    if fmt == "percent":
        return f"{float(change) * 100:+.1f} pts"
    if fmt == "days":
        return f"{float(change):+.1f} days"
    return f"{change:+,.2f}"


def tile(label: str, name: str, kind: str, colour: str = "normal", previous: bool = True,
         note: str | None = None) -> tuple[str, str, str | None, str, str | None]:
    """A KPI tile: label, value, change on the previous month, colour, hover text."""
    value = now[name]
    change = delta(name, "percent" if kind == "percent" else
                   "days" if kind == "days" else "money") if previous else None
    if kind == "money":
        return label, compact_money(value, cur), change, colour, money(value, cur)
    if kind == "percent":
        return label, percent(value), change, colour, None
    if kind == "days":
        return label, "-" if value is None else f"{float(value):.1f} days", change, colour, None
    return label, "-" if value is None else f"{value:,}", change, colour, note


tiles = [
    tile("Revenue recognised", "recognised_revenue_reporting", "money"),
    tile("Margin", "margin_pct", "percent"),
    tile("Utilization", "utilization", "percent"),
    tile("WIP", "wip_amount_reporting", "money", "off"),
    tile("Unbilled approved time", "unbilled_amount_reporting", "money", "off", previous=False),
    tile("Unbilled average age", "unbilled_avg_age_days", "days", "off", previous=False),
    tile("AR", "ar_balance_reporting", "money", "inverse"),
    tile("DSO", "dso_days", "days", "inverse"),
    tile("Time-to-bill lag", "time_to_bill_lag_days", "days", "inverse"),
    tile("Open exceptions", "open_exception_count", "count", "off", previous=False,
         note="Exceptions on an engagement of these entities, or on a client of theirs "
              "(customer master drift, duplicates), as on the Reconciliation page."),
]
for row_start in range(0, len(tiles), 5):
    for column, (label, value, change, colour, exact) in zip(
            st.columns(5), tiles[row_start:row_start + 5], strict=False):
        column.metric(label, value, change, delta_color=colour,  # type: ignore[arg-type]
                      help=exact)
if not now["is_month_complete"]:
    st.caption(f"{ctx.month:%B %Y} is still in progress: its figures are to date.")
if now["unbilled_amount_reporting"] is None:
    st.caption("Unbilled time and open exceptions are known as of the latest month only.")

st.subheader("Trends")
long = trend.select(
    pl.col("month_start_date").alias("month"),
    pl.col("recognised_revenue_reporting").cast(pl.Float64).alias("Revenue"),
    pl.col("margin_amount_reporting").cast(pl.Float64).alias("Margin"),
).unpivot(index="month", variable_name="measure", value_name=cur)
left, right = st.columns(2)
left.altair_chart(
    alt.Chart(long.to_pandas()).mark_line(point=True).encode(
        x=alt.X("month:T", title=None), y=alt.Y(f"{cur}:Q"), color="measure:N"),
    width="stretch")
ratios = trend.select(
    pl.col("month_start_date").alias("month"),
    pl.col("utilization").cast(pl.Float64).alias("Utilization"),
    pl.col("utilization_target").cast(pl.Float64).alias("Target"),
    pl.col("margin_pct").cast(pl.Float64).alias("Margin %"),
).unpivot(index="month", variable_name="measure", value_name="ratio")
right.altair_chart(
    alt.Chart(ratios.to_pandas()).mark_line(point=True).encode(
        x=alt.X("month:T", title=None), y=alt.Y("ratio:Q", axis=alt.Axis(format="%")),
        color="measure:N"),
    width="stretch")
show_table(trend.sort("month_start_date", descending=True), "overview_trend",
           f"kpis-{ctx.month:%Y-%m}.csv")
