"""Every query the dashboard runs: one SQL string per function, parameterised, over the snapshot.

Each function takes a cursor of the read-only snapshot and the filter values, and returns a
polars DataFrame. User input only ever reaches DuckDB as a bound parameter (``?``): entity ids,
practices and dates are lists or values, never text pasted into SQL. ``entity_ids`` is always
the intersection of what the user selected and what the user is granted (``app.state``), so a
query cannot return another entity's rows. Amounts come in the reporting currency and, where the
mart has them, in the entity's currency (``currency_code``).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

Cursor = duckdb.DuckDBPyConnection


def _frame(cur: Cursor, sql: str, params: list[object]) -> pl.DataFrame:
    return pl.from_arrow(cur.sql(sql, params=params).to_arrow_table())  # type: ignore[return-value]


def legal_entities(cur: Cursor) -> pl.DataFrame:
    """Operating legal entities (not the group or elimination ones), by name."""
    return _frame(cur, """
        select legal_entity_id, legal_entity_name, currency_code
        from canonical.dim_legal_entities
        where not is_group and not is_elimination and not is_inactive
        order by legal_entity_name
    """, [])


def practices(cur: Cursor) -> list[str]:
    """Practice names the utilization marts know."""
    return _frame(cur, """
        select distinct practice_name from marts.mart_utilization_by_practice_month order by 1
    """, [])["practice_name"].to_list()


def months(cur: Cursor) -> list[dt.date]:
    """The months the executive KPIs cover, newest first."""
    return _frame(cur, """
        select distinct month_start_date from marts.mart_exec_kpis_monthly order by 1 desc
    """, [])["month_start_date"].to_list()


def reporting_currency(cur: Cursor) -> str:
    """The reporting currency the marts convert to."""
    row = cur.execute(
        "select max(reporting_currency_code) from marts.mart_exec_kpis_monthly").fetchone()
    return str(row[0]) if row and row[0] else "-"


# ---------- overview ----------

KPI_TREND_SQL = """
    with picked as (
        select *
        from marts.mart_exec_kpis_monthly
        where
            month_start_date between ? and ?
            and case when ? then is_all_entities
                else not is_all_entities and list_contains(?, legal_entity_id) end
    )
    select
        month_start_date,
        bool_or(is_latest_month) as is_latest_month,
        bool_and(is_month_complete) as is_month_complete,
        sum(recognised_revenue_reporting) as recognised_revenue_reporting,
        sum(cost_amount_reporting) as cost_amount_reporting,
        sum(margin_amount_reporting) as margin_amount_reporting,
        round(sum(margin_amount_reporting) / nullif(sum(recognised_revenue_reporting), 0), 4)
            as margin_pct,
        round(sum(billable_hours) / nullif(sum(capacity_hours), 0), 4) as utilization,
        round(sum(utilization_target * capacity_hours) / nullif(sum(capacity_hours), 0), 4)
            as utilization_target,
        sum(wip_amount_reporting) as wip_amount_reporting,
        sum(unbilled_hours) as unbilled_hours,
        sum(unbilled_amount_reporting) as unbilled_amount_reporting,
        round(sum(unbilled_avg_age_days * unbilled_hours) / nullif(sum(unbilled_hours), 0), 1)
            as unbilled_avg_age_days,
        sum(ar_balance_reporting) as ar_balance_reporting,
        round(sum(ar_balance_reporting) * 90 / nullif(sum(invoiced_last_90_days_reporting), 0),
            1) as dso_days,
        round(sum(time_to_bill_lag_days * time_billed_hours) / nullif(sum(time_billed_hours), 0),
            2) as time_to_bill_lag_days,
        sum(open_exception_count) as open_exception_count,
        sum(open_exception_amount_at_risk_reporting) as open_exception_amount_at_risk_reporting
    from picked
    group by 1
    order by 1
"""


def kpi_trend(cur: Cursor, first_month: dt.date, last_month: dt.date,
              entity_ids: list[str], every_entity: bool) -> pl.DataFrame:
    """Executive KPIs by month for the entities.

    The firm's own row when every entity is picked, else sums over the entities with ratios
    recomputed from the sums (DECISIONLOG: executive KPIs).
    """
    return _frame(cur, KPI_TREND_SQL, [first_month, last_month, every_entity, entity_ids])


PRACTICE_KPI_TREND_SQL = """
    with revenue as (
        select
            month_start_date,
            sum(recognised_revenue_reporting) as recognised_revenue_reporting,
            sum(cost_amount_reporting) as cost_amount_reporting,
            sum(margin_amount_reporting) as margin_amount_reporting
        from marts.mart_margin_by_practice
        where
            month_start_date between ? and ?
            and list_contains(?, legal_entity_id) and list_contains(?, practice_name)
        group by 1
    ),

    utilization as (
        select
            month_start_date,
            round(sum(billable_hours) / nullif(sum(capacity_hours), 0), 4) as utilization,
            round(sum(utilization_target * capacity_hours) / nullif(sum(capacity_hours), 0), 4)
                as utilization_target
        from marts.mart_utilization_by_practice_month
        where
            month_start_date between ? and ?
            and list_contains(?, legal_entity_id) and list_contains(?, practice_name)
        group by 1
    )

    select
        month_start_date,
        revenue.recognised_revenue_reporting,
        revenue.cost_amount_reporting,
        revenue.margin_amount_reporting,
        round(revenue.margin_amount_reporting
            / nullif(revenue.recognised_revenue_reporting, 0), 4) as margin_pct,
        utilization.utilization,
        utilization.utilization_target
    from revenue
    full outer join utilization using (month_start_date)
    order by 1
"""
# the columns of kpi_trend that practice_kpi_trend gives for the picked practices only
PRACTICE_KPI_COLUMNS = ("recognised_revenue_reporting", "cost_amount_reporting",
                        "margin_amount_reporting", "margin_pct", "utilization",
                        "utilization_target")


def practice_kpi_trend(cur: Cursor, first_month: dt.date, last_month: dt.date,
                       entity_ids: list[str], practice_names: list[str]) -> pl.DataFrame:
    """Revenue, cost, margin and utilization by month for some practices of the entities.

    The practice marts split these by the practice of the people who did the work; the other
    executive KPIs (WIP, AR, DSO, unbilled time, exceptions) are not split by practice.
    """
    return _frame(cur, PRACTICE_KPI_TREND_SQL,
                  [first_month, last_month, entity_ids, practice_names] * 2)


# ---------- utilization ----------

def utilization_by_practice(cur: Cursor, month: dt.date, entity_ids: list[str],
                            practice_names: list[str]) -> pl.DataFrame:
    """Utilization by practice for a month, summed over the entities."""
    return _frame(cur, """
        select
            practice_name,
            sum(resources) as people,
            sum(capacity_hours) as capacity_hours,
            sum(billable_hours) as billable_hours,
            round(sum(billable_hours) / nullif(sum(capacity_hours), 0), 4) as utilization,
            round(sum(utilization_target * capacity_hours) / nullif(sum(capacity_hours), 0), 4)
                as utilization_target
        from marts.mart_utilization_by_practice_month
        where
            month_start_date = ? and list_contains(?, legal_entity_id)
            and (len(?) = 0 or list_contains(?, practice_name))
        group by 1
        order by utilization
    """, [month, entity_ids, practice_names, practice_names])


def utilization_by_person(cur: Cursor, month: dt.date, entity_ids: list[str],
                          practice_names: list[str]) -> pl.DataFrame:
    """Utilization by person (with role and practice) for a month, lowest first."""
    return _frame(cur, """
        select
            dim_resources.resource_name as person,
            utilization.role_name,
            utilization.practice_name,
            dim_legal_entities.legal_entity_name as legal_entity,
            utilization.capacity_hours,
            utilization.billable_hours,
            utilization.utilization,
            utilization.utilization_target
        from marts.mart_utilization_by_resource_month as utilization
        left join canonical.dim_resources
            on utilization.resource_id = dim_resources.resource_id
        left join canonical.dim_legal_entities
            on utilization.legal_entity_id = dim_legal_entities.legal_entity_id
        where
            utilization.month_start_date = ? and list_contains(?, utilization.legal_entity_id)
            and (len(?) = 0 or list_contains(?, utilization.practice_name))
        order by utilization.utilization nulls first, person
    """, [month, entity_ids, practice_names, practice_names])


def utilization_heatmap(cur: Cursor, last_day: dt.date, entity_ids: list[str],
                        practice_names: list[str], weeks: int = 12) -> pl.DataFrame:
    """Utilization of each person by week, for the ``weeks`` weeks ending on ``last_day``."""
    return _frame(cur, """
        select
            dim_resources.resource_name as person,
            utilization.week_start_date,
            utilization.utilization
        from marts.mart_utilization_by_resource_week as utilization
        left join canonical.dim_resources
            on utilization.resource_id = dim_resources.resource_id
        where
            utilization.week_start_date > ? - 7 * ? and utilization.week_start_date <= ?
            and list_contains(?, utilization.legal_entity_id)
            and (len(?) = 0 or list_contains(?, utilization.practice_name))
        order by person, utilization.week_start_date
    """, [last_day, weeks, last_day, entity_ids, practice_names, practice_names])


# ---------- margin ----------

MARGIN_COLUMNS = """
    sum(recognised_revenue_reporting) as revenue_reporting,
    sum(cost_amount_reporting) as cost_reporting,
    sum(margin_amount_reporting) as margin_reporting,
    round(sum(margin_amount_reporting) / nullif(sum(recognised_revenue_reporting), 0), 4)
        as margin_pct,
    sum(recognised_revenue) as revenue,
    sum(cost_amount) as cost,
    sum(margin_amount) as margin
"""


def margin_by_engagement(cur: Cursor, month: dt.date, entity_ids: list[str]) -> pl.DataFrame:
    """Margin by project for a month, the worst margin first."""
    return _frame(cur, f"""
        select
            dim_engagements.project_code,
            dim_engagements.engagement_name as project,
            dim_clients.client_name as client,
            margin.billing_model,
            margin.currency_code,
            {MARGIN_COLUMNS}
        from marts.mart_margin_by_engagement as margin
        left join canonical.dim_engagements
            on margin.engagement_id = dim_engagements.engagement_id
        left join canonical.dim_clients
            on margin.client_id = dim_clients.client_id
        where margin.month_start_date = ? and list_contains(?, margin.legal_entity_id)
        group by all
        order by margin_pct nulls last, margin_reporting
    """, [month, entity_ids])


def margin_by_client(cur: Cursor, month: dt.date, entity_ids: list[str]) -> pl.DataFrame:
    """Margin by client for a month, the worst margin first."""
    return _frame(cur, f"""
        select
            dim_clients.client_name as client,
            margin.currency_code,
            {MARGIN_COLUMNS}
        from marts.mart_margin_by_client as margin
        left join canonical.dim_clients
            on margin.client_id = dim_clients.client_id
        where margin.month_start_date = ? and list_contains(?, margin.legal_entity_id)
        group by all
        order by margin_pct nulls last, margin_reporting
    """, [month, entity_ids])


def margin_by_practice(cur: Cursor, month: dt.date, entity_ids: list[str],
                       practice_names: list[str]) -> pl.DataFrame:
    """Margin by practice for a month."""
    return _frame(cur, f"""
        select
            practice_name as practice,
            currency_code,
            {MARGIN_COLUMNS}
        from marts.mart_margin_by_practice
        where
            month_start_date = ? and list_contains(?, legal_entity_id)
            and (len(?) = 0 or list_contains(?, practice_name))
        group by all
        order by margin_pct nulls last
    """, [month, entity_ids, practice_names, practice_names])


def margin_by_entity(cur: Cursor, month: dt.date, entity_ids: list[str]) -> pl.DataFrame:
    """Margin by legal entity for a month."""
    return _frame(cur, f"""
        select
            dim_legal_entities.legal_entity_name as legal_entity,
            margin.currency_code,
            {MARGIN_COLUMNS}
        from marts.mart_margin_by_entity as margin
        left join canonical.dim_legal_entities
            on margin.legal_entity_id = dim_legal_entities.legal_entity_id
        where margin.month_start_date = ? and list_contains(?, margin.legal_entity_id)
        group by all
        order by legal_entity
    """, [month, entity_ids])


# ---------- WIP and unbilled time ----------

def wip_by_engagement(cur: Cursor, month: dt.date, entity_ids: list[str]) -> pl.DataFrame:
    """WIP by project at the month's end, the oldest unbilled work first.

    ``oldest_unbilled_days`` is the age today of the project's oldest approved billable time
    still unbilled (``mart_unbilled_time``); a project without such time (fixed fee, billed
    expenses only) has none and comes after, the largest WIP first. Negative WIP is billed in
    advance.
    """
    return _frame(cur, """
        with unbilled as (
            select engagement_id, max(age_days) as oldest_unbilled_days
            from marts.mart_unbilled_time
            where list_contains(?, legal_entity_id)
            group by 1
        )

        select
            dim_clients.client_name as client,
            dim_engagements.project_code,
            dim_engagements.engagement_name as project,
            dim_legal_entities.legal_entity_name as legal_entity,
            wip.billing_model,
            wip.wip_date,
            unbilled.oldest_unbilled_days,
            wip.currency_code,
            wip.wip_amount,
            wip.wip_amount_reporting,
            wip.recognised_revenue_to_date,
            wip.invoiced_amount_to_date
        from marts.mart_wip_by_engagement as wip
        left join canonical.dim_engagements
            on wip.engagement_id = dim_engagements.engagement_id
        left join canonical.dim_clients
            on wip.client_id = dim_clients.client_id
        left join canonical.dim_legal_entities
            on wip.legal_entity_id = dim_legal_entities.legal_entity_id
        left join unbilled
            on wip.engagement_id = unbilled.engagement_id
        where
            wip.month_start_date = ? and list_contains(?, wip.legal_entity_id)
            and wip.wip_amount <> 0
        order by
            unbilled.oldest_unbilled_days desc nulls last, wip.wip_amount_reporting desc,
            dim_engagements.project_code
    """, [entity_ids, month, entity_ids])


def unbilled_by_age(cur: Cursor, entity_ids: list[str],
                    practice_names: list[str]) -> pl.DataFrame:
    """Unbilled approved time today by age bucket (the youngest first) and entity currency."""
    return _frame(cur, """
        with by_currency as (
            select
                age_bucket,
                currency_code,
                min(age_days) as youngest_days,
                sum(hours) as hours,
                sum(unbilled_amount) as unbilled,
                sum(unbilled_amount_reporting) as unbilled_reporting,
                count(*) as entries
            from marts.mart_unbilled_time
            where
                list_contains(?, legal_entity_id)
                and (len(?) = 0 or list_contains(?, practice_name))
            group by 1, 2
        )

        select age_bucket, currency_code, hours, unbilled, unbilled_reporting, entries
        from by_currency
        order by min(youngest_days) over (partition by age_bucket), age_bucket, currency_code
    """, [entity_ids, practice_names, practice_names])


def unbilled_by_project(cur: Cursor, entity_ids: list[str],
                        practice_names: list[str]) -> pl.DataFrame:
    """Unbilled approved time today by client and project, the oldest first."""
    return _frame(cur, """
        select
            dim_clients.client_name as client,
            dim_engagements.project_code,
            dim_engagements.engagement_name as project,
            dim_legal_entities.legal_entity_name as legal_entity,
            unbilled.currency_code,
            max(unbilled.age_days) as oldest_days,
            sum(unbilled.hours) as hours,
            sum(unbilled.unbilled_amount) as unbilled,
            sum(unbilled.unbilled_amount_reporting) as unbilled_reporting
        from marts.mart_unbilled_time as unbilled
        left join canonical.dim_engagements
            on unbilled.engagement_id = dim_engagements.engagement_id
        left join canonical.dim_clients
            on unbilled.client_id = dim_clients.client_id
        left join canonical.dim_legal_entities
            on unbilled.legal_entity_id = dim_legal_entities.legal_entity_id
        where
            list_contains(?, unbilled.legal_entity_id)
            and (len(?) = 0 or list_contains(?, unbilled.practice_name))
        group by all
        order by oldest_days desc, unbilled_reporting desc
    """, [entity_ids, practice_names, practice_names])


# ---------- reconciliation ----------

EXCEPTIONS_SQL = """
    with scoped as (
        select
            exceptions.*,
            coalesce(dim_engagements.legal_entity_id, dim_clients.legal_entity_id)
                as legal_entity_id,
            dim_clients.client_name as client,
            dim_engagements.project_code
        from marts.rec_exceptions as exceptions
        left join canonical.dim_engagements
            on exceptions.engagement_id = dim_engagements.engagement_id
        left join canonical.dim_clients
            on exceptions.client_id = dim_clients.client_id
    )

    select
        scoped.exception_id,
        scoped.exception_type,
        scoped.severity,
        scoped.owner_team,
        scoped.resolution_action,
        scoped.record_ref,
        dim_legal_entities.legal_entity_name as legal_entity,
        scoped.client,
        scoped.project_code,
        scoped.expected_value,
        scoped.actual_value,
        scoped.amount_at_risk_reporting,
        scoped.first_seen_at,
        date_diff('day', scoped.first_seen_at, scoped.last_seen_at) as age_days
    from scoped
    left join canonical.dim_legal_entities
        on scoped.legal_entity_id = dim_legal_entities.legal_entity_id
    where
        (? or list_contains(?, scoped.legal_entity_id))
        and (cast(? as timestamptz) is null or scoped.first_seen_at < cast(? as timestamptz))
    order by scoped.amount_at_risk_reporting desc nulls last, scoped.exception_id
"""


def exceptions(cur: Cursor, entity_ids: list[str], every_entity: bool,
               seen_before: dt.datetime | None = None) -> pl.DataFrame:
    """Open reconciliation exceptions of the entities, first seen before ``seen_before``.

    An exception belongs to its engagement's entity, else its client's; ones tied to no entity
    are only for a user who sees every entity. ``seen_before`` None: every open exception.
    """
    return _frame(cur, EXCEPTIONS_SQL, [every_entity, entity_ids, seen_before, seen_before])


# ---------- reverse sync and integration health (firm-wide) ----------

def sync_runs(cur: Cursor, limit: int = 50) -> pl.DataFrame:
    """The latest reverse-sync runs."""
    return _frame(cur, """
        select
            run_id, run_kind, run_status, actor, planned_count, held_count, refused_count,
            written_count, conflict_count, failed_count, given_up_count, write_calls_count,
            started_at, duration_seconds
        from marts.sync_runs
        order by started_at desc
        limit ?
    """, [limit])


def sync_open_items(cur: Cursor) -> pl.DataFrame:
    """Changes waiting for approval, dead letters and given-up changes."""
    return _frame(cur, """
        select
            item_type, change_id, crm_object, record_key, crm_property, current_value,
            desired_value, detail, attempts, seen_at
        from marts.sync_open_items
        order by item_type, seen_at
    """, [])


def integration_health(cur: Cursor) -> pl.DataFrame:
    """Per source system: the last load, its age and volume, freshness, quarantine, exceptions."""
    return _frame(cur, """
        select
            system_role, system_name, latest_loaded_at, hours_since_latest_load,
            source_freshness_status, stale_source_table_count, record_count,
            latest_load_row_count, latest_load_volume_z, is_volume_anomaly,
            quarantined_row_count, duplicate_record_count, open_exception_count,
            exceptions_open_over_7_days_count, max_exception_age_days,
            reverse_sync_failure_count, reverse_sync_given_up_count
        from marts.mart_integration_health
        order by system_role
    """, [])
