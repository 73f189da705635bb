"""The NetSuite emulator over real HTTP: SuiteQL paging and errors, the record API, faults, stats.

Two sandboxes serve the module, each over its own tiny store (``netsuite_fixture``): ``reader``
is never written to, so counts and aggregates can be checked against the fixture's formulas;
``writer`` takes the PATCH and DELETE tests, each on its own records.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.server.app import SandboxThread
from tests.sandbox.netsuite_fixture import (
    CUSTOMERS,
    EMPLOYEES,
    FIRST_TIMEBILL,
    INVOICES,
    JOBS,
    PAYMENTS,
    TIMEBILLS,
    TinyNetSuite,
    build_store,
    timebill_stamp,
)

pytestmark = pytest.mark.integration

SUITEQL = "/services/rest/query/v1/suiteql"
RECORD = "/services/rest/record/v1"
ERROR_PREFIX = (
    "Invalid search query. Detailed unprocessed description follows. Search error occurred: "
)


class Api:
    """A requests session on the sandbox's NetSuite base URL with the account's token."""

    def __init__(self, srv: SandboxThread) -> None:
        self.srv = srv
        self.base = srv.endpoints["netsuite"]["base_url"]
        self.session = requests.Session()
        self.session.headers["Authorization"] = (
            f"Bearer {srv.endpoints['netsuite']['access_token']}"
        )

    def suiteql(self, q: str, **params: Any) -> requests.Response:
        return self.session.post(
            self.base + SUITEQL,
            params=params,
            json={"q": q},
            headers={"Prefer": "transient"},
            timeout=30,
        )

    def rows(self, q: str, **params: Any) -> list[dict[str, Any]]:
        reply = self.suiteql(q, **params)
        assert reply.status_code == 200, reply.text
        items: list[dict[str, Any]] = reply.json()["items"]
        return items

    def follow(self, q: str, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Every item of a query, following ``links[rel=next]``; also the number of pages."""
        url: str | None = f"{self.base}{SUITEQL}?limit={limit}&offset=0"
        items: list[dict[str, Any]] = []
        pages = 0
        while url:
            reply = self.session.post(
                url, json={"q": q}, headers={"Prefer": "transient"}, timeout=30
            )
            assert reply.status_code == 200, reply.text
            page = reply.json()
            pages += 1
            assert page["count"] == len(page["items"])
            items += page["items"]
            links = {link["rel"]: link["href"] for link in page["links"]}
            assert page["hasMore"] == ("next" in links)
            url = links.get("next")
        return items, pages

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.base + path, params=params, timeout=30)

    def patch(self, path: str, body: Any) -> requests.Response:
        return self.session.patch(self.base + path, json=body, timeout=30)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(self.base + path, timeout=30)

    def faults(self, **settings: Any) -> None:
        reply = requests.put(f"{self.srv.root}/_sandbox/faults", json=settings, timeout=30)
        assert reply.status_code == 200, reply.text


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyNetSuite:
    return build_store(tmp_path_factory.mktemp("netsuite-reader"))


@pytest.fixture(scope="module")
def reader(tiny: TinyNetSuite) -> Iterator[Api]:
    with SandboxThread(tiny.store_dir) as srv:
        yield Api(srv)


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    store: Path = tmp_path_factory.mktemp("netsuite-writer")
    build_store(store)
    with SandboxThread(store) as srv:
        yield Api(srv)


@pytest.fixture
def faults_off(reader: Api) -> Iterator[Api]:
    yield reader
    reader.faults(
        rate_limit=False,
        malformed_rate=0.0,
        drift=False,
        slow_rate=0.0,
        limits={"netsuite": {"concurrency": 15}},
        vendors=["hubspot", "harvest", "netsuite"],
    )


def _error(reply: requests.Response) -> dict[str, Any]:
    body = reply.json()
    assert body["status"] == reply.status_code
    assert body["title"] and body["type"].startswith("https://www.rfc-editor.org/")
    detail: dict[str, Any] = body["o:errorDetails"][0]
    return detail


def _hours(index: int) -> float:
    return 0.5 + index % 8


# ---- SuiteQL paging ------------------------------------------------------------------------------


def test_offset_paging_with_has_more_visits_every_timebill_once(reader: Api) -> None:
    items, pages = reader.follow("SELECT id FROM timebill ORDER BY id", limit=400)
    ids = [int(item["id"]) for item in items]
    assert ids == list(range(FIRST_TIMEBILL, FIRST_TIMEBILL + TIMEBILLS))
    assert pages == -(-TIMEBILLS // 400)


def test_a_page_reports_totals_and_links_as_netsuite_does(reader: Api) -> None:
    reply = reader.suiteql("SELECT id FROM timebill ORDER BY id", limit=1000, offset=1000)
    page = reply.json()
    assert (page["count"], page["hasMore"], page["offset"], page["totalResults"]) == (
        1000,
        True,
        1000,
        TIMEBILLS,
    )
    links = {link["rel"]: link["href"] for link in page["links"]}
    assert set(links) == {"previous", "first", "next", "last", "self"}
    assert links["next"] == f"{reader.base}{SUITEQL}?limit=1000&offset=2000"
    assert links["previous"].endswith("?limit=1000&offset=0")
    assert links["last"].endswith("?limit=1000&offset=2000")
    assert links["self"].startswith("http://127.0.0.1:")
    assert all(item["links"] == [] for item in page["items"])


def test_limit_defaults_to_1000(reader: Api) -> None:
    page = reader.suiteql("SELECT id FROM timebill").json()
    assert (page["count"], page["hasMore"]) == (1000, True)


def test_keyset_paging_by_id_visits_every_row_once(reader: Api) -> None:
    seen: list[int] = []
    last = 0
    requests_made = 0
    while True:
        items = reader.rows(
            f"SELECT id, hours FROM timebill WHERE id > {last} ORDER BY id", limit=1000
        )
        requests_made += 1
        if not items:
            break
        seen += [int(item["id"]) for item in items]
        last = seen[-1]
    assert seen == list(range(FIRST_TIMEBILL, FIRST_TIMEBILL + TIMEBILLS))
    assert requests_made == 4


@pytest.mark.parametrize(
    ("limit", "offset", "param"),
    [
        (1000, 100_000, "offset"),
        (1000, 99_500, "offset"),
        (1, 100_000, "offset"),
        (1001, 0, "limit"),
        (0, 0, "limit"),
        ("ten", 0, "limit"),
        (10, -1, "offset"),
    ],
    ids=[
        "offset-at-cap",
        "page-crossing-cap",
        "one-past-cap",
        "limit-over-1000",
        "limit-zero",
        "limit-not-a-number",
        "negative-offset",
    ],
)
def test_paging_outside_netsuite_limits_answers_400(
    reader: Api, limit: Any, offset: int, param: str
) -> None:
    reply = reader.suiteql("SELECT id FROM timebill ORDER BY id", limit=limit, offset=offset)
    assert reply.status_code == 400
    detail = _error(reply)
    assert detail["o:errorCode"] == "INVALID_PARAMETER"
    assert detail["o:errorQueryParam"] == param


def test_the_last_page_below_the_cap_is_served(reader: Api) -> None:
    page = reader.suiteql("SELECT id FROM timebill", limit=1000, offset=99_000).json()
    assert (page["count"], page["hasMore"], page["totalResults"]) == (0, False, TIMEBILLS)


def test_missing_prefer_transient_header_answers_400(reader: Api) -> None:
    reply = reader.session.post(
        reader.base + SUITEQL, json={"q": "SELECT id FROM customer"}, timeout=30
    )
    assert reply.status_code == 400
    detail = _error(reply)
    assert detail["o:errorHeader"] == "Prefer"
    assert "Prefer: transient" in detail["detail"]


def test_a_body_without_q_answers_400(reader: Api) -> None:
    reply = reader.session.post(
        reader.base + SUITEQL, json={"query": "x"}, headers={"Prefer": "transient"}, timeout=30
    )
    assert reply.status_code == 400
    assert _error(reply)["o:errorCode"] == "INVALID_CONTENT"


# ---- SuiteQL semantics ---------------------------------------------------------------------------


def test_joins_and_group_by_sum_hours_per_customer(reader: Api) -> None:
    items = reader.rows(
        "SELECT c.id AS customer, c.companyname, COUNT(*) AS entries, SUM(t.hours) AS hours "
        "FROM timebill t INNER JOIN job j ON j.id = t.customer "
        "INNER JOIN customer c ON c.id = j.customer "
        "GROUP BY c.id, c.companyname HAVING COUNT(*) > 0 ORDER BY c.id"
    )
    expected_hours: Counter[int] = Counter()
    expected_entries: Counter[int] = Counter()
    for i in range(TIMEBILLS):
        customer = CUSTOMERS[(i % len(JOBS)) % len(CUSTOMERS)]
        expected_hours[customer] += _hours(i)
        expected_entries[customer] += 1
    assert [item["customer"] for item in items] == [str(c) for c in CUSTOMERS]
    for item in items:
        customer = int(item["customer"])
        assert item["companyname"] == f"Customer {customer} Ltd"
        assert item["entries"] == expected_entries[customer]
        assert item["hours"] == pytest.approx(expected_hours[customer])


def test_left_join_keeps_rows_without_a_match(reader: Api) -> None:
    items = reader.rows(
        "SELECT e.id, s.entityid AS supervisor FROM employee e "
        "LEFT JOIN employee s ON s.id = e.supervisor ORDER BY e.id"
    )
    assert len(items) == len(EMPLOYEES)
    assert "supervisor" not in items[0]
    assert all(item["supervisor"] == f"EMP-{EMPLOYEES[0]}" for item in items[1:])


def test_comma_join_with_where_and_in_subquery(reader: Api) -> None:
    items = reader.rows(
        "SELECT t.tranid, c.entityid FROM transaction t, customer c "
        "WHERE c.id = t.entity AND t.type = 'CustInvc' "
        "AND t.id IN (SELECT previousdoc FROM previoustransactionlink WHERE linktype = 'Payment') "
        "ORDER BY t.id"
    )
    assert [item["tranid"] for item in items] == [f"INV{i}" for i in INVOICES[: len(PAYMENTS)]]
    assert items[0]["entityid"] == f"CUST-{CUSTOMERS[0]}"


def test_scalar_subquery_case_and_arithmetic(reader: Api) -> None:
    items = reader.rows(
        "SELECT j.id, (SELECT COUNT(*) FROM timebill t WHERE t.customer = j.id) AS entries, "
        "CASE WHEN j.entitystatus = 2 THEN 'closed' ELSE 'open' END AS state, "
        "j.estimatedrevenue - j.estimatedcost AS margin, ROUND(j.estimatedcost / 3, 2) AS third "
        "FROM job j WHERE j.id BETWEEN 205 AND 206 ORDER BY j.id DESC"
    )
    assert [item["id"] for item in items] == ["206", "205"]
    assert items[0]["state"] == "closed" and items[1]["state"] == "open"
    assert items[0]["entries"] == sum(1 for i in range(TIMEBILLS) if i % len(JOBS) == 5)
    assert items[0]["margin"] == pytest.approx(24000.0)
    assert items[0]["third"] == pytest.approx(12000.0)


def test_distinct_like_and_is_null_filters(reader: Api) -> None:
    assert reader.rows("SELECT DISTINCT employee FROM timebill ORDER BY employee") == [
        {"links": [], "employee": str(e)} for e in EMPLOYEES
    ]
    nameless = reader.rows("SELECT id FROM customer WHERE email IS NULL")
    assert nameless == [{"links": [], "id": "103"}]
    matching = reader.rows(
        "SELECT COUNT(*) AS n FROM timebill WHERE memo LIKE 'Work item 1%' AND NOT isbillable = 'F'"
    )
    expected = sum(1 for i in range(TIMEBILLS) if i % 7 and str(i).startswith("1") and i % 5)
    assert matching == [{"links": [], "n": expected}]
    assert reader.rows("SELECT COUNT(*) AS n FROM timebill WHERE memo LIKE 'work item%'") == [
        {"links": [], "n": 0}
    ]


def test_incremental_filter_with_to_timestamp_and_to_char_full_precision(reader: Api) -> None:
    since = timebill_stamp(2400)
    items, _ = reader.follow(
        "SELECT id, TO_CHAR(lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lastmodifieddate "
        f"FROM timebill WHERE lastmodifieddate >= TO_TIMESTAMP('{since}', 'YYYY-MM-DD HH24:MI:SS') "
        "ORDER BY lastmodifieddate, id",
        limit=30,
    )
    assert [item["id"] for item in items] == [
        str(FIRST_TIMEBILL + i) for i in range(2400, TIMEBILLS)
    ]
    assert [item["lastmodifieddate"] for item in items] == [
        timebill_stamp(i) for i in range(2400, TIMEBILLS)
    ]


def test_to_date_filter_on_a_date_column(reader: Api) -> None:
    items = reader.rows(
        "SELECT COUNT(*) AS n FROM timebill "
        "WHERE trandate >= TO_DATE('2026-10-01', 'YYYY-MM-DD') "
        "AND trandate < TO_DATE('11/01/2026', 'MM/DD/YYYY')"
    )
    first, last = dt.date(2026, 10, 1), dt.date(2026, 11, 1)
    expected = sum(
        1
        for i in range(TIMEBILLS)
        if first <= dt.date(2026, 1, 1) + dt.timedelta(days=i % 300) < last
    )
    assert items == [{"links": [], "n": expected}]


def test_values_render_as_suiteql_does(reader: Api) -> None:
    [item] = reader.rows(
        "SELECT id, employee, hours, rate, trandate, lastmodifieddate, isbillable, memo "
        f"FROM timebill WHERE id = {FIRST_TIMEBILL + 61}"
    )
    assert item == {
        "links": [],
        "id": str(FIRST_TIMEBILL + 61),
        "employee": str(EMPLOYEES[61 % len(EMPLOYEES)]),
        "hours": _hours(61),
        "rate": 151.0,
        "trandate": "3/3/2026",
        "lastmodifieddate": "1/1/2026 9:01 am",
        "isbillable": "T",
        "memo": "Work item 61",
    }
    [null_memo] = reader.rows(f"SELECT id, memo FROM timebill WHERE id = {FIRST_TIMEBILL + 7}")
    assert null_memo == {"links": [], "id": str(FIRST_TIMEBILL + 7)}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT id FROM nosuchtable", "Record 'nosuchtable' was not found."),
        ("SELECT xyz FROM customer", "Field 'xyz' for record 'customer' was not found."),
        ("SELECT FOO(id) FROM customer", "Unsupported function 'FOO'"),
        ("UPDATE customer SET email = 'x' WHERE id = 101", "Only SELECT queries are supported"),
        ("SELECT id FROM customer; DELETE FROM customer", "Only one SELECT statement"),
        ("SELECT id FROM customer WHERE", "Invalid or unsupported search"),
    ],
    ids=[
        "unknown-table",
        "unknown-column",
        "unknown-function",
        "update",
        "two-statements",
        "syntax",
    ],
)
def test_invalid_queries_answer_400_in_netsuite_error_shape(
    reader: Api, query: str, message: str
) -> None:
    reply = reader.suiteql(query)
    assert reply.status_code == 400
    detail = _error(reply)
    assert detail["o:errorCode"] == "INVALID_PARAMETER"
    assert detail["detail"].startswith(ERROR_PREFIX)
    assert message in detail["detail"]


# ---- record API ----------------------------------------------------------------------------------


def test_get_record_renders_camel_case_fields_references_booleans_and_iso_dates(
    reader: Api,
) -> None:
    reply = reader.get(f"{RECORD}/job/201")
    assert reply.status_code == 200
    job = reply.json()
    assert job["id"] == "201"
    assert job["entityId"] == "PRJ-201"
    assert job["companyName"] == "Project 201"
    assert job["estimatedRevenue"] == 10000.0
    assert job["customer"]["id"] == "101" and job["customer"]["refName"] == "CUST-101"
    assert job["customer"]["links"][0]["href"].endswith(f"{RECORD}/customer/101")
    assert job["isInactive"] is False
    assert job["startDate"] == "2026-01-05"
    assert job["lastModifiedDate"] == "2026-03-01T11:30:00Z"
    assert "endDate" not in job
    assert job["links"] == [{"rel": "self", "href": f"{reader.base}{RECORD}/job/201"}]


@pytest.mark.parametrize(
    ("record_type", "record_id", "field", "value"),
    [
        ("customer", "101", "companyName", "Customer 101 Ltd"),
        ("timeBill", str(FIRST_TIMEBILL), "isBillable", False),
        (
            "timebill",
            str(FIRST_TIMEBILL),
            "approvalStatus",
            {"id": "1", "refName": "Pending Approval"},
        ),
        ("invoice", "5001", "total", 1000.0),
        ("employee", "301", "firstName", "First0"),
        ("customer", "eid:ext-c-102", "entityId", "CUST-102"),
    ],
    ids=["customer", "timeBill-camel", "timebill-enum", "invoice", "employee", "external-id"],
)
def test_records_read_by_type_and_id(
    reader: Api, record_type: str, record_id: str, field: str, value: Any
) -> None:
    reply = reader.get(f"{RECORD}/{record_type}/{record_id}")
    assert reply.status_code == 200, reply.text
    assert reply.json()[field] == value


@pytest.mark.parametrize(
    "path",
    [f"{RECORD}/customer/999", f"{RECORD}/invoice/{PAYMENTS[0]}", f"{RECORD}/job/abc"],
    ids=["unknown-id", "payment-is-not-an-invoice", "not-a-number"],
)
def test_unknown_record_ids_answer_404(reader: Api, path: str) -> None:
    reply = reader.get(path)
    assert reply.status_code == 404
    assert _error(reply)["o:errorCode"] == "NONEXISTENT_ID"


def test_record_collection_lists_stubs_filtered_by_last_modified_date(reader: Api) -> None:
    reply = reader.get(f"{RECORD}/timebill", q='lastModifiedDate ON_OR_AFTER "1/3/2026"', limit=60)
    page = reply.json()
    expected = [FIRST_TIMEBILL + i for i in range(TIMEBILLS) if timebill_stamp(i) >= "2026-01-03"]
    assert page["totalResults"] == len(expected) and page["hasMore"] is True
    assert [int(item["id"]) for item in page["items"]] == expected[:60]
    assert page["items"][0]["links"][0]["href"].endswith(f"/timeBill/{expected[0]}")
    bad = reader.get(f"{RECORD}/timebill", q="nosuchfield IS 1")
    assert bad.status_code == 400 and _error(bad)["o:errorQueryParam"] == "q"


@pytest.mark.parametrize(
    ("record_type", "record_id", "body", "column", "stored"),
    [
        (
            "customer",
            "104",
            {"companyName": "Renamed Co", "email": None},
            "companyname",
            "Renamed Co",
        ),
        (
            "job",
            "204",
            {"estimatedRevenue": 123456.78, "entityStatus": {"id": "2"}},
            "estimatedrevenue",
            123456.78,
        ),
        (
            "timeBill",
            str(FIRST_TIMEBILL + 2490),
            {"hours": 7.25, "isBillable": False},
            "hours",
            7.25,
        ),
        (
            "invoice",
            "5009",
            {"memo": "Disputed", "status": {"id": "B"}, "dueDate": "2026-12-01"},
            "memo",
            "Disputed",
        ),
    ],
    ids=["customer", "job", "timebill", "invoice"],
)
def test_patch_persists_and_bumps_lastmodifieddate_for_incremental_readers(
    writer: Api,
    record_type: str,
    record_id: str,
    body: dict[str, Any],
    column: str,
    stored: Any,
) -> None:
    table = {"timeBill": "timebill", "invoice": "transaction"}.get(record_type, record_type)
    before = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    reply = writer.patch(f"{RECORD}/{record_type}/{record_id}", body)
    assert reply.status_code == 204, reply.text
    assert reply.content == b""
    changed = writer.rows(
        f"SELECT id, {column}, TO_CHAR(lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lm "
        f"FROM {table} WHERE lastmodifieddate >= "
        f"TO_TIMESTAMP('{before}', 'YYYY-MM-DD HH24:MI:SS') ORDER BY lastmodifieddate, id"
    )
    assert [item["id"] for item in changed] == [record_id]
    assert changed[0][column] == stored
    assert changed[0]["lm"] >= before
    record = writer.get(f"{RECORD}/{record_type}/{record_id}").json()
    for field, value in body.items():
        shown = record.get(field)
        if isinstance(value, dict):
            assert shown["id"] == value["id"]
        elif value is None:
            assert field not in record
        else:
            assert shown == value


@pytest.mark.parametrize(
    ("body", "path", "code"),
    [
        ({"nosuchField": 1}, "nosuchField", "INVALID_CONTENT"),
        ({"companyname": "lower case"}, "companyname", "INVALID_CONTENT"),
        ({"lastModifiedDate": "2026-01-01T00:00:00Z"}, "lastModifiedDate", "INVALID_CONTENT"),
        ({"estimatedRevenue": "lots"}, "estimatedRevenue", "INVALID_CONTENT"),
        ({"customer": {"id": "999999"}}, "customer", "INVALID_CONTENT"),
        ({"isInactive": "yes"}, "isInactive", "INVALID_CONTENT"),
        ({"startDate": "next week"}, "startDate", "INVALID_CONTENT"),
        ({"companyName": None}, "companyName", "INVALID_CONTENT"),
    ],
    ids=[
        "unknown-field",
        "field-names-are-case-sensitive",
        "read-only",
        "not-a-number",
        "dangling-reference",
        "not-a-boolean",
        "not-a-date",
        "required",
    ],
)
def test_patch_refuses_bad_fields_with_the_error_path(
    writer: Api, body: dict[str, Any], path: str, code: str
) -> None:
    reply = writer.patch(f"{RECORD}/job/205", body)
    assert reply.status_code == 400
    detail = _error(reply)
    assert (detail["o:errorPath"], detail["o:errorCode"]) == (path, code)


def test_employee_records_are_read_only(writer: Api) -> None:
    reply = writer.patch(f"{RECORD}/employee/301", {"title": "Partner"})
    assert reply.status_code == 405
    assert writer.delete(f"{RECORD}/employee/301").status_code == 405


@pytest.mark.parametrize(
    ("record_type", "record_id", "table", "deleted_type"),
    [
        ("timebill", str(FIRST_TIMEBILL + 2499), "timebill", "timebill"),
        ("invoice", "5010", "transaction", "invoice"),
        ("customer", "105", "customer", "customer"),
    ],
    ids=["timebill", "invoice", "customer"],
)
def test_delete_removes_the_record_and_shows_up_in_deletedrecord(
    writer: Api, record_type: str, record_id: str, table: str, deleted_type: str
) -> None:
    before = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    reply = writer.delete(f"{RECORD}/{record_type}/{record_id}")
    assert reply.status_code == 204
    assert writer.get(f"{RECORD}/{record_type}/{record_id}").status_code == 404
    assert writer.rows(f"SELECT id FROM {table} WHERE id = {record_id}") == []
    deleted = writer.rows(
        f"SELECT recordid, recordtype FROM deletedrecord WHERE recordtype = '{deleted_type}' "
        f"AND deleteddate >= TO_TIMESTAMP('{before}', 'YYYY-MM-DD HH24:MI:SS')"
    )
    assert deleted == [{"links": [], "recordid": record_id, "recordtype": deleted_type}]
    if table == "transaction":
        lines = writer.rows(
            f"SELECT COUNT(*) AS n FROM transactionline WHERE transaction = {record_id}"
        )
        assert lines == [{"links": [], "n": 0}]


# ---- middleware, faults and stats ----------------------------------------------------------------


def test_wrong_token_answers_401(reader: Api) -> None:
    reply = requests.post(
        reader.base + SUITEQL,
        json={"q": "SELECT id FROM customer"},
        headers={"Prefer": "transient", "Authorization": "Bearer wrong"},
        timeout=30,
    )
    assert reply.status_code == 401
    assert _error(reply)["o:errorCode"] == "INVALID_LOGIN"


def test_rate_limit_answers_429_only_past_the_concurrency_limit(faults_off: Api) -> None:
    api = faults_off
    api.faults(
        rate_limit=True,
        limits={"netsuite": {"concurrency": 2}},
        slow_rate=1.0,
        slow_ms=400,
        vendors=["netsuite"],
    )
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        reply = requests.post(
            api.base + SUITEQL,
            json={"q": "SELECT id FROM customer"},
            headers={"Prefer": "transient", "Authorization": api.session.headers["Authorization"]},
            timeout=30,
        )
        with lock:
            statuses.append(reply.status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) >= 2 and statuses.count(429) >= 1
    assert set(statuses) == {200, 429}
    api.faults(slow_rate=0.0)
    assert [api.suiteql("SELECT id FROM customer").status_code for _ in range(5)] == [200] * 5


def test_malformed_records_and_schema_drift_show_in_suiteql_items(faults_off: Api) -> None:
    api = faults_off
    api.faults(malformed_rate=1.0)
    items = api.rows("SELECT id, hours FROM timebill ORDER BY id", limit=3)
    assert [item["hours"] for item in items] == ["eight"] * 3
    api.faults(malformed_rate=0.0, drift=True, drift_after=1)
    first = api.rows("SELECT id FROM customer ORDER BY id")
    second = api.rows("SELECT id FROM customer ORDER BY id")
    assert all("custbody_drift_flag" not in item for item in first)
    assert all(item["custbody_drift_flag"] == "T" for item in second)


def test_stats_count_calls_per_endpoint_and_records_served(reader: Api) -> None:
    requests.delete(f"{reader.srv.root}/_sandbox/stats", timeout=30)
    reader.rows("SELECT id FROM timebill ORDER BY id", limit=250)
    reader.rows("SELECT id FROM customer")
    reader.get(f"{RECORD}/job/201")
    reader.get(f"{RECORD}/customer/999")
    stats = requests.get(f"{reader.srv.root}/_sandbox/stats", timeout=30).json()
    netsuite = stats["vendors"]["netsuite"]
    assert netsuite["endpoints"] == {
        f"POST {SUITEQL}": 2,
        f"GET {RECORD}/job/{{record_id}}": 1,
        f"GET {RECORD}/customer/{{record_id}}": 1,
    }
    assert netsuite["statuses"] == {"200": 3, "404": 1}
    assert netsuite["records_served"] == 250 + len(CUSTOMERS) + 1
