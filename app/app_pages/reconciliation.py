"""Reconciliation: open exceptions by type, owner and age, the amount at risk, and the rows.

An exception belongs to its engagement's legal entity, else its client's. The period picks the
exceptions already seen by the month's end (the latest month: every open one); the marts tie an
exception to no practice, so the practice filter does not apply.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from app.state import context, in_reporting_currency, money, query, show_table

ctx = context()
st.header("Reconciliation exceptions")
if ctx.is_latest_month:
    seen_before = None
    st.caption(f"{ctx.month:%B %Y} is the latest month: every exception open today.")
else:
    seen_before = dt.datetime.combine(ctx.month_end + dt.timedelta(days=1), dt.time(),
                                      tzinfo=dt.UTC)
    st.caption(f"Exceptions open today that were already seen by the end of {ctx.month:%B %Y}.")
if ctx.practices:
    st.caption("The practice filter does not apply here: the reconciliation marts tie an "
               "exception to an engagement or client, not to a practice.")
in_reporting_currency("Amounts at risk are")
rows = query("exceptions", ctx.entity_ids, ctx.every_entity, seen_before)
if rows.is_empty():
    if seen_before is None:
        st.success("No open exceptions for these entities: the three systems agree.")
    else:
        st.info(f"No exception open today had been seen by the end of {ctx.month:%B %Y} for "
                "these entities: the open ones were first seen later. Pick a later month.")
    st.stop()
if not ctx.every_entity:
    st.caption("Exceptions tied to no legal entity are shown only to users who see every "
               "entity.")
left, right = st.columns(2)
left.metric("Open exceptions", f"{rows.height:,}")
right.metric("Amount at risk",
             money(rows["amount_at_risk_reporting"].sum(), ctx.reporting_currency))


def summary(by: str) -> pl.DataFrame:
    """Count and amount at risk by one column."""
    return (rows.group_by(by)
            .agg(pl.len().alias("exceptions"),
                 pl.col("amount_at_risk_reporting").sum().alias("amount_at_risk_reporting"),
                 pl.col("age_days").max().alias("oldest_days"))
            .sort("amount_at_risk_reporting", by, descending=[True, False], nulls_last=True))


tabs = st.tabs(["By type", "By owner", "By age"])
with tabs[0]:
    show_table(summary("exception_type"), "reconciliation_type", "exceptions-by-type.csv")
with tabs[1]:
    show_table(summary("owner_team"), "reconciliation_owner", "exceptions-by-owner.csv")
with tabs[2]:
    aged = rows.with_columns(
        pl.when(pl.col("age_days") <= 7).then(pl.lit("0-7 days"))
        .when(pl.col("age_days") <= 30).then(pl.lit("8-30 days"))
        .otherwise(pl.lit("over 30 days")).alias("age"))
    show_table(aged.group_by("age").agg(pl.len().alias("exceptions"),
                                        pl.col("amount_at_risk_reporting").sum())
               .sort("age"), "reconciliation_age", "exceptions-by-age.csv")

st.subheader("The rows")
types = st.multiselect("Exception type", sorted(rows["exception_type"].unique().to_list()),
                       key="reconciliation_types", placeholder="All types")
shown = rows.filter(pl.col("exception_type").is_in(types)) if types else rows
show_table(shown, "reconciliation_rows", "exceptions.csv")
