"""The fast path: raw page bodies, parsed by DuckDB in batches, checked against a contract.

A resource hands each page's bytes to a :class:`PageBatch`, which keeps them on disk under the
pipeline's landing folder. When a batch is full, DuckDB's ``read_json`` parses all of its pages
in one call, the records are flattened (``user.id`` becomes ``user__id``) and cast to the table's
:class:`Contract`, and the batch comes back as two Arrow tables: the rows that meet the contract,
for dlt to load, and the rows that do not, each with a readable reason, for the ``quarantine``
table. Fields the contract does not name are kept with the type DuckDB detected, so a new vendor
field becomes a new column. Nothing is dropped: ``received == len(rows) + len(quarantined)``.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pslake.errors import PslakeError

QUARANTINE_TABLE = "quarantine"
NOT_AN_OBJECT = "not a JSON object"  # the reason for an element of the records that is not one
# One page is one JSON document (a full Harvest page is ~3 MB). DuckDB sizes its read buffers
# from this, so a larger value costs memory on every read.
_MAX_OBJECT = 16 * 1024 * 1024
_REASON_VALUE_CHARS = 60
# DuckDB reserves read buffers per sampled file (2 x maximum_object_size each) that it does not
# fill; the limit must allow for them (three vendors' batches at once), while the resident
# memory stays far below it.
MEMORY_LIMIT = "8GB"
_DATABASE: duckdb.DuckDBPyConnection | None = None
_DATABASE_LOCK = threading.Lock()


def session() -> duckdb.DuckDBPyConnection:
    """A new connection to the process's one in-memory DuckDB, in UTC; close it when done.

    Opening a database costs ~25 ms and its own buffers; a connection to a shared one costs
    neither, and its temp tables are its own.
    """
    global _DATABASE
    with _DATABASE_LOCK:
        if _DATABASE is None:
            _DATABASE = duckdb.connect(config={"threads": 2, "memory_limit": MEMORY_LIMIT})
        con = _DATABASE.cursor()
    con.execute("SET TimeZone = 'UTC'").fetchall()
    return con


@dataclass(frozen=True)
class Contract:
    """What a raw table must hold.

    Attributes:
        table: The raw table (and dlt resource) name.
        primary_key: The vendor's key columns; a record without them is quarantined.
        cursor: The column dlt's incremental cursor reads, if the table is incremental.
        columns: Column (after flattening) -> DuckDB type it must cast to. Missing fields are
            NULL; a value that does not cast quarantines its record.
        formats: Column -> ``strptime`` format for vendor text dates (NetSuite's ``M/D/YYYY``).
        checks: Column -> type the text must cast to, while the column stays text (HubSpot
            sends every property as a string; the raw table keeps what it sent).
        drop: Fields not loaded at all (per-record hypermedia links, say).
        unwrap: A struct whose fields become top-level columns without a prefix (HubSpot's
            ``properties``).
    """

    table: str
    primary_key: tuple[str, ...]
    cursor: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    formats: Mapping[str, str] = field(default_factory=dict)
    checks: Mapping[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    unwrap: str | None = None


@dataclass
class Batch:
    """One parsed batch: loadable rows, quarantined rows, and how many records came in."""

    rows: pa.Table | None
    quarantined: pa.Table | None
    received: int
    max_key: Any = None  # the largest first primary-key value seen, valid or not (keyset paging)
    deferred: int = 0  # records changed after ``PageBatch.until``: left for the next run

    @property
    def n_rows(self) -> int:
        """Rows that met the contract."""
        return 0 if self.rows is None else self.rows.num_rows

    @property
    def n_quarantined(self) -> int:
        """Rows that did not."""
        return 0 if self.quarantined is None else self.quarantined.num_rows


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _merge(batches: list[Batch]) -> Batch:
    """One batch from several (the page-by-page fallback)."""

    def concat(tables: list[pa.Table | None]) -> pa.Table | None:
        present = [t for t in tables if t is not None]
        if not present:
            return None
        try:
            return pa.concat_tables(present, promote_options="permissive")
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            # a field the contract does not type arrived as text on one page and as a number
            # on another: keep it as text rather than lose either
            return pa.concat_tables([_conflicts_as_text(t, present) for t in present],
                                    promote_options="permissive")

    keys = [b.max_key for b in batches if b.max_key is not None]
    return Batch(concat([b.rows for b in batches]), concat([b.quarantined for b in batches]),
                 sum(b.received for b in batches), max(keys) if keys else None,
                 sum(b.deferred for b in batches))


def _conflicts_as_text(table: pa.Table, all_tables: list[pa.Table]) -> pa.Table:
    types: dict[str, set[pa.DataType]] = {}
    for t in all_tables:
        for f in t.schema:
            if not pa.types.is_null(f.type):
                types.setdefault(f.name, set()).add(f.type)
    for at, f in enumerate(table.schema):
        if len(types.get(f.name, ())) > 1:
            table = table.set_column(at, f.name, table.column(at).cast(pa.string()))
    return table


def _keys_required(table: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """Mark the key columns not-null in the Arrow schema, as dlt's schema has them."""
    schema = table.schema
    for key in keys:
        at = schema.get_field_index(key)
        if at >= 0:
            schema = schema.set(at, schema.field(at).with_nullable(False))
    return table.cast(schema) if schema != table.schema else table


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    # fetch everything: DuckDB 2 refuses new work while a result is half read
    return con.execute(sql).fetchall()[0][0]


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class _Field:
    column: str       # flattened output name
    expr: str         # DuckDB expression over the record ``r``
    type_id: str      # DuckDB type id as detected (struct, varchar, json, null, list, ...)
    type_str: str


def _flatten(expr: str, dtype: Any, prefix: str, unwrap: str | None,
             drop: tuple[str, ...]) -> list[_Field]:
    out: list[_Field] = []
    for name, child in dtype.children:
        if not prefix and name in drop:
            continue
        sub = f"{expr}[{_lit(name)}]"
        if child.id == "struct":
            inner = "" if (not prefix and name == unwrap) else f"{prefix}{name}__"
            out.extend(_flatten(sub, child, inner, unwrap, drop))
        else:
            out.append(_Field(f"{prefix}{name}", sub, child.id, str(child)))
    return out


def _as_text(f: _Field) -> str:
    if f.type_id == "json" or f.type_str == "JSON":
        return f"json_extract_string({f.expr}, '$')"
    return f"CAST({f.expr} AS VARCHAR)"


def landing_folder(landing_dir: str | None) -> Path:
    """Where a source's raw pages wait: the runner's folder, else one under the temp folder."""
    return Path(landing_dir) if landing_dir else Path(tempfile.gettempdir()) / "pslake-landing"


class PageBatch:
    """Collect raw pages on disk; parse them as one batch with DuckDB.

    Args:
        landing: A folder for this resource's pages (emptied as batches are read).
        contract: The table's contract.
        selector: The envelope key that holds the records (``time_entries``, ``items``).
        max_pages: Pages per batch: DuckDB's per-call cost is amortised over many pages.
    """

    def __init__(self, landing: Path, contract: Contract, selector: str,
                 max_pages: int = 50) -> None:
        self.landing = landing / f"{contract.table}-{uuid.uuid4().hex[:8]}"
        self.landing.mkdir(parents=True, exist_ok=True)
        self.contract = contract
        self.selector = selector
        self.max_pages = max_pages
        # cursor values above this (ISO text) are left for the next run; see ``defer_after``
        self.until: str | None = None
        self._files: list[Path] = []
        self._seq = 0
        self._con = session()

    def __enter__(self) -> PageBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close DuckDB and remove the landing folder."""
        self._con.close()
        shutil.rmtree(self.landing, ignore_errors=True)

    @property
    def full(self) -> bool:
        """Whether the batch has its pages."""
        return len(self._files) >= self.max_pages

    def add(self, body: bytes) -> None:
        """Keep one page body for the next batch."""
        path = self.landing / f"{self._seq:07d}.json"
        self._seq += 1
        path.write_bytes(body)
        self._files.append(path)

    def read(self) -> Batch:
        """Parse the pages collected so far and check them against the contract."""
        files, self._files = self._files, []
        if not files:
            return Batch(None, None, 0)
        try:
            try:
                return self._parse(files)
            except duckdb.InvalidInputException:
                # DuckDB detects types from a sample of the files; a value past the sample that
                # does not fit fails the whole read. Page by page, each page is fully sampled.
                return _merge([self._parse_page(path) for path in files])
        finally:
            for path in files:
                path.unlink(missing_ok=True)

    # ---- the DuckDB work ------------------------------------------------------------------

    def _parse_page(self, path: Path) -> Batch:
        """One page, on its own.

        Records DuckDB cannot read are quarantined one by one, if they can be told apart; a
        page that is not JSON at all stops the run, in words without its data.
        """
        try:
            return self._parse([path])
        except duckdb.InvalidInputException as exc:
            problem = json_problem(exc)
        split = _split_page(path.read_bytes(), self.selector)
        if split is not None:
            good, bad = split
            sound = path.with_name(path.stem + "-sound.json")
            sound.write_text(json.dumps({self.selector: good}))
            try:
                batch = self._parse([sound])
            except duckdb.InvalidInputException as exc:
                problem = json_problem(exc)
            else:
                return _merge([batch, self._unreadable(bad, path)]) if bad else batch
            finally:
                sound.unlink(missing_ok=True)
        # DuckDB's message can quote the record: it must not reach a log or a terminal
        raise PslakeError(
            f"{self.contract.table}: a page from the vendor is not valid JSON ({problem}); "
            "nothing of this run is loaded, and the next run reads the page again")

    def _unreadable(self, bad: list[tuple[str, Any]], page: Path) -> Batch:
        """Quarantine rows for records DuckDB cannot read, kept as near as JSON allows."""
        con = self._con
        lines = page.with_name(page.stem + "-unreadable.json")
        lines.write_text("".join(json.dumps({"reason": reason, "r": record}) + "\n"
                                 for reason, record in bad))
        try:
            con.execute("DROP TABLE IF EXISTS unreadable").fetchall()
            con.execute(
                f"CREATE TEMP TABLE unreadable AS SELECT reason, r FROM read_json("
                f"{_lit(str(lines))}, format='newline_delimited', sample_size=-1, "
                f"maximum_object_size={_MAX_OBJECT})").fetchall()
            rtype = con.sql("SELECT r FROM unreadable").types[0]
            fields = (_flatten("r", rtype, "", self.contract.unwrap, ())
                      if rtype.id == "struct" else [])
            keys = ", ".join(self._typed_or_null(c, fields) + f" AS {_q(c)}"
                             for c in self._key_columns())
            rows = con.sql(
                f"SELECT {_lit(self.contract.table)} AS table_name, {keys}, reason, "
                "CAST(to_json(r) AS VARCHAR) AS record, now() AS quarantined_at "
                "FROM unreadable").to_arrow_table()
            con.execute("DROP TABLE unreadable").fetchall()
        finally:
            lines.unlink(missing_ok=True)
        return Batch(None, rows, len(bad))

    def _parse(self, files: list[Path]) -> Batch:
        con = self._con
        # Every record of every page is sampled: DuckDB ignores, without a word, a field its
        # sample did not see (a key only on page 40, or null in every sampled record).
        sample = f", sample_size=-1, maximum_sample_files={len(files)}"
        listing = "[" + ", ".join(_lit(str(p)) for p in files) + "]"
        con.execute("DROP TABLE IF EXISTS raw").fetchall()
        try:
            con.execute(
                f"CREATE TEMP TABLE raw AS SELECT unnest({_q(self.selector)}) AS r "
                f"FROM read_json({listing}, maximum_object_size={_MAX_OBJECT}{sample})"
            ).fetchall()
        except duckdb.BinderException as exc:
            raise ValueError(f"{self.contract.table}: the vendor's pages have no "
                             f"{self.selector!r} array ({exc})") from None
        received = _scalar(con, "SELECT count(*) FROM raw")
        if received == 0:
            return Batch(None, None, 0)
        rtype = con.sql("SELECT r FROM raw").types[0]
        strays = None
        if rtype.id != "struct":
            strays = self._strays(str(rtype) == "JSON")
            rtype = con.sql("SELECT r FROM raw").types[0]
        if rtype.id != "struct":  # records of no shape at all (all null, or none left)
            fields: list[_Field] = []
        else:
            fields = _flatten("r", rtype, "", self.contract.unwrap, self.contract.drop)
        select, failures = self._projection(fields)
        key_expr = next((f.expr for f in fields if f.column == self.contract.primary_key[0]), None)
        max_key = None
        if key_expr is not None:
            max_key = _scalar(con, f"SELECT max(TRY_CAST({key_expr} AS BIGINT)) FROM raw")
        reason = ("concat_ws('; ', " + ", ".join(failures) + ")") if failures else "NULL"
        bad = f"(({reason}) <> '')" if failures else "false"
        later = "false"
        deferred = 0
        if self.until is not None and self.contract.cursor:
            # changed after the run began: the next run reads it, so the cursor cannot pass
            # an earlier record's change made while this run was reading
            cursor = self._typed_or_null(self.contract.cursor, fields)
            later = f"coalesce(({cursor}) > {_lit(self.until)}, false)"
            deferred = int(_scalar(con, f"SELECT count(*) FROM raw WHERE {later}"))
        rows = _keys_required(
            con.sql(f"SELECT {select} FROM raw WHERE NOT {bad} AND NOT {later}"
                    ).to_arrow_table(),
            self.contract.primary_key)
        quarantined = None
        if failures:
            keys = ", ".join(self._typed_or_null(c, fields) + f" AS {_q(c)}"
                             for c in self._key_columns())
            q = con.sql(
                f"SELECT {_lit(self.contract.table)} AS table_name, {keys}, "
                f"{reason} AS reason, CAST(to_json(r) AS VARCHAR) AS record, "
                f"now() AS quarantined_at FROM raw WHERE {bad} AND NOT {later}"
            ).to_arrow_table()
            quarantined = q if q.num_rows else None
        con.execute("DROP TABLE raw").fetchall()  # do not hold a batch between reads
        if strays is not None:
            quarantined = strays if quarantined is None else pa.concat_tables(
                [quarantined, strays.cast(quarantined.schema)])
        return Batch(rows if rows.num_rows else None, quarantined, int(received), max_key,
                     deferred)

    def _strays(self, is_json: bool) -> pa.Table | None:
        """Take the elements that are not objects out of ``raw``, as quarantine rows.

        One number or string among the records makes DuckDB type every record as JSON text,
        which has no fields: every record would be quarantined. Instead the elements that are
        not objects are quarantined (``not a JSON object``) and the objects read again on their
        own, with the same type detection as a page.
        """
        con = self._con
        is_object = "coalesce(json_type(r) = 'OBJECT', false)" if is_json else "false"
        keys = ", ".join(self._typed_or_null(c, []) + f" AS {_q(c)}" for c in self._key_columns())
        strays = con.sql(
            f"SELECT {_lit(self.contract.table)} AS table_name, {keys}, "
            f"{_lit(NOT_AN_OBJECT)} AS reason, CAST(r AS VARCHAR) AS record, "
            f"now() AS quarantined_at FROM raw WHERE NOT {is_object}").to_arrow_table()
        objects = self.landing / f"objects-{uuid.uuid4().hex[:8]}.json"
        try:
            con.execute(f"COPY (SELECT r FROM raw WHERE {is_object}) TO {_lit(str(objects))} "
                        "(FORMAT json)").fetchall()
            con.execute("DROP TABLE raw").fetchall()
            con.execute(
                f"CREATE TEMP TABLE raw AS SELECT r FROM read_json({_lit(str(objects))}, "
                f"format='newline_delimited', maximum_object_size={_MAX_OBJECT}, "
                "sample_size=-1)").fetchall()
        except duckdb.BinderException:  # no object at all: the file has no column r
            con.execute("CREATE OR REPLACE TEMP TABLE raw AS SELECT NULL::JSON AS r LIMIT 0"
                        ).fetchall()
        finally:
            objects.unlink(missing_ok=True)
        return strays if strays.num_rows else None

    def _key_columns(self) -> list[str]:
        cols = list(self.contract.primary_key)
        if self.contract.cursor and self.contract.cursor not in cols:
            cols.append(self.contract.cursor)
        return cols

    def _typed_or_null(self, column: str, fields: list[_Field]) -> str:
        found = next((f for f in fields if f.column == column), None)
        target = self.contract.columns.get(column, "VARCHAR")
        if found is None:
            return f"CAST(NULL AS {target})"
        return self._converted(found, target)

    def _converted(self, f: _Field, target: str) -> str:
        fmt = self.contract.formats.get(f.column)
        if fmt is not None:
            return f"CAST(try_strptime({_as_text(f)}, {_lit(fmt)}) AS {target})"
        if f.type_str == target:
            return f.expr
        if f.type_id in ("json", "list", "map") or f.type_str == "JSON":
            return f"TRY_CAST({_as_text(f)} AS {target})"
        return f"TRY_CAST({f.expr} AS {target})"

    def _projection(self, fields: list[_Field]) -> tuple[str, list[str]]:
        """The typed select list and one failure expression (reason text or NULL) per check."""
        contract = self.contract
        by_name = {f.column: f for f in fields}
        select: list[str] = []
        failures: list[str] = []
        for at, key in enumerate(contract.primary_key):
            # a null element of the records array is no record at all: say so, once
            stray = f"WHEN r IS NULL THEN {_lit(NOT_AN_OBJECT)} " if at == 0 else \
                "WHEN r IS NULL THEN NULL "
            f = by_name.get(key)
            missing = _lit(f"missing primary key {key}")
            failures.append(f"CASE {stray}ELSE {missing} END" if f is None else
                            f"CASE {stray}WHEN {f.expr} IS NULL THEN {missing} END")
        for column, target in contract.columns.items():
            f = by_name.get(column)
            if f is None:
                select.append(f"CAST(NULL AS {target}) AS {_q(column)}")
                continue
            value = self._converted(f, target)
            select.append(f"{value} AS {_q(column)}")
            if f.type_str != target or column in contract.formats:
                failures.append(self._failure(f, value, target))
        for f in fields:
            if f.column in contract.columns:
                continue
            check = contract.checks.get(f.column)
            if check is not None:
                checked = _Field(f.column, f.expr, f.type_id, f.type_str)
                value = self._converted(checked, check)
                failures.append(self._failure(f, value, check))
            if f.type_id == "null":
                # null in every record of the batch: no data and no type to learn; leaving it
                # out keeps a later batch's real type from becoming a variant column
                continue
            if f.type_id in ("list", "map"):
                select.append(f"CAST(to_json({f.expr}) AS VARCHAR) AS {_q(f.column)}")
            elif f.type_str == "JSON":
                select.append(f"{_as_text(f)} AS {_q(f.column)}")
            else:
                select.append(f"{f.expr} AS {_q(f.column)}")
        return ", ".join(select), failures

    def _failure(self, f: _Field, value: str, target: str) -> str:
        shown = f"left({_as_text(f)}, {_REASON_VALUE_CHARS})"
        return (f"CASE WHEN {f.expr} IS NOT NULL AND ({value}) IS NULL THEN "
                f"{_lit(f.column + ': expected ' + target.lower() + ', got ')} || "
                f"coalesce({shown}, '?') END")


_DEEPEST = 100  # DuckDB reads JSON nested 128 levels deep, the page's envelope included
_CUT = "(cut: nested deeper than this)"


class _Pairs(dict[str, Any]):
    """A JSON object that came with a key twice (the last value kept, as JSON parsers do)."""

    duplicate: str = ""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = _Pairs(pairs)
    if len(found) == len(pairs):
        return dict(pairs)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            found.duplicate = key
            break
        seen.add(key)
    return found


def _fault(record: Any) -> str | None:
    """Why DuckDB cannot read a record that Python's JSON parser could, if it cannot."""
    stack = [(record, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > _DEEPEST:
            return f"nested deeper than {_DEEPEST} levels"
        if isinstance(value, _Pairs):
            return f"duplicate key {value.duplicate[:40]!r}"
        if isinstance(value, str):
            if any("\ud800" <= ch <= "\udfff" for ch in value):
                return "invalid UTF-8 or a lone surrogate in a string"
        elif isinstance(value, dict):
            for key, item in value.items():
                stack.append((key, depth))
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return None


def _kept(value: Any, depth: int = 0) -> Any:
    """A record fit to keep in quarantine: bad characters replaced, too deep parts cut."""
    if depth > _DEEPEST // 2:
        return _CUT
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_kept(k): _kept(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_kept(v, depth + 1) for v in value]
    return value


def _split_page(body: bytes, selector: str) -> tuple[list[Any], list[tuple[str, Any]]] | None:
    """A page DuckDB refused, split by Python's more lenient JSON parser.

    Python reads bad UTF-8 bytes, lone surrogates, duplicate keys and deep nesting: the records
    DuckDB can read come back apart from the others, which come with the reason. ``None`` when
    the page is no JSON at all (cut off, say).
    """
    try:
        page = json.loads(body.decode("utf-8", "surrogateescape"), object_pairs_hook=_pairs)
        records = page[selector]
    except (ValueError, RecursionError, KeyError, TypeError):
        return None
    if not isinstance(records, list):
        return None
    good: list[Any] = []
    bad: list[tuple[str, Any]] = []
    for record in records:
        fault = _fault(record)
        if fault is None:
            good.append(record)
        else:
            bad.append((fault, _kept(record)))
    return good, bad


_JSON_WHERE = re.compile(r"(?:at byte (?P<byte>\d+) )?in record/value (?P<record>\d+): "
                         r"(?P<what>[^\n]*)")
_DUPLICATE_KEY = re.compile(r'has duplicate key "(?P<key>[A-Za-z0-9_.$-]{1,64})"')
_PLAIN_WORDS = re.compile(r"[A-Za-z0-9 ,'_-]{1,80}")


def json_problem(exc: BaseException) -> str:
    """What DuckDB found wrong with a page, in its own fixed words, never the page's data.

    DuckDB's messages quote the record (``Object {"id": 2, ...} has duplicate key``); only the
    kind of problem and where it is are kept.
    """
    text = str(exc)
    if "maximum recursion depth" in text:
        return "nested deeper than 128 levels"
    where = _JSON_WHERE.search(text)
    record = f" in record {where['record']}" if where else ""
    duplicate = _DUPLICATE_KEY.search(text)
    if duplicate:
        return f"duplicate key {duplicate['key']!r}{record}"
    if where:
        what = where["what"].split(". ")[0].rstrip(". ")
        if _PLAIN_WORDS.fullmatch(what):
            return what + record
        return "a value that cannot be read" + record
    return "unreadable"


def scan_ids(pages: Iterable[bytes], landing: Path, selector: str,
             batch_pages: int = 50) -> tuple[set[int], int]:
    """Only the ids of a listing, parsed by DuckDB in batches: ``(ids, records without id)``."""
    folder = landing / f"ids-{selector}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    con = session()
    ids: set[int] = set()
    missing = 0
    files: list[Path] = []

    def read() -> None:
        nonlocal missing
        if not files:
            return
        listing = "[" + ", ".join(_lit(str(p)) for p in files) + "]"
        rows = con.execute(
            f"SELECT TRY_CAST(x.id AS BIGINT) FROM (SELECT unnest({_q(selector)}) AS x "
            f"FROM read_json({listing}, columns={{{_lit(selector)}: 'STRUCT(id VARCHAR)[]'}}, "
            f"maximum_object_size={_MAX_OBJECT}))").fetchall()
        for (value,) in rows:
            if value is None:
                missing += 1
            else:
                ids.add(int(value))
        for p in files:
            p.unlink(missing_ok=True)
        files.clear()

    try:
        for seq, body in enumerate(pages):
            path = folder / f"{seq:07d}.json"
            path.write_bytes(body)
            files.append(path)
            if len(files) >= batch_pages:
                read()
        read()
    finally:
        con.close()
        shutil.rmtree(folder, ignore_errors=True)
    return ids, missing
