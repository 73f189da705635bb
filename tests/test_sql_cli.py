"""`pslake sql` on the small firm: one query in each format, the shell fed through a pipe, the
read-only guarantee, and the one-line errors."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pslake import settings, snapshot, transform
from pslake.cli import app
from pslake.sql_cli import CONTINUE_PROMPT, PROMPT, Shell, split_statements
from tests.conftest import BuiltFirm, held_by_another_process


@pytest.fixture(autouse=True)
def _restore_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--data-dir` sets $PSLAKE_DATA_DIR in this process; put it back after each test."""
    monkeypatch.setenv(settings.DATA_DIR_ENV, os.environ.get(settings.DATA_DIR_ENV, ""))


@pytest.fixture(scope="module")
def published(small_warehouse: BuiltFirm, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding a copy of the small firm's warehouse and its published snapshot."""
    data_dir = small_warehouse.copy_to(tmp_path_factory.mktemp("sql") / "data")
    snapshot.publish(data_dir)
    return data_dir


@pytest.fixture
def marts(published: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The published snapshot, opened directly (read-only) to check what the command printed."""
    current = snapshot.current(published)
    assert current is not None
    with duckdb.connect(str(current.path), read_only=True) as con:
        yield con


def sql(data_dir: Path, *args: str, stdin: str | None = None):
    return CliRunner().invoke(app, ["--data-dir", str(data_dir), "sql", *args], input=stdin)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------- one query


@pytest.mark.integration
def test_a_count_prints_as_a_table_with_the_count_read_directly(published, marts):
    direct = marts.execute("select count(*) from marts.rec_exceptions").fetchone()[0]
    assert direct > 0
    out = sql(published, "select count(*) as exceptions from marts.rec_exceptions")
    assert out.exit_code == 0, out.output
    assert [line.strip() for line in out.stdout.splitlines()] == [
        "exceptions", "-" * len("exceptions"), str(direct), "(1 row)"]


@pytest.mark.integration
def test_a_long_result_shows_the_first_rows_and_how_many_there_are_in_all(published, marts):
    query = "select exception_id, amount_at_risk_reporting from {}rec_exceptions order by 1"
    expected = marts.execute(query.format("marts.")).fetchall()
    assert len(expected) > 5
    out = sql(published, query.format(""), "--max-rows", "5")  # marts is on the search path
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["exception_id", "amount_at_risk_reporting"]
    assert [line.split() for line in lines[2:7]] == [
        [ref, "NULL" if amount is None else str(amount)] for ref, amount in expected[:5]]
    assert lines[7] == (f"(5 of {len(expected):,} rows shown; --max-rows N shows more, "
                        "--format csv all)")
    assert len(lines) == 8


CSV_QUERY = ("select exception_id, exception_type, engagement_id, amount_at_risk_reporting, "
             "crm_record_id, first_seen_at from marts.rec_exceptions order by exception_id")


@pytest.mark.integration
@pytest.mark.parametrize("to_file", [False, True], ids=["stdout", "output-file"])
def test_csv_output_parses_back_to_the_rows_of_a_direct_query(published, marts, tmp_path,
                                                               to_file):
    target = tmp_path / "exceptions.csv"
    out = sql(published, CSV_QUERY, "--format", "csv", *(["--output", str(target)] * to_file))
    assert out.exit_code == 0, out.output
    text = target.read_text() if to_file else out.stdout
    rows = list(csv.reader(io.StringIO(text)))
    columns = [column[0] for column in marts.execute(CSV_QUERY).description]
    expected = [["" if value is None else str(value) for value in row]
                for row in marts.execute(CSV_QUERY).fetchall()]
    assert rows[0] == columns
    assert rows[1:] == expected
    assert any(row[4] == "" for row in rows[1:])  # NULL is an empty field
    if to_file:
        assert out.stdout == f"sql: {len(expected):,} rows to {target}\n"


@pytest.mark.integration
def test_json_output_loads_back_to_the_rows_of_a_direct_query(published, marts):
    query = ("select exception_type, count(*) as exceptions, "
             "sum(amount_at_risk_reporting) as amount, max(first_seen_at) as newest "
             "from marts.rec_exceptions group by 1 order by 1")
    out = sql(published, query, "--format", "json")
    assert out.exit_code == 0, out.output
    expected = [{"exception_type": kind, "exceptions": count,
                 "amount": None if amount is None else float(amount),
                 "newest": newest.isoformat()}
                for kind, count, amount, newest in marts.execute(query).fetchall()]
    assert json.loads(out.stdout) == expected


@pytest.mark.integration
def test_parquet_output_read_back_with_duckdb_equals_the_query(published, marts, tmp_path):
    target = tmp_path / "unbilled.parquet"
    query = "select * from marts.mart_unbilled_time order by all"
    out = sql(published, query, "--output", str(target))  # the format from the suffix
    assert out.exit_code == 0, out.output
    expected = marts.execute(query).fetchall()
    assert out.stdout == f"sql: {len(expected):,} rows to {target}\n"
    with duckdb.connect() as con:
        written = con.execute("select * from read_parquet(?) order by all", [str(target)])
        assert written.fetchall() == expected
        assert [c[0] for c in written.description] == [c[0] for c in
                                                        marts.execute(query).description]
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.integration
def test_a_query_read_from_stdin_runs_like_an_argument(published):
    out = sql(published, "-", stdin="select 42 as answer,\n  'forty-two' as words\n")
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines()[2].split() == ["42", "forty-two"]


@pytest.mark.integration
def test_the_warehouse_flag_opens_every_layer(published, small_warehouse):
    query = ("select distinct schema_name from duckdb_tables() union "
             "select distinct schema_name from duckdb_views() where not internal order by 1")
    out = sql(published, query, "--warehouse", "--format", "csv")
    assert out.exit_code == 0, out.output
    schemas = out.stdout.splitlines()[1:]
    with small_warehouse.connect() as con:
        assert schemas == [row[0] for row in con.execute(query).fetchall()]
    assert {"raw_harvest", "staging", "canonical", "marts"} <= set(schemas)


# ---------- read-only


WRITES = [
    "update marts.rec_exceptions set owner_team = 'nobody'",
    "create table marts.scratch as select 1 as x",
    "drop table marts.rec_exceptions",
]


@pytest.mark.integration
@pytest.mark.parametrize("warehouse", [False, True], ids=["snapshot", "warehouse"])
@pytest.mark.parametrize("statement", WRITES, ids=["update", "create-table", "drop-table"])
def test_a_writing_statement_is_refused_and_nothing_changes(published, tmp_path, statement,
                                                            warehouse):
    data_dir = tmp_path / "data"
    shutil.copytree(published, data_dir)
    current = snapshot.current(data_dir)
    assert current is not None
    target = data_dir / transform.WAREHOUSE_FILE if warehouse else current.path
    before = _digest(target)
    out = sql(data_dir, statement, *(["--warehouse"] * warehouse))
    assert out.exit_code == 2
    kind = statement.split()[0].upper()
    database = target.stem
    assert out.stderr == (f'error: sql: Invalid Input Error: Cannot execute statement of type '
                          f'"{kind}" on database "{database}" which is attached in read-only '
                          "mode!\n")
    assert _digest(target) == before
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("select count(*) from marts.rec_exceptions "
                           "where owner_team = 'nobody'").fetchone() == (0,)
        assert con.execute("select count(*) from duckdb_tables() "
                           "where table_name = 'scratch'").fetchone() == (0,)


# ---------- one-line errors


DID_YOU_MEAN = r'( Did you mean "[\w.]+"\?)?'  # DuckDB's guess at the name meant


@pytest.mark.integration
@pytest.mark.parametrize(("query", "message"), [
    ("selec 1", re.escape('Parser Error: syntax error at or near "selec"')),
    ("select * from marts.no_such_mart",
     "Catalog Error: Table with name no_such_mart does not exist!" + DID_YOU_MEAN),
    ("select 'a'::integer", re.escape("Conversion Error: Could not convert string 'a' to INT32")),
], ids=["syntax", "unknown-table", "conversion"])
def test_bad_sql_is_one_line_with_duckdbs_message(published, query, message):
    out = sql(published, query)
    assert out.exit_code == 2
    assert re.fullmatch(f"error: sql: {message}\n", out.stderr), out.stderr
    assert out.stdout == ""


@pytest.mark.integration
@pytest.mark.parametrize(("args", "message"), [
    (["select 1", "--format", "parquet"], "sql: --format parquet needs --output FILE"),
    (["select 1", "--output", "{tmp}/result.txt"],
     "sql: cannot tell the format of {tmp}/result.txt from its suffix; add --format csv, json "
     "or parquet"),
    (["select 1", "--format", "table", "--output", "{tmp}/result.csv"],
     "sql: --output needs --format csv, json or parquet (the table is for the terminal)"),
    (["select 1", "--output", "{tmp}/missing/result.csv"],
     "sql: no folder {tmp}/missing for --output"),
    (["--format", "csv"], "sql: --format and --output need a QUERY (the shell prints tables)"),
    (["   "], "sql: the query is empty"),
], ids=["parquet-to-stdout", "unknown-suffix", "table-to-file", "no-folder", "shell-format",
        "empty"])
def test_options_that_do_not_fit_are_one_line(published, tmp_path, args, message):
    out = sql(published, *[arg.format(tmp=tmp_path) for arg in args])
    assert out.exit_code == 2
    assert out.stderr == f"error: {message.format(tmp=tmp_path)}\n"


@pytest.mark.parametrize(("has_warehouse", "flag", "message"), [
    # an empty data folder: ingest, then transform (which publishes)
    (False, [], "sql: no published snapshot in {data}/snapshots and no warehouse; run "
                "`pslake ingest` then `pslake transform` (it publishes the snapshot)"),
    # a warehouse, never published
    (True, [], "sql: no published snapshot in {data}/snapshots; run `pslake transform` (or "
               "`pslake publish`), or query the warehouse with --warehouse"),
    # --warehouse where there is none
    (False, ["--warehouse"], "sql: no warehouse at {data}/warehouse.duckdb; run `pslake ingest` "
                             "then `pslake transform`"),
], ids=["nothing", "not-published", "no-warehouse"])
def test_nothing_to_open_is_one_line_naming_the_command_to_run(tmp_path, has_warehouse, flag,
                                                                message):
    data_dir = (tmp_path / "data").resolve()
    data_dir.mkdir()
    if has_warehouse:
        duckdb.connect(str(data_dir / transform.WAREHOUSE_FILE)).close()
    out = sql(data_dir, "select 1", *flag)
    assert out.exit_code == 2
    assert out.stderr == f"error: {message.format(data=data_dir)}\n"
    assert "Traceback" not in out.output


def test_a_warehouse_held_by_a_writer_is_one_line(tmp_path):
    warehouse = (tmp_path / transform.WAREHOUSE_FILE).resolve()
    duckdb.connect(str(warehouse)).close()
    with held_by_another_process(warehouse) as pid:
        out = sql(tmp_path, "select 1", "--warehouse")
    assert out.exit_code == 2
    assert re.fullmatch(
        rf"error: sql: the warehouse {re.escape(str(warehouse))} is in use by another process "
        rf"\(pid {pid}\); wait for it to finish \(a running `pslake ingest` or "
        r"`transform`\), or query the published snapshot \(leave out --warehouse\)\n",
        out.stderr), out.stderr


# ---------- the shell


@pytest.mark.integration
def test_the_shell_fed_through_a_pipe_prints_results_and_the_tables(published, marts):
    out = sql(published, stdin="select 1 as x;\n.tables\n.quit\nselect 2 as after_quit;\n")
    assert out.exit_code == 0, out.output
    tables = [f"{schema}.{name}" for schema, name in marts.execute(
        "select schema_name, table_name from duckdb_tables() order by 1, 2").fetchall()]
    assert "marts.rec_exceptions" in tables and "canonical.dim_clients" in tables
    assert out.stdout.splitlines() == ["x", "-", "1", "(1 row)", *tables]
    assert out.stderr == ""


@pytest.mark.integration
def test_the_shell_reports_an_error_on_one_line_and_goes_on(published):
    out = sql(published, stdin="select * from nope;\n.nonsense\nselect 2 as y;\n")
    assert out.exit_code == 1  # piped input with an error fails the command, as a script would
    first, second = out.stderr.splitlines()
    assert re.fullmatch("error: Catalog Error: Table with name nope does not exist!"
                        + DID_YOU_MEAN, first), first
    assert second == "error: unknown command .nonsense; .help lists them"
    assert out.stdout.splitlines() == ["y", "-", "2", "(1 row)"]


@pytest.mark.integration
def test_schema_shows_the_columns_and_types_of_a_mart(published, marts):
    out = sql(published, stdin=".schema rec_exceptions\n")
    assert out.exit_code == 0, out.output
    columns = marts.execute(
        "select column_name, data_type, is_nullable from information_schema.columns "
        "where table_schema = 'marts' and table_name = 'rec_exceptions' "
        "order by ordinal_position").fetchall()
    lines = out.stdout.splitlines()
    assert lines[0] == "marts.rec_exceptions"
    assert lines[1].split() == ["column", "type", "nullable"]
    assert [re.split(r"\s{2,}", line.strip()) for line in lines[3:]] == [list(c) for c in columns]


def test_a_statement_over_several_lines_runs_at_its_semicolon():
    printed: list[str] = []
    with duckdb.connect() as con:
        shell = Shell(con, out=printed.append, err=printed.append)
        assert shell.prompt == PROMPT
        assert shell.feed("select 1 as a,")
        assert shell.prompt == CONTINUE_PROMPT and printed == []
        assert shell.feed("  'x;y' as b; select 2 as c;")
        assert shell.prompt == PROMPT
        assert printed == ["a  b", "-  ---", "1  x;y", "(1 row)", "c", "-", "2", "(1 row)"]
        assert not shell.feed(".quit")


@pytest.mark.unit
@pytest.mark.parametrize(("text", "statements", "rest"), [
    ("select 1; select 2;", ["select 1", "select 2"], ""),      # two complete statements
    ("select 1; select", ["select 1"], "select"),               # the second goes on
    ("select ';' as s", [], "select ';' as s"),                 # a semicolon in a string
    ('select 1 as "a;b";', ['select 1 as "a;b"'], ""),          # in a quoted name
    ("select 1 -- no; cut\n;", ["select 1 -- no; cut"], ""),   # in a line comment
    ("select /* ; */ 1;", ["select /* ; */ 1"], ""),            # in a block comment
    ("select 1; -- done", ["select 1"], ""),                    # a trailing comment is no rest
    (";;", [], ""),                                             # empty statements
], ids=["two", "unfinished", "string", "name", "line-comment", "block-comment",
        "trailing-comment", "empty"])
def test_statements_are_cut_only_at_semicolons_outside_quotes_and_comments(text, statements,
                                                                             rest):
    assert split_statements(text) == (statements, rest)
