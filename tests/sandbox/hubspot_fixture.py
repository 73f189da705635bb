"""A tiny HubSpot store for the emulator tests, written straight into ``hubspot.sqlite``.

250 companies (5 archived) so that list paging runs over three pages of 100, 60 deals in the
default pipeline, 40 contacts, 30 ``erp_invoices`` custom-object records (unique
``netsuite_invoice_id``), 2 owners, and custom property definitions covering number,
enumeration, date, datetime and bool. Modification times rise with the record id, one hour
apart, from ``BASE_TIME``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson

from sandbox import firm_info
from sandbox.store import connect, create_indexes, create_schema, transaction

BASE_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CREATED = "2025-06-01T08:00:00.000Z"
COMPANY_IDS = list(range(1001, 1251))
ARCHIVED_COMPANY_IDS = [1010, 1020, 1030, 1040, 1050]
DEAL_IDS = list(range(2001, 2061))
CONTACT_IDS = list(range(3001, 3041))
INVOICE_IDS = list(range(4001, 4031))
OWNER_IDS = [501, 502]
STAGES = [
    ("appointmentscheduled", "Appointment Scheduled", "0.2", "false"),
    ("qualifiedtobuy", "Qualified to Buy", "0.4", "false"),
    ("presentationscheduled", "Presentation Scheduled", "0.6", "false"),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", "false"),
    ("contractsent", "Contract Sent", "0.9", "false"),
    ("closedwon", "Closed Won", "1.0", "true"),
    ("closedlost", "Closed Lost", "0.0", "true"),
]
TERMS = ["net_30", "net_45", "net_60"]
INVOICE_STATUSES = ["open", "partially_paid", "paid"]
CUSTOM_OBJECT = {
    "object_type_id": "2-9001",
    "name": "erp_invoices",
    "fully_qualified_name": "p_erp_invoices",
}


def stamp(moment: dt.datetime) -> str:
    """HubSpot's timestamp form, ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def modified(record_id: int) -> str:
    """The seeded modification time of a record: one hour per id step after BASE_TIME."""
    return stamp(BASE_TIME + dt.timedelta(hours=record_id % 1000))


def _options(values: list[str]) -> str:
    return orjson.dumps(
        [
            {"label": v.replace("_", " ").title(), "value": v, "displayOrder": i, "hidden": False}
            for i, v in enumerate(values)
        ]
    ).decode()


# (object type, name, type, fieldType, options, unique)
PROPERTY_DEFS: list[tuple[str, str, str, str, list[str], bool]] = [
    ("companies", "netsuite_customer_id", "string", "text", [], True),
    ("companies", "erp_payment_terms", "enumeration", "select", TERMS, False),
    ("companies", "erp_credit_limit", "number", "number", [], False),
    ("companies", "erp_last_invoice_date", "date", "date", [], False),
    ("companies", "pslake_last_sync", "datetime", "date", [], False),
    ("companies", "erp_is_active", "bool", "booleancheckbox", [], False),
    ("deals", "erp_project_code", "string", "text", [], False),
    ("erp_invoices", "netsuite_invoice_id", "string", "text", [], True),
    ("erp_invoices", "invoice_number", "string", "text", [], False),
    ("erp_invoices", "amount", "number", "number", [], False),
    ("erp_invoices", "amount_paid", "number", "number", [], False),
    ("erp_invoices", "status", "enumeration", "select", INVOICE_STATUSES, False),
    ("erp_invoices", "invoice_date", "date", "date", [], False),
]


def _object(
    object_type: str, record_id: int, props: dict[str, Any], archived: bool = False
) -> tuple[Any, ...]:
    updated = modified(record_id)
    key = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
    props = {**props, "hs_object_id": str(record_id), "createdate": CREATED, key: updated}
    return (
        object_type,
        record_id,
        orjson.dumps(props).decode(),
        CREATED,
        updated,
        int(archived),
        updated if archived else None,
    )


def _companies() -> list[tuple[Any, ...]]:
    rows = []
    for n, cid in enumerate(COMPANY_IDS, start=1):
        props = {
            "name": f"Company {n:03d}",
            "domain": f"company{n:03d}.example.com",
            "erp_credit_limit": str(n * 100),
        }
        if n % 2 == 0:
            props["netsuite_customer_id"] = f"CUST-{n:03d}"
            props["erp_payment_terms"] = TERMS[n % 3]
        if n % 5 == 0:
            props["industry"] = "Computer Software" if n % 10 else "Management Consulting"
        rows.append(_object("companies", cid, props, cid in ARCHIVED_COMPANY_IDS))
    return rows


def _deals() -> list[tuple[Any, ...]]:
    rows = []
    for n, did in enumerate(DEAL_IDS, start=1):
        props = {
            "dealname": f"Deal {n:02d} implementation",
            "amount": str(n * 250.5).rstrip("0").rstrip("."),
            "pipeline": "default",
            "dealstage": STAGES[n % 7][0],
            "closedate": f"2026-{1 + n % 12:02d}-15T00:00:00.000Z",
            "hubspot_owner_id": str(OWNER_IDS[n % 2]),
        }
        rows.append(_object("deals", did, props))
    return rows


def _contacts() -> list[tuple[Any, ...]]:
    return [
        _object(
            "contacts",
            cid,
            {
                "email": f"person{n:02d}@company{n:03d}.example.com",
                "firstname": f"First{n:02d}",
                "lastname": f"Last{n:02d}",
            },
        )
        for n, cid in enumerate(CONTACT_IDS, start=1)
    ]


def _invoices() -> list[tuple[Any, ...]]:
    rows = []
    for n, iid in enumerate(INVOICE_IDS, start=1):
        props = {
            "netsuite_invoice_id": f"INV-{n:04d}",
            "invoice_number": f"SI-{n:04d}",
            "amount": str(1000 * n),
            "amount_paid": "0",
            "status": "open",
            "invoice_date": f"2026-{1 + n % 10:02d}-01",
        }
        rows.append(_object("erp_invoices", iid, props))
    return rows


def _associations() -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for n, cid in enumerate(CONTACT_IDS, start=1):
        company = COMPANY_IDS[n]  # contact n works at company n + 1, stored both ways
        rows += [
            ("contacts", cid, "companies", company, 279),
            ("companies", company, "contacts", cid, 280),
        ]
    for n, did in enumerate(DEAL_IDS, start=1):
        company = COMPANY_IDS[n % 20]  # deals stored one way only: deal -> company
        rows.append(("deals", did, "companies", company, 341))
    for n, iid in enumerate(INVOICE_IDS, start=1):
        rows.append(("erp_invoices", iid, "companies", COMPANY_IDS[n % 20], 9101))
    return rows


def build_store(store_dir: Path) -> dict[str, Any]:
    """Create the schema, write the tiny HubSpot portal and ``firm.json``.

    Returns:
        The firm info saved (with the credentials).
    """
    create_schema(store_dir)
    con = connect(store_dir, "hubspot")
    try:
        with transaction(con):
            con.executemany(
                "insert into objects (object_type, id, properties, created_at, updated_at, "
                "archived, archived_at) values (?, ?, ?, ?, ?, ?, ?)",
                _companies() + _deals() + _contacts() + _invoices(),
            )
            con.executemany(
                "insert into associations (from_type, from_id, to_type, to_id, type_id) "
                "values (?, ?, ?, ?, ?)",
                _associations(),
            )
            con.executemany(
                "insert into owners (id, email, first_name, last_name, user_id, created_at, "
                "updated_at) values (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        OWNER_IDS[0],
                        "ada.lovelace@firm.example",
                        "Ada",
                        "Lovelace",
                        9001,
                        CREATED,
                        CREATED,
                    ),
                    (
                        OWNER_IDS[1],
                        "alan.turing@firm.example",
                        "Alan",
                        "Turing",
                        9002,
                        CREATED,
                        CREATED,
                    ),
                ],
            )
            con.execute(
                "insert into pipelines (object_type, id, label, display_order, created_at, "
                "updated_at) values ('deals', 'default', 'Sales Pipeline', 0, ?, ?)",
                (CREATED, CREATED),
            )
            con.executemany(
                "insert into pipeline_stages (pipeline_id, id, label, display_order, metadata, "
                "created_at, updated_at) values ('default', ?, ?, ?, ?, ?, ?)",
                [
                    (
                        sid,
                        label,
                        i,
                        orjson.dumps({"probability": p, "isClosed": closed}).decode(),
                        CREATED,
                        CREATED,
                    )
                    for i, (sid, label, p, closed) in enumerate(STAGES)
                ],
            )
            con.executemany(
                "insert into properties (object_type, name, label, type, field_type, group_name, "
                "options, has_unique_value, hubspot_defined, created_at, updated_at) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                [
                    (
                        ot,
                        name,
                        name.replace("_", " ").title(),
                        ptype,
                        ftype,
                        "pslake",
                        _options(opts),
                        int(unique),
                        CREATED,
                        CREATED,
                    )
                    for ot, name, ptype, ftype, opts, unique in PROPERTY_DEFS
                ],
            )
            con.execute(
                "insert into object_schemas (object_type_id, name, fully_qualified_name, labels, "
                "primary_display_property, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?)",
                (
                    CUSTOM_OBJECT["object_type_id"],
                    CUSTOM_OBJECT["name"],
                    CUSTOM_OBJECT["fully_qualified_name"],
                    orjson.dumps({"singular": "ERP invoice", "plural": "ERP invoices"}).decode(),
                    "invoice_number",
                    CREATED,
                    CREATED,
                ),
            )
    finally:
        con.close()
    create_indexes(store_dir)
    info = {
        "size": "tiny",
        "seed": 0,
        "as_of": "2026-11-16",
        "credentials": firm_info.new_credentials(),
    }
    firm_info.save(store_dir, info)
    return info
