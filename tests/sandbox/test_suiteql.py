"""The SuiteQL engine: translation to SQLite, validation errors, rendering, paging and counts."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator

import pytest

from sandbox.server.suiteql import (
    MAX_RESULTS,
    TABLES,
    SuiteQLEngine,
    SuiteQLError,
    like_to_glob,
    oracle_to_strftime,
    parse_datetime,
    render_date,
    render_sql,
    render_timestamp,
    translate,
)
from sandbox.store import NETSUITE_DDL, NETSUITE_INDEXES


@pytest.fixture
def store() -> Iterator[sqlite3.Connection]:
    con = sqlite3.connect(":memory:")
    con.executescript(NETSUITE_DDL)
    con.executescript(NETSUITE_INDEXES)
    yield con
    con.close()


def _add_timebills(con: sqlite3.Connection, count: int) -> None:
    con.executemany(
        "insert into timebill (id, employee, customer, hours, trandate, isbillable, "
        "approvalstatus, subsidiary, datecreated, lastmodifieddate) "
        "values (?, 1, 2, 1.25, '2026-03-04', 'T', 2, 1, '2026-03-04 10:00:00', ?)",
        (
            (i, f"2026-03-04 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}")
            for i in range(1, count + 1)
        ),
    )


def _plan_details(con: sqlite3.Connection, sql: str) -> str:
    rows = con.execute("explain query plan " + sql.replace("?", "1000")).fetchall()
    return " | ".join(row[-1] for row in rows)


# ---- translation ---------------------------------------------------------------------------------


@pytest.mark.unit
def test_transaction_is_quoted_and_date_literals_become_iso_text() -> None:
    plan = translate(
        "SELECT t.id, tl.transaction FROM transaction t "
        "INNER JOIN transactionline tl ON tl.transaction = t.id "
        "WHERE t.lastmodifieddate >= TO_TIMESTAMP('2026-01-02 03:04:05', 'YYYY-MM-DD HH24:MI:SS')"
    )
    assert 'FROM "transaction" AS "t"' in plan.sql
    assert '"tl"."transaction" = "t"."id"' in plan.sql
    assert '"t"."lastmodifieddate" >= \'2026-01-02 03:04:05\'' in plan.sql
    assert plan.resource == "transaction"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("trandate >= TO_DATE('2026-03-01', 'YYYY-MM-DD')", "'2026-03-01'"),
        (
            "trandate >= TO_TIMESTAMP('2026-03-01 00:00:00', 'YYYY-MM-DD HH24:MI:SS')",
            "'2026-03-01'",
        ),
        (
            "trandate > TO_TIMESTAMP('2026-03-01 12:30:00', 'YYYY-MM-DD HH24:MI:SS')",
            "'2026-03-01 12:30:00'",
        ),
        ("lastmodifieddate >= TO_DATE('2026-03-01', 'YYYY-MM-DD')", "'2026-03-01 00:00:00'"),
        ("trandate = '3/1/2026'", "'2026-03-01'"),
        ("lastmodifieddate < TO_DATE('03/01/2026', 'MM/DD/YYYY')", "'2026-03-01 00:00:00'"),
        (
            "lastmodifieddate >= TO_TIMESTAMP('2026-03-01T10:00:00', 'YYYY-MM-DD\"T\"HH24:MI:SS')",
            "'2026-03-01 10:00:00'",
        ),
        (
            "lastmodifieddate >= TO_TIMESTAMP_TZ('2026-03-01 10:00:00 +02:00', "
            "'YYYY-MM-DD HH24:MI:SS TZH:TZM')",
            "'2026-03-01 08:00:00'",
        ),
        (
            "trandate BETWEEN DATE '2026-03-01' AND TO_DATE('2026-03-31', 'YYYY-MM-DD')",
            "BETWEEN '2026-03-01' AND '2026-03-31'",
        ),
    ],
    ids=[
        "date-vs-date",
        "date-vs-midnight-ts",
        "date-vs-noon-ts",
        "ts-vs-date",
        "account-format-string",
        "us-format",
        "quoted-T",
        "tz",
        "between",
    ],
)
def test_date_literals_take_the_text_form_of_the_column_they_meet(
    condition: str, expected: str
) -> None:
    assert expected in translate(f"SELECT id FROM timebill WHERE {condition}").sql


@pytest.mark.unit
def test_to_char_becomes_strftime_with_oracle_elements_translated() -> None:
    plan = translate(
        "SELECT TO_CHAR(lastmodifieddate, 'YYYY-MM-DD\"T\"HH24:MI:SS') AS lm FROM timebill"
    )
    assert 'STRFTIME(\'%Y-%m-%dT%H:%M:%S\', "timebill"."lastmodifieddate")' in plan.sql
    assert [(o.name, o.kind) for o in plan.outputs] == [("lm", "text")]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("YYYY-MM-DD HH24:MI:SS", "%Y-%m-%d %H:%M:%S"),
        ("DD/MM/YYYY", "%d/%m/%Y"),
        ('YYYY"W"MM', "%YW%m"),
        ("yyyy-mm-dd", "%Y-%m-%d"),
    ],
)
def test_oracle_formats_translate_to_strftime(fmt: str, expected: str) -> None:
    assert oracle_to_strftime(fmt) == expected


@pytest.mark.unit
@pytest.mark.parametrize("fmt", ["MON-YYYY", "HH:MI AM", "DY"])
def test_oracle_format_elements_sqlite_cannot_produce_are_refused(fmt: str) -> None:
    with pytest.raises(SuiteQLError, match="Unsupported date format element"):
        oracle_to_strftime(fmt)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("2026-11-02", "YYYY-MM-DD", dt.datetime(2026, 11, 2)),
        ("11/2/2026", None, dt.datetime(2026, 11, 2)),
        ("11/2/2026 3:04 pm", None, dt.datetime(2026, 11, 2, 15, 4)),
        ("02.11.2026 15:04", "DD.MM.YYYY HH24:MI", dt.datetime(2026, 11, 2, 15, 4)),
        (
            "2026-11-02 15:04:05.25",
            "YYYY-MM-DD HH24:MI:SS.FF",
            dt.datetime(2026, 11, 2, 15, 4, 5, 250000),
        ),
    ],
)
def test_date_literals_parse_with_or_without_a_format(
    text: str, fmt: str | None, expected: dt.datetime
) -> None:
    assert parse_datetime(text, fmt) == expected


@pytest.mark.unit
def test_select_star_expands_to_the_table_columns_in_order() -> None:
    plan = translate("SELECT * FROM customer")
    assert [o.name for o in plan.outputs] == list(TABLES["customer"].columns)


@pytest.mark.unit
def test_columns_are_named_in_lower_case_and_unnamed_expressions_exprn() -> None:
    plan = translate(
        "SELECT ID, CompanyName AS Name, UPPER(entityid), COUNT(*) OVER_X FROM customer "
        "GROUP BY id, companyname, entityid"
    )
    assert [o.name for o in plan.outputs] == ["id", "name", "expr1", "over_x"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("query", "kinds"),
    [
        (
            "SELECT id, employee, hours, trandate, lastmodifieddate, isbillable FROM timebill",
            ["key", "key", "num", "date", "ts", "text"],
        ),
        (
            "SELECT COUNT(*), SUM(hours), MAX(id), MAX(trandate) FROM timebill",
            ["num", "num", "num", "date"],
        ),
        (
            "SELECT NVL(companyname, 'none'), COALESCE(enddate, startdate) FROM job",
            ["text", "date"],
        ),
        (
            "SELECT SYSDATE, CURRENT_DATE, TRUNC(SYSDATE), trandate + 1 FROM timebill",
            ["ts", "date", "date", "date"],
        ),
    ],
    ids=["columns", "aggregates", "coalesce", "date-functions"],
)
def test_result_columns_carry_the_kind_that_decides_rendering(query: str, kinds: list[str]) -> None:
    assert [o.kind for o in translate(query).outputs] == kinds


@pytest.mark.unit
def test_nulls_last_is_kept_for_nullable_columns_and_dropped_for_not_null_ones() -> None:
    sql = translate("SELECT id FROM timebill ORDER BY memo, lastmodifieddate, id DESC").sql
    assert '"timebill"."memo" NULLS LAST' in sql
    assert '"timebill"."lastmodifieddate", "timebill"."id" DESC LIMIT' in sql + " LIMIT"


@pytest.mark.unit
def test_order_by_prefers_the_column_over_a_same_named_alias_so_the_index_serves_it() -> None:
    sql = translate(
        "SELECT id, TO_CHAR(lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lastmodifieddate "
        "FROM timebill ORDER BY lastmodifieddate, id"
    ).sql
    assert sql.endswith('ORDER BY "timebill"."lastmodifieddate", "timebill"."id"')


@pytest.mark.unit
def test_correlated_and_in_subqueries_resolve_against_their_scopes() -> None:
    plan = translate(
        "SELECT c.id, (SELECT COUNT(*) FROM job j WHERE j.customer = c.id) AS jobs "
        "FROM customer c WHERE c.id IN (SELECT customer FROM job WHERE entitystatus = 1) "
        "AND EXISTS (SELECT 1 FROM transaction t WHERE t.entity = c.id)"
    )
    assert '"j"."customer" = "c"."id"' in plan.sql
    assert 'IN (SELECT "job"."customer" FROM "job"' in plan.sql
    assert [(o.name, o.kind) for o in plan.outputs] == [("id", "key"), ("jobs", "num")]


@pytest.mark.unit
def test_division_is_decimal_and_concatenation_ignores_nulls_as_in_oracle() -> None:
    sql = translate("SELECT hours / 2, memo || 'x' FROM timebill").sql
    assert 'CAST("timebill"."hours" AS REAL) / 2' in sql
    assert "COALESCE(\"timebill\".\"memo\", '') || COALESCE('x', '')" in sql


@pytest.mark.unit
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT xyz FROM customer", "Field 'xyz' for record 'customer' was not found."),
        ("SELECT c.xyz FROM customer c", "Field 'xyz' for record 'customer' was not found."),
        ("SELECT id FROM nosuchtable", "Record 'nosuchtable' was not found."),
        ("SELECT FOO(id) FROM customer", "Unsupported function 'FOO'"),
        ("SELECT BUILTIN.DF(subsidiary) FROM customer", "Unsupported function 'BUILTIN.DF'"),
        ("UPDATE customer SET email = 'x'", "Only SELECT queries are supported (got UPDATE)"),
        ("DELETE FROM timebill", "Only SELECT queries are supported (got DELETE)"),
        ("DROP TABLE customer", "Only SELECT queries are supported (got DROP)"),
        ("INSERT INTO customer (id) VALUES (1)", "Only SELECT queries are supported"),
        ("SELECT id FROM customer; SELECT id FROM job", "Only one SELECT statement"),
        ("SELECT id FROM customer c, job j", "Column 'id' is ambiguously defined."),
        ("SELECT q.id FROM customer c", "Invalid identifier 'q.id'."),
        ("SELECT id FROM customer WHERE id = :id", "Bind variables are not supported"),
        ("SELECT c.id FROM customer c, job j WHERE j.customer(+) = c.id", "(+) outer join"),
        ("SELECT entityid, COUNT(*) FROM customer", "not a single-group query"),
        ("SELECT id, companyname FROM customer GROUP BY id", "not a GROUP BY expression"),
        ("SELECT ROW_NUMBER() OVER (ORDER BY id) FROM customer", "Unsupported"),
        ("SELEKT id FROM customer", "Invalid or unsupported search"),
        ("SELECT id FROM", "Invalid or unsupported search"),
        ("   ", "The query is empty."),
    ],
    ids=[
        "unknown-column",
        "unknown-qualified-column",
        "unknown-table",
        "unknown-function",
        "builtin-df",
        "update",
        "delete",
        "drop",
        "insert",
        "two-statements",
        "ambiguous",
        "unknown-alias",
        "bind-variable",
        "oracle-outer-join",
        "aggregate-without-group",
        "ungrouped-column",
        "window-function",
        "misspelt-keyword",
        "truncated",
        "empty",
    ],
)
def test_queries_outside_the_subset_are_refused_with_netsuite_messages(
    query: str, message: str
) -> None:
    with pytest.raises(SuiteQLError) as caught:
        translate(query)
    assert message in caught.value.detail
    assert caught.value.message.startswith(
        "Invalid search query. Detailed unprocessed description follows. Search error occurred: "
    )


# ---- rendering -----------------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("2026-11-02 00:05:59", "11/2/2026 12:05 am"),
        ("2026-11-02 12:00:00", "11/2/2026 12:00 pm"),
        ("2026-01-31 23:59:59", "1/31/2026 11:59 pm"),
        ("2026-07-04 09:30:00", "7/4/2026 9:30 am"),
    ],
)
def test_timestamps_render_in_account_format_to_the_minute(stored: str, shown: str) -> None:
    assert render_timestamp(stored) == shown


@pytest.mark.unit
def test_dates_render_as_month_day_year_without_padding() -> None:
    assert render_date("2026-11-02") == "11/2/2026"
    assert render_date("2026-12-25") == "12/25/2026"


@pytest.mark.integration
@pytest.mark.parametrize(
    "value",
    [
        "2026-11-02 00:05:59",
        "2026-11-02 12:00:00",
        "2026-01-31 23:59:59",
        "2026-07-04 09:30:00",
        "2026-07-04",
        "not a date",
    ],
)
def test_sqlite_rendering_matches_the_python_reference(value: str) -> None:
    con = sqlite3.connect(":memory:")
    try:
        [(ts, date)] = con.execute(
            f"SELECT {render_sql('v', 'ts')}, {render_sql('v', 'date')} FROM (SELECT ? AS v)",
            (value,),
        ).fetchall()
    finally:
        con.close()
    assert (ts, date) == (render_timestamp(value), render_date(value))


@pytest.mark.unit
def test_like_matches_case_sensitively_as_in_oracle() -> None:
    assert like_to_glob("50%_off[1]*?") == "50*?off[[]1][*][?]"
    sql = translate("SELECT id FROM customer WHERE companyname LIKE 'Cust%'").sql
    assert '"customer"."companyname" GLOB \'Cust*\'' in sql


# ---- running pages -------------------------------------------------------------------------------


@pytest.mark.integration
def test_keyset_and_incremental_queries_walk_an_index_without_sorting(
    store: sqlite3.Connection,
) -> None:
    keyset = translate("SELECT * FROM timebill WHERE id > 123 ORDER BY id")
    details = _plan_details(store, keyset.page_sql)
    assert "INTEGER PRIMARY KEY" in details and "TEMP B-TREE" not in details
    incremental = translate(
        "SELECT id, TO_CHAR(lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lastmodifieddate "
        "FROM timebill WHERE lastmodifieddate >= "
        "TO_TIMESTAMP('2026-01-01 00:00:00', 'YYYY-MM-DD HH24:MI:SS') ORDER BY lastmodifieddate, id"
    )
    details = _plan_details(store, incremental.page_sql)
    assert "timebill_by_modified" in details and "TEMP B-TREE" not in details
    count_details = _plan_details(store, keyset.count_sql)
    assert "INTEGER PRIMARY KEY" in count_details


@pytest.mark.integration
def test_rows_render_with_nulls_omitted_keys_as_strings_and_dates_formatted(
    store: sqlite3.Connection,
) -> None:
    _add_timebills(store, 3)
    page = SuiteQLEngine().page(
        store,
        "SELECT id, employee, memo, hours, trandate, lastmodifieddate, isbillable "
        "FROM timebill ORDER BY id",
        2,
        0,
        0,
    )
    assert page.items[0] == {
        "links": [],
        "id": "1",
        "employee": "1",
        "hours": 1.25,
        "trandate": "3/4/2026",
        "lastmodifieddate": "3/4/2026 12:00 am",
        "isbillable": "T",
    }
    assert (page.total_results, page.has_more, page.resource) == (3, True, "timebill")


@pytest.mark.integration
def test_more_than_100000_rows_report_the_cap_and_keep_has_more_at_the_cap(
    store: sqlite3.Connection,
) -> None:
    _add_timebills(store, MAX_RESULTS + 5)
    engine = SuiteQLEngine()
    query = "SELECT id FROM timebill ORDER BY id"
    last = engine.page(store, query, 1000, MAX_RESULTS - 1000, 0)
    assert (last.total_results, last.has_more, len(last.items)) == (MAX_RESULTS, True, 1000)
    keyset = engine.page(
        store, f"SELECT id FROM timebill WHERE id > {MAX_RESULTS} ORDER BY id", 1000, 0, 0
    )
    assert [i["id"] for i in keyset.items] == [str(MAX_RESULTS + n) for n in range(1, 6)]
    assert (keyset.total_results, keyset.has_more) == (5, False)


@pytest.mark.integration
def test_counts_are_cached_per_store_generation(store: sqlite3.Connection) -> None:
    _add_timebills(store, 30)
    engine = SuiteQLEngine()
    query = "SELECT id FROM timebill ORDER BY id"
    assert engine.page(store, query, 10, 0, generation=0).total_results == 30
    store.execute("delete from timebill where id > 20")
    assert engine.page(store, query, 10, 0, generation=0).total_results == 30
    assert engine.page(store, query, 10, 0, generation=1).total_results == 20


@pytest.mark.integration
def test_oracle_functions_compute_as_oracle_does(store: sqlite3.Connection) -> None:
    [item] = (
        SuiteQLEngine()
        .page(
            store,
            "SELECT ADD_MONTHS(TO_DATE('2026-01-31', 'YYYY-MM-DD'), 1) AS end_of_feb, "
            "ADD_MONTHS(TO_DATE('2026-02-28', 'YYYY-MM-DD'), 1) AS last_to_last, "
            "ADD_MONTHS(TO_DATE('2026-03-15', 'YYYY-MM-DD'), -2) AS back, "
            "TRUNC(TO_TIMESTAMP('2026-03-15 10:00:00', 'YYYY-MM-DD HH24:MI:SS')) AS day, "
            "TRUNC(-7.89) AS whole, TRUNC(7.89, 1) AS tenth, 7 / 2 AS half, MOD(7, 3) AS rest, "
            "NVL2(NULL, 'a', 'b') AS nvl2, DECODE(2, 1, 'one', 2, 'two', 'many') AS decode, "
            "TO_NUMBER('12.5') AS num, SUBSTR('abcdef', 2, 3) AS sub, TRIM('  x  ') AS trimmed, "
            "TO_DATE('2026-03-15', 'YYYY-MM-DD') - TO_DATE('2026-03-01', 'YYYY-MM-DD') AS days "
            "FROM dual",
            10,
            0,
            0,
        )
        .items
    )
    assert item == {
        "links": [],
        "end_of_feb": "2/28/2026",
        "last_to_last": "3/31/2026",
        "back": "1/15/2026",
        "day": "3/15/2026",
        "whole": -7,
        "tenth": 7.8,
        "half": 3.5,
        "rest": 1,
        "nvl2": "b",
        "decode": "two",
        "num": 12.5,
        "sub": "bcd",
        "trimmed": "x",
        "days": 14.0,
    }


@pytest.mark.integration
def test_queries_sqlite_refuses_at_run_time_answer_suiteql_errors(
    store: sqlite3.Connection,
) -> None:
    with pytest.raises(SuiteQLError, match="Invalid or unsupported search"):
        SuiteQLEngine().page(
            store,
            "SELECT id FROM timebill WHERE id IN (SELECT id, employee FROM timebill)",
            10,
            0,
            0,
        )
