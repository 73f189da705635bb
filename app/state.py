"""What every page shares: the signed-in user, the filters, the snapshot and cached queries.

``streamlit_app.py`` signs the user in, opens the published snapshot, draws the filters and puts
a ``Context`` in the session before it runs the page; pages call ``context()`` and ``query()``
and draw. The snapshot is opened once per file, read-only, with DuckDB's access to other files
and the network off and its configuration locked (``connect``, ``st.cache_resource``); each
query takes its own cursor and is cached by its name and arguments (``st.cache_data``), so a new
snapshot (a new file name) is read fresh without clearing anything. The entities a query is
limited to come from ``entity_scope``: what the user picked, cut to what the user is granted. A
query the snapshot cannot answer (a mart missing, an unreadable file) stops the page with a
sentence naming the command that fixes it, never a traceback.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
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
    latest_month: dt.date
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

    @property
    def is_latest_month(self) -> bool:
        """True when the selected month is the newest the marts cover (figures as of today)."""
        return self.month >= self.latest_month


# RELIABILITY.md design decision 7: read-only, no reading or writing other files or the network
# (read_csv, attach, copy, install), and no statement may change that (set ... is refused).
SNAPSHOT_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False, "lock_configuration": True}


def connect(path: str) -> duckdb.DuckDBPyConnection:
    """A connection to a snapshot as the app opens it (``SNAPSHOT_CONFIG``), read-only.

    DuckDB refuses a second connection to a file with another configuration in the same process,
    so code that reads a snapshot beside the app (the tests' oracle queries) opens it here too.
    """
    return duckdb.connect(path, read_only=True, config=dict(SNAPSHOT_CONFIG))


@st.cache_resource(max_entries=4)
def _connection(path: str) -> duckdb.DuckDBPyConnection:
    return connect(path)


def entity_scope(picked: Iterable[object], granted: Sequence[str],
                 sees_every_entity: bool) -> tuple[list[str], bool]:
    """The legal entities the queries are limited to, and whether they are every entity.

    The entities picked in the filter that are granted (in the grants' order), else every granted
    one: anything else picked (another entity's id, text a tampered browser sent) is dropped.
    The second value, which lets a query use the firm's own totals and the exceptions tied to no
    entity, is true only for a user granted every entity who has all of them picked.
    """
    wanted = {p for p in picked if isinstance(p, str)}
    chosen = [e for e in granted if e in wanted] or list(granted)
    return chosen, sees_every_entity and set(chosen) == set(granted)


@st.cache_data(ttl="5m", max_entries=256, show_spinner=False)
def _run(name: str, path: str, *args: Any) -> Any:
    cursor = _connection(path).cursor()
    try:
        return getattr(queries, name)(cursor, *args)
    finally:
        cursor.close()


def query_error(exc: duckdb.Error, path: str) -> str:
    """What to tell the user when the snapshot cannot answer a query: the cause and the fix."""
    cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, duckdb.CatalogException | duckdb.BinderException):
        return (f"The published snapshot lacks a table or column this page needs ({cause}). "
                "It comes from an older or partial build: run `pslake transform`, which "
                "rebuilds the marts and publishes a new snapshot.")
    if isinstance(exc, duckdb.IOException):
        return (f"The published snapshot {path} cannot be read ({cause}): run `pslake publish` "
                "to publish the warehouse's marts again.")
    return (f"The snapshot could not answer this page's query ({cause}): run `pslake transform` "
            "to rebuild and publish the marts.")


def _answer(name: str, path: str, *args: Any) -> Any:
    try:
        return _run(name, path, *args)
    except duckdb.Error as exc:
        st.error(query_error(exc, path))
        st.stop()


def query(name: str, *args: Any) -> pl.DataFrame:
    """Run ``queries.<name>(cursor, *args)`` on the current snapshot, cached.

    A DuckDB error stops the page with ``query_error``'s sentence.
    """
    frame: pl.DataFrame = _answer(name, context().snapshot_path, *args)
    return frame


def query_on(path: str, name: str, *args: Any) -> Any:
    """Run a query on a named snapshot (before a context exists: the filters' choices)."""
    return _answer(name, path, *args)


def context() -> Context:
    """The context ``streamlit_app.py`` set for this run."""
    ctx: Context = st.session_state[CONTEXT_KEY]
    return ctx


def firm_wide_only(what: str) -> None:
    """Stop the page unless the user sees every legal entity; ``what`` says why.

    For a user who does, say that the shared filters do not apply, and why.
    """
    if not context().user.sees_every_entity:
        st.info(f"{what}, so it is shown only to users granted every legal entity.")
        st.stop()
    st.caption(f"Firm-wide: the period, legal entity and practice filters do not apply here. "
               f"{what}.")


def in_reporting_currency(what: str) -> None:
    """Say that ``what`` stays in the reporting currency when entity currency is asked for."""
    ctx = context()
    if ctx.currency == ENTITY:
        st.caption(f"{what} in the reporting currency ({ctx.reporting_currency}).")


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


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """The frame as the CSV the download button serves (a header, one line per row)."""
    return frame.write_csv().encode()


def show_table(frame: pl.DataFrame, key: str, file_name: str,
               empty: str = "No rows for these filters.") -> None:
    """The rows as a table, with a button that downloads exactly them as CSV."""
    if frame.is_empty():
        st.info(empty)
        return
    st.dataframe(frame, hide_index=True, width="stretch", key=f"{key}_table")
    st.download_button("Download CSV", csv_bytes(frame), file_name=file_name, mime="text/csv",
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
