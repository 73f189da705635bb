"""HubSpot CRM emulator over the ``hubspot.sqlite`` store.

Covers objects v3 (list, read, write, search, batch), properties, pipelines, owners,
custom-object schemas and associations v4.
Paths are relative to the ``/hubspot`` mount, which stands for ``https://api.hubapi.com``.
Object types are accepted as plural names (``companies``), type ids (``0-2``) or, for custom
objects, their ``objectTypeId`` (``2-9001``), fully qualified name (``p_erp_invoices``) or name;
records are always stored under the canonical name. Property values are strings, as HubSpot
returns them; every write stamps ``hs_lastmodifieddate`` (``lastmodifieddate`` for contacts) and
the ``updated_at`` column with the sandbox clock. Shapes follow vendor-apis.md §1 and are
checked against the official ``hubspot-api-client`` deserialisers.

Every create, update and upsert also logs one ``property_writes`` row per record and property it
was sent (changed or not), in the write's own transaction, with the request's
``X-Correlation-Id`` header; ``propertiesWithHistory`` reads the versions back from that log.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.server.app import SandboxState
from sandbox.server.errors import hubspot_error, json_response
from sandbox.server.hubspot_search import (
    InvalidValue,
    SearchError,
    coerce_value,
    plan_search,
    register_functions,
    stamp,
)
from sandbox.store import Vendor, transaction

VENDOR: Vendor = "hubspot"
LIST_DEFAULT_LIMIT = 10
LIST_MAX_LIMIT = 100
BATCH_MAX_INPUTS = 100
ASSOCIATION_BATCH_MAX_INPUTS = 1000
ASSOCIATION_PAGE_LIMIT = 500
OWNERS_DEFAULT_LIMIT = 100
OWNERS_MAX_LIMIT = 500
BUILTIN_STAMP = "2019-08-06T14:30:00.000Z"  # createdAt/updatedAt of HubSpot-defined properties
CORRELATION_HEADER = "X-Correlation-Id"  # names the request in the write log
API_SOURCE_ID = "sandbox-api"  # history sourceId of a logged write sent without that header

STANDARD_TYPE_IDS = {
    "contacts": "0-1", "companies": "0-2", "deals": "0-3", "tickets": "0-5",
    "products": "0-7", "line_items": "0-8", "quotes": "0-14",
}
SINGULAR = {
    "contacts": "contact", "companies": "company", "deals": "deal", "tickets": "ticket",
    "products": "product", "line_items": "line_item", "quotes": "quote",
}

# Default (unlabelled) v4 association type ids per direction. HubSpot's for the standard
# objects; the erp_invoices ones are the sandbox portal's own (custom objects get portal ids).
ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279, ("companies", "contacts"): 280,
    ("deals", "companies"): 341, ("companies", "deals"): 342,
    ("deals", "contacts"): 3, ("contacts", "deals"): 4,
    ("erp_invoices", "companies"): 9101, ("erp_invoices", "deals"): 9102,
    ("companies", "erp_invoices"): 9103, ("deals", "erp_invoices"): 9104,
}
TYPE_PAIRS = {type_id: pair for pair, type_id in ASSOCIATION_TYPES.items()}

# Properties every record carries, and the default set when ``properties`` is not given.
ALWAYS = {
    "contacts": ("createdate", "hs_object_id", "lastmodifieddate"),
    "_standard": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "_custom": ("createdate", "hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
}
DEFAULTS = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate",
                 "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage",
              "hs_lastmodifieddate", "hs_object_id", "pipeline"),
}
# Where the free-text search ``query`` looks.
TEXT_PROPERTIES = {
    "contacts": ["firstname", "lastname", "email", "phone", "company"],
    "companies": ["name", "domain", "website", "phone"],
    "deals": ["dealname"],
}
READ_ONLY = frozenset({"hs_object_id", "hs_createdate", "hs_lastmodifieddate",
                       "lastmodifieddate"})

_LIFECYCLE = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
              "opportunity", "customer", "evangelist", "other"]
# HubSpot-defined properties of the sandbox portal: (name, label, type, fieldType, group).
_BUILTIN: dict[str, list[tuple[str, str, str, str, str]]] = {
    "_all": [
        ("hs_object_id", "Record ID", "number", "number", "_info"),
        ("createdate", "Create Date", "datetime", "date", "_info"),
        ("hubspot_owner_id", "Owner", "enumeration", "select", "_info"),
    ],
    "contacts": [
        ("lastmodifieddate", "Last Modified Date", "datetime", "date", "contactinformation"),
        ("email", "Email", "string", "text", "contactinformation"),
        ("firstname", "First Name", "string", "text", "contactinformation"),
        ("lastname", "Last Name", "string", "text", "contactinformation"),
        ("phone", "Phone Number", "string", "text", "contactinformation"),
        ("company", "Company Name", "string", "text", "contactinformation"),
        ("jobtitle", "Job Title", "string", "text", "contactinformation"),
        ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "contactinformation"),
    ],
    "companies": [
        ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", "companyinformation"),
        ("name", "Company name", "string", "text", "companyinformation"),
        ("domain", "Company Domain Name", "string", "text", "companyinformation"),
        ("website", "Website URL", "string", "text", "companyinformation"),
        ("phone", "Phone Number", "string", "text", "companyinformation"),
        ("city", "City", "string", "text", "companyinformation"),
        ("country", "Country/Region", "string", "text", "companyinformation"),
        ("industry", "Industry", "string", "text", "companyinformation"),
        ("description", "Description", "string", "textarea", "companyinformation"),
        ("numberofemployees", "Number of Employees", "number", "number", "companyinformation"),
        ("annualrevenue", "Annual Revenue", "number", "number", "companyinformation"),
        ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "companyinformation"),
    ],
    "deals": [
        ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", "dealinformation"),
        ("dealname", "Deal Name", "string", "text", "dealinformation"),
        ("amount", "Amount", "number", "number", "dealinformation"),
        ("closedate", "Close Date", "datetime", "date", "dealinformation"),
        ("dealstage", "Deal Stage", "enumeration", "radio", "dealinformation"),
        ("pipeline", "Pipeline", "enumeration", "select", "dealinformation"),
        ("deal_currency_code", "Currency", "string", "text", "dealinformation"),
        ("description", "Deal Description", "string", "textarea", "dealinformation"),
    ],
    "_custom": [
        ("hs_createdate", "Object create date/time", "datetime", "date", "_info"),
        ("hs_lastmodifieddate", "Object last modified date/time", "datetime", "date", "_info"),
    ],
}
_COLS = "id, properties, created_at, updated_at, archived, archived_at"
_PROPERTY_TYPES = ("bool", "date", "datetime", "enumeration", "number", "phone_number", "string")
_FIELD_TYPES = ("booleancheckbox", "calculation_equation", "checkbox", "date", "file", "html",
                "number", "phonenumber", "radio", "select", "text", "textarea")


class ApiError(Exception):
    """An error answered in HubSpot's ``Error`` shape."""

    def __init__(self, status: int, message: str, category: str = "VALIDATION_ERROR",
                 *, errors: list[dict[str, Any]] | None = None,
                 context: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.errors = errors
        self.context = context

    def response(self) -> Response:
        """The error as a response."""
        return hubspot_error(self.status, self.message, self.category, errors=self.errors,
                             context=self.context)


@dataclass(frozen=True)
class ObjectType:
    """One CRM object type of the portal."""

    name: str
    type_id: str
    custom: bool = False
    fully_qualified_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    primary_display_property: str = ""
    created_at: str = BUILTIN_STAMP
    updated_at: str = BUILTIN_STAMP

    @property
    def singular(self) -> str:
        """``company``, ``erp_invoice``: for association type names and messages."""
        return SINGULAR.get(self.name) or self.name.removesuffix("s")

    @property
    def modified_key(self) -> str:
        """The property holding the last modification time."""
        return "lastmodifieddate" if self.name == "contacts" else "hs_lastmodifieddate"

    @property
    def always(self) -> tuple[str, ...]:
        """Properties present on every record served."""
        if self.custom:
            return ALWAYS["_custom"]
        return ALWAYS.get(self.name, ALWAYS["_standard"])


@dataclass
class Prop:
    """A property definition (``Property`` in HubSpot's properties API)."""

    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    description: str = ""
    options: list[dict[str, Any]] = field(default_factory=list)
    has_unique_value: bool = False
    hubspot_defined: bool = True
    calculated: bool = False
    hidden: bool = False
    display_order: int = -1
    archived: bool = False
    created_at: str = BUILTIN_STAMP
    updated_at: str = BUILTIN_STAMP

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Prop:
        """From a ``properties`` table row."""
        return cls(
            name=row["name"], label=row["label"], type=row["type"], field_type=row["field_type"],
            group_name=row["group_name"], description=row["description"] or "",
            options=_options(orjson.loads(row["options"] or "[]")),
            has_unique_value=bool(row["has_unique_value"]),
            hubspot_defined=bool(row["hubspot_defined"]), calculated=bool(row["calculated"]),
            hidden=bool(row["hidden"]), display_order=row["display_order"],
            archived=bool(row["archived"]), created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def option_values(self) -> list[str]:
        """Allowed values of an enumeration (empty: unrestricted)."""
        return [str(option["value"]) for option in self.options]

    def to_json(self) -> dict[str, Any]:
        """The ``Property`` body."""
        body: dict[str, Any] = {
            "updatedAt": self.updated_at, "createdAt": self.created_at, "name": self.name,
            "label": self.label, "type": self.type, "fieldType": self.field_type,
            "description": self.description, "groupName": self.group_name,
            "options": self.options, "displayOrder": self.display_order,
            "calculated": self.calculated, "externalOptions": False,
            "hasUniqueValue": self.has_unique_value, "hidden": self.hidden,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.name in READ_ONLY or self.calculated,
            },
            "formField": not self.calculated, "dataSensitivity": "non_sensitive",
            "archived": self.archived,
        }
        if self.hubspot_defined:
            body["hubspotDefined"] = True
        return body


def _options(raw: Any) -> list[dict[str, Any]]:
    """Enumeration options with the fields clients require (label, value, hidden)."""
    out = []
    for index, option in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(option, dict) or "value" not in option:
            continue
        entry = {
            "label": str(option.get("label", option["value"])),
            "value": str(option["value"]),
            "displayOrder": int(option.get("displayOrder", index)),
            "hidden": bool(option.get("hidden", False)),
        }
        if option.get("description"):
            entry["description"] = str(option["description"])
        out.append(entry)
    return out


def _definition_field(key: str, value: Any, kind: type) -> Any:
    """A PropertyCreate/PropertyUpdate field as ``kind``; 400 when it is not one."""
    if kind is bool:
        if isinstance(value, bool) or str(value).lower() in ("true", "false"):
            return value if isinstance(value, bool) else str(value).lower() == "true"
    elif kind is int:
        if not isinstance(value, bool) and str(value).lstrip("-").isdigit():
            return int(value)
    elif isinstance(value, str):
        return value
    raise ApiError(400, f"{key} must be a {kind.__name__}, got {value!r}")


def _new_property(name: str, body: dict[str, Any], now: str) -> Prop:
    """A custom property from a ``PropertyCreate`` body."""
    return Prop(
        name=name, label=_definition_field("label", body["label"], str),
        type=_definition_field("type", body["type"], str),
        field_type=_definition_field("fieldType", body["fieldType"], str),
        group_name=_definition_field("groupName", body["groupName"], str),
        description=_definition_field("description", body.get("description") or "", str),
        options=_options(body.get("options") or []),
        has_unique_value=_definition_field("hasUniqueValue", body.get("hasUniqueValue", False),
                                           bool),
        hubspot_defined=False, calculated=False,
        hidden=_definition_field("hidden", body.get("hidden", False), bool),
        display_order=_definition_field("displayOrder", body.get("displayOrder", -1), int),
        created_at=now, updated_at=now,
    )


@dataclass(frozen=True, slots=True)
class WriteOrigin:
    """The request a write came from, as the write log records it."""

    correlation_id: str | None
    method: str
    endpoint: str  # method and route template, e.g. POST /crm/v3/objects/{object_type}


def _origin(request: Request) -> WriteOrigin:
    """Who is writing: the correlation header (None when absent or blank) and the route."""
    route = request.scope.get("route")
    template = getattr(route, "path_format", None) or request.url.path
    correlation = (request.headers.get(CORRELATION_HEADER) or "").strip() or None
    return WriteOrigin(correlation, request.method, f"{request.method} {template}")


def _api(
    handler: Callable[[HubSpotEmulator, Request], Awaitable[Response]],
) -> Callable[[HubSpotEmulator, Request], Awaitable[Response]]:
    """Answer :class:`ApiError` raised by a handler in HubSpot's error shape."""

    @functools.wraps(handler)
    async def wrapper(self: HubSpotEmulator, request: Request) -> Response:
        try:
            return await handler(self, request)
        except ApiError as exc:
            return exc.response()

    return wrapper


# ---- request parsing ------------------------------------------------------------------------


def _query_list(request: Request, name: str) -> list[str] | None:
    """A list parameter, comma-separated and/or repeated; None when absent."""
    raw = request.query_params.getlist(name)
    if not raw:
        return None
    return [part.strip() for item in raw for part in item.split(",") if part.strip()]


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}, got {value}")
    return value


def _query_bool(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").strip().lower() == "true"


def _query_after(request: Request) -> int:
    raw = request.query_params.get("after")
    if raw is None or raw == "":
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid paging cursor after={raw!r}") from None


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"Invalid input JSON: {exc}") from None


def _inputs(body: Any, limit: int = BATCH_MAX_INPUTS) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise ApiError(400, "The request body must be an object with an inputs list")
    inputs: list[Any] = body["inputs"]  # a list, checked above; its items are checked below
    if len(inputs) > limit:
        raise ApiError(
            400, f"Batch input is too large: {len(inputs)} inputs were sent; at most {limit} "
            "are allowed per request.",
            context={"maxInputs": [str(limit)], "inputs": [str(len(inputs))]},
        )
    if not all(isinstance(item, dict) for item in inputs):
        raise ApiError(400, "Every element of inputs must be an object")
    return inputs


def _input_id(item: dict[str, Any], index: int) -> str:
    value = item.get("id")
    if value is None or str(value).strip() == "":
        raise ApiError(400, f"inputs[{index}].id is required")
    return str(value).strip()


def _text(value: Any) -> str | None:
    """A stored property value as text (None stays None)."""
    if value is None or isinstance(value, str):
        return value
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _marks(values: Iterable[Any]) -> str:
    return ", ".join("?" for _ in values)


def _json_path(name: str) -> str:
    return "$." + '"' + name.replace('"', "") + '"'


def _wall_clock() -> str:
    """Now, for ``startedAt``/``completedAt`` (not the write clock, which must stay monotonic)."""
    return stamp(dt.datetime.now(dt.UTC))


def _batch_body(results: list[dict[str, Any]], started: str,
                errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                            "completedAt": _wall_clock()}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    return body


def _standard_error(category: str, message: str, context: dict[str, list[str]],
                    sub_category: str | None = None) -> dict[str, Any]:
    """A ``StandardError`` entry of a 207 response (all fields clients require)."""
    entry: dict[str, Any] = {"status": "error", "category": category, "message": message,
                             "context": context, "errors": [], "links": {}}
    if sub_category:
        entry["subCategory"] = sub_category
    return entry


class HubSpotEmulator:
    """The handlers, sharing the sandbox state and a per-generation catalog cache."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._con: sqlite3.Connection | None = None
        self._generation = -1
        self._types: dict[str, ObjectType] | None = None
        self._props: dict[str, dict[str, Prop]] = {}
        self._counts: dict[tuple[Any, ...], int] = {}
        # value -> live record id, per (object type, unique property); kept up to date by our
        # own writes so that upserts by a unique property do not scan the store each time.
        self._unique: dict[tuple[str, str], dict[str, int]] = {}
        self._unique_changes: list[tuple[str, str, str | None, str | None, int]] = []

    # ---- store and catalog ------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        """The HubSpot store, with the search SQL functions registered."""
        con = self.state.db(VENDOR)
        if con is not self._con:
            register_functions(con)
            self._con = con
        return con

    def _sync(self) -> None:
        if self._generation != self.state.generation:
            self._generation = self.state.generation
            self._types = None
            self._props = {}
            self._counts = {}
            self._unique = {}

    def _type_map(self) -> dict[str, ObjectType]:
        self._sync()
        if self._types is None:
            types: dict[str, ObjectType] = {}
            for name, type_id in STANDARD_TYPE_IDS.items():
                ot = ObjectType(name=name, type_id=type_id)
                types[name] = types[type_id] = types[SINGULAR[name]] = ot
            for row in self.db.execute("select * from object_schemas"):
                ot = ObjectType(
                    name=row["name"], type_id=row["object_type_id"], custom=True,
                    fully_qualified_name=row["fully_qualified_name"],
                    labels=orjson.loads(row["labels"]),
                    primary_display_property=row["primary_display_property"],
                    created_at=row["created_at"], updated_at=row["updated_at"],
                )
                for key in (ot.name, ot.type_id, ot.fully_qualified_name):
                    types[key.lower()] = ot
            self._types = types
        return self._types

    def object_type(self, raw: str) -> ObjectType:
        """Resolve a path's object type (name, type id, fully qualified name).

        Raises:
            ApiError: 400 for a type the portal does not have.
        """
        ot = self._type_map().get(raw.strip().lower())
        if ot is None:
            raise ApiError(400, f"Unable to infer object type from: {raw}")
        return ot

    def props(self, ot: ObjectType) -> dict[str, Prop]:
        """Property definitions of an object type: HubSpot's own plus the store's."""
        self._sync()
        cached = self._props.get(ot.name)
        if cached is not None:
            return cached
        builtin = _BUILTIN["_all"] + _BUILTIN.get("_custom" if ot.custom else ot.name, [])
        defs: dict[str, Prop] = {}
        for name, label, ptype, ftype, group in builtin:
            group = (ot.singular + "information") if group == "_info" else group
            defs[name] = Prop(name, label, ptype, ftype, group)
        if "lifecyclestage" in defs:
            defs["lifecyclestage"].options = _options([{"label": v, "value": v}
                                                       for v in _LIFECYCLE])
        for row in self.db.execute("select * from properties where object_type = ?",
                                   (ot.name,)):
            defs[row["name"]] = Prop.from_row(row)
        self._dynamic_options(ot, defs)
        self._props[ot.name] = defs
        return defs

    def _dynamic_options(self, ot: ObjectType, defs: dict[str, Prop]) -> None:
        """Owner, pipeline and stage options come from the owners and pipelines tables."""
        con = self.db
        owner = defs.get("hubspot_owner_id")
        if owner is not None and not owner.options:
            owner.options = _options([
                {"label": f"{r['first_name'] or ''} {r['last_name'] or ''}".strip() or r["email"],
                 "value": str(r["id"])}
                for r in con.execute("select * from owners where archived = 0 order by id")
            ])
        pipeline = defs.get("pipeline")
        if pipeline is not None and not pipeline.options:
            pipeline.options = _options([
                {"label": r["label"], "value": r["id"], "displayOrder": r["display_order"]}
                for r in con.execute("select * from pipelines where object_type = ? and "
                                     "archived = 0 order by display_order", (ot.name,))
            ])
        stage = defs.get("dealstage")
        if stage is not None and not stage.options:
            stage.options = _options([
                {"label": r["label"], "value": r["id"], "displayOrder": r["display_order"]}
                for r in con.execute(
                    "select s.* from pipeline_stages s join pipelines p on p.id = s.pipeline_id "
                    "where p.object_type = ? and s.archived = 0 "
                    "order by p.display_order, s.display_order", (ot.name,))
            ])

    def _now(self) -> str:
        return stamp(self.state.now())

    # ---- rendering --------------------------------------------------------------------------

    def _render(self, ot: ObjectType, row: sqlite3.Row, wanted: list[str] | None,
                history: list[str] | None, defs: dict[str, Prop],
                logged: dict[str, list[sqlite3.Row]] | None = None) -> dict[str, Any]:
        stored: dict[str, Any] = orjson.loads(row["properties"])
        created, updated = row["created_at"], row["updated_at"]
        stored["hs_object_id"] = str(row["id"])
        stored["createdate"] = created
        stored[ot.modified_key] = updated
        if ot.custom:
            stored["hs_createdate"] = created
        names = wanted if wanted is not None else (
            DEFAULTS.get(ot.name) or [n for n, p in defs.items() if not p.archived])
        props: dict[str, Any] = {}
        for name in (*names, *ot.always):
            if name in stored:
                value = stored[name]
                if value is not None and not isinstance(value, str):
                    value = ("true" if value else "false") if isinstance(value, bool) else str(
                        value)
                props[name] = value
            elif name in defs:
                props[name] = None
        record: dict[str, Any] = {"id": str(row["id"]), "properties": props,
                                  "createdAt": created, "updatedAt": updated,
                                  "archived": bool(row["archived"])}
        if row["archived"]:
            record["archivedAt"] = row["archived_at"] or updated
        if history is not None:
            record["propertiesWithHistory"] = {
                name: self._versions(stored.get(name), created, updated, (logged or {}).get(name))
                for name in history if name in stored or name in defs
            }
        return record

    @staticmethod
    def _versions(current: Any, created: str, updated: str,
                  writes: list[sqlite3.Row] | None) -> list[dict[str, Any]]:
        """A property's versions, newest first.

        Without logged writes: the current value, stamped with the record's modification time
        (the generator keeps no history). With them: one version per logged write, then the
        value the record had before the first of them (the generated one, stamped with the
        record's creation time), unless the property was unset then or the record was created
        through the API.
        """
        if not writes:
            if current in (None, ""):
                return []
            return [{"value": str(current), "timestamp": updated, "sourceType": "API",
                     "sourceId": "sandbox"}]
        versions = [{"value": write["value"] or "", "timestamp": write["written_at"],
                     "sourceType": "INTEGRATION",
                     "sourceId": write["correlation_id"] or API_SOURCE_ID} for write in writes]
        first = writes[-1]
        if first["previous_value"] not in (None, ""):
            versions.append({"value": first["previous_value"], "timestamp": created,
                             "sourceType": "API", "sourceId": "sandbox"})
        return versions

    def _logged_writes(self, ot: ObjectType, ids: list[int], names: list[str]
                       ) -> dict[int, dict[str, list[sqlite3.Row]]]:
        """Logged writes of some properties of some records: id -> property -> newest first."""
        if not ids or not names:
            return {}
        rows = self.db.execute(
            "select record_id, property, value, previous_value, written_at, correlation_id "
            "from property_writes where object_type = ? "
            f"and record_id in ({_marks(ids)}) and property in ({_marks(names)}) "
            "order by seq desc",
            [ot.name, *ids, *names],
        )
        out: dict[int, dict[str, list[sqlite3.Row]]] = {}
        for row in rows:
            out.setdefault(row["record_id"], {}).setdefault(row["property"], []).append(row)
        return out

    def _serve(self, ot: ObjectType, rows: list[sqlite3.Row], wanted: list[str] | None,
               history: list[str] | None = None,
               associations: list[str] | None = None) -> list[dict[str, Any]]:
        """Render rows as records, add inline associations, apply record faults."""
        defs = self.props(ot)
        logged = (self._logged_writes(ot, [row["id"] for row in rows], list(dict.fromkeys(history)))
                  if history else {})
        records = [self._render(ot, row, wanted, history, defs, logged.get(row["id"]))
                   for row in rows]
        if associations and rows:
            ids = [row["id"] for row in rows]
            for target in dict.fromkeys(associations):
                try:
                    to = self.object_type(target)
                except ApiError:
                    continue  # unknown association types are ignored
                linked = self._associated(ot.name, to.name, ids)
                label = f"{ot.singular}_to_{to.singular}"
                for record, row in zip(records, rows, strict=True):
                    found = linked.get(row["id"])
                    if found:
                        record.setdefault("associations", {})[to.name] = {
                            "results": [{"id": str(to_id), "type": label}
                                        for to_id in sorted(found)]
                        }
        faults = self.state.faults
        if faults.record_faults_on(VENDOR):
            for record, row in zip(records, rows, strict=True):
                faults.shape_record(VENDOR, ot.name, record, row["id"])
        return records

    # ---- lookups ----------------------------------------------------------------------------

    def _rows(self, ot: ObjectType, ids: list[int], archived: bool | None = False
              ) -> dict[int, sqlite3.Row]:
        if not ids:
            return {}
        sql = f"select {_COLS} from objects where object_type = ? and id in ({_marks(ids)})"
        params: list[Any] = [ot.name, *ids]
        if archived is not None:
            sql += " and archived = ?"
            params.append(int(archived))
        return {row["id"]: row for row in self.db.execute(sql, params)}

    def _resolve(self, ot: ObjectType, id_property: str | None, keys: list[str],
                 archived: bool = False) -> dict[str, int]:
        """Map input ids (record ids, or values of a unique property) to record ids."""
        if not keys:
            return {}
        if id_property in (None, "", "hs_object_id"):
            wanted = {key: int(key) for key in keys if key.lstrip("-").isdigit()}
            present = self._rows(ot, list(set(wanted.values())), archived)
            return {key: rid for key, rid in wanted.items() if rid in present}
        prop = self.props(ot).get(str(id_property))
        if prop is None or not prop.has_unique_value:
            raise ApiError(
                400, f"{id_property} is not a unique property of {ot.name}: idProperty must "
                "name a property with hasUniqueValue true",
            )
        if not archived:
            index = self._unique_index(ot, prop.name)
            return {key: index[key] for key in keys if key in index}
        unique_keys = list(dict.fromkeys(keys))
        rows = self.db.execute(
            "select id, cast(json_extract(properties, ?) as text) as v from objects "
            f"where object_type = ? and archived = 1 and v in ({_marks(unique_keys)})",
            [_json_path(prop.name), ot.name, *unique_keys],
        )
        return {row["v"]: row["id"] for row in rows}

    def _unique_index(self, ot: ObjectType, name: str) -> dict[str, int]:
        """Value -> id of the live records holding a unique property."""
        self._sync()
        index = self._unique.get((ot.name, name))
        if index is None:
            rows = self.db.execute(
                "select id, cast(json_extract(properties, ?) as text) as v from objects "
                "where object_type = ? and archived = 0 and v is not null",
                (_json_path(name), ot.name),
            )
            index = self._unique[(ot.name, name)] = {row["v"]: row["id"] for row in rows}
        return index

    def _associated(self, from_type: str, to_type: str, ids: list[int]
                    ) -> dict[int, dict[int, set[int]]]:
        """Associations of records to live records of another type, read both ways.

        Returns:
            from id -> {to id -> {association type ids}}.
        """
        if not ids:
            return {}
        out: dict[int, dict[int, set[int]]] = {}
        marks = _marks(ids)
        forward = self.db.execute(
            "select a.from_id as src, a.to_id as dst, a.type_id from associations a "
            "join objects o on o.object_type = a.to_type and o.id = a.to_id and o.archived = 0 "
            f"where a.from_type = ? and a.to_type = ? and a.from_id in ({marks})",
            [from_type, to_type, *ids],
        ).fetchall()
        backward = self.db.execute(
            "select a.to_id as src, a.from_id as dst, a.type_id from associations a "
            "join objects o on o.object_type = a.from_type and o.id = a.from_id "
            "and o.archived = 0 "
            f"where a.to_type = ? and a.from_type = ? and a.to_id in ({marks})",
            [from_type, to_type, *ids],
        ).fetchall()
        inverse_default = ASSOCIATION_TYPES.get((to_type, from_type))
        own_default = ASSOCIATION_TYPES.get((from_type, to_type))
        for row in forward:
            out.setdefault(row["src"], {}).setdefault(row["dst"], set()).add(row["type_id"])
        for row in backward:
            type_id = row["type_id"]
            if type_id == inverse_default and own_default is not None:
                type_id = own_default
            out.setdefault(row["src"], {}).setdefault(row["dst"], set()).add(type_id)
        return out

    def _count(self, ot: ObjectType, where: str, params: list[Any]) -> int:
        self._sync()
        key = (ot.name, where, tuple(params))
        total = self._counts.get(key)
        if total is None:
            if len(self._counts) > 512:
                self._counts.clear()
            total = self.db.execute(
                "select count(*) from objects where object_type = ? and archived = 0 and "
                f"({where})", [ot.name, *params],
            ).fetchone()[0]
            self._counts[key] = total
        return total

    # ---- writes -----------------------------------------------------------------------------

    def _validate(self, ot: ObjectType, items: list[tuple[int, str, Any]]
                  ) -> list[dict[str, str | None]]:
        """Coerce the properties of every input; reject the whole batch on any bad value.

        Args:
            ot: The object type.
            items: (input index, input id for messages, properties) per input.

        Raises:
            ApiError: 400 VALIDATION_ERROR naming each bad input and property.
        """
        defs = self.props(ot)
        out: list[dict[str, str | None]] = []
        problems: list[dict[str, Any]] = []
        details: list[dict[str, Any]] = []
        for index, key, properties in items:
            if not isinstance(properties, dict):
                raise ApiError(400, f"inputs[{index}].properties must be an object")
            values: dict[str, str | None] = {}
            for name, raw in properties.items():
                if name in READ_ONLY:
                    continue
                prop = defs.get(name)
                try:
                    if prop is None or prop.archived:
                        raise InvalidValue("PROPERTY_DOESNT_EXIST",
                                           f'Property "{name}" does not exist')
                    values[name] = coerce_value(prop.type, prop.field_type,
                                                prop.option_values(), raw)
                except InvalidValue as exc:
                    problems.append({"isValid": False, "message": str(exc), "error": exc.code,
                                     "name": name})
                    details.append({
                        "message": f"inputs[{index}] ({key}): {exc}", "code": exc.code,
                        "in": name,
                        "context": {"propertyName": [name], "inputIndex": [str(index)],
                                    "id": [key]},
                    })
            out.append(values)
        if problems:
            raise ApiError(400, "Property values were not valid: "
                           + orjson.dumps(problems).decode(), errors=details)
        return out

    def _check_unique(self, ot: ObjectType,
                      changes: list[tuple[int | None, dict[str, str | None]]]) -> None:
        """Refuse a write that would give two records the same unique value (409)."""
        for prop in self.props(ot).values():
            if not prop.has_unique_value:
                continue
            claims: dict[str, int | None] = {}
            for target, values in changes:
                value = values.get(prop.name)
                if value is None:
                    continue
                if value in claims and (claims[value] is None or claims[value] != target):
                    raise ApiError(409, f"Duplicate value {value!r} for unique property "
                                   f"{prop.name} within the batch", "CONFLICT")
                claims[value] = target
            index = self._unique_index(ot, prop.name) if claims else {}
            for value, target in claims.items():
                holder = index.get(value)
                if holder is not None and holder != target:
                    raise ApiError(
                        409, f"A {ot.singular} with {prop.name}={value!r} already exists. "
                        f"Existing ID: {holder}", "CONFLICT",
                        context={"id": [str(holder)], "propertyName": [prop.name]},
                    )

    def _log(self, ot: ObjectType, writes: list[tuple[int, str, str | None, str | None]],
             now: str, origin: WriteOrigin) -> None:
        """Append (record id, property, value, previous value) rows to the write log."""
        self.db.executemany(
            "insert into property_writes (object_type, record_id, property, value, "
            "previous_value, written_at, correlation_id, request_method, endpoint) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(ot.name, rid, name, value, previous, now, origin.correlation_id, origin.method,
              origin.endpoint) for rid, name, value, previous in writes],
        )

    def _update(self, ot: ObjectType, targets: list[tuple[int, dict[str, str | None]]],
                now: str, origin: WriteOrigin) -> None:
        """Merge values into existing records and log them (within the caller's transaction)."""
        current = self._rows(ot, [rid for rid, _ in targets], archived=None)
        unique = self._unique_names(ot)
        writes: list[tuple[int, str, str | None, str | None]] = []
        for rid, values in targets:
            stored = orjson.loads(current[rid]["properties"])
            for name in unique.intersection(values):
                self._unique_changes.append((ot.name, name, stored.get(name), values[name], rid))
            writes += [(rid, name, value, _text(stored.get(name)))
                       for name, value in values.items()]
            for name, value in values.items():
                if value is None:
                    stored.pop(name, None)
                else:
                    stored[name] = value
            stored[ot.modified_key] = now
            self.db.execute(
                "update objects set properties = ?, updated_at = ? "
                "where object_type = ? and id = ?",
                (orjson.dumps(stored).decode(), now, ot.name, rid),
            )
        self._log(ot, writes, now, origin)

    def _insert(self, ot: ObjectType, items: list[dict[str, str | None]], now: str,
                origin: WriteOrigin) -> list[int]:
        """Create records and log their values (within the caller's transaction).

        Returns:
            The new record ids, in input order.
        """
        next_id = self.db.execute("select coalesce(max(id), 0) from objects where "
                                  "object_type = ?", (ot.name,)).fetchone()[0] + 1
        ids = []
        unique = self._unique_names(ot)
        writes: list[tuple[int, str, str | None, str | None]] = []
        for values in items:
            writes += [(next_id, name, value, None) for name, value in values.items()]
            stored = {k: v for k, v in values.items() if v is not None}
            for name in unique.intersection(stored):
                self._unique_changes.append((ot.name, name, None, stored[name], next_id))
            created = stored.get("createdate") or now
            stored.update({"hs_object_id": str(next_id), "createdate": created,
                           ot.modified_key: now})
            if ot.custom:
                stored["hs_createdate"] = created
            self.db.execute(
                "insert into objects (object_type, id, properties, created_at, updated_at, "
                "archived) values (?, ?, ?, ?, ?, 0)",
                (ot.name, next_id, orjson.dumps(stored).decode(), created, now),
            )
            ids.append(next_id)
            next_id += 1
        self._log(ot, writes, now, origin)
        return ids

    def _create_associations(self, ot: ObjectType, specs: list[tuple[int, Any]]) -> None:
        """Write the ``associations`` of create inputs (both directions)."""
        for from_id, assocs in specs:
            for assoc in assocs or []:
                to_id = str((assoc.get("to") or {}).get("id", ""))
                for spec in assoc.get("types") or []:
                    type_id = str(spec.get("associationTypeId", ""))
                    pair = TYPE_PAIRS.get(int(type_id)) if type_id.isdigit() else None
                    if pair is None or pair[0] != ot.name or not to_id.isdigit():
                        raise ApiError(400, f"Invalid association {assoc!r} for {ot.name}")
                    to = self.object_type(pair[1])
                    if not self._rows(to, [int(to_id)]):
                        raise ApiError(400, f"Cannot associate {ot.singular} {from_id} with "
                                       f"{to.singular} {to_id}: it does not exist")
                    self._link(ot.name, from_id, to.name, int(to_id))

    def _link(self, from_type: str, from_id: int, to_type: str, to_id: int) -> int:
        type_id = ASSOCIATION_TYPES[(from_type, to_type)]
        rows = [(from_type, from_id, to_type, to_id, type_id)]
        back = ASSOCIATION_TYPES.get((to_type, from_type))
        if back is not None:
            rows.append((to_type, to_id, from_type, from_id, back))
        self.db.executemany(
            "insert or ignore into associations (from_type, from_id, to_type, to_id, type_id, "
            "category) values (?, ?, ?, ?, ?, 'HUBSPOT_DEFINED')", rows)
        return type_id

    def _written(self, ot: ObjectType, ids: list[int],
                 values: list[dict[str, str | None]]) -> list[dict[str, Any]]:
        """Records as write responses carry them: the written properties plus the system ones."""
        rows = self._rows(ot, ids, archived=None)
        defs = self.props(ot)
        return [self._render(ot, rows[rid], list(vals), None, defs)
                for rid, vals in zip(ids, values, strict=True)]

    def _unique_names(self, ot: ObjectType) -> set[str]:
        return {name for name, prop in self.props(ot).items() if prop.has_unique_value}

    def _write(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in one write transaction, then note the write.

        The catalog caches start afresh after a write, except the unique-value indexes, which
        take the write's own changes when nothing else wrote since they were built.
        """
        self._sync()
        self._unique_changes.clear()
        try:
            with transaction(self.db):
                result = fn()
        except BaseException:
            self._unique = {}
            raise
        self.state.wrote()
        for type_name, name, old, new, rid in self._unique_changes:
            index = self._unique.get((type_name, name))
            if index is None:
                continue
            if old is not None and index.get(old) == rid:
                del index[old]
            if new is not None:
                index[new] = rid
        self._unique_changes.clear()
        unique = self._unique
        self._sync()
        self._unique = unique
        return result

    # ---- objects: list, read, single writes -------------------------------------------------

    def _page_served(self, served: int) -> None:
        self.state.stats.records_served[VENDOR] += served

    def _next_link(self, request: Request, path: str, after: str) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
        params.append(("after", after))
        return f"{self.state.vendor_base(request, VENDOR)}{path}?{urlencode(params)}"

    @_api
    async def list_objects(self, request: Request) -> Response:
        """``GET /crm/v3/objects/{object_type}``: a page of records, keyset on id."""
        raw_type = request.path_params["object_type"]
        ot = self.object_type(raw_type)
        limit = _query_int(request, "limit", LIST_DEFAULT_LIMIT, 1, LIST_MAX_LIMIT)
        after = _query_after(request)
        archived = _query_bool(request, "archived")
        rows = self.db.execute(
            f"select {_COLS} from objects where object_type = ? and archived = ? and id > ? "
            "order by id limit ?", (ot.name, int(archived), after, limit + 1),
        ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        self.state.faults.page_served(VENDOR)  # before shaping: drift starts on page N + 1
        results = self._serve(ot, rows, _query_list(request, "properties"),
                              _query_list(request, "propertiesWithHistory"),
                              _query_list(request, "associations"))
        body: dict[str, Any] = {"results": results}
        if more:
            cursor = str(rows[-1]["id"])
            path = f"/crm/v3/objects/{quote(raw_type)}"
            body["paging"] = {"next": {"after": cursor,
                                       "link": self._next_link(request, path, cursor)}}
        self._page_served(len(results))
        return json_response(body)

    def _one(self, request: Request, ot: ObjectType) -> sqlite3.Row:
        key = request.path_params["object_id"]
        archived = _query_bool(request, "archived")
        found = self._resolve(ot, request.query_params.get("idProperty"), [key], archived)
        if key not in found:
            raise ApiError(404, "Object not found.  objectId are usually numeric.",
                           "OBJECT_NOT_FOUND", context={"id": [key]})
        return self._rows(ot, [found[key]], archived)[found[key]]

    @_api
    async def get_object(self, request: Request) -> Response:
        """``GET /crm/v3/objects/{object_type}/{object_id}``."""
        ot = self.object_type(request.path_params["object_type"])
        row = self._one(request, ot)
        record = self._serve(ot, [row], _query_list(request, "properties"),
                             _query_list(request, "propertiesWithHistory"),
                             _query_list(request, "associations"))[0]
        return json_response(record)

    @_api
    async def create_object(self, request: Request) -> Response:
        """``POST /crm/v3/objects/{object_type}``: create one record (201)."""
        ot = self.object_type(request.path_params["object_type"])
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be an object with properties")
        values = self._validate(ot, [(0, "new", body.get("properties") or {})])
        self._check_unique(ot, [(None, values[0])])
        now = self._now()
        origin = _origin(request)

        def write() -> list[int]:
            ids = self._insert(ot, values, now, origin)
            self._create_associations(ot, [(ids[0], body.get("associations"))])
            return ids

        ids = self._write(write)
        return json_response(self._written(ot, ids, values)[0], 201)

    @_api
    async def update_object(self, request: Request) -> Response:
        """``PATCH /crm/v3/objects/{object_type}/{object_id}``: partial update."""
        ot = self.object_type(request.path_params["object_type"])
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be an object with properties")
        row = self._one(request, ot)
        values = self._validate(ot, [(0, str(row["id"]), body.get("properties") or {})])
        self._check_unique(ot, [(row["id"], values[0])])
        now = self._now()
        origin = _origin(request)
        self._write(lambda: self._update(ot, [(row["id"], values[0])], now, origin))
        return json_response(self._written(ot, [row["id"]], values)[0])

    @_api
    async def archive_object(self, request: Request) -> Response:
        """``DELETE /crm/v3/objects/{object_type}/{object_id}``: archive (204)."""
        ot = self.object_type(request.path_params["object_type"])
        key = request.path_params["object_id"]
        found = self._resolve(ot, None, [key])
        if found:
            self._write(lambda: self._archive(ot, list(found.values()), self._now()))
        return Response(status_code=204)

    def _archive(self, ot: ObjectType, ids: list[int], now: str) -> None:
        for key in [key for key in self._unique if key[0] == ot.name]:
            del self._unique[key]  # rebuilt on next use, without the archived records
        self.db.execute(
            "update objects set archived = 1, archived_at = ?, updated_at = ? "
            f"where object_type = ? and archived = 0 and id in ({_marks(ids)})",
            [now, now, ot.name, *ids],
        )

    # ---- search -----------------------------------------------------------------------------

    @_api
    async def search(self, request: Request) -> Response:
        """``POST /crm/v3/objects/{object_type}/search``."""
        ot = self.object_type(request.path_params["object_type"])
        body = await _json_body(request)
        defs = self.props(ot)
        text = TEXT_PROPERTIES.get(ot.name) or [ot.primary_display_property or "hs_object_id"]
        try:
            plan = plan_search(body, {name: p.type for name, p in defs.items()}, text)
        except SearchError as exc:
            raise ApiError(400, str(exc)) from None
        total = self._count(ot, plan.where, plan.params)
        rows = self.db.execute(
            f"select {_COLS} from objects where object_type = ? and archived = 0 and "
            f"({plan.where}) order by {plan.order_by} limit ? offset ?",
            [ot.name, *plan.params, plan.limit, plan.offset],
        ).fetchall()
        self.state.faults.page_served(VENDOR)
        results = self._serve(ot, rows, plan.properties, plan.properties_with_history)
        out: dict[str, Any] = {"total": total, "results": results}
        if plan.offset + len(rows) < total:
            out["paging"] = {"next": {"after": str(plan.offset + len(rows))}}
        self._page_served(len(results))
        return json_response(out)

    # ---- batch ------------------------------------------------------------------------------

    def _not_found(self, ot: ObjectType, verb: str, keys: list[str]) -> dict[str, Any]:
        return _standard_error(
            "OBJECT_NOT_FOUND",
            f"Could not {verb} some {ot.singular.upper()} objects, they may be deleted or not "
            "exist. Check that ids are valid.",
            {"ids": keys},
        )

    @_api
    async def batch_read(self, request: Request) -> Response:
        """``POST /crm/v3/objects/{object_type}/batch/read``: 200, or 207 naming missing ids."""
        started = _wall_clock()
        ot = self.object_type(request.path_params["object_type"])
        body = await _json_body(request)
        inputs = _inputs(body)
        keys = list(dict.fromkeys(_input_id(item, i) for i, item in enumerate(inputs)))
        archived = _query_bool(request, "archived")
        found = self._resolve(ot, body.get("idProperty"), keys, archived)
        rows = self._rows(ot, list(dict.fromkeys(found.values())), archived)
        ordered = [rows[found[key]] for key in keys if key in found]
        results = self._serve(ot, ordered, body.get("properties"),
                              body.get("propertiesWithHistory"))
        missing = [key for key in keys if key not in found]
        self.state.stats.records_served[VENDOR] += len(results)
        errors = [self._not_found(ot, "get", missing)] if missing else None
        return json_response(_batch_body(results, started, errors), 207 if errors else 200)

    @_api
    async def batch_create(self, request: Request) -> Response:
        """``POST /crm/v3/objects/{object_type}/batch/create`` (201)."""
        started = _wall_clock()
        ot = self.object_type(request.path_params["object_type"])
        inputs = _inputs(await _json_body(request))
        values = self._validate(ot, [(i, f"new #{i}", item.get("properties") or {})
                                     for i, item in enumerate(inputs)])
        self._check_unique(ot, [(None, vals) for vals in values])
        now = self._now()
        origin = _origin(request)

        def write() -> list[int]:
            ids = self._insert(ot, values, now, origin)
            self._create_associations(ot, [(rid, item.get("associations"))
                                           for rid, item in zip(ids, inputs, strict=True)])
            return ids

        ids = self._write(write)
        return json_response(_batch_body(self._written(ot, ids, values), started), 201)

    def _targets(self, ot: ObjectType, inputs: list[dict[str, Any]], top_id_property: Any
                 ) -> tuple[list[str], list[tuple[str, str | None]], dict[tuple[str, str | None],
                                                                           int]]:
        """Input ids, their (id, idProperty) keys and the records they resolve to."""
        keys = [(_input_id(item, i), item.get("idProperty") or top_id_property)
                for i, item in enumerate(inputs)]
        found: dict[tuple[str, str | None], int] = {}
        for id_property in dict.fromkeys(prop for _, prop in keys):
            group = [key for key, prop in keys if prop == id_property]
            for key, rid in self._resolve(ot, id_property, group).items():
                found[(key, id_property)] = rid
        return [key for key, _ in keys], keys, found

    @_api
    async def batch_update(self, request: Request) -> Response:
        """``POST /crm/v3/objects/{object_type}/batch/update``: 200, or 207 naming missing ids.

        A bad property value rejects the whole batch (400), as HubSpot does.
        """
        started = _wall_clock()
        ot = self.object_type(request.path_params["object_type"])
        body = await _json_body(request)
        inputs = _inputs(body)
        ids, keys, found = self._targets(ot, inputs, body.get("idProperty"))
        values = self._validate(ot, [(i, ids[i], item.get("properties") or {})
                                     for i, item in enumerate(inputs)])
        targets = [(found[key], vals) for key, vals in zip(keys, values, strict=True)
                   if key in found]
        seen: dict[int, int] = {}
        for rid, _ in targets:
            seen[rid] = seen.get(rid, 0) + 1
        duplicates = sorted(str(rid) for rid, n in seen.items() if n > 1)
        if duplicates:
            raise ApiError(400, f"Duplicate IDs found in batch input: [{', '.join(duplicates)}]. "
                           "IDs must be unique", context={"ids": duplicates})
        self._check_unique(ot, [(rid, vals) for rid, vals in targets])
        missing = [key for key, prop in keys if (key, prop) not in found]
        if targets:
            now = self._now()
            origin = _origin(request)
            self._write(lambda: self._update(ot, targets, now, origin))
        results = self._written(ot, [rid for rid, _ in targets], [v for _, v in targets])
        errors = [self._not_found(ot, "update", missing)] if missing else None
        return json_response(_batch_body(results, started, errors), 207 if errors else 200)

    @_api
    async def batch_upsert(self, request: Request) -> Response:
        """``POST /crm/v3/objects/{object_type}/batch/upsert`` by a unique property."""
        started = _wall_clock()
        ot = self.object_type(request.path_params["object_type"])
        body = await _json_body(request)
        inputs = _inputs(body)
        defs = self.props(ot)
        for i, item in enumerate(inputs):
            id_property = item.get("idProperty")
            prop = defs.get(str(id_property))
            if prop is None or not prop.has_unique_value:
                raise ApiError(400, f"inputs[{i}].idProperty must name a property of {ot.name} "
                               f"with unique values, got {id_property!r}")
        ids, keys, found = self._targets(ot, inputs, None)
        if len(set(keys)) < len(keys):
            raise ApiError(400, "Duplicate IDs found in batch input: "
                           f"[{', '.join(sorted({k for k, _ in keys if ids.count(k) > 1}))}]")
        values = self._validate(ot, [(i, ids[i], item.get("properties") or {})
                                     for i, item in enumerate(inputs)])
        sent = [list(vals) for vals in values]
        for (key, id_property), vals in zip(keys, values, strict=True):
            vals[str(id_property)] = key
        changes = [(found.get(key), vals) for key, vals in zip(keys, values, strict=True)]
        self._check_unique(ot, changes)
        now = self._now()
        origin = _origin(request)
        # A found record is updated with the properties sent only: its idProperty already holds
        # the key, and the key is how it was found, not a write (nor a write-log row).
        updates = [(rid, {name: vals[name] for name in names})
                   for (rid, vals), names in zip(changes, sent, strict=True) if rid is not None]
        creates = [vals for rid, vals in changes if rid is None]

        def write() -> list[int]:
            self._update(ot, updates, now, origin)
            return self._insert(ot, creates, now, origin)

        new_ids = iter(self._write(write))
        record_ids = [rid if rid is not None else next(new_ids) for rid, _ in changes]
        results = self._written(ot, record_ids, values)
        for record, (rid, _) in zip(results, changes, strict=True):
            record["new"] = rid is None
        return json_response(_batch_body(results, started))

    @_api
    async def batch_archive(self, request: Request) -> Response:
        """``POST /crm/v3/objects/{object_type}/batch/archive`` (204)."""
        ot = self.object_type(request.path_params["object_type"])
        inputs = _inputs(await _json_body(request))
        found = self._resolve(ot, None, [_input_id(item, i) for i, item in enumerate(inputs)])
        if found:
            self._write(lambda: self._archive(ot, list(set(found.values())), self._now()))
        return Response(status_code=204)

    # ---- owners -----------------------------------------------------------------------------

    @staticmethod
    def _owner(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": str(row["id"]), "email": row["email"], "firstName": row["first_name"] or "",
            "lastName": row["last_name"] or "", "userId": row["user_id"],
            "userIdIncludingInactive": row["user_id"], "type": row["type"],
            "teams": orjson.loads(row["teams"] or "[]"), "archived": bool(row["archived"]),
            "createdAt": row["created_at"], "updatedAt": row["updated_at"],
        }

    @_api
    async def list_owners(self, request: Request) -> Response:
        """``GET /crm/v3/owners``: limit (default 100), after, email, archived."""
        limit = _query_int(request, "limit", OWNERS_DEFAULT_LIMIT, 1, OWNERS_MAX_LIMIT)
        after = _query_after(request)
        sql = "select * from owners where archived = ? and id > ?"
        params: list[Any] = [int(_query_bool(request, "archived")), after]
        email = request.query_params.get("email")
        if email:
            sql += " and lower(email) = lower(?)"
            params.append(email)
        rows = self.db.execute(sql + " order by id limit ?", [*params, limit + 1]).fetchall()
        body: dict[str, Any] = {"results": [self._owner(row) for row in rows[:limit]]}
        if len(rows) > limit:
            cursor = str(rows[limit - 1]["id"])
            body["paging"] = {"next": {"after": cursor, "link": self._next_link(
                request, "/crm/v3/owners", cursor)}}
        return json_response(body)

    @_api
    async def get_owner(self, request: Request) -> Response:
        """``GET /crm/v3/owners/{owner_id}`` (``idProperty`` id or userId)."""
        key = request.path_params["owner_id"]
        column = "user_id" if request.query_params.get("idProperty") == "userId" else "id"
        archived = int(_query_bool(request, "archived"))
        row = self.db.execute(f"select * from owners where {column} = ? and archived = ?",
                              (key, archived)).fetchone()
        if row is None:
            raise ApiError(404, f"Owner {key} not found", "OBJECT_NOT_FOUND")
        return json_response(self._owner(row))

    # ---- properties -------------------------------------------------------------------------

    @_api
    async def list_properties(self, request: Request) -> Response:
        """``GET /crm/v3/properties/{object_type}`` (no paging)."""
        ot = self.object_type(request.path_params["object_type"])
        archived = _query_bool(request, "archived")
        results = [p.to_json() for p in self.props(ot).values() if p.archived == archived]
        return json_response({"results": results})

    def _prop(self, request: Request) -> tuple[ObjectType, Prop]:
        ot = self.object_type(request.path_params["object_type"])
        name = request.path_params["property_name"]
        prop = self.props(ot).get(name)
        if prop is None or prop.archived != _query_bool(request, "archived"):
            raise ApiError(404, f"Unable to find property {name} for object type {ot.name}",
                           "OBJECT_NOT_FOUND")
        return ot, prop

    @_api
    async def get_property(self, request: Request) -> Response:
        """``GET /crm/v3/properties/{object_type}/{property_name}``."""
        return json_response(self._prop(request)[1].to_json())

    def _save_property(self, ot: ObjectType, prop: Prop) -> None:
        self.db.execute(
            "insert or replace into properties (object_type, name, label, type, field_type, "
            "group_name, description, options, has_unique_value, hubspot_defined, calculated, "
            "hidden, display_order, archived, created_at, updated_at) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ot.name, prop.name, prop.label, prop.type, prop.field_type, prop.group_name,
             prop.description, orjson.dumps(prop.options).decode(), int(prop.has_unique_value),
             int(prop.hubspot_defined), int(prop.calculated), int(prop.hidden),
             prop.display_order, int(prop.archived), prop.created_at, prop.updated_at),
        )

    @staticmethod
    def _check_definition(prop: Prop) -> None:
        if prop.type not in _PROPERTY_TYPES:
            raise ApiError(400, f"type must be one of {', '.join(_PROPERTY_TYPES)}, "
                           f"got {prop.type!r}")
        if prop.field_type not in _FIELD_TYPES:
            raise ApiError(400, f"fieldType must be one of {', '.join(_FIELD_TYPES)}, "
                           f"got {prop.field_type!r}")
        if prop.type == "enumeration" and not prop.options:
            raise ApiError(400, f"Property {prop.name} of type enumeration needs options")

    @_api
    async def create_property(self, request: Request) -> Response:
        """``POST /crm/v3/properties/{object_type}``: a custom property (201, 409 if taken)."""
        ot = self.object_type(request.path_params["object_type"])
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a PropertyCreate object")
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName")
                   if not body.get(k)]
        if missing:
            raise ApiError(400, f"Missing required fields: {', '.join(missing)}",
                           context={"missingFields": missing})
        name = str(body["name"])
        if not name.replace("_", "a").isalnum() or not name[0].isalpha() or name != name.lower():
            raise ApiError(400, f"Invalid property name {name!r}: use lowercase letters, digits "
                           "and underscores, starting with a letter")
        if name in self.props(ot):
            raise ApiError(409, f"A property named '{name}' already exists.",
                           "OBJECT_ALREADY_EXISTS")
        now = self._now()
        prop = _new_property(name, body, now)
        self._check_definition(prop)
        self._write(lambda: self._save_property(ot, prop))
        return json_response(prop.to_json(), 201)

    @_api
    async def update_property(self, request: Request) -> Response:
        """``PATCH /crm/v3/properties/{object_type}/{property_name}`` (hasUniqueValue fixed)."""
        ot, prop = self._prop(request)
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a PropertyUpdate object")
        if "hasUniqueValue" in body and bool(body["hasUniqueValue"]) != prop.has_unique_value:
            raise ApiError(400, "hasUniqueValue cannot be changed after a property is created")
        fields = {"label": "label", "type": "type", "fieldType": "field_type",
                  "groupName": "group_name", "description": "description",
                  "displayOrder": "display_order", "hidden": "hidden"}
        for key, attr in fields.items():
            if key in body and body[key] is not None:
                setattr(prop, attr, _definition_field(key, body[key], type(getattr(prop, attr))))
        if "options" in body:
            prop.options = _options(body["options"])
        prop.updated_at = self._now()
        self._check_definition(prop)
        self._write(lambda: self._save_property(ot, prop))
        return json_response(prop.to_json())

    # ---- pipelines --------------------------------------------------------------------------

    def _pipelines(self, ot: ObjectType, pipeline_id: str | None = None) -> list[dict[str, Any]]:
        sql, params = "select * from pipelines where object_type = ? and archived = 0", [ot.name]
        if pipeline_id is not None:
            sql += " and id = ?"
            params.append(pipeline_id)
        pipelines = self.db.execute(sql + " order by display_order, id", params).fetchall()
        out = []
        for row in pipelines:
            stages = self.db.execute(
                "select * from pipeline_stages where pipeline_id = ? and archived = 0 "
                "order by display_order, id", (row["id"],))
            out.append({
                "id": row["id"], "label": row["label"], "displayOrder": row["display_order"],
                "archived": False, "createdAt": row["created_at"], "updatedAt": row["updated_at"],
                "stages": [self._stage(s) for s in stages],
            })
        return out

    @staticmethod
    def _stage(row: sqlite3.Row) -> dict[str, Any]:
        metadata = {k: str(v).lower() if isinstance(v, bool) else str(v)
                    for k, v in orjson.loads(row["metadata"] or "{}").items()}
        return {
            "id": row["id"], "label": row["label"], "displayOrder": row["display_order"],
            "metadata": metadata, "archived": False, "createdAt": row["created_at"],
            "updatedAt": row["updated_at"], "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }

    @_api
    async def list_pipelines(self, request: Request) -> Response:
        """``GET /crm/v3/pipelines/{object_type}``: every pipeline with its stages."""
        ot = self.object_type(request.path_params["object_type"])
        return json_response({"results": self._pipelines(ot)})

    def _pipeline(self, request: Request) -> dict[str, Any]:
        ot = self.object_type(request.path_params["object_type"])
        found = self._pipelines(ot, request.path_params["pipeline_id"])
        if not found:
            raise ApiError(404, f"Unable to find pipeline {request.path_params['pipeline_id']}",
                           "OBJECT_NOT_FOUND")
        return found[0]

    @_api
    async def get_pipeline(self, request: Request) -> Response:
        """``GET /crm/v3/pipelines/{object_type}/{pipeline_id}``."""
        return json_response(self._pipeline(request))

    @_api
    async def list_stages(self, request: Request) -> Response:
        """``GET /crm/v3/pipelines/{object_type}/{pipeline_id}/stages``."""
        return json_response({"results": self._pipeline(request)["stages"]})

    # ---- custom-object schemas --------------------------------------------------------------

    def _schema(self, ot: ObjectType) -> dict[str, Any]:
        associations = []
        for (from_name, to_name), type_id in ASSOCIATION_TYPES.items():
            if from_name != ot.name:
                continue
            to = self._type_map().get(to_name)
            if to is not None:
                associations.append({
                    "id": str(type_id), "fromObjectTypeId": ot.type_id,
                    "toObjectTypeId": to.type_id, "name": f"{ot.singular}_to_{to.singular}",
                    "createdAt": ot.created_at, "updatedAt": ot.updated_at,
                })
        return {
            "id": ot.type_id.split("-", 1)[-1], "objectTypeId": ot.type_id, "name": ot.name,
            "fullyQualifiedName": ot.fully_qualified_name, "labels": ot.labels,
            "primaryDisplayProperty": ot.primary_display_property,
            "requiredProperties": [ot.primary_display_property],
            "searchableProperties": [ot.primary_display_property],
            "secondaryDisplayProperties": [],
            "properties": [p.to_json() for p in self.props(ot).values() if not p.archived],
            "associations": associations, "metaType": "PORTAL_SPECIFIC", "archived": False,
            "createdAt": ot.created_at, "updatedAt": ot.updated_at,
        }

    @_api
    async def list_schemas(self, request: Request) -> Response:
        """``GET /crm-object-schemas/v3/schemas``: the portal's custom objects."""
        customs = {ot.name: ot for ot in self._type_map().values() if ot.custom}
        return json_response({"results": [self._schema(ot) for ot in customs.values()]})

    @_api
    async def get_schema(self, request: Request) -> Response:
        """``GET /crm-object-schemas/v3/schemas/{object_type}``."""
        ot = self.object_type(request.path_params["object_type"])
        if not ot.custom:
            raise ApiError(404, f"{ot.name} is not a custom object", "OBJECT_NOT_FOUND")
        return json_response(self._schema(ot))

    # ---- associations v4 --------------------------------------------------------------------

    @staticmethod
    def _association_item(to_id: int, type_ids: set[int]) -> dict[str, Any]:
        return {"toObjectId": str(to_id), "associationTypes": [
            {"category": "HUBSPOT_DEFINED", "typeId": t, "label": None} for t in sorted(type_ids)
        ]}

    @_api
    async def list_associations(self, request: Request) -> Response:
        """``GET /crm/v4/objects/{object_type}/{object_id}/associations/{to_object_type}``."""
        ot = self.object_type(request.path_params["object_type"])
        to = self.object_type(request.path_params["to_object_type"])
        key = request.path_params["object_id"]
        limit = _query_int(request, "limit", ASSOCIATION_PAGE_LIMIT, 1, ASSOCIATION_PAGE_LIMIT)
        after = _query_after(request)
        linked = self._associated(ot.name, to.name, [int(key)] if key.isdigit() else [])
        items = sorted((to_id, types) for to_id, types in
                       linked.get(int(key) if key.isdigit() else -1, {}).items() if to_id > after)
        body: dict[str, Any] = {"results": [self._association_item(t, ts)
                                            for t, ts in items[:limit]]}
        if len(items) > limit:
            cursor = str(items[limit - 1][0])
            path = (f"/crm/v4/objects/{quote(request.path_params['object_type'])}/{key}"
                    f"/associations/{quote(request.path_params['to_object_type'])}")
            body["paging"] = {"next": {"after": cursor,
                                       "link": self._next_link(request, path, cursor)}}
        return json_response(body)

    @_api
    async def associate_default(self, request: Request) -> Response:
        """``PUT /crm/v4/objects/{object_type}/{object_id}/associations/default/...``."""
        started = _wall_clock()
        ot = self.object_type(request.path_params["object_type"])
        to = self.object_type(request.path_params["to_object_type"])
        if (ot.name, to.name) not in ASSOCIATION_TYPES:
            raise ApiError(400, f"No default association type from {ot.name} to {to.name}")
        ends = []
        for kind, key in ((ot, request.path_params["object_id"]),
                          (to, request.path_params["to_object_id"])):
            if not self._resolve(kind, None, [key]):
                raise ApiError(404, f"No {kind.singular} with id {key}", "OBJECT_NOT_FOUND")
            ends.append(int(key))
        type_id = self._write(lambda: self._link(ot.name, ends[0], to.name, ends[1]))
        result = {"from": {"id": str(ends[0])}, "to": {"id": str(ends[1])},
                  "associationSpec": {"associationCategory": "HUBSPOT_DEFINED",
                                      "associationTypeId": type_id}}
        return json_response(_batch_body([result], started))

    @_api
    async def batch_read_associations(self, request: Request) -> Response:
        """``POST /crm/v4/associations/{from_object_type}/{to_object_type}/batch/read``."""
        started = _wall_clock()
        ot = self.object_type(request.path_params["from_object_type"])
        to = self.object_type(request.path_params["to_object_type"])
        inputs = _inputs(await _json_body(request), ASSOCIATION_BATCH_MAX_INPUTS)
        keys = list(dict.fromkeys(_input_id(item, i) for i, item in enumerate(inputs)))
        linked = self._associated(ot.name, to.name, [int(k) for k in keys if k.isdigit()])
        results, errors = [], []
        for key in keys:
            found = linked.get(int(key)) if key.isdigit() else None
            if found:
                results.append({"from": {"id": key}, "to": [
                    self._association_item(t, ts) for t, ts in sorted(found.items())]})
            else:
                errors.append(_standard_error(
                    "OBJECT_NOT_FOUND", f"No {to.singular} is associated with {ot.singular} "
                    f"{key}.", {"fromObjectId": [key]}, "crm.associations.NO_ASSOCIATIONS_FOUND"))
        return json_response(_batch_body(results, started, errors), 207 if errors else 200)

    @_api
    async def association_labels(self, request: Request) -> Response:
        """``GET /crm/v4/associations/{from_object_type}/{to_object_type}/labels``."""
        ot = self.object_type(request.path_params["from_object_type"])
        to = self.object_type(request.path_params["to_object_type"])
        type_id = ASSOCIATION_TYPES.get((ot.name, to.name))
        results = [] if type_id is None else [
            {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}]
        return json_response({"results": results})


def routes(state: SandboxState) -> list[BaseRoute]:
    """The HubSpot routes, relative to the ``/hubspot`` mount."""
    hs = HubSpotEmulator(state)
    objects = "/crm/v3/objects/{object_type}"
    v4 = "/crm/v4/objects/{object_type}/{object_id}/associations"
    pairs = "/crm/v4/associations/{from_object_type}/{to_object_type}"
    return [
        Route(f"{objects}/search", hs.search, methods=["POST"]),
        Route(f"{objects}/batch/read", hs.batch_read, methods=["POST"]),
        Route(f"{objects}/batch/create", hs.batch_create, methods=["POST"]),
        Route(f"{objects}/batch/update", hs.batch_update, methods=["POST"]),
        Route(f"{objects}/batch/upsert", hs.batch_upsert, methods=["POST"]),
        Route(f"{objects}/batch/archive", hs.batch_archive, methods=["POST"]),
        Route(objects, hs.list_objects, methods=["GET"]),
        Route(objects, hs.create_object, methods=["POST"]),
        Route(f"{objects}/{{object_id}}", hs.get_object, methods=["GET"]),
        Route(f"{objects}/{{object_id}}", hs.update_object, methods=["PATCH"]),
        Route(f"{objects}/{{object_id}}", hs.archive_object, methods=["DELETE"]),
        Route("/crm/v3/owners", hs.list_owners, methods=["GET"]),
        Route("/crm/v3/owners/", hs.list_owners, methods=["GET"]),
        Route("/crm/v3/owners/{owner_id}", hs.get_owner, methods=["GET"]),
        Route("/crm/v3/properties/{object_type}", hs.list_properties, methods=["GET"]),
        Route("/crm/v3/properties/{object_type}", hs.create_property, methods=["POST"]),
        Route("/crm/v3/properties/{object_type}/{property_name}", hs.get_property,
              methods=["GET"]),
        Route("/crm/v3/properties/{object_type}/{property_name}", hs.update_property,
              methods=["PATCH"]),
        Route("/crm/v3/pipelines/{object_type}", hs.list_pipelines, methods=["GET"]),
        Route("/crm/v3/pipelines/{object_type}/{pipeline_id}", hs.get_pipeline,
              methods=["GET"]),
        Route("/crm/v3/pipelines/{object_type}/{pipeline_id}/stages", hs.list_stages,
              methods=["GET"]),
        Route("/crm-object-schemas/v3/schemas", hs.list_schemas, methods=["GET"]),
        Route("/crm-object-schemas/v3/schemas/{object_type}", hs.get_schema, methods=["GET"]),
        Route(f"{v4}/{{to_object_type}}", hs.list_associations, methods=["GET"]),
        Route(f"{v4}/default/{{to_object_type}}/{{to_object_id}}", hs.associate_default,
              methods=["PUT"]),
        Route(f"{pairs}/batch/read", hs.batch_read_associations, methods=["POST"]),
        Route(f"{pairs}/labels", hs.association_labels, methods=["GET"]),
    ]
