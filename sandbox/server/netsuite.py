"""NetSuite SuiteTalk REST emulator: SuiteQL queries and the record API.

Paths are relative to the ``/netsuite`` mount, which stands for
``https://{accountId}.suitetalk.api.netsuite.com``:

- ``POST /services/rest/query/v1/suiteql?limit=&offset=`` runs SuiteQL (``sandbox.server.suiteql``)
  and answers NetSuite's paged collection: ``links``, ``count``, ``hasMore``, ``offset``,
  ``totalResults``, ``items``. ``Prefer: transient`` is required; ``limit`` is 1..1000 (default
  1000) and ``offset + limit`` may not pass 100,000 rows.
- ``GET|PATCH|DELETE /services/rest/record/v1/{record_type}/{record_id}`` reads, updates (204) or
  deletes (204) one customer, job (project), timeBill, invoice or employee (read only). Fields are
  camelCase, references ``{id, refName, links}``, booleans JSON booleans, dates ISO. Every write
  stamps ``lastmodifieddate``; a delete leaves a ``deletedrecord`` row for incremental readers.
- ``GET /services/rest/record/v1/{record_type}?q=&limit=&offset=`` lists ``{id, links}`` stubs,
  with the record API's filter language in ``q`` (``lastModifiedDate ON_OR_AFTER "1/1/2026"``).

Authentication, throttling (concurrency 429) and injected 5xx are the middleware's job; this
module applies the record-level faults (malformed record, schema drift).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.server.errors import json_response, netsuite_error
from sandbox.server.suiteql import (
    MAX_PAGE_SIZE,
    MAX_RESULTS,
    TABLES,
    SuiteQLEngine,
    SuiteQLError,
    TableInfo,
    parse_datetime,
)
from sandbox.store import Vendor, transaction

if TYPE_CHECKING:
    from sandbox.server.app import SandboxState

VENDOR: Vendor = "netsuite"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
RECORD_PATH = "/services/rest/record/v1"

# ---- record types ------------------------------------------------------------------------------

# Column -> camelCase field name where the two differ by more than case.
CAMEL_FIELDS: dict[str, str] = {
    "entityid": "entityId",
    "companyname": "companyName",
    "isperson": "isPerson",
    "billcountry": "billCountry",
    "externalid": "externalId",
    "datecreated": "dateCreated",
    "lastmodifieddate": "lastModifiedDate",
    "isinactive": "isInactive",
    "entitystatus": "entityStatus",
    "projectmanager": "projectManager",
    "startdate": "startDate",
    "enddate": "endDate",
    "projectedenddate": "projectedEndDate",
    "jobbillingtype": "jobBillingType",
    "estimatedrevenue": "estimatedRevenue",
    "estimatedcost": "estimatedCost",
    "estimatedlaborhours": "estimatedLaborHours",
    "firstname": "firstName",
    "lastname": "lastName",
    "laborcost": "laborCost",
    "hiredate": "hireDate",
    "releasedate": "releaseDate",
    "trandate": "tranDate",
    "isbillable": "isBillable",
    "approvalstatus": "approvalStatus",
    "postingperiod": "postingPeriod",
    "tranid": "tranId",
    "transactionnumber": "transactionNumber",
    "duedate": "dueDate",
    "exchangerate": "exchangeRate",
    "foreigntotal": "total",
    "foreignamountpaid": "amountPaid",
    "foreignamountremaining": "amountRemaining",
    "closedate": "closeDate",
    "createddate": "createdDate",
}

# Reference columns -> the tables (and display column) their ids may point to, in order.
REFERENCES: dict[str, tuple[tuple[str, str], ...]] = {
    "subsidiary": (("subsidiary", "name"),),
    "currency": (("currency", "name"),),
    "terms": (("term", "name"),),
    "entitystatus": (("entitystatus", "name"),),
    "projectmanager": (("employee", "entityid"),),
    "employee": (("employee", "entityid"),),
    "supervisor": (("employee", "entityid"),),
    "department": (("department", "name"),),
    "item": (("item", "itemid"),),
    "postingperiod": (("accountingperiod", "periodname"),),
    "entity": (("customer", "entityid"), ("job", "entityid")),
    "job": (("job", "entityid"),),
    "invoice": (("transaction", "tranid"),),
    "customer": (("customer", "entityid"),),
    "parent": (("customer", "entityid"),),
}
TABLE_REFERENCES: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("timebill", "customer"): (("job", "entityid"), ("customer", "entityid")),
    ("job", "parent"): (("customer", "entityid"), ("job", "entityid")),
}
# Select fields rendered as {id, refName}.
ENUMS: dict[str, dict[str, str]] = {
    "approvalstatus": {"1": "Pending Approval", "2": "Approved", "3": "Rejected"},
    "status": {"A": "Open", "B": "Paid In Full"},
    "jobbillingtype": {
        "TM": "Time and Materials",
        "FF": "Fixed Fee",
        "MS": "Milestone",
        "RT": "Retainer",
    },
}
READ_ONLY = frozenset({"id", "lastmodifieddate", "datecreated", "createddate"})
# Record API type of each table, for reference links.
_LINK_TYPES = {
    "customer": "customer",
    "job": "job",
    "timebill": "timeBill",
    "employee": "employee",
    "transaction": "invoice",
}


@dataclass(frozen=True)
class RecordType:
    """How one REST record type maps onto a store table.

    Attributes:
        name: The record type id as NetSuite spells it (``timeBill``).
        table: The store table.
        deleted_type: ``deletedrecord.recordtype`` written on delete.
        name_column: The column that names a record (``refName``, ``deletedrecord.name``).
        condition: Extra SQL condition selecting this type's rows of a shared table.
        writable: Whether PATCH and DELETE are allowed.
        hidden: Columns not exposed as fields.
        overrides: Column -> field name overrides for this type.
    """

    name: str
    table: str
    deleted_type: str
    name_column: str
    condition: str | None = None
    writable: bool = True
    hidden: frozenset[str] = frozenset()
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def info(self) -> TableInfo:
        """The table's columns and kinds."""
        return TABLES[self.table]

    def field_name(self, column: str) -> str:
        """The camelCase field of a column."""
        return self.overrides.get(column) or CAMEL_FIELDS.get(column, column)

    def fields(self) -> dict[str, str]:
        """Field name (camelCase, as NetSuite spells it) -> column, for every exposed column."""
        return {self.field_name(c): c for c in self.info.columns if c not in self.hidden}

    def where(self) -> str:
        """The SQL condition selecting one record of this type by ``id = ?``."""
        return "id = ?" + (f" and {self.condition}" if self.condition else "")


RECORD_TYPES: dict[str, RecordType] = {
    "customer": RecordType("customer", "customer", "customer", "entityid"),
    "job": RecordType("job", "job", "job", "entityid"),
    "timebill": RecordType(
        "timeBill", "timebill", "timebill", "id", overrides={"datecreated": "createdDate"}
    ),
    "invoice": RecordType(
        "invoice",
        "transaction",
        "invoice",
        "tranid",
        condition="type = 'CustInvc'",
        hidden=frozenset({"type"}),
    ),
    "employee": RecordType("employee", "employee", "employee", "entityid", writable=False),
}


class FieldError(Exception):
    """A request field NetSuite would refuse."""

    def __init__(self, detail: str, path: str, code: str = "INVALID_CONTENT") -> None:
        super().__init__(detail)
        self.detail = detail
        self.path = path
        self.code = code


def _record_type(name: str) -> RecordType | None:
    return RECORD_TYPES.get(name.lower())


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# ---- rendering records -------------------------------------------------------------------------


def _ref_targets(table: str, column: str) -> tuple[tuple[str, str], ...]:
    return TABLE_REFERENCES.get((table, column)) or REFERENCES.get(column, ())


def _ref_name(con: Any, table: str, column: str, value: int) -> tuple[str | None, str | None]:
    """(display name, target table) of a reference value."""
    for target, display in _ref_targets(table, column):
        row = con.execute(f'select "{display}" from "{target}" where id = ?', (value,)).fetchone()
        if row is not None:
            return (str(row[0]) if row[0] is not None else None), target
    return None, None


def render_record(con: Any, rtype: RecordType, row: Any, base: str) -> dict[str, Any]:
    """One record as the record API returns it (nulls omitted)."""
    info = rtype.info
    record_id = row["id"]
    out: dict[str, Any] = {
        "links": [{"rel": "self", "href": f"{base}{RECORD_PATH}/{rtype.name}/{record_id}"}]
    }
    for column, kind in info.columns.items():
        if column in rtype.hidden:
            continue
        value = row[column]
        if value is None:
            continue
        name = rtype.field_name(column)
        if column == "id":
            out["id"] = str(value)
        elif column in ENUMS:
            ref: dict[str, Any] = {"id": str(value)}
            label = ENUMS[column].get(str(value))
            if label:
                ref["refName"] = label
            out[name] = ref
        elif kind == "key" and _ref_targets(rtype.table, column):
            ref_name, target = _ref_name(con, rtype.table, column, value)
            ref = {"id": str(value)}
            if ref_name is not None:
                ref["refName"] = ref_name
            link_type = _LINK_TYPES.get(target or "")
            ref["links"] = (
                [{"rel": "self", "href": f"{base}{RECORD_PATH}/{link_type}/{value}"}]
                if link_type
                else []
            )
            out[name] = ref
        elif column in info.booleans:
            out[name] = value == "T"
        elif kind == "ts":
            out[name] = f"{value[:10]}T{value[11:19]}Z" if len(value) >= 19 else value
        else:
            out[name] = value
    return out


# ---- parsing PATCH values ------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+):([0-5]\d)\s*$")


def _parse_value(con: Any, rtype: RecordType, column: str, field_name: str, value: Any) -> Any:
    info = rtype.info
    kind = info.columns[column]
    shown = orjson.dumps(value).decode()
    invalid = FieldError(
        "Error while accessing resource: You have entered an Invalid Field Value "
        f"{shown} for the following field: {field_name}",
        field_name,
    )
    if value is None:
        if column in info.notnull:
            raise FieldError(
                f"Error while accessing resource: Please enter value(s) for: {field_name}",
                field_name,
            )
        return None
    if column in ENUMS:
        raw = value.get("id") if isinstance(value, dict) else value
        if str(raw) not in ENUMS[column]:
            raise invalid
        return int(str(raw)) if kind == "key" else str(raw)
    if kind == "key":
        raw = value.get("id") if isinstance(value, dict) else value
        if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not str(raw).isdigit():
            raise invalid
        ref = int(raw)
        targets = _ref_targets(rtype.table, column)
        if targets and not any(
            con.execute(f'select 1 from "{t}" where id = ?', (ref,)).fetchone() for t, _ in targets
        ):
            raise invalid
        return ref
    if column in info.booleans:
        if not isinstance(value, bool):
            raise invalid
        return "T" if value else "F"
    if kind == "num":
        if isinstance(value, bool):
            raise invalid
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str):
            duration = _DURATION.match(value)
            if duration and column == "hours":
                return int(duration.group(1)) + int(duration.group(2)) / 60
            try:
                return float(value)
            except ValueError:
                raise invalid from None
        raise invalid
    if kind == "date":
        if not isinstance(value, str):
            raise invalid
        try:
            return dt.date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            raise invalid from None
    if not isinstance(value, str):
        raise invalid
    return value


# ---- collection filters (q=) ---------------------------------------------------------------------

_Q_TOKEN = re.compile(r'\s*(\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+)')
_COMPARE = {
    "EQUAL": "=",
    "EQUAL_NOT": "!=",
    "GREATER": ">",
    "GREATER_OR_EQUAL": ">=",
    "LESS": "<",
    "LESS_OR_EQUAL": "<=",
    "GREATER_NOT": "<=",
    "LESS_NOT": ">=",
    "GREATER_OR_EQUAL_NOT": "<",
    "LESS_OR_EQUAL_NOT": ">",
    "IS": "=",
    "IS_NOT": "!=",
}
_DATE_OPS = {
    "AFTER": ">",
    "BEFORE": "<",
    "ON_OR_AFTER": ">=",
    "ON_OR_BEFORE": "<=",
    "AFTER_NOT": "<=",
    "BEFORE_NOT": ">=",
    "ON_OR_AFTER_NOT": "<",
    "ON_OR_BEFORE_NOT": ">",
}
_LIKE = {
    "CONTAIN": ("%{}%", False),
    "CONTAIN_NOT": ("%{}%", True),
    "START_WITH": ("{}%", False),
    "START_WITH_NOT": ("{}%", True),
    "END_WITH": ("%{}", False),
    "END_WITH_NOT": ("%{}", True),
}


class _FilterParser:
    """The record API's ``q`` filter language, translated to an SQL condition."""

    def __init__(self, rtype: RecordType, text: str) -> None:
        self.rtype = rtype
        self.fields = rtype.fields()
        self.tokens = [t for t in _Q_TOKEN.findall(text) if t]
        self.pos = 0
        self.params: list[Any] = []

    def parse(self) -> str:
        sql = self._or()
        if self.pos != len(self.tokens):
            raise ValueError(f"unexpected '{self.tokens[self.pos]}'")
        return sql

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise ValueError("the filter ends too early")
        self.pos += 1
        return token

    def _or(self) -> str:
        parts = [self._and()]
        while (self._peek() or "").upper() == "OR":
            self.pos += 1
            parts.append(self._and())
        return "(" + " or ".join(parts) + ")"

    def _and(self) -> str:
        parts = [self._factor()]
        while (self._peek() or "").upper() == "AND":
            self.pos += 1
            parts.append(self._factor())
        return "(" + " and ".join(parts) + ")"

    def _value(self) -> str:
        token = self._take()
        if token.startswith('"'):
            return str(orjson.loads(token))
        return token

    def _factor(self) -> str:
        if self._peek() == "(":
            self.pos += 1
            inner = self._or()
            if self._take() != ")":
                raise ValueError("missing ')'")
            return inner
        name = self._take()
        column = self.fields.get(name)
        if column is None:
            raise ValueError(f"unknown field '{name}'")
        op = self._take().upper()
        kind = self.rtype.info.columns[column]
        col = f'"{column}"'
        if op in ("EMPTY", "EMPTY_NOT"):
            return f"{col} is {'not ' if op == 'EMPTY_NOT' else ''}null"
        if kind in ("date", "ts") and (op in _DATE_OPS or op in ("ON", "ON_NOT", "WITHIN")):
            return self._date(col, kind, op)
        if op in ("BETWEEN", "BETWEEN_NOT", "WITHIN"):
            low, high = self._typed(column, self._value()), self._typed(column, self._value())
            self.params += [low, high]
            return f"{col} {'not ' if op.endswith('_NOT') else ''}between ? and ?"
        if op in ("ANY_OF", "ANY_OF_NOT"):
            values = [self._typed(column, v.strip()) for v in self._value().split(",") if v.strip()]
            if not values:
                raise ValueError("ANY_OF needs values")
            self.params += values
            marks = ", ".join("?" * len(values))
            return f"{col} {'not ' if op == 'ANY_OF_NOT' else ''}in ({marks})"
        if op in _LIKE:
            pattern, negate = _LIKE[op]
            self.params.append(pattern.format(self._value()))
            return f"{col} {'not ' if negate else ''}like ?"
        if op in _COMPARE:
            self.params.append(self._typed(column, self._value()))
            return f"{col} {_COMPARE[op]} ?"
        raise ValueError(f"unknown operator '{op}'")

    def _typed(self, column: str, raw: str) -> Any:
        info = self.rtype.info
        if column in info.booleans:
            if raw.lower() not in ("true", "false"):
                raise ValueError(f"'{raw}' is not a boolean")
            return "T" if raw.lower() == "true" else "F"
        kind = info.columns[column]
        if kind in ("key", "num"):
            try:
                return float(raw) if "." in raw else int(raw)
            except ValueError:
                raise ValueError(f"'{raw}' is not a number") from None
        return raw

    def _date(self, col: str, kind: str, op: str) -> str:
        raw = self._value()
        try:
            value = parse_datetime(raw)
        except SuiteQLError:
            raise ValueError(f"'{raw}' is not a date") from None
        has_time = value.time() != dt.time(0) or ":" in raw
        if kind == "date" or has_time:
            text = value.strftime("%Y-%m-%d" if kind == "date" else "%Y-%m-%d %H:%M:%S")
            if op in ("ON", "ON_NOT"):
                self.params.append(text)
                return f"{col} {'!=' if op == 'ON_NOT' else '='} ?"
            self.params.append(text)
            return f"{col} {_DATE_OPS[op]} ?"
        # A date against a timestamp: compare whole days, keeping the index usable.
        start = value.strftime("%Y-%m-%d 00:00:00")
        end = (value + dt.timedelta(days=1)).strftime("%Y-%m-%d 00:00:00")
        bounds = {
            "AFTER": (">=", end),
            "ON_OR_BEFORE_NOT": (">=", end),
            "BEFORE": ("<", start),
            "ON_OR_AFTER_NOT": ("<", start),
            "ON_OR_AFTER": (">=", start),
            "BEFORE_NOT": (">=", start),
            "ON_OR_BEFORE": ("<", end),
            "AFTER_NOT": ("<", end),
        }
        if op in ("ON", "ON_NOT"):
            self.params += [start, end]
            sql = f"({col} >= ? and {col} < ?)"
            return f"not {sql}" if op == "ON_NOT" else sql
        operator, bound = bounds[op]
        self.params.append(bound)
        return f"{col} {operator} ?"


# ---- HTTP helpers --------------------------------------------------------------------------------


def _paging(request: Request) -> tuple[int, int] | Response:
    """``limit`` and ``offset`` of a collection request, or the 400 NetSuite answers."""
    raw_limit = request.query_params.get("limit")
    raw_offset = request.query_params.get("offset")
    try:
        limit = int(raw_limit) if raw_limit else MAX_PAGE_SIZE
    except ValueError:
        limit = -1
    if not 1 <= limit <= MAX_PAGE_SIZE:
        return netsuite_error(
            400,
            f"Invalid value '{raw_limit}' for query parameter 'limit'. "
            f"Provide a whole number from 1 to {MAX_PAGE_SIZE}.",
            "INVALID_PARAMETER",
            errorQueryParam="limit",
        )
    try:
        offset = int(raw_offset) if raw_offset else 0
    except ValueError:
        offset = -1
    if offset < 0:
        return netsuite_error(
            400,
            f"Invalid value '{raw_offset}' for query parameter 'offset'. "
            "Provide a whole number of 0 or more.",
            "INVALID_PARAMETER",
            errorQueryParam="offset",
        )
    if offset + limit > MAX_RESULTS:
        return netsuite_error(
            400,
            f"Invalid value '{offset}' for query parameter 'offset'. A query returns at most "
            f"{MAX_RESULTS:,} results, and offset + limit ({offset + limit:,}) passes that. "
            "Page by key range instead, for example WHERE id > :last_id ORDER BY id.",
            "INVALID_PARAMETER",
            errorQueryParam="offset",
        )
    return limit, offset


def _collection_links(
    href: str, limit: int, offset: int, total: int, has_more: bool, **extra: str
) -> list[dict[str, str]]:
    """previous/first/next/last/self links of a paged collection (absolute URLs)."""

    def link(rel: str, at: int) -> dict[str, str]:
        return {"rel": rel, "href": f"{href}?{urlencode({**extra, 'limit': limit, 'offset': at})}"}

    last = max(0, min(total - 1, MAX_RESULTS - 1)) // limit * limit
    links = []
    if offset > 0:
        links.append(link("previous", max(0, offset - limit)))
    links.append(link("first", 0))
    if has_more:
        links.append(link("next", offset + limit))
    links.append(link("last", last))
    links.append(link("self", offset))
    return links


def _not_found() -> Response:
    return netsuite_error(
        404,
        "The record instance does not exist. Provide a valid record instance ID.",
        "NONEXISTENT_ID",
    )


def _unknown_type(name: str) -> Response:
    return netsuite_error(
        404,
        f"The record type '{name}' does not exist or is not supported.",
        "INVALID_RECORD_TYPE",
    )


def _lookup(con: Any, rtype: RecordType, record_id: str) -> Any:
    """The row of one record by id or ``eid:<externalId>`` (None when absent)."""
    table = f'"{rtype.table}"'
    if record_id.startswith("eid:"):
        condition = "externalid = ?" + (f" and {rtype.condition}" if rtype.condition else "")
        return con.execute(f"select * from {table} where {condition}", (record_id[4:],)).fetchone()
    if not record_id.isdigit():
        return None
    return con.execute(f"select * from {table} where {rtype.where()}", (int(record_id),)).fetchone()


# ---- routes --------------------------------------------------------------------------------------


def routes(state: SandboxState) -> list[BaseRoute]:
    """The NetSuite routes, relative to the ``/netsuite`` mount."""
    engine = SuiteQLEngine()

    def base(request: Request) -> str:
        return state.vendor_base(request, VENDOR)

    async def suiteql(request: Request) -> Response:
        if request.method != "POST":
            return netsuite_error(
                405,
                'SuiteQL queries are sent with POST and a JSON body {"q": ...}.',
                "INVALID_METHOD",
            )
        if "transient" not in request.headers.get("prefer", "").lower():
            return netsuite_error(
                400,
                "Missing or invalid 'Prefer' header. SuiteQL queries through REST web services "
                "require the header 'Prefer: transient'.",
                "INVALID_HEADER",
                errorHeader="Prefer",
            )
        paging = _paging(request)
        if isinstance(paging, Response):
            return paging
        limit, offset = paging
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        query = body.get("q") if isinstance(body, dict) else None
        if not isinstance(query, str):
            return netsuite_error(
                400,
                'Invalid content in the request body. Send a JSON object {"q": "<SuiteQL query>"}.',
                "INVALID_CONTENT",
            )
        try:
            page = engine.page(state.db(VENDOR), query, limit, offset, state.generation)
        except SuiteQLError as exc:
            return netsuite_error(400, exc.message, "INVALID_PARAMETER")
        faults = state.faults
        faults.page_served(VENDOR)
        if faults.record_faults_on(VENDOR):
            for item in page.items:
                # Rows without an id column still get a stable key: their first value.
                key = item.get("id", next((v for k, v in item.items() if k != "links"), None))
                faults.shape_record(VENDOR, page.resource, item, key)
        state.stats.records_served[VENDOR] += len(page.items)
        href = base(request) + SUITEQL_PATH
        return json_response(
            {
                "links": _collection_links(href, limit, offset, page.total_results, page.has_more),
                "count": len(page.items),
                "hasMore": page.has_more,
                "offset": offset,
                "totalResults": page.total_results,
                "items": page.items,
            }
        )

    async def collection(request: Request) -> Response:
        name = request.path_params["record_type"]
        rtype = _record_type(name)
        if rtype is None:
            return _unknown_type(name)
        if request.method != "GET":
            return netsuite_error(
                405,
                f"Creating {rtype.name} records is not supported by the sandbox.",
                "INVALID_METHOD",
            )
        paging = _paging(request)
        if isinstance(paging, Response):
            return paging
        limit, offset = paging
        conditions = [rtype.condition] if rtype.condition else []
        params: list[Any] = []
        q = request.query_params.get("q")
        if q:
            parser = _FilterParser(rtype, q)
            try:
                conditions.append(parser.parse())
            except ValueError as exc:
                return netsuite_error(
                    400,
                    f"Invalid search query 'q': {exc}.",
                    "INVALID_PARAMETER",
                    errorQueryParam="q",
                )
            params = parser.params
        where = f"where {' and '.join(conditions)}" if conditions else ""
        con = state.db(VENDOR)
        table = f'"{rtype.table}"'
        rows = con.execute(
            f"select id from {table} {where} order by id limit ? offset ?",
            (*params, limit, offset),
        ).fetchall()
        total = con.execute(
            f"select count(*) from (select 1 from {table} {where} limit ?)",
            (*params, MAX_RESULTS + 1),
        ).fetchone()[0]
        has_more = offset + len(rows) < total
        record_base = f"{base(request)}{RECORD_PATH}/{rtype.name}"
        items = [
            {"links": [{"rel": "self", "href": f"{record_base}/{row['id']}"}], "id": str(row["id"])}
            for row in rows
        ]
        state.faults.page_served(VENDOR)
        state.stats.records_served[VENDOR] += len(items)
        return json_response(
            {
                "links": _collection_links(
                    f"{base(request)}{RECORD_PATH}/{name}",
                    limit,
                    offset,
                    min(total, MAX_RESULTS),
                    has_more,
                    **({"q": q} if q else {}),
                ),
                "count": len(items),
                "hasMore": has_more,
                "offset": offset,
                "totalResults": min(total, MAX_RESULTS),
                "items": items,
            }
        )

    async def record(request: Request) -> Response:
        name = request.path_params["record_type"]
        record_id = request.path_params["record_id"]
        rtype = _record_type(name)
        if rtype is None:
            return _unknown_type(name)
        if request.method in ("PATCH", "DELETE") and not rtype.writable:
            return netsuite_error(
                405,
                f"The {request.method} operation is not supported for {rtype.name} "
                "records in this account.",
                "INVALID_METHOD",
            )
        if request.method not in ("GET", "PATCH", "DELETE"):
            return netsuite_error(
                405,
                f"The {request.method} operation is not supported on a record instance.",
                "INVALID_METHOD",
            )
        con = state.db(VENDOR)
        row = _lookup(con, rtype, record_id)
        if row is None:
            return _not_found()
        if request.method == "GET":
            return _get(request, rtype, row)
        if request.method == "PATCH":
            return await _patch(request, rtype, row)
        return _delete(rtype, row)

    def _get(request: Request, rtype: RecordType, row: Any) -> Response:
        con = state.db(VENDOR)
        out = render_record(con, rtype, row, base(request))
        wanted = request.query_params.get("fields")
        if wanted:
            keep = {f.strip().lower() for f in wanted.split(",")} | {"id", "links"}
            out = {k: v for k, v in out.items() if k.lower() in keep}
        if state.faults.record_faults_on(VENDOR):
            state.faults.shape_record(VENDOR, rtype.table, out, out.get("id"))
        state.stats.records_served[VENDOR] += 1
        return json_response(out)

    async def _patch(request: Request, rtype: RecordType, row: Any) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return netsuite_error(
                400,
                "Invalid content in the request body. Send a JSON object of fields.",
                "INVALID_CONTENT",
            )
        con = state.db(VENDOR)
        fields = rtype.fields()
        updates: dict[str, Any] = {}
        try:
            for field_name, value in body.items():
                if field_name == "links":
                    continue
                column = fields.get(field_name)
                if column is None:
                    raise FieldError(
                        f"Invalid field name '{field_name}'. The field does not exist on the "
                        f"{rtype.name} record.",
                        field_name,
                    )
                if column in READ_ONLY:
                    raise FieldError(
                        f"The field '{field_name}' is read-only and cannot be set.",
                        field_name,
                    )
                updates[column] = _parse_value(con, rtype, column, field_name, value)
        except FieldError as exc:
            return netsuite_error(400, exc.detail, exc.code, errorPath=exc.path)
        updates["lastmodifieddate"] = _stamp(state.now())
        assignments = ", ".join(f'"{c}" = ?' for c in updates)
        with transaction(con):
            con.execute(
                f'update "{rtype.table}" set {assignments} where id = ?',
                (*updates.values(), row["id"]),
            )
        state.wrote()
        return Response(status_code=204)

    def _delete(rtype: RecordType, row: Any) -> Response:
        con = state.db(VENDOR)
        record_id = row["id"]
        label = row[rtype.name_column]
        with transaction(con):
            con.execute(f'delete from "{rtype.table}" where id = ?', (record_id,))
            if rtype.table == "transaction":
                con.execute('delete from transactionline where "transaction" = ?', (record_id,))
                con.execute(
                    "delete from previoustransactionlink where previousdoc = ? or nextdoc = ?",
                    (record_id, record_id),
                )
            con.execute(
                "insert into deletedrecord (recordid, recordtype, deleteddate, name, context) "
                "values (?, ?, ?, ?, 'WEBSERVICES')",
                (
                    str(record_id),
                    rtype.deleted_type,
                    _stamp(state.now()),
                    None if label is None else str(label),
                ),
            )
        state.wrote()
        return Response(status_code=204)

    async def not_found(request: Request) -> Response:
        return netsuite_error(
            404, f"The requested resource {request.url.path} does not exist.", "NONEXISTENT_ID"
        )

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    return [
        Route(SUITEQL_PATH, suiteql, methods=methods),
        Route(f"{RECORD_PATH}/{{record_type}}", collection, methods=methods),
        Route(f"{RECORD_PATH}/{{record_type}}/{{record_id}}", record, methods=methods),
        Route("/{path:path}", not_found, methods=methods),
    ]
