"""Every page of the dashboard through Streamlit's AppTest, on the small firm's snapshot: it
renders without an exception, filters change the numbers, and the figures shown equal the marts
for a known filter. No data before sign-in; every table downloads as exactly the rows shown."""

from __future__ import annotations

import datetime as dt
import io
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from pslake import snapshot
from tests.app.conftest import (
    ENTRYPOINT,
    UK,
    Dashboard,
    derived_dashboard,
    downloaded,
    metric,
    signed_in,
    table,
    tables,
)
from tests.conftest import BuiltFirm

pytestmark = pytest.mark.integration

PAGES = ["overview", "utilization", "margin", "wip", "reconciliation", "reverse_sync",
         "integration_health"]
ENTITY = "Entity currency"
REPORTING = "Reporting currency"


def _money(value: Decimal) -> str:
    return f"USD {value:,.2f}"


def _uk_id(dashboard: Dashboard) -> str:
    (uk_id,), = dashboard.query("select legal_entity_id from canonical.dim_legal_entities "
                                "where legal_entity_name = ?", [UK])
    return str(uk_id)


def _entities(dashboard: Dashboard, only: str | None) -> list[str]:
    """The operating entities' ids, or only the one named."""
    return [str(e) for e, in dashboard.query(
        "select legal_entity_id from canonical.dim_legal_entities where not is_group "
        "and not is_elimination and not is_inactive and (? is null or legal_entity_name = ?)",
        [only, only])]


def _filtered(dashboard: Dashboard, entity: str | None, practice: str | None) -> AppTest:
    """The CEO's app with the entity and practice filters set (None: all)."""
    at = signed_in("ceo")
    if entity:
        at.multiselect(key="filter_entities").set_value(_entities(dashboard, entity)).run()
    if practice:
        at.multiselect(key="filter_practices").set_value([practice]).run()
    return at


def _close(shown: Any, expected: Any) -> bool:
    return math.isclose(float(shown), float(expected), abs_tol=0.005)


def test_money_tiles_show_a_short_figure_and_the_exact_one_on_hover(app_env: Dashboard) -> None:
    at = signed_in("ceo")
    tile = next(m for m in at.metric if m.label == "Revenue recognised")
    assert tile.value.startswith("USD ") and tile.value.endswith((" M", " k", " bn"))
    assert tile.proto.help.startswith("USD ") and "." in tile.proto.help


def test_nothing_is_shown_before_sign_in_and_a_wrong_password_is_refused(
        app_env: Dashboard) -> None:
    at = AppTest.from_file(str(ENTRYPOINT), default_timeout=60).run()
    assert not at.exception
    assert not at.metric and not at.dataframe
    at = signed_in("ceo", "wrong-password")
    assert [e.value for e in at.error] == ["Unknown user name or wrong password."]
    assert not at.metric and not at.dataframe


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_for_a_user_who_sees_every_entity(app_env: Dashboard,
                                                            page: str) -> None:
    at = signed_in("ceo")
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.metric or at.dataframe or at.info


def test_the_freshness_caption_shows_when_the_snapshot_was_published(app_env: Dashboard) -> None:
    published = snapshot.current(app_env.data_dir)
    assert published is not None
    at = signed_in("ceo")
    captions = [c.value for c in at.caption]
    assert f"Data as of the snapshot published {published.published_at:%Y-%m-%d %H:%M} UTC" \
        in captions


# ---------- overview ----------

@pytest.mark.parametrize(
    "entity",
    [
        None,  # every entity: the firm's own row of the mart
        UK,    # one entity picked: that entity's row
    ],
    ids=["firm", "one-entity"],
)
def test_overview_tiles_equal_the_kpi_mart_row_and_its_previous_month(
        app_env: Dashboard, entity: str | None) -> None:
    at = _filtered(app_env, entity, None)
    assert not at.exception
    month = at.selectbox(key="filter_month").value
    columns = ["recognised_revenue_reporting", "recognised_revenue_reporting_previous",
               "margin_pct", "utilization", "wip_amount_reporting", "ar_balance_reporting",
               "unbilled_amount_reporting", "unbilled_avg_age_days", "dso_days",
               "time_to_bill_lag_days", "open_exception_count"]
    values = app_env.query(
        f"select {', '.join(columns)} from marts.mart_exec_kpis_monthly "
        "where month_start_date = ? and case when ? is null then is_all_entities "
        "else legal_entity_name = ? end", [month, entity, entity])
    assert len(values) == 1
    row = dict(zip(columns, values[0], strict=True))
    assert row["open_exception_count"] is not None, "the default month is the latest"
    assert metric(at, "Revenue recognised") == _money(row["recognised_revenue_reporting"])
    assert metric(at, "WIP") == _money(row["wip_amount_reporting"])
    assert metric(at, "AR") == _money(row["ar_balance_reporting"])
    assert metric(at, "Unbilled approved time") == _money(row["unbilled_amount_reporting"])
    assert metric(at, "Margin") == f"{float(row['margin_pct']) * 100:.1f} %"
    assert metric(at, "Utilization") == f"{float(row['utilization']) * 100:.1f} %"
    assert metric(at, "DSO") == f"{float(row['dso_days']):.1f} days"
    assert metric(at, "Time-to-bill lag") == f"{float(row['time_to_bill_lag_days']):.1f} days"
    assert metric(at, "Unbilled average age") == f"{float(row['unbilled_avg_age_days']):.1f} days"
    assert metric(at, "Open exceptions") == f"{row['open_exception_count']:,}"
    revenue = next(m for m in at.metric if m.label == "Revenue recognised")
    change = row["recognised_revenue_reporting"] - row["recognised_revenue_reporting_previous"]
    assert revenue.delta == f"{change:+,.2f}"


def test_an_earlier_month_changes_the_figures(app_env: Dashboard) -> None:
    at = signed_in("ceo")
    latest = metric(at, "Revenue recognised")
    at.selectbox(key="filter_month").select_index(3).run()
    assert not at.exception
    assert metric(at, "Revenue recognised") != latest


def test_a_practice_narrows_overview_revenue_and_utilization_but_not_entity_figures(
        app_env: Dashboard) -> None:
    at = signed_in("ceo")
    month = at.selectbox(key="filter_month").value
    wip = metric(at, "WIP")
    revenue = metric(at, "Revenue recognised")
    practice, practice_revenue = app_env.query(
        "select practice_name, sum(recognised_revenue_reporting) "
        "from marts.mart_margin_by_practice where month_start_date = ? and practice_name in "
        "(select practice_name from marts.mart_utilization_by_practice_month) "  # the choices
        "group by 1 order by 2 desc limit 1", [month])[0]
    (utilization,), = app_env.query(
        "select round(sum(billable_hours) / sum(capacity_hours), 4) "
        "from marts.mart_utilization_by_practice_month "
        "where month_start_date = ? and practice_name = ?", [month, practice])
    at.multiselect(key="filter_practices").set_value([practice]).run()
    assert not at.exception
    assert metric(at, "Revenue recognised") == _money(practice_revenue) != revenue
    assert metric(at, "Utilization") == f"{float(utilization) * 100:.1f} %"
    assert metric(at, "WIP") == wip  # WIP is not split by practice in the marts
    assert any(c.value.startswith(f"Revenue, margin and utilization are for {practice} only")
               for c in at.caption)


# ---------- utilization ----------

@pytest.mark.parametrize(
    ("entity", "practice"),
    [
        (None, None),          # the whole firm
        (UK, None),            # one entity
        (None, "Strategy"),    # one practice
    ],
    ids=["firm", "one-entity", "one-practice"],
)
def test_utilization_tables_equal_the_utilization_marts_for_the_filters(
        app_env: Dashboard, entity: str | None, practice: str | None) -> None:
    at = _filtered(app_env, entity, practice)
    month = at.selectbox(key="filter_month").value
    at.switch_page("app_pages/utilization.py").run()
    assert not at.exception, [e.message for e in at.exception]
    entities = _entities(app_env, entity)
    scope = {"month": month, "entities": entities, "practices": [practice] if practice else []}
    where = ("list_contains($entities, legal_entity_id) "
             "and (len($practices) = 0 or list_contains($practices, practice_name))")
    by_practice = app_env.query(
        "select practice_name, sum(capacity_hours), sum(billable_hours) "
        f"from marts.mart_utilization_by_practice_month where month_start_date = $month "
        f"and {where} group by 1 order by 1", scope)
    shown = table(at, "utilization_practice").sort_values("practice_name")
    assert [(p, float(c), float(b)) for p, c, b in by_practice] == list(zip(
        shown["practice_name"], shown["capacity_hours"].astype(float),
        shown["billable_hours"].astype(float), strict=True))
    (people,), = app_env.query(
        "select count(*) from marts.mart_utilization_by_resource_month "
        f"where month_start_date = $month and {where}", scope)
    (all_people,), = app_env.query("select count(*) from marts.mart_utilization_by_resource_month "
                                   "where month_start_date = ?", [month])
    assert len(table(at, "utilization_person")) == people
    assert table(at, "utilization_role")["people"].sum() == people
    if entity or practice:
        assert people < all_people  # the filter changed the tables
    month_end = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) \
        - dt.timedelta(days=1)
    weeks = app_env.query(
        "select dim_resources.resource_name, week_start_date, utilization "
        "from marts.mart_utilization_by_resource_week as weekly "
        "left join canonical.dim_resources using (resource_id) "
        "where week_start_date > $end - 84 and week_start_date <= $end "
        "and list_contains($entities, weekly.legal_entity_id) "
        "and (len($practices) = 0 or list_contains($practices, weekly.practice_name)) "
        "order by 1, 2", {"end": month_end, "entities": entities,
                          "practices": scope["practices"]})
    heat = table(at, "utilization_heat")
    assert 0 < len({w for _, w, _ in weeks}) <= 12
    assert [(p, pd.Timestamp(w), None if u is None else float(u)) for p, w, u in weeks] == [
        (p, pd.Timestamp(w), None if pd.isna(u) else float(u))
        for p, w, u in heat[["person", "week_start_date", "utilization"]].itertuples(index=False)]


def test_utilization_by_role_shows_each_roles_capacity_weighted_target(
        app_env: Dashboard) -> None:
    at = signed_in("ceo")
    month = at.selectbox(key="filter_month").value
    at.switch_page("app_pages/utilization.py").run()
    expected = dict(app_env.query(
        "select role_name, round(sum(utilization_target * capacity_hours) "
        "/ sum(capacity_hours), 4) from marts.mart_utilization_by_resource_month "
        "where month_start_date = ? group by 1", [month]))
    roles = table(at, "utilization_role")
    assert dict(zip(roles["role_name"], roles["utilization_target"], strict=True)) == \
        pytest.approx({role: float(target) for role, target in expected.items()}, abs=1e-4)


# ---------- margin ----------

def test_margin_page_lists_projects_worst_first_with_the_marts_figures(
        app_env: Dashboard) -> None:
    at = signed_in("ceo")
    month = at.selectbox(key="filter_month").value
    at.switch_page("app_pages/margin.py").run()
    projects = table(at, "margin_project")
    count, revenue, margin = app_env.query(
        "select count(*), sum(recognised_revenue_reporting), sum(margin_amount_reporting) "
        "from marts.mart_margin_by_engagement where month_start_date = ?", [month])[0]
    assert len(projects) == count
    assert _close(projects["revenue_reporting"].sum(), revenue)
    assert _close(projects["margin_reporting"].sum(), margin)
    pcts = [p for p in projects["margin_pct"].tolist() if p == p and p is not None]
    assert pcts == sorted(pcts)


# ---------- WIP and unbilled ----------

def test_wip_and_unbilled_equal_the_marts(app_env: Dashboard) -> None:
    at = signed_in("ceo")
    month = at.selectbox(key="filter_month").value
    at.switch_page("app_pages/wip.py").run()
    (wip,), = app_env.query("select sum(wip_amount_reporting) from marts.mart_wip_by_engagement "
                            "where month_start_date = ?", [month])
    (unbilled,), = app_env.query("select sum(unbilled_amount_reporting) "
                                 "from marts.mart_unbilled_time")
    assert metric(at, "WIP") == _money(wip)
    assert metric(at, "Unbilled approved time") == _money(unbilled)


def test_practice_filter_narrows_the_unbilled_time(app_env: Dashboard) -> None:
    at = signed_in("ceo")
    at.switch_page("app_pages/wip.py").run()
    everything = metric(at, "Unbilled approved time")
    practice, amount = app_env.query(
        "select practice_name, sum(unbilled_amount_reporting) from marts.mart_unbilled_time "
        "group by 1 order by 2 desc limit 1")[0]
    at.multiselect(key="filter_practices").set_value([practice]).run()
    assert metric(at, "Unbilled approved time") == _money(amount) != everything


def test_wip_lists_the_project_with_the_oldest_unbilled_work_first(app_env: Dashboard) -> None:
    at = signed_in("ceo")
    month = at.selectbox(key="filter_month").value
    at.switch_page("app_pages/wip.py").run()
    oldest = dict(app_env.query(
        "select dim_engagements.project_code, max(unbilled.age_days) "
        "from marts.mart_unbilled_time as unbilled "
        "left join canonical.dim_engagements using (engagement_id) group by 1"))
    wip = table(at, "wip_projects")
    (count,), = app_env.query("select count(*) from marts.mart_wip_by_engagement "
                              "where month_start_date = ? and wip_amount <> 0", [month])
    assert len(wip) == count
    ages = [None if pd.isna(a) else int(a) for a in wip["oldest_unbilled_days"]]
    assert ages == [oldest.get(code) for code in wip["project_code"]]
    known = [a for a in ages if a is not None]
    assert known and known == sorted(known, reverse=True)
    assert ages == known + [None] * (len(ages) - len(known))  # projects without any last
    at.radio(key="wip_order").set_value("Largest WIP first").run()
    amounts = table(at, "wip_projects")["wip_amount_reporting"].astype(float).tolist()
    assert amounts == sorted(amounts, reverse=True)


def test_unbilled_age_buckets_come_youngest_first_with_the_marts_figures(
        app_env: Dashboard) -> None:
    at = signed_in("ceo")
    at.switch_page("app_pages/wip.py").run()
    expected = app_env.query(
        "select age_bucket, sum(hours), count(*) from marts.mart_unbilled_time "
        "group by 1 order by min(age_days)")
    assert len(expected) > 2
    buckets = table(at, "wip_buckets")
    assert list(buckets["age_bucket"]) == [bucket for bucket, _, _ in expected]
    assert [float(h) for h in buckets["hours"]] == [float(h) for _, h, _ in expected]
    assert list(buckets["entries"]) == [n for _, _, n in expected]


# ---------- money in the entity's currency ----------

@pytest.mark.parametrize(
    ("page", "key", "column", "sql"),
    [
        # margin by project: recognised revenue in each entity's currency
        ("margin", "margin_project", "revenue",
         "select currency_code, sum(recognised_revenue) from marts.mart_margin_by_engagement "
         "where month_start_date = $month group by 1"),
        # WIP by project (rows with WIP only; the others add nothing)
        ("wip", "wip_projects", "wip_amount",
         "select currency_code, sum(wip_amount) from marts.mart_wip_by_engagement "
         "where month_start_date = $month group by 1"),
        # unbilled time by age bucket, one row per bucket and currency
        ("wip", "wip_buckets", "unbilled",
         "select currency_code, sum(unbilled_amount) from marts.mart_unbilled_time group by 1"),
        # unbilled time by project
        ("wip", "wip_unbilled_projects", "unbilled",
         "select currency_code, sum(unbilled_amount) from marts.mart_unbilled_time group by 1"),
    ],
    ids=["margin-projects", "wip-projects", "unbilled-buckets", "unbilled-projects"],
)
def test_entity_currency_shows_each_currencys_sums_as_in_the_mart(
        app_env: Dashboard, page: str, key: str, column: str, sql: str) -> None:
    at = signed_in("ceo")
    month = at.selectbox(key="filter_month").value
    at.switch_page(f"app_pages/{page}.py").run()
    assert f"{column}_reporting" in table(at, key).columns or key == "wip_buckets"
    at.radio(key="filter_currency").set_value(ENTITY).run()
    assert not at.exception
    shown = table(at, key)
    assert f"{column}_reporting" not in shown.columns
    sums = shown.groupby("currency_code")[column].apply(lambda s: sum(Decimal(v) for v in s))
    expected = dict(app_env.query(sql, {"month": month} if "$month" in sql else []))
    assert len(expected) > 1, "the small firm has entities in several currencies"
    assert {c: float(v) for c, v in sums.items()} == pytest.approx(
        {c: float(v) for c, v in expected.items()}, abs=0.005)


@pytest.mark.parametrize(
    ("page", "caption"),
    [
        ("overview", "KPIs add up several entities, so they stay in the reporting currency"),
        ("wip", "Tiles and the age chart add up several entities, so they are in the "
                "reporting currency"),
        ("reconciliation", "Amounts at risk are in the reporting currency"),
    ],
    ids=["overview", "wip", "reconciliation"],
)
def test_a_page_that_stays_in_the_reporting_currency_says_so(
        app_env: Dashboard, page: str, caption: str) -> None:
    at = signed_in("ceo")
    at.switch_page(f"app_pages/{page}.py").run()
    assert not any(c.value.startswith(caption) for c in at.caption)
    at.radio(key="filter_currency").set_value(ENTITY).run()
    assert any(c.value.startswith(caption) for c in at.caption), [c.value for c in at.caption]


# ---------- downloads ----------

def _cell(value: Any) -> Any:
    """A cell as a comparable value: a number, a time, a word; None when empty."""
    if value is None or value == "" or value is pd.NaT or \
            (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    try:
        return round(float(value), 6)
    except (TypeError, ValueError):
        pass
    if isinstance(value, str) and not value[:1].isdigit():
        return value
    try:
        return pd.Timestamp(value)
    except (TypeError, ValueError):
        return str(value)


def _rows_of_csv(data: bytes) -> tuple[list[str], list[tuple[Any, ...]]]:
    frame = pl.read_csv(io.BytesIO(data), infer_schema=False)
    return frame.columns, [tuple(_cell(v) for v in row) for row in frame.iter_rows()]


def _rows_shown(shown: pd.DataFrame) -> tuple[list[str], list[tuple[Any, ...]]]:
    return list(shown.columns), [tuple(_cell(v) for v in row)
                                 for row in shown.itertuples(index=False)]


@pytest.mark.parametrize(
    ("page", "currency"),
    [
        ("overview", REPORTING),
        ("utilization", REPORTING),
        ("margin", REPORTING),
        ("margin", ENTITY),          # other columns: the entity-currency amounts
        ("wip", ENTITY),
        ("reconciliation", REPORTING),
    ],
    ids=["overview", "utilization", "margin", "margin-entity-currency", "wip-entity-currency",
         "reconciliation"],
)
def test_every_table_downloads_as_exactly_the_rows_and_columns_shown(
        app_env: Dashboard, downloads: None, page: str, currency: str) -> None:
    at = signed_in("ceo")
    at.radio(key="filter_currency").set_value(currency).run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception
    shown = tables(at)
    assert shown
    for key, frame in shown.items():
        assert _rows_of_csv(downloaded(at, f"{key}_csv")) == _rows_shown(frame), key


# ---------- reconciliation ----------

def test_reconciliation_counts_every_open_exception_in_the_latest_month(
        app_env: Dashboard) -> None:
    at = signed_in("ceo")
    at.switch_page("app_pages/reconciliation.py").run()
    count, at_risk = app_env.query("select count(*), sum(amount_at_risk_reporting) "
                                   "from marts.rec_exceptions")[0]
    assert metric(at, "Open exceptions") == f"{count:,}"
    assert metric(at, "Amount at risk") == _money(at_risk)


def test_an_earlier_month_shows_the_exceptions_already_seen_by_its_end(
        app_env: Dashboard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    months = [m for m, in app_env.query("select distinct month_start_date "
                                        "from marts.mart_exec_kpis_monthly order by 1 desc")]
    earlier, latest = months[2], months[0]
    seen_early = 10
    derived = derived_dashboard(
        app_env, tmp_path / "data",
        # every exception first seen in the latest month ...
        f"update marts.rec_exceptions set first_seen_at = timestamptz '{latest} 12:00:00+00'",
        # ... but ten, first seen in the middle of an earlier month
        f"update marts.rec_exceptions set first_seen_at = timestamptz '{earlier} 12:00:00+00' "
        f"+ interval 14 days where exception_id in (select exception_id "
        f"from marts.rec_exceptions order by exception_id limit {seen_early})")
    monkeypatch.setenv("PSLAKE_DATA_DIR", str(derived.data_dir))
    at = signed_in("ceo")
    at.switch_page("app_pages/reconciliation.py").run()
    (count,), = derived.query("select count(*) from marts.rec_exceptions")
    assert metric(at, "Open exceptions") == f"{count:,}"
    at.selectbox(key="filter_month").set_value(earlier).run()
    assert not at.exception
    assert metric(at, "Open exceptions") == f"{seen_early:,}"
    assert len(table(at, "reconciliation_rows")) == seen_early
    assert any(c.value.startswith("Exceptions open today that were already seen by the end of")
               for c in at.caption)


def test_the_practice_filter_is_said_not_to_apply_to_reconciliation(app_env: Dashboard) -> None:
    at = _filtered(app_env, None, "Strategy")
    at.switch_page("app_pages/reconciliation.py").run()
    assert any(c.value.startswith("The practice filter does not apply here") for c in at.caption)


# ---------- firm-wide pages ----------

@pytest.mark.parametrize("page", ["reverse_sync", "integration_health"])
def test_a_firm_wide_page_says_the_filters_do_not_apply_and_why(app_env: Dashboard,
                                                                page: str) -> None:
    at = signed_in("ceo")
    at.switch_page(f"app_pages/{page}.py").run()
    assert any(c.value.startswith("Firm-wide: the period, legal entity and practice filters "
                                  "do not apply here.") for c in at.caption)


def test_reverse_sync_tiles_show_the_newest_run_and_the_items_waiting(
        synced_dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSLAKE_DATA_DIR", str(synced_dashboard.data_dir))
    at = signed_in("ceo")
    at.switch_page("app_pages/reverse_sync.py").run()
    assert not at.exception, [e.message for e in at.exception]
    columns = ["run_id", "run_kind", "run_status", "planned_count", "written_count",
               "held_count", "failed_count"]
    newest = dict(zip(columns, synced_dashboard.query(
        f"select {', '.join(columns)} from marts.sync_runs order by started_at desc limit 1")[0],
        strict=True))
    assert newest["run_kind"] == "apply" and newest["written_count"] > 0
    assert newest["failed_count"] > 0  # the fields of the deal the CRM lost
    assert metric(at, "Last run") == f"{newest['run_kind']} {newest['run_status']}"
    assert metric(at, "Planned") == f"{newest['planned_count']:,}"
    assert metric(at, "Applied") == f"{newest['written_count']:,}"
    assert metric(at, "Held for approval") == f"{newest['held_count']:,}"
    assert metric(at, "Failed") == f"{newest['failed_count']:,}"
    (runs,), = synced_dashboard.query("select count(*) from marts.sync_runs")
    assert len(table(at, "sync_runs")) == runs >= 2  # the plan and the apply
    items = synced_dashboard.query("select item_type, change_id from marts.sync_open_items "
                                   "order by item_type, seen_at")
    shown = table(at, "sync_items")
    assert list(zip(shown["item_type"], shown["change_id"], strict=True)) == items
    kinds = [kind for kind, _ in items]
    assert kinds.count("approval_waiting") > 0
    assert metric(at, "Approvals waiting") == f"{kinds.count('approval_waiting'):,}"
    assert metric(at, "Dead letters") == f"{kinds.count('write_retrying'):,}" == \
        f"{newest['failed_count']:,}"  # each failed write waits as a dead letter


def test_integration_health_shows_the_rows_each_system_holds(
        app_env: Dashboard, small_warehouse: BuiltFirm) -> None:
    at = signed_in("ceo")
    at.switch_page("app_pages/integration_health.py").run()
    (held,), = app_env.query("select record_count from marts.mart_integration_health "
                             "where system_role = 'psa'")
    with small_warehouse.connect() as con:
        counted = sum(con.execute(f"select count(*) from staging.stg_harvest__{name}").fetchone()[0]
                      for name in ("clients", "users", "projects", "time_entries", "expenses"))
    assert held == counted > 0
    tile = next(m for m in at.metric if "(psa)" in m.label)
    assert tile.proto.help.startswith(f"{held:,} rows held")


def test_integration_health_shows_each_systems_source_freshness(
        app_env: Dashboard, small_warehouse: BuiltFirm) -> None:
    at = signed_in("ceo")
    at.switch_page("app_pages/integration_health.py").run()
    rows = app_env.query("select system_role, source_freshness_status, "
                         "stale_source_table_count from marts.mart_integration_health "
                         "order by system_role")
    verdicts = {v.source: v.status for v in small_warehouse.result.freshness}
    assert verdicts  # the build checked freshness
    captions = [c.value for c in at.caption if c.value.startswith("source freshness: ")]
    for role, status, stale in rows:
        assert status in ("pass", "warn", "error")
        shown = f"source freshness: {status}" + (f" ({stale} stale " if stale else "")
        assert any(c.startswith(shown) for c in captions), (role, shown, captions)


def test_integration_health_warns_of_a_volume_drop_only_where_the_mart_flags_one(
        app_env: Dashboard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = signed_in("ceo")
    at.switch_page("app_pages/integration_health.py").run()
    assert not [w for w in at.warning if w.value.startswith("volume drop:")]  # none flagged
    derived = derived_dashboard(
        app_env, tmp_path / "data",
        "update marts.mart_integration_health set is_volume_anomaly = true, "
        "latest_load_volume_z = -12.5 where system_role = 'psa'")
    monkeypatch.setenv("PSLAKE_DATA_DIR", str(derived.data_dir))
    at = signed_in("ceo")
    at.switch_page("app_pages/integration_health.py").run()
    rows = derived.query("select latest_load_row_count from marts.mart_integration_health "
                         "where system_role = 'psa'")
    warnings = [w.value for w in at.warning if w.value.startswith("volume drop:")]
    assert warnings == [f"volume drop: the last load wrote {rows[0][0]:,} rows, 12.5 standard "
                        "deviations below the loads before it"]
