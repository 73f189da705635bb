"""Every page of the dashboard through Streamlit's AppTest, on the small firm's snapshot: it
renders without an exception, filters change the numbers, and the figures shown equal the marts
for a known filter. No data before sign-in; a user granted one entity sees only its rows."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import ENTRYPOINT, UK, Dashboard, signed_in
from tests.conftest import BuiltFirm

pytestmark = pytest.mark.integration

PAGES = ["overview", "utilization", "margin", "wip", "reconciliation", "reverse_sync",
         "integration_health"]


def _mart(dashboard: Dashboard, sql: str, params: list[object] | None = None) -> list[tuple]:
    with duckdb.connect(str(dashboard.snapshot), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _money(value: Decimal) -> str:
    return f"USD {value:,.2f}"


def _metric(at: AppTest, label: str) -> str:
    """A tile's exact figure: its tooltip where the tile shows a rounded one."""
    tile = next(m for m in at.metric if m.label == label)
    return tile.proto.help or tile.value


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


def test_overview_tiles_equal_the_firm_row_of_the_kpi_mart(app_env: Dashboard) -> None:
    at = signed_in("ceo")
    month = at.selectbox(key="filter_month").value
    revenue, margin_pct, wip, ar = _mart(app_env, """
        select recognised_revenue_reporting, margin_pct, wip_amount_reporting,
               ar_balance_reporting
        from marts.mart_exec_kpis_monthly where is_all_entities and month_start_date = ?
    """, [month])[0]
    assert _metric(at, "Revenue recognised") == _money(revenue)
    assert _metric(at, "Margin") == f"{float(margin_pct) * 100:.1f} %"
    assert _metric(at, "WIP") == _money(wip)
    assert _metric(at, "AR") == _money(ar)


def test_picking_one_entity_shows_that_entitys_row_of_the_kpi_mart(app_env: Dashboard) -> None:
    at = signed_in("ceo")
    month = at.selectbox(key="filter_month").value
    firm_revenue = _metric(at, "Revenue recognised")
    uk_id, uk_revenue = _mart(app_env, """
        select legal_entity_id, recognised_revenue_reporting from marts.mart_exec_kpis_monthly
        where legal_entity_name = ? and month_start_date = ?
    """, [UK, month])[0]
    at.multiselect(key="filter_entities").set_value([uk_id]).run()
    assert not at.exception
    assert _metric(at, "Revenue recognised") == _money(uk_revenue)
    assert _metric(at, "Revenue recognised") != firm_revenue


def test_an_earlier_month_changes_the_figures(app_env: Dashboard) -> None:
    at = signed_in("ceo")
    latest = _metric(at, "Revenue recognised")
    at.selectbox(key="filter_month").select_index(3).run()
    assert not at.exception
    assert _metric(at, "Revenue recognised") != latest


def test_margin_page_lists_projects_worst_first_with_the_marts_figures(
        app_env: Dashboard) -> None:
    at = signed_in("ceo")
    month = at.selectbox(key="filter_month").value
    at.switch_page("app_pages/margin.py").run()
    projects = at.dataframe[0].value
    expected = _mart(app_env, """
        select sum(recognised_revenue_reporting), sum(margin_amount_reporting)
        from marts.mart_margin_by_engagement where month_start_date = ?
    """, [month])[0]
    assert len(projects) == _mart(app_env, "select count(*) from marts.mart_margin_by_engagement "
                                           "where month_start_date = ?", [month])[0][0]
    assert Decimal(str(projects["revenue_reporting"].sum())).quantize(Decimal("0.01")) == \
        expected[0]
    assert Decimal(str(projects["margin_reporting"].sum())).quantize(Decimal("0.01")) == \
        expected[1]
    pcts = [p for p in projects["margin_pct"].tolist() if p == p and p is not None]
    assert pcts == sorted(pcts)


def test_entity_currency_shows_the_amounts_in_each_entitys_currency(app_env: Dashboard) -> None:
    at = signed_in("ceo")
    at.switch_page("app_pages/margin.py").run()
    assert "revenue_reporting" in at.dataframe[0].value.columns
    at.radio(key="filter_currency").set_value("Entity currency").run()
    columns = at.dataframe[0].value.columns
    assert {"revenue", "currency_code"} <= set(columns)
    assert "revenue_reporting" not in columns


def test_wip_and_unbilled_equal_the_marts(app_env: Dashboard) -> None:
    at = signed_in("ceo")
    month = at.selectbox(key="filter_month").value
    at.switch_page("app_pages/wip.py").run()
    wip, = _mart(app_env, "select sum(wip_amount_reporting) from marts.mart_wip_by_engagement "
                          "where month_start_date = ?", [month])[0]
    unbilled, = _mart(app_env, "select sum(unbilled_amount_reporting) "
                               "from marts.mart_unbilled_time")[0]
    assert _metric(at, "WIP") == _money(wip)
    assert _metric(at, "Unbilled approved time") == _money(unbilled)


def test_practice_filter_narrows_the_unbilled_time(app_env: Dashboard) -> None:
    at = signed_in("ceo")
    at.switch_page("app_pages/wip.py").run()
    everything = _metric(at, "Unbilled approved time")
    practice, amount = _mart(app_env, """
        select practice_name, sum(unbilled_amount_reporting) from marts.mart_unbilled_time
        group by 1 order by 2 desc limit 1
    """)[0]
    at.multiselect(key="filter_practices").set_value([practice]).run()
    assert _metric(at, "Unbilled approved time") == _money(amount) != everything


def test_reconciliation_counts_every_open_exception(app_env: Dashboard) -> None:
    at = signed_in("ceo")
    at.switch_page("app_pages/reconciliation.py").run()
    count, at_risk = _mart(app_env, "select count(*), sum(amount_at_risk_reporting) "
                                    "from marts.rec_exceptions")[0]
    assert _metric(at, "Open exceptions") == f"{count:,}"
    assert _metric(at, "Amount at risk") == _money(at_risk)


def test_a_user_granted_one_entity_sees_only_its_rows(app_env: Dashboard) -> None:
    at = signed_in("uk_lead")
    (uk_id,), = _mart(app_env, "select legal_entity_id from canonical.dim_legal_entities "
                               "where legal_entity_name = ?", [UK])
    assert at.multiselect(key="filter_entities").options == [UK]
    month = at.selectbox(key="filter_month").value
    uk_revenue, = _mart(app_env, "select recognised_revenue_reporting from "
                                 "marts.mart_exec_kpis_monthly where legal_entity_id = ? "
                                 "and month_start_date = ?", [uk_id, month])[0]
    assert _metric(at, "Revenue recognised") == _money(uk_revenue)
    at.switch_page("app_pages/margin.py").run()
    uk_projects, = _mart(app_env, "select count(*) from marts.mart_margin_by_engagement "
                                  "where legal_entity_id = ? and month_start_date = ?",
                         [uk_id, month])[0]
    assert len(at.dataframe[0].value) == uk_projects
    at.switch_page("app_pages/reverse_sync.py").run()
    assert not at.dataframe and not at.metric  # firm-wide pages are not for a one-entity user


def test_without_a_snapshot_the_app_says_which_command_to_run(
        app_env: Dashboard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    (empty / "app").mkdir(parents=True)
    (empty / "app" / "users.toml").write_text(app_env.users.read_text())
    monkeypatch.setenv("PSLAKE_DATA_DIR", str(empty))
    at = signed_in("ceo")
    assert not at.exception
    assert any("pslake transform" in e.value for e in at.error)


def test_integration_health_shows_the_rows_each_system_holds(
        app_env: Dashboard, small_warehouse: BuiltFirm) -> None:
    at = signed_in("ceo")
    at.switch_page("app_pages/integration_health.py").run()
    held, = _mart(app_env, "select record_count from marts.mart_integration_health "
                           "where system_role = 'psa'")[0]
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
    rows = _mart(app_env, "select system_role, source_freshness_status, stale_source_table_count "
                          "from marts.mart_integration_health order by system_role")
    verdicts = {v.source: v.status for v in small_warehouse.result.freshness}
    assert verdicts  # the build checked freshness
    captions = [c.value for c in at.caption if c.value.startswith("source freshness: ")]
    for role, status, stale in rows:
        assert status in ("pass", "warn", "error")
        shown = f"source freshness: {status}" + (f" ({stale} stale " if stale else "")
        assert any(c.startswith(shown) for c in captions), (role, shown, captions)
