"""The dashboard's guards: SQL is written only in app/queries.py, built from constants with
every value a bound parameter; text shaped like an injection is only a value that matches
nothing; repeated wrong passwords lock the sign-in form."""

from __future__ import annotations

import ast
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from app import queries, state
from app.state import connect
from tests.app.conftest import ENTRYPOINT, USERS, Dashboard

APP = Path(queries.__file__).parent
QUERIES = Path(queries.__file__)
SQL_CALLS = {"_frame", "sql", "execute"}  # functions that take SQL text as their first value
INJECTION = "x' or 1=1 --"
LOCKOUT_AFTER = 5  # app/README.md: "Five wrong passwords lock the form for 30 seconds"


def _constants(tree: ast.Module) -> set[str]:
    """Module-level UPPER_CASE names bound to plain text (or tuples of it)."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id.isupper() \
                and all(isinstance(n, ast.Constant) and isinstance(n.value, str)
                        for n in ast.walk(node.value) if not isinstance(n, ast.Tuple | ast.Load)):
            names.add(node.targets[0].id)
    return names


def _sql_argument(call: ast.Call) -> ast.expr | None:
    function = call.func
    name = function.id if isinstance(function, ast.Name) else \
        function.attr if isinstance(function, ast.Attribute) else None
    if name not in SQL_CALLS or not call.args:
        return None
    return call.args[1] if name == "_frame" else call.args[0]


def _problems(source: str) -> Iterator[str]:
    """Where SQL text could take anything but constants."""
    tree = ast.parse(source)
    constants = _constants(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            for part in node.values:
                if isinstance(part, ast.FormattedValue) and not (
                        isinstance(part.value, ast.Name) and part.value.id in constants):
                    yield f"line {node.lineno}: an f-string interpolates {ast.unparse(part)}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "format":
            yield f"line {node.lineno}: str.format"
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add) and any(
                isinstance(side, ast.Constant) and isinstance(side.value, str)
                for side in (node.left, node.right)):
            yield f"line {node.lineno}: text built with % or +"
        elif isinstance(node, ast.Call) and (sql := _sql_argument(node)) is not None:
            allowed = constants | {"sql"}  # "sql": _frame's own argument, checked at its callers
            if not ((isinstance(sql, ast.Constant) and isinstance(sql.value, str))
                    or isinstance(sql, ast.JoinedStr)  # checked above
                    or (isinstance(sql, ast.Name) and sql.id in allowed)):
                yield f"line {node.lineno}: SQL from {ast.unparse(sql)}"


@pytest.mark.unit
def test_queries_build_sql_only_from_constants_and_bind_every_value() -> None:
    assert list(_problems(QUERIES.read_text())) == []


@pytest.mark.unit
@pytest.mark.parametrize(
    "bad",
    [
        'def q(cur, name):\n    return _frame(cur, f"select * from {name}", [])\n',
        'def q(cur, name):\n    return cur.execute("select * from t where a = \'" + name)\n',
        'def q(cur, name):\n    return cur.sql("select * from {}".format(name))\n',
        'def q(cur, text):\n    return _frame(cur, text, [])\n',
    ],
    ids=["f-string", "concatenation", "format", "sql-argument"],
)
def test_the_sql_check_catches_text_built_from_a_variable(bad: str) -> None:
    assert list(_problems(bad))


@pytest.mark.unit
def test_pages_and_the_router_hold_no_sql() -> None:
    for path in sorted(APP.rglob("*.py")):
        if path == QUERIES:
            continue
        source = path.read_text()
        calls = [n for n in ast.walk(ast.parse(source))
                 if isinstance(n, ast.Call) and _sql_argument(n) is not None]
        assert not calls, f"{path}: runs SQL itself; put it in app/queries.py"
        assert not re.search(r"\bselect\b[^\n]*\bfrom\b", source, re.IGNORECASE), path


@pytest.fixture
def cursor(dashboard: Dashboard) -> Iterator[duckdb.DuckDBPyConnection]:
    with connect(str(dashboard.snapshot)) as con:
        yield con.cursor()


def _month_and_entities(cur: duckdb.DuckDBPyConnection) -> tuple[dt.date, list[str]]:
    return queries.months(cur)[0], queries.legal_entities(cur)["legal_entity_id"].to_list()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        # a practice name (the practice filter)
        ("utilization_by_practice", ["month", "entities", "practices"]),
        ("utilization_by_person", ["month", "entities", "practices"]),
        ("margin_by_practice", ["month", "entities", "practices"]),
        ("practice_kpi_trend", ["month", "month", "entities", "practices"]),
        ("unbilled_by_age", ["entities", "practices"]),
        ("unbilled_by_project", ["entities", "practices"]),
        # an entity id (the entity filter, limited to the user's grants)
        ("margin_by_engagement", ["month", "entities"]),
        ("wip_by_engagement", ["month", "entities"]),
        ("kpi_trend", ["month", "month", "entities", False]),
        ("exceptions", ["entities", False]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_text_shaped_like_an_injection_is_a_value_that_matches_nothing(
        cursor: duckdb.DuckDBPyConnection, name: str, arguments: list[Any]) -> None:
    month, entities = _month_and_entities(cursor)
    real = {"month": month, "entities": entities, "practices": queries.practices(cursor)}
    injected = "practices" if "practices" in arguments else "entities"
    honest = [real.get(a, a) if isinstance(a, str) else a for a in arguments]
    attack = [[INJECTION] if a == injected else v for a, v in zip(arguments, honest, strict=True)]
    query = getattr(queries, name)
    assert query(cursor, *honest).height  # the real values match rows ...
    assert not query(cursor, *attack).height  # ... the injected text, none


@pytest.mark.integration
@pytest.mark.parametrize(
    ("failures", "signed_in"),
    [
        (LOCKOUT_AFTER - 1, True),   # one short of the limit: the right password still works
        (LOCKOUT_AFTER, False),      # at the limit: even the right password waits
    ],
    ids=["below-limit", "at-limit"],
)
def test_repeated_wrong_passwords_lock_the_sign_in_form(
        app_env: Dashboard, failures: int, signed_in: bool) -> None:
    at = AppTest.from_file(str(ENTRYPOINT), default_timeout=60).run()
    for _ in range(failures):
        at.text_input(key="auth_username").input("ceo")
        at.text_input(key="auth_password").input("wrong-password")
        at.button[0].click().run()
        assert [e.value for e in at.error] == ["Unknown user name or wrong password."]
    at.text_input(key="auth_username").input("ceo")
    at.text_input(key="auth_password").input(USERS["ceo"][0])
    at.button[0].click().run()
    assert not at.exception
    if signed_in:
        assert at.metric and not at.error
    else:
        assert not at.metric
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and errors[0].startswith("Too many failed sign-ins: wait ")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("statement", "refused"),
    [
        ("select * from read_csv('{outside}')", duckdb.PermissionException),   # read a file
        ("select * from read_text('/etc/passwd')", duckdb.PermissionException),
        ("select * from '{outside}'", duckdb.PermissionException),             # replacement scan
        ("attach '{outside_db}' as other", duckdb.PermissionException),        # another database
        ("copy (select 1) to '{written}'", duckdb.PermissionException),        # write a file
        ("install httpfs", duckdb.PermissionException),                        # an extension
        ("set enable_external_access = true", duckdb.InvalidInputException),   # turn it back on
        ("create table marts.x as select 1 as a", duckdb.InvalidInputException),  # write
    ],
    ids=["read_csv", "read_text", "replacement-scan", "attach", "copy-to", "install",
         "set", "create"],
)
def test_the_apps_connection_reads_only_the_snapshot(
        dashboard: Dashboard, tmp_path: Path, statement: str, refused: type[Exception]) -> None:
    """RELIABILITY.md design decision 7: read-only, external access off (and locked)."""
    outside = tmp_path / "outside.csv"
    outside.write_text("secret\nvalue\n")
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    sql = statement.format(outside=outside, outside_db=other, written=tmp_path / "out.csv")
    con = state._connection(str(dashboard.snapshot))  # the app's own, cached connection
    cursor = con.cursor()
    try:
        assert cursor.execute(
            "select current_setting('enable_external_access')").fetchall() == [(False,)]
        with pytest.raises(refused):
            cursor.execute(sql)
    finally:
        cursor.close()
    assert not (tmp_path / "out.csv").exists()
