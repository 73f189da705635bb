"""Invoices, credit notes and payments in NetSuite, from the streamed time and each billing model.

Time and materials projects are invoiced monthly from the ERP's posted billable time (one line
per person and rate) plus one line per billable expense; fixed-fee projects in monthly
instalments; milestone projects at three milestones (30/40/30%); retainers monthly in advance.
Amounts are exact: hours are whole quarter hours, rates whole currency units, rounding once per
line to cents (half up). Payments follow each client's paying habit; some invoices are paid in
two parts, some are partly credited, some are still open.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from dataclasses import dataclass, field
from decimal import Decimal

from sandbox.firm.catalog import TERMS
from sandbox.firm.model import Firm, Project, add_months, key_to_month, money, month_key
from sandbox.firm.timeflow import EXPENSE_ITEM, SERVICE_ITEM, Billing

FIXED_FEE_ITEM = 3
MILESTONE_ITEM = 4
RETAINER_ITEM = 5


@dataclass
class Invoice:
    """One NetSuite invoice and what happened to it."""

    id: int
    project: Project
    date: dt.date
    memo: str
    lines: list[tuple[int, Decimal, Decimal, Decimal, int | None, int | None]]
    # (item, quantity, rate, amount, employee netsuite id, harvest expense id)
    total: Decimal = Decimal(0)
    paid: Decimal = Decimal(0)
    tranid: str = ""
    modified: dt.datetime | None = None
    applications: list[tuple[int, str, dt.date, Decimal]] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        """What is still owed."""
        return self.total - self.paid

    @property
    def status(self) -> str:
        """NetSuite status code: A open, B paid in full."""
        return "B" if self.remaining == 0 else "A"

    @property
    def crm_status(self) -> str:
        """The invoice status as the CRM records it."""
        if self.remaining == 0:
            return "paid"
        return "partially_paid" if self.paid > 0 else "open"


def _weekday_on_or_after(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _schedule(project: Project) -> list[tuple[dt.date, Decimal, str, int]]:
    """Non-T&M invoice schedule: (date, amount, memo, item)."""
    out: list[tuple[dt.date, Decimal, str, int]] = []
    if project.model == "FF":
        n = max(2, round((project.end - project.start).days / 30))
        share = money(project.contract / n)
        for k in range(n):
            amount = project.contract - share * (n - 1) if k == n - 1 else share
            day = _weekday_on_or_after(project.start + dt.timedelta(days=7 + 30 * k))
            out.append((day, amount, f"Fixed fee instalment {k + 1} of {n}", FIXED_FEE_ITEM))
    elif project.model == "MS":
        span = (project.end - project.start).days
        shares = (Decimal("0.3"), Decimal("0.4"))
        first, second = money(project.contract * shares[0]), money(project.contract * shares[1])
        amounts = (first, second, project.contract - first - second)
        for k, amount in enumerate(amounts):
            day = _weekday_on_or_after(project.start + dt.timedelta(days=span * (k + 1) // 3 + 3))
            out.append((day, amount, f"Milestone {k + 1} of 3", MILESTONE_ITEM))
    elif project.model == "RT":
        month = project.start.replace(day=1)
        if month < project.start:
            month = add_months(month, 1)
        while month <= project.end:
            out.append(
                (
                    _weekday_on_or_after(month),
                    project.monthly_fee,
                    f"Retainer {month:%Y-%m}",
                    RETAINER_ITEM,
                )
            )
            month = add_months(month, 1)
    return out


def build_invoices(firm: Firm, billing: Billing) -> list[Invoice]:
    """All invoices dated before the firm's as-of date, ids in the ERP's order."""
    invoices: list[Invoice] = []
    work_month = {invoice_id: mk for (_p, mk), invoice_id in billing.invoices.items()}
    for invoice_id, day in billing.invoice_dates.items():
        project = firm.projects[billing.invoice_project[invoice_id]]
        lines: list[tuple[int, Decimal, Decimal, Decimal, int | None, int | None]] = []
        for (person_idx, rate), quarters in sorted(billing.time_lines[invoice_id].items()):
            hours = Decimal(quarters) / 4
            lines.append(
                (
                    SERVICE_ITEM,
                    hours,
                    Decimal(rate),
                    money(hours * rate),
                    firm.consultants[person_idx].netsuite_id,
                    None,
                )
            )
        for expense_id, cents, person_idx, _category in billing.expense_lines.get(invoice_id, []):
            amount = Decimal(cents) / 100
            lines.append(
                (
                    EXPENSE_ITEM,
                    Decimal(1),
                    amount,
                    amount,
                    firm.consultants[person_idx].netsuite_id,
                    expense_id,
                )
            )
        memo = f"Services {key_to_month(work_month[invoice_id]):%Y-%m}"
        invoices.append(Invoice(invoice_id, project, day, memo, lines))
    next_id = billing.next_transaction_id
    for project in firm.projects:
        for day, amount, memo, item in _schedule(project):
            if day >= firm.as_of:
                continue
            invoices.append(
                Invoice(
                    next_id, project, day, memo, [(item, Decimal(1), amount, amount, None, None)]
                )
            )
            next_id += 1
    billing.next_transaction_id = next_id
    invoices = [inv for inv in invoices if inv.lines]
    for inv in invoices:
        inv.total = sum((line[3] for line in inv.lines), Decimal(0))
    invoices.sort(key=lambda inv: (inv.date, inv.id))
    for seq, inv in enumerate(invoices, start=1):
        inv.tranid = f"INV{seq:07d}"
    return invoices


def _mainline(key: int, doc: int, entity: int, amount: Decimal, memo: str | None, sub: int,
              stamp: str) -> tuple[object, ...]:
    """The header line (``mainline = 'T'``) NetSuite keeps for every transaction."""
    total = float(amount)
    return (key, doc, 0, 0, "T", "F", entity, None, None, None, total, total, memo, "F", sub,
            None, None, None, stamp)


def write_billing(
    firm: Firm,
    billing: Billing,
    invoices: list[Invoice],
    con: sqlite3.Connection,
    subsidiary_ids: dict[str, int],
    currency_ids: dict[str, int],
    period_ids: dict[int, int],
    department_of: dict[int, int],
) -> dict[str, int]:
    """Write invoices, credit notes, payments and their links; settle each invoice."""
    rng = random.Random(firm.seed * 104_729 + 3)
    as_of = firm.as_of
    next_id = billing.next_transaction_id
    headers: list[tuple[object, ...]] = []
    lines: list[tuple[object, ...]] = []
    links: list[tuple[object, ...]] = []
    key = 1
    pay_seq = credit_seq = 0
    for inv in invoices:
        client = inv.project.client
        terms_days = TERMS[client.terms_idx][1]
        due = inv.date + dt.timedelta(days=terms_days)
        sub = subsidiary_ids[client.entity.key]
        cur = currency_ids[client.entity.currency]
        created = dt.datetime.combine(inv.date, dt.time(9, 0))
        modified = created
        settlements: list[tuple[str, dt.date, Decimal]] = []
        if rng.random() < 0.02:
            credit = money(inv.total * Decimal("0.1"))
            settlements.append(
                ("CustCred", inv.date + dt.timedelta(days=rng.randint(10, 40)), credit)
            )
        owed = inv.total - sum((s[2] for s in settlements), Decimal(0))
        low, high = ((-10, 5), (5, 45), (40, 120))[client.pay_profile]
        pay_day = due + dt.timedelta(days=rng.randint(low, high))
        if rng.random() < 0.05 and owed > 1:
            part = money(owed / 2)
            settlements.append(("CustPymt", pay_day, part))
            settlements.append(
                ("CustPymt", pay_day + dt.timedelta(days=rng.randint(15, 45)), owed - part)
            )
        else:
            settlements.append(("CustPymt", pay_day, owed))
        for kind, day, amount in settlements:
            day = max(day, inv.date + dt.timedelta(days=1))
            if day >= as_of or amount <= 0:
                continue
            doc_id = next_id
            next_id += 1
            if kind == "CustPymt":
                pay_seq += 1
                tranid = f"PYMT{pay_seq:07d}"
                status, linktype = "C", "Payment"
            else:
                credit_seq += 1
                tranid = f"CM{credit_seq:07d}"
                status, linktype = "B", "Credit Memo"
            stamp = f"{day.isoformat()} 10:00:00"
            headers.append(
                (
                    doc_id,
                    tranid,
                    tranid,
                    kind,
                    day.isoformat(),
                    None,
                    client.netsuite_id,
                    inv.project.netsuite_id,
                    sub,
                    cur,
                    1.0,
                    status,
                    period_ids.get(month_key(day)),
                    float(amount),
                    None,
                    None,
                    None,
                    f"{linktype} for {inv.tranid}",
                    None,
                    "F",
                    None,
                    stamp,
                    stamp,
                )
            )
            lines.append(_mainline(key, doc_id, client.netsuite_id, amount, None, sub, stamp))
            key += 1
            links.append(
                (inv.id, doc_id, linktype, float(amount), float(amount), day.isoformat(), stamp)
            )
            inv.paid += amount
            inv.applications.append((doc_id, kind, day, amount))
            modified = max(modified, dt.datetime.combine(day, dt.time(10, 0)))
        inv.modified = modified
        stamp = modified.strftime("%Y-%m-%d %H:%M:%S")
        headers.append(
            (
                inv.id,
                inv.tranid,
                inv.tranid,
                "CustInvc",
                inv.date.isoformat(),
                due.isoformat(),
                client.netsuite_id,
                inv.project.netsuite_id,
                sub,
                cur,
                1.0,
                inv.status,
                period_ids.get(month_key(inv.date)),
                float(inv.total),
                float(inv.paid),
                float(inv.remaining),
                client.terms_idx + 1,
                inv.memo,
                inv.applications[-1][2].isoformat() if inv.remaining == 0 else None,
                "F",
                None,
                created.strftime("%Y-%m-%d %H:%M:%S"),
                stamp,
            )
        )
        lines.append(_mainline(key, inv.id, client.netsuite_id, inv.total, inv.memo, sub, stamp))
        key += 1
        for seq, (item, qty, rate, amount, employee, expense_id) in enumerate(inv.lines, 1):
            lines.append(
                (
                    key,
                    inv.id,
                    seq,
                    seq,
                    "F",
                    "F",
                    inv.project.netsuite_id,
                    item,
                    float(qty),
                    float(rate),
                    float(amount),
                    float(amount),
                    None,
                    "T",
                    sub,
                    department_of.get(employee) if employee else None,
                    employee,
                    str(expense_id) if expense_id else None,
                    created.strftime("%Y-%m-%d %H:%M:%S"),
                )
            )
            key += 1
    con.execute("begin")
    con.executemany(f'insert into "transaction" values ({",".join("?" * 23)})', headers)
    con.executemany(f"insert into transactionline values ({','.join('?' * 19)})", lines)
    con.executemany(f"insert into previoustransactionlink values ({','.join('?' * 7)})", links)
    con.execute("commit")
    billing.next_transaction_id = next_id
    return {
        "invoices": len(invoices),
        "transactions": len(headers),
        "transaction_lines": len(lines),
        "payment_links": len(links),
    }
