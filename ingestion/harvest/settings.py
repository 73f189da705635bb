"""Harvest constants: resources, contracts, page size, the cursor's starting point."""

from ingestion.pages import Contract

PER_PAGE = 2000
EPOCH = "1970-01-01T00:00:00Z"
USER_AGENT = "pslake (https://github.com/pslake/pslake)"
MONEY = "DECIMAL(18,4)"
HOURS = "DECIMAL(12,4)"
ID = "BIGINT"
TS = "TIMESTAMPTZ"

_STAMPS = {"id": ID, "created_at": TS, "updated_at": TS}


def _contract(table: str, **columns: str) -> Contract:
    return Contract(table=table, primary_key=("id",), cursor="updated_at",
                    columns={**_STAMPS, **columns})


# The big tables: time entries and expenses. Nested objects arrive flattened (user__id).
TIME_ENTRIES = _contract(
    "time_entries", spent_date="DATE", hours=HOURS, hours_without_timer=HOURS,
    rounded_hours=HOURS, billable_rate=MONEY, cost_rate=MONEY,
    user__id=ID, client__id=ID, project__id=ID, task__id=ID, user_assignment__id=ID,
    task_assignment__id=ID, invoice__id=ID, invoice__number="VARCHAR",
    is_billed="BOOLEAN", is_locked="BOOLEAN", billable="BOOLEAN",
)
EXPENSES = _contract(
    "expenses", spent_date="DATE", total_cost=MONEY, units="DECIMAL(18,4)",
    user__id=ID, client__id=ID, project__id=ID, expense_category__id=ID,
    invoice__id=ID, billable="BOOLEAN", is_billed="BOOLEAN",
)
BIG: dict[str, Contract] = {c.table: c for c in (TIME_ENTRIES, EXPENSES)}

# The reference tables: few rows, read in full on a first load, then incrementally.
REFERENCE: dict[str, Contract] = {c.table: c for c in (
    _contract("clients"),
    _contract("users", weekly_capacity="INTEGER", default_hourly_rate=MONEY, cost_rate=MONEY),
    _contract("projects", client__id=ID, budget="DECIMAL(18,4)", hourly_rate=MONEY,
              fee=MONEY, starts_on="DATE", ends_on="DATE"),
    _contract("tasks", default_hourly_rate=MONEY),
    _contract("task_assignments", project__id=ID, task__id=ID, hourly_rate=MONEY,
              budget="DECIMAL(18,4)"),
    _contract("user_assignments", project__id=ID, user__id=ID, hourly_rate=MONEY,
              budget="DECIMAL(18,4)"),
    _contract("expense_categories", unit_price=MONEY),
)}
REFERENCE_RESOURCES = tuple(REFERENCE)
RESOURCES = (*REFERENCE_RESOURCES, *BIG)
