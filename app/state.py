"""What every page shares: the signed-in user, the filters, the snapshot and cached queries.

``streamlit_app.py`` signs the user in, opens the published snapshot, draws the filters and puts
a ``Context`` in the session before it runs the page; pages call ``context()`` and ``query()``
and draw. The snapshot is opened once per file, read-only (``st.cache_resource``); each query
takes its own cursor and is cached by its name and arguments (``st.cache_data``), so a new
snapshot (a new file name) is read fresh without clearing anything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl
import streamlit as st

from app import queries
from app.auth import User

CONTEXT_KEY = "pslake_context"
REPORTING = "Reporting currency"
ENTITY = "Entity currency"


@dataclass(frozen=True)
class Context:
    """The signed-in user, the snapshot, and the filters every page applies."""

    user: User
    snapshot_path: str
    published_at: dt.datetime
    month: dt.date
    entity_ids: list[str]
    every_entity: bool
    practices: list[str]
    currency: str
    reporting_currency: str

    @property
    def month_end(self) -> dt.date:
        """The last day of the selected month."""
        following = (self.month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return following - dt.timedelta(days=1)


@st.cache_resource(max_entries=4)
def _connection(path: str) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(path, read_only=True)


@st.cache_data(ttl="5m", max_entries=256, show_spinner=False)
def _run(name: str, path: str, *args: Any) -> Any:
    cursor = _connection(path).cursor()
    try:
        return getattr(queries, name)(cursor, *args)
    finally:
        cursor.close()


def query(name: str, *args: Any) -> pl.DataFrame:
    """Run ``queries.<name>(cursor, *args)`` on the current snapshot, cached."""
    frame: pl.DataFrame = _run(name, context().snapshot_path, *args)
    return frame


def query_on(path: str, name: str, *args: Any) -> Any:
    """Run a query on a named snapshot (before a context exists: the filters' choices)."""
    return _run(name, path, *args)


def context() -> Context:
    """The context ``streamlit_app.py`` set for this run."""
    ctx: Context = st.session_state[CONTEXT_KEY]
    return ctx


def firm_wide_only(what: str) -> None:
    """Stop the page unless the user sees every legal entity; ``what`` says why."""
    if not context().user.sees_every_entity:
        st.info(f"{what}, so it is shown only to users granted every legal entity.")
        st.stop()


def money_view(frame: pl.DataFrame, currency: str) -> pl.DataFrame:
    """The frame with the amounts of one currency.

    ``*_reporting`` columns in the reporting currency, else the entity-currency columns they
    shadow (with ``currency_code``).
    """
    reporting = [c for c in frame.columns if c.endswith("_reporting")]
    shadowed = [c.removesuffix("_reporting") for c in reporting
                if c.removesuffix("_reporting") in frame.columns]
    if currency == ENTITY:
        return frame.drop([f"{c}_reporting" for c in shadowed])
    entity_currency = ["currency_code"] if shadowed and "currency_code" in frame.columns else []
    return frame.drop(shadowed + entity_currency)


def show_table(frame: pl.DataFrame, key: str, file_name: str,
               empty: str = "No rows for these filters.") -> None:
    """The rows as a table, with a button that downloads exactly them as CSV."""
    if frame.is_empty():
        st.info(empty)
        return
    st.dataframe(frame, hide_index=True, width="stretch", key=f"{key}_table")
    st.download_button("Download CSV", frame.write_csv(), file_name=file_name, mime="text/csv",
                       key=f"{key}_csv")


def money(value: Any, currency: str) -> str:
    """An amount as ``USD 1,234.56`` (``-`` when unknown)."""
    if value is None:
        return "-"
    return f"{currency} {value:,.2f}"


def compact_money(value: Any, currency: str) -> str:
    """An amount short enough for a tile: ``USD 4.41 M``, ``USD 127.6 k``."""
    if value is None:
        return "-"
    number = float(value)
    for size, unit in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= size:
            return f"{currency} {number / size:,.{2 if unit != 'k' else 1}f} {unit}"
    return f"{currency} {number:,.2f}"


def percent(value: Any) -> str:
    """A ratio as ``12.3 %`` (``-`` when unknown)."""
    return "-" if value is None else f"{float(value) * 100:.1f} %"
