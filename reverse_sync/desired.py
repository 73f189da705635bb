"""What the CRM should hold: the dbt sync models and the field-ownership matrix.

Read from the warehouse read-only, and closed again at once so a dbt build is never blocked
for long.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from pslake.errors import PslakeError
from reverse_sync.model import CrmObject, DesiredRecord, FieldRule

MARTS_SCHEMA = "marts"
SEED = ("reference", "field_ownership")

# The CRM objects pslake writes, and the sync model of each (dbt_project/models/marts/sync/).
OBJECTS: tuple[CrmObject, ...] = (
    CrmObject("companies", "sync_hubspot__companies", "crm_record_id", None,
              context=("client_id", "match_method")),
    CrmObject("deals", "sync_hubspot__deals", "crm_record_id", None,
              context=("engagement_id", "currency_code"), currency_column="currency_code"),
    CrmObject("erp_invoices", "sync_hubspot__erp_invoices", "netsuite_invoice_id",
              "netsuite_invoice_id", context=("crm_record_id", "invoice_id",
                                              "is_in_closed_period"),
              currency_column="currency", closed_period_column="is_in_closed_period"),
)
OBJECTS_BY_NAME = {obj.name: obj for obj in OBJECTS}

# pslake's own CRM properties, created on first apply when the portal lacks them.
CUSTOM_PROPERTIES: dict[str, dict[str, dict[str, Any]]] = {
    "deals": {
        "erp_project_code": {"label": "ERP project code", "type": "string",
                             "fieldType": "text"},
        "pslake_contract_value": {"label": "Contract value (ERP)", "type": "number",
                                  "fieldType": "number"},
        "pslake_hours_delivered": {"label": "Hours delivered", "type": "number",
                                   "fieldType": "number"},
        "pslake_revenue_recognised": {"label": "Revenue recognised", "type": "number",
                                      "fieldType": "number"},
        "pslake_amount_invoiced": {"label": "Amount invoiced", "type": "number",
                                   "fieldType": "number"},
    },
    "companies": {
        "netsuite_customer_id": {"label": "NetSuite customer id", "type": "string",
                                 "fieldType": "text"},
    },
}


@dataclass(frozen=True, slots=True)
class DesiredState:
    """The desired records per object and the ownership matrix."""

    records: dict[str, list[DesiredRecord]]
    rules: dict[tuple[str, str], FieldRule]
    fields: dict[str, list[str]]


def read_desired(warehouse: Path, objects: tuple[CrmObject, ...] = OBJECTS) -> DesiredState:
    """Read the sync models and the matrix.

    Raises:
        PslakeError: No warehouse, a model or the seed missing (run ``pslake transform``), or
            the warehouse held by a writer.
    """
    if not warehouse.exists():
        raise PslakeError(f"no warehouse at {warehouse}: run `pslake ingest` and "
                          "`pslake transform` first")
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise PslakeError(f"the warehouse {warehouse} is being written by another process "
                              "(an ingest or transform); run the sync after it") from None
        raise
    try:
        rules = _rules(con)
        records: dict[str, list[DesiredRecord]] = {}
        fields: dict[str, list[str]] = {}
        for obj in objects:
            records[obj.name], fields[obj.name] = _records(con, obj, rules)
    finally:
        con.close()
    return DesiredState(records, rules, fields)


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute("select count(*) from information_schema.tables where table_schema = ? "
                      "and table_name = ?", [schema, table]).fetchone()
    return bool(row and row[0])


def _rules(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], FieldRule]:
    if not _exists(con, *SEED):
        raise PslakeError("the field-ownership matrix (reference.field_ownership) is not in the "
                          "warehouse: run `pslake transform`")
    rows = con.execute("select crm_object, crm_property, owner_system, pslake_writes, "
                       "coalesce(approval, ''), value_kind from reference.field_ownership"
                       ).fetchall()
    return {(r[0], r[1]): FieldRule(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows}


def _records(con: duckdb.DuckDBPyConnection, obj: CrmObject,
             rules: dict[tuple[str, str], FieldRule]) -> tuple[list[DesiredRecord], list[str]]:
    if not _exists(con, MARTS_SCHEMA, obj.model):
        raise PslakeError(f"the sync model {MARTS_SCHEMA}.{obj.model} is not in the warehouse: "
                          "run `pslake transform`")
    cursor = con.execute(f'select * from {MARTS_SCHEMA}."{obj.model}"')  # our own names only
    columns = [d[0] for d in cursor.description]
    known = {obj.key_column, *obj.context}
    # every model column that is a CRM field is compared; a column the matrix does not know is
    # still planned (and refused by the policy), so nothing the model says goes unseen
    fields = [c for c in columns if c not in known or (obj.name, c) in rules]
    position = {c: i for i, c in enumerate(columns)}
    crm_id_at = position.get("crm_record_id")
    records = []
    for row in cursor.fetchall():
        key = _text(row[position[obj.key_column]])
        if key is None:
            continue  # the models test their keys not null; nothing to address without one
        records.append(DesiredRecord(
            object=obj.name,
            key=key,
            crm_id=_text(row[crm_id_at]) if crm_id_at is not None else None,
            values={f: _text(row[position[f]]) for f in fields},
            currency=_text(row[position[obj.currency_column]]) if obj.currency_column else None,
            closed_period=bool(row[position[obj.closed_period_column]])
            if obj.closed_period_column else False,
        ))
    return records, fields


def _text(value: Any) -> str | None:
    """A warehouse value as the CRM's text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
