"""``pslake sandbox generate``: write a deterministic synthetic firm into a sandbox store.

Order of work: build the reference data in memory (``model``), stream the days (``timeflow``),
invoice and settle (``billing``), then write the reference tables of the three vendors with the
entity-level discrepancies injected, the serving indexes, ``firm.json`` and the manifest. Files are
written in a scratch folder beside the target and moved in place at the end, so a server never
sees a half-written store and an interrupted run leaves the previous store intact.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import shutil
import sqlite3
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from sandbox import firm_info
from sandbox.firm.billing import Invoice, build_invoices, write_billing
from sandbox.firm.catalog import (
    BILLING_LABELS,
    DEAL_STAGES,
    ENTITIES,
    EXPENSE_CATEGORIES,
    FIRST_NAMES,
    FX_CENTRES,
    LAST_NAMES,
    PARENT_NAME,
    PRACTICES,
    REPORTING_CURRENCY,
    SIZES,
    TASKS,
    TERMS,
)
from sandbox.firm.discrepancies import DEFAULT_RATES, MIN_PER_TYPE, GroundTruth, ref
from sandbox.firm.model import (
    CLOSE_DAYS_AFTER_MONTH_END,
    DEAL_GRACE_DAYS,
    INVOICE_DAYS_AFTER_MONTH_END,
    POSTING_GRACE_DAYS,
    Client,
    Deal,
    Firm,
    Project,
    add_months,
    build_firm,
    month_end,
    month_key,
)
from sandbox.firm.timeflow import (
    TASK_ID,
    Ids,
    Visits,
    plan_closed_project_visits,
    stream_time,
    task_assignment_id,
)
from sandbox.store import (
    ENDPOINTS_FILE,
    FIRM_FILE,
    GROUND_TRUTH_FILE,
    VENDORS,
    connect,
    create_indexes,
    create_schema,
    db_path,
)

DEFAULT_SEED = 20261122
Progress = Callable[[str, int | None, int | None], None]

CRM_OWNED_NOTE = "pslake writes ERP-owned fields; the CRM owns the rest (field-ownership matrix)"


def _hs(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _hs_day(day: dt.date, hour: int = 9) -> str:
    return _hs(dt.datetime.combine(day, dt.time(hour)))


def _hv(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ns(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour))


def _pick(rng: random.Random, items: list[Any], rate: float) -> list[Any]:
    """Each item with probability ``rate``, at least MIN_PER_TYPE when there are enough."""
    picked = [i for i in range(len(items)) if rng.random() < rate]
    if rate > 0 and len(picked) < MIN_PER_TYPE:
        taken = set(picked)
        rest = [i for i in range(len(items)) if i not in taken]
        rng.shuffle(rest)
        picked = sorted(picked + rest[: MIN_PER_TYPE - len(picked)])
    return [items[i] for i in picked]


def _insert(con: sqlite3.Connection, table: str, rows: list[tuple[Any, ...]]) -> int:
    if not rows:
        return 0
    marks = ",".join("?" * len(rows[0]))
    con.execute("begin")
    con.executemany(f'insert into "{table}" values ({marks})', rows)
    con.execute("commit")
    return len(rows)


class _Writer:
    """Writes one firm into a scratch store; holds the id maps the steps share."""

    def __init__(
        self,
        firm: Firm,
        work: Path,
        rates: dict[str, float],
        truth: GroundTruth,
        credentials: dict[str, dict[str, str]],
    ) -> None:
        self.firm = firm
        self.work = work
        self.rates = rates
        self.truth = truth
        self.credentials = credentials
        self.rng = random.Random(firm.seed * 31 + 17)
        self.hv = connect(work, "harvest", bulk=True)
        self.ns = connect(work, "netsuite", bulk=True)
        self.hs = connect(work, "hubspot", bulk=True)
        self.counts: dict[str, int] = {}
        self.currency_ids = {code: i + 1 for i, code in enumerate(("USD", "GBP", "EUR", "CAD"))}
        self.subsidiary_ids = {e.key: i + 2 for i, e in enumerate(ENTITIES)}
        self.period_ids: dict[int, int] = {}
        self.user_assignment: dict[tuple[int, int], int] = {}
        self.crm_duplicates: list[Client] = []
        self.visits: Visits = {}
        self.unmapped: list[Project] = []

    def close(self) -> None:
        for con in (self.hv, self.ns, self.hs):
            con.close()

    def before_as_of(self, moment: dt.datetime) -> dt.datetime:
        """No record is stamped at or after the as-of date (time runs to the day before)."""
        return min(
            moment, dt.datetime.combine(self.firm.as_of, dt.time()) - dt.timedelta(minutes=7)
        )

    def count(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    # ---- ids needed before streaming -------------------------------------------------------------

    def plan_ids(self) -> Ids:
        firm = self.firm
        ua_id = 8_000_001
        for project in firm.projects:
            for person_idx in sorted(project.members):
                self.user_assignment[(person_idx, project.harvest_id)] = ua_id
                ua_id += 1
        for person in firm.consultants:
            for kind in ("ADM", "PTO"):
                ip = firm.internal[(person.entity.key, kind)]
                self.user_assignment[(person.idx, ip.harvest_id)] = ua_id
                ua_id += 1
        # accounting periods: months, with quarters and years as parents
        pid = 1
        month = firm.period_first
        while month <= firm.period_last:
            self.period_ids[month_key(month)] = pid
            pid += 1
            month = add_months(month, 1)
        return Ids(
            user_assignment=self.user_assignment,
            subsidiary=self.subsidiary_ids,
            period=self.period_ids,
            expense_category={
                name: 9_000_001 + i for i, (name, *_r) in enumerate(EXPENSE_CATEGORIES)
            },
            netsuite_account=self.credentials["netsuite"]["account_id"],
        )

    def plan_discrepancies(self) -> None:
        """Pick the projects whose discrepancies shape the time stream, before it runs.

        Time after an ERP close goes to closed projects; unmapped PSA codes go to other
        projects, and their time gets no record-level discrepancy (see ``stream_time``).
        """
        firm = self.firm
        self.visits = plan_closed_project_visits(
            firm, random.Random(firm.seed * 7919 + 1), self.rates["time_on_closed_project"]
        )
        visited = {p.idx for day in self.visits.values() for _c, p in day}
        candidates = [p for p in firm.projects if p.idx not in visited]
        self.unmapped = _pick(self.rng, candidates, self.rates["project_code_unmapped"])

    # ---- NetSuite reference data -----------------------------------------------------------------

    def netsuite_reference(self) -> None:
        firm = self.firm
        stamp = _ns(_at(firm.start - dt.timedelta(days=400)))
        cur = self.currency_ids
        self.count(
            "netsuite.currency",
            _insert(
                self.ns,
                "currency",
                [
                    (cur[c], c, n, "T" if c == REPORTING_CURRENCY else "F", "F", stamp)
                    for c, n in (
                        ("USD", "US Dollar"),
                        ("GBP", "British Pound"),
                        ("EUR", "Euro"),
                        ("CAD", "Canadian Dollar"),
                    )
                ],
            ),
        )
        rates: list[tuple[Any, ...]] = []
        fx_rng = random.Random(firm.seed * 13 + 5)
        rid = 1
        for code in ("GBP", "EUR", "CAD"):
            level = 0.0
            day = firm.period_first
            while day < firm.as_of:
                level = max(-0.08, min(0.08, level + fx_rng.gauss(0, 0.004)))
                if day.weekday() < 5:
                    rate = round(FX_CENTRES[code] * math.exp(level), 6)
                    rates.append(
                        (rid, cur["USD"], cur[code], rate, day.isoformat(), _ns(_at(day, 16)))
                    )
                    rid += 1
                day += dt.timedelta(days=1)
        self.count("netsuite.currencyrate", _insert(self.ns, "currencyrate", rates))
        subs: list[tuple[Any, ...]] = [
            (
                1,
                PARENT_NAME,
                PARENT_NAME,
                "Northwind Advisory Group Holdings Inc.",
                "US",
                cur["USD"],
                None,
                "F",
                "F",
                stamp,
            )
        ]
        for e in ENTITIES:
            subs.append(
                (
                    self.subsidiary_ids[e.key],
                    e.name,
                    f"{PARENT_NAME} : {e.name}",
                    e.legal_name,
                    e.country,
                    cur[e.currency],
                    1,
                    "F",
                    "F",
                    stamp,
                )
            )
        self.count("netsuite.subsidiary", _insert(self.ns, "subsidiary", subs))
        periods: list[tuple[Any, ...]] = []
        pid_next = max(self.period_ids.values()) + 1
        years: dict[int, int] = {}
        quarters: dict[tuple[int, int], int] = {}
        for mk in sorted(self.period_ids):
            first = dt.date(mk // 12, mk % 12 + 1, 1)
            if first.year not in years:
                years[first.year] = pid_next
                pid_next += 1
            q = (first.year, (first.month - 1) // 3)
            if q not in quarters:
                quarters[q] = pid_next
                pid_next += 1
        for year, yid in years.items():
            closed = firm.closed_on(dt.date(year, 12, 1)) < firm.as_of
            periods.append(
                (
                    yid,
                    f"FY {year}",
                    f"{year}-01-01",
                    f"{year}-12-31",
                    "T" if closed else "F",
                    firm.closed_on(dt.date(year, 12, 1)).isoformat() if closed else None,
                    "T" if closed else "F",
                    "T" if closed else "F",
                    "T" if closed else "F",
                    "F",
                    "F",
                    "T",
                    "F",
                    "F",
                    None,
                    stamp,
                )
            )
        for (year, qn), qid in quarters.items():
            last = month_end(dt.date(year, qn * 3 + 3, 1))
            closed = firm.closed_on(last) < firm.as_of
            periods.append(
                (
                    qid,
                    f"Q{qn + 1} {year}",
                    f"{year}-{qn * 3 + 1:02d}-01",
                    last.isoformat(),
                    "T" if closed else "F",
                    firm.closed_on(last).isoformat() if closed else None,
                    "T" if closed else "F",
                    "T" if closed else "F",
                    "T" if closed else "F",
                    "F",
                    "T",
                    "F",
                    "F",
                    "F",
                    years[year],
                    stamp,
                )
            )
        for mk, pid in sorted(self.period_ids.items()):
            first = dt.date(mk // 12, mk % 12 + 1, 1)
            closed = firm.period_closed(first)
            close_day = firm.closed_on(first)
            modified = _ns(_at(close_day, 18)) if closed else stamp
            flag = "T" if closed else "F"
            periods.append(
                (
                    pid,
                    first.strftime("%b %Y"),
                    first.isoformat(),
                    month_end(first).isoformat(),
                    flag,
                    close_day.isoformat() if closed else None,
                    flag,
                    flag,
                    flag,
                    "T",
                    "F",
                    "F",
                    "F",
                    "F",
                    quarters[(first.year, (first.month - 1) // 3)],
                    modified,
                )
            )
        self.count("netsuite.accountingperiod", _insert(self.ns, "accountingperiod", periods))
        self.count(
            "netsuite.term",
            _insert(
                self.ns,
                "term",
                [(i + 1, name, days, "F", stamp) for i, (name, days) in enumerate(TERMS)],
            ),
        )
        self.count(
            "netsuite.department",
            _insert(
                self.ns,
                "department",
                [(i + 1, name, name, "F", stamp) for i, name in enumerate(PRACTICES)],
            ),
        )
        self.count(
            "netsuite.item",
            _insert(
                self.ns,
                "item",
                [
                    (1, "Professional Services", "Professional Services", "Service", "F", stamp),
                    (2, "Reimbursable Expenses", "Reimbursable Expenses", "OthCharge", "F", stamp),
                    (3, "Fixed Fee Services", "Fixed Fee Services", "Service", "F", stamp),
                    (4, "Milestone Billing", "Milestone Billing", "Service", "F", stamp),
                    (5, "Retainer Fee", "Retainer Fee", "Service", "F", stamp),
                ],
            ),
        )
        self.count(
            "netsuite.entitystatus",
            _insert(
                self.ns,
                "entitystatus",
                [
                    (1, "Not Started", "project"),
                    (2, "In Progress", "project"),
                    (3, "Closed", "project"),
                    (4, "Completed", "project"),
                ],
            ),
        )
        employees = []
        for c in firm.consultants:
            released = c.release is not None and c.release < firm.as_of
            employees.append(
                (
                    c.netsuite_id,
                    f"{c.first} {c.last}",
                    c.first,
                    c.last,
                    c.email,
                    c.role.name,
                    c.practice_idx + 1,
                    self.subsidiary_ids[c.entity.key],
                    None,
                    cur[c.entity.currency],
                    float(c.cost_rate),
                    c.hire.isoformat(),
                    c.release.isoformat() if c.release else None,
                    None,
                    c.role.target,
                    _ns(_at(min(c.hire, firm.start), 8)),
                    _ns(_at(c.release if released and c.release else min(c.hire, firm.start), 8)),
                    "T" if released else "F",
                )
            )
        self.count("netsuite.employee", _insert(self.ns, "employee", employees))
        cards: list[tuple[Any, ...]] = []
        rid = 1
        for (entity_key, role, year), rate in sorted(firm.cards.standard.items()):
            entity = next(e for e in ENTITIES if e.key == entity_key)
            cards.append(
                (
                    rid,
                    f"Standard {entity_key} {role} {year}",
                    self.subsidiary_ids[entity_key],
                    None,
                    role,
                    float(rate),
                    cur[entity.currency],
                    f"{year}-01-01",
                    f"{year}-12-31",
                    "F",
                    _ns(_at(dt.date(year - 1, 12, 1))),
                )
            )
            rid += 1
        for (client_idx, role, year), rate in sorted(firm.cards.client.items()):
            client = firm.clients[client_idx]
            cards.append(
                (
                    rid,
                    f"{client.name} {role} {year}",
                    self.subsidiary_ids[client.entity.key],
                    client.netsuite_id,
                    role,
                    float(rate),
                    cur[client.entity.currency],
                    f"{year}-01-01",
                    f"{year}-12-31",
                    "F",
                    _ns(_at(dt.date(year - 1, 12, 1))),
                )
            )
            rid += 1
        self.count(
            "netsuite.customrecord_pslake_rate_card",
            _insert(self.ns, "customrecord_pslake_rate_card", cards),
        )

    def netsuite_customers_and_jobs(self) -> list[tuple[Client, int, str]]:
        """Customers (with injected ERP duplicates) and jobs; returns the ERP duplicates."""
        firm, rng = self.firm, self.rng
        cur = self.currency_ids
        rows: list[tuple[Any, ...]] = []
        for cl in firm.clients:
            rows.append(
                (
                    cl.netsuite_id,
                    f"CUST{cl.netsuite_id}",
                    cl.legal_name,
                    "F",
                    f"ap@{cl.domain}",
                    f"+1 555 {cl.idx % 1000:04d}",
                    f"https://www.{cl.domain}",
                    None,
                    self.subsidiary_ids[cl.entity.key],
                    cur[cl.entity.currency],
                    cl.terms_idx + 1,
                    cl.entity.country,
                    None,
                    str(cl.hubspot_id) if cl.erp_has_crm_id else None,
                    _ns(_at(cl.created)),
                    _ns(_at(cl.created + dt.timedelta(days=3))),
                    "F",
                )
            )
        duplicates = _pick(rng, firm.clients, self.rates["duplicate_customer"])
        erp_dups: list[tuple[Client, int, str]] = []
        crm_dups: list[Client] = []
        next_id = 20_001 + len(firm.clients) + 100
        for n, cl in enumerate(duplicates):
            if n % 2 == 0:
                variant = _name_variant(cl.legal_name, rng)
                created = firm.as_of - dt.timedelta(days=rng.randint(5, 150))
                rows.append(
                    (
                        next_id,
                        f"CUST{next_id}",
                        variant,
                        "F",
                        f"billing@{cl.domain}",
                        None,
                        f"https://{cl.domain}",
                        None,
                        self.subsidiary_ids[cl.entity.key],
                        cur[cl.entity.currency],
                        cl.terms_idx + 1,
                        cl.entity.country,
                        None,
                        None,
                        _ns(_at(created)),
                        _ns(_at(created)),
                        "F",
                    )
                )
                self.truth.add(
                    "duplicate_customer",
                    ref("netsuite", "customer", next_id),
                    ref("netsuite", "customer", cl.netsuite_id),
                    variant,
                )
                erp_dups.append((cl, next_id, variant))
                next_id += 1
            else:
                crm_dups.append(cl)
        self.crm_duplicates = crm_dups
        self.count("netsuite.customer", _insert(self.ns, "customer", rows))
        jobs = []
        for p in firm.projects:
            closed = p.is_closed
            modified = self.before_as_of(
                _at(p.end + dt.timedelta(days=2)) if closed else _at(p.created)
            )
            jobs.append(
                (
                    p.netsuite_id,
                    p.code,
                    p.name,
                    p.client.netsuite_id,
                    None,
                    self.subsidiary_ids[p.client.entity.key],
                    p.closed_status or 2,
                    p.manager.netsuite_id if p.manager else None,
                    p.start.isoformat(),
                    p.end.isoformat(),
                    p.end.isoformat(),
                    p.model,
                    float(p.contract),
                    float((Decimal(p.budget_hours) * 90).quantize(Decimal(1))),
                    float(p.budget_hours),
                    cur[p.client.entity.currency],
                    str(p.deal.hubspot_id),
                    None,
                    _ns(_at(p.created)),
                    _ns(modified),
                    "F",
                )
            )
        self.count("netsuite.job", _insert(self.ns, "job", jobs))
        return erp_dups

    # ---- Harvest reference data ------------------------------------------------------------------

    def harvest_reference(self) -> None:
        firm, rng = self.firm, self.rng
        epoch = _at(firm.start - dt.timedelta(days=400))
        hv_epoch = _hv(epoch)
        _insert(
            self.hv,
            "company",
            [
                (
                    1,
                    "https://northwind.harvestapp.com",
                    "northwind.harvestapp.com",
                    "Northwind Advisory Group",
                    1,
                    "Monday",
                    0,
                    "decimal",
                    "%Y-%m-%d",
                    "business",
                    "24h",
                    REPORTING_CURRENCY,
                    144000,
                    1,
                    0,
                    0,
                    1,
                    1,
                )
            ],
        )
        clients: list[tuple[Any, ...]] = []
        for cl in firm.clients:
            clients.append(
                (
                    cl.harvest_id,
                    cl.name,
                    1,
                    f"{cl.name}\n{cl.entity.country}",
                    None,
                    cl.entity.currency,
                    _hv(_at(cl.created)),
                    _hv(_at(cl.created + dt.timedelta(days=1))),
                )
            )
        for e in ENTITIES:
            clients.append(
                (
                    firm.internal_clients[e.key],
                    f"{e.name} (internal)",
                    1,
                    None,
                    None,
                    e.currency,
                    hv_epoch,
                    hv_epoch,
                )
            )
        self.count("harvest.clients", _insert(self.hv, "clients", clients))
        users = []
        for c in firm.consultants:
            active = c.release is None or c.release >= firm.as_of
            users.append(
                (
                    c.harvest_id,
                    c.first,
                    c.last,
                    c.email,
                    "",
                    "Etc/UTC",
                    0,
                    0,
                    1 if active else 0,
                    int(144000 * c.fte),
                    float(firm.cards.standard[(c.entity.key, c.role.name, firm.as_of.year)]),
                    float(c.cost_rate),
                    orjson.dumps([c.role.name, PRACTICES[c.practice_idx]]).decode(),
                    orjson.dumps(
                        ["administrator"]
                        if c.idx == 0
                        else ["manager"]
                        if c.role.target < 0.7
                        else ["member"]
                    ).decode(),
                    None,
                    _hv(_at(min(c.hire, firm.start))),
                    _hv(_at(c.release if c.release and not active else min(c.hire, firm.start))),
                )
            )
        self.count("harvest.users", _insert(self.hv, "users", users))
        self.count(
            "harvest.tasks",
            _insert(
                self.hv,
                "tasks",
                [
                    (
                        TASK_ID[name],
                        name,
                        1 if billable else 0,
                        None,
                        1 if client else 0,
                        1,
                        hv_epoch,
                        hv_epoch,
                    )
                    for name, billable, client, _internal in TASKS
                ],
            ),
        )
        self.count(
            "harvest.expense_categories",
            _insert(
                self.hv,
                "expense_categories",
                [
                    (9_000_001 + i, name, unit, price, 1, hv_epoch, hv_epoch)
                    for i, (name, unit, price) in enumerate(EXPENSE_CATEGORIES)
                ],
            ),
        )
        existing = {p.code for p in firm.projects}
        for p in self.unmapped:
            variant = _code_variant(p.code, rng, existing)
            p.harvest_code = variant
            self.truth.add(
                "project_code_unmapped", ref("harvest", "project", p.harvest_id), p.code, variant
            )
        projects: list[tuple[Any, ...]] = []
        tasks: list[tuple[Any, ...]] = []
        for p in firm.projects:
            fixed = p.model in ("FF", "MS")
            created = _at(p.created, 11)
            updated = (
                self.before_as_of(_at(p.end + dt.timedelta(days=3)))
                if not p.harvest_active
                else created
            )
            projects.append(
                (
                    p.harvest_id,
                    p.client.harvest_id,
                    p.name,
                    p.harvest_code,
                    1 if p.harvest_active else 0,
                    1,
                    1 if fixed else 0,
                    "none" if fixed else "People",
                    None,
                    float(p.budget_hours),
                    "project",
                    0,
                    0,
                    80.0,
                    0,
                    None,
                    0,
                    float(p.contract) if fixed else None,
                    f"Billing: {BILLING_LABELS[p.model]}",
                    p.start.isoformat(),
                    p.end.isoformat(),
                    _hv(created),
                    _hv(updated),
                )
            )
            for name, billable, client, _internal in TASKS:
                if client:
                    tasks.append(
                        (
                            task_assignment_id(p.harvest_id, name),
                            p.harvest_id,
                            TASK_ID[name],
                            1,
                            1 if billable else 0,
                            None,
                            None,
                            _hv(created),
                            _hv(created),
                        )
                    )
        for (_entity_key, kind), ip in firm.internal.items():
            projects.append(
                (
                    ip.harvest_id,
                    ip.client_harvest_id,
                    ip.name,
                    ip.code,
                    1,
                    0,
                    0,
                    "none",
                    None,
                    None,
                    "none",
                    0,
                    0,
                    80.0,
                    0,
                    None,
                    0,
                    None,
                    None,
                    None,
                    None,
                    hv_epoch,
                    hv_epoch,
                )
            )
            for name, _billable, _client, internal in TASKS:
                if internal and (name == "Paid Time Off") == (kind == "PTO"):
                    tasks.append(
                        (
                            task_assignment_id(ip.harvest_id, name),
                            ip.harvest_id,
                            TASK_ID[name],
                            1,
                            0,
                            None,
                            None,
                            hv_epoch,
                            hv_epoch,
                        )
                    )
        self.count("harvest.projects", _insert(self.hv, "projects", projects))
        self.count("harvest.task_assignments", _insert(self.hv, "task_assignments", tasks))
        by_harvest = {p.harvest_id: p for p in firm.projects}
        assignments: list[tuple[Any, ...]] = []
        for (person_idx, project_hid), ua_id in self.user_assignment.items():
            person = firm.consultants[person_idx]
            project = by_harvest.get(project_hid)
            if project is None:
                assignments.append(
                    (ua_id, project_hid, person.harvest_id, 1, 0, 1, None, None, hv_epoch, hv_epoch)
                )
                continue
            rate = firm.cards.rate(project.client, person.role, min(project.end, firm.as_of).year)
            stamp = _hv(_at(project.created, 12))
            assignments.append(
                (
                    ua_id,
                    project_hid,
                    person.harvest_id,
                    1 if project.harvest_active else 0,
                    1 if project.manager is person else 0,
                    0,
                    float(rate),
                    None,
                    stamp,
                    stamp,
                )
            )
        self.count("harvest.user_assignments", _insert(self.hv, "user_assignments", assignments))

    # ---- HubSpot ---------------------------------------------------------------------------------

    def hubspot(self, invoices: list[Invoice]) -> None:
        firm, rng = self.firm, self.rng
        epoch = _at(firm.start - dt.timedelta(days=400))
        objects: list[tuple[Any, ...]] = []
        assoc: list[tuple[Any, ...]] = []

        def obj(
            kind: str, oid: int, props: dict[str, Any], created: dt.datetime, updated: dt.datetime
        ) -> None:
            modified_key = "lastmodifieddate" if kind == "contacts" else "hs_lastmodifieddate"
            props = {k: (None if v is None else str(v)) for k, v in props.items()}
            props.update(
                {"hs_object_id": str(oid), "createdate": _hs(created), modified_key: _hs(updated)}
            )
            objects.append(
                (kind, oid, orjson.dumps(props).decode(), _hs(created), _hs(updated), 0, None)
            )

        def link(a: str, aid: int, b: str, bid: int, type_id: int) -> None:
            # one stored direction; the emulator derives the reverse (e.g. 279 <-> 280) on read
            assoc.append((a, aid, b, bid, type_id, "HUBSPOT_DEFINED"))

        owners = []
        for o in firm.owners:
            assert o.owner_id is not None
            owners.append(
                (
                    o.owner_id,
                    o.email,
                    o.first,
                    o.last,
                    90_000_000 + o.idx,
                    "PERSON",
                    "[]",
                    0,
                    _hs(epoch),
                    _hs(epoch),
                )
            )
        self.count("hubspot.owners", _insert(self.hs, "owners", owners))
        _insert(
            self.hs,
            "pipelines",
            [("deals", "default", "Sales Pipeline", 0, 0, _hs(epoch), _hs(epoch))],
        )
        _insert(
            self.hs,
            "pipeline_stages",
            [
                (
                    "default",
                    sid,
                    label,
                    n,
                    orjson.dumps(
                        {"probability": prob, "isClosed": "true" if closed else "false"}
                    ).decode(),
                    0,
                    _hs(epoch),
                    _hs(epoch),
                )
                for n, (sid, label, prob, closed) in enumerate(DEAL_STAGES)
            ],
        )
        _insert(self.hs, "properties", _property_rows(_hs(epoch)))
        _insert(
            self.hs,
            "object_schemas",
            [
                (
                    "2-9001",
                    "erp_invoices",
                    "p_erp_invoices",
                    orjson.dumps({"singular": "ERP invoice", "plural": "ERP invoices"}).decode(),
                    "invoice_number",
                    _hs(epoch),
                    _hs(epoch),
                )
            ],
        )

        # companies, with customer-master drift and CRM duplicates
        terms = {i: name for i, (name, _d) in enumerate(TERMS)}
        drift = _pick(rng, [c for c in firm.clients], self.rates["customer_master_drift"])
        drift_field = {
            c.idx: rng.choice(("legal_name", "country", "billing_currency", "payment_terms"))
            for c in drift
        }
        # build_firm numbers every owner, so this keeps them all (as build_firm's own list does)
        owner_ids = [o.owner_id for o in firm.owners if o.owner_id is not None]
        for cl in firm.clients:
            erp = {
                "legal_name": cl.legal_name,
                "country": cl.entity.country,
                "billing_currency": cl.entity.currency,
                "payment_terms": terms[cl.terms_idx],
            }
            crm = dict(erp)
            field = drift_field.get(cl.idx)
            if field is not None:
                crm[field] = _drifted(field, crm[field], rng)
                self.truth.add(
                    "customer_master_drift",
                    ref("hubspot", "company", cl.hubspot_id, field),
                    erp[field],
                    crm[field],
                )
            created = _at(cl.created, 10)
            updated = _at(firm.start + dt.timedelta(days=rng.randint(0, 60)), 10)
            obj(
                "companies",
                cl.hubspot_id,
                {
                    "name": cl.name,
                    "domain": cl.domain,
                    "industry": cl.industry,
                    "hubspot_owner_id": rng.choice(owner_ids),
                    "lifecyclestage": "customer",
                    "netsuite_customer_id": cl.netsuite_id if cl.crm_has_erp_id else None,
                    **crm,
                },
                created,
                updated,
            )
        next_company = 2_000_000_001 + len(firm.clients) + 100
        for cl in self.crm_duplicates:
            created = _at(firm.as_of - dt.timedelta(days=rng.randint(5, 150)), 14)
            obj(
                "companies",
                next_company,
                {
                    "name": cl.name.upper(),
                    "domain": cl.domain,
                    "industry": cl.industry,
                    "hubspot_owner_id": rng.choice(owner_ids),
                    "lifecyclestage": "lead",
                },
                created,
                created,
            )
            self.truth.add(
                "duplicate_customer",
                ref("hubspot", "company", next_company),
                ref("hubspot", "company", cl.hubspot_id),
                cl.name.upper(),
            )
            next_company += 1

        # contacts
        contact_id = 1_000_000_001
        for cl in firm.clients:
            for _ in range(rng.randint(2, 4)):
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                created = _at(cl.created + dt.timedelta(days=rng.randint(0, 300)), 15)
                obj(
                    "contacts",
                    contact_id,
                    {
                        "firstname": first,
                        "lastname": last,
                        "email": f"{first}.{last}.{contact_id % 100_000}@{cl.domain}".lower(),
                        "jobtitle": rng.choice(
                            ("CFO", "COO", "Head of IT", "VP Operations", "Procurement Lead", "CEO")
                        ),
                        "phone": f"+1 555 {contact_id % 10_000:04d}",
                    },
                    created,
                    created,
                )
                link("contacts", contact_id, "companies", cl.hubspot_id, 279)
                contact_id += 1

        # deals, with contract-value mismatches and won deals that never got a project
        with_project = {p.deal.hubspot_id: p for p in firm.projects}
        mismatched = _pick(
            rng,
            [d for d in firm.deals if d.hubspot_id in with_project],
            self.rates["contract_value_mismatch"],
        )
        mismatch_ids = {d.hubspot_id for d in mismatched}
        won = [d for d in firm.deals if d.stage == "closedwon"]
        orphan_count = max(MIN_PER_TYPE, round(len(won) * self.rates["deal_won_without_project"]))
        if self.rates["deal_won_without_project"] <= 0:
            orphan_count = 0
        next_deal = max(d.hubspot_id for d in firm.deals) + 1
        first_orphan = next_deal
        orphans: list[Deal] = []
        for _ in range(orphan_count):
            client = rng.choice(firm.clients)
            close = firm.as_of - dt.timedelta(days=rng.randint(DEAL_GRACE_DAYS + 1, 200))
            orphans.append(
                Deal(
                    next_deal,
                    client,
                    f"{client.name} - follow-on work",
                    Decimal(rng.randint(30, 400) * 1000),
                    "closedwon",
                    close - dt.timedelta(days=rng.randint(20, 90)),
                    close,
                    rng.choice(owner_ids),
                )
            )
            next_deal += 1
        for d in firm.deals + orphans:
            project = with_project.get(d.hubspot_id)
            amount = d.amount
            if d.hubspot_id in mismatch_ids:
                factor = rng.choice(
                    (Decimal("0.8"), Decimal("0.9"), Decimal("1.1"), Decimal("1.25"))
                )
                amount = (d.amount * factor / 1000).quantize(Decimal(1)) * 1000
                if amount == d.amount:
                    amount += 5000
                self.truth.add(
                    "contract_value_mismatch",
                    ref("hubspot", "deal", d.hubspot_id),
                    f"{d.amount:.2f}",
                    f"{amount:.2f}",
                )
            if d.hubspot_id >= first_orphan:
                self.truth.add(
                    "deal_won_without_project",
                    ref("hubspot", "deal", d.hubspot_id),
                    "project",
                    None,
                )
            closed = d.stage in ("closedwon", "closedlost")
            updated = _at(
                min(d.closedate if closed else d.created, firm.as_of - dt.timedelta(days=1)), 16
            )
            code = None
            if project is not None and rng.random() < 0.7:
                code = project.code
                updated = max(updated, _at(project.created, 18))
            obj(
                "deals",
                d.hubspot_id,
                {
                    "dealname": d.name,
                    "amount": f"{amount:.2f}".rstrip("0").rstrip("."),
                    "closedate": _hs_day(d.closedate, 0),
                    "dealstage": d.stage,
                    "pipeline": "default",
                    "hubspot_owner_id": d.owner_id,
                    "deal_currency_code": d.client.entity.currency,
                    "hs_is_closed_won": "true" if d.stage == "closedwon" else "false",
                    "erp_project_code": code,
                },
                _at(d.created, 10),
                updated,
            )
            link("deals", d.hubspot_id, "companies", d.client.hubspot_id, 341)

        # ERP invoices as the CRM holds them (kept in step nightly), some drifted
        drifted = {inv.id for inv in _pick(rng, invoices, self.rates["invoice_status_drift"])}
        inv_id = 4_000_000_001
        last_moment = dt.datetime.combine(firm.as_of, dt.time()) - dt.timedelta(minutes=5)
        for inv in invoices:
            status, paid, due = inv.crm_status, inv.paid, inv.remaining
            if inv.id in drifted:
                if inv.paid > 0:
                    status, paid, due = "open", Decimal(0), inv.total
                else:
                    status, paid, due = "paid", inv.total, Decimal(0)
                self.truth.add(
                    "invoice_status_drift",
                    ref("netsuite", "invoice", inv.id),
                    f"{inv.crm_status} {inv.paid:.2f}",
                    f"{status} {paid:.2f}",
                )
            assert inv.modified is not None
            created = min(_at(inv.date + dt.timedelta(days=1), 3), last_moment)
            updated = min(inv.modified + dt.timedelta(days=1), last_moment)
            updated = max(updated, created)
            terms_days = TERMS[inv.project.client.terms_idx][1]
            obj(
                "erp_invoices",
                inv_id,
                {
                    "netsuite_invoice_id": inv.id,
                    "invoice_number": inv.tranid,
                    "invoice_status": status,
                    "invoice_amount": f"{inv.total:.2f}",
                    "amount_paid": f"{paid:.2f}",
                    "amount_due": f"{due:.2f}",
                    "currency": inv.project.client.entity.currency,
                    "invoice_date": inv.date.isoformat(),
                    "due_date": (inv.date + dt.timedelta(days=terms_days)).isoformat(),
                },
                created,
                updated,
            )
            link("erp_invoices", inv_id, "companies", inv.project.client.hubspot_id, 9101)
            link("erp_invoices", inv_id, "deals", inv.project.deal.hubspot_id, 9102)
            inv_id += 1
        n = _insert(self.hs, "objects", objects)
        self.count("hubspot.objects", n)
        for kind in ("companies", "contacts", "deals", "erp_invoices"):
            self.counts[f"hubspot.{kind}"] = sum(1 for o in objects if o[0] == kind)
        self.count("hubspot.associations", _insert(self.hs, "associations", assoc))


def _name_variant(legal_name: str, rng: random.Random) -> str:
    """A second spelling of a legal name that normalises to the same name."""
    words = legal_name.split()
    base, suffix = " ".join(words[:-1]), words[-1]
    return rng.choice(
        (
            f"{base.upper()} {suffix}",
            f"{base}, {suffix}",
            f"{base} {suffix.upper()}",
            f"{base.lower()} {suffix}",
        )
    )


def _code_variant(code: str, rng: random.Random, existing: set[str]) -> str:
    """A project code as a person mistypes it, matching no ERP project."""
    digits = code.split("-")[1]
    for candidate in (code.replace("-", ""), f"{code}-A", f"PRJ {digits}", f"PRJ-{digits}0"):
        if candidate not in existing and rng.random() < 0.7:
            existing.add(candidate)
            return candidate
    candidate = f"{code}-X"
    existing.add(candidate)
    return candidate


def _drifted(field: str, value: str, rng: random.Random) -> str:
    if field == "legal_name":
        return rng.choice(
            (
                value.replace(" ", "  ", 1) + " (old)",
                value.split()[0] + " Group",
                value + " Holdings",
            )
        )
    if field == "country":
        return rng.choice([c for c in ("US", "GB", "DE", "CA", "FR", "NL") if c != value])
    if field == "billing_currency":
        return rng.choice([c for c in ("USD", "GBP", "EUR", "CAD") if c != value])
    return rng.choice([t for t, _d in TERMS if t != value])


def _property_rows(stamp: str) -> list[tuple[Any, ...]]:
    """HubSpot property definitions: the standard ones pslake reads plus its custom ones."""

    def p(
        obj: str,
        name: str,
        label: str,
        kind: str,
        field: str,
        group: str,
        options: list[str] | None = None,
        unique: bool = False,
        hubspot: bool = True,
        description: str = "",
    ) -> tuple[Any, ...]:
        opts = [
            {"label": o, "value": o, "displayOrder": i, "hidden": False}
            for i, o in enumerate(options or [])
        ]
        return (
            obj,
            name,
            label,
            kind,
            field,
            group,
            description,
            orjson.dumps(opts).decode(),
            1 if unique else 0,
            1 if hubspot else 0,
            0,
            0,
            -1,
            0,
            stamp,
            stamp,
        )

    currencies = ["USD", "GBP", "EUR", "CAD"]
    terms = [t for t, _d in TERMS]
    rows = []
    for obj in ("companies", "contacts", "deals", "erp_invoices"):
        modified = "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"
        rows += [
            p(obj, "hs_object_id", "Record ID", "number", "number", "info"),
            p(obj, "createdate", "Create date", "datetime", "date", "info"),
            p(obj, modified, "Last modified date", "datetime", "date", "info"),
        ]
    rows += [
        p("companies", "name", "Company name", "string", "text", "companyinformation"),
        p("companies", "domain", "Company domain name", "string", "text", "companyinformation"),
        p("companies", "industry", "Industry", "string", "text", "companyinformation"),
        p("companies", "country", "Country/Region", "string", "text", "companyinformation"),
        p(
            "companies",
            "hubspot_owner_id",
            "Company owner",
            "enumeration",
            "select",
            "companyinformation",
        ),
        p(
            "companies",
            "lifecyclestage",
            "Lifecycle stage",
            "enumeration",
            "radio",
            "companyinformation",
            ["lead", "opportunity", "customer", "other"],
        ),
        p(
            "companies",
            "legal_name",
            "Legal name",
            "string",
            "text",
            "erp",
            hubspot=False,
            description=CRM_OWNED_NOTE,
        ),
        p(
            "companies",
            "billing_currency",
            "Billing currency",
            "enumeration",
            "select",
            "erp",
            currencies,
            hubspot=False,
        ),
        p(
            "companies",
            "payment_terms",
            "Payment terms",
            "enumeration",
            "select",
            "erp",
            terms,
            hubspot=False,
        ),
        p(
            "companies",
            "netsuite_customer_id",
            "NetSuite customer id",
            "string",
            "text",
            "erp",
            hubspot=False,
        ),
        p("contacts", "firstname", "First name", "string", "text", "contactinformation"),
        p("contacts", "lastname", "Last name", "string", "text", "contactinformation"),
        p("contacts", "email", "Email", "string", "text", "contactinformation"),
        p("contacts", "jobtitle", "Job title", "string", "text", "contactinformation"),
        p("contacts", "phone", "Phone number", "string", "text", "contactinformation"),
        p("deals", "dealname", "Deal name", "string", "text", "dealinformation"),
        p("deals", "amount", "Amount", "number", "number", "dealinformation"),
        p("deals", "closedate", "Close date", "datetime", "date", "dealinformation"),
        p(
            "deals",
            "dealstage",
            "Deal stage",
            "enumeration",
            "radio",
            "dealinformation",
            [s[0] for s in DEAL_STAGES],
        ),
        p("deals", "pipeline", "Pipeline", "enumeration", "select", "dealinformation", ["default"]),
        p("deals", "hubspot_owner_id", "Deal owner", "enumeration", "select", "dealinformation"),
        p(
            "deals",
            "deal_currency_code",
            "Currency",
            "enumeration",
            "select",
            "dealinformation",
            currencies,
        ),
        p(
            "deals",
            "hs_is_closed_won",
            "Is closed won",
            "bool",
            "booleancheckbox",
            "dealinformation",
            ["true", "false"],
        ),
        p("deals", "erp_project_code", "ERP project code", "string", "text", "erp", hubspot=False),
        p(
            "erp_invoices",
            "netsuite_invoice_id",
            "NetSuite invoice id",
            "string",
            "text",
            "erp",
            unique=True,
            hubspot=False,
        ),
        p(
            "erp_invoices",
            "invoice_number",
            "Invoice number",
            "string",
            "text",
            "erp",
            hubspot=False,
        ),
        p(
            "erp_invoices",
            "invoice_status",
            "Invoice status",
            "enumeration",
            "select",
            "erp",
            ["open", "partially_paid", "paid"],
            hubspot=False,
        ),
        p(
            "erp_invoices",
            "invoice_amount",
            "Invoice amount",
            "number",
            "number",
            "erp",
            hubspot=False,
        ),
        p("erp_invoices", "amount_paid", "Amount paid", "number", "number", "erp", hubspot=False),
        p("erp_invoices", "amount_due", "Amount due", "number", "number", "erp", hubspot=False),
        p(
            "erp_invoices",
            "currency",
            "Currency",
            "enumeration",
            "select",
            "erp",
            currencies,
            hubspot=False,
        ),
        p("erp_invoices", "invoice_date", "Invoice date", "date", "date", "erp", hubspot=False),
        p("erp_invoices", "due_date", "Due date", "date", "date", "erp", hubspot=False),
    ]
    return rows


def resolve_as_of(value: str | None) -> dt.date:
    """The firm's as-of date: ``YYYY-MM-DD``, or today (UTC) when omitted or ``today``."""
    if value in (None, "", "today"):
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"--as-of must be YYYY-MM-DD or 'today', got {value!r}") from None


def generate(
    store_dir: Path,
    size: str = "medium",
    seed: int = DEFAULT_SEED,
    as_of: dt.date | None = None,
    rates: dict[str, float] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Generate a firm into ``store_dir`` and return what ``firm.json`` records.

    Args:
        store_dir: Where the store goes; an existing store there is replaced at the end.
        size: ``small``, ``medium`` or ``enterprise``.
        seed: The same seed (and as-of date) gives the same firm.
        as_of: The firm's "today": time runs up to the day before. Default: today (UTC).
        rates: Discrepancy rates per type (defaults: ``DEFAULT_RATES``).
        progress: Called as ``progress(step, done, total)``.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    as_of = as_of or resolve_as_of(None)
    if as_of > dt.datetime.now(dt.UTC).date():
        raise ValueError(f"--as-of {as_of} is in the future: generated records must predate now")
    rates = {**DEFAULT_RATES, **(rates or {})}
    consultants_n, months = SIZES[size]
    say = progress or (lambda step, done, total: None)
    started = time.monotonic()
    store_dir.mkdir(parents=True, exist_ok=True)
    work = store_dir / ".generating"
    shutil.rmtree(work, ignore_errors=True)
    create_schema(work)
    credentials = firm_info.new_credentials(seed)

    say("reference data", None, None)
    firm = build_firm(size, seed, as_of, consultants_n, months)
    truth = GroundTruth(work / GROUND_TRUTH_FILE)
    writer = _Writer(firm, work, rates, truth, credentials)
    try:
        ids = writer.plan_ids()
        writer.plan_discrepancies()
        writer.netsuite_reference()
        erp_dups = writer.netsuite_customers_and_jobs()
        billing = stream_time(
            firm,
            writer.hv,
            writer.ns,
            ids,
            truth,
            rates,
            writer.visits,
            {p.idx for p in writer.unmapped},
            lambda done, total: say("time entries", done, total),
        )
        writer.counts.update(
            {
                f"harvest.{k}" if k != "timebill" else "netsuite.timebill": v
                for k, v in billing.counts.items()
            }
        )
        say("invoices and payments", None, None)
        invoices = build_invoices(firm, billing)
        department_of = {c.netsuite_id: c.practice_idx + 1 for c in firm.consultants}
        writer.counts.update(
            {
                f"netsuite.{k}": v
                for k, v in write_billing(
                    firm,
                    billing,
                    invoices,
                    writer.ns,
                    writer.subsidiary_ids,
                    writer.currency_ids,
                    writer.period_ids,
                    department_of,
                ).items()
            }
        )
        writer.harvest_reference()
        say("CRM", None, None)
        writer.hubspot(invoices)
        writer.counts["netsuite.customer_duplicates"] = len(erp_dups)
    finally:
        writer.close()
        truth.close()
    say("indexes", None, None)
    create_indexes(work)
    info: dict[str, Any] = {
        "size": size,
        "seed": seed,
        "as_of": as_of.isoformat(),
        "months": months,
        "start": firm.start.isoformat(),
        "consultants": consultants_n,
        "reporting_currency": REPORTING_CURRENCY,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
        "rules": {
            "posting_grace_days": POSTING_GRACE_DAYS,
            "deal_grace_days": DEAL_GRACE_DAYS,
            "period_closes_days_after_month_end": CLOSE_DAYS_AFTER_MONTH_END,
            "tm_invoice_days_after_month_end": INVOICE_DAYS_AFTER_MONTH_END,
            "contract_value_tolerance": 0.005,  # share of the ERP's contract value
        },
        "rates": rates,
        "counts": dict(sorted(writer.counts.items())),
        "discrepancies": dict(truth.counts),
        "credentials": credentials,
    }
    firm_info.save(work, info)
    # move into place: vendor files, firm.json, manifest; drop a stale endpoints.json
    for vendor in VENDORS:
        for suffix in ("", "-wal", "-shm"):
            target = Path(f"{db_path(store_dir, vendor)}{suffix}")
            target.unlink(missing_ok=True)
        db_path(work, vendor).replace(db_path(store_dir, vendor))
    (work / GROUND_TRUTH_FILE).replace(store_dir / GROUND_TRUTH_FILE)
    (work / FIRM_FILE).replace(store_dir / FIRM_FILE)
    (store_dir / ENDPOINTS_FILE).unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    info["seconds"] = round(time.monotonic() - started, 1)
    firm_info.save(store_dir, info)
    return info
