"""The oracle of entity isolation on the dashboard: for each table of each entity-scoped page,
what it must show for a set of legal entities, queried straight from the snapshot.

``test_isolation.py`` compares a one-entity user's pages with it, and the battery's test 24
(``tests/reliability/test_dashboard_isolation.py``) does the same under tampered filters.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Any

import pandas as pd

from tests.app.conftest import UK, Dashboard

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


def figure(kind: str, values: list[Any]) -> Any:
    """What is compared: the set of values, or their sum (to the cent)."""
    if kind == "set":
        return set(values)
    return round(sum(Decimal(str(v)) for v in values if v is not None and v == v), 2)


def expected(dashboard: Dashboard, sql: str, kind: str, entities: list[str],
             month: dt.date) -> Any:
    """The figure a table must show for ``entities`` in ``month``, from the snapshot."""
    following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    params = {"entities": entities, "month": month,
              "month_end": following - dt.timedelta(days=1)}
    rows = dashboard.query(sql, {k: v for k, v in params.items()
                                 if re.search(rf"\${k}\b", sql)})
    return figure(kind, [row[0] for row in rows])


def entity_ids(dashboard: Dashboard) -> tuple[list[str], list[str]]:
    """The UK entity's id, and every operating entity's."""
    rows = dashboard.query("select legal_entity_id, legal_entity_name "
                           "from canonical.dim_legal_entities "
                           "where not is_group and not is_elimination and not is_inactive")
    return [str(i) for i, name in rows if name == UK], [str(i) for i, _ in rows]


def shown(frame: pd.DataFrame, column: str) -> list[Any]:
    """A shown table's values of ``column`` (NaN read as missing)."""
    return [None if isinstance(v, float) and math.isnan(v) else v
            for v in frame[column].tolist()]
