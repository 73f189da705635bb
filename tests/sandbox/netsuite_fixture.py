"""A tiny NetSuite store for the emulator tests, written with plain SQL.

Two subsidiaries (USD parent, EUR child), five customers, six projects, ten employees, 2,500
time bills, ten invoices with two lines each and five payments applied to the first five.
Every timestamp lies in 2026 before the firm's as-of date, one minute apart per time bill, so
tests can reason about incremental windows.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import firm_info
from sandbox.store import connect, create_indexes, create_schema

TIMEBILLS = 2500
FIRST_TIMEBILL = 1001
CUSTOMERS = (101, 102, 103, 104, 105)
JOBS = (201, 202, 203, 204, 205, 206)
EMPLOYEES = tuple(range(301, 311))
INVOICES = tuple(range(5001, 5011))
PAYMENTS = tuple(range(5101, 5106))
BASE_STAMP = dt.datetime(2026, 1, 1, 8, 0, 0)


@dataclass(frozen=True)
class TinyNetSuite:
    """What the tiny store holds, for assertions."""

    store_dir: Path
    timebill_ids: tuple[int, ...]
    last_timebill_stamp: str


def timebill_stamp(index: int) -> str:
    """``lastmodifieddate`` of the index-th time bill (0-based): one minute apart."""
    return (BASE_STAMP + dt.timedelta(minutes=index, seconds=index % 60)).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


def _insert(con: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" * len(columns))
    con.executemany(
        f'insert into "{table}" ({names}) values ({marks})',
        [tuple(row[c] for c in columns) for row in rows],
    )


def build_store(store_dir: Path, timebills: int = TIMEBILLS) -> TinyNetSuite:
    """Create the schema and fill the NetSuite file of a store directory.

    Args:
        store_dir: An empty directory.
        timebills: How many time bills to write.
    """
    create_schema(store_dir)
    con = connect(store_dir, "netsuite")
    try:
        con.execute("begin")
        _fill(con, timebills)
        con.execute("commit")
    finally:
        con.close()
    create_indexes(store_dir)
    firm_info.save(
        store_dir,
        {
            "size": "tiny",
            "seed": 0,
            "as_of": "2026-11-16",
            "credentials": firm_info.new_credentials(),
        },
    )
    return TinyNetSuite(
        store_dir,
        tuple(range(FIRST_TIMEBILL, FIRST_TIMEBILL + timebills)),
        timebill_stamp(timebills - 1),
    )


def _fill(con: sqlite3.Connection, timebills: int) -> None:
    stamp = "2026-01-01 00:00:00"
    _insert(
        con,
        "currency",
        [
            {
                "id": 1,
                "symbol": "USD",
                "name": "US Dollar",
                "isbasecurrency": "T",
                "lastmodifieddate": stamp,
            },
            {
                "id": 2,
                "symbol": "EUR",
                "name": "Euro",
                "isbasecurrency": "F",
                "lastmodifieddate": stamp,
            },
        ],
    )
    _insert(
        con,
        "subsidiary",
        [
            {
                "id": 1,
                "name": "Parent Inc.",
                "fullname": "Parent Inc.",
                "legalname": "Parent Incorporated",
                "country": "US",
                "currency": 1,
                "parent": None,
                "lastmodifieddate": stamp,
            },
            {
                "id": 2,
                "name": "Europe GmbH",
                "fullname": "Parent Inc. : Europe GmbH",
                "legalname": None,
                "country": "DE",
                "currency": 2,
                "parent": 1,
                "lastmodifieddate": stamp,
            },
        ],
    )
    _insert(
        con,
        "currencyrate",
        [
            {
                "id": 1,
                "basecurrency": 1,
                "transactioncurrency": 2,
                "exchangerate": 1.08,
                "effectivedate": "2026-01-01",
                "lastmodifieddate": stamp,
            },
            {
                "id": 2,
                "basecurrency": 1,
                "transactioncurrency": 2,
                "exchangerate": 1.10,
                "effectivedate": "2026-06-01",
                "lastmodifieddate": stamp,
            },
        ],
    )
    periods = []
    for month in range(1, 12):
        start = dt.date(2026, month, 1)
        end = dt.date(2026, month + 1, 1) - dt.timedelta(days=1)
        closed = "T" if month <= 10 else "F"
        periods.append(
            {
                "id": month,
                "periodname": start.strftime("%b %Y"),
                "startdate": start.isoformat(),
                "enddate": end.isoformat(),
                "closed": closed,
                "closedondate": end.isoformat() if closed == "T" else None,
                "alllocked": closed,
                "arlocked": closed,
                "aplocked": closed,
                "isposting": "T",
                "isquarter": "F",
                "isyear": "F",
                "lastmodifieddate": stamp,
            }
        )
    _insert(con, "accountingperiod", periods)
    _insert(
        con,
        "term",
        [
            {"id": 1, "name": "Net 30", "daysuntilnetdue": 30, "lastmodifieddate": stamp},
            {"id": 2, "name": "Net 45", "daysuntilnetdue": 45, "lastmodifieddate": stamp},
        ],
    )
    _insert(
        con,
        "department",
        [
            {"id": 1, "name": "Consulting", "fullname": "Consulting", "lastmodifieddate": stamp},
            {"id": 2, "name": "Engineering", "fullname": "Engineering", "lastmodifieddate": stamp},
        ],
    )
    _insert(
        con,
        "item",
        [
            {
                "id": 1,
                "itemid": "CONSULTING",
                "displayname": "Consulting Hours",
                "itemtype": "Service",
                "lastmodifieddate": stamp,
            },
            {
                "id": 2,
                "itemid": "EXPENSES",
                "displayname": "Expenses",
                "itemtype": "OthCharge",
                "lastmodifieddate": stamp,
            },
        ],
    )
    _insert(
        con,
        "customer",
        [
            {
                "id": cid,
                "entityid": f"CUST-{cid}",
                "companyname": f"Customer {cid} Ltd",
                "email": None if cid == 103 else f"ap@customer{cid}.example",
                "parent": 101 if cid == 105 else None,
                "subsidiary": 1 + n % 2,
                "currency": 1 + n % 2,
                "terms": 1,
                "billcountry": "US" if n % 2 == 0 else "DE",
                "externalid": f"ext-c-{cid}",
                "custentity_hubspot_company_id": str(9000 + cid),
                "datecreated": "2026-01-02 09:00:00",
                "lastmodifieddate": f"2026-02-0{1 + n} 10:00:00",
            }
            for n, cid in enumerate(CUSTOMERS)
        ],
    )
    _insert(
        con,
        "entitystatus",
        [
            {"id": 1, "name": "In Progress", "category": "project"},
            {"id": 2, "name": "Closed", "category": "project"},
        ],
    )
    _insert(
        con,
        "job",
        [
            {
                "id": jid,
                "entityid": f"PRJ-{jid}",
                "companyname": f"Project {jid}",
                "customer": CUSTOMERS[n % len(CUSTOMERS)],
                "parent": CUSTOMERS[n % len(CUSTOMERS)],
                "subsidiary": 1 + n % 2,
                "entitystatus": 2 if jid == 206 else 1,
                "projectmanager": EMPLOYEES[n],
                "startdate": "2026-01-05",
                "enddate": None,
                "projectedenddate": "2026-12-31",
                "jobbillingtype": ("TM", "FF", "MS", "RT")[n % 4],
                "estimatedrevenue": 10000.0 * (n + 1),
                "estimatedcost": 6000.0 * (n + 1),
                "estimatedlaborhours": 100.0 * (n + 1),
                "currency": 1 + n % 2,
                "custentity_hubspot_deal_id": str(7000 + jid),
                "externalid": f"ext-j-{jid}",
                "datecreated": "2026-01-03 09:00:00",
                "lastmodifieddate": f"2026-03-0{1 + n} 11:30:00",
            }
            for n, jid in enumerate(JOBS)
        ],
    )
    _insert(
        con,
        "employee",
        [
            {
                "id": eid,
                "entityid": f"EMP-{eid}",
                "firstname": f"First{n}",
                "lastname": f"Last{n}",
                "email": f"e{eid}@firm.example",
                "title": "Consultant",
                "department": 1 + n % 2,
                "subsidiary": 1 + n % 2,
                "supervisor": None if n == 0 else EMPLOYEES[0],
                "currency": 1 + n % 2,
                "laborcost": 55.5 + n,
                "hiredate": "2025-06-01",
                "releasedate": None,
                "externalid": f"ext-e-{eid}",
                "datecreated": "2026-01-01 09:00:00",
                "lastmodifieddate": f"2026-01-0{1 + n % 9} 12:00:00",
            }
            for n, eid in enumerate(EMPLOYEES)
        ],
    )
    rows = []
    for i in range(timebills):
        day = dt.date(2026, 1, 1) + dt.timedelta(days=i % 300)
        rows.append(
            {
                "id": FIRST_TIMEBILL + i,
                "employee": EMPLOYEES[i % len(EMPLOYEES)],
                "customer": JOBS[i % len(JOBS)],
                "item": 1,
                "hours": 0.5 + i % 8,
                "trandate": day.isoformat(),
                "isbillable": "T" if i % 5 else "F",
                "rate": 150.0 + i % 3,
                "approvalstatus": 1 + i % 3,
                "memo": None if i % 7 == 0 else f"Work item {i}",
                "subsidiary": 1 + i % 2,
                "postingperiod": day.month,
                "externalid": str(800000 + i),
                "invoice": None,
                "posted": "T",
                "datecreated": timebill_stamp(i),
                "lastmodifieddate": timebill_stamp(i),
            }
        )
    _insert(con, "timebill", rows)
    transactions: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for n, iid in enumerate(INVOICES):
        customer = CUSTOMERS[n % len(CUSTOMERS)]
        paid = n < len(PAYMENTS)
        trandate = dt.date(2026, 1 + n, 28)
        total = 1000.0 * (n + 1)
        created = f"{trandate.isoformat()} 18:00:00"
        modified = f"{trandate.isoformat()} 18:30:00"
        transactions.append(
            {
                "id": iid,
                "tranid": f"INV{iid}",
                "transactionnumber": f"INV{iid}",
                "type": "CustInvc",
                "trandate": trandate.isoformat(),
                "duedate": (trandate + dt.timedelta(days=30)).isoformat(),
                "entity": customer,
                "job": JOBS[n % len(JOBS)],
                "subsidiary": 1 + n % 2,
                "currency": 1 + n % 2,
                "exchangerate": 1.0 if n % 2 == 0 else 1.08,
                "status": "B" if paid else "A",
                "postingperiod": 1 + n,
                "foreigntotal": total,
                "foreignamountpaid": total if paid else 0.0,
                "foreignamountremaining": 0.0 if paid else total,
                "terms": 1,
                "memo": None if n % 3 else f"Invoice memo {n}",
                "closedate": None,
                "voided": "F",
                "externalid": f"ext-i-{iid}",
                "createddate": created,
                "lastmodifieddate": modified,
            }
        )
        for seq in range(2):
            lines.append(
                {
                    "uniquekey": iid * 10 + seq,
                    "transaction": iid,
                    "id": seq,
                    "linesequencenumber": seq,
                    "mainline": "T" if seq == 0 else "F",
                    "entity": customer,
                    "item": None if seq == 0 else 1,
                    "quantity": None if seq == 0 else 10.0,
                    "rate": None if seq == 0 else 100.0 * (n + 1),
                    "netamount": total,
                    "foreignamount": total,
                    "memo": None,
                    "isbillable": "T" if seq else "F",
                    "subsidiary": 1 + n % 2,
                    "department": 1,
                    "employee": None if seq == 0 else EMPLOYEES[n],
                    "linelastmodifieddate": modified,
                }
            )
        if paid:
            pid = PAYMENTS[n]
            paydate = (trandate + dt.timedelta(days=20)).isoformat()
            transactions.append(
                {
                    "id": pid,
                    "tranid": f"PYMT{pid}",
                    "transactionnumber": f"PYMT{pid}",
                    "type": "CustPymt",
                    "trandate": paydate,
                    "duedate": None,
                    "entity": customer,
                    "job": None,
                    "subsidiary": 1 + n % 2,
                    "currency": 1 + n % 2,
                    "exchangerate": 1.0 if n % 2 == 0 else 1.08,
                    "status": "C",
                    "postingperiod": 1 + n,
                    "foreigntotal": total,
                    "foreignamountpaid": None,
                    "foreignamountremaining": None,
                    "terms": None,
                    "memo": None,
                    "closedate": None,
                    "voided": "F",
                    "externalid": None,
                    "createddate": f"{paydate} 09:00:00",
                    "lastmodifieddate": f"{paydate} 09:00:00",
                }
            )
            links.append(
                {
                    "previousdoc": iid,
                    "nextdoc": pid,
                    "linktype": "Payment",
                    "amount": total,
                    "foreignamount": total,
                    "linkdate": paydate,
                    "lastmodifieddate": f"{paydate} 09:00:00",
                }
            )
    _insert(con, "transaction", transactions)
    _insert(con, "transactionline", lines)
    _insert(con, "previoustransactionlink", links)
    _insert(
        con,
        "customrecord_pslake_rate_card",
        [
            {
                "id": 1,
                "name": "Standard US Consultant",
                "custrecord_rc_subsidiary": 1,
                "custrecord_rc_customer": None,
                "custrecord_rc_role": "Consultant",
                "custrecord_rc_rate": 150.0,
                "custrecord_rc_currency": 1,
                "custrecord_rc_effective_from": "2026-01-01",
                "custrecord_rc_effective_to": None,
                "lastmodifieddate": stamp,
            },
            {
                "id": 2,
                "name": "Customer 101 Consultant",
                "custrecord_rc_subsidiary": 1,
                "custrecord_rc_customer": 101,
                "custrecord_rc_role": "Consultant",
                "custrecord_rc_rate": 140.0,
                "custrecord_rc_currency": 1,
                "custrecord_rc_effective_from": "2026-01-01",
                "custrecord_rc_effective_to": "2026-06-30",
                "lastmodifieddate": stamp,
            },
        ],
    )
