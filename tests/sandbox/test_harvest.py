"""The Harvest v2 emulator over real HTTP: paging, filters, shapes, writes, faults, stats.

Read-only tests share one server over the tiny store of ``harvest_fixture``; tests that write,
or switch faults on, get a server over a fresh copy of their own.
"""

from __future__ import annotations

import base64
import datetime as dt
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from sandbox.server import harvest
from sandbox.server.app import SandboxThread
from tests.sandbox.harvest_fixture import (
    CATEGORIES,
    CLIENTS,
    CREATED,
    EXPENSE_IDS,
    ME,
    PROJECTS,
    RUNNING_ENTRY,
    TASK_ASSIGNMENTS,
    TASKS,
    TIME_ENTRY_IDS,
    USER_ASSIGNMENTS,
    USERS,
    build_store,
    expense_rows,
    time_entry_rows,
)

pytestmark = pytest.mark.integration

ROWS = {row["id"]: row for row in time_entry_rows()}
NEWEST_FIRST = sorted(ROWS, reverse=True)
TIME_ENTRY_KEYS = [
    "id", "spent_date", "user", "client", "project", "task", "user_assignment",
    "task_assignment", "hours", "hours_without_timer", "rounded_hours", "notes", "created_at",
    "updated_at", "is_locked", "locked_reason", "is_closed", "is_billed", "timer_started_at",
    "started_time", "ended_time", "is_running", "invoice", "external_reference", "billable",
    "budgeted", "billable_rate", "cost_rate",
]
ENVELOPE_KEYS = ["time_entries", "per_page", "total_pages", "total_entries", "next_page",
                 "previous_page", "page", "links"]


class Api:
    """A requests session on the sandbox's Harvest base URL with the account's headers."""

    def __init__(self, srv: SandboxThread) -> None:
        self.srv = srv
        ep = srv.endpoints["harvest"]
        self.base = ep["base_url"] + "/v2"
        self.session = requests.Session()
        self.session.headers.update({
            "Authorization": f"Bearer {ep['access_token']}",
            "Harvest-Account-Id": ep["account_id"],
            "User-Agent": "pslake-tests (tests@example.com)",
        })

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.base + path, params=params, timeout=30)

    def url(self, url: str) -> requests.Response:
        return self.session.get(url, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.post(self.base + path, json=body, timeout=30)

    def patch(self, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return self.session.patch(self.base + path, json=body or {}, timeout=30)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(self.base + path, timeout=30)

    def crawl(self, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Every record of a list, following links.next from the first page."""
        body = self.get(path, **params).json()
        records = list(body[key])
        while body["links"]["next"]:
            body = self.url(body["links"]["next"]).json()
            records += body[key]
        return records

    def faults(self, **settings: Any) -> None:
        resp = requests.put(self.srv.root + "/_sandbox/faults", json=settings, timeout=10)
        assert resp.status_code == 200, resp.text

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = requests.get(self.srv.root + "/_sandbox/stats", timeout=10).json()
        return data["vendors"]["harvest"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A server over the tiny store that no test changes."""
    store = tmp_path_factory.mktemp("harvest-read-only")
    build_store(store)
    with SandboxThread(store) as srv:
        yield Api(srv)


@pytest.fixture
def writable(tmp_path: Path) -> Iterator[Api]:
    """A server over a private copy of the tiny store (writes and faults allowed)."""
    build_store(tmp_path)
    with SandboxThread(tmp_path) as srv:
        yield Api(srv)


def ids(records: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in records]


def expected_time_entry(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON a seeded time entry should be served as (oracle built from the fixture)."""
    first, last, *_ = USERS[row["user_id"]]
    client_name, currency = CLIENTS[row["client_id"]]
    _c, project_name, code, *_ = PROJECTS[row["project_id"]]
    _p, _u, manager, use_default, ua_rate = USER_ASSIGNMENTS[row["user_assignment_id"]]
    _p, _t, ta_billable, ta_rate = TASK_ASSIGNMENTS[row["task_assignment_id"]]
    reference = row["external_reference"]
    return {
        "id": row["id"],
        "spent_date": row["spent_date"],
        "user": {"id": row["user_id"], "name": f"{first} {last}"},
        "client": {"id": row["client_id"], "name": client_name, "currency": currency},
        "project": {"id": row["project_id"], "name": project_name, "code": code},
        "task": {"id": row["task_id"], "name": TASKS[row["task_id"]][0]},
        "user_assignment": {
            "id": row["user_assignment_id"], "is_project_manager": bool(manager),
            "is_active": True, "use_default_rates": bool(use_default), "budget": None,
            "created_at": CREATED, "updated_at": CREATED, "hourly_rate": ua_rate,
        },
        "task_assignment": {
            "id": row["task_assignment_id"], "billable": bool(ta_billable), "is_active": True,
            "created_at": CREATED, "updated_at": CREATED, "hourly_rate": ta_rate,
            "budget": None,
        },
        "hours": row["hours"],
        "hours_without_timer": row["hours_without_timer"],
        "rounded_hours": row["rounded_hours"],
        "notes": row["notes"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "is_locked": bool(row["is_locked"]),
        "locked_reason": row["locked_reason"],
        "is_closed": bool(row["is_closed"]),
        "is_billed": bool(row["is_billed"]),
        "timer_started_at": row["timer_started_at"],
        "started_time": row["started_time"],
        "ended_time": row["ended_time"],
        "is_running": bool(row["is_running"]),
        "invoice": None if row["invoice_id"] is None
        else {"id": row["invoice_id"], "number": row["invoice_number"]},
        "external_reference": None if reference is None else orjson.loads(reference),
        "billable": bool(row["billable"]),
        "budgeted": bool(row["budgeted"]),
        "billable_rate": row["billable_rate"],
        "cost_rate": row["cost_rate"],
    }


def since(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- reading -----------------------------------------------------------------------------------


def test_following_links_next_visits_every_entry_once_newest_first(api: Api) -> None:
    pages = [api.get("/time_entries", per_page=100).json()]
    while pages[-1]["links"]["next"]:
        pages.append(api.url(pages[-1]["links"]["next"]).json())
    seen = [i for page in pages for i in ids(page["time_entries"])]
    assert seen == NEWEST_FIRST
    assert len(pages) == 5
    assert [p["page"] for p in pages] == [1, None, None, None, 5]
    assert [p["next_page"] for p in pages] == [2, None, None, None, None]
    assert [p["previous_page"] for p in pages] == [None, None, None, None, 4]
    assert {(p["total_entries"], p["total_pages"], p["per_page"]) for p in pages} == {
        (450, 5, 100)
    }
    assert list(pages[0]) == ENVELOPE_KEYS
    assert pages[0]["links"]["previous"] is None
    assert pages[-1]["links"]["next"] is None
    assert pages[0]["links"]["first"] == api.base + "/time_entries?page=1&per_page=100&ref=first"
    assert pages[0]["links"]["last"] == api.base + "/time_entries?page=5&per_page=100&ref=last"


def test_next_link_carries_an_opaque_cursor_and_the_original_filters(api: Api) -> None:
    body = api.get("/time_entries", per_page=10, project_id=401, updated_since="2026-01-01").json()
    link = body["links"]["next"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
    assert link.startswith(api.base + "/time_entries?cursor=")
    assert query["ref"] == "next_cursor"
    assert query["per_page"] == "10"
    assert query["project_id"] == "401"
    assert query["updated_since"] == "2026-01-01"
    cursor = query["cursor"]
    decoded = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert decoded == {"after": {"id": body["time_entries"][-1]["id"]}}


def test_page_parameter_pages_by_offset(api: Api) -> None:
    body = api.get("/time_entries", per_page=100, page=2).json()
    assert ids(body["time_entries"]) == NEWEST_FIRST[100:200]
    assert (body["page"], body["next_page"], body["previous_page"]) == (2, 3, 1)
    assert body["links"]["previous"] == (
        api.base + "/time_entries?page=1&per_page=100&ref=previous"
    )
    third = api.url(body["links"]["next"]).json()
    assert ids(third["time_entries"]) == NEWEST_FIRST[200:300]


def test_cursor_wins_over_page_when_both_are_given(api: Api) -> None:
    first = api.get("/time_entries", per_page=50).json()
    cursor_url = first["links"]["next"]
    both = api.url(cursor_url + "&page=7").json()
    assert ids(both["time_entries"]) == NEWEST_FIRST[50:100]


@pytest.mark.parametrize(
    "params",
    [
        {},  # the plain keyset on the primary key
        {"updated_since": "2026-06-01T01:00:00Z"},  # ids picked through the updated_at index
        {"user_id": 202},  # an equality filter whose index keeps id order
    ],
    ids=["unfiltered", "range-index", "ordered-index"],
)
def test_links_previous_leads_back_to_the_page_before(api: Api, params: dict[str, Any]) -> None:
    first = api.get("/time_entries", per_page=60, **params).json()
    second = api.url(first["links"]["next"]).json()
    back = api.url(second["links"]["previous"]).json()
    assert ids(back["time_entries"]) == ids(first["time_entries"])
    assert (back["page"], back["next_page"], back["previous_page"]) == (1, 2, None)
    assert back["links"]["previous"] is None
    assert ids(api.url(back["links"]["next"]).json()["time_entries"]) == ids(
        second["time_entries"]
    )
    third = api.url(second["links"]["next"]).json()
    assert ids(api.url(third["links"]["previous"]).json()["time_entries"]) == ids(
        second["time_entries"]
    )


def test_list_serves_entries_in_harvests_shape(api: Api) -> None:
    records = api.get("/time_entries").json()["time_entries"]
    assert len(records) == 450
    assert list(records[0]) == TIME_ENTRY_KEYS
    for record in records:
        assert record == expected_time_entry(ROWS[record["id"]])


def test_get_one_serves_the_same_record_as_the_list(api: Api) -> None:
    listed = {r["id"]: r for r in api.get("/time_entries").json()["time_entries"]}
    for entry_id in [*TIME_ENTRY_IDS[::37], RUNNING_ENTRY]:
        resp = api.get(f"/time_entries/{entry_id}")
        assert resp.status_code == 200
        assert resp.json() == listed[entry_id]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/time_entries/999999", 404),  # no such entry
        ("/time_entries/abc", 404),  # not an id
        ("/estimates", 404),  # an endpoint the emulator does not serve
    ],
    ids=["unknown-id", "not-an-id", "unknown-endpoint"],
)
def test_unknown_records_and_paths_answer_404_with_a_message(
    api: Api, path: str, expected: int
) -> None:
    resp = api.get(path)
    assert resp.status_code == expected
    assert "message" in resp.json()


@pytest.mark.parametrize(
    "params",
    [
        {"per_page": 2001},  # over the maximum
        {"per_page": 0},  # under the minimum
        {"per_page": "many"},  # not a number
        {"updated_since": "last tuesday"},  # not ISO 8601
        {"from": "2026-13-45"},  # not a date
        {"is_billed": "maybe"},  # not a boolean
        {"project_id": "DPB"},  # not an id
        {"cursor": "not-a-cursor"},  # not one the server issued
    ],
    ids=["per_page-2001", "per_page-0", "per_page-text", "updated_since", "from", "is_billed",
         "project_id", "cursor"],
)
def test_bad_list_parameters_answer_422(api: Api, params: dict[str, Any]) -> None:
    resp = api.get("/time_entries", **params)
    assert resp.status_code == 422
    assert resp.json()["message"]


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"project_id": 402}, lambda r: r["project_id"] == 402),
        ({"user_id": 203}, lambda r: r["user_id"] == 203),
        ({"client_id": 101}, lambda r: r["client_id"] == 101),
        ({"task_id": 303}, lambda r: r["task_id"] == 303),
        ({"from": "2026-04-01", "to": "2026-04-10"},
         lambda r: "2026-04-01" <= r["spent_date"] <= "2026-04-10"),
        ({"project_id": 401, "user_id": 201, "from": "2026-05-01"},
         lambda r: (r["project_id"], r["user_id"]) == (401, 201)
         and r["spent_date"] >= "2026-05-01"),
        ({"is_billed": "true"}, lambda r: r["is_billed"] == 1),
        ({"is_running": "true"}, lambda r: r["is_running"] == 1),
        ({"external_reference_id": "3000004"},
         lambda r: r["external_reference"] is not None and '"3000004"' in r["external_reference"]),
        ({"updated_since": "2026-06-01T05:00:00Z"}, lambda r: r["updated_at"] >= "2026-06-01T05"),
        ({"updated_since": "2026-06-01T07:00:00+02:00"},
         lambda r: r["updated_at"] >= "2026-06-01T05"),
        ({"updated_since": "2026-06-01T07:00:00 02:00"},  # a "+" sent unencoded
         lambda r: r["updated_at"] >= "2026-06-01T05"),
        ({"updated_since": "2026-06-01T05:00:00.750Z"},  # fractions floor to the second
         lambda r: r["updated_at"] >= "2026-06-01T05"),
    ],
    ids=["project", "user", "client", "task", "from-to", "project-user-from", "is_billed",
         "is_running", "external_reference", "updated_since", "updated_since-offset",
         "updated_since-space", "updated_since-fraction"],
)
def test_filters_select_exactly_the_matching_entries(
    api: Api, params: dict[str, Any], keep: Any
) -> None:
    expected = [i for i in NEWEST_FIRST if keep(ROWS[i])]
    records = api.crawl("/time_entries", "time_entries", per_page=40, **params)
    assert ids(records) == expected
    assert expected
    assert api.get("/time_entries", **params).json()["total_entries"] == len(expected)


@pytest.mark.parametrize("use_index", [True, False], ids=["range-index", "id-order-scan"])
def test_updated_since_pages_alike_through_the_index_or_an_id_order_scan(
    api: Api, monkeypatch: pytest.MonkeyPatch, use_index: bool
) -> None:
    if not use_index:
        monkeypatch.setattr(harvest, "RANGE_INDEX_MAX_ROWS", -1)
    expected = [i for i in NEWEST_FIRST if ROWS[i]["updated_at"] >= "2026-06-01T01:30:00Z"]
    records = api.crawl("/time_entries", "time_entries", per_page=25,
                        updated_since="2026-06-01T01:30:00Z", to="2026-05-20")
    assert ids(records) == [i for i in expected if ROWS[i]["spent_date"] <= "2026-05-20"]


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        ("/clients", "clients", sorted(CLIENTS, reverse=True)),
        ("/users", "users", sorted(USERS, reverse=True)),
        ("/projects", "projects", sorted(PROJECTS, reverse=True)),
        ("/tasks", "tasks", sorted(TASKS, reverse=True)),
        ("/task_assignments", "task_assignments", sorted(TASK_ASSIGNMENTS, reverse=True)),
        ("/user_assignments", "user_assignments", sorted(USER_ASSIGNMENTS, reverse=True)),
        ("/expense_categories", "expense_categories", sorted(CATEGORIES, reverse=True)),
        ("/expenses", "expenses", sorted(EXPENSE_IDS, reverse=True)),
        ("/projects/401/task_assignments", "task_assignments", [502, 501]),
        ("/projects/402/user_assignments", "user_assignments", [604, 603]),
        ("/invoices", "invoices", []),
    ],
    ids=["clients", "users", "projects", "tasks", "task_assignments", "user_assignments",
         "expense_categories", "expenses", "project-task-assignments",
         "project-user-assignments", "invoices"],
)
def test_every_list_endpoint_pages_in_the_envelope(
    api: Api, path: str, key: str, expected: list[int]
) -> None:
    body = api.get(path, per_page=2).json()
    assert next(iter(body)) == key
    assert body["total_entries"] == len(expected)
    assert ids(api.crawl(path, key, per_page=2)) == expected
    for record_id in expected[:1]:
        one = api.get(f"/{key}/{record_id}")
        assert one.status_code == 200
        assert one.json() == body[key][0]


def test_nested_references_and_booleans_render_as_harvest_does(api: Api) -> None:
    project = api.get("/projects/401").json()
    assert project["client"] == {"id": 101, "name": "Acme Industries", "currency": "USD"}
    assert (project["is_billable"], project["is_fixed_fee"], project["bill_by"]) == (
        True, False, "People")
    assignment = api.get("/user_assignments/602").json()
    assert assignment["project"] == {"id": 401, "name": "Data Platform Build", "code": "DPB"}
    assert assignment["user"] == {"id": 202, "name": "Grace Hopper"}
    assert assignment["is_project_manager"] is True
    task_assignment = api.get("/projects/401/task_assignments/501").json()
    assert task_assignment["task"] == {"id": 301, "name": "Design"}
    assert api.get("/projects/402/task_assignments/501").status_code == 404
    user = api.get("/users/203").json()
    assert (user["roles"], user["access_roles"], user["is_contractor"]) == (
        ["Consultant", "Data"], ["member"], True)
    expense = api.get("/expenses/9002").json()
    assert expense["expense_category"] == {
        "id": 702, "name": "Mileage", "unit_price": 0.67, "unit_name": "mile"}
    assert api.get("/expenses/9003").json()["receipt"]["file_name"] == "9003.pdf"
    assert api.get("/expenses/9004").json()["invoice"] == {"id": 7100, "number": "INV-7100"}


def test_company_and_users_me(api: Api) -> None:
    company = api.get("/company").json()
    assert company["name"] == "Tiny Consulting"
    assert company["expense_feature"] is True
    assert "id" not in company
    assert api.get("/users/me").json()["id"] == ME


def test_expense_filters_by_project_user_and_spent_date(api: Api) -> None:
    rows = expense_rows()
    got = ids(api.get("/expenses", project_id=402).json()["expenses"])
    assert got == [r["id"] for r in reversed(rows) if r["project_id"] == 402]
    got = ids(api.get("/expenses", user_id=201, **{"from": "2026-04-01"}).json()["expenses"])
    assert got == [r["id"] for r in reversed(rows)
                   if r["user_id"] == 201 and r["spent_date"] >= "2026-04-01"]


# ---- auth (done by the shared middleware; asserted here for Harvest's shape) --------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"User-Agent": ""}, 400),  # Harvest requires a User-Agent
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Harvest-Account-Id": "1"}, 403),
    ],
    ids=["no-user-agent", "wrong-token", "wrong-account"],
)
def test_requests_without_valid_credentials_are_refused(
    api: Api, headers: dict[str, str], status: int
) -> None:
    merged = {**api.session.headers, **headers}
    resp = requests.get(api.base + "/time_entries", headers=merged, timeout=10)
    assert resp.status_code == status


# ---- writes -------------------------------------------------------------------------------------


def test_create_time_entry_derives_client_rates_and_assignments(writable: Api) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    resp = writable.post("/time_entries", {
        "project_id": 401, "task_id": 302, "user_id": 201, "spent_date": "2026-11-20",
        "hours": 3.5, "notes": "Pairing on the loader",
        "external_reference": {"id": "TB-1", "group_id": "timebill", "account_id": "1_SB1",
                               "permalink": "https://erp.example.com/timebill/TB-1"},
    })
    assert resp.status_code == 201, resp.text
    entry = resp.json()
    assert list(entry) == TIME_ENTRY_KEYS
    assert entry["id"] == max(TIME_ENTRY_IDS) + 1
    assert entry["client"] == {"id": 101, "name": "Acme Industries", "currency": "USD"}
    assert entry["user_assignment"]["id"] == 601
    assert entry["task_assignment"]["id"] == 502
    # Project 401 bills by person: user 201's assignment rate, and user 201's cost rate.
    assert (entry["billable"], entry["billable_rate"], entry["cost_rate"]) == (True, 175.0, 80.0)
    assert (entry["hours"], entry["is_running"], entry["is_closed"]) == (3.5, False, False)
    assert entry["external_reference"]["service"] == "erp.example.com"
    assert entry["created_at"] == entry["updated_at"] >= since(before)
    assert writable.get(f"/time_entries/{entry['id']}").json() == entry
    assert writable.get("/time_entries", per_page=1).json()["time_entries"] == [entry]


@pytest.mark.parametrize(
    ("body", "rate"),
    [
        ({"project_id": 402, "task_id": 301}, 120.0),  # bills by project: the project's rate
        ({"project_id": 401, "task_id": 301}, 200.0),  # by person, default rates: user's rate
        ({"project_id": 403, "task_id": 303}, None),  # not billable: no rate
    ],
    ids=["by-project", "by-person-default", "not-billable"],
)
def test_create_time_entry_without_user_id_books_for_me(
    writable: Api, body: dict[str, Any], rate: float | None
) -> None:
    entry = writable.post("/time_entries", {**body, "spent_date": "2026-11-20", "hours": 1}).json()
    assert entry["user"]["id"] == ME
    assert entry["billable_rate"] == rate


def test_create_time_entry_without_hours_starts_a_timer_that_stops(writable: Api) -> None:
    entry = writable.post("/time_entries", {"project_id": 401, "task_id": 301,
                                            "spent_date": "2026-11-20"}).json()
    assert (entry["is_running"], entry["hours"]) == (True, 0.0)
    assert entry["timer_started_at"] is not None
    stopped = writable.patch(f"/time_entries/{entry['id']}/stop").json()
    assert (stopped["is_running"], stopped["timer_started_at"]) == (False, None)
    assert writable.patch(f"/time_entries/{entry['id']}/stop").status_code == 422
    assert writable.patch(f"/time_entries/{entry['id']}/restart").json()["is_running"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"project_id": 403, "task_id": 301, "user_id": 201},  # task not on the project
        {"project_id": 402, "task_id": 301, "user_id": 201},  # user not on the project
        {"project_id": 999, "task_id": 301},  # no such project
        {"project_id": 401, "task_id": 999},  # no such task
        {"project_id": 401, "task_id": 301, "user_id": 999},  # no such user
        {"project_id": 401, "task_id": 301, "spent_date": None},  # spent_date missing
        {"project_id": 401, "task_id": 301, "hours": "lots"},  # hours not a number
    ],
    ids=["unassigned-task", "unassigned-user", "unknown-project", "unknown-task",
         "unknown-user", "no-spent-date", "bad-hours"],
)
def test_invalid_time_entries_are_refused_with_422(writable: Api, body: dict[str, Any]) -> None:
    resp = writable.post("/time_entries", {"spent_date": "2026-11-20", **body})
    assert resp.status_code == 422
    assert resp.json()["message"]
    assert writable.get("/time_entries", per_page=1).json()["total_entries"] == 450


def test_form_encoded_bodies_are_accepted(writable: Api) -> None:
    resp = writable.session.post(writable.base + "/time_entries", data={
        "project_id": "402", "task_id": "302", "spent_date": "2026-11-21", "hours": "2",
        "external_reference[id]": "TB-9", "external_reference[permalink]": "https://e.io/9",
    }, timeout=10)
    assert resp.status_code == 201, resp.text
    assert resp.json()["external_reference"]["id"] == "TB-9"


def test_update_time_entry_changes_fields_and_ignores_read_only_flags(writable: Api) -> None:
    entry_id = 1300
    resp = writable.patch(f"/time_entries/{entry_id}", {
        "hours": 6.75, "notes": "Reworked", "spent_date": "2026-05-30",
        "external_reference": {"id": "TB-77", "permalink": "https://erp.example.com/TB-77"},
        "is_closed": True, "is_billed": True,
    })
    assert resp.status_code == 200, resp.text
    entry = resp.json()
    assert (entry["hours"], entry["rounded_hours"], entry["notes"], entry["spent_date"]) == (
        6.75, 6.75, "Reworked", "2026-05-30")
    assert entry["external_reference"]["id"] == "TB-77"
    assert (entry["is_closed"], entry["is_billed"]) == (
        bool(ROWS[entry_id]["is_closed"]), bool(ROWS[entry_id]["is_billed"]))
    assert entry["updated_at"] > ROWS[entry_id]["updated_at"]
    assert entry["created_at"] == ROWS[entry_id]["created_at"]


def test_moving_an_entry_to_another_project_rederives_its_links(writable: Api) -> None:
    entry_id = next(i for i in TIME_ENTRY_IDS if ROWS[i]["user_id"] == 202
                    and ROWS[i]["project_id"] == 401)
    entry = writable.patch(f"/time_entries/{entry_id}", {"project_id": 402, "task_id": 301})
    assert entry.status_code == 200, entry.text
    body = entry.json()
    assert (body["project"]["id"], body["client"]["id"]) == (402, 102)
    assert (body["user_assignment"]["id"], body["task_assignment"]["id"]) == (603, 503)
    assert body["billable_rate"] == 120.0
    refused = writable.patch(f"/time_entries/{entry_id}", {"task_id": 303, "project_id": 401})
    assert refused.status_code == 422


def test_updated_since_returns_exactly_the_rows_changed_after_a_patch(writable: Api) -> None:
    mark = since(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    changed = [1002, 1200, 1449]
    for entry_id in changed:
        assert writable.patch(f"/time_entries/{entry_id}", {"notes": "touched"}).status_code == 200
    records = writable.crawl("/time_entries", "time_entries", updated_since=mark, per_page=2)
    assert ids(records) == sorted(changed, reverse=True)
    assert {r["notes"] for r in records} == {"touched"}


def test_deleted_entry_disappears_from_lists_and_from_updated_since(writable: Api) -> None:
    assert writable.get("/time_entries", per_page=1).json()["total_entries"] == 450
    mark = since(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    writable.patch("/time_entries/1100", {"notes": "about to go"})
    assert ids(writable.get("/time_entries", updated_since=mark).json()["time_entries"]) == [1100]
    resp = writable.delete("/time_entries/1100")
    assert (resp.status_code, resp.content) == (200, b"")
    assert writable.get("/time_entries/1100").status_code == 404
    assert writable.delete("/time_entries/1100").status_code == 404
    assert writable.get("/time_entries", updated_since=mark).json()["time_entries"] == []
    listed = ids(writable.crawl("/time_entries", "time_entries", per_page=200))
    assert listed == [i for i in NEWEST_FIRST if i != 1100]
    assert writable.get("/time_entries", per_page=1).json()["total_entries"] == 449


def test_external_reference_can_be_removed(writable: Api) -> None:
    resp = writable.delete("/time_entries/1001/external_reference")
    assert (resp.status_code, resp.content) == (200, b"")
    assert writable.get("/time_entries/1001").json()["external_reference"] is None


def test_expense_create_update_delete_round_trip(writable: Api) -> None:
    created = writable.post("/expenses", {
        "project_id": 401, "expense_category_id": 702, "spent_date": "2026-11-18",
        "units": 100, "notes": "Drive to client", "user_id": 201,
    })
    assert created.status_code == 201, created.text
    expense = created.json()
    assert expense["id"] == max(EXPENSE_IDS) + 1
    assert (expense["units"], expense["total_cost"], expense["billable"]) == (100.0, 67.0, True)
    assert (expense["client"]["id"], expense["user_assignment"]["id"]) == (101, 601)
    assert writable.get(f"/expenses/{expense['id']}").json() == expense
    updated = writable.patch(f"/expenses/{expense['id']}", {
        "expense_category_id": 701, "total_cost": 12.5, "billable": False, "is_billed": True,
    }).json()
    assert (updated["expense_category"]["name"], updated["total_cost"], updated["units"]) == (
        "Meals", 12.5, None)
    assert (updated["billable"], updated["is_billed"]) == (False, False)
    assert updated["updated_at"] >= expense["updated_at"]
    assert writable.delete(f"/expenses/{expense['id']}").status_code == 200
    assert writable.get(f"/expenses/{expense['id']}").status_code == 404
    assert ids(writable.get("/expenses").json()["expenses"]) == sorted(EXPENSE_IDS, reverse=True)


@pytest.mark.parametrize(
    "body",
    [
        {"project_id": 402, "expense_category_id": 701, "user_id": 201,
         "total_cost": 5},  # user not on the project
        {"project_id": 401, "expense_category_id": 799, "total_cost": 5},  # no such category
        {"project_id": 401, "expense_category_id": 701},  # no total_cost for a plain category
    ],
    ids=["unassigned-user", "unknown-category", "no-total-cost"],
)
def test_invalid_expenses_are_refused_with_422(writable: Api, body: dict[str, Any]) -> None:
    resp = writable.post("/expenses", {"spent_date": "2026-11-18", **body})
    assert resp.status_code == 422
    assert resp.json()["message"]


# ---- faults and stats ---------------------------------------------------------------------------


def test_malformed_rate_breaks_the_hours_of_the_same_entries_in_lists_and_reads(
    writable: Api,
) -> None:
    writable.faults(malformed_rate=0.2)
    faults = writable.srv.state.faults
    broken = {i for i in TIME_ENTRY_IDS if faults.is_malformed("harvest", "time_entries", i)}
    records = writable.crawl("/time_entries", "time_entries", per_page=300)
    assert {r["id"] for r in records if r["hours"] == "7,5h"} == broken
    assert 40 < len(broken) < 140
    assert writable.get(f"/time_entries/{min(broken)}").json()["hours"] == "7,5h"
    writable.faults(malformed_rate=0.0)
    assert all(isinstance(r["hours"], float)
               for r in writable.get("/time_entries").json()["time_entries"])


def test_drift_adds_a_new_field_after_the_configured_pages(writable: Api) -> None:
    writable.faults(drift=True, drift_after=1)
    first = writable.get("/time_entries", per_page=200).json()
    second = writable.url(first["links"]["next"]).json()
    assert not any("approval_status" in r for r in first["time_entries"])
    assert {r.get("approval_status") for r in second["time_entries"]} == {"approved"}


def test_stats_count_calls_per_endpoint_and_records_served(writable: Api) -> None:
    requests.delete(writable.srv.root + "/_sandbox/stats", timeout=10)
    writable.crawl("/time_entries", "time_entries", per_page=200)
    writable.get("/time_entries/1001")
    writable.get("/projects/401/task_assignments")
    writable.patch("/time_entries/1001", {"notes": "x"})
    stats = writable.stats()
    assert stats["endpoints"] == {
        "GET /v2/time_entries": 3,
        "GET /v2/time_entries/{entry_id}": 1,
        "GET /v2/projects/{project_id}/task_assignments": 1,
        "PATCH /v2/time_entries/{entry_id}": 1,
    }
    assert stats["records_served"] == 450 + 2


def test_a_write_between_pages_is_seen_by_the_next_page(writable: Api) -> None:
    first = writable.get("/time_entries", per_page=100).json()
    writable.patch("/time_entries/1300", {"notes": "changed while paging"})
    second = writable.url(first["links"]["next"]).json()
    assert {r["id"]: r["notes"] for r in second["time_entries"]}[1300] == "changed while paging"
