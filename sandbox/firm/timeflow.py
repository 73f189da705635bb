"""Streams the firm's days: Harvest time entries and expenses, NetSuite time postings.

Day by day, person by person, in bounded memory: rows are buffered and flushed to SQLite every
``FLUSH_ROWS`` rows. Each person draws from a random stream of their own, so the output depends
only on the seed. Record-level discrepancies on time are injected here, as the rows are made,
and written to the ground-truth manifest at once. What invoicing needs later (billable hours per
invoice, person and rate; billable expenses) is kept as small aggregates.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson

from sandbox.firm.catalog import TASKS
from sandbox.firm.discrepancies import MIN_PER_TYPE, TIME_ENTRY_TYPES, GroundTruth, ref
from sandbox.firm.model import (
    APPROVAL_DAYS_AFTER_FRIDAY,
    INVOICE_DAYS_AFTER_MONTH_END,
    POSTING_GRACE_DAYS,
    Consultant,
    Firm,
    Project,
    month_end,
    month_key,
)

FLUSH_ROWS = 100_000
TASK_ID = {name: 6_000_001 + i for i, (name, *_rest) in enumerate(TASKS)}
TASK_INDEX = {name: i for i, (name, *_rest) in enumerate(TASKS)}
CLIENT_BILLABLE_TASKS = ("Delivery", "Analysis", "Design", "Project Management")
INTERNAL_TASKS = ("Internal Meetings", "Training", "Business Development")
SERVICE_ITEM = 1  # NetSuite item: Professional Services
EXPENSE_ITEM = 2  # NetSuite item: Reimbursable Expenses
LOCKED_APPROVED = "Item Approved and Locked for this Time Period"
PTO_DAY_P = 0.075
EXPENSE_DAY_P = 0.03
PENDING_WEEK_P = 0.004
DAY_NOISE_Q = (-2, -1, 0, 0, 0, 0, 1, 2, 4)  # quarter hours around a normal day

TIME_ENTRY_COLUMNS = 29
TIMEBILL_COLUMNS = 17
EXPENSE_COLUMNS = 20



def task_assignment_id(project_harvest_id: int, task_name: str) -> int:
    """Harvest task assignment id of a task on a project (one per project and task)."""
    return project_harvest_id * 10 + TASK_INDEX[task_name]


def invoice_date(project: Project, mk_end: dt.date) -> dt.date:
    """The T&M invoice date for the month ending ``mk_end`` (a weekday)."""
    day = mk_end + dt.timedelta(days=INVOICE_DAYS_AFTER_MONTH_END + project.idx % 3)
    if project.late_invoicing:
        day += dt.timedelta(days=31)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


WeekState = tuple[
    dt.date, dt.datetime | None, str | None, dt.datetime | None, str | None, str | None
]


def _approval_week(rng: random.Random, friday: dt.date, as_of_dt: dt.datetime) -> WeekState:
    """When a person's timesheet for the week ending ``friday`` was approved and posted."""
    if rng.random() < PENDING_WEEK_P:
        return (friday, None, None, None, None, None)
    lag = rng.choice(APPROVAL_DAYS_AFTER_FRIDAY)
    approved_at = dt.datetime.combine(
        friday + dt.timedelta(days=lag),
        dt.time(rng.randint(8, 17), rng.randint(0, 59), rng.randint(0, 59)),
    )
    if approved_at >= as_of_dt:
        return (friday, None, None, None, None, None)
    posted_at: dt.datetime | None = (approved_at + dt.timedelta(days=1)).replace(hour=2)
    if posted_at is not None and posted_at >= as_of_dt:
        posted_at = None
    return (
        friday,
        approved_at,
        ts_harvest(approved_at),
        posted_at,
        ts_harvest(posted_at) if posted_at else None,
        ts_netsuite(posted_at) if posted_at else None,
    )


def ts_harvest(moment: dt.datetime) -> str:
    """Harvest's timestamp form."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ts_netsuite(moment: dt.datetime) -> str:
    """The NetSuite store's timestamp form."""
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Billing:
    """What the streaming pass leaves for invoicing, plus id counters and counts."""

    invoices: dict[tuple[int, int], int] = field(default_factory=dict)  # (project, month) -> id
    invoice_dates: dict[int, dt.date] = field(default_factory=dict)
    invoice_project: dict[int, int] = field(default_factory=dict)
    time_lines: dict[int, dict[tuple[int, int], int]] = field(default_factory=dict)
    expense_lines: dict[int, list[tuple[int, int, int, str]]] = field(default_factory=dict)
    next_transaction_id: int = 100_001
    counts: dict[str, int] = field(default_factory=dict)

    def invoice_for(self, project_idx: int, month: int, day: dt.date) -> int:
        """The id of the T&M invoice of a project's month (allocated on first use)."""
        key = (project_idx, month)
        invoice_id = self.invoices.get(key)
        if invoice_id is None:
            invoice_id = self.next_transaction_id
            self.next_transaction_id += 1
            self.invoices[key] = invoice_id
            self.invoice_dates[invoice_id] = day
            self.invoice_project[invoice_id] = project_idx
            self.time_lines[invoice_id] = {}
        return invoice_id


@dataclass
class Ids:
    """Lookups the streaming pass needs from the reference writers."""

    user_assignment: dict[tuple[int, int], int]
    subsidiary: dict[str, int]
    period: dict[int, int]
    expense_category: dict[str, int]
    netsuite_account: str


class _Buffers:
    """Row buffers, written by one background thread so that inserts overlap generation.

    SQLite releases the GIL while it stores rows, so the writer runs beside the generating
    thread. At most one batch is in flight: memory stays bounded by two batches.
    """

    def __init__(self, harvest: sqlite3.Connection, netsuite: sqlite3.Connection) -> None:
        self.harvest = harvest
        self.netsuite = netsuite
        self.entries: list[tuple[object, ...]] = []
        self.timebills: list[tuple[object, ...]] = []
        self.expenses: list[tuple[object, ...]] = []
        self.written = {"time_entries": 0, "timebill": 0, "expenses": 0}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="firm-writer")
        self._pending: Future[None] | None = None

    def maybe_flush(self) -> None:
        if len(self.entries) + len(self.timebills) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        batch = (self.entries, self.timebills, self.expenses)
        self.entries, self.timebills, self.expenses = [], [], []
        self.wait()
        self._pending = self._pool.submit(self._write, *batch)

    def wait(self) -> None:
        """Wait for the batch in flight (re-raising its error)."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def close(self) -> None:
        """Write what is buffered, wait for it, and stop the writer."""
        try:
            self.flush()
            self.wait()
        finally:
            self._pool.shutdown(wait=True)

    def _write(
        self,
        entries: list[tuple[object, ...]],
        timebills: list[tuple[object, ...]],
        expenses: list[tuple[object, ...]],
    ) -> None:
        for con, table, rows, width in (
            (self.harvest, "time_entries", entries, TIME_ENTRY_COLUMNS),
            (self.netsuite, "timebill", timebills, TIMEBILL_COLUMNS),
            (self.harvest, "expenses", expenses, EXPENSE_COLUMNS),
        ):
            if not rows:
                continue
            marks = ",".join("?" * width)
            con.execute("begin")
            con.executemany(f"insert into {table} values ({marks})", rows)
            con.execute("commit")
            self.written[table] += len(rows)


Visits = dict[dt.date, list[tuple[Consultant, Project]]]


def plan_closed_project_visits(firm: Firm, rng: random.Random, rate: float) -> Visits:
    """Time logged after a project closed in the ERP: which person, which project, which day.

    Only a team member who is employed and working that day (a weekday, not a holiday) can log
    it, so every planned visit becomes an entry; at least ``MIN_PER_TYPE`` when possible.
    """
    visits: Visits = {}
    if rate <= 0:
        return visits
    last_day = firm.as_of - dt.timedelta(days=1)
    options: dict[int, list[tuple[dt.date, Consultant]]] = {}
    for project in firm.projects:
        if not project.is_closed or (last_day - project.end).days < 1:
            continue
        for offset in range(1, min(30, (last_day - project.end).days) + 1):
            day = project.end + dt.timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for idx in sorted(project.members):
                person = firm.consultants[idx]
                employed = person.hire <= day and (person.release is None or day <= person.release)
                if employed and day not in firm.holidays[person.entity.country]:
                    options.setdefault(project.idx, []).append((day, person))
    eligible = [firm.projects[idx] for idx in sorted(options)]
    chosen = [p for p in eligible if rng.random() < rate]
    if len(chosen) < MIN_PER_TYPE:
        taken = {p.idx for p in chosen}
        chosen += [p for p in eligible if p.idx not in taken][: MIN_PER_TYPE - len(chosen)]
    for project in chosen:
        day, person = options[project.idx][rng.randrange(len(options[project.idx]))]
        project.harvest_active = True  # the PSA was never told the ERP closed it
        visits.setdefault(day, []).append((person, project))
    return visits


def stream_time(
    firm: Firm,
    harvest: sqlite3.Connection,
    netsuite: sqlite3.Connection,
    ids: Ids,
    truth: GroundTruth,
    rates: dict[str, float],
    visits: Visits,
    untouched: set[int],
    progress: Callable[[int, int], None] | None = None,
) -> Billing:
    """Generate every day's time, expenses and postings; return the invoicing aggregates.

    Args:
        firm: The reference data.
        harvest: The Harvest store being written.
        netsuite: The NetSuite store being written.
        ids: Id maps from the reference writers.
        truth: The manifest that injected discrepancies are written to.
        rates: Discrepancy rates per type.
        visits: Time to log on projects after the ERP closed them.
        untouched: Projects whose time gets no record-level discrepancy (their PSA code will
            not match the ERP, so the time could not be tied to a rate card by code).
        progress: Called with (days done, days in all).
    """
    billing = Billing()
    buffers = _Buffers(harvest, netsuite)
    as_of = firm.as_of
    as_of_dt = dt.datetime.combine(as_of, dt.time())
    grace_day = as_of - dt.timedelta(days=POSTING_GRACE_DAYS)
    projects = firm.projects
    cards = firm.cards
    people_rng = [random.Random(firm.seed * 1_000_003 + c.idx) for c in firm.consultants]
    week_state: dict[int, WeekState] = {}
    rate_cache: dict[tuple[int, str, int], int] = {}
    invoice_day_cache: dict[tuple[int, int], dt.date] = {}
    ua = ids.user_assignment
    te_id = 1_000_000_001
    tb_id = 1_000_001
    ex_id = 200_000_001
    bounds = []
    acc = 0.0
    for name in TIME_ENTRY_TYPES:  # one probability interval each, in this order
        acc += rates[name]
        bounds.append(acc)
    category_ids = ids.expense_category
    categories = list(category_ids)
    days_total = (as_of - firm.start).days
    day = firm.start
    done = 0
    while day < as_of:
        weekday = day.weekday()
        if weekday >= 5:
            day += dt.timedelta(days=1)
            done += 1
            continue
        day_s = day.isoformat()
        mk = month_key(day)
        m_end = month_end(day)
        period_id = ids.period[mk]
        period_closed = firm.period_closed(day)
        close_day = firm.closed_on(day)
        friday = day + dt.timedelta(days=4 - weekday)
        for c in firm.consultants:
            if day < c.hire or (c.release is not None and day > c.release):
                continue
            if day in firm.holidays[c.entity.country]:
                continue
            rng = people_rng[c.idx]
            state = week_state.get(c.idx)
            if state is None or state[0] != friday:
                state = _approval_week(rng, friday, as_of_dt)
                week_state[c.idx] = state
            _friday, approved_at, approved_s, posted_at, posted_h, posted_n = state
            rnd = int(rng.random() * 18000)
            created_s = f"{day_s}T{16 + rnd // 3600}:{rnd // 60 % 60:02d}:{rnd % 60:02d}Z"
            entity_key = c.entity.key

            # ---- what this person did today: (project or None, task, quarter hours, billable)
            work: list[tuple[Project | None, str, int, bool]] = []
            fte_q = 32 if c.fte == 1 else 26
            if rng.random() < PTO_DAY_P:
                work.append((None, "Paid Time Off", fte_q, False))
            else:
                total = fte_q + DAY_NOISE_Q[int(rng.random() * 9)]
                primary_idx, secondary_idx = firm.staffing.get((c.idx, mk), (None, None))
                primary = projects[primary_idx] if primary_idx is not None else None
                secondary = projects[secondary_idx] if secondary_idx is not None else None
                if secondary is not None and not (secondary.start <= day <= secondary.end):
                    secondary = None
                if primary is not None and not (primary.start <= day <= primary.end):
                    primary, secondary = secondary, None
                billable_q = 0
                if primary is not None:
                    billable_q = min(total, round(total * c.utilization * rng.uniform(0.85, 1.12)))
                    if secondary is not None:
                        second_q = round(billable_q * 0.3)
                        if second_q > 0:
                            work.append(
                                (
                                    secondary,
                                    CLIENT_BILLABLE_TASKS[int(rng.random() * 4)],
                                    second_q,
                                    True,
                                )
                            )
                        billable_q -= second_q
                    if billable_q >= 8 and rng.random() < 0.8:
                        split = rng.randint(2, billable_q - 2)
                        work.append((primary, "Delivery", split, True))
                        work.append(
                            (
                                primary,
                                CLIENT_BILLABLE_TASKS[1 + int(rng.random() * 3)],
                                billable_q - split,
                                True,
                            )
                        )
                    elif billable_q > 0:
                        work.append(
                            (
                                primary,
                                CLIENT_BILLABLE_TASKS[int(rng.random() * 4)],
                                billable_q,
                                True,
                            )
                        )
                    billable_q = sum(w[2] for w in work)
                    if rng.random() < 0.06:
                        travel = rng.randint(2, 4)
                        work.append((primary, "Travel", travel, False))
                        billable_q += travel
                rest = total - billable_q
                if rest >= 6 and rng.random() < 0.5:
                    part = rng.randint(2, rest - 2)
                    work.append((None, "Internal Meetings", part, False))
                    rest -= part
                if rest > 0:
                    task = (
                        "Business Development"
                        if c.role.target < 0.6 and rng.random() < 0.5
                        else INTERNAL_TASKS[int(rng.random() * 3)]
                    )
                    work.append((None, task, rest, False))
                if primary is not None and rng.random() < EXPENSE_DAY_P:
                    _expense(
                        buffers,
                        billing,
                        firm,
                        c,
                        primary,
                        rng,
                        ex_id,
                        day,
                        day_s,
                        created_s,
                        approved_at,
                        approved_s,
                        as_of,
                        category_ids,
                        categories,
                        ua,
                    )
                    ex_id += 1
            for person, closed in visits.get(day, ()):  # after the ERP closed the project
                if person.idx == c.idx:
                    q = rng.randint(8, 32)
                    rate = cards.rate(closed.client, c.role, day.year)
                    buffers.entries.append(
                        (
                            te_id,
                            day_s,
                            c.harvest_id,
                            closed.client.harvest_id,
                            closed.harvest_id,
                            TASK_ID["Delivery"],
                            ua[(c.idx, closed.harvest_id)],
                            task_assignment_id(closed.harvest_id, "Delivery"),
                            q / 4,
                            q / 4,
                            q / 4,
                            "Wrap-up",
                            0,
                            None,
                            0,
                            0,
                            None,
                            None,
                            None,
                            0,
                            1,
                            1,
                            float(rate),
                            float(c.cost_rate),
                            None,
                            None,
                            None,
                            created_s,
                            created_s,
                        )
                    )
                    truth.add(
                        "time_on_closed_project",
                        ref("harvest", "time_entry", te_id),
                        closed.end.isoformat(),
                        day_s,
                    )
                    te_id += 1

            for project, task, q, billable in work:
                hours = q / 4
                if project is None:
                    ip = firm.internal[(entity_key, "PTO" if task == "Paid Time Off" else "ADM")]
                    buffers.entries.append(
                        (
                            te_id,
                            day_s,
                            c.harvest_id,
                            ip.client_harvest_id,
                            ip.harvest_id,
                            TASK_ID[task],
                            ua[(c.idx, ip.harvest_id)],
                            task_assignment_id(ip.harvest_id, task),
                            hours,
                            hours,
                            hours,
                            None,
                            1 if approved_at else 0,
                            LOCKED_APPROVED if approved_at else None,
                            1 if approved_at else 0,
                            0,
                            None,
                            None,
                            None,
                            0,
                            0,
                            0,
                            None,
                            float(c.cost_rate),
                            None,
                            None,
                            None,
                            created_s,
                            approved_s or created_s,
                        )
                    )
                    te_id += 1
                    continue
                card = None
                if billable:
                    rate_key = (project.client.idx, c.role.name, day.year)
                    card = rate_cache.get(rate_key)
                    if card is None:
                        card = rate_cache[rate_key] = cards.rate(project.client, c.role, day.year)
                harvest_rate = card
                erp_q = q
                posted = posted_at is not None
                twice = False
                updated = posted_h if posted else (approved_s or created_s)
                u = rng.random()
                kind = None
                if u < bounds[-1] and project.idx not in untouched:
                    if u < bounds[0]:
                        if billable and posted and day <= grace_day:
                            kind = "time_not_posted"
                    elif u < bounds[1]:
                        if posted:
                            kind = "time_hours_mismatch"
                    elif u < bounds[2]:
                        if posted:
                            kind = "time_posted_twice"
                    elif u < bounds[3]:
                        if (
                            approved_at is not None
                            and period_closed
                            and (as_of - close_day).days >= 2
                        ):
                            kind = "time_in_closed_period"
                    elif billable:
                        kind = "rate_mismatch"
                entry_ref = None
                if kind is not None:
                    entry_ref = ref("harvest", "time_entry", te_id)
                if kind == "time_not_posted":
                    posted = False
                    updated = approved_s or created_s
                    truth.add(kind, entry_ref, hours, None)  # type: ignore[arg-type]
                elif kind == "time_hours_mismatch":
                    erp_q = max(1, q + rng.choice((-2, 2, 4, 8)))
                    if erp_q == q:
                        erp_q = q + 2
                    truth.add(kind, entry_ref, hours, erp_q / 4)  # type: ignore[arg-type]
                elif kind == "time_posted_twice":
                    twice = True
                    truth.add(kind, entry_ref, 1, 2)  # type: ignore[arg-type]
                elif kind == "time_in_closed_period":
                    span = min(20, (as_of - close_day).days - 1)
                    late = dt.datetime.combine(
                        close_day + dt.timedelta(days=rng.randint(1, span)),
                        dt.time(11, rng.randint(0, 59)),
                    )
                    updated = ts_harvest(late)
                    truth.add(kind, entry_ref, close_day.isoformat(), updated)  # type: ignore[arg-type]
                elif kind == "rate_mismatch":
                    assert card is not None
                    harvest_rate = round(card * rng.choice((1.05, 1.1, 0.9, 1.15)))
                    if harvest_rate == card:
                        harvest_rate = card + 5
                    truth.add(kind, entry_ref, card, harvest_rate)  # type: ignore[arg-type]
                external = None
                invoice_id = None
                if posted:
                    tb_modified = posted_n
                    if billable and project.model == "TM":
                        inv_day = invoice_day_cache.get((project.idx, mk))
                        if inv_day is None:
                            inv_day = invoice_day_cache[(project.idx, mk)] = invoice_date(
                                project, m_end
                            )
                        if inv_day < as_of:
                            invoice_id = billing.invoice_for(project.idx, mk, inv_day)
                            lines = billing.time_lines[invoice_id]
                            line_key = (c.idx, card or 0)
                            lines[line_key] = lines.get(line_key, 0) + erp_q
                            tb_modified = f"{inv_day.isoformat()} 09:00:00"
                    external = orjson.dumps(
                        {
                            "id": str(tb_id),
                            "group_id": str(project.netsuite_id),
                            "account_id": ids.netsuite_account,
                            "service": "netsuite.com",
                            "permalink": f"https://system.netsuite.com/app/accounting/transactions/timebill.nl?id={tb_id}",
                        }
                    ).decode()
                    posting = (
                        tb_id, c.netsuite_id, project.netsuite_id, SERVICE_ITEM, erp_q / 4, day_s,
                        "T" if billable else "F", float(card) if card else None, 2, None,
                        ids.subsidiary[entity_key], period_id, str(te_id), invoice_id, "T",
                        posted_n, tb_modified,
                    )  # fmt: skip
                    buffers.timebills.append(posting)
                    tb_id += 1
                    if twice:  # the same entry posted again later, not invoiced
                        buffers.timebills.append(
                            (tb_id, *posting[1:13], None, "T", posted_n, posted_n)
                        )
                        tb_id += 1
                buffers.entries.append(
                    (
                        te_id,
                        day_s,
                        c.harvest_id,
                        project.client.harvest_id,
                        project.harvest_id,
                        TASK_ID[task],
                        ua[(c.idx, project.harvest_id)],
                        task_assignment_id(project.harvest_id, task),
                        hours,
                        hours,
                        hours,
                        rng.choice(
                            (
                                "Workshop preparation",
                                "Client meeting",
                                "Deliverable drafting",
                                "Data review",
                                None,
                                None,
                            )
                        ),
                        1 if approved_at else 0,
                        LOCKED_APPROVED if approved_at else None,
                        1 if approved_at else 0,
                        0,
                        None,
                        None,
                        None,
                        0,
                        1 if billable else 0,
                        1,
                        float(harvest_rate) if harvest_rate is not None else None,
                        float(c.cost_rate),
                        external,
                        None,
                        None,
                        created_s,
                        updated,
                    )
                )
                te_id += 1
            buffers.maybe_flush()
        day += dt.timedelta(days=1)
        done += 1
        if progress is not None and day.day == 1:
            progress(done, days_total)
    buffers.close()
    if progress is not None:
        progress(days_total, days_total)
    billing.counts = dict(buffers.written)
    return billing


def _expense(
    buffers: _Buffers,
    billing: Billing,
    firm: Firm,
    c: Consultant,
    project: Project,
    rng: random.Random,
    ex_id: int,
    day: dt.date,
    day_s: str,
    created_s: str,
    approved_at: dt.datetime | None,
    approved_s: str | None,
    as_of: dt.date,
    category_ids: dict[str, int],
    categories: list[str],
    ua: dict[tuple[int, int], int],
) -> None:
    category = rng.choice(categories)
    units = None
    if category == "Mileage":
        units = rng.randint(10, 200)
        cents = round(units * 67)
    else:
        low, high = {"Airfare": (200, 900), "Lodging": (120, 320), "Meals": (15, 80)}[category]
        cents = rng.randint(low * 100, high * 100)
    billable = project.model == "TM"
    if billable and approved_at is not None:
        inv_day = invoice_date(project, month_end(day))
        if inv_day < as_of:
            invoice_id = billing.invoice_for(project.idx, month_key(day), inv_day)
            billing.expense_lines.setdefault(invoice_id, []).append((ex_id, cents, c.idx, category))
    buffers.expenses.append(
        (
            ex_id,
            project.client.harvest_id,
            project.harvest_id,
            category_ids[category],
            c.harvest_id,
            ua[(c.idx, project.harvest_id)],
            f"{category} for {project.code}",
            units,
            cents / 100,
            1 if billable else 0,
            1 if approved_at else 0,
            1 if approved_at else 0,
            0,
            LOCKED_APPROVED if approved_at else None,
            day_s,
            None,
            None,
            None,
            created_s,
            approved_s or created_s,
        )
    )
