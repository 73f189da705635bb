"""The battery's test 24, dashboard_sqli_and_entity_isolation (shared/RELIABILITY.md).

Hostile filter values (quotes, ``' OR 1=1 --``, ``;``, Unicode, NUL, huge lists, the ids and
names of legal entities not granted) are tried two ways, each against an oracle:

* The query layer: every query of ``app/queries.py`` that takes entities, called directly on the
  app's own connection to the published snapshot (``app.state.connect``: read-only, external
  access off), for a random grant and a random, tampered pick of entities cut to the grant as the
  app cuts it (``app.state.entity_scope``), with hostile text added to the entity and practice
  lists. The oracle runs the same query on a copy of the snapshot from which every row of every
  entity not granted was deleted: a row the real answer has and the oracle's lacks came from an
  entity not granted (leaked).
* The app (AppTest): a user granted the UK entity whose browser is tampered: the filters report
  values never offered (other entities' names and ids, injections, huge lists), the filters'
  session state is set directly, and URL query parameters are added. Every table of the pages it
  opens (up to three per example) must equal the marts limited to the UK entity
  (``tests/app/oracle.py``), no other entity's name may appear, and the firm-wide pages stay
  closed. Streamlit already drops a reported value that is not an option, so here
  ``entity_scope`` is the second guard; the query-layer run shows it holds alone (a control
  checks that a tampered value naming an offered option does reach the app).

No query may fail (query errors = 0) and nothing may leak (leaked = 0). The static check (SQL only
from constants, every value bound) is ``tests/app/test_security.py``; its findings are counted
here too. The fast variants run in ``make test``; the many-example ones are ``soak``.
It lives beside the dashboard's other tests, whose fixtures it uses; the record goes where
every battery test's goes (``tests.reliability.record``).
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from app import queries, state
from tests.app.conftest import UK, Dashboard, elements, send_raw, signed_in, tables, text_of
from tests.app.oracle import CHECKS, expected, figure, shown
from tests.app.test_security import QUERIES, _problems
from tests.reliability import record

pytestmark = pytest.mark.integration

TEST = "dashboard_sqli_and_entity_isolation"
HOSTILE = [
    "' OR 1=1 --", "x' or 1=1 --", "' or '1'='1", "\" or \"\"=\"", "') or ('a'='a", ";",
    "'; drop table marts.mart_exec_kpis_monthly; --", "1; select * from canonical.dim_clients",
    "' union select legal_entity_id from canonical.dim_legal_entities --", "%", "_", "*", "?",
    "$1", "\\", "''", "null", "NULL", "", " ", "\x00", "a\x00' or 1=1 --", "Ünïcødé ✓",
    "北风咨询", "🙂\u200b\u202e", "\uff2f\uff32 \uff11\uff1d\uff11", "e" * 5000,
]
# every query that takes the entities, and its arguments from one drawn filter
ENTITY_QUERIES: dict[str, Callable[[Filters], tuple[Any, ...]]] = {
    "kpi_trend": lambda f: (f.first_month, f.month, f.entities, f.every_entity),
    "practice_kpi_trend": lambda f: (f.first_month, f.month, f.entities, f.practices),
    "utilization_by_practice": lambda f: (f.month, f.entities, f.practices),
    "utilization_by_person": lambda f: (f.month, f.entities, f.practices),
    "utilization_heatmap": lambda f: (f.month_end, f.entities, f.practices),
    "margin_by_engagement": lambda f: (f.month, f.entities),
    "margin_by_client": lambda f: (f.month, f.entities),
    "margin_by_practice": lambda f: (f.month, f.entities, f.practices),
    "margin_by_entity": lambda f: (f.month, f.entities),
    "wip_by_engagement": lambda f: (f.month, f.entities),
    "unbilled_by_age": lambda f: (f.entities, f.practices),
    "unbilled_by_project": lambda f: (f.entities, f.practices),
    "exceptions": lambda f: (f.entities, f.every_entity, f.seen_before),
}
ENTITY_PAGES = list(CHECKS)
FIRM_WIDE_PAGES = ["reverse_sync", "integration_health"]
QUERY_ERROR = re.compile(r"could not answer|lacks a table|cannot be read")


@dataclass(frozen=True)
class Firm:
    """What the snapshot holds that the strategies draw from."""

    snapshot: Path
    entities: dict[str, str]           # operating legal entity id: name
    other_ids: list[str]               # ids that are not operating entities (group, "all")
    months: list[dt.date]
    practices: list[str]
    values: frozenset[str]             # every entity id, name and practice in the snapshot


@dataclass(frozen=True)
class Filters:
    """One drawn set of filter values, as the query layer receives them."""

    month: dt.date
    entities: list[str]
    every_entity: bool
    practices: list[str]
    seen_before: dt.datetime | None

    @property
    def first_month(self) -> dt.date:
        return (self.month - dt.timedelta(days=365)).replace(day=1)

    @property
    def month_end(self) -> dt.date:
        following = (self.month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return following - dt.timedelta(days=1)


@dataclass
class Tally:
    """What a run tried and found."""

    examples: int = 0
    calls: int = 0
    hostile_values: int = 0
    errors: list[str] = field(default_factory=list)
    leaked: int = 0
    missing: int = 0
    refused_grants: int = 0    # picked entities (ids, names) not granted: dropped
    huge_lists: int = 0
    scope_errors: list[str] = field(default_factory=list)  # entity_scope beyond the grant


def _firm(snapshot: Path) -> Firm:
    with state.connect(str(snapshot)) as con:
        cur = con.cursor()
        frame = queries.legal_entities(cur)
        entities = dict(zip(frame["legal_entity_id"], frame["legal_entity_name"], strict=True))
        others = [i for i, in cur.execute(
            "select legal_entity_id from canonical.dim_legal_entities union "
            "select legal_entity_id from marts.mart_exec_kpis_monthly").fetchall()
            if i not in entities]
        names = [n for n, in cur.execute(
            "select legal_entity_name from canonical.dim_legal_entities").fetchall()]
        return Firm(snapshot=snapshot, entities=entities, other_ids=sorted(others),
                    months=queries.months(cur), practices=queries.practices(cur),
                    values=frozenset([*entities, *others, *names, *queries.practices(cur)]))


def _hostile(firm: Firm) -> st.SearchStrategy[str]:
    """Text that is no entity id, name or practice: injections, Unicode, NUL, the empty text."""
    return st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30)).filter(
        lambda t: t not in firm.values)


HUGE = [f"{i:032x}" for i in range(20_000)]  # id-shaped, and no entity's
HUGE_SET = frozenset(HUGE)


def _maybe_huge(items: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    """A list, one time in six with 20,000 id-shaped values no entity has added."""
    return st.tuples(items, st.sampled_from([False] * 5 + [True])).map(
        lambda drawn: [*drawn[0], *HUGE] if drawn[1] else drawn[0])


def _referenced_tables() -> set[str]:
    """The marts the entity queries read (their SQL, and the SQL constants they use)."""
    sources = []
    for name in ENTITY_QUERIES:
        source = inspect.getsource(getattr(queries, name))
        sources.append(source)
        sources += [getattr(queries, c) for c in re.findall(r"\b[A-Z_]+_SQL\b", source)]
    return {t for s in sources for t in re.findall(r"\bmarts\.(\w+)", s)}


def _oracle(snapshot: Path, scope: frozenset[str]) -> duckdb.DuckDBPyConnection:
    """An in-memory copy of the snapshot holding only the rows of the entities in ``scope``.

    Built from the grant, not from what the app makes of the pick, so a pick the app failed to
    cut to the grant shows as rows the oracle lacks.

    Marts with a ``legal_entity_id`` keep that entity's rows (the firm's own totals, ``all``,
    go); an exception belongs to its engagement's entity, else its client's (DECISIONLOG); the
    dimensions stay whole (they only name ids).
    """
    con = duckdb.connect()
    quoted = str(snapshot).replace("'", "''")
    con.execute(f"attach '{quoted}' as snap (read_only)")
    columns: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in con.execute(
            "select schema_name, table_name, column_name from duckdb_columns() "
            "where database_name = 'snap'").fetchall():
        columns.setdefault((schema, table), set()).add(column)
    stripped = set()
    for schema in sorted({s for s, _ in columns}):
        con.execute(f'create schema "{schema}"')
    for (schema, table), names in sorted(columns.items()):
        source = f'snap."{schema}"."{table}"'
        if schema == "marts" and "legal_entity_id" in names:
            con.execute(f'create table "{schema}"."{table}" as select * from {source} '
                        "where list_contains(?, legal_entity_id)", [sorted(scope)])
            stripped.add(table)
        elif (schema, table) == ("marts", "rec_exceptions"):
            con.execute(
                f"create table marts.rec_exceptions as select exceptions.* from {source} "
                "as exceptions left join snap.canonical.dim_engagements as engagements "
                "on exceptions.engagement_id = engagements.engagement_id "
                "left join snap.canonical.dim_clients as clients "
                "on exceptions.client_id = clients.client_id where list_contains(?, "
                "coalesce(engagements.legal_entity_id, clients.legal_entity_id))",
                [sorted(scope)])
            stripped.add(table)
        else:
            con.execute(f'create table "{schema}"."{table}" as select * from {source}')
    con.execute("detach snap")
    assert _referenced_tables() <= stripped, "an entity query reads a mart the oracle keeps"
    return con


def _rows(frame: pl.DataFrame) -> Counter[tuple[Any, ...]]:
    """The rows as a multiset, floats rounded (sums over the same rows in another order)."""
    def value(v: Any) -> Any:
        if isinstance(v, float):
            return None if math.isnan(v) else round(v, 6)
        return v
    return Counter(tuple(value(v) for v in row) for row in frame.rows())


class QueryLayer:
    """The app's connection to the snapshot, and the oracle's per scope of entities."""

    def __init__(self, firm: Firm) -> None:
        self.firm = firm
        self.app = state.connect(str(firm.snapshot))
        self.oracles: dict[frozenset[str], duckdb.DuckDBPyConnection] = {}

    def oracle(self, granted: list[str], star: bool) -> duckdb.DuckDBPyConnection:
        """The snapshot as far as a user granted ``granted`` may see it (``star``: all)."""
        if star:  # the user sees the whole firm: nothing to leak, the snapshot itself
            return self.app
        key = frozenset(granted)
        if key not in self.oracles:
            self.oracles[key] = _oracle(self.firm.snapshot, key)
        return self.oracles[key]

    def close(self) -> None:
        for con in [self.app, *self.oracles.values()]:
            con.close()


@pytest.fixture
def layer(dashboard: Dashboard) -> Iterator[QueryLayer]:
    rig = QueryLayer(_firm(dashboard.snapshot))
    yield rig
    rig.close()


def _example(layer: QueryLayer, tally: Tally, granted: list[str], star: bool,
             picked: list[str], extra: list[str], filters: Filters) -> None:
    """One drawn user and filter: every entity query against its oracle."""
    firm = layer.firm
    scope, every_entity = state.entity_scope(picked, granted, star)
    if not scope or not set(scope) <= set(granted) or (every_entity and not star):
        tally.scope_errors.append(f"granted {granted}, picked {picked[:8]}: {scope}")
    tally.refused_grants += len({p for p in picked if p in firm.values} - set(granted))
    practices = filters.practices
    filters = Filters(month=filters.month, entities=[*scope, *extra], every_entity=every_entity,
                      practices=practices, seen_before=filters.seen_before)
    tally.examples += 1
    tally.hostile_values += len({*extra, *picked} - set(granted) - HUGE_SET) + len(
        set(filters.practices) - set(firm.practices) - HUGE_SET)
    tally.huge_lists += sum(len(values) >= len(HUGE) for values in (picked, extra, practices))
    oracle = layer.oracle(granted, star).cursor()
    app = layer.app.cursor()
    try:
        for name, arguments in ENTITY_QUERIES.items():
            query = getattr(queries, name)
            tally.calls += 1
            try:
                answer = query(app, *arguments(filters))
            except Exception as exc:  # counted: query errors must be 0
                tally.errors.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            truth = _rows(query(oracle, *arguments(filters)))
            got = _rows(answer)
            tally.leaked += sum((got - truth).values())
            tally.missing += sum((truth - got).values())
    finally:
        app.close()
        oracle.close()


def _query_layer(layer: QueryLayer, examples: int, run_seed: int) -> None:
    firm = layer.firm
    ids = list(firm.entities)
    hostile = _hostile(firm)
    grant = st.one_of(st.just(("*",)), st.sets(st.sampled_from(ids), min_size=1).map(tuple))
    pick = st.one_of(st.sampled_from([*ids, *firm.other_ids, *firm.entities.values()]), hostile)
    tally = Tally()

    @seed(run_seed)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(grant=grant,
           picked=_maybe_huge(st.lists(pick, min_size=1, max_size=8)),
           extra=_maybe_huge(st.lists(hostile, min_size=1, max_size=4)),
           practices=_maybe_huge(st.lists(st.one_of(st.sampled_from(firm.practices), hostile),
                                          max_size=4)),
           month=st.sampled_from([*firm.months, dt.date(1999, 12, 1)]),
           seen_before=st.sampled_from([None, "month_end"]))
    def run(grant: tuple[str, ...], picked: list[str], extra: list[str], practices: list[str],
            month: dt.date, seen_before: str | None) -> None:
        star = grant == ("*",)
        granted = ids if star else [i for i in ids if i in grant]
        filters = Filters(month=month, entities=[], every_entity=False, practices=practices,
                          seen_before=None)
        if seen_before:
            end = filters.month_end + dt.timedelta(days=1)
            filters = Filters(month=month, entities=[], every_entity=False,
                              practices=practices,
                              seen_before=dt.datetime.combine(end, dt.time(), dt.UTC))
        _example(layer, tally, granted, star, picked, extra, filters)

    (external_access,), = layer.app.execute(
        "select current_setting('enable_external_access')").fetchall()
    try:
        run()
    finally:
        record(TEST, seed=run_seed, layer="query", external_access=external_access,
               injected=tally.calls,
               survived=tally.calls - len(tally.errors) if not tally.leaked else 0,
               bad_inputs=tally.calls, leaked=tally.leaked, query_errors=len(tally.errors),
               rows_missing=tally.missing, examples=tally.examples,
               hostile_values=tally.hostile_values, huge_lists=tally.huge_lists,
               not_granted_picks=tally.refused_grants,
               oracle_grants=len(layer.oracles), scope_errors=len(tally.scope_errors),
               static_check_findings=len(list(_problems(QUERIES.read_text()))))
    assert external_access is False  # design decision 7 (tests/app/test_security.py tries it)
    assert tally.scope_errors == [], tally.scope_errors[:5]
    assert tally.errors == [] and tally.leaked == 0 and tally.missing == 0, tally


def test_hostile_filter_values_through_the_query_layer_match_the_oracle_and_leak_nothing(
        layer: QueryLayer) -> None:
    assert list(_problems(QUERIES.read_text())) == []  # the static check, kept
    takes_entities = {name for name, function in inspect.getmembers(queries, inspect.isfunction)
                      if "entity_ids" in inspect.signature(function).parameters}
    assert takes_entities == set(ENTITY_QUERIES), "an entity query the battery does not try"
    _query_layer(layer, examples=40, run_seed=24)


@pytest.mark.soak
@pytest.mark.parametrize("run_seed", range(1, 6))
def test_many_hostile_filter_values_through_the_query_layer_never_leak(
        layer: QueryLayer, run_seed: int) -> None:
    _query_layer(layer, examples=200, run_seed=run_seed)


# ---------- through the app ----------

@dataclass(frozen=True)
class Tampering:
    """What a tampered browser of the UK lead sends with each page view."""

    widgets: dict[str, str | list[str]]     # widget key: the text reported verbatim
    session: dict[str, Any]                 # session state set before the run
    query_params: dict[str, str]

    @property
    def values(self) -> int:
        """How many hostile values it carries."""
        sent = [v for value in self.widgets.values()
                for v in (value if isinstance(value, list) else [value])]
        return len(set(sent) - HUGE_SET) + len(self.session) + len(self.query_params)


def _tamperings(firm: Firm) -> st.SearchStrategy[Tampering]:
    others = {i: n for i, n in firm.entities.items() if n != UK}
    not_granted = st.sampled_from([*others, *others.values(), *firm.other_ids])
    hostile = _hostile(firm)
    junk = st.one_of(not_granted, hostile)
    widgets = st.fixed_dictionaries({}, optional={
        "filter_entities": _maybe_huge(st.lists(st.one_of(junk, st.just(UK)), min_size=1,
                                                max_size=6)),
        "filter_practices": st.lists(hostile, min_size=1, max_size=4),
        "filter_month": st.one_of(hostile, st.just("January 1999")),
        "filter_currency": hostile,
    })
    session = st.fixed_dictionaries({}, optional={
        "filter_entities": st.lists(st.sampled_from(list(others)), min_size=1),
        "filter_practices": st.lists(hostile, min_size=1, max_size=3),
    })
    params = st.dictionaries(st.sampled_from(["entity", "legal_entity", "filter_entities",
                                              "page", "user"]),
                             st.one_of(not_granted, hostile).filter(lambda v: "\x00" not in v),
                             max_size=3)
    return st.builds(Tampering, widgets=widgets, session=session, query_params=params)


@dataclass
class Views:
    """What the tampered page views showed."""

    tried: int = 0
    views: int = 0
    hostile_values: int = 0
    leaked: int = 0
    errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)


def _view(at: Any, page: str, tampering: Tampering, firm: Firm, dashboard: Dashboard,
          views: Views) -> None:
    """Open ``page`` as the tampered browser and count what it shows that it must not."""
    uk = [i for i, n in firm.entities.items() if n == UK]
    others = [n for n in firm.entities.values() if n != UK]
    at.switch_page(f"app_pages/{page}.py")
    for key, value in tampering.session.items():
        at.session_state[key] = value
    at.query_params.update(tampering.query_params)
    if tampering.widgets:
        send_raw(at, tampering.widgets)
    else:
        at.run()
    views.views += 1
    views.exceptions += [e.message for e in at.exception]
    views.errors += [e.value for e in at.error if QUERY_ERROR.search(e.value)]
    ctx = at.session_state[state.CONTEXT_KEY]
    assert ctx.entity_ids == uk and not ctx.every_entity, ctx
    assert ctx.month in firm.months and set(ctx.practices) <= set(firm.practices), ctx
    drawn = tables(at)
    text = [text_of(node) for node in elements(at)]
    cells = [frame.to_csv() for frame in drawn.values()]
    views.leaked += sum(1 for name in others for t in [*text, *cells] if name in t)
    if page in FIRM_WIDE_PAGES:
        views.leaked += len(drawn) + len(at.metric)
        return
    assert set(drawn) == set(CHECKS[page]), (page, set(drawn))
    for key, (column, kind, sql) in CHECKS[page].items():
        values = shown(drawn[key], column)
        truth = expected(dashboard, sql, kind, uk, ctx.month)
        if kind == "set":
            views.leaked += len(set(values) - truth)
            assert set(values) == truth, key
        elif figure(kind, values) != truth:
            views.leaked += len(values)  # a sum off: every row of the table is suspect


def _through_the_app(dashboard: Dashboard, examples: int, run_seed: int) -> None:
    firm = _firm(dashboard.snapshot)
    views = Views()

    # the control: a tampered value that names an offered option does reach the app
    ceo = signed_in("ceo")
    send_raw(ceo, {"filter_entities": [UK, "' OR 1=1 --"],
                   "filter_practices": [firm.practices[0], "x' or 1=1 --"]})
    ctx = ceo.session_state[state.CONTEXT_KEY]
    assert [firm.entities[i] for i in ctx.entity_ids] == [UK]
    assert ctx.practices == [firm.practices[0]]

    @seed(run_seed)  # no shrinking: each example costs page runs, and it prints in full
    @settings(max_examples=examples, deadline=None, database=None,
              phases=[Phase.explicit, Phase.reuse, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(tampering=_tamperings(firm),
           pages=st.lists(st.sampled_from([*ENTITY_PAGES, *FIRM_WIDE_PAGES]), min_size=1,
                          max_size=3, unique=True))
    def run(tampering: Tampering, pages: list[str]) -> None:
        at = signed_in("uk_lead")
        views.tried += 1
        views.hostile_values += tampering.values
        for page in pages:
            _view(at, page, tampering, firm, dashboard, views)

    try:
        run()
    finally:
        record(TEST, seed=run_seed, layer="app", injected=views.views,
               survived=views.views - len(views.errors) - len(views.exceptions)
               if not views.leaked else 0,
               bad_inputs=views.views, leaked=views.leaked, query_errors=len(views.errors),
               exceptions=len(views.exceptions), tamperings=views.tried,
               hostile_values=views.hostile_values)
    assert views.exceptions == [] and views.errors == [] and views.leaked == 0, views


def test_a_tampered_browser_sees_only_its_granted_entitys_rows(app_env: Dashboard) -> None:
    _through_the_app(app_env, examples=20, run_seed=24)


@pytest.mark.soak
@pytest.mark.parametrize("run_seed", range(1, 4))
def test_many_tampered_browsers_see_only_their_granted_entitys_rows(
        app_env: Dashboard, run_seed: int) -> None:
    _through_the_app(app_env, examples=60, run_seed=run_seed)
