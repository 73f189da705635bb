"""Harvest API v2 emulator (``/harvest`` stands for ``https://api.harvestapp.com``).

Covers what pslake reads and writes (vendor-apis.md §2):

- ``GET /v2/company`` and ``GET /v2/users/me``;
- list and get-one for clients, users, projects, tasks, task_assignments, user_assignments,
  time_entries, expenses and expense_categories, plus the per-project
  ``/v2/projects/{project_id}/task_assignments`` and ``/user_assignments``;
- ``GET /v2/invoices``: the firm invoices in its ERP, so the list is empty (with the envelope);
- ``POST``/``PATCH``/``DELETE`` of time entries and expenses, ``PATCH .../stop|restart`` and
  ``DELETE .../external_reference`` of time entries.

Lists use Harvest's envelope (``{<resource>: [...], per_page, total_pages, total_entries,
next_page, previous_page, page, links}``), newest first (id descending: ids grow with creation),
``per_page`` 1..2000 (default 2000). Both the deprecated ``page`` and the opaque ``cursor``
(urlsafe base64 of ``{"after": {"id": N}}`` or ``{"before": ...}``) are accepted, ``cursor``
winning; ``links.next`` is always the cursor form and ``null`` on the last page.

Records are rendered to JSON by SQLite itself: one SQL expression per resource builds each
record's text, with the small nested references (``user{id,name}``, ``project{id,name,code}``,
assignments ...) pre-rendered into temporary tables that are rebuilt when the dimensions change.
Time entries, the big table (7.5M rows for the enterprise firm), use a ``printf`` template over a
keyset query on the primary key (``id < cursor ORDER BY id DESC``), which serves several tens of
thousands of records a second on two cores. Every other response (get-one, writes, faults) goes
through the same SQL, so a record reads the same however it is fetched.

Harvest keeps no tombstones: a deleted time entry or expense simply disappears. Incremental
readers (``updated_since``) therefore never learn of deletions by themselves; they need a
periodic full id scan of the list to find them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import math
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.server.errors import harvest_error, json_response
from sandbox.store import Vendor, connect, db_path, transaction

if TYPE_CHECKING:
    from sandbox.server.app import SandboxState

VENDOR: Vendor = "harvest"
STAMP = "%Y-%m-%dT%H:%M:%SZ"
MAX_PER_PAGE = 2000
# A range filter (updated_since, from/to) is served from its index when it selects at most this
# many rows (or an eighth of the table); beyond that a scan in id order is cheaper.
RANGE_INDEX_MAX_ROWS = 50_000
# Lists at least this long keep the store file warm in the OS page cache (see _CacheWarmer).
WARM_MIN_ROWS = 200_000
# Temp tables of ids picked through a range index, kept per reader (see _Reader._picked).
PICK_TABLES = 4
WARM_EVERY_S = 30.0
WARM_STEP_BYTES = 8 << 20
# Upper bound for SQLite's memory-mapped reads (most builds cap it at 2 GB).
MMAP_BYTES = 1 << 34

Handler = Callable[[Request], Awaitable[Response]]


# ---- SQL rendering helpers --------------------------------------------------------------------


def _bool(expr: str) -> str:
    """A 0/1 column as a JSON boolean inside ``json_object``."""
    return f"json(iif({expr}, 'true', 'false'))"


def _frag(expr: str) -> str:
    """A pre-rendered JSON fragment (text) embedded as JSON inside ``json_object``."""
    return f"json({expr})"


def _obj(*pairs: tuple[str, str]) -> str:
    """``json_object('k', expr, ...)`` from (key, SQL expression) pairs."""
    return "json_object(" + ", ".join(f"'{k}', {v}" for k, v in pairs) + ")"


# Nested references, rendered once per dimension change into temp tables (id -> JSON text).
REF_TABLES: dict[str, tuple[str, str]] = {
    "hv_ref_user": ("users", _obj(("id", "id"), ("name", "first_name || ' ' || last_name"))),
    "hv_ref_client": ("clients", _obj(("id", "id"), ("name", "name"), ("currency", "currency"))),
    "hv_ref_project": ("projects", _obj(("id", "id"), ("name", "name"), ("code", "code"))),
    "hv_ref_task": ("tasks", _obj(("id", "id"), ("name", "name"))),
    "hv_ref_category": (
        "expense_categories",
        _obj(("id", "id"), ("name", "name"), ("unit_price", "unit_price"),
             ("unit_name", "unit_name")),
    ),
    "hv_ref_user_assignment": (
        "user_assignments",
        _obj(("id", "id"), ("is_project_manager", _bool("is_project_manager")),
             ("is_active", _bool("is_active")), ("use_default_rates", _bool("use_default_rates")),
             ("budget", "budget"), ("created_at", "created_at"), ("updated_at", "updated_at"),
             ("hourly_rate", "hourly_rate")),
    ),
    "hv_ref_task_assignment": (
        "task_assignments",
        _obj(("id", "id"), ("billable", _bool("billable")), ("is_active", _bool("is_active")),
             ("created_at", "created_at"), ("updated_at", "updated_at"),
             ("hourly_rate", "hourly_rate"), ("budget", "budget")),
    ),
}
DIM_TABLES = ("users", "clients", "projects", "tasks", "expense_categories", "user_assignments",
              "task_assignments")


def _printf(pairs: list[tuple[str, str, str]]) -> str:
    """A ``printf`` building one JSON object from (key, format, SQL expression) triples."""
    fmt = "{" + ",".join(f'"{key}":{spec}' for key, spec, _ in pairs) + "}"
    return f"printf('{fmt}', " + ", ".join(expr for _, _, expr in pairs) + ")"


def _pb(expr: str) -> str:
    return f"iif({expr}, 'true', 'false')"


def _pq(expr: str) -> str:
    """Nullable text for printf; the ``iif`` skips a function call for the usual NULL."""
    return f"iif({expr} is null, 'null', json_quote({expr}))"


def _pn(expr: str) -> str:
    """A nullable number (or JSON text) for printf: SQLite renders REALs as ``%!.15g``."""
    return f"coalesce({expr}, 'null')"


# The time entry template: the hot path. Dates and stamps are NOT NULL text in a fixed format
# (store conventions), so they are quoted directly; free text goes through json_quote.
TIME_ENTRY_FIELDS = [
    ("id", "%d", "te.id"),
    ("spent_date", '"%s"', "te.spent_date"),
    ("user", "%s", _pn("ru.j")),
    ("client", "%s", _pn("rc.j")),
    ("project", "%s", _pn("rp.j")),
    ("task", "%s", _pn("rt.j")),
    ("user_assignment", "%s", _pn("rua.j")),
    ("task_assignment", "%s", _pn("rta.j")),
    ("hours", "%s", _pn("te.hours")),
    ("hours_without_timer", "%s", _pn("te.hours_without_timer")),
    ("rounded_hours", "%s", _pn("te.rounded_hours")),
    ("notes", "%s", "json_quote(te.notes)"),
    ("created_at", '"%s"', "te.created_at"),
    ("updated_at", '"%s"', "te.updated_at"),
    ("is_locked", "%s", _pb("te.is_locked")),
    ("locked_reason", "%s", _pq("te.locked_reason")),
    ("is_closed", "%s", _pb("te.is_closed")),
    ("is_billed", "%s", _pb("te.is_billed")),
    ("timer_started_at", "%s", _pq("te.timer_started_at")),
    ("started_time", "%s", _pq("te.started_time")),
    ("ended_time", "%s", _pq("te.ended_time")),
    ("is_running", "%s", _pb("te.is_running")),
    ("invoice", "%s", "iif(te.invoice_id is null, 'null', printf('{\"id\":%d,\"number\":%s}', "
                      "te.invoice_id, json_quote(te.invoice_number)))"),
    ("external_reference", "%s", _pn("te.external_reference")),
    ("billable", "%s", _pb("te.billable")),
    ("budgeted", "%s", _pb("te.budgeted")),
    ("billable_rate", "%s", _pn("te.billable_rate")),
    ("cost_rate", "%s", _pn("te.cost_rate")),
]
TIME_ENTRY_JSON = _printf(TIME_ENTRY_FIELDS)
TIME_ENTRY_JOINS = """
left join temp.hv_ref_user ru on ru.id = te.user_id
left join temp.hv_ref_client rc on rc.id = te.client_id
left join temp.hv_ref_project rp on rp.id = te.project_id
left join temp.hv_ref_task rt on rt.id = te.task_id
left join temp.hv_ref_user_assignment rua on rua.id = te.user_assignment_id
left join temp.hv_ref_task_assignment rta on rta.id = te.task_assignment_id"""

EXPENSE_JSON = _obj(
    ("id", "ex.id"), ("notes", "ex.notes"), ("total_cost", "ex.total_cost"),
    ("units", "ex.units"), ("is_closed", _bool("ex.is_closed")),
    ("is_locked", _bool("ex.is_locked")), ("is_billed", _bool("ex.is_billed")),
    ("locked_reason", "ex.locked_reason"), ("spent_date", "ex.spent_date"),
    ("created_at", "ex.created_at"), ("updated_at", "ex.updated_at"),
    ("billable", _bool("ex.billable")), ("receipt", "json(ex.receipt)"),
    ("user", _frag("ru.j")), ("user_assignment", _frag("rua.j")),
    ("project", _frag("rp.j")), ("expense_category", _frag("rcat.j")),
    ("client", _frag("rc.j")),
    ("invoice", "iif(ex.invoice_id is null, null, json_object('id', ex.invoice_id, "
                "'number', ex.invoice_number))"),
)
EXPENSE_JOINS = """
left join temp.hv_ref_user ru on ru.id = ex.user_id
left join temp.hv_ref_client rc on rc.id = ex.client_id
left join temp.hv_ref_project rp on rp.id = ex.project_id
left join temp.hv_ref_category rcat on rcat.id = ex.expense_category_id
left join temp.hv_ref_user_assignment rua on rua.id = ex.user_assignment_id"""


# ---- resources --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """One list query parameter: how to parse it and the SQL condition it adds."""

    kind: str  # int | bool | since | date | text
    sql: str  # condition with one ``?``
    range_column: str | None = None  # set for range filters that have a serving index


@dataclass(frozen=True)
class Resource:
    """A listable Harvest resource backed by one table."""

    name: str  # envelope key and path segment
    table: str
    alias: str
    render: str  # SQL expression: the record's JSON text
    joins: str = ""
    filters: Mapping[str, Filter] = field(default_factory=dict)
    # range column -> the index that serves it (created by store.create_indexes)
    range_indexes: Mapping[str, str] = field(default_factory=dict)
    # equality filters whose index is (column, id): they keep id order, so win over ranges
    ordered_filters: tuple[str, ...] = ()
    id_param: str = "id"


def _common(alias: str) -> dict[str, Filter]:
    return {
        "is_active": Filter("bool", f"{alias}.is_active = ?"),
        "updated_since": Filter("since", f"{alias}.updated_at >= ?", "updated_at"),
    }


CLIENT_JSON = _obj(
    ("id", "c.id"), ("name", "c.name"), ("is_active", _bool("c.is_active")),
    ("address", "c.address"), ("statement_key", "c.statement_key"),
    ("created_at", "c.created_at"), ("updated_at", "c.updated_at"), ("currency", "c.currency"),
)
USER_JSON = _obj(
    ("id", "u.id"), ("first_name", "u.first_name"), ("last_name", "u.last_name"),
    ("email", "u.email"), ("telephone", "u.telephone"), ("timezone", "u.timezone"),
    ("has_access_to_all_future_projects", _bool("u.has_access_to_all_future_projects")),
    ("is_contractor", _bool("u.is_contractor")), ("is_active", _bool("u.is_active")),
    ("weekly_capacity", "u.weekly_capacity"), ("default_hourly_rate", "u.default_hourly_rate"),
    ("cost_rate", "u.cost_rate"), ("roles", "json(u.roles)"),
    ("access_roles", "json(u.access_roles)"), ("avatar_url", "u.avatar_url"),
    ("created_at", "u.created_at"), ("updated_at", "u.updated_at"),
)
PROJECT_JSON = _obj(
    ("id", "p.id"), ("name", "p.name"), ("code", "p.code"), ("is_active", _bool("p.is_active")),
    ("is_billable", _bool("p.is_billable")), ("is_fixed_fee", _bool("p.is_fixed_fee")),
    ("bill_by", "p.bill_by"), ("budget", "p.budget"), ("budget_by", "p.budget_by"),
    ("budget_is_monthly", _bool("p.budget_is_monthly")),
    ("notify_when_over_budget", _bool("p.notify_when_over_budget")),
    ("over_budget_notification_percentage", "p.over_budget_notification_percentage"),
    ("over_budget_notification_date", "null"),
    ("show_budget_to_all", _bool("p.show_budget_to_all")),
    ("created_at", "p.created_at"), ("updated_at", "p.updated_at"),
    ("starts_on", "p.starts_on"), ("ends_on", "p.ends_on"), ("notes", "p.notes"),
    ("cost_budget", "p.cost_budget"),
    ("cost_budget_include_expenses", _bool("p.cost_budget_include_expenses")),
    ("hourly_rate", "p.hourly_rate"), ("fee", "p.fee"), ("client", _frag("rc.j")),
)
TASK_JSON = _obj(
    ("id", "t.id"), ("name", "t.name"), ("billable_by_default", _bool("t.billable_by_default")),
    ("default_hourly_rate", "t.default_hourly_rate"), ("is_default", _bool("t.is_default")),
    ("is_active", _bool("t.is_active")), ("created_at", "t.created_at"),
    ("updated_at", "t.updated_at"),
)
TASK_ASSIGNMENT_JSON = _obj(
    ("id", "ta.id"), ("billable", _bool("ta.billable")), ("is_active", _bool("ta.is_active")),
    ("created_at", "ta.created_at"), ("updated_at", "ta.updated_at"),
    ("hourly_rate", "ta.hourly_rate"), ("budget", "ta.budget"),
    ("project", _frag("rp.j")), ("task", _frag("rt.j")),
)
USER_ASSIGNMENT_JSON = _obj(
    ("id", "ua.id"), ("is_project_manager", _bool("ua.is_project_manager")),
    ("is_active", _bool("ua.is_active")), ("use_default_rates", _bool("ua.use_default_rates")),
    ("budget", "ua.budget"), ("created_at", "ua.created_at"), ("updated_at", "ua.updated_at"),
    ("hourly_rate", "ua.hourly_rate"), ("project", _frag("rp.j")), ("user", _frag("ru.j")),
)
CATEGORY_JSON = _obj(
    ("id", "ec.id"), ("name", "ec.name"), ("unit_price", "ec.unit_price"),
    ("unit_name", "ec.unit_name"), ("is_active", _bool("ec.is_active")),
    ("created_at", "ec.created_at"), ("updated_at", "ec.updated_at"),
)

RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource("clients", "clients", "c", CLIENT_JSON, filters=_common("c"),
                 id_param="client_id"),
        Resource("users", "users", "u", USER_JSON, filters=_common("u"), id_param="user_id"),
        Resource(
            "projects", "projects", "p", PROJECT_JSON,
            "left join temp.hv_ref_client rc on rc.id = p.client_id",
            {**_common("p"), "client_id": Filter("int", "p.client_id = ?")},
            range_indexes={"updated_at": "projects_by_updated"}, id_param="project_id",
        ),
        Resource("tasks", "tasks", "t", TASK_JSON, filters=_common("t"), id_param="task_id"),
        Resource(
            "task_assignments", "task_assignments", "ta", TASK_ASSIGNMENT_JSON,
            "left join temp.hv_ref_project rp on rp.id = ta.project_id\n"
            "left join temp.hv_ref_task rt on rt.id = ta.task_id",
            _common("ta"), id_param="task_assignment_id",
        ),
        Resource(
            "user_assignments", "user_assignments", "ua", USER_ASSIGNMENT_JSON,
            "left join temp.hv_ref_project rp on rp.id = ua.project_id\n"
            "left join temp.hv_ref_user ru on ru.id = ua.user_id",
            {**_common("ua"), "user_id": Filter("int", "ua.user_id = ?")},
            id_param="user_assignment_id",
        ),
        Resource(
            "time_entries", "time_entries", "te", TIME_ENTRY_JSON, TIME_ENTRY_JOINS,
            {
                "user_id": Filter("int", "te.user_id = ?"),
                "client_id": Filter("int", "te.client_id = ?"),
                "project_id": Filter("int", "te.project_id = ?"),
                "task_id": Filter("int", "te.task_id = ?"),
                "external_reference_id": Filter(
                    "text", "cast(json_extract(te.external_reference, '$.id') as text) = ?"
                ),
                "is_billed": Filter("bool", "te.is_billed = ?"),
                "is_running": Filter("bool", "te.is_running = ?"),
                "updated_since": Filter("since", "te.updated_at >= ?", "updated_at"),
                "from": Filter("date", "te.spent_date >= ?", "spent_date"),
                "to": Filter("date", "te.spent_date <= ?", "spent_date"),
            },
            range_indexes={"updated_at": "time_entries_by_updated",
                           "spent_date": "time_entries_by_spent"},
            ordered_filters=("project_id", "user_id"),
            id_param="entry_id",
        ),
        Resource(
            "expenses", "expenses", "ex", EXPENSE_JSON, EXPENSE_JOINS,
            {
                "user_id": Filter("int", "ex.user_id = ?"),
                "client_id": Filter("int", "ex.client_id = ?"),
                "project_id": Filter("int", "ex.project_id = ?"),
                "is_billed": Filter("bool", "ex.is_billed = ?"),
                "updated_since": Filter("since", "ex.updated_at >= ?", "updated_at"),
                "from": Filter("date", "ex.spent_date >= ?"),
                "to": Filter("date", "ex.spent_date <= ?"),
            },
            range_indexes={"updated_at": "expenses_by_updated"},
            id_param="expense_id",
        ),
        Resource("expense_categories", "expense_categories", "ec", CATEGORY_JSON,
                 filters=_common("ec"), id_param="expense_category_id"),
    )
}

# ``GET /v2/invoices`` answers an empty list, but checks its parameters like the others.
INVOICE_FILTERS: dict[str, Filter] = {
    "client_id": Filter("int", ""),
    "project_id": Filter("int", ""),
    "updated_since": Filter("since", ""),
    "from": Filter("date", ""),
    "to": Filter("date", ""),
    "state": Filter("text", ""),
}

COMPANY_DEFAULTS: dict[str, Any] = {
    "currency_code_display": "iso_code_none",
    "currency_symbol_display": "symbol_before",
    "decimal_symbol": ".",
    "thousands_separator": ",",
    "color_scheme": "orange",
}


class HarvestError(Exception):
    """A request the emulator answers with a Harvest error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---- parsing ----------------------------------------------------------------------------------


def _parse_int(name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise HarvestError(422, f"{name} must be an integer")
    if isinstance(raw, int):
        return raw
    try:
        return int(str(raw).strip())
    except ValueError:
        raise HarvestError(422, f"{name} must be an integer, got {raw!r}") from None


def _parse_bool(name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        return int(raw)
    text = str(raw).strip().lower()
    if text in ("true", "1", "t", "yes"):
        return 1
    if text in ("false", "0", "f", "no"):
        return 0
    raise HarvestError(422, f"{name} must be true or false, got {raw!r}")


def parse_since(raw: str) -> str:
    """An ISO 8601 date-time (or date) as the stored stamp format, floored to the second.

    Raises:
        HarvestError: 422 when the value is not ISO 8601.
    """
    text = raw.strip()
    if len(text) > 19 and text[-6] == " ":
        text = text[:-6] + "+" + text[-5:]  # an unencoded "+" in the offset arrives as a space
    try:
        value = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise HarvestError(
            422, f"updated_since must be an ISO 8601 date-time, got {raw!r}"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime(STAMP)


def _parse_date(name: str, raw: Any) -> str:
    try:
        return dt.date.fromisoformat(str(raw).strip()[:10]).isoformat()
    except ValueError:
        raise HarvestError(422, f"{name} must be a date (YYYY-MM-DD), got {raw!r}") from None


def _parse_number(name: str, raw: Any) -> float:
    if isinstance(raw, bool):
        raise HarvestError(422, f"{name} must be a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise HarvestError(422, f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise HarvestError(422, f"{name} must be a finite number")
    return value


def _filter_value(name: str, flt: Filter, raw: str) -> Any:
    if flt.kind == "int":
        return _parse_int(name, raw)
    if flt.kind == "bool":
        return _parse_bool(name, raw)
    if flt.kind == "since":
        return parse_since(raw)
    if flt.kind == "date":
        return _parse_date(name, raw)
    return raw


def encode_cursor(direction: str, record_id: int) -> str:
    """Harvest's opaque cursor: urlsafe base64 (unpadded) of ``{"after": {"id": N}}``."""
    raw = orjson.dumps({direction: {"id": record_id}})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """(``after`` | ``before``, id) from a cursor.

    Raises:
        HarvestError: 422 when the cursor is not one this server issued.
    """
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        ((direction, position),) = data.items()
        record_id = position["id"]
        if direction not in ("after", "before") or not isinstance(record_id, int) or not (
            -(2**63) <= record_id < 2**63
        ):
            raise ValueError(cursor)
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error,
            orjson.JSONDecodeError):
        raise HarvestError(422, "Invalid cursor") from None
    return direction, record_id


@dataclass
class ListQuery:
    """A parsed list request: page size, position and filters."""

    per_page: int
    page: int | None  # page mode (the default, page 1)
    direction: str | None  # cursor mode: after | before
    cursor_id: int | None
    filters: dict[str, Any]  # name -> parsed value
    raw_filters: dict[str, str]  # name -> the value as the client sent it (for links)


def parse_list_query(request: Request, filters: Mapping[str, Filter]) -> ListQuery:
    """Read ``per_page``, ``page``/``cursor`` and the resource's filters from the query string.

    Raises:
        HarvestError: 422 for out-of-range or unparsable values.
    """
    params = request.query_params
    raw_per_page = params.get("per_page")
    per_page = MAX_PER_PAGE
    if raw_per_page not in (None, ""):
        per_page = _parse_int("per_page", raw_per_page)
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise HarvestError(422, f"per_page must be between 1 and {MAX_PER_PAGE}")
    direction = cursor_id = page = None
    cursor = params.get("cursor")
    if cursor:
        direction, cursor_id = decode_cursor(cursor)
    else:
        page = 1
        raw_page = params.get("page")
        if raw_page not in (None, ""):
            page = _parse_int("page", raw_page)
            if not 1 <= page <= 2**31:
                raise HarvestError(422, "page must be 1 or more")
    parsed: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for name, flt in filters.items():
        value = params.get(name)
        if value is None or value == "":
            continue
        parsed[name] = _filter_value(name, flt, value)
        raw[name] = value
    return ListQuery(per_page, page, direction, cursor_id, parsed, raw)


async def _read_body(request: Request) -> dict[str, Any]:
    """A POST/PATCH body: JSON or form data (``external_reference[id]=...`` nests)."""
    body = await request.body()
    if not body.strip():
        return {}
    ctype = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in ctype:
        data: dict[str, Any] = {}
        for key, value in urllib.parse.parse_qsl(body.decode(), keep_blank_values=True):
            if "[" in key and key.endswith("]"):
                outer, inner = key[:-1].split("[", 1)
                data.setdefault(outer, {})[inner] = value
            else:
                data[key] = value
        return data
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise HarvestError(400, "There was a problem in the JSON you submitted") from None
    if not isinstance(parsed, dict):
        raise HarvestError(400, "There was a problem in the JSON you submitted")
    return parsed


# ---- the API ----------------------------------------------------------------------------------


@dataclass
class PageRows:
    """What one list query found: the page's records and where the page sits in the list."""

    records: bytes  # the records' JSON, comma-separated, in list order (newest first)
    count: int  # records on the page
    first_id: int | None  # id of the first record on the page
    last_id: int | None  # id of the last record on the page
    total: int
    more: bool  # another row follows in the direction read
    has_next: bool  # a next page exists (links.next)
    generation: int  # state.generation when the read started


class _Reader:
    """One SQLite connection that renders records, with its temp reference tables.

    Temp tables belong to a connection, so each connection that renders records has a reader:
    the event loop's (``state.db``: single records and writes) and the page worker's (lists).
    """

    def __init__(self, state: SandboxState, connect: Callable[[], sqlite3.Connection]) -> None:
        self.state = state
        self._connect = connect
        self._con: sqlite3.Connection | None = None
        self._refs_key: tuple[int, int] | None = None
        self._refs_fingerprint: tuple[Any, ...] | None = None
        self._schema_key: tuple[int, int] | None = None
        self._indexes: set[str] = set()
        self._counts: dict[tuple[Any, ...], tuple[int, int]] = {}
        self._picks: dict[tuple[Any, ...], tuple[int, str]] = {}
        self._pick_serial = 0

    def cursor(self) -> sqlite3.Cursor:
        """A cursor returning plain tuples (cheaper than ``sqlite3.Row`` on the hot path)."""
        if self._con is None:
            self._con = self._connect()
            # Temp tables (the references) in memory, room for the index interior pages, and
            # reads through mmap: a page fault reads around the page, so walking the table
            # backwards (newest first) on a cold file is not one 4 kB read per page.
            self._con.execute("pragma temp_store = memory")
            self._con.execute("pragma cache_size = -65536")
            self._con.execute(f"pragma mmap_size = {MMAP_BYTES}")
        cur = self._con.cursor()
        cur.row_factory = None
        return cur

    def version(self) -> int:
        """``PRAGMA data_version``: moves whenever another connection commits to the store.

        This connection never writes the main database, so for the page worker's reader it
        tracks every change of ``harvest.sqlite`` exactly (the event loop's writes included),
        and none of the other vendors' writes.
        """
        return int(self.cursor().execute("pragma data_version").fetchone()[0])

    def _key(self, version: int) -> tuple[int, int]:
        return (version, self.state.generation)

    def ensure_refs(self, version: int) -> None:
        """(Re)build the temp reference tables when the dimensions may have changed.

        Checked when the store's data version or ``state.generation`` moved; rebuilt only if a
        dimension table's row count or latest ``updated_at`` changed (writing time entries
        leaves them as they are).
        """
        key = self._key(version)
        if key == self._refs_key:
            return
        cur = self.cursor()
        fingerprint = cur.execute(
            "select "
            + ", ".join(f"(select count(*) || '|' || ifnull(max(updated_at), '') from {t})"
                        for t in DIM_TABLES)
        ).fetchone()
        if fingerprint != self._refs_fingerprint:
            for name, (source, expr) in REF_TABLES.items():
                cur.execute(f"drop table if exists temp.{name}")
                cur.execute(f"create temp table {name} (id integer primary key, j text not null)")
                cur.execute(f"insert into temp.{name} select id, {expr} from main.{source}")
            self._refs_fingerprint = fingerprint
        self._refs_key = key

    def has_index(self, name: str, version: int) -> bool:
        """Whether the store has a serving index (stores without create_indexes lack them)."""
        key = self._key(version)
        if self._schema_key != key:
            self._indexes = {
                row[0] for row in self.cursor().execute(
                    "select name from sqlite_master where type = 'index'"
                )
            }
            self._schema_key = key
        return name in self._indexes

    def count(self, res: Resource, conds: list[str], args: list[Any],
              key: tuple[Any, ...], version: int) -> int:
        """``total_entries``, cached per (resource, filters) until the store changes.

        Keyed on the data version rather than ``state.generation``, so paging 3,750 pages of
        7.5M entries counts once, even while another vendor's API is being written to.
        """
        cached = self._counts.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        where = (" where " + " and ".join(conds)) if conds else ""
        sql = f"select count(*) from {res.table} {res.alias}{where}"
        total = int(self.cursor().execute(sql, args).fetchone()[0])
        if len(self._counts) > 256:
            self._counts.clear()
        self._counts[key] = (version, total)
        return total

    def _table_size(self, res: Resource) -> int:
        """About how many rows the table holds (its id span; no full count)."""
        row = self.cursor().execute(
            f"select ifnull((select max(id) from {res.table}) - (select min(id) from {res.table})"
            " + 1, 0)"
        ).fetchone()
        return int(row[0])

    def _range_index(self, res: Resource, query: ListQuery, total: int,
                     version: int) -> tuple[str | None, set[str]]:
        """Whether a range filter should be read through its index.

        Returns the index to use (or None) and the range columns to check row by row. Equality
        filters with a (column, id) index keep id order, so they win. A range filter
        (updated_since, from/to) goes through its index unless it selects a large part of the
        table; then a scan in id order checking the range per row is cheaper.
        """
        ranged = {
            col for name in query.filters
            if (col := res.filters[name].range_column) is not None and col in res.range_indexes
        }
        if not ranged or any(name in query.filters for name in res.ordered_filters):
            return None, ranged
        column = "updated_at" if "updated_at" in ranged else sorted(ranged)[0]
        index = res.range_indexes[column]
        if self.has_index(index, version) and (
            total <= RANGE_INDEX_MAX_ROWS or total * 8 <= self._table_size(res)
        ):
            return index, ranged - {column}
        return None, ranged

    def _picked(self, res: Resource, index: str, conds: list[str], args: list[Any],
                key: tuple[Any, ...], version: int) -> str:
        """A temp table of the ids a range filter selects, built once per filters and version.

        The range index is in (value, id) order, not id order; reading pages from it directly
        would sort every match on every page. The temp table holds the matches by id, so each
        page is a short keyset read on it.
        """
        found = self._picks.pop(key, None)
        if found is not None and found[0] == version:
            self._picks[key] = found
            return found[1]
        cur = self.cursor()
        if found is not None:
            cur.execute(f"drop table if exists temp.{found[1]}")
        while len(self._picks) >= PICK_TABLES:
            _, name = self._picks.pop(next(iter(self._picks)))
            cur.execute(f"drop table if exists temp.{name}")
        self._pick_serial += 1
        name = f"hv_pick_{self._pick_serial}"
        alias = res.alias
        cur.execute(f"create temp table {name} (id integer primary key)")
        cur.execute(
            f"insert into temp.{name} select {alias}.id from {res.table} {alias} "
            f"indexed by {index} where {' and '.join(conds)} order by {alias}.id",
            args,
        )
        self._picks[key] = (version, name)
        return name

    def page(self, res: Resource, query: ListQuery, extra: list[tuple[str, Any]]) -> PageRows:
        """Read one list page: the count, then a keyset (or offset) read in id order.

        One statement renders the whole page (so this worker takes the GIL once per page, not
        once per row); a second one looks for a row beyond the page.
        """
        generation = self.state.generation
        version = self.version()
        self.ensure_refs(version)
        alias = res.alias
        conds = [sql for sql, _ in extra] + [res.filters[n].sql for n in query.filters]
        args = [value for _, value in extra] + list(query.filters.values())
        key = (res.name, tuple(extra), tuple(sorted(query.filters.items())))
        total = self.count(res, conds, args, key, version)
        index, checked = self._range_index(res, query, total, version)
        for col in checked:  # ``+column``: checked per row, keeps SQLite off that index
            conds = [f"+{c}" if c.startswith(f"{alias}.{col} ") else c for c in conds]
        if index is not None:
            source = f"temp.{self._picked(res, index, conds, args, key, version)} as pick"
            idcol = "pick.id"
            conds, args = [], []
        else:
            source = f"{res.table} {alias}"
            idcol = f"{alias}.id"
        direction = query.direction
        order = "asc" if direction == "before" else "desc"
        page_conds, page_args = list(conds), list(args)
        if direction is not None:
            page_conds.append(f"{idcol} {'<' if direction == 'after' else '>'} ?")
            page_args.append(query.cursor_id)
        where = (" where " + " and ".join(page_conds)) if page_conds else ""
        limit = "limit ?"
        page_args.append(query.per_page)
        if query.page is not None and query.page > 1:
            limit += " offset ?"
            page_args.append((query.page - 1) * query.per_page)
        if index is not None:
            inner = (
                f"select {res.render} as j, {alias}.id as id from (select {idcol} from {source}"
                f"{where} order by {idcol} {order} {limit}) as picked join {res.table} {alias} on "
                f"{alias}.id = picked.id {res.joins} order by {alias}.id {order}"
                f" limit {query.per_page}"
            )
        else:
            inner = (
                f"select {res.render} as j, {alias}.id as id from {source} {res.joins}{where}"
                f" order by {alias}.id {order} {limit}"
            )
        if direction == "before":
            # (the LIMIT keeps SQLite from dropping an ORDER BY that group_concat relies on)
            inner = f"select j, id from ({inner}) order by id desc limit {query.per_page}"
        body, count, first_id, last_id = self.cursor().execute(
            "select cast(ifnull(group_concat(j, ','), '') as blob), count(*), max(id), min(id) "
            f"from ({inner})",
            page_args,
        ).fetchone()

        def beyond(op: str, record_id: int | None) -> bool:
            if record_id is None:
                return False
            found = self.cursor().execute(
                f"select 1 from {source} where "
                + " and ".join([*conds, f"{idcol} {op} ?"])
                + f" order by {idcol} {'desc' if op == '<' else 'asc'} limit 1",  # start nearby
                [*args, record_id],
            ).fetchone()
            return found is not None

        has_next = beyond("<", last_id)
        # ``more``: another row follows in the direction read (older rows; for a ``before``
        # page, newer ones).
        more = beyond(">", first_id) if direction == "before" else has_next
        return PageRows(body, count, first_id, last_id, total, more, has_next, generation)

    def render_one(self, res: Resource, record_id: int) -> str | None:
        """One record's JSON text, or None when absent."""
        self.ensure_refs(self.version())
        row = self.cursor().execute(
            f"select {res.render} from {res.table} {res.alias} {res.joins} "
            f"where {res.alias}.id = ?",
            (record_id,),
        ).fetchone()
        return None if row is None else str(row[0])


class _CacheWarmer:
    """Keeps the store file in the OS page cache while a big list is being paged.

    Pages of time entries walk the table backwards (newest first), which defeats the kernel's
    readahead, and some VMs (the reference machine among them) reclaim the page cache within
    minutes. So while a large list is being read, a daemon thread asks the kernel every
    ``WARM_EVERY_S`` seconds to read the file ahead (``posix_fadvise(WILLNEED)``), from its end
    (the newest rows) to its start. A hint only: nothing else depends on it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last = -math.inf
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """Start a warming pass unless one ran recently (cheap; called once per page)."""
        now = time.monotonic()
        if now - self._last < WARM_EVERY_S or not hasattr(os, "posix_fadvise"):
            return
        self._last = now
        self._thread = threading.Thread(target=self._warm, name="pslake-harvest-warm",
                                        daemon=True)
        self._thread.start()

    def _warm(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            size = os.fstat(fd).st_size
            if size > _physical_memory() // 2:
                return  # would only evict itself
            for end in range(size, 0, -WARM_STEP_BYTES):
                start = max(0, end - WARM_STEP_BYTES)
                os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_WILLNEED)
        except OSError:
            return
        finally:
            os.close(fd)


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


# Lists are read on one worker thread with its own connection, so that the next page can be
# rendered while the current one travels to the client (SQLite releases the GIL while it steps).
_PAGE_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pslake-harvest-pages")
_PREFETCH_SLOTS = 8


class HarvestApi:
    """The Harvest emulator's state and handlers (one per app)."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.reader = _Reader(state, lambda: state.db(VENDOR))
        self.page_reader = _Reader(state, lambda: connect(state.store_dir, VENDOR))
        self._warmer = _CacheWarmer(db_path(state.store_dir, VENDOR))
        self._prefetched: dict[tuple[Any, ...], Future[PageRows]] = {}

    # -- store access --

    @property
    def con(self) -> sqlite3.Connection:
        """The Harvest store connection of the event loop (reads of single rows, writes)."""
        return self.state.db(VENDOR)

    # -- listing --

    async def list_page(
        self,
        request: Request,
        res: Resource,
        path: str,
        extra: list[tuple[str, Any]] | None = None,
    ) -> Response:
        """One page of a list endpoint in Harvest's envelope.

        Args:
            request: The request (query string: per_page, page/cursor, filters).
            res: The resource listed.
            path: The list path after ``/v2/`` (for the links).
            extra: Conditions from the path, e.g. the project of a nested assignment list.
        """
        query = parse_list_query(request, res.filters)
        extra = extra or []
        state = self.state
        found = self._prefetched.pop(_page_key(res, path, query), None)
        result: PageRows | None = None
        if found is not None:
            try:
                # through its own name: Future is invariant, so wrap_future(found) assigned to
                # `result` straight away would be checked as a Future[PageRows | None]
                prefetched = await asyncio.wrap_future(found)
                result = prefetched
            except Exception:  # read again below: a real error shows there
                result = None
            if result is not None and result.generation != state.generation:
                result = None  # a write landed since: read again
        if result is None:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(_PAGE_WORKER, self.page_reader.page, res, query,
                                                extra)
        if result.has_next and query.direction != "before" and result.last_id is not None:
            self._prefetch(res, path, replace(query, page=None, direction="after",
                                              cursor_id=result.last_id), extra)
        if result.total >= WARM_MIN_ROWS:
            self._warmer.poke()
        faults = state.faults
        faults.page_served(VENDOR)  # before shaping: drift starts on page drift_after + 1
        records = result.records
        if faults.record_faults_on(VENDOR):
            shaped = orjson.loads(b"[" + records + b"]")
            for record in shaped:
                faults.shape_record(VENDOR, res.name, record, record.get("id"))
            records = orjson.dumps(shaped)[1:-1]
        state.stats.records_served[VENDOR] += result.count
        meta = self._envelope_meta(request, path, query, result.total, result.first_id,
                                   result.last_id, result.has_next, result.more)
        return Response(
            b'{"' + res.name.encode() + b'":[' + records + b"]," + orjson.dumps(meta)[1:],
            media_type="application/json",
        )

    def _prefetch(self, res: Resource, path: str, query: ListQuery,
                  extra: list[tuple[str, Any]]) -> None:
        """Start reading the page a sequential client will ask for next."""
        while len(self._prefetched) >= _PREFETCH_SLOTS:
            self._prefetched.pop(next(iter(self._prefetched))).cancel()
        self._prefetched[_page_key(res, path, query)] = _PAGE_WORKER.submit(
            self.page_reader.page, res, query, extra
        )

    def _envelope_meta(
        self,
        request: Request,
        path: str,
        query: ListQuery,
        total: int,
        first_id: int | None,
        last_id: int | None,
        has_next: bool,
        more: bool,
    ) -> dict[str, Any]:
        """The envelope fields after the records: counts, page numbers and links."""
        per_page = query.per_page
        total_pages = math.ceil(total / per_page)
        base = self.state.vendor_base(request, VENDOR) + "/v2/" + path

        def link(**params: Any) -> str:
            merged = {**query.raw_filters, **{k: str(v) for k, v in params.items()}}
            return base + "?" + urllib.parse.urlencode(sorted(merged.items()))

        def cursor_link(direction: str, record_id: int) -> str:
            ref = "next_cursor" if direction == "after" else "previous_cursor"
            return link(cursor=encode_cursor(direction, record_id), per_page=per_page, ref=ref)

        page = next_page = previous_page = None
        next_link = cursor_link("after", last_id) if has_next and last_id is not None else None
        previous_link = None
        if query.direction is None:
            # Page mode (the first page, or the deprecated ``page`` parameter).
            assert query.page is not None
            page = query.page
            next_page = page + 1 if page < total_pages else None
            previous_page = page - 1 if page > 1 else None
            if page > 1:
                previous_link = link(page=page - 1, per_page=per_page, ref="previous")
        elif query.direction == "after":
            # Cursor mode: page numbers only on the last page.
            if not has_next:
                page = max(total_pages, 1)
                previous_page = page - 1 if page > 1 else None
            anchor = first_id if first_id is not None else query.cursor_id
            if anchor is not None:
                previous_link = cursor_link("before", anchor)
        else:
            # Following links.previous: page numbers only once back on the first page.
            if more and first_id is not None:
                previous_link = cursor_link("before", first_id)
            else:
                page = 1
                next_page = 2 if total_pages > 1 else None
        return {
            "per_page": per_page,
            "total_pages": total_pages,
            "total_entries": total,
            "next_page": next_page,
            "previous_page": previous_page,
            "page": page,
            "links": {
                "first": link(page=1, per_page=per_page, ref="first"),
                "next": next_link,
                "previous": previous_link,
                "last": link(page=max(total_pages, 1), per_page=per_page, ref="last"),
            },
        }

    # -- single records --

    def render_one(self, res: Resource, record_id: int, *, shape: bool = True) -> bytes | None:
        """One record's JSON (record faults applied when ``shape``), or None when absent."""
        text = self.reader.render_one(res, record_id)
        if text is None:
            return None
        faults = self.state.faults
        if shape and faults.record_faults_on(VENDOR):
            record = orjson.loads(text)
            faults.shape_record(VENDOR, res.name, record, record_id)
            return orjson.dumps(record)
        return text.encode()

    def get_one(self, res: Resource, record_id: int,
                extra: tuple[str, Any] | None = None) -> Response:
        """``GET /v2/<resource>/{id}``: the record or 404."""
        if extra is not None:
            found = self.reader.cursor().execute(
                f"select 1 from {res.table} {res.alias} where {res.alias}.id = ? and {extra[0]}",
                (record_id, extra[1]),
            ).fetchone()
            if found is None:
                raise HarvestError(404, "Not found")
        body = self.render_one(res, record_id)
        if body is None:
            raise HarvestError(404, "Not found")
        return Response(body, media_type="application/json")

    def company(self) -> Response:
        """``GET /v2/company``."""
        row = self.con.execute("select * from company order by id limit 1").fetchone()
        if row is None:
            raise HarvestError(404, "Not found")
        booleans = {"is_active", "wants_timestamp_timers", "expense_feature", "invoice_feature",
                    "estimate_feature", "approval_feature", "team_feature"}
        body = {k: (bool(row[k]) if k in booleans and row[k] is not None else row[k])
                for k in row.keys() if k != "id"}
        return json_response({**body, **COMPANY_DEFAULTS})

    def me(self) -> Response:
        """``GET /v2/users/me``: the first administrator (else the first user)."""
        user_id = self._me_id()
        if user_id is None:
            raise HarvestError(404, "Not found")
        return self.get_one(RESOURCES["users"], user_id)

    def _me_id(self) -> int | None:
        row = self.con.execute(
            "select id from users order by"
            " exists(select 1 from json_each(users.access_roles) where value = 'administrator')"
            " desc, id limit 1"
        ).fetchone()
        return None if row is None else int(row[0])

    def invoices(self, request: Request) -> Response:
        """``GET /v2/invoices``: always empty (the firm invoices in its ERP)."""
        query = parse_list_query(request, INVOICE_FILTERS)
        meta = self._envelope_meta(request, "invoices", query, 0, None, None, False, False)
        self.state.faults.page_served(VENDOR)
        return json_response({"invoices": [], **meta})

    # -- writes --

    def _row(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.con.execute(sql, args).fetchone()
        return row

    def _require(self, table: str, label: str, record_id: int) -> sqlite3.Row:
        row = self._row(f"select * from {table} where id = ?", record_id)
        if row is None:
            raise HarvestError(422, f"{label} with id {record_id} does not exist")
        return row

    def _user_assignment(self, project_id: int, user_id: int) -> sqlite3.Row:
        row = self._row(
            "select * from user_assignments where project_id = ? and user_id = ?"
            " order by is_active desc, id limit 1", project_id, user_id,
        )
        if row is None:
            raise HarvestError(
                422, f"User {user_id} is not assigned to project {project_id}"
            )
        return row

    def _time_entry_links(self, project_id: int, task_id: int, user_id: int) -> dict[str, Any]:
        """The columns Harvest derives from the project, task and user of a time entry."""
        project = self._require("projects", "Project", project_id)
        task = self._require("tasks", "Task", task_id)
        user = self._require("users", "User", user_id)
        ta = self._row(
            "select * from task_assignments where project_id = ? and task_id = ?"
            " order by is_active desc, id limit 1", project_id, task_id,
        )
        if ta is None:
            raise HarvestError(422, f"Task {task_id} is not assigned to project {project_id}")
        ua = self._user_assignment(project_id, user_id)
        billable = bool(ta["billable"]) and bool(project["is_billable"])
        rate: float | None = None
        if billable:
            bill_by = project["bill_by"]
            if bill_by == "Project":
                rate = project["hourly_rate"]
            elif bill_by == "Tasks":
                rate = ta["hourly_rate"] if ta["hourly_rate"] is not None \
                    else task["default_hourly_rate"]
            elif bill_by == "People":
                rate = user["default_hourly_rate"] if ua["use_default_rates"] or \
                    ua["hourly_rate"] is None else ua["hourly_rate"]
        return {
            "user_id": user_id,
            "client_id": project["client_id"],
            "project_id": project_id,
            "task_id": task_id,
            "user_assignment_id": ua["id"],
            "task_assignment_id": ta["id"],
            "billable": int(billable),
            "budgeted": int(project["budget_by"] != "none"),
            "billable_rate": rate,
            "cost_rate": user["cost_rate"],
        }

    def _stamp(self) -> str:
        return self.state.now().strftime(STAMP)

    def _insert(self, table: str, values: dict[str, Any]) -> int:
        con = self.con
        with transaction(con):
            new_id = int(con.execute(f"select ifnull(max(id), 0) + 1 from {table}").fetchone()[0])
            values = {"id": new_id, **values}
            con.execute(
                f"insert into {table} ({', '.join(values)}) values "
                f"({', '.join('?' * len(values))})",
                list(values.values()),
            )
        self.state.wrote()
        return new_id

    def _update(self, table: str, record_id: int, values: dict[str, Any]) -> None:
        con = self.con
        with transaction(con):
            con.execute(
                f"update {table} set {', '.join(f'{k} = ?' for k in values)} where id = ?",
                [*values.values(), record_id],
            )
        self.state.wrote()

    def delete_record(self, res: Resource, record_id: int) -> Response:
        """``DELETE /v2/<resource>/{id}``: 200 with an empty body (Harvest keeps no tombstone)."""
        table = res.table
        con = self.con
        with transaction(con):
            deleted = con.execute(f"delete from {table} where id = ?", (record_id,)).rowcount
        if not deleted:
            raise HarvestError(404, "Not found")
        self.state.wrote()
        return Response(status_code=200)

    def _written(self, res: Resource, record_id: int, status: int) -> Response:
        body = self.render_one(res, record_id, shape=False)
        return Response(body, status_code=status, media_type="application/json")

    async def create_time_entry(self, request: Request) -> Response:
        """``POST /v2/time_entries`` (duration or start/end mode; no hours starts a timer)."""
        body = await _read_body(request)
        missing = [k for k in ("project_id", "task_id", "spent_date") if body.get(k) in (None, "")]
        if missing:
            raise HarvestError(422, ", ".join(f"{k} can't be blank" for k in missing))
        user_id = body.get("user_id")
        if user_id in (None, ""):
            me = self._me_id()
            if me is None:
                raise HarvestError(422, "user_id can't be blank")
            user_id = me
        values = self._time_entry_links(
            _parse_int("project_id", body["project_id"]), _parse_int("task_id", body["task_id"]),
            _parse_int("user_id", user_id),
        )
        stamp = self._stamp()
        hours = _hours(body)
        running = hours is None
        values.update(
            spent_date=_parse_date("spent_date", body["spent_date"]),
            hours=hours or 0.0, hours_without_timer=hours or 0.0, rounded_hours=hours or 0.0,
            notes=_text(body.get("notes")), is_locked=0, locked_reason=None, is_closed=0,
            is_billed=0, timer_started_at=stamp if running else None,
            started_time=_text(body.get("started_time")), ended_time=_text(body.get("ended_time")),
            is_running=int(running),
            external_reference=_external_reference(body.get("external_reference")),
            invoice_id=None, invoice_number=None, created_at=stamp, updated_at=stamp,
        )
        new_id = self._insert("time_entries", values)
        return self._written(RESOURCES["time_entries"], new_id, 201)

    async def update_time_entry(self, request: Request, entry_id: int) -> Response:
        """``PATCH /v2/time_entries/{entry_id}``.

        Writable: project_id, task_id, spent_date, started_time, ended_time, hours, notes and
        external_reference. Anything else (is_closed, is_billed, ...) is not a parameter of this
        endpoint and is ignored, as Harvest ignores unknown parameters.
        """
        body = await _read_body(request)
        current = self._row("select * from time_entries where id = ?", entry_id)
        if current is None:
            raise HarvestError(404, "Not found")
        values: dict[str, Any] = {}
        if "project_id" in body or "task_id" in body:
            values.update(self._time_entry_links(
                _parse_int("project_id", body.get("project_id", current["project_id"])),
                _parse_int("task_id", body.get("task_id", current["task_id"])),
                current["user_id"],
            ))
        if "spent_date" in body:
            values["spent_date"] = _parse_date("spent_date", body["spent_date"])
        for name in ("notes", "started_time", "ended_time"):
            if name in body:
                values[name] = _text(body[name])
        times = {"started_time": current["started_time"], "ended_time": current["ended_time"]}
        hours = _hours({**times, **body}) if {"hours", "started_time", "ended_time"} & set(
            body) else None
        if hours is not None:
            values.update(hours=hours, hours_without_timer=hours, rounded_hours=hours)
        if "external_reference" in body:
            values["external_reference"] = _external_reference(body["external_reference"])
        values["updated_at"] = self._stamp()
        self._update("time_entries", entry_id, values)
        return self._written(RESOURCES["time_entries"], entry_id, 200)

    def timer(self, entry_id: int, action: str) -> Response:
        """``PATCH /v2/time_entries/{entry_id}/stop`` and ``/restart``."""
        current = self._row("select * from time_entries where id = ?", entry_id)
        if current is None:
            raise HarvestError(404, "Not found")
        now = self.state.now()
        stamp = now.strftime(STAMP)
        if action == "stop":
            if not current["is_running"]:
                raise HarvestError(422, "This time entry is not running")
            started_at = current["timer_started_at"]
            started = now if started_at is None else dt.datetime.strptime(
                started_at, STAMP).replace(tzinfo=dt.UTC)
            hours = round(current["hours"] + (now - started).total_seconds() / 3600, 2)
            values: dict[str, Any] = {"is_running": 0, "timer_started_at": None, "hours": hours,
                                      "rounded_hours": hours, "updated_at": stamp}
        else:
            if current["is_running"]:
                raise HarvestError(422, "This time entry is already running")
            values = {"is_running": 1, "timer_started_at": stamp, "updated_at": stamp}
        self._update("time_entries", entry_id, values)
        return self._written(RESOURCES["time_entries"], entry_id, 200)

    def delete_external_reference(self, entry_id: int) -> Response:
        """``DELETE /v2/time_entries/{entry_id}/external_reference``: 200, empty body."""
        if self._row("select 1 from time_entries where id = ?", entry_id) is None:
            raise HarvestError(404, "Not found")
        self._update("time_entries", entry_id,
                     {"external_reference": None, "updated_at": self._stamp()})
        return Response(status_code=200)

    def _expense_values(self, body: Mapping[str, Any], current: sqlite3.Row | None
                        ) -> dict[str, Any]:
        """Validate an expense body and derive client, assignment and total_cost."""
        def pick(name: str) -> Any:
            if name in body:
                return body[name]
            return None if current is None else current[name]

        project_id = _parse_int("project_id", pick("project_id"))
        category_id = _parse_int("expense_category_id", pick("expense_category_id"))
        user_id = pick("user_id")
        if user_id in (None, ""):
            user_id = self._me_id()
        user_id = _parse_int("user_id", user_id)
        project = self._require("projects", "Project", project_id)
        category = self._require("expense_categories", "Expense category", category_id)
        self._require("users", "User", user_id)
        ua = self._user_assignment(project_id, user_id)
        values: dict[str, Any] = {
            "project_id": project_id, "client_id": project["client_id"],
            "expense_category_id": category_id, "user_id": user_id,
            "user_assignment_id": ua["id"],
        }
        if category["unit_price"] is not None:
            raw_units = pick("units")
            units = 1.0 if raw_units in (None, "") else _parse_number("units", raw_units)
            values["units"] = units
            values["total_cost"] = round(units * category["unit_price"], 2)
        else:
            raw_cost = pick("total_cost")
            if raw_cost in (None, ""):
                raise HarvestError(422, "total_cost can't be blank")
            values["units"] = None
            values["total_cost"] = round(_parse_number("total_cost", raw_cost), 2)
        if "spent_date" in body or current is None:
            values["spent_date"] = _parse_date("spent_date", body.get("spent_date"))
        if "notes" in body:
            values["notes"] = _text(body["notes"])
        if "billable" in body:
            values["billable"] = _parse_bool("billable", body["billable"])
        return values

    async def create_expense(self, request: Request) -> Response:
        """``POST /v2/expenses``."""
        body = await _read_body(request)
        missing = [k for k in ("project_id", "expense_category_id", "spent_date")
                   if body.get(k) in (None, "")]
        if missing:
            raise HarvestError(422, ", ".join(f"{k} can't be blank" for k in missing))
        values = self._expense_values(body, None)
        stamp = self._stamp()
        values = {
            "notes": None, "billable": 1, **values, "is_closed": 0, "is_locked": 0,
            "is_billed": 0, "locked_reason": None, "receipt": None, "invoice_id": None,
            "invoice_number": None, "created_at": stamp, "updated_at": stamp,
        }
        new_id = self._insert("expenses", values)
        return self._written(RESOURCES["expenses"], new_id, 201)

    async def update_expense(self, request: Request, expense_id: int) -> Response:
        """``PATCH /v2/expenses/{expense_id}`` (is_closed, is_billed ... are not writable)."""
        body = await _read_body(request)
        current = self._row("select * from expenses where id = ?", expense_id)
        if current is None:
            raise HarvestError(404, "Not found")
        values = self._expense_values(body, current)
        values["updated_at"] = self._stamp()
        self._update("expenses", expense_id, values)
        return self._written(RESOURCES["expenses"], expense_id, 200)

    # -- routing --

    def routes(self) -> list[BaseRoute]:
        """The routes, relative to the ``/harvest`` mount."""
        api = self

        def handler(fn: Callable[[Request], Awaitable[Response]]) -> Handler:
            async def run(request: Request) -> Response:
                try:
                    return await fn(request)
                except HarvestError as exc:
                    return harvest_error(exc.status, exc.message)

            return run

        def list_route(res: Resource) -> Route:
            async def listing(request: Request) -> Response:
                if request.method == "POST":
                    if res.name == "time_entries":
                        return await api.create_time_entry(request)
                    return await api.create_expense(request)
                return await api.list_page(request, res, res.name)

            methods = ["GET", "POST"] if res.name in ("time_entries", "expenses") else ["GET"]
            return Route(f"/v2/{res.name}", handler(listing), methods=methods)

        def one_route(res: Resource) -> Route:
            async def one(request: Request) -> Response:
                record_id = int(request.path_params[res.id_param])
                if request.method == "GET":
                    return api.get_one(res, record_id)
                if request.method == "DELETE":
                    return api.delete_record(res, record_id)
                if res.name == "time_entries":
                    return await api.update_time_entry(request, record_id)
                return await api.update_expense(request, record_id)

            methods = (["GET", "PATCH", "DELETE"] if res.name in ("time_entries", "expenses")
                       else ["GET"])
            return Route(f"/v2/{res.name}/{{{res.id_param}:int}}", handler(one), methods=methods)

        def nested(name: str) -> list[Route]:
            res = RESOURCES[name]

            async def listing(request: Request) -> Response:
                project_id = int(request.path_params["project_id"])
                if api._row("select 1 from projects where id = ?", project_id) is None:
                    raise HarvestError(404, "Not found")
                return await api.list_page(request, res, f"projects/{project_id}/{name}",
                                     [(f"{res.alias}.project_id = ?", project_id)])

            async def one(request: Request) -> Response:
                return api.get_one(res, int(request.path_params[res.id_param]),
                                   (f"{res.alias}.project_id = ?",
                                    int(request.path_params["project_id"])))

            return [
                Route(f"/v2/projects/{{project_id:int}}/{name}", handler(listing),
                      methods=["GET"]),
                Route(f"/v2/projects/{{project_id:int}}/{name}/{{{res.id_param}:int}}",
                      handler(one), methods=["GET"]),
            ]

        async def company(_: Request) -> Response:
            return api.company()

        async def me(_: Request) -> Response:
            return api.me()

        async def invoices(request: Request) -> Response:
            return api.invoices(request)

        async def stop(request: Request) -> Response:
            return api.timer(int(request.path_params["entry_id"]), "stop")

        async def restart(request: Request) -> Response:
            return api.timer(int(request.path_params["entry_id"]), "restart")

        async def drop_reference(request: Request) -> Response:
            return api.delete_external_reference(int(request.path_params["entry_id"]))

        async def not_found(_: Request) -> Response:
            return harvest_error(404, "Not found")

        routes: list[BaseRoute] = [
            Route("/v2/company", handler(company), methods=["GET"]),
            Route("/v2/users/me", handler(me), methods=["GET"]),
            Route("/v2/invoices", handler(invoices), methods=["GET"]),
            Route("/v2/time_entries/{entry_id:int}/stop", handler(stop), methods=["PATCH"]),
            Route("/v2/time_entries/{entry_id:int}/restart", handler(restart), methods=["PATCH"]),
            Route("/v2/time_entries/{entry_id:int}/external_reference", handler(drop_reference),
                  methods=["DELETE"]),
        ]
        for res in RESOURCES.values():
            routes += [list_route(res), one_route(res)]
        routes += nested("task_assignments") + nested("user_assignments")
        routes.append(Route("/{path:path}", not_found,
                            methods=["GET", "POST", "PATCH", "PUT", "DELETE"]))
        return routes


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _hours(body: Mapping[str, Any]) -> float | None:
    """Hours from ``hours``, else from ``started_time``/``ended_time``; None when neither."""
    raw = body.get("hours")
    if raw not in (None, ""):
        hours = _parse_number("hours", raw)
        if not 0 <= hours <= 24:
            raise HarvestError(422, "hours must be between 0 and 24")
        return round(hours, 2)
    start, end = body.get("started_time"), body.get("ended_time")
    if start and end:
        minutes = _minutes(str(end)) - _minutes(str(start))
        return round(max(minutes, 0) / 60, 2)
    return None


def _minutes(text: str) -> int:
    """Minutes after midnight of ``14:59`` or ``2:59pm``."""
    value = text.strip().lower()
    suffix = value[-2:] if value.endswith(("am", "pm")) else ""
    value = value.removesuffix(suffix)
    try:
        hours, minutes = (int(part) for part in value.split(":"))
    except ValueError:
        raise HarvestError(422, f"time must look like 14:59 or 2:59pm, got {text!r}") from None
    if suffix:
        hours = hours % 12 + (12 if suffix == "pm" else 0)
    return hours * 60 + minutes


def _external_reference(value: Any) -> str | None:
    """The stored JSON of an ``external_reference`` parameter (None clears it)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise HarvestError(422, "external_reference must be an object")
    permalink = value.get("permalink")
    service = value.get("service")
    if service is None and permalink:
        service = urllib.parse.urlsplit(str(permalink)).hostname
    ref = {
        "id": None if value.get("id") is None else str(value["id"]),
        "group_id": None if value.get("group_id") is None else str(value["group_id"]),
        "account_id": None if value.get("account_id") is None else str(value["account_id"]),
        "permalink": permalink,
        "service": service,
        "service_icon_url": value.get("service_icon_url"),
    }
    return orjson.dumps(ref).decode()


def _page_key(res: Resource, path: str, query: ListQuery) -> tuple[Any, ...]:
    return (res.name, path, query.per_page, query.page, query.direction, query.cursor_id,
            tuple(sorted(query.raw_filters.items())))


def routes(state: SandboxState) -> list[BaseRoute]:
    """The Harvest v2 routes, relative to the ``/harvest`` mount.

    Args:
        state: The shared sandbox state (store, faults, stats, clock).
    """
    return HarvestApi(state).routes()
