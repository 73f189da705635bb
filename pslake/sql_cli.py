"""``pslake sql``: query the marts read-only, once or in a small interactive shell.

By default it opens the published snapshot of the marts (the file ``DATA_DIR/snapshots/``'s
pointer names, which the dashboard reads too); ``--warehouse`` opens ``DATA_DIR/warehouse.duckdb``
with every layer (raw, staging, canonical, marts). Both are opened with DuckDB's
``read_only=True``: a statement that writes fails with DuckDB's own read-only error and the file
is never changed. Unqualified table names are looked up in ``marts``, then ``canonical``, then
``staging`` (DuckDB's ``search_path``).

With a query it prints the result once: an aligned table (the first rows and how many there are
in all), CSV or JSON (to stdout or a file), or Parquet (to a file). Without one it reads
statements ending in ``;`` from stdin, with a prompt when stdin is a terminal; ``.tables``,
``.schema NAME`` and ``.quit`` work as in DuckDB's own shell.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import enum
import io
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import duckdb
import typer

from pslake import settings
from pslake.cli import friendly, say
from pslake.errors import PslakeError
from pslake.snapshot import current, snapshot_dir
from pslake.transform import is_lock_error, warehouse_path

PROMPT = "pslake sql> "
CONTINUE_PROMPT = "       ...> "
MAX_ROWS = 40
MAX_CELL = 40  # characters of one cell the table format shows
SEARCH_PATH = ("marts", "canonical", "staging")
_BATCH = 10_000


class OutputFormat(enum.StrEnum):
    """What ``--format`` accepts."""

    table = "table"
    csv = "csv"
    parquet = "parquet"
    json = "json"


FORMAT_OPTION = typer.Option(
    None, "--format", "-f",
    help="table, csv, json or parquet (default: the --output file's suffix, else table).")
OUTPUT_OPTION = typer.Option(
    None, "--output", "-o", help="Write the result to this file (csv, json or parquet).")


# ---------- opening the marts


def open_marts(data_dir: Path | None = None,
               warehouse: bool = False) -> tuple[duckdb.DuckDBPyConnection, Path]:
    """Open the published snapshot (or the warehouse) read-only.

    Args:
        data_dir: The data folder (``--data-dir`` / ``$PSLAKE_DATA_DIR`` / ``data``).
        warehouse: Open ``DATA_DIR/warehouse.duckdb`` (every layer) instead of the snapshot.

    Returns:
        The connection, its ``search_path`` set to the layers it holds, and the file it opened.

    Raises:
        PslakeError: Nothing to open (the line names the command that makes it), or a writer
            holds the warehouse.
    """
    wh = warehouse_path(data_dir)
    if warehouse:
        if not wh.is_file():
            raise PslakeError(f"sql: no warehouse at {wh}; run `pslake ingest` then "
                              "`pslake transform`")
        path = wh
    else:
        snapshot = current(data_dir)
        if snapshot is None:
            folder = snapshot_dir(data_dir)
            if wh.is_file():
                raise PslakeError(f"sql: no published snapshot in {folder}; run `pslake transform`"
                                  " (or `pslake publish`), or query the warehouse with "
                                  "--warehouse")
            raise PslakeError(f"sql: no published snapshot in {folder} and no warehouse; run "
                              "`pslake ingest` then `pslake transform` (it publishes the "
                              "snapshot)")
        path = snapshot.path
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        text = str(exc)
        if is_lock_error(text):
            holder = re.search(r"PID (\d+)", text)
            raise PslakeError(
                f"sql: the warehouse {path} is in use by another process"
                + (f" (pid {holder.group(1)})" if holder else "")
                + "; wait for it to finish (a running `pslake ingest` or `transform`), or query "
                  "the published snapshot (leave out --warehouse)") from None
        raise PslakeError(f"sql: cannot open {path}: {one_line(text)}") from None
    schemas = {row[0] for row in con.execute(
        "select schema_name from duckdb_schemas() where database_name = current_database()"
    ).fetchall()}
    search = [name for name in SEARCH_PATH if name in schemas] + ["main"]
    con.execute(f"set search_path = '{','.join(search)}'")
    return con, path


def one_line(message: str) -> str:
    """DuckDB's message on one line, without the excerpt of the statement and its carets."""
    lines = [" ".join(line.split()) for line in message.splitlines()]
    return " ".join(line for line in lines
                    if line and not line.startswith("LINE ") and set(line) != {"^"})


# ---------- rendering values


def _cell(value: Any) -> str:
    """One value as the table format shows it: NULL, true/false, long text cut."""
    if value is None:
        return "NULL"
    text = _text(value).replace("\r", "").replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def _text(value: Any) -> str:
    """One value as text (CSV and the table): booleans lower case, nested values as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]],
                 total: int | None = None) -> list[str]:
    """Rows as aligned lines: a header, a rule, the rows (numbers right-aligned), a count.

    Args:
        columns: The column names.
        rows: The rows shown.
        total: How many rows the result has in all, when more than shown; ``None`` leaves the
            count line out.
    """
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    right = [bool(rows) and all(_is_number(row[i]) or row[i] is None for row in rows)
             and any(_is_number(row[i]) for row in rows) for i in range(len(columns))]
    lines = ["  ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True)),
             "  ".join("-" * width for width in widths)]
    for row in cells:
        lines.append("  ".join(
            text.rjust(width) if align else text.ljust(width)
            for text, width, align in zip(row, widths, right, strict=True)))
    lines = [line.rstrip() for line in lines]
    if total is not None:
        if total > len(rows):
            lines.append(f"({len(rows):,} of {total:,} rows shown; --max-rows N shows more, "
                         "--format csv all)")
        else:
            lines.append(f"({total:,} row{'' if total == 1 else 's'})")
    return lines


def _json_default(value: Any) -> Any:
    """JSON for what ``json`` does not know: decimals as numbers, dates as ISO 8601 text."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)  # UUID, INTERVAL and the like


def _json_value(value: Any) -> Any:
    """A value JSON can hold: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------- running a query


def _columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [str(column[0]) for column in con.description or []]


def _batches(con: duckdb.DuckDBPyConnection) -> Iterator[list[tuple[Any, ...]]]:
    while batch := con.fetchmany(_BATCH):
        yield batch


def _is_status_only(columns: Sequence[str], rows: Sequence[Any]) -> bool:
    """DuckDB's empty ``Success`` result of SET, BEGIN and the like: nothing to show."""
    return list(columns) == ["Success"] and not rows


def show_result(con: duckdb.DuckDBPyConnection, max_rows: int = MAX_ROWS) -> list[str]:
    """The table lines of the result ``con`` holds: the first ``max_rows`` rows and the count.

    An ``EXPLAIN`` plan is shown as DuckDB draws it; a ``SET`` and the like show nothing.
    """
    columns = _columns(con)
    if not columns:
        return []
    rows = con.fetchmany(max_rows)
    if columns[-2:] == ["explain_key", "explain_value"]:
        return [line for row in rows for line in str(row[-1]).splitlines()]
    if _is_status_only(columns, rows):
        return []
    return format_table(columns, rows, len(rows) + _count_rest(con))


def _count_rest(con: duckdb.DuckDBPyConnection) -> int:
    """The rows of the result not fetched yet, counted in Arrow (no Python objects made)."""
    with warnings.catch_warnings():
        # "makes an extra copy": only batches of the rest, each dropped once counted
        warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
        reader = con.to_arrow_reader(_BATCH * 10)
    return 0 if reader is None else sum(batch.num_rows for batch in reader)


def _write_csv(con: duckdb.DuckDBPyConnection, out: Callable[[str], object]) -> int:
    """The result as CSV with a header (NULL as an empty field); returns the rows written."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_columns(con))
    count = 0
    for batch in _batches(con):
        writer.writerows([["" if value is None else _text(value) for value in row]
                          for row in batch])
        count += len(batch)
        out(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
    out(buffer.getvalue())
    return count


def _write_json(con: duckdb.DuckDBPyConnection, out: Callable[[str], object]) -> int:
    """The result as a JSON array of objects, one per line; returns the rows written."""
    columns = _columns(con)
    count = 0
    out("[")
    for batch in _batches(con):
        records = [json.dumps({name: _json_value(value)
                               for name, value in zip(columns, row, strict=True)},
                              default=_json_default, ensure_ascii=False) for row in batch]
        out(("\n" if not count else ",\n") + ",\n".join(records))
        count += len(batch)
    out("\n]\n" if count else "]\n")
    return count


def _write_parquet(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> int:
    """The last statement's result as one Parquet file, through Arrow batch by batch.

    Returns:
        The rows written.
    """
    import pyarrow.parquet as pq

    relation = con.sql(query)  # runs the statements before the last; the last stays lazy
    if relation is None:
        raise PslakeError("sql: the query returns no rows to write (its last statement is not a "
                          "query)")
    reader = relation.to_arrow_reader(_BATCH * 10)
    count = 0
    with pq.ParquetWriter(str(path), reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
            count += batch.num_rows
    return count


def _to_file(path: Path, write: Callable[[Path], int]) -> int:
    """Write a file through a temporary name, so a failed query leaves no half file."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        count = write(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return count


def _text_to_file(path: Path, write: Callable[[Callable[[str], object]], int]) -> int:
    def to(partial: Path) -> int:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            return write(handle.write)

    return _to_file(path, to)


def run_query(con: duckdb.DuckDBPyConnection, query: str, fmt: OutputFormat,
              output: Path | None = None, max_rows: int = MAX_ROWS) -> int | None:
    """Run ``query`` once and print or write its result.

    Args:
        con: A connection from ``open_marts``.
        query: One or more statements; the last one's result is shown.
        fmt: How to show it; ``parquet`` needs ``output``.
        output: A file for the csv, json or parquet result (stdout otherwise).
        max_rows: Rows the table format shows.

    Returns:
        The rows written to ``output``, or ``None`` when the result went to stdout.

    Raises:
        PslakeError: DuckDB refused or failed the query (its message, on one line).
    """
    if fmt is OutputFormat.parquet and output is None:
        raise ValueError("sql: --format parquet needs --output FILE")
    try:
        if fmt is OutputFormat.parquet and output is not None:
            return _to_file(output, lambda path: _write_parquet(con, query, path))
        con.execute(query)
        if fmt is OutputFormat.table:
            for line in show_result(con, max_rows):
                say(line)
            return None
        writer = _write_csv if fmt is OutputFormat.csv else _write_json
        if output is None:
            writer(con, lambda text: typer.echo(text, nl=False))
            return None
        return _text_to_file(output, lambda out: writer(con, out))
    except duckdb.Error as exc:
        raise PslakeError(f"sql: {one_line(str(exc))}") from None


def _resolve_format(fmt: OutputFormat | None, output: Path | None) -> OutputFormat:
    """``--format``, else the ``--output`` file's suffix, else the table; checks they agree."""
    if fmt is None and output is not None:
        suffix = output.suffix.lower().lstrip(".")
        if suffix not in ("csv", "json", "parquet"):
            raise ValueError(f"sql: cannot tell the format of {output} from its suffix; add "
                             "--format csv, json or parquet")
        fmt = OutputFormat(suffix)
    fmt = fmt or OutputFormat.table
    if fmt is OutputFormat.parquet and output is None:
        raise ValueError("sql: --format parquet needs --output FILE")
    if fmt is OutputFormat.table and output is not None:
        raise ValueError("sql: --output needs --format csv, json or parquet (the table is for "
                         "the terminal)")
    if output is not None and not output.parent.is_dir():
        raise ValueError(f"sql: no folder {output.parent} for --output")
    return fmt


# ---------- the interactive shell


def split_statements(text: str) -> tuple[list[str], str]:
    """Cut SQL at the semicolons outside quotes and comments.

    Returns:
        The complete statements (without their ``;``), and the text after the last one (empty
        when it holds only blanks and comments).
    """
    statements: list[str] = []
    start = 0
    i = 0
    quote = ""
    substance = False  # anything but blanks and comments since the last cut
    while i < len(text):
        char, pair = text[i], text[i:i + 2]
        if quote:
            if char == quote:
                quote = ""
        elif pair == "--":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif pair == "/*":
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
            continue
        elif char in "'\"":
            quote, substance = char, True
        elif char == ";":
            if substance:
                statements.append(text[start:i].strip())
            start, substance = i + 1, False
        elif not char.isspace():
            substance = True
        i += 1
    return statements, text[start:].strip() if substance else ""


_HELP = [
    "Statements end with ';' and may span lines. Unqualified names look in marts, canonical, "
    "staging.",
    ".tables [TEXT]   list schema.table names (those containing TEXT)",
    ".schema NAME     the columns and types of a table or view ([schema.]name)",
    ".help            this text",
    ".quit            leave (or Ctrl-D)",
]


class Shell:
    """Statements and dot commands, fed one line at a time (from a prompt or a pipe).

    Results go through ``out`` as table lines; each error is one ``error: ...`` line through
    ``err``, and the shell goes on.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, max_rows: int = MAX_ROWS,
                 out: Callable[[str], None] = say,
                 err: Callable[[str], None] | None = None) -> None:
        self.con = con
        self.max_rows = max_rows
        self.out = out
        self.err = err or (lambda line: typer.secho(line, fg=typer.colors.RED, err=True))
        self.buffer = ""
        self.errors = 0

    @property
    def prompt(self) -> str:
        """``pslake sql> ``, or the continuation prompt inside an unfinished statement."""
        return CONTINUE_PROMPT if self.buffer else PROMPT

    def feed(self, line: str) -> bool:
        """Take one line of input; returns False when the shell should stop (``.quit``)."""
        if not self.buffer and line.strip().startswith("."):
            return self._command(line.strip())
        statements, self.buffer = split_statements(f"{self.buffer}\n{line}".strip("\n"))
        for statement in statements:
            self.run(statement)
        return True

    def cancel(self) -> None:
        """Drop the unfinished statement (Ctrl-C at the prompt)."""
        self.buffer = ""

    def finish(self) -> None:
        """At the end of input, run an unfinished last statement (a pipe without the ``;``)."""
        if self.buffer:
            statement, self.buffer = self.buffer, ""
            self.run(statement)

    def run(self, statement: str) -> None:
        """Run one statement and show its result, or its error on one line."""
        try:
            self.con.execute(statement)
            for line in show_result(self.con, self.max_rows):
                self.out(line)
        except duckdb.Error as exc:
            self._error(one_line(str(exc)))
        except KeyboardInterrupt:
            self._error("interrupted")

    def _error(self, message: str) -> None:
        self.errors += 1
        self.err(f"error: {message}")

    def _command(self, line: str) -> bool:
        word, _, argument = line.partition(" ")
        argument = argument.strip()
        if word in (".quit", ".exit", ".q"):
            return False
        if word == ".tables":
            self._tables(argument)
        elif word == ".schema":
            self._schema(argument)
        elif word == ".help":
            for text in _HELP:
                self.out(text)
        else:
            self._error(f"unknown command {word}; .help lists them")
        return True

    def _tables(self, pattern: str) -> None:
        rows = self.con.execute(
            """
            select name from (
                select schema_name || '.' || table_name as name
                from duckdb_tables()
                where database_name = current_database() and not internal
                union all
                select schema_name || '.' || view_name
                from duckdb_views()
                where database_name = current_database() and not internal
            )
            where contains(lower(name), lower(?))
            order by 1
            """, [pattern]).fetchall()
        for (name,) in rows:
            self.out(str(name))

    def _schema(self, name: str) -> None:
        if not name:
            self._error("usage: .schema NAME (a table or view; .tables lists them)")
            return
        schema, _, table = name.rpartition(".")
        rows = self.con.execute(
            """
            select table_schema, table_name, column_name, data_type, is_nullable
            from information_schema.columns
            where table_catalog = current_database()
                and lower(table_name) = lower(?)
                and (? = '' or lower(table_schema) = lower(?))
            order by table_schema, table_name, ordinal_position
            """, [table, schema, schema]).fetchall()
        if not rows:
            self._error(f"no table or view named {name}; .tables lists them")
            return
        for qualified in dict.fromkeys(f"{row[0]}.{row[1]}" for row in rows):
            columns = [row[2:] for row in rows if f"{row[0]}.{row[1]}" == qualified]
            self.out(qualified)
            for text in format_table(["column", "type", "nullable"], columns):
                self.out(f"  {text}")


def run_shell(con: duckdb.DuckDBPyConnection, path: Path, warehouse: bool,
              max_rows: int = MAX_ROWS, stdin: TextIO | None = None) -> int:
    """Read statements from stdin until ``.quit`` or its end; returns the number of errors.

    On a terminal it prompts and edits lines with ``readline``; from a pipe it reads silently,
    as DuckDB's and SQLite's shells do.
    """
    source = stdin or sys.stdin
    shell = Shell(con, max_rows)
    if source.isatty():
        import readline  # noqa: F401 (importing it gives input() line editing and history)

        say(f"pslake sql: {'the warehouse' if warehouse else 'the published marts'} {path}, "
            "read-only. End statements with ';'; .help for commands, .quit to leave.")
        if warehouse:
            say("While this shell is open, `pslake ingest` and `pslake transform` cannot write "
                "the warehouse.")
        _prompt_loop(shell)
    else:
        _feed(shell, source)
    shell.finish()
    return shell.errors


def _prompt_loop(shell: Shell) -> None:
    while True:
        try:
            line = input(shell.prompt)
        except EOFError:
            say("")
            return
        except KeyboardInterrupt:
            say("")
            shell.cancel()
            continue
        if not shell.feed(line):
            return


def _feed(shell: Shell, lines: Iterable[str]) -> None:
    for line in lines:
        if not shell.feed(line.rstrip("\r\n")):
            return


# ---------- the command


@friendly
def sql_command(
    query: str | None = typer.Argument(
        None, help="SQL to run once ('-' reads it from stdin); without it, a SQL shell."),
    output_format: OutputFormat | None = FORMAT_OPTION,
    output: Path | None = OUTPUT_OPTION,
    warehouse: bool = typer.Option(
        False, "--warehouse",
        help="Open DATA_DIR/warehouse.duckdb (raw, staging, canonical, marts) instead of the "
             "published snapshot of the marts."),
    max_rows: int = typer.Option(MAX_ROWS, "--max-rows", min=1,
                                 help="Rows the table format shows."),
) -> None:
    """Query the marts read-only: one query (table, CSV, JSON or Parquet) or a SQL shell.

    Opens the snapshot `pslake transform` publishes (what the dashboard shows).
    With --warehouse, the warehouse itself: raw, staging, canonical and marts.
    Nothing can be written: DuckDB refuses any statement that would change the file.
    In the shell, statements end with ';'. Also: .tables, .schema NAME, .help, .quit.
    """
    if query is None:
        if output_format is not None or output is not None:
            raise ValueError("sql: --format and --output need a QUERY (the shell prints tables)")
    else:
        fmt = _resolve_format(output_format, output)
        if query == "-":
            query = sys.stdin.read()
        if not query.strip():
            raise ValueError("sql: the query is empty")
    con, path = open_marts(settings.data_dir(), warehouse)
    try:
        if query is None:
            if run_shell(con, path, warehouse, max_rows) and not sys.stdin.isatty():
                raise typer.Exit(1)
            return
        written = run_query(con, query, fmt, output, max_rows)
    finally:
        con.close()
    if output is not None:
        say(f"sql: {written:,} rows to {output}")
