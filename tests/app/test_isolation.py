"""A user granted one legal entity sees only its rows: every table of every page, read as
AppTest sees it, equals the marts limited to that entity (and differs from the whole firm's, so
the check could fail); the firm-wide pages are not shown to that user at all."""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Any

import pytest

from tests.app.conftest import UK, Dashboard, metric, signed_in, tables

pytestmark = pytest.mark.integration

# How to tell a table's rows belong to the entities $entities, per page and table key:
# (column shown, "set" of its values or "sum" of them, the same from the snapshot).
EXCEPTIONS_OF_ENTITIES = """
    select exceptions.exception_id
    from marts.rec_exceptions as exceptions
    left join canonical.dim_engagements using (engagement_id)
    left join canonical.dim_clients on exceptions.client_id = dim_clients.client_id
    where list_contains($entities,
                        coalesce(dim_engagements.legal_entity_id, dim_clients.legal_entity_id))
"""
CHECKS: dict[str, dict[str, tuple[str, str, str]]] = {
    "overview": {
        "overview_trend": ("recognised_revenue_reporting", "sum",
                           "select recognised_revenue_reporting from marts.mart_exec_kpis_monthly "
                           "where not is_all_entities and list_contains($entities, "
                           "legal_entity_id) and month_start_date between "
                           "date_trunc('month', $month - interval 365 days) and $month"),
    },
    "margin": {
        "margin_project": ("project_code", "set",
                           "select project_code from marts.mart_margin_by_engagement "
                           "left join canonical.dim_engagements using (engagement_id) "
                           "where month_start_date = $month and list_contains($entities, "
                           "mart_margin_by_engagement.legal_entity_id)"),
        "margin_client": ("client", "set",
                          "select client_name from marts.mart_margin_by_client "
                          "left join canonical.dim_clients using (client_id) "
                          "where month_start_date = $month and list_contains($entities, "
                          "mart_margin_by_client.legal_entity_id)"),
        "margin_practice": ("revenue_reporting", "sum",
                            "select recognised_revenue_reporting "
                            "from marts.mart_margin_by_practice where month_start_date = $month "
                            "and list_contains($entities, legal_entity_id)"),
        "margin_entity": ("legal_entity", "set",
                          "select legal_entity_name from marts.mart_margin_by_entity "
                          "left join canonical.dim_legal_entities using (legal_entity_id) "
                          "where month_start_date = $month "
                          "and list_contains($entities, legal_entity_id)"),
    },
    "utilization": {
        "utilization_practice": ("capacity_hours", "sum",
                                 "select capacity_hours "
                                 "from marts.mart_utilization_by_practice_month "
                                 "where month_start_date = $month "
                                 "and list_contains($entities, legal_entity_id)"),
        "utilization_role": ("capacity_hours", "sum",
                             "select capacity_hours from marts.mart_utilization_by_resource_month "
                             "where month_start_date = $month "
                             "and list_contains($entities, legal_entity_id)"),
        "utilization_person": ("person", "set",
                               "select resource_name "
                               "from marts.mart_utilization_by_resource_month "
                               "left join canonical.dim_resources using (resource_id) "
                               "where month_start_date = $month and list_contains($entities, "
                               "mart_utilization_by_resource_month.legal_entity_id)"),
        "utilization_heat": ("person", "set",
                             "select resource_name from marts.mart_utilization_by_resource_week "
                             "left join canonical.dim_resources using (resource_id) "
                             "where week_start_date > $month_end - 84 "
                             "and week_start_date <= $month_end and list_contains($entities, "
                             "mart_utilization_by_resource_week.legal_entity_id)"),
    },
    "wip": {
        "wip_projects": ("project_code", "set",
                         "select project_code from marts.mart_wip_by_engagement "
                         "left join canonical.dim_engagements using (engagement_id) "
                         "where month_start_date = $month and wip_amount <> 0 and "
                         "list_contains($entities, mart_wip_by_engagement.legal_entity_id)"),
        "wip_buckets": ("entries", "sum",
                        "select 1 from marts.mart_unbilled_time "
                        "where list_contains($entities, legal_entity_id)"),
        "wip_unbilled_projects": ("project_code", "set",
                                  "select project_code from marts.mart_unbilled_time "
                                  "left join canonical.dim_engagements using (engagement_id) "
                                  "where list_contains($entities, "
                                  "mart_unbilled_time.legal_entity_id)"),
    },
    "reconciliation": {
        "reconciliation_type": ("exceptions", "sum",
                                f"select 1 from ({EXCEPTIONS_OF_ENTITIES})"),
        "reconciliation_owner": ("exceptions", "sum",
                                 f"select 1 from ({EXCEPTIONS_OF_ENTITIES})"),
        "reconciliation_age": ("exceptions", "sum",
                               f"select 1 from ({EXCEPTIONS_OF_ENTITIES})"),
        "reconciliation_rows": ("exception_id", "set",
                                f"select exception_id from ({EXCEPTIONS_OF_ENTITIES})"),
    },
}


def _figure(kind: str, values: list[Any]) -> Any:
    """What is compared: the set of values, or their sum (to the cent)."""
    if kind == "set":
        return set(values)
    return round(sum(Decimal(str(v)) for v in values if v is not None and v == v), 2)


def _expected(dashboard: Dashboard, sql: str, kind: str, entities: list[str],
              month: dt.date) -> Any:
    following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    params = {"entities": entities, "month": month,
              "month_end": following - dt.timedelta(days=1)}
    rows = dashboard.query(sql, {k: v for k, v in params.items()
                                 if re.search(rf"\${k}\b", sql)})
    return _figure(kind, [row[0] for row in rows])


def _entity_ids(dashboard: Dashboard) -> tuple[list[str], list[str]]:
    """The UK entity's id, and every operating entity's."""
    rows = dashboard.query("select legal_entity_id, legal_entity_name "
                           "from canonical.dim_legal_entities "
                           "where not is_group and not is_elimination and not is_inactive")
    return [str(i) for i, name in rows if name == UK], [str(i) for i, _ in rows]


@pytest.mark.parametrize("page", list(CHECKS))
def test_every_table_a_one_entity_user_sees_holds_only_that_entitys_rows(
        app_env: Dashboard, page: str) -> None:
    uk, everyone = _entity_ids(app_env)
    at = signed_in("uk_lead")
    month = at.selectbox(key="filter_month").value
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    shown = tables(at)
    assert set(shown) == set(CHECKS[page]), "a table without a check, or a check without a table"
    for key, (column, kind, sql) in CHECKS[page].items():
        values = [None if isinstance(v, float) and math.isnan(v) else v
                  for v in shown[key][column].tolist()]
        mine = _expected(app_env, sql, kind, uk, month)
        firm = _expected(app_env, sql, kind, everyone, month)
        assert mine != firm, f"{key}: the firm's figure would not tell the entities apart"
        assert _figure(kind, values) == mine, key


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
    uk, _ = _entity_ids(app_env)
    month = at.selectbox(key="filter_month").value
    (revenue,), = app_env.query("select recognised_revenue_reporting "
                                "from marts.mart_exec_kpis_monthly where legal_entity_id = ? "
                                "and month_start_date = ?", [uk[0], month])
    assert metric(at, "Revenue recognised") == f"USD {revenue:,.2f}"


def test_reconciliation_tiles_of_a_one_entity_user_count_only_that_entitys_exceptions(
        app_env: Dashboard) -> None:
    uk, _ = _entity_ids(app_env)
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
