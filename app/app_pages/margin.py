"""Margin: by project (the worst first), client, practice and legal entity."""

from __future__ import annotations

import streamlit as st

from app.state import context, money_view, query, show_table

ctx = context()
st.header(f"Margin, {ctx.month:%B %Y}")
by_project = money_view(query("margin_by_engagement", ctx.month, ctx.entity_ids), ctx.currency)
if by_project.is_empty():
    st.info("No revenue or cost for this period and these entities: pick another filter.")
    st.stop()
if ctx.practices:
    st.caption("The practice filter applies to the practice table only: a project's margin "
               "is not split by practice.")
tabs = st.tabs(["Projects, worst first", "Clients", "Practices", "Legal entities"])
with tabs[0]:
    show_table(by_project, "margin_project", f"margin-projects-{ctx.month:%Y-%m}.csv")
with tabs[1]:
    show_table(money_view(query("margin_by_client", ctx.month, ctx.entity_ids), ctx.currency),
               "margin_client", f"margin-clients-{ctx.month:%Y-%m}.csv")
with tabs[2]:
    show_table(money_view(query("margin_by_practice", ctx.month, ctx.entity_ids,
                                ctx.practices), ctx.currency),
               "margin_practice", f"margin-practices-{ctx.month:%Y-%m}.csv")
with tabs[3]:
    show_table(money_view(query("margin_by_entity", ctx.month, ctx.entity_ids), ctx.currency),
               "margin_entity", f"margin-entities-{ctx.month:%Y-%m}.csv")
