"""The delivery marts against an independent recomputation from the sandbox store (issue 4).

`tests/dbt/independent.py` recomputes utilization, WIP and margin in Python (polars to select
and join, Decimal for money) straight from the store's SQLite files, by the definitions of the
DECISIONLOG, without reading any model. The records are chosen from the data, deterministically:
the people with the most billable hours in the latest complete month, a part-timer, a joiner and
a leaver in that month, someone with a public holiday, the month in progress; the T&M, fixed-fee,
milestone and retainer engagements with invoices and the most approved hours, and one with a
credit memo. Only the crosswalk tables of the warehouse are read to find the canonical ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import duckdb
import polars as pl
import pytest

from tests.conftest import BuiltFirm
from tests.dbt.independent import (
    Store,
    money,
    month_end,
    month_start,
    round_fraction_half_up,
    round_half_up,
)

pytestmark = pytest.mark.integration

PERSON_CASES = (
    "most_billable_1",
    "most_billable_2",
    "most_billable_3",
    "part_time",
    "joined_in_month",
    "left_in_month",
    "public_holiday_in_month",
    "month_in_progress",
)
ENGAGEMENT_CASES = (
    "time_and_materials_1",
    "time_and_materials_2",
    "time_and_materials_credited",
    "fixed_fee_1",
    "fixed_fee_2",
    "milestone_1",
    "retainer_1",
)
UTILIZATION_COLUMNS = (
    "working_days",
    "public_holiday_days",
    "capacity_hours",
    "billable_hours",
    "non_billable_client_hours",
    "internal_hours",
    "pto_hours",
    "total_hours",
    "utilization",
    "total_utilization",
)
WIP_COLUMNS = (
    "wip_date",
    "billing_model",
    "approved_hours_to_date",
    "percent_complete",
    "unbilled_time_amount",
    "unbilled_expense_amount",
    "recognised_revenue_to_date",
    "invoiced_amount_to_date",
    "wip_amount",
    "is_billed_in_advance",
    "rate_to_reporting",
    "wip_amount_reporting",
)
MARGIN_COLUMNS = (
    "billing_model",
    "approved_hours",
    "recognised_revenue",
    "labour_cost_amount",
    "expense_cost_amount",
    "cost_amount",
    "margin_amount",
    "margin_pct",
    "recognised_revenue_to_date",
    "cost_amount_to_date",
    "margin_amount_to_date",
    "rate_to_reporting",
    "recognised_revenue_reporting",
    "cost_amount_reporting",
    "margin_amount_reporting",
    "recognised_revenue_to_date_reporting",
    "cost_amount_to_date_reporting",
)


@dataclass(frozen=True)
class PersonCase:
    user_id: int
    month: dt.date


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def store(small_warehouse: BuiltFirm) -> Store:
    return Store.load(small_warehouse.firm, small_warehouse.as_of)


@pytest.fixture(scope="module")
def warehouse(small_warehouse: BuiltFirm) -> Iterator[duckdb.DuckDBPyConnection]:
    con = small_warehouse.connect()
    yield con
    con.close()


def _choose_people(store: Store) -> dict[str, PersonCase]:
    month = store.latest_complete_month()
    people = store.people()
    ranked = store.billable_hours_by_user(month)["user_id"].to_list()
    chosen = {f"most_billable_{n + 1}": PersonCase(u, month) for n, u in enumerate(ranked[:3])}

    part_timers = set(people.filter(pl.col("weekly_capacity_seconds") < 40 * 3600)["user_id"])
    for user_id in ranked:
        if user_id in part_timers:
            chosen["part_time"] = PersonCase(user_id, month)
            break

    def inside(column: str) -> list[int]:
        return people.filter(
            pl.col(column).is_between(month, month_end(month))
        ).sort([column, "user_id"])["user_id"].to_list()

    for case, column in (("joined_in_month", "hire_date"), ("left_in_month", "release_date")):
        if inside(column):
            chosen[case] = PersonCase(inside(column)[0], month)

    # the latest complete month in which someone had a public holiday on an employed weekday:
    # the person with the most billable hours among them
    candidate = month
    first = month_start(store.valued_entries()["work_date"].min())
    while candidate >= first and "public_holiday_in_month" not in chosen:
        ranked_then = store.billable_hours_by_user(candidate)["user_id"].to_list()
        for user_id in ranked_then:
            if store.utilization(user_id, candidate)["public_holiday_days"] > 0:
                chosen["public_holiday_in_month"] = PersonCase(user_id, candidate)
                break
        candidate = month_start(candidate - dt.timedelta(days=1))

    in_progress = month_start(store.as_of - dt.timedelta(days=1))
    if in_progress != month:
        ranked_now = store.billable_hours_by_user(in_progress)["user_id"].to_list()
        if ranked_now:
            chosen["month_in_progress"] = PersonCase(ranked_now[0], in_progress)
    return chosen


def _choose_engagements(store: Store) -> dict[str, int]:
    ranked = store.engagements_ranked().filter(pl.col("approved_hours") > 0)
    chosen: dict[str, int] = {}
    for model, take in (("time_and_materials", 2), ("fixed_fee", 2), ("milestone", 1),
                        ("retainer", 1)):
        jobs = ranked.filter(pl.col("billing_model") == model)["job_id"].to_list()
        chosen.update({f"{model}_{n + 1}": job for n, job in enumerate(jobs[:take])})
    credited = ranked.filter(
        (pl.col("billing_model") == "time_and_materials") & (pl.col("credit_memos") > 0)
    )["job_id"].to_list()
    if credited:
        chosen["time_and_materials_credited"] = credited[0]
    return chosen


@pytest.fixture(scope="module")
def chosen_people(store: Store) -> dict[str, PersonCase]:
    return _choose_people(store)


@pytest.fixture(scope="module")
def chosen_engagements(store: Store) -> dict[str, int]:
    return _choose_engagements(store)


# ---------------------------------------------------------------------------- helpers


def _canonical_id(con: duckdb.DuckDBPyConnection, kind: str, system_role: str,
                  record_id: int) -> str:
    table, column = {
        "engagement": ("canonical.map_engagement_ids", "engagement_id"),
        "resource": ("canonical.map_resource_ids", "resource_id"),
    }[kind]
    found = con.execute(
        f"select {column} from {table} where system_role = ? and system_record_id = ?",
        [system_role, str(record_id)],
    ).fetchall()
    assert len(found) == 1, f"{system_role} {kind} {record_id}: {found}"
    return found[0][0]


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict]:
    cursor = con.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _differences(expected: dict, actual: dict, columns: tuple[str, ...], where: str) -> list[str]:
    """Columns whose values differ (Decimals compare by value: 1.5 equals 1.50)."""
    return [
        f"{where} {column}: recomputed {expected[column]!r}, mart {actual[column]!r}"
        for column in columns
        if expected[column] != actual[column]
    ]


def _person(chosen_people: dict[str, PersonCase], case: str) -> PersonCase:
    if case not in chosen_people:
        pytest.skip(f"the firm has no record for the case {case}")
    return chosen_people[case]


def _engagement(chosen_engagements: dict[str, int], case: str) -> int:
    if case not in chosen_engagements:
        pytest.skip(f"the firm has no record for the case {case}")
    return chosen_engagements[case]


def _engagement_rows(con: duckdb.DuckDBPyConnection, mart: str, job_id: int) -> dict:
    engagement_id = _canonical_id(con, "engagement", "erp", job_id)
    rows = _rows(con, f"select * from marts.{mart} where engagement_id = ?", [engagement_id])
    return {row["month_start_date"]: row for row in rows}


# ---------------------------------------------------------------------------- tests


@pytest.mark.unit
def test_the_rounding_helpers_round_ties_away_from_zero_and_read_store_reals_exactly():
    assert round_half_up(Decimal("0.125")) == Decimal("0.13")
    assert round_half_up(Decimal("-0.125")) == Decimal("-0.13")
    assert round_half_up(Decimal("0.124999")) == Decimal("0.12")
    assert round_fraction_half_up(Fraction(139, 160), 4) == Decimal("0.8688")  # 0.86875
    assert round_fraction_half_up(Fraction(-1, 8), 2) == Decimal("-0.13")
    assert round_fraction_half_up(Fraction(1, 3), 2) == Decimal("0.33")
    # 566000 x 51.75 / 2400 = 12204.375 exactly: half up is .38 (binary floats give .37)
    assert round_fraction_half_up(Fraction(566000) * Fraction("51.75") / 2400) == \
        Decimal("12204.38")
    assert money(0.1) == Decimal("0.1") and money(1.358769) == Decimal("1.358769")
    assert money(None) is None


def test_the_chosen_records_exercise_every_rule(
        store: Store, chosen_people: dict[str, PersonCase], chosen_engagements: dict[str, int]):
    people = store.people()
    assert {"most_billable_1", "most_billable_2", "most_billable_3"} <= set(chosen_people)
    assert {"time_and_materials_1", "time_and_materials_2", "fixed_fee_1", "fixed_fee_2"} <= \
        set(chosen_engagements)
    assert len(set(chosen_engagements.values())) == len(chosen_engagements)
    # a part-timer's short standard day and a public holiday off capacity
    assert any(people.filter(pl.col("user_id") == c.user_id)["weekly_capacity_seconds"][0]
               < 40 * 3600 for c in chosen_people.values())
    assert any(store.utilization(c.user_id, c.month)["public_holiday_days"] > 0
               for c in chosen_people.values())
    months = {case: store.engagement_months(job) for case, job in chosen_engagements.items()}
    flat = [m for rows in months.values() for m in rows]
    # fixed fee: percent complete on hours before the end, 100% from the month it ended
    assert any(m["percent_complete"] is not None and 0 < m["percent_complete"] < 1 for m in flat)
    assert any(m["percent_complete"] == 1 for m in flat)
    # T&M: time and expenses left unbilled, a credit memo, billing in advance, a foreign currency
    assert any((m["unbilled_time_amount"] or 0) > 0 for m in flat)
    assert any((m["unbilled_expense_amount"] or 0) > 0 for m in flat)
    assert any(m["is_billed_in_advance"] for m in flat)
    assert any(m["rate_to_reporting"] != 1 for m in flat)
    credited = store.transactions.filter(pl.col("type") == "CustCred")["job"].to_list()
    if credited:
        assert set(credited) & set(chosen_engagements.values())


@pytest.mark.parametrize("case", PERSON_CASES)
def test_utilization_of_a_person_in_a_month_matches_the_mart(
        case: str, store: Store, warehouse: duckdb.DuckDBPyConnection,
        chosen_people: dict[str, PersonCase]):
    person = _person(chosen_people, case)
    expected = store.utilization(person.user_id, person.month)
    resource_id = _canonical_id(warehouse, "resource", "psa", person.user_id)
    rows = _rows(
        warehouse,
        "select * from marts.mart_utilization_by_resource_month"
        " where resource_id = ? and month_start_date = ?",
        [resource_id, person.month],
    )
    assert len(rows) == 1, f"user {person.user_id} {person.month}: {len(rows)} mart rows"
    where = f"user {person.user_id} {person.month:%Y-%m}"
    assert _differences(expected, rows[0], UTILIZATION_COLUMNS, where) == []
    assert rows[0]["is_complete_month"] == (month_end(person.month) < store.as_of)


@pytest.mark.parametrize("case", ENGAGEMENT_CASES)
def test_wip_of_an_engagement_matches_the_mart_at_each_month_end_and_the_as_of_date(
        case: str, store: Store, warehouse: duckdb.DuckDBPyConnection,
        chosen_engagements: dict[str, int]):
    job_id = _engagement(chosen_engagements, case)
    expected = {m["month_start_date"]: m for m in store.engagement_months(job_id)}
    actual = _engagement_rows(warehouse, "mart_wip_by_engagement", job_id)
    assert sorted(actual) == sorted(expected), f"job {job_id}: the months differ"
    latest_complete = store.latest_complete_month()
    assert latest_complete in actual, f"job {job_id}: no row at the latest month end"
    assert actual[latest_complete]["wip_date"] == month_end(latest_complete)
    in_progress = max(actual)
    assert actual[in_progress]["is_latest_month"]
    assert actual[in_progress]["wip_date"] == min(month_end(in_progress), store.as_of)
    differences = [
        difference
        for month, row in sorted(expected.items())
        for difference in _differences(row, actual[month], WIP_COLUMNS,
                                       f"job {job_id} {month:%Y-%m}")
    ]
    assert differences == []


@pytest.mark.parametrize("case", ENGAGEMENT_CASES)
def test_margin_of_an_engagement_matches_the_mart_in_each_month(
        case: str, store: Store, warehouse: duckdb.DuckDBPyConnection,
        chosen_engagements: dict[str, int]):
    job_id = _engagement(chosen_engagements, case)
    expected = {m["month_start_date"]: m for m in store.engagement_months(job_id)}
    actual = _engagement_rows(warehouse, "mart_margin_by_engagement", job_id)
    assert sorted(actual) == sorted(expected), f"job {job_id}: the months differ"
    assert store.latest_complete_month() in actual
    differences = [
        difference
        for month, row in sorted(expected.items())
        for difference in _differences(row, actual[month], MARGIN_COLUMNS,
                                       f"job {job_id} {month:%Y-%m}")
    ]
    assert differences == []
