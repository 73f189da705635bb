"""HubSpot CRM search for the emulator: ``PublicObjectSearchRequest`` -> one SQL query.

Covers the filter operators of ``POST /crm/v3/objects/{object}/search`` (EQ, NEQ, LT, LTE, GT,
GTE, BETWEEN, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN, NOT_CONTAINS_TOKEN),
the request limits HubSpot enforces (5 filter groups, 10 filters per group, 25 filters in all,
200 results per page, one sort, no paging past 10,000 results), date values as epoch
milliseconds or ISO 8601, numeric comparison for number properties, and the free-text ``query``.

Property values live in the ``objects.properties`` JSON; the system properties map to columns
(``hs_object_id`` -> ``id``, the create and modify dates -> ``created_at`` / ``updated_at``), so
the incremental readers' hot query (``hs_lastmodifieddate GTE x`` sorted on it) runs on the
``objects_by_updated`` index. Also holds the timestamp helpers the rest of the emulator shares.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import sqlite3
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 10
MAX_FILTERS_TOTAL = 25
SEARCH_DEFAULT_LIMIT = 10
SEARCH_MAX_LIMIT = 200
SEARCH_RESULT_WINDOW = 10_000
MAX_QUERY_LENGTH = 3000

OPERATORS = frozenset(
    {
        "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
        "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
    }
)

# System properties held in columns: name -> (column, kind).
SYSTEM_COLUMNS: dict[str, tuple[str, str]] = {
    "hs_object_id": ("id", "id"),
    "createdate": ("created_at", "stamp"),
    "hs_createdate": ("created_at", "stamp"),
    "hs_lastmodifieddate": ("updated_at", "stamp"),
    "lastmodifieddate": ("updated_at", "stamp"),
}

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")
_INT = re.compile(r"^-?\d+$")


class SearchError(ValueError):
    """A search request HubSpot would refuse with 400 VALIDATION_ERROR."""


# ---- timestamps and values ------------------------------------------------------------------


def stamp(moment: dt.datetime) -> str:
    """Render a UTC datetime as HubSpot does: ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def ms_to_stamp(ms: int) -> str:
    """Render epoch milliseconds as a HubSpot timestamp.

    Raises:
        ValueError: The instant is outside years 1-9999.
    """
    try:
        return stamp(_EPOCH + dt.timedelta(milliseconds=ms))
    except OverflowError:
        raise ValueError(f"{ms} is out of range for a timestamp") from None


@functools.lru_cache(maxsize=65536)
def _instant_from_text(text: str) -> int | None:
    text = text.strip()
    if _INT.match(text):
        return int(text)
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        else:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return (moment - _EPOCH) // _MS


def to_epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds from an epoch-ms number or string, or an ISO 8601 date or datetime.

    Returns:
        None when the value is none of these.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return _instant_from_text(value)
    return None


def normalize_number(value: Any) -> str | None:
    """A number as HubSpot stores it (``"1500.5"``, ``"1500"``); None when not a number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _as_number(text: Any) -> float | None:
    if text is None:
        return None
    if isinstance(text, int | float):
        return float(text)
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _as_instant(text: Any) -> int | None:
    if text is None:
        return None
    if isinstance(text, int):
        return text
    return _instant_from_text(str(text))


@functools.lru_cache(maxsize=4096)
def _token_pattern(token: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in token.lower().split("*")]
    return re.compile(r"(?<!\w)" + r"\w*".join(parts) + r"(?!\w)")


def _contains_token(text: Any, token: Any) -> int:
    if text is None or token is None:
        return 0
    return 1 if _token_pattern(str(token)).search(str(text).lower()) else 0


def register_functions(con: sqlite3.Connection) -> None:
    """Register the SQL functions search relies on (``hs_ms``, ``hs_token``)."""
    con.create_function("hs_ms", 1, _as_instant, deterministic=True)
    con.create_function("hs_token", 2, _contains_token, deterministic=True)


# ---- the request ----------------------------------------------------------------------------


@dataclass
class SearchPlan:
    """A validated search: the SQL pieces plus what to render."""

    where: str
    params: list[Any]
    order_by: str
    limit: int
    offset: int
    properties: list[str] | None
    properties_with_history: list[str] | None = None


def _int_field(body: dict[str, Any], name: str, default: int) -> int:
    raw = body.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        raise SearchError(f"{name} must be an integer, got {raw!r}")
    try:
        return int(str(raw))
    except ValueError:
        raise SearchError(f"{name} must be an integer, got {raw!r}") from None


def _name_list(body: dict[str, Any], name: str) -> list[str] | None:
    raw = body.get(name)
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise SearchError(f"{name} must be a list of property names")
    return [item.strip() for item in raw if item.strip()]


def _expression(name: str, prop_types: dict[str, str]) -> tuple[str, str]:
    """SQL expression and value kind for a property (id, stamp, number, instant, bool, text)."""
    if name in SYSTEM_COLUMNS:
        return SYSTEM_COLUMNS[name]
    if not _NAME.match(name):
        raise SearchError(f"Invalid property name {name!r}")
    raw = f"json_extract(properties, '$.\"{name}\"')"
    kind = {"number": "number", "date": "instant", "datetime": "instant", "bool": "bool"}.get(
        prop_types.get(name, "string"), "text"
    )
    # Native SQL where it is exact for what the API stores (clean numbers, ISO dates); the
    # Python functions only for the rest (epoch-ms text), as they cost twice the time.
    if kind == "number":
        return f"cast({raw} as real)", kind
    if kind == "instant":
        return (
            f"(case when {raw} glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' then "
            f"cast(round((julianday({raw}) - 2440587.5) * 86400000.0) as integer) "
            f"else hs_ms({raw}) end)"
        ), kind
    if kind == "text":
        return f"lower({raw})", kind
    return raw, kind


def _raw_text(name: str) -> str:
    column = SYSTEM_COLUMNS.get(name)
    if column:
        return f"cast({column[0]} as text)"
    return f"json_extract(properties, '$.\"{name}\"')"


def _convert(kind: str, value: Any, name: str) -> Any:
    """A filter value in the form the SQL expression of ``kind`` compares against."""
    if value is None:
        raise SearchError(f"A filter on {name} needs a value")
    if kind == "id":
        number = normalize_number(value)
        if number is None or not _INT.match(number):
            raise SearchError(f"{value!r} is not a valid value for {name}: expected a record id")
        return int(number)
    if kind == "number":
        amount = _as_number(value)
        if amount is None:
            raise SearchError(f"{value!r} is not a valid number for {name}")
        return amount
    if kind in ("stamp", "instant"):
        ms = to_epoch_ms(value)
        try:
            if ms is None:
                raise ValueError(value)
            return ms_to_stamp(ms) if kind == "stamp" else ms
        except ValueError:
            raise SearchError(
                f"{value!r} is not a valid date for {name}: use epoch milliseconds or ISO 8601"
            ) from None
    if kind == "bool":
        text = str(value).lower()
        if text not in ("true", "false"):
            raise SearchError(f"{value!r} is not a valid boolean for {name}")
        return text
    return str(value).lower()


def _condition(flt: Any, prop_types: dict[str, str]) -> tuple[str, list[Any]]:
    if not isinstance(flt, dict):
        raise SearchError("Each filter must be an object with propertyName and operator")
    name = flt.get("propertyName")
    operator = flt.get("operator", "EQ")
    if not isinstance(name, str) or not name:
        raise SearchError("A filter is missing propertyName")
    if operator not in OPERATORS:
        raise SearchError(
            f"Invalid operator {operator!r}; expected one of {', '.join(sorted(OPERATORS))}"
        )
    expr, kind = _expression(name, prop_types)
    if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        if kind in ("id", "stamp"):
            return ("1" if operator == "HAS_PROPERTY" else "0"), []
        raw = _raw_text(name)
        if operator == "HAS_PROPERTY":
            return f"({raw} is not null and {raw} <> '')", []
        return f"({raw} is null or {raw} = '')", []
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = flt.get("value")
        if token is None or str(token).strip() == "":
            raise SearchError(f"{operator} on {name} needs a value")
        raw = _raw_text(name)
        if operator == "CONTAINS_TOKEN":
            return f"hs_token({raw}, ?) = 1", [str(token)]
        return f"({raw} is null or hs_token({raw}, ?) = 0)", [str(token)]
    if operator in ("IN", "NOT_IN"):
        values = flt.get("values")
        if not isinstance(values, list) or not values:
            raise SearchError(f"{operator} on {name} needs a non-empty values list")
        converted = [_convert(kind, v, name) for v in values]
        marks = ", ".join("?" for _ in converted)
        if operator == "IN":
            return f"{expr} in ({marks})", converted
        return f"({expr} is null or {expr} not in ({marks}))", converted
    value = _convert(kind, flt.get("value"), name)
    if operator == "BETWEEN":
        high = _convert(kind, flt.get("highValue"), name)
        return f"{expr} between ? and ?", [value, high]
    if operator == "NEQ":
        return f"({expr} is null or {expr} <> ?)", [value]
    sql_op = {"EQ": "=", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}[operator]
    return f"{expr} {sql_op} ?", [value]


def _filters(body: dict[str, Any], prop_types: dict[str, str]) -> tuple[str, list[Any]]:
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        raise SearchError("filterGroups must be a list")
    if len(groups) > MAX_FILTER_GROUPS:
        raise SearchError(
            f"Too many filter groups: {len(groups)}. A search accepts at most "
            f"{MAX_FILTER_GROUPS} filterGroups."
        )
    total = 0
    clauses: list[str] = []
    params: list[Any] = []
    for index, group in enumerate(groups):
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise SearchError(f"filterGroups[{index}] must hold a filters list")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise SearchError(
                f"Too many filters in filterGroups[{index}]: {len(filters)}. A filter group "
                f"accepts at most {MAX_FILTERS_PER_GROUP} filters."
            )
        total += len(filters)
        parts = []
        for flt in filters:
            sql, values = _condition(flt, prop_types)
            parts.append(sql)
            params.extend(values)
        if parts:
            clauses.append("(" + " and ".join(parts) + ")")
    if total > MAX_FILTERS_TOTAL:
        raise SearchError(
            f"Too many filters: {total}. A search accepts at most {MAX_FILTERS_TOTAL} filters "
            "across all filterGroups."
        )
    return (" or ".join(clauses) if clauses else ""), params


def _sorts(body: dict[str, Any], prop_types: dict[str, str]) -> str:
    sorts = body.get("sorts") or []
    if not isinstance(sorts, list):
        raise SearchError("sorts must be a list")
    if len(sorts) > 1:
        raise SearchError("Only one sort can be applied to a search")
    if not sorts:
        return "id asc"
    sort = sorts[0]
    name: object  # a request body's propertyName may be any JSON value until checked below
    if isinstance(sort, str):
        name, direction = sort.lstrip("-"), "DESCENDING" if sort.startswith("-") else "ASCENDING"
    elif isinstance(sort, dict):
        name, direction = sort.get("propertyName"), sort.get("direction", "ASCENDING")
    else:
        raise SearchError("A sort must be {propertyName, direction}")
    if not isinstance(name, str) or direction not in ("ASCENDING", "DESCENDING"):
        raise SearchError("A sort needs propertyName and direction ASCENDING or DESCENDING")
    expr, kind = _expression(name, prop_types)
    order = "asc" if direction == "ASCENDING" else "desc"
    if kind == "id":
        return f"id {order}"
    if kind == "stamp":
        return f"{expr} {order}, id asc"
    # Records without the value come last either way.
    return f"({expr} is null) asc, {expr} {order}, id asc"


def plan_search(
    body: Any, prop_types: dict[str, str], text_properties: list[str]
) -> SearchPlan:
    """Validate a search request and translate it to SQL over the ``objects`` table.

    Args:
        body: The parsed JSON body.
        prop_types: Property name -> HubSpot type (``number``, ``datetime``...) for the object.
        text_properties: The properties the free-text ``query`` looks in.

    Raises:
        SearchError: Any request HubSpot answers with 400.
    """
    if not isinstance(body, dict):
        raise SearchError("The search body must be a JSON object")
    limit = _int_field(body, "limit", SEARCH_DEFAULT_LIMIT)
    if not 1 <= limit <= SEARCH_MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {SEARCH_MAX_LIMIT}, got {limit}")
    offset = _int_field(body, "after", 0)
    if offset < 0:
        raise SearchError(f"after must not be negative, got {offset}")
    if offset + limit > SEARCH_RESULT_WINDOW:
        raise SearchError(
            f"Search results are limited to {SEARCH_RESULT_WINDOW} per query: after ({offset}) + "
            f"limit ({limit}) goes past it. Narrow the filters and search again."
        )
    where, params = _filters(body, prop_types)
    query = body.get("query")
    if query is not None and str(query).strip():
        text = str(query).strip().lower()
        if len(text) > MAX_QUERY_LENGTH:
            raise SearchError(f"query must be at most {MAX_QUERY_LENGTH} characters")
        likes = [f"lower({_raw_text(name)}) like ?" for name in text_properties]
        if likes:
            clause = "(" + " or ".join(likes) + ")"
            params.extend(f"%{text}%" for _ in likes)
            where = f"({where}) and {clause}" if where else clause
        else:
            where = "0"
    return SearchPlan(
        where=where or "1",
        params=params,
        order_by=_sorts(body, prop_types),
        limit=limit,
        offset=offset,
        properties=_name_list(body, "properties"),
        properties_with_history=_name_list(body, "propertiesWithHistory"),
    )


# ---- property values on write ---------------------------------------------------------------

_DAY_MS = 86_400_000


class InvalidValue(ValueError):
    """A property value HubSpot rejects; ``code`` is HubSpot's error name for it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def coerce_value(
    prop_type: str, field_type: str, options: list[str] | None, raw: Any
) -> str | None:
    """A written property value as HubSpot stores it (a string), or None to clear it.

    Args:
        prop_type: The property's ``type`` (string, number, bool, enumeration, date, datetime).
        field_type: The property's ``fieldType`` (``checkbox`` values are ``;``-separated).
        options: Allowed enumeration values; None or empty means any value.
        raw: The value as sent in JSON.

    Raises:
        InvalidValue: The value does not fit the property type.
    """
    if raw is None or (isinstance(raw, str) and raw == ""):
        return None
    if isinstance(raw, dict | list):
        raise InvalidValue("INVALID_VALUE", f"{raw!r} is not a scalar property value")
    if prop_type == "number":
        number = normalize_number(raw)
        if number is None:
            raise InvalidValue("INVALID_DOUBLE", f"{raw!r} was not a valid number.")
        return number
    if prop_type == "bool":
        text = str(raw).strip().lower()
        if text not in ("true", "false"):
            raise InvalidValue("INVALID_BOOLEAN", f"{raw!r} was not a valid boolean (true/false).")
        return text
    if prop_type in ("date", "datetime"):
        ms = to_epoch_ms(raw)
        try:
            rendered = ms_to_stamp(ms) if ms is not None else ""
        except ValueError:
            rendered = ""
        if ms is None or not rendered:
            raise InvalidValue(
                "INVALID_DATE",
                f"{raw!r} was not a valid {prop_type}: use epoch milliseconds or ISO 8601.",
            )
        if prop_type == "datetime":
            return rendered
        if ms % _DAY_MS:
            moment = _EPOCH + dt.timedelta(milliseconds=ms)
            raise InvalidValue(
                "INVALID_DATE",
                f"{raw} is at {moment.hour}:{moment.minute}:{moment.second}."
                f"{moment.microsecond // 1000} UTC, not midnight!",
            )
        return rendered[:10]
    text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        text = normalize_number(raw) or text
    if prop_type == "enumeration" and options:
        allowed = set(options)
        values = text.split(";") if field_type == "checkbox" else [text]
        for value in values:
            if value not in allowed:
                shown = ", ".join(sorted(allowed)[:20])
                raise InvalidValue(
                    "INVALID_OPTION", f"{value} was not one of the allowed options: [{shown}]"
                )
    return text
