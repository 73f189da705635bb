"""A user granted one legal entity sees only its rows: every table of every page, read as
AppTest sees it, equals the marts limited to that entity (and differs from the whole firm's, so
the check could fail); the firm-wide pages are not shown to that user at all."""

from __future__ import annotations

import pytest

from tests.app.conftest import UK, Dashboard, metric, signed_in, tables
from tests.app.oracle import CHECKS, entity_ids, expected, figure, shown

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("page", list(CHECKS))
def test_every_table_a_one_entity_user_sees_holds_only_that_entitys_rows(
        app_env: Dashboard, page: str) -> None:
    uk, everyone = entity_ids(app_env)
    at = signed_in("uk_lead")
    month = at.selectbox(key="filter_month").value
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    drawn = tables(at)
    assert set(drawn) == set(CHECKS[page]), "a table without a check, or a check without a table"
    for key, (column, kind, sql) in CHECKS[page].items():
        values = shown(drawn[key], column)
        mine = expected(app_env, sql, kind, uk, month)
        firm = expected(app_env, sql, kind, everyone, month)
        assert mine != firm, f"{key}: the firm's figure would not tell the entities apart"
        assert figure(kind, values) == mine, key


@pytest.mark.parametrize("page", ["reverse_sync", "integration_health"])
def test_a_one_entity_user_is_not_shown_a_firm_wide_page(app_env: Dashboard, page: str) -> None:
    at = signed_in("uk_lead")
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception
    assert not at.dataframe and not at.metric
    assert any("shown only to users granted every legal entity" in i.value for i in at.info)


def test_a_one_entity_user_may_pick_only_the_granted_entity(app_env: Dashboard) -> None:
    at = signed_in("uk_lead")
    assert at.multiselect(key="filter_entities").options == [UK]
    uk, _ = entity_ids(app_env)
    month = at.selectbox(key="filter_month").value
    (revenue,), = app_env.query("select recognised_revenue_reporting "
                                "from marts.mart_exec_kpis_monthly where legal_entity_id = ? "
                                "and month_start_date = ?", [uk[0], month])
    assert metric(at, "Revenue recognised") == f"USD {revenue:,.2f}"


def test_reconciliation_tiles_of_a_one_entity_user_count_only_that_entitys_exceptions(
        app_env: Dashboard) -> None:
    uk, _ = entity_ids(app_env)
    count, at_risk = app_env.query(
        "select count(*), sum(amount_at_risk_reporting) from marts.rec_exceptions "
        "left join canonical.dim_engagements using (engagement_id) "
        "left join canonical.dim_clients on rec_exceptions.client_id = dim_clients.client_id "
        "where coalesce(dim_engagements.legal_entity_id, dim_clients.legal_entity_id) = ?",
        uk)[0]
    (everyone,), = app_env.query("select count(*) from marts.rec_exceptions")
    assert 0 < count < everyone
    at = signed_in("uk_lead")
    at.switch_page("app_pages/reconciliation.py").run()
    assert metric(at, "Open exceptions") == f"{count:,}"
    assert metric(at, "Amount at risk") == f"USD {at_risk:,.2f}"
