"""SuiteQL for the NetSuite emulator: parse, validate, translate to SQLite, render the results.

The engine accepts a real subset of SuiteQL (Oracle-flavoured SQL), not canned queries:

1. ``sqlglot`` parses the text with its Oracle dialect (the closest to SuiteQL).
2. The tree is checked against an allow-list: one ``SELECT`` (or a set operation of them), tables
   that exist in the store, columns that exist on those tables, and a fixed set of operators and
   functions. Anything else is refused with NetSuite's "Invalid search query" error.
3. Columns are resolved through the query's scopes (aliases, joins, derived tables, correlated
   subqueries), and Oracle-only constructs are rewritten for SQLite: ``TO_DATE``/``TO_TIMESTAMP``
   of a literal become ISO text comparable with the stored text, ``TO_CHAR`` becomes
   ``strftime``, ``SYSDATE`` becomes ``datetime('now')``, date arithmetic uses SQLite's date
   modifiers, ``/`` divides as decimals, and Oracle's "nulls sort last" ordering is kept except
   on ``NOT NULL`` columns, where it would stop SQLite from walking an index. ``LIKE`` becomes
   ``GLOB`` (Oracle's LIKE is case-sensitive).
4. Rows are rendered as SuiteQL renders them: lower-case column names, ``NULL`` omitted, integer
   keys as strings, dates as ``M/D/YYYY`` and timestamps as ``M/D/YYYY h:mm am`` (minute
   precision; ``TO_CHAR(lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS')`` gives full precision).
   The formatting runs in SQLite, in an outer SELECT over the page's rows, so the query itself
   keeps its index plan.

Counting for ``totalResults`` is bounded: at most 100,001 rows are counted (a few milliseconds
even on millions of rows, and cached per query and store generation). A query with more rows
than SuiteQL will return reports ``totalResults`` = 100,000 and keeps ``hasMore`` true at the
cap, so an offset pager meets the 400 past the cap instead of stopping silently.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from sandbox.store import NETSUITE_DDL

MAX_RESULTS = 100_000
"""SuiteQL through REST returns at most this many rows of one query."""

MAX_PAGE_SIZE = 1000
"""Largest (and default) ``limit`` of one SuiteQL page."""

ERROR_PREFIX = (
    "Invalid search query. Detailed unprocessed description follows. Search error occurred: "
)

# Column kinds decide how a value is rendered: "key" (integer id or reference, as a string),
# "num" (JSON number), "text", "date" (M/D/YYYY) and "ts" (M/D/YYYY h:mm am).
Kind = str

TIMESTAMP_COLUMNS = frozenset(
    {"lastmodifieddate", "datecreated", "createddate", "linelastmodifieddate", "deleteddate"}
)
"""Text columns holding ``YYYY-MM-DD HH:MM:SS`` (UTC)."""

EXTRA_DATE_COLUMNS = frozenset({"custrecord_rc_effective_from", "custrecord_rc_effective_to"})
"""Date columns whose name does not end in ``date``."""

COUNT_COLUMNS = frozenset({"daysuntilnetdue", "linesequencenumber"})
"""Integer columns that are quantities, not keys (rendered as numbers)."""

BOOLEAN_COLUMNS_EXTRA = frozenset(
    {"posted", "voided", "closed", "alllocked", "arlocked", "aplocked", "mainline", "taxline"}
)
"""``'T'``/``'F'`` columns whose name does not start with ``is``."""


class SuiteQLError(Exception):
    """A query SuiteQL would refuse.

    Attributes:
        detail: What went wrong, appended to NetSuite's "Invalid search query" prefix.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def message(self) -> str:
        """The full ``detail`` text of NetSuite's error body."""
        return ERROR_PREFIX + self.detail


@dataclass(frozen=True)
class TableInfo:
    """One table as SuiteQL sees it.

    Attributes:
        name: The table name (lower case).
        columns: Column name -> kind, in declaration order.
        notnull: Columns that can never be NULL (``NOT NULL`` or the integer primary key).
        booleans: ``'T'``/``'F'`` columns.
    """

    name: str
    columns: dict[str, Kind]
    notnull: frozenset[str]
    booleans: frozenset[str]


def _column_kind(name: str, declared: str) -> Kind:
    declared = declared.lower()
    if declared == "integer":
        return "num" if name in COUNT_COLUMNS else "key"
    if declared == "real":
        return "num"
    if name in TIMESTAMP_COLUMNS:
        return "ts"
    if name.endswith("date") or name in EXTRA_DATE_COLUMNS:
        return "date"
    return "text"


def _load_schema() -> dict[str, TableInfo]:
    con = sqlite3.connect(":memory:")
    try:
        con.executescript(NETSUITE_DDL)
        names = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
        tables: dict[str, TableInfo] = {}
        for name in names:
            columns: dict[str, Kind] = {}
            notnull: set[str] = set()
            booleans: set[str] = set()
            for _cid, col, declared, nn, _default, pk in con.execute(
                f'pragma table_info("{name}")'
            ):
                columns[col] = _column_kind(col, declared)
                if nn or (pk and declared.lower() == "integer"):
                    notnull.add(col)
                if columns[col] == "text" and (
                    col.startswith("is") or col in BOOLEAN_COLUMNS_EXTRA
                ):
                    booleans.add(col)
            tables[name] = TableInfo(name, columns, frozenset(notnull), frozenset(booleans))
        return tables
    finally:
        con.close()


TABLES: dict[str, TableInfo] = _load_schema()
"""Every table of the NetSuite store, keyed by name."""


# ---- date literals and formats -----------------------------------------------------------------

_ORACLE_TOKENS = re.compile(
    r'"[^"]*"|HH24|HH12|YYYY|FF\d?|TZH|TZM|A\.M\.|P\.M\.|AM|PM|MON|MM|DD|HH|MI|SS|RR|YY|.',
    re.IGNORECASE,
)
_TO_STRFTIME = {"YYYY": "%Y", "MM": "%m", "DD": "%d", "HH24": "%H", "MI": "%M", "SS": "%S"}
_TO_STRPTIME = {
    "YYYY": "%Y",
    "RR": "%y",
    "YY": "%y",
    "MM": "%m",
    "MON": "%b",
    "DD": "%d",
    "HH24": "%H",
    "HH12": "%I",
    "HH": "%I",
    "MI": "%M",
    "SS": "%S",
    "AM": "%p",
    "PM": "%p",
    "A.M.": "%p",
    "P.M.": "%p",
    "TZH": "%z",
    "TZM": "",
}


def oracle_to_strftime(fmt: str) -> str:
    """Translate an Oracle ``TO_CHAR`` date format into an SQLite ``strftime`` format.

    Args:
        fmt: e.g. ``YYYY-MM-DD"T"HH24:MI:SS``.

    Raises:
        SuiteQLError: A format element SQLite cannot produce (e.g. ``MON`` or ``AM``).
    """
    out: list[str] = []
    for token in _ORACLE_TOKENS.findall(fmt):
        upper = token.upper()
        if token.startswith('"'):
            out.append(token[1:-1].replace("%", "%%"))
        elif upper in _TO_STRFTIME:
            out.append(_TO_STRFTIME[upper])
        elif not token.isalnum():
            out.append(token.replace("%", "%%"))
        else:
            raise SuiteQLError(f"Unsupported date format element '{token}' in '{fmt}'.")
    return "".join(out)


def _strptime_format(fmt: str) -> str:
    """A Python ``strptime`` format from an Oracle format (possibly half-converted by sqlglot)."""
    out: list[str] = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            out.append(fmt[i : i + 2])
            i += 2
            continue
        match = _ORACLE_TOKENS.match(fmt, i)
        token = match.group(0) if match else fmt[i]
        upper = token.upper()
        if token.startswith('"'):
            out.append(token[1:-1])
        elif upper.startswith("FF"):
            out.append("%f")
        elif upper in _TO_STRPTIME:
            out.append(_TO_STRPTIME[upper])
        else:
            out.append(token)
        i += len(token)
    text = "".join(out)
    return text.replace("%z:", "%z")


_FALLBACK_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%d",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
)


def parse_datetime(text: str, fmt: str | None = None) -> dt.datetime:
    """Parse a date/time literal of a query into a naive UTC datetime.

    Args:
        text: The literal, e.g. ``2026-11-02 10:00:00`` or ``11/2/2026``.
        fmt: An Oracle format (``YYYY-MM-DD HH24:MI:SS``); without it, ISO forms and the
            account's ``M/D/YYYY`` forms are tried.

    Raises:
        SuiteQLError: The text does not match.
    """
    candidates = (_strptime_format(fmt),) if fmt else _FALLBACK_FORMATS
    for candidate in candidates:
        try:
            value = dt.datetime.strptime(text.strip(), candidate)
        except ValueError:
            continue
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    shown = f" with format '{fmt}'" if fmt else ""
    raise SuiteQLError(f"Parse of date/time '{text}' failed{shown}.")


def iso_text(value: dt.datetime, kind: Kind) -> str:
    """The stored text form of a datetime for comparison with a column of ``kind``.

    A date column compares with ``YYYY-MM-DD`` when the value is midnight; otherwise the full
    ``YYYY-MM-DD HH:MM:SS`` text, which sorts after the bare date of the same day, as Oracle's
    DATE comparison does.
    """
    midnight = value.time() == dt.time(0)
    if kind == "date" and midnight:
        return value.strftime("%Y-%m-%d")
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text


# ---- rendering -----------------------------------------------------------------------------------


def render_date(value: Any) -> Any:
    """``2026-11-02`` -> ``11/2/2026`` (the account's date format)."""
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-":
        return f"{int(value[5:7])}/{int(value[8:10])}/{value[:4]}"
    return value


def render_timestamp(value: Any) -> Any:
    """``2026-11-02 15:04:59`` -> ``11/2/2026 3:04 pm`` (minute precision, as NetSuite shows)."""
    if not isinstance(value, str) or len(value) < 10 or value[4] != "-":
        return value
    date = render_date(value)
    if len(value) < 16:
        return f"{date} 12:00 am"
    hour = int(value[11:13])
    suffix = "am" if hour < 12 else "pm"
    return f"{date} {hour % 12 or 12}:{value[14:16]} {suffix}"


# ---- the translator ------------------------------------------------------------------------------

_AGGREGATES = (exp.Count, exp.Sum, exp.Min, exp.Max, exp.Avg)
_SET_OPS = (exp.Union, exp.Except, exp.Intersect)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)

# Nodes that pass through as they are (their children are still checked).
# fmt: off
_ALLOWED: frozenset[type[exp.Expression]] = frozenset({
    # structure
    exp.Alias, exp.Column, exp.Identifier, exp.Star, exp.Paren, exp.Tuple, exp.Literal,
    exp.Null, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Distinct,
    # predicates
    exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In,
    exp.Between, exp.Like, exp.Escape, exp.Is, exp.Exists,
    # arithmetic and conditionals
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.DPipe, exp.Concat, exp.Case,
    exp.If, exp.Nvl2, exp.DecodeCase, exp.Cast, exp.DataType, exp.DataTypeParam,
    # functions (Anonymous ones are checked against _ANONYMOUS_ALLOWED)
    exp.Count, exp.Sum, exp.Min, exp.Max, exp.Avg, exp.Coalesce, exp.Upper, exp.Lower,
    exp.Trim, exp.Substring, exp.Length, exp.Round, exp.Abs, exp.StrToDate, exp.StrToTime,
    exp.DateStrToDate, exp.ToChar, exp.ToNumber, exp.CurrentTimestamp, exp.CurrentDate,
    exp.DateTrunc, exp.Trunc, exp.AddMonths, exp.Anonymous,
})
# fmt: on
_ANONYMOUS_ALLOWED = frozenset({"TO_TIMESTAMP_TZ", "NVL", "TRUNC"})


@dataclass
class Output:
    """One result column: its name as SuiteQL returns it and how to render it."""

    name: str
    kind: Kind | None
    notnull: bool = False
    computed: bool = False


@dataclass
class _Source:
    alias: str
    record: str
    columns: dict[str, Kind]
    notnull: frozenset[str]


@dataclass
class _Scope:
    parent: _Scope | None
    sources: list[_Source] = field(default_factory=list)

    def by_alias(self, alias: str) -> _Source | None:
        for source in self.sources:
            if source.alias == alias:
                return source
        return None


def _kind(node: exp.Expression | None) -> Kind | None:
    if node is None:
        return None
    kind: Kind | None = node.meta.get("kind")
    return kind


def _notnull(node: exp.Expression) -> bool:
    return bool(node.meta.get("notnull"))


def _func(name: str, *args: exp.Expression, kind: Kind | None = None) -> exp.Expression:
    node = exp.Anonymous(this=name, expressions=list(args))
    node.meta["kind"] = kind
    return node


def _string(text: str, kind: Kind | None = "text") -> exp.Literal:
    node = exp.Literal.string(text)
    node.meta["kind"] = kind
    return node


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Dot):
        return f"{node.this.name}.{_function_name(node.expression)}".upper()
    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    if isinstance(node, exp.Func):
        return node.sql_name()
    return node.key.upper()


class _Translator:
    """Resolves and rewrites one parsed query in place."""

    def __init__(self) -> None:
        self.first_table: str | None = None

    # -- queries --

    def query(self, node: exp.Expression, parent: _Scope | None, top: bool = False) -> list[Output]:
        if isinstance(node, exp.Subquery):
            return self.query(node.this, parent, top)
        if isinstance(node, _SET_OPS):
            left = self.query(node.this, parent, top)
            right = self.query(node.expression, parent)
            if len(left) != len(right):
                raise SuiteQLError("The queries of a set operation select different column counts.")
            outputs = [
                Output(a.name, a.kind if a.kind == b.kind else (a.kind or b.kind))
                for a, b in zip(left, right, strict=True)
            ]
            self._order_by_outputs(node, outputs)
            self._check_limits(node)
            return outputs
        if isinstance(node, exp.Select):
            return self._select(node, parent, top)
        raise SuiteQLError("Only SELECT queries are supported.")

    def _select(self, sel: exp.Select, parent: _Scope | None, top: bool) -> list[Output]:
        for key in (
            "with",
            "with_",
            "kind",
            "hint",
            "exclude",
            "operation_modifiers",
            "into",
            "laterals",
            "pivots",
            "windows",
            "qualify",
            "connect",
            "prewhere",
            "sample",
        ):
            if sel.args.get(key):
                raise SuiteQLError(f"Unsupported query clause: {key.rstrip('_').upper()}.")
        scope = _Scope(parent)
        from_ = sel.args.get("from_")
        if from_ is None:
            raise SuiteQLError("A query must select FROM a record.")
        joins = list(sel.args.get("joins") or [])
        self._add_source(scope, from_.this, parent)
        for join in joins:
            side = (join.args.get("side") or "").upper()
            kind = (join.args.get("kind") or "").upper()
            bare_outer = side == "" and kind == "OUTER"
            if join.args.get("using") or join.args.get("method") or bare_outer:
                raise SuiteQLError("Unsupported join; use INNER JOIN or LEFT JOIN ... ON.")
            if side not in ("", "LEFT", "RIGHT", "FULL") or kind not in (
                "",
                "INNER",
                "OUTER",
                "CROSS",
            ):
                raise SuiteQLError(f"Unsupported join type {side} {kind}.".replace("  ", " "))
            self._add_source(scope, join.this, parent)
        if len(scope.sources) == 1 and scope.sources[0].record == "dual":
            sel.set("from_", None)
        self._expand_stars(sel, scope)

        for join in joins:
            on = join.args.get("on")
            if on is not None:
                self._visit(on, scope)
        for projection in list(sel.expressions):
            self._visit(projection, scope)
        for key in ("where", "group", "having"):
            clause = sel.args.get(key)
            if clause is not None:
                self._visit(clause, scope)

        outputs = self._name_outputs(sel)
        self._check_grouping(sel)
        order = sel.args.get("order")
        if order is not None:
            positions = _positions(outputs)
            for ordered in order.expressions:
                self._check_allowed(ordered)
                target = ordered.this
                if (
                    isinstance(target, exp.Column)
                    and not target.table
                    and (
                        target.name.lower() in positions
                        and not any(target.name.lower() in s.columns for s in scope.sources)
                    )
                ):
                    self._order_by_position(ordered, positions[target.name.lower()], outputs)
                elif isinstance(target, exp.Literal) and not target.is_string:
                    position = int(target.name)
                    if not 1 <= position <= len(outputs):
                        raise SuiteQLError(f"ORDER BY position {position} is out of range.")
                    target.meta.update(notnull=outputs[position - 1].notnull)
                else:
                    self._visit(target, scope)
                self._fix_nulls_order(ordered)
        self._check_limits(sel)
        return outputs

    def _order_by_outputs(self, node: exp.Expression, outputs: list[Output]) -> None:
        order = node.args.get("order")
        if order is None:
            return
        positions = _positions(outputs)
        for ordered in order.expressions:
            target = ordered.this
            if (
                isinstance(target, exp.Column)
                and not target.table
                and target.name.lower() in positions
            ):
                self._order_by_position(ordered, positions[target.name.lower()], outputs)
            elif isinstance(target, exp.Literal) and not target.is_string:
                position = int(target.name)
                if not 1 <= position <= len(outputs):
                    raise SuiteQLError(f"ORDER BY position {position} is out of range.")
            else:
                raise SuiteQLError(
                    "ORDER BY of a set operation must name a selected column or position."
                )
            self._fix_nulls_order(ordered)

    @staticmethod
    def _order_by_position(ordered: exp.Ordered, position: int, outputs: list[Output]) -> None:
        # A select-list alias becomes its position, which keeps meaning when the emulator renames
        # the result columns for rendering.
        literal = exp.Literal.number(position)
        literal.meta.update(kind=outputs[position - 1].kind, notnull=outputs[position - 1].notnull)
        ordered.set("this", literal)

    def _check_limits(self, node: exp.Expression) -> None:
        for key in ("limit", "offset"):
            clause = node.args.get(key)
            if clause is None:
                continue
            value = clause.args.get("count") if isinstance(clause, exp.Fetch) else clause.expression
            if isinstance(clause, exp.Fetch) and (
                clause.args.get("limit_options")
                and clause.args["limit_options"].args.get("percent")
            ):
                raise SuiteQLError("FETCH ... PERCENT is not supported.")
            if not (
                isinstance(value, exp.Literal) and not value.is_string and value.name.isdigit()
            ):
                raise SuiteQLError("Row limits must be whole-number literals.")

    @staticmethod
    def _fix_nulls_order(ordered: exp.Ordered) -> None:
        # Oracle sorts NULLs last ascending; SQLite first. The parse already carries Oracle's
        # choice, which the SQLite output spells out as NULLS LAST/FIRST. On a NOT NULL column
        # that clause changes nothing but stops SQLite from using an index: drop it.
        if _notnull(ordered.this):
            ordered.set("nulls_first", not ordered.args.get("desc"))

    def _add_source(self, scope: _Scope, node: exp.Expression, parent: _Scope | None) -> None:
        if isinstance(node, exp.Table):
            if node.args.get("db") or node.args.get("catalog"):
                raise SuiteQLError(f"Record '{node.sql()}' was not found.")
            if not isinstance(node.this, exp.Identifier):
                raise SuiteQLError("Unsupported table expression.")
            for key in ("joins", "pivots", "laterals", "version", "sample", "hints", "when"):
                if node.args.get(key):
                    raise SuiteQLError("Unsupported table expression.")
            name = node.name.lower()
            alias_node = node.args.get("alias")
            alias = alias_node.name.lower() if alias_node is not None else name
            if alias_node is not None and alias_node.args.get("columns"):
                raise SuiteQLError("Column aliases on a record are not supported.")
            if name == "dual":
                scope.sources.append(_Source(alias, "dual", {}, frozenset()))
                return
            info = TABLES.get(name)
            if info is None:
                raise SuiteQLError(f"Record '{node.name}' was not found.")
            if scope.by_alias(alias) is not None:
                raise SuiteQLError(f"The alias '{alias}' is used twice.")
            if self.first_table is None:
                self.first_table = name
            node.set("this", exp.to_identifier(name, quoted=True))
            if alias_node is not None:
                node.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
            scope.sources.append(_Source(alias, name, dict(info.columns), info.notnull))
            return
        if isinstance(node, exp.Subquery):
            outputs = self.query(node.this, parent)
            alias_node = node.args.get("alias")
            alias = alias_node.name.lower() if alias_node is not None else ""
            if alias_node is not None:
                node.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
            scope.sources.append(
                _Source(
                    alias,
                    alias or "subquery",
                    {o.name: o.kind for o in outputs},  # type: ignore[misc]
                    frozenset(o.name for o in outputs if o.notnull),
                )
            )
            return
        raise SuiteQLError("Unsupported FROM item.")

    def _expand_stars(self, sel: exp.Select, scope: _Scope) -> None:
        expanded: list[exp.Expression] = []
        for projection in sel.expressions:
            if isinstance(projection, exp.Star):
                sources = scope.sources
            elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                source = scope.by_alias(projection.table.lower())
                if source is None:
                    raise SuiteQLError(f"Invalid identifier '{projection.table}'.")
                sources = [source]
            else:
                expanded.append(projection)
                continue
            for source in sources:
                for column in source.columns:
                    expanded.append(exp.column(column, table=source.alias or None))
        if not expanded:
            raise SuiteQLError("The query selects no columns.")
        sel.set("expressions", expanded)

    def _name_outputs(self, sel: exp.Select) -> list[Output]:
        outputs: list[Output] = []
        counter = 0
        for projection in list(sel.expressions):
            if isinstance(projection, exp.Alias):
                name = projection.alias.lower()
                projection.set("alias", exp.to_identifier(name, quoted=True))
                node: exp.Expression = projection.this
            elif isinstance(projection, exp.Column):
                name = projection.name.lower()
                node = projection
            else:
                counter += 1
                name = f"expr{counter}"
                node = projection
                alias = exp.Alias(alias=exp.to_identifier(name, quoted=True))
                projection.replace(alias)
                alias.set("this", projection)
            computed = not isinstance(node, exp.Column)
            outputs.append(Output(name, _kind(node), _notnull(node), computed))
        return outputs

    def _check_grouping(self, sel: exp.Select) -> None:
        group = sel.args.get("group")
        projections = list(sel.expressions)
        has_aggregate = (
            any(_has_aggregate(p) for p in projections) or sel.args.get("having") is not None
        )
        if group is None and not has_aggregate:
            return
        keys = {g.sql() for g in (group.expressions if group is not None else [])}
        for projection in projections:
            node = projection.this if isinstance(projection, exp.Alias) else projection
            if node.sql() in keys:
                continue
            for column in _columns_outside_aggregates(node):
                if column.sql() not in keys:
                    what = "GROUP BY expression" if group is not None else "single-group query"
                    raise SuiteQLError(
                        f"'{column.name}' must appear in the GROUP BY clause or be used in an "
                        f"aggregate function (not a {what})."
                    )

    # -- expressions --

    def _check_allowed(self, node: exp.Expression) -> None:
        if isinstance(node, exp.Anonymous):
            if str(node.name).upper() not in _ANONYMOUS_ALLOWED:
                raise SuiteQLError(
                    f"Unsupported function '{node.name}'. Invalid or unsupported search."
                )
            return
        if isinstance(node, exp.Placeholder):
            raise SuiteQLError("Bind variables are not supported; put the values in the query.")
        if isinstance(node, exp.Column) and node.args.get("join_mark"):
            raise SuiteQLError("The (+) outer join operator is not supported; use LEFT JOIN.")
        if type(node) not in _ALLOWED:
            if isinstance(node, exp.Func) or isinstance(node, exp.Dot):
                name = _function_name(node)
                raise SuiteQLError(f"Unsupported function '{name}'. Invalid or unsupported search.")
            raise SuiteQLError(f"Unsupported expression: {node.sql(dialect='oracle')[:80]}.")

    def _visit(self, node: exp.Expression, scope: _Scope) -> exp.Expression:
        if isinstance(node, (exp.Select, *_SET_OPS)):
            outputs = self.query(node, scope)
            node.meta["outputs"] = outputs
            return node
        if isinstance(node, exp.Subquery):
            if node.args.get("alias"):
                raise SuiteQLError("Unsupported subquery alias.")
            outputs = self.query(node.this, scope)
            node.meta["kind"] = outputs[0].kind if len(outputs) == 1 else None
            node.meta["width"] = len(outputs)
            return node
        self._check_allowed(node)
        if isinstance(node, exp.Column):
            self._resolve_column(node, scope)
            return node
        for child in list(node.iter_expressions()):
            self._visit(child, scope)
        new = self._rewrite(node)
        if new is not node:
            node.replace(new)
        if "kind" not in new.meta:
            new.meta["kind"] = self._infer_kind(new)
        return new

    def _resolve_column(self, column: exp.Column, scope: _Scope) -> None:
        if isinstance(column.this, exp.Star):
            raise SuiteQLError("'*' is only allowed in the select list and in COUNT(*).")
        if column.args.get("db") or column.args.get("catalog"):
            raise SuiteQLError(f"Invalid identifier '{column.sql()}'.")
        name = column.name.lower()
        qualifier = column.table.lower() if column.table else None
        current: _Scope | None = scope
        while current is not None:
            if qualifier is not None:
                source = current.by_alias(qualifier)
                if source is not None:
                    if name not in source.columns:
                        raise SuiteQLError(
                            f"Field '{column.name}' for record '{source.record}' was not found."
                        )
                    self._bind(column, source, name)
                    return
            else:
                matches = [s for s in current.sources if name in s.columns]
                if len(matches) > 1:
                    raise SuiteQLError(f"Column '{column.name}' is ambiguously defined.")
                if matches:
                    self._bind(column, matches[0], name)
                    return
            current = current.parent
        if qualifier is not None:
            raise SuiteQLError(f"Invalid identifier '{column.table}.{column.name}'.")
        record = scope.sources[0].record if scope.sources else "unknown"
        raise SuiteQLError(f"Field '{column.name}' for record '{record}' was not found.")

    @staticmethod
    def _bind(column: exp.Column, source: _Source, name: str) -> None:
        column.set("this", exp.to_identifier(name, quoted=True))
        if source.alias:
            column.set("table", exp.to_identifier(source.alias, quoted=True))
        else:
            column.set("table", None)
        column.meta["kind"] = source.columns[name]
        column.meta["notnull"] = name in source.notnull

    def _infer_kind(self, node: exp.Expression) -> Kind | None:
        if isinstance(node, exp.Literal):
            return "text" if node.is_string else "num"
        if isinstance(node, (exp.Alias, exp.Paren)):
            return _kind(node.this)
        if isinstance(node, (exp.Count, exp.Sum, exp.Avg)):
            return "num"
        if isinstance(node, (exp.Min, exp.Max)):
            kind = _kind(node.this)
            return "num" if kind == "key" else kind
        if isinstance(node, exp.Coalesce):
            return next((k for k in map(_kind, [node.this, *node.expressions]) if k), None)
        if isinstance(node, exp.Case):
            branches = [i.args.get("true") for i in node.args.get("ifs") or []]
            branches.append(node.args.get("default"))
            return next((k for k in map(_kind, branches) if k and k != "text"), None) or next(
                (k for k in map(_kind, branches) if k), None
            )
        if isinstance(node, exp.Nvl2):
            return _kind(node.args.get("true")) or _kind(node.args.get("false"))
        if isinstance(
            node,
            (
                exp.Add,
                exp.Sub,
                exp.Mul,
                exp.Div,
                exp.Mod,
                exp.Neg,
                exp.Length,
                exp.Round,
                exp.Abs,
                exp.ToNumber,
                exp.Trunc,
            ),
        ):
            return "num"
        if isinstance(
            node, (exp.Upper, exp.Lower, exp.Trim, exp.Substring, exp.DPipe, exp.Concat, exp.ToChar)
        ):
            return "text"
        if isinstance(node, exp.Cast):
            to = node.args["to"]
            if to.is_type(*exp.DataType.TEXT_TYPES):
                return "text"
            if to.is_type("date"):
                return "date"
            if to.is_type(*exp.DataType.TEMPORAL_TYPES):
                return "ts"
            if to.is_type(*exp.DataType.NUMERIC_TYPES):
                return "num"
        return None

    # -- rewrites for SQLite --

    def _rewrite(self, node: exp.Expression) -> exp.Expression:
        if isinstance(node, (exp.StrToDate, exp.StrToTime, exp.DateStrToDate)):
            return self._temporal_literal(node)
        if isinstance(node, exp.Anonymous) and str(node.name).upper() == "TO_TIMESTAMP_TZ":
            args = node.expressions
            if not args or not (isinstance(args[0], exp.Literal) and args[0].is_string):
                raise SuiteQLError("TO_TIMESTAMP_TZ takes a string literal.")
            fmt = args[1].name if len(args) > 1 else None
            value = parse_datetime(args[0].name, fmt)
            return self._temporal(value, "ts")
        if isinstance(node, exp.Anonymous) and str(node.name).upper() == "NVL":
            return exp.Coalesce(this=node.expressions[0], expressions=node.expressions[1:])
        if isinstance(node, exp.ToChar):
            return self._to_char(node)
        if isinstance(node, exp.ToNumber):
            if node.args.get("format"):
                raise SuiteQLError("TO_NUMBER with a format is not supported.")
            return exp.cast(node.this, "REAL")
        if isinstance(node, exp.CurrentTimestamp):
            return _func("DATETIME", _string("now"), kind="ts")
        if isinstance(node, exp.CurrentDate):
            return _func("DATE", _string("now"), kind="date")
        if isinstance(node, exp.DateTrunc):
            unit = node.args.get("unit")
            unit_name = (unit.name if unit is not None else "DD").upper()
            modifiers = {
                "DD": [],
                "DDD": [],
                "J": [],
                "DAY": [],
                "MM": ["start of month"],
                "MON": ["start of month"],
                "MONTH": ["start of month"],
                "YYYY": ["start of year"],
                "YEAR": ["start of year"],
                "YY": ["start of year"],
            }
            if unit_name not in modifiers:
                raise SuiteQLError(f"Unsupported TRUNC unit '{unit_name}'.")
            return _func("DATE", node.this, *map(_string, modifiers[unit_name]), kind="date")
        if isinstance(node, exp.Anonymous) and str(node.name).upper() == "TRUNC":
            if len(node.expressions) != 1:
                raise SuiteQLError("TRUNC takes one argument here, or a date and a unit.")
            return self._rewrite(exp.Trunc(this=node.expressions[0]))
        if isinstance(node, exp.Trunc):
            decimals = node.args.get("decimals")
            if _kind(node.this) in ("date", "ts"):
                return _func("DATE", node.this, kind="date")
            if decimals is None:
                return exp.cast(node.this, "INTEGER")
            if not (isinstance(decimals, exp.Literal) and decimals.name.lstrip("-").isdigit()):
                raise SuiteQLError("TRUNC takes a whole-number literal of decimals.")
            scale = exp.Literal.number(10.0 ** int(decimals.name))
            scaled = exp.cast(exp.Mul(this=node.this, expression=scale), "INTEGER")
            return exp.Div(this=scaled, expression=scale.copy())
        if isinstance(node, exp.AddMonths):
            return _add_months(node.this, node.expression, _kind(node.this) or "ts")
        if isinstance(node, (exp.Add, exp.Sub)):
            return self._date_arithmetic(node)
        if isinstance(node, exp.Div):
            return exp.Div(this=exp.cast(node.this, "REAL"), expression=node.expression)
        if isinstance(node, exp.Substring):
            args = [node.this, node.args.get("start"), node.args.get("length")]
            return _func("SUBSTR", *[a for a in args if a is not None], kind="text")
        if isinstance(node, exp.DPipe):
            return exp.DPipe(
                this=exp.Coalesce(this=node.this, expressions=[_string("")]),
                expression=exp.Coalesce(this=node.expression, expressions=[_string("")]),
            )
        if isinstance(node, exp.Like) and not isinstance(node.parent, exp.Escape):
            pattern = node.expression
            if isinstance(pattern, exp.Literal) and pattern.is_string:
                # Oracle's LIKE is case-sensitive, SQLite's is not: GLOB matches as Oracle does.
                return exp.Glob(this=node.this, expression=_string(like_to_glob(pattern.name)))
            return node
        if isinstance(node, _COMPARISONS):
            self._coerce(node.this, node.expression)
            self._coerce(node.expression, node.this)
        elif isinstance(node, exp.Between):
            for bound in ("low", "high"):
                self._coerce(node.args[bound], node.this)
        elif isinstance(node, exp.In):
            for item in node.expressions:
                self._coerce(item, node.this)
        return node

    def _temporal(self, value: dt.datetime, kind: Kind) -> exp.Literal:
        node = _string(iso_text(value, kind), kind=kind)
        node.meta["temporal"] = value
        return node

    def _temporal_literal(self, node: exp.Expression) -> exp.Expression:
        kind = "ts" if isinstance(node, exp.StrToTime) else "date"
        arg = node.this
        fmt_node = node.args.get("format")
        fmt = fmt_node.name if isinstance(fmt_node, exp.Literal) else None
        if isinstance(arg, exp.Literal) and arg.is_string:
            try:
                value = parse_datetime(arg.name, fmt)
            except SuiteQLError:
                if fmt is None:
                    raise
                value = parse_datetime(arg.name)  # e.g. TIMESTAMP '...' without fractions
            return self._temporal(value, kind)
        # A column or expression already holding ISO text converts as SQLite would.
        if fmt in (None, "%Y-%m-%d", "%Y-%m-%d %H:%M:%S"):
            return _func("DATE" if kind == "date" else "DATETIME", arg, kind=kind)
        raise SuiteQLError("TO_DATE/TO_TIMESTAMP of a non-literal needs an ISO format.")

    def _to_char(self, node: exp.ToChar) -> exp.Expression:
        fmt_node = node.args.get("format")
        if fmt_node is None:
            return exp.cast(node.this, "TEXT")
        if not (isinstance(fmt_node, exp.Literal) and fmt_node.is_string):
            raise SuiteQLError("TO_CHAR takes a literal format.")
        if _kind(node.this) not in ("date", "ts", None):
            raise SuiteQLError("TO_CHAR with a number format is not supported.")
        return _func("STRFTIME", _string(oracle_to_strftime(fmt_node.name)), node.this, kind="text")

    def _date_arithmetic(self, node: exp.Expression) -> exp.Expression:
        left, right = node.this, node.expression
        lkind, rkind = _kind(left), _kind(right)
        temporal = ("date", "ts")
        if isinstance(node, exp.Sub) and lkind in temporal and rkind in temporal:
            return exp.Sub(
                this=_func("JULIANDAY", left, kind="num"),
                expression=_func("JULIANDAY", right, kind="num"),
            )
        if lkind in temporal and rkind not in temporal:
            base, days, kind = left, right, lkind
        elif isinstance(node, exp.Add) and rkind in temporal:
            base, days, kind = right, left, rkind
        else:
            return node
        amount: exp.Expression = (
            exp.Neg(this=exp.Paren(this=days))
            if isinstance(node, exp.Sub)
            else exp.Paren(this=days)
        )
        modifier = exp.DPipe(this=amount, expression=_string(" days"))
        return _func("DATE" if kind == "date" else "DATETIME", base, modifier, kind=kind)

    def _coerce(self, literal: exp.Expression, other: exp.Expression) -> None:
        """Give a date literal compared with a date/timestamp column the column's text form."""
        target = _kind(other)
        if target not in ("date", "ts") or not isinstance(literal, exp.Literal):
            return
        if not literal.is_string:
            return
        value = literal.meta.get("temporal")
        if value is None:
            try:
                value = parse_datetime(literal.name)
            except SuiteQLError:
                return
        literal.set("this", iso_text(value, target))


_ADD_MONTHS_SQL = (
    "CASE WHEN DATE(__x) = DATE(__x, 'start of month', '+1 month', '-1 day') "
    "THEN DATE(__x, 'start of month', (__n) || ' months', '+1 month', '-1 day') "
    "ELSE MIN(DATE(__x, (__n) || ' months'), "
    "DATE(__x, 'start of month', (__n) || ' months', '+1 month', '-1 day')) END"
)


def _add_months(value: exp.Expression, months: exp.Expression, kind: Kind) -> exp.Expression:
    """Oracle's ADD_MONTHS in SQLite date functions.

    The same day n months on, or the last day of that month when the day does not exist there
    or the start was a last day; SQLite's ``+n months`` alone would roll over into the next month.
    """

    def place(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.name == "__x":
            return value.copy()
        if isinstance(node, exp.Column) and node.name == "__n":
            return months.copy()
        return node

    date = sqlglot.parse_one(_ADD_MONTHS_SQL, read="sqlite").transform(place)
    if kind == "date":
        date.meta["kind"] = "date"
        return date
    with_time = exp.DPipe(
        this=date,
        expression=exp.DPipe(
            this=_string(" "), expression=_func("TIME", value.copy(), kind="text")
        ),
    )
    return _func("DATETIME", with_time, kind="ts")


def like_to_glob(pattern: str) -> str:
    """A LIKE pattern as the GLOB pattern that matches the same strings, case-sensitively."""
    special = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(special.get(ch, ch) for ch in pattern)


def _positions(outputs: list[Output]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for index, output in enumerate(outputs, start=1):
        positions.setdefault(output.name, index)
    return positions


def _has_aggregate(node: exp.Expression) -> bool:
    """Whether an expression aggregates at this query level (subqueries do not count)."""
    if isinstance(node, _AGGREGATES):
        return True
    if isinstance(node, (exp.Subquery, exp.Select)):
        return False
    return any(_has_aggregate(child) for child in node.iter_expressions())


def _columns_outside_aggregates(node: exp.Expression) -> Iterable[exp.Column]:
    if isinstance(node, _AGGREGATES):
        return
    if isinstance(node, exp.Column):
        yield node
        return
    if isinstance(node, (exp.Subquery, exp.Select)):
        return
    for child in node.iter_expressions():
        yield from _columns_outside_aggregates(child)


# ---- plans and pages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A translated query, ready to run page by page.

    Attributes:
        sql: The SQLite query (no paging).
        page_sql: ``sql`` with ``LIMIT ? OFFSET ?`` parameters.
        count_sql: Counts the rows of ``sql`` up to a bound given as its one parameter.
        outputs: The result columns, in order.
        resource: The first record (table) of the outermost FROM, for record faults.
    """

    sql: str
    page_sql: str
    count_sql: str
    outputs: tuple[Output, ...]
    resource: str


def translate(query: str) -> Plan:
    """Parse, validate and translate one SuiteQL query.

    Args:
        query: The SuiteQL text (the ``q`` of the request body).

    Raises:
        SuiteQLError: The query is not valid SuiteQL of the supported subset.
    """
    text = query.strip()
    if not text:
        raise SuiteQLError("The query is empty.")
    try:
        statements = [s for s in sqlglot.parse(text, read="oracle") if s is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise SuiteQLError(f"Invalid or unsupported search. {first}") from None
    if len(statements) != 1:
        raise SuiteQLError("Only one SELECT statement is allowed per query.")
    tree = statements[0]
    if isinstance(tree, (exp.DML, exp.DDL, exp.Command, exp.Merge, exp.Drop)):
        raise SuiteQLError(
            f"Only SELECT queries are supported (got {tree.key.upper()}). SuiteQL is read-only."
        )
    if not isinstance(tree, (exp.Select, *_SET_OPS)):
        raise SuiteQLError("Invalid or unsupported search. The query must be a SELECT.")
    translator = _Translator()
    outputs = translator.query(tree, None, top=True)
    own_limit = any(tree.args.get(k) is not None for k in ("limit", "offset"))
    _rename_results(tree)
    try:
        sql = tree.sql(dialect="sqlite", identify=True, unsupported_level=ErrorLevel.RAISE)
        count_tree = _count_tree(tree, own_limit)
        count_inner = count_tree.sql(
            dialect="sqlite", identify=True, unsupported_level=ErrorLevel.RAISE
        )
    except SqlglotError as exc:
        raise SuiteQLError(f"Invalid or unsupported search. {exc}") from None
    # The page runs the query as written (so SQLite keeps its index plan) and formats the at
    # most 1000 rows of the page in an outer SELECT: SQLite's string functions are much faster
    # than rendering every value in Python.
    rendered = ", ".join(
        f'{render_sql(f"c{i}", o.kind, o.computed)} AS "c{i}"' for i, o in enumerate(outputs)
    )
    if own_limit:
        page_sql = f"SELECT {rendered} FROM (SELECT * FROM ({sql}) LIMIT ? OFFSET ?)"
        count_sql = f"SELECT count(*) FROM (SELECT 1 FROM ({count_inner}) LIMIT ?)"
    else:
        page_sql = f"SELECT {rendered} FROM ({sql} LIMIT ? OFFSET ?)"
        count_sql = f"SELECT count(*) FROM ({count_inner} LIMIT ?)"
    return Plan(sql, page_sql, count_sql, tuple(outputs), translator.first_table or "dual")


def _rename_results(tree: exp.Expression) -> None:
    """Name the result columns c0, c1, ... (duplicates such as ``c.id, j.id`` stay apart)."""
    select = tree
    while isinstance(select, _SET_OPS):
        select = select.this
    if isinstance(select, exp.Subquery):
        select = select.this
    for index, projection in enumerate(list(select.expressions)):
        name = exp.to_identifier(f"c{index}", quoted=True)
        if isinstance(projection, exp.Alias):
            projection.set("alias", name)
        else:
            alias = exp.Alias(alias=name)
            projection.replace(alias)
            alias.set("this", projection)


_ISO_DATE_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
_DATE_SQL = (
    "CAST(substr({x}, 6, 2) AS INTEGER) || '/' || CAST(substr({x}, 9, 2) AS INTEGER) "
    "|| '/' || substr({x}, 1, 4)"
)
_HOUR_SQL = "CAST(substr({x}, 12, 2) AS INTEGER)"
_TS_SQL = (
    f"{_DATE_SQL} || ' ' || (CASE WHEN {_HOUR_SQL} % 12 = 0 THEN 12 ELSE {_HOUR_SQL} % 12 END) "
    f"|| ':' || substr({{x}}, 15, 2) || (CASE WHEN {_HOUR_SQL} < 12 THEN ' am' ELSE ' pm' END)"
)


def render_sql(ref: str, kind: Kind | None, computed: bool = False) -> str:
    """An SQLite expression rendering the value of column ``ref`` as SuiteQL shows it.

    Same output as :func:`render_date` and :func:`render_timestamp` for dates and timestamps;
    keys as text, dates ``M/D/YYYY``, timestamps
    ``M/D/YYYY h:mm am``, computed decimals rounded to 8 places; anything that does not look like
    a stored date stays as it is.
    """
    x = f'"{ref}"'
    if kind == "key":
        return f"CASE WHEN typeof({x}) = 'integer' THEN CAST({x} AS TEXT) ELSE {x} END"
    if kind == "date":
        return f"CASE WHEN {x} GLOB '{_ISO_DATE_GLOB}*' THEN {_DATE_SQL.format(x=x)} ELSE {x} END"
    if kind == "ts":
        return (
            f"CASE WHEN {x} GLOB '{_ISO_DATE_GLOB} [0-9][0-9]:[0-9][0-9]*' "
            f"THEN {_TS_SQL.format(x=x)} "
            f"WHEN {x} GLOB '{_ISO_DATE_GLOB}*' THEN {_DATE_SQL.format(x=x)} || ' 12:00 am' "
            f"ELSE {x} END"
        )
    if computed and kind in ("num", None):
        return f"CASE WHEN typeof({x}) = 'real' THEN round({x}, 8) ELSE {x} END"
    return x


def _count_tree(tree: exp.Expression, own_limit: bool) -> exp.Expression:
    """The query to count: without ORDER BY and, when rows map 1:1, selecting a constant."""
    if own_limit:
        return tree
    counted = tree.copy()
    counted.set("order", None)
    if (
        isinstance(counted, exp.Select)
        and not counted.args.get("distinct")
        and not counted.args.get("group")
        and not counted.args.get("having")
        and not any(_has_aggregate(p) for p in counted.expressions)
    ):
        counted.set("expressions", [exp.Literal.number(1)])
    return counted


@dataclass
class Page:
    """One page of results, rendered."""

    items: list[dict[str, Any]]
    total_results: int
    has_more: bool
    resource: str


class SuiteQLEngine:
    """Runs SuiteQL pages against the NetSuite store, with plan and count caches."""

    def __init__(self, cache_size: int = 512) -> None:
        self._cache_size = cache_size
        self._plans: OrderedDict[str, Plan] = OrderedDict()
        self._counts: OrderedDict[tuple[str, int], int] = OrderedDict()

    def plan(self, query: str) -> Plan:
        """The (cached) translation of a query.

        Raises:
            SuiteQLError: The query is not valid SuiteQL of the supported subset.
        """
        plan = self._plans.get(query)
        if plan is None:
            plan = translate(query)
            self._remember(self._plans, query, plan)
        else:
            self._plans.move_to_end(query)
        return plan

    def _remember(self, cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        cache[key] = value
        while len(cache) > self._cache_size:
            cache.popitem(last=False)

    def count(self, con: sqlite3.Connection, plan: Plan, generation: int) -> int:
        """Rows of the query, counted up to ``MAX_RESULTS + 1`` (cached per store generation)."""
        key = (plan.sql, generation)
        cached = self._counts.get(key)
        if cached is None:
            cached = int(con.execute(plan.count_sql, (MAX_RESULTS + 1,)).fetchone()[0])
            self._remember(self._counts, key, cached)
        return cached

    def page(
        self, con: sqlite3.Connection, query: str, limit: int, offset: int, generation: int
    ) -> Page:
        """Run one page of a query.

        Args:
            con: The NetSuite store.
            query: SuiteQL text.
            limit: Page size (1..1000).
            offset: Rows to skip; ``offset + limit`` must stay within ``MAX_RESULTS``.
            generation: The store's write generation (keys the count cache).

        Raises:
            SuiteQLError: Invalid query, or SQLite refused the translated query.
        """
        plan = self.plan(query)
        try:
            rows = con.execute(plan.page_sql, (limit, offset)).fetchall()
            if len(rows) < limit and (rows or offset == 0):
                total = offset + len(rows)
            else:
                total = self.count(con, plan, generation)
        except sqlite3.Error as exc:
            raise SuiteQLError(f"Invalid or unsupported search. {exc}") from None
        names = [o.name for o in plan.outputs]
        items: list[dict[str, Any]] = []
        for row in rows:
            item: dict[str, Any] = {"links": []}
            for name, value in zip(names, row, strict=True):
                if value is not None:
                    item[name] = value
            items.append(item)
        has_more = offset + len(rows) < total
        return Page(items, min(total, MAX_RESULTS), has_more, plan.resource)
