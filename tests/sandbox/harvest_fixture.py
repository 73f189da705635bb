"""A tiny Harvest store for the emulator tests, written straight into ``harvest.sqlite``.

2 clients, 3 users (202 is the administrator, so ``/users/me``), 3 tasks, 3 projects with their
task and user assignments, 2 expense categories, 450 time entries (ids 1001-1450) and 5 expenses.
Some pairs are left unassigned on purpose: task 301 is not on project 403, user 201 is not on
project 402 and user 203 is not on project 401. Every stored time is in the past
(``BASE_TIME`` + one minute per entry), so anything written by a test is newer than all of it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson

from sandbox import firm_info
from sandbox.store import connect, create_indexes, create_schema, transaction

STAMP = "%Y-%m-%dT%H:%M:%SZ"
BASE_TIME = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
CREATED = "2025-01-15T09:00:00Z"
LOCKED = "Item Approved and Locked for this Time Period"

# id: (name, currency)
CLIENTS = {101: ("Acme Industries", "USD"), 102: ("Globex GmbH", "EUR")}
# id: (first, last, access role, default rate, cost rate, contractor)
USERS = {
    201: ("Ada", "Lovelace", "member", 150.0, 80.0, 0),
    202: ("Grace", "Hopper", "administrator", 200.0, 100.0, 0),
    203: ("Alan", "Turing", "member", 120.0, 60.0, 1),
}
ME = 202
# id: (name, billable by default)
TASKS = {301: ("Design", 1), 302: ("Development", 1), 303: ("Internal", 0)}
# id: (client, name, code, billable, bill_by, hourly rate, budget_by)
PROJECTS = {
    401: (101, "Data Platform Build", "DPB", 1, "People", 150.0, "project"),
    402: (102, "ERP Rollout", "ERP", 1, "Project", 120.0, "none"),
    403: (101, "Internal Admin", "INT", 0, "none", None, "none"),
}
# id: (project, task, billable, hourly rate)
TASK_ASSIGNMENTS = {
    501: (401, 301, 1, 140.0),
    502: (401, 302, 1, 160.0),
    503: (402, 301, 1, None),
    504: (402, 302, 1, None),
    505: (402, 303, 0, None),
    506: (403, 303, 0, None),
}
# id: (project, user, project manager, use default rates, hourly rate)
USER_ASSIGNMENTS = {
    601: (401, 201, 0, 0, 175.0),
    602: (401, 202, 1, 1, None),
    603: (402, 202, 1, 0, None),
    604: (402, 203, 0, 0, None),
    605: (403, 201, 0, 1, None),
    606: (403, 202, 0, 1, None),
    607: (403, 203, 0, 1, None),
}
# id: (name, unit price, unit name)
CATEGORIES = {701: ("Meals", None, None), 702: ("Mileage", 0.67, "mile")}
TIME_ENTRY_IDS = list(range(1001, 1451))
EXPENSE_IDS = list(range(9001, 9006))
RUNNING_ENTRY = 1449


def stamp(moment: dt.datetime) -> str:
    """Harvest's timestamp form, ``YYYY-MM-DDTHH:MM:SSZ``."""
    return moment.strftime(STAMP)


def task_assignment_of(project: int, task: int) -> int:
    """The task assignment id of a (project, task) pair."""
    return next(i for i, a in TASK_ASSIGNMENTS.items() if a[:2] == (project, task))


def user_assignment_of(project: int, user: int) -> int:
    """The user assignment id of a (project, user) pair."""
    return next(i for i, a in USER_ASSIGNMENTS.items() if a[:2] == (project, user))


def billable_rate(project: int, task: int, user: int) -> float | None:
    """The billable rate Harvest derives for a time entry (None when not billable)."""
    _client, _name, _code, project_billable, bill_by, project_rate, _ = PROJECTS[project]
    ta = TASK_ASSIGNMENTS[task_assignment_of(project, task)]
    if not (ta[2] and project_billable):
        return None
    if bill_by == "Project":
        return project_rate
    if bill_by == "Tasks":
        return ta[3]
    if bill_by == "People":
        _p, _u, _pm, use_default, rate = USER_ASSIGNMENTS[user_assignment_of(project, user)]
        return USERS[user][3] if use_default or rate is None else rate
    return None


def time_entry_rows() -> list[dict[str, Any]]:
    """The seeded time entries as column -> value dicts (ids ascending)."""
    users_on = {p: [u for (pp, u, *_rest) in USER_ASSIGNMENTS.values() if pp == p]
                for p in PROJECTS}
    tasks_on = {p: [t for (pp, t, *_rest) in TASK_ASSIGNMENTS.values() if pp == p]
                for p in PROJECTS}
    rows = []
    for i, entry_id in enumerate(TIME_ENTRY_IDS):
        project = (401, 402, 403)[i % 3]
        user = users_on[project][(i // 3) % len(users_on[project])]
        task = tasks_on[project][(i // 7) % len(tasks_on[project])]
        rate = billable_rate(project, task, user)
        billable = rate is not None
        billed = billable and i % 4 == 0
        locked = i < 200
        moment = stamp(BASE_TIME + dt.timedelta(minutes=i))
        notes = f"Entry {i}"
        if i % 50 == 0:
            notes = 'Said "hello" \\ naïve\nsecond line'
        reference = None
        if i % 3 != 2:
            reference = orjson.dumps({
                "id": str(3_000_000 + i), "group_id": "timebill", "account_id": "1234567_SB1",
                "permalink": f"https://1234567-sb1.app.netsuite.com/app/accounting/"
                             f"transactions/timebill.nl?id={3_000_000 + i}",
                "service": "1234567-sb1.app.netsuite.com", "service_icon_url": None,
            }).decode()
        running = entry_id == RUNNING_ENTRY
        rows.append({
            "id": entry_id,
            "spent_date": (dt.date(2026, 3, 1) + dt.timedelta(days=i // 5)).isoformat(),
            "user_id": user,
            "client_id": PROJECTS[project][0],
            "project_id": project,
            "task_id": task,
            "user_assignment_id": user_assignment_of(project, user),
            "task_assignment_id": task_assignment_of(project, task),
            "hours": (1.0, 2.5, 4.0, 7.5, 8.25)[i % 5],
            "hours_without_timer": (1.0, 2.5, 4.0, 7.5, 8.25)[i % 5],
            "rounded_hours": (1.0, 2.5, 4.0, 7.5, 8.25)[i % 5],
            "notes": notes,
            "is_locked": int(locked),
            "locked_reason": LOCKED if locked else None,
            "is_closed": int(locked),
            "is_billed": int(billed),
            "timer_started_at": moment if running else None,
            "started_time": "9:00am" if i % 10 == 0 else None,
            "ended_time": "10:00am" if i % 10 == 0 else None,
            "is_running": int(running),
            "billable": int(billable),
            "budgeted": int(PROJECTS[project][6] != "none"),
            "billable_rate": rate,
            "cost_rate": USERS[user][4],
            "external_reference": reference,
            "invoice_id": 7000 + i // 20 if billed else None,
            "invoice_number": f"INV-{7000 + i // 20}" if billed else None,
            "created_at": moment,
            "updated_at": moment,
        })
    return rows


def expense_rows() -> list[dict[str, Any]]:
    """The seeded expenses as column -> value dicts (ids ascending)."""
    receipt = orjson.dumps({"url": "https://example.com/receipts/9003.pdf",
                            "file_name": "9003.pdf", "file_size": 1024,
                            "content_type": "application/pdf"}).decode()
    # (project, user, category, units, total, billable, spent, receipt, invoiced)
    seeds = [
        (401, 201, 701, None, 45.5, 1, "2026-03-03", None, False),
        (402, 203, 702, 120.0, 80.4, 1, "2026-03-10", None, False),
        (401, 202, 701, None, 120.0, 1, "2026-04-01", receipt, False),
        (402, 202, 701, None, 60.0, 1, "2026-04-15", None, True),
        (403, 201, 702, 10.0, 6.7, 0, "2026-05-20", None, False),
    ]
    rows = []
    for i, (project, user, category, units, total, billable, spent, rec, invoiced) in enumerate(
        seeds
    ):
        moment = stamp(BASE_TIME + dt.timedelta(days=1, hours=i))
        rows.append({
            "id": EXPENSE_IDS[i], "client_id": PROJECTS[project][0], "project_id": project,
            "expense_category_id": category, "user_id": user,
            "user_assignment_id": user_assignment_of(project, user),
            "notes": f"Expense {i}", "units": units, "total_cost": total, "billable": billable,
            "is_closed": int(invoiced), "is_locked": int(invoiced), "is_billed": int(invoiced),
            "locked_reason": "Expense is invoiced." if invoiced else None, "spent_date": spent,
            "receipt": rec, "invoice_id": 7100 if invoiced else None,
            "invoice_number": "INV-7100" if invoiced else None,
            "created_at": moment, "updated_at": moment,
        })
    return rows


def _insert(con: Any, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    con.executemany(
        f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
        [[row[c] for c in columns] for row in rows],
    )


def build_store(store_dir: Path, *, indexes: bool = True) -> None:
    """Write the tiny Harvest store (and firm.json with fresh credentials) into ``store_dir``."""
    create_schema(store_dir)
    firm_info.save(store_dir, {"size": "tiny", "seed": 0, "as_of": "2026-11-16",
                               "credentials": firm_info.new_credentials()})
    con = connect(store_dir, "harvest")
    with transaction(con):
        con.execute(
            "insert into company values (1, 'https://tiny.harvestapp.com', 'tiny.harvestapp.com',"
            " 'Tiny Consulting', 1, 'Monday', 0, 'decimal', '%Y-%m-%d', 'business', '24h', 'USD',"
            " 144000, 1, 0, 0, 1, 1)"
        )
        _insert(con, "clients", [
            {"id": i, "name": name, "is_active": 1, "address": "1 Main St",
             "statement_key": f"sk{i}", "currency": cur, "created_at": CREATED,
             "updated_at": CREATED}
            for i, (name, cur) in CLIENTS.items()
        ])
        _insert(con, "users", [
            {"id": i, "first_name": first, "last_name": last, "email": f"{first.lower()}@tiny.io",
             "timezone": "Europe/London", "is_contractor": contractor, "is_active": 1,
             "weekly_capacity": 144000, "default_hourly_rate": rate, "cost_rate": cost,
             "roles": orjson.dumps(["Consultant", "Data"]).decode(),
             "access_roles": orjson.dumps([role]).decode(), "avatar_url": None,
             "created_at": CREATED, "updated_at": CREATED}
            for i, (first, last, role, rate, cost, contractor) in USERS.items()
        ])
        _insert(con, "tasks", [
            {"id": i, "name": name, "billable_by_default": billable, "default_hourly_rate": None,
             "is_default": 0, "is_active": 1, "created_at": CREATED, "updated_at": CREATED}
            for i, (name, billable) in TASKS.items()
        ])
        _insert(con, "projects", [
            {"id": i, "client_id": client, "name": name, "code": code, "is_active": 1,
             "is_billable": billable, "is_fixed_fee": 0, "bill_by": bill_by, "hourly_rate": rate,
             "budget": 500.0 if budget_by != "none" else None, "budget_by": budget_by,
             "starts_on": "2026-01-01", "ends_on": None, "created_at": CREATED,
             "updated_at": CREATED}
            for i, (client, name, code, billable, bill_by, rate, budget_by) in PROJECTS.items()
        ])
        _insert(con, "task_assignments", [
            {"id": i, "project_id": p, "task_id": t, "is_active": 1, "billable": b,
             "hourly_rate": rate, "budget": None, "created_at": CREATED, "updated_at": CREATED}
            for i, (p, t, b, rate) in TASK_ASSIGNMENTS.items()
        ])
        _insert(con, "user_assignments", [
            {"id": i, "project_id": p, "user_id": u, "is_active": 1, "is_project_manager": pm,
             "use_default_rates": default, "hourly_rate": rate, "budget": None,
             "created_at": CREATED, "updated_at": CREATED}
            for i, (p, u, pm, default, rate) in USER_ASSIGNMENTS.items()
        ])
        _insert(con, "expense_categories", [
            {"id": i, "name": name, "unit_name": unit, "unit_price": price, "is_active": 1,
             "created_at": CREATED, "updated_at": CREATED}
            for i, (name, price, unit) in CATEGORIES.items()
        ])
        _insert(con, "time_entries", time_entry_rows())
        _insert(con, "expenses", expense_rows())
    con.close()
    if indexes:
        create_indexes(store_dir)
