"""The battery's test 11, dbt_unit_kpi_edges (shared/RELIABILITY.md).

The KPI and reconciliation formulas are dbt unit tests beside their models (STYLE rule 14); this
checks, on the small firm's build, that the edge cases the battery names each have one, that
every unit test ran and passed, and records how many.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import BuiltFirm
from tests.reliability import record

pytestmark = pytest.mark.integration

# the battery's edge cases, and the unit tests that cover them
EDGE_CASES = {
    "zero capacity": ["exec_kpis_utilization_is_null_when_capacity_is_zero",
                      "monthly_utilization_is_billable_over_capacity_null_without_it"],
    "PTO and holidays in capacity": ["capacity_counts_employed_weekdays_less_public_holidays"],
    "fixed fee billed ahead (negative WIP)": [
        "wip_is_unbilled_t_and_m_and_recognised_less_invoiced_fixed_fee"],
    "closed-period postings and time rules": [
        "time_rules_find_each_time_exception_and_nothing_else"],
    "FX date boundaries": ["ar_ageing_on_a_saturday_takes_fridays_rate",
                           "ar_ageing_on_a_sunday_takes_fridays_rate",
                           "month_end_balances_apply_payments_to_date_at_month_end_rate"],
    "partial invoice and credit note": [
        "ar_ageing_partial_payments_and_credit_memos_reduce_amount_due"],
    "time moved between projects": [
        "time_entry_moved_between_projects_counts_once_on_new_engagement"],
    "is_incremental true and false": [
        "exception_log_keeps_first_seen_on_an_incremental_run",
        "exception_log_on_a_full_build_reads_nothing_it_held"],
}


def test_every_named_edge_case_has_a_unit_test_and_every_unit_test_passes(
        small_warehouse: BuiltFirm) -> None:
    run = json.loads((small_warehouse.result.target_path / "run_results.json").read_text())
    units = {r["unique_id"].split(".")[-1]: r["status"] for r in run["results"]
             if r["unique_id"].startswith("unit_test.")}
    missing = {case: [t for t in tests if t not in units]
               for case, tests in EDGE_CASES.items() if any(t not in units for t in tests)}
    failed = sorted(name for name, status in units.items() if status != "pass")
    record("dbt_unit_kpi_edges", injected=len(units), survived=len(units) - len(failed),
           unit_tests_run=len(units), unit_tests_passed=len(units) - len(failed),
           edge_cases_covered=len(EDGE_CASES) - len(missing))
    assert not missing, missing
    assert not failed, failed
    assert len(units) >= 30
