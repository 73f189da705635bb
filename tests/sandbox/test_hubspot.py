"""The HubSpot CRM emulator over real HTTP: paging, search, batch writes, faults, stats, client.

One sandbox serves the whole module. Tests that write keep to their own records so that the
read-only tests can rely on the seeded values:

- companies 1001-1100, contacts, deals 2001-2040, erp_invoices 4002-4030: read only;
- companies 1101-1200: the 100-input batch; 1201-1250: 207, whole-batch 400 and the client;
- deals 2041-2050: incremental search; 2051-2055: the client; 2056-2060: single-record writes;
- erp_invoices 4001 and new ones: upsert and create.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.server.app import SandboxThread
from tests.sandbox.hubspot_fixture import (
    ARCHIVED_COMPANY_IDS,
    BASE_TIME,
    COMPANY_IDS,
    CONTACT_IDS,
    INVOICE_IDS,
    OWNER_IDS,
    STAGES,
    TERMS,
    build_store,
    modified,
)

pytestmark = pytest.mark.integration

LIVE_COMPANIES = [c for c in COMPANY_IDS if c not in ARCHIVED_COMPANY_IDS]


class Api:
    """A requests session on the sandbox's HubSpot base URL with the portal's token."""

    def __init__(self, srv: SandboxThread) -> None:
        self.srv = srv
        self.base = srv.endpoints["hubspot"]["base_url"]
        self.token = srv.endpoints["hubspot"]["access_token"]
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.base + path, params=params, timeout=30)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.base + path, json=body, timeout=30)

    def patch(self, path: str, body: Any) -> requests.Response:
        return self.session.patch(self.base + path, json=body, timeout=30)

    def put(self, path: str) -> requests.Response:
        return self.session.put(self.base + path, timeout=30)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(self.base + path, timeout=30)

    def search_all(self, object_type: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Every result of a search, following ``paging.next.after``."""
        out: list[dict[str, Any]] = []
        body = {"limit": 200, **body}
        while True:
            reply = self.post(f"/crm/v3/objects/{object_type}/search", body)
            assert reply.status_code == 200, reply.text
            page = reply.json()
            out += page["results"]
            after = page.get("paging", {}).get("next", {}).get("after")
            if after is None:
                assert len(out) == page["total"]
                return out
            body = {**body, "after": after}

    def store(self) -> sqlite3.Connection:
        """The store itself, to check what the API says against what is there."""
        return sqlite3.connect(Path(self.srv.state.store_dir) / "hubspot.sqlite")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxThread]:
    store = tmp_path_factory.mktemp("hubspot_store")
    build_store(store)
    with SandboxThread(store) as server:
        yield server


@pytest.fixture(scope="module")
def api(srv: SandboxThread) -> Api:
    return Api(srv)


@pytest.fixture
def faults(api: Api) -> Iterator[Any]:
    """Switch faults on through PUT /_sandbox/faults; switched off again afterwards."""

    def switch(**settings: Any) -> None:
        reply = requests.put(f"{api.srv.root}/_sandbox/faults", json=settings, timeout=10)
        assert reply.status_code == 200, reply.text

    yield switch
    switch(malformed_rate=0.0, drift=False)


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def ids(records: list[dict[str, Any]]) -> list[int]:
    return [int(r["id"]) for r in records]


# ---- list -------------------------------------------------------------------------------------


def test_list_pagination_visits_every_live_company_exactly_once(api: Api) -> None:
    with api.store() as con:
        expected = [
            r[0]
            for r in con.execute(
                "select id from objects where object_type = 'companies' and archived = 0 "
                "order by id"
            )
        ]
    seen: list[int] = []
    url: str | None = f"{api.base}/crm/v3/objects/companies?limit=100"
    pages = 0
    while url:
        reply = api.session.get(url, timeout=30)
        assert reply.status_code == 200
        page = reply.json()
        seen += ids(page["results"])
        pages += 1
        url = page.get("paging", {}).get("next", {}).get("link")
        if url:
            assert url.startswith(api.base + "/crm/v3/objects/companies?")
            assert page["paging"]["next"]["after"]
    assert seen == expected
    assert pages == 3


def test_list_default_page_is_10_and_limit_over_100_answers_400(api: Api) -> None:
    assert len(api.get("/crm/v3/objects/contacts").json()["results"]) == 10
    reply = api.get("/crm/v3/objects/companies", limit=101)
    assert reply.status_code == 400
    assert reply.json()["category"] == "VALIDATION_ERROR"
    assert reply.json()["correlationId"]


@pytest.mark.parametrize(
    ("object_type", "expected"),
    [
        (
            "contacts",
            {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"},
        ),
        ("companies", {"createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"}),
        (
            "deals",
            {
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_lastmodifieddate",
                "hs_object_id",
                "pipeline",
            },
        ),
    ],
    ids=["contacts", "companies", "deals"],
)
def test_list_without_properties_returns_the_default_set(
    api: Api, object_type: str, expected: set[str]
) -> None:
    record = api.get(f"/crm/v3/objects/{object_type}", limit=1).json()["results"][0]
    assert set(record["properties"]) == expected
    assert {"id", "properties", "createdAt", "updatedAt", "archived"} <= set(record)
    assert all(isinstance(v, str) for v in record["properties"].values())


def test_properties_param_accepts_commas_and_repeats_ignores_unknown_and_nulls_empty(
    api: Api,
) -> None:
    reply = api.session.get(
        f"{api.base}/crm/v3/objects/companies",
        params=[
            ("limit", "1"),
            ("properties", "name,erp_credit_limit"),
            ("properties", "industry"),
            ("properties", "no_such_property"),
        ],
        timeout=30,
    )
    props = reply.json()["results"][0]["properties"]
    assert props == {
        "name": "Company 001",
        "erp_credit_limit": "100",
        "industry": None,
        "hs_object_id": "1001",
        "createdate": "2025-06-01T08:00:00.000Z",
        "hs_lastmodifieddate": modified(1001),
    }


def test_archived_listing_returns_only_archived_records_with_archived_at(api: Api) -> None:
    results = api.get("/crm/v3/objects/companies", archived="true", limit=100).json()["results"]
    assert ids(results) == ARCHIVED_COMPANY_IDS
    assert all(r["archived"] is True and r["archivedAt"] for r in results)


def test_list_inlines_associations_stored_in_either_direction(api: Api) -> None:
    page = api.get("/crm/v3/objects/companies", limit=2, associations="contacts,deals,nope")
    second = page.json()["results"][1]  # company 1002: contact 3001, deals stored deal -> company
    assert second["associations"]["contacts"]["results"] == [
        {"id": "3001", "type": "company_to_contact"}
    ]
    assert [a["id"] for a in second["associations"]["deals"]["results"]] == ["2001", "2021", "2041"]


def test_properties_with_history_returns_the_current_value(api: Api) -> None:
    record = api.get("/crm/v3/objects/companies/1003", propertiesWithHistory="name").json()
    [entry] = record["propertiesWithHistory"]["name"]
    assert entry["value"] == "Company 003"
    assert entry["timestamp"] == modified(1003)


@pytest.mark.parametrize(
    "path_type", ["erp_invoices", "2-9001", "p_erp_invoices"], ids=["name", "type-id", "fqn"]
)
def test_custom_object_answers_under_name_type_id_and_fully_qualified_name(
    api: Api, path_type: str
) -> None:
    results = api.get(f"/crm/v3/objects/{path_type}", limit=3).json()["results"]
    assert ids(results) == INVOICE_IDS[:3]
    assert results[0]["properties"]["netsuite_invoice_id"] == "INV-0001"


def test_standard_type_id_resolves_and_unknown_type_answers_400(api: Api) -> None:
    assert ids(api.get("/crm/v3/objects/0-2", limit=2).json()["results"]) == [1001, 1002]
    reply = api.get("/crm/v3/objects/widgets")
    assert reply.status_code == 400
    assert reply.json()["category"] == "VALIDATION_ERROR"


def test_wrong_token_answers_401_invalid_authentication(api: Api) -> None:
    reply = requests.get(
        f"{api.base}/crm/v3/objects/companies",
        headers={"Authorization": "Bearer pat-na1-wrong"},
        timeout=10,
    )
    assert reply.status_code == 401
    assert reply.json()["category"] == "INVALID_AUTHENTICATION"


# ---- search -----------------------------------------------------------------------------------


def _company(n: int) -> int:
    return COMPANY_IDS[n - 1]


def _live(predicate: Any) -> list[int]:
    return [c for n, c in enumerate(COMPANY_IDS, start=1) if c in LIVE_COMPANIES and predicate(n)]


def _terms(n: int) -> str | None:
    return TERMS[n % 3] if n % 2 == 0 else None


SEARCH_CASES = [
    # EQ on a string property
    (
        "companies",
        [[{"propertyName": "name", "operator": "EQ", "value": "Company 007"}]],
        [_company(7)],
    ),
    # NEQ also matches records without the property
    (
        "companies",
        [[{"propertyName": "erp_payment_terms", "operator": "NEQ", "value": "net_30"}]],
        _live(lambda n: _terms(n) != "net_30"),
    ),
    # number properties compare as numbers ("24100" > "24000", though "900" > "24000" as text)
    (
        "companies",
        [[{"propertyName": "erp_credit_limit", "operator": "GT", "value": "24000"}]],
        _live(lambda n: n > 240),
    ),
    # BETWEEN is inclusive on both ends
    (
        "companies",
        [
            [
                {
                    "propertyName": "erp_credit_limit",
                    "operator": "BETWEEN",
                    "value": 1000,
                    "highValue": "1500",
                }
            ]
        ],
        _live(lambda n: 10 <= n <= 15),
    ),
    (
        "companies",
        [[{"propertyName": "erp_payment_terms", "operator": "IN", "values": ["net_45", "net_60"]}]],
        _live(lambda n: _terms(n) in ("net_45", "net_60")),
    ),
    (
        "companies",
        [
            [
                {
                    "propertyName": "erp_payment_terms",
                    "operator": "NOT_IN",
                    "values": ["net_45", "net_60"],
                }
            ]
        ],
        _live(lambda n: _terms(n) not in ("net_45", "net_60")),
    ),
    (
        "companies",
        [[{"propertyName": "industry", "operator": "HAS_PROPERTY"}]],
        _live(lambda n: n % 5 == 0),
    ),
    (
        "companies",
        [[{"propertyName": "netsuite_customer_id", "operator": "NOT_HAS_PROPERTY"}]],
        _live(lambda n: n % 2 == 1),
    ),
    # tokens split on punctuation; * is a wildcard
    (
        "companies",
        [[{"propertyName": "domain", "operator": "CONTAINS_TOKEN", "value": "company04*"}]],
        _live(lambda n: 40 <= n <= 49),
    ),
    (
        "companies",
        [[{"propertyName": "industry", "operator": "NOT_CONTAINS_TOKEN", "value": "software"}]],
        _live(lambda n: not (n % 5 == 0 and n % 10)),
    ),
    # groups are ORed, filters inside a group ANDed
    (
        "companies",
        [
            [{"propertyName": "name", "operator": "EQ", "value": "Company 001"}],
            [
                {"propertyName": "industry", "operator": "HAS_PROPERTY"},
                {"propertyName": "erp_credit_limit", "operator": "LT", "value": "2000"},
            ],
        ],
        [_company(1), _company(5), _company(15)],
    ),
    (
        "companies",
        [[{"propertyName": "hs_object_id", "operator": "IN", "values": ["1001", 1005, "1010"]}]],
        [1001, 1005],
    ),
    # a date property, with an epoch-ms low end and an ISO high end
    (
        "erp_invoices",
        [
            [
                {
                    "propertyName": "invoice_date",
                    "operator": "BETWEEN",
                    "value": str(ms(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))),
                    "highValue": "2026-04-01T00:00:00Z",
                }
            ]
        ],
        [i for n, i in enumerate(INVOICE_IDS, start=1) if n % 10 in (2, 3)],
    ),
]


@pytest.mark.parametrize(
    ("object_type", "groups", "expected"),
    SEARCH_CASES,
    ids=[
        "eq",
        "neq-includes-unset",
        "gt-numeric",
        "between",
        "in",
        "not-in",
        "has-property",
        "not-has-property",
        "contains-token-wildcard",
        "not-contains-token",
        "or-of-ands",
        "object-id-in",
        "date-between-ms-and-iso",
    ],
)
def test_search_filters_select_the_documented_records(
    api: Api, object_type: str, groups: list[list[dict[str, Any]]], expected: list[int]
) -> None:
    body = {"filterGroups": [{"filters": g} for g in groups]}
    assert sorted(ids(api.search_all(object_type, body))) == sorted(expected)


@pytest.mark.parametrize(
    "value",
    [
        str(ms(BASE_TIME + dt.timedelta(hours=21))),
        ms(BASE_TIME + dt.timedelta(hours=21)),
        "2026-01-01T21:00:00Z",
        "2026-01-01T22:00:00+01:00",
    ],
    ids=["epoch-ms-string", "epoch-ms-number", "iso-utc", "iso-offset"],
)
def test_search_gte_on_modified_date_accepts_epoch_ms_and_iso_and_sorts_ascending(
    api: Api, value: Any
) -> None:
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": value}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "limit": 7,
    }
    results = api.search_all("contacts", body)
    assert ids(results) == CONTACT_IDS[20:]
    stamps = [r["properties"]["lastmodifieddate"] for r in results]
    assert stamps == sorted(stamps)


def test_search_sorts_descending_and_pages_with_an_offset_cursor(api: Api) -> None:
    body = {
        "sorts": [{"propertyName": "lastname", "direction": "DESCENDING"}],
        "limit": 15,
        "properties": ["lastname"],
    }
    first = api.post("/crm/v3/objects/contacts/search", body).json()
    assert first["total"] == len(CONTACT_IDS)
    assert first["paging"]["next"]["after"] == "15"
    assert ids(api.search_all("contacts", body)) == CONTACT_IDS[::-1]
    assert set(first["results"][0]["properties"]) == {
        "lastname",
        "hs_object_id",
        "createdate",
        "lastmodifieddate",
    }


def test_search_never_returns_archived_records(api: Api) -> None:
    found = api.search_all(
        "companies",
        {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_object_id",
                            "operator": "IN",
                            "values": [str(c) for c in ARCHIVED_COMPANY_IDS],
                        }
                    ]
                }
            ]
        },
    )
    assert found == []


@pytest.mark.parametrize(
    ("after", "limit", "status"),
    [(9980, 20, 200), (9990, 20, 400), (10000, 1, 400)],
    ids=["window-end-ok", "crosses-10000", "starts-at-10000"],
)
def test_search_paging_past_10000_results_answers_400(
    api: Api, after: int, limit: int, status: int
) -> None:
    reply = api.post("/crm/v3/objects/companies/search", {"after": str(after), "limit": limit})
    assert reply.status_code == status
    if status == 400:
        assert reply.json()["category"] == "VALIDATION_ERROR"
    else:
        assert reply.json()["results"] == []


def _groups(groups: int, per_group: int) -> dict[str, Any]:
    flt = {"propertyName": "name", "operator": "HAS_PROPERTY"}
    return {"filterGroups": [{"filters": [flt] * per_group} for _ in range(groups)]}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (_groups(5, 5), 200),
        (_groups(6, 1), 400),
        (_groups(1, 11), 400),
        (_groups(5, 6), 400),
        ({"limit": 201}, 400),
        ({"sorts": [{"propertyName": "name"}, {"propertyName": "domain"}]}, 400),
    ],
    ids=["25-filters-ok", "6-groups", "11-in-a-group", "30-in-all", "limit-201", "two-sorts"],
)
def test_search_request_limits_answer_400(api: Api, body: dict[str, Any], status: int) -> None:
    reply = api.post("/crm/v3/objects/companies/search", body)
    assert reply.status_code == status, reply.text
    if status == 400:
        assert reply.json()["category"] == "VALIDATION_ERROR"


# ---- batch ------------------------------------------------------------------------------------


def test_batch_update_takes_100_inputs_and_refuses_101(api: Api) -> None:
    targets = COMPANY_IDS[100:200]
    inputs = [
        {"id": str(c), "properties": {"pslake_last_sync": "2026-11-01T10:00:00Z"}} for c in targets
    ]
    reply = api.post("/crm/v3/objects/companies/batch/update", {"inputs": inputs})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "COMPLETE" and body["startedAt"] and body["completedAt"]
    assert sorted(ids(body["results"])) == targets
    assert body["results"][0]["properties"]["pslake_last_sync"] == "2026-11-01T10:00:00.000Z"

    too_many = [*inputs, {"id": "1201", "properties": {"pslake_last_sync": "1767261600000"}}]
    reply = api.post("/crm/v3/objects/companies/batch/update", {"inputs": too_many})
    assert reply.status_code == 400
    assert reply.json()["category"] == "VALIDATION_ERROR"
    after = api.get("/crm/v3/objects/companies/1201", properties="pslake_last_sync").json()
    assert after["properties"]["pslake_last_sync"] is None


def test_batch_update_with_a_missing_id_answers_207_and_applies_the_others(api: Api) -> None:
    inputs = [
        {"id": "1201", "properties": {"erp_is_active": True}},
        {"id": "999999", "properties": {"erp_is_active": "false"}},
        {"id": "1202", "properties": {"erp_is_active": "FALSE"}},
    ]
    reply = api.post("/crm/v3/objects/companies/batch/update", {"inputs": inputs})
    assert reply.status_code == 207
    body = reply.json()
    assert body["numErrors"] == 1
    [error] = body["errors"]
    assert error["category"] == "OBJECT_NOT_FOUND"
    assert error["context"]["ids"] == ["999999"]
    assert sorted(ids(body["results"])) == [1201, 1202]
    read = api.post(
        "/crm/v3/objects/companies/batch/read",
        {
            "inputs": [{"id": "1201"}, {"id": "1202"}, {"id": "424242"}],
            "properties": ["erp_is_active"],
        },
    )
    assert read.status_code == 207
    assert {r["id"]: r["properties"]["erp_is_active"] for r in read.json()["results"]} == {
        "1201": "true",
        "1202": "false",
    }
    assert read.json()["errors"][0]["context"]["ids"] == ["424242"]


@pytest.mark.parametrize(
    ("prop", "value", "code"),
    [
        ("erp_credit_limit", "abc", "INVALID_DOUBLE"),  # number property
        ("erp_payment_terms", "net_90", "INVALID_OPTION"),  # not among the options
        ("no_such_property", "x", "PROPERTY_DOESNT_EXIST"),  # unknown property name
        (
            "erp_last_invoice_date",
            ms(dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)),
            "INVALID_DATE",
        ),  # date property not at midnight UTC
    ],
    ids=["number-abc", "bad-option", "unknown-property", "date-not-midnight"],
)
def test_one_bad_value_rejects_the_whole_batch_naming_input_and_property(
    api: Api, prop: str, value: Any, code: str
) -> None:
    inputs = [
        {"id": "1210", "properties": {"erp_credit_limit": "777"}},
        {"id": "1211", "properties": {prop: value}},
        {"id": "1212", "properties": {"erp_credit_limit": "778"}},
    ]
    reply = api.post("/crm/v3/objects/companies/batch/update", {"inputs": inputs})
    assert reply.status_code == 400
    body = reply.json()
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid")
    [error] = body["errors"]
    assert error["code"] == code and error["in"] == prop
    assert error["context"]["inputIndex"] == ["1"] and error["context"]["id"] == ["1211"]
    read = api.post(
        "/crm/v3/objects/companies/batch/read",
        {"inputs": [{"id": "1210"}, {"id": "1212"}], "properties": ["erp_credit_limit"]},
    )
    assert [r["properties"]["erp_credit_limit"] for r in read.json()["results"]] == [
        "21000",
        "21200",
    ]


def test_upsert_by_unique_property_creates_then_updates(api: Api) -> None:
    def upsert(amount_paid: str) -> requests.Response:
        return api.post(
            "/crm/v3/objects/erp_invoices/batch/upsert",
            {
                "inputs": [
                    {
                        "id": "INV-0001",
                        "idProperty": "netsuite_invoice_id",
                        "properties": {"amount_paid": amount_paid, "status": "partially_paid"},
                    },
                    {
                        "id": "INV-9001",
                        "idProperty": "netsuite_invoice_id",
                        "properties": {
                            "amount": "1500.50",
                            "amount_paid": amount_paid,
                            "invoice_number": "SI-9001",
                        },
                    },
                ]
            },
        )

    first = upsert("500.00")
    assert first.status_code == 200, first.text
    results = first.json()["results"]
    assert [r["new"] for r in results] == [False, True]
    assert results[0]["id"] == "4001"
    new_id = results[1]["id"]
    second = upsert("1500.5")
    assert [r["new"] for r in second.json()["results"]] == [False, False]
    assert second.json()["results"][1]["id"] == new_id
    record = api.get("/crm/v3/objects/p_erp_invoices/INV-9001", idProperty="netsuite_invoice_id")
    assert record.json()["properties"]["amount"] == "1500.5"
    assert record.json()["id"] == new_id

    not_unique = api.post(
        "/crm/v3/objects/erp_invoices/batch/upsert",
        {
            "inputs": [
                {
                    "id": "SI-0002",
                    "idProperty": "invoice_number",
                    "properties": {"amount_paid": "1"},
                }
            ]
        },
    )
    assert not_unique.status_code == 400


def test_create_with_a_taken_unique_value_answers_409(api: Api) -> None:
    reply = api.post(
        "/crm/v3/objects/erp_invoices/batch/create",
        {
            "inputs": [
                {"properties": {"netsuite_invoice_id": "INV-9100", "amount": "1"}},
                {"properties": {"netsuite_invoice_id": "INV-0002", "amount": "2"}},
            ]
        },
    )
    assert reply.status_code == 409
    assert reply.json()["category"] == "CONFLICT"
    missing = api.post(
        "/crm/v3/objects/erp_invoices/batch/read",
        {"inputs": [{"id": "INV-9100"}], "idProperty": "netsuite_invoice_id"},
    )
    assert missing.status_code == 207  # nothing of the refused batch was written
    created = api.post(
        "/crm/v3/objects/erp_invoices/batch/create",
        {"inputs": [{"properties": {"netsuite_invoice_id": "INV-9100", "amount": 12.0}}]},
    )
    assert created.status_code == 201
    assert created.json()["results"][0]["properties"]["amount"] == "12"


def test_writes_move_the_modified_date_and_incremental_search_finds_them(api: Api) -> None:
    since = int(time.time() * 1000) - 1
    targets = ["2041", "2045", "2043"]
    reply = api.post(
        "/crm/v3/objects/deals/batch/update",
        {"inputs": [{"id": d, "properties": {"erp_project_code": f"P-{d}"}} for d in targets]},
    )
    assert reply.status_code == 200
    for value in (str(since), dt.datetime.fromtimestamp(since / 1000, dt.UTC).isoformat()):
        found = api.search_all(
            "deals",
            {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "hs_lastmodifieddate",
                                "operator": "GTE",
                                "value": value,
                            }
                        ]
                    }
                ],
                "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                "properties": ["erp_project_code"],
            },
        )
        assert sorted(r["id"] for r in found) == sorted(targets)
        assert all(r["properties"]["hs_lastmodifieddate"] == r["updatedAt"] for r in found)
        assert all(r["updatedAt"] > modified(2045) for r in found)
    with api.store() as con:
        stored = con.execute(
            "select updated_at from objects where object_type = 'deals' and id = 2041"
        ).fetchone()[0]
    assert stored == next(r["updatedAt"] for r in found if r["id"] == "2041")


# ---- single records ---------------------------------------------------------------------------


def test_patch_get_and_delete_one_record(api: Api) -> None:
    patched = api.patch("/crm/v3/objects/deals/2056", {"properties": {"amount": "99.90"}})
    assert patched.status_code == 200
    assert patched.json()["properties"]["amount"] == "99.9"
    got = api.get("/crm/v3/objects/deals/2056", properties="amount,dealname")
    assert got.json()["properties"]["amount"] == "99.9"
    assert got.json()["updatedAt"] == patched.json()["updatedAt"]
    assert api.delete("/crm/v3/objects/deals/2056").status_code == 204
    missing = api.get("/crm/v3/objects/deals/2056")
    assert missing.status_code == 404
    assert missing.json()["category"] == "OBJECT_NOT_FOUND"
    archived = api.get("/crm/v3/objects/deals/2056", archived="true").json()
    assert archived["archived"] is True and archived["archivedAt"]
    bad = api.patch("/crm/v3/objects/deals/2057", {"properties": {"dealstage": "nowhere"}})
    assert bad.status_code == 400


def test_create_one_record_with_an_association(api: Api) -> None:
    reply = api.post(
        "/crm/v3/objects/contacts",
        {
            "properties": {"email": "new@client.example", "firstname": "New"},
            "associations": [
                {
                    "to": {"id": "1003"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
                }
            ],
        },
    )
    assert reply.status_code == 201, reply.text
    contact = reply.json()["id"]
    linked = api.get(f"/crm/v4/objects/contacts/{contact}/associations/companies").json()
    assert linked["results"] == [
        {
            "toObjectId": "1003",
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}],
        }
    ]
    back = api.get("/crm/v4/objects/companies/1003/associations/contacts").json()
    assert contact in [r["toObjectId"] for r in back["results"]]


# ---- owners, properties, pipelines, schemas, associations -------------------------------------


def test_owners_list_filter_and_get(api: Api) -> None:
    owners = api.get("/crm/v3/owners").json()["results"]
    assert [o["id"] for o in owners] == [str(o) for o in OWNER_IDS]
    by_email = api.get("/crm/v3/owners", email="ALAN.TURING@firm.example").json()["results"]
    assert [o["lastName"] for o in by_email] == ["Turing"]
    assert api.get(f"/crm/v3/owners/{OWNER_IDS[0]}").json()["firstName"] == "Ada"
    assert api.get("/crm/v3/owners/9999").status_code == 404
    paged = api.get("/crm/v3/owners", limit=1).json()
    assert paged["paging"]["next"]["after"] == str(OWNER_IDS[0])


def test_properties_list_get_create_and_patch(api: Api) -> None:
    listed = {p["name"]: p for p in api.get("/crm/v3/properties/companies").json()["results"]}
    assert listed["netsuite_customer_id"]["hasUniqueValue"] is True
    assert [o["value"] for o in listed["erp_payment_terms"]["options"]] == TERMS
    assert listed["name"]["hubspotDefined"] is True
    new = {
        "name": "erp_region",
        "label": "ERP region",
        "type": "string",
        "fieldType": "text",
        "groupName": "pslake",
    }
    created = api.post("/crm/v3/properties/companies", new)
    assert created.status_code == 201
    assert api.post("/crm/v3/properties/companies", new).status_code == 409
    assert api.post("/crm/v3/properties/companies", {"name": "x"}).status_code == 400
    patched = api.patch("/crm/v3/properties/companies/erp_region", {"label": "Region"})
    assert patched.json()["label"] == "Region"
    assert api.get("/crm/v3/properties/companies/erp_region").json()["label"] == "Region"
    written = api.patch("/crm/v3/objects/companies/1220", {"properties": {"erp_region": "EMEA"}})
    assert written.json()["properties"]["erp_region"] == "EMEA"


def test_pipelines_carry_stages_with_probability_and_is_closed(api: Api) -> None:
    [pipeline] = api.get("/crm/v3/pipelines/deals").json()["results"]
    assert pipeline["id"] == "default"
    assert [s["id"] for s in pipeline["stages"]] == [s[0] for s in STAGES]
    won = pipeline["stages"][5]
    assert won["metadata"] == {"probability": "1.0", "isClosed": "true"}
    stages = api.get("/crm/v3/pipelines/deals/default/stages").json()["results"]
    assert stages == pipeline["stages"]
    assert api.get("/crm/v3/pipelines/deals/nope/stages").status_code == 404


def test_custom_object_schema_lists_its_properties(api: Api) -> None:
    [schema] = api.get("/crm-object-schemas/v3/schemas").json()["results"]
    assert schema["objectTypeId"] == "2-9001"
    assert schema["fullyQualifiedName"] == "p_erp_invoices"
    props = {p["name"]: p for p in schema["properties"]}
    assert props["netsuite_invoice_id"]["hasUniqueValue"] is True


def test_v4_associations_batch_read_and_put_default(api: Api) -> None:
    reply = api.post(
        "/crm/v4/associations/companies/deals/batch/read",
        {"inputs": [{"id": "1002"}, {"id": "1099"}]},
    )
    assert reply.status_code == 207
    body = reply.json()
    assert body["results"][0]["from"] == {"id": "1002"}
    assert [t["toObjectId"] for t in body["results"][0]["to"]] == ["2001", "2021", "2041"]
    assert body["results"][0]["to"][0]["associationTypes"][0]["typeId"] == 342
    assert body["errors"][0]["context"] == {"fromObjectId": ["1099"]}
    put = api.put("/crm/v4/objects/deals/2030/associations/default/companies/1099")
    assert put.status_code == 200
    assert put.json()["results"][0]["associationSpec"]["associationTypeId"] == 341
    again = api.post(
        "/crm/v4/associations/companies/deals/batch/read", {"inputs": [{"id": "1099"}]}
    )
    assert again.status_code == 200
    assert api.put("/crm/v4/objects/deals/2030/associations/default/companies/5").status_code == (
        404
    )


# ---- faults and stats -------------------------------------------------------------------------


def test_malformed_rate_breaks_the_documented_field(api: Api, faults: Any) -> None:
    faults(malformed_rate=1.0)
    deals = api.get("/crm/v3/objects/deals", limit=5).json()["results"]
    assert {d["properties"]["amount"] for d in deals} == {"12k USD"}
    found = api.post("/crm/v3/objects/deals/search", {"limit": 2}).json()["results"]
    assert {d["properties"]["amount"] for d in found} == {"12k USD"}


def test_drift_adds_a_field_after_the_configured_pages(api: Api, faults: Any) -> None:
    faults(drift=True, drift_after=2)
    pages = [api.get("/crm/v3/objects/contacts", limit=2).json()["results"] for _ in range(4)]
    assert ["hs_pslake_drift_score" in p[0]["properties"] for p in pages] == [
        False,
        False,
        True,
        True,
    ]


def test_stats_count_requests_per_endpoint_and_records_served(api: Api) -> None:
    root = api.srv.root
    assert requests.delete(f"{root}/_sandbox/stats", timeout=10).status_code == 204
    api.get("/crm/v3/objects/companies", limit=5)
    api.get("/crm/v3/objects/companies", limit=5)
    api.get("/crm/v3/objects/deals/2001")
    api.post("/crm/v3/objects/contacts/search", {"limit": 3})
    stats = requests.get(f"{root}/_sandbox/stats", timeout=10).json()["vendors"]["hubspot"]
    assert stats["endpoints"] == {
        "GET /crm/v3/objects/companies": 2,
        "GET /crm/v3/objects/deals/{object_id}": 1,
        "POST /crm/v3/objects/contacts/search": 1,
    }
    assert stats["records_served"] == 13


# ---- the official client ----------------------------------------------------------------------


def test_official_client_lists_batch_updates_and_reads_back(api: Api) -> None:
    from hubspot import HubSpot
    from hubspot.crm.companies import BatchInputSimplePublicObjectBatchInput
    from hubspot.crm.companies import SimplePublicObjectBatchInput as CompanyInput
    from hubspot.crm.companies.exceptions import ApiException
    from hubspot.crm.deals import BatchInputSimplePublicObjectBatchInput as DealBatch
    from hubspot.crm.deals import PublicObjectSearchRequest
    from hubspot.crm.deals import SimplePublicObjectBatchInput as DealInput

    client = HubSpot(access_token=api.token, host=api.base)
    page = client.crm.companies.basic_api.get_page(limit=50, properties=["name", "domain"])
    assert len(page.results) == 50 and page.paging.next.after
    assert page.results[0].properties["name"] == "Company 001"
    assert isinstance(page.results[0].updated_at, dt.datetime)
    with api.store() as con:
        live = con.execute(
            "select count(*) from objects where object_type = 'companies' and archived = 0"
        ).fetchone()[0]
    assert len(client.crm.companies.get_all()) == live

    updated = client.crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                CompanyInput(id=str(c), properties={"erp_last_invoice_date": "2026-10-31"})
                for c in (1230, 1231)
            ]
        )
    )
    assert updated.status == "COMPLETE" and len(updated.results) == 2
    partial = client.crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                CompanyInput(id="1232", properties={"erp_is_active": "true"}),
                CompanyInput(id="777777", properties={"erp_is_active": "true"}),
            ]
        )
    )
    assert partial.num_errors == 1 and partial.errors[0].context["ids"] == ["777777"]
    deals = client.crm.deals.batch_api.update(
        DealBatch(
            inputs=[
                DealInput(
                    id=str(d), properties={"amount": "1234.50", "erp_project_code": f"PRJ-{d}"}
                )
                for d in range(2051, 2056)
            ]
        )
    )
    assert len(deals.results) == 5

    back = client.crm.companies.basic_api.get_by_id("1230", properties=["erp_last_invoice_date"])
    assert back.properties["erp_last_invoice_date"] == "2026-10-31"
    deal = client.crm.deals.basic_api.get_by_id("2053", properties=["amount", "erp_project_code"])
    assert deal.properties["amount"] == "1234.5"
    assert deal.properties["erp_project_code"] == "PRJ-2053"
    found = client.crm.deals.search_api.do_search(
        PublicObjectSearchRequest(
            filter_groups=[
                {
                    "filters": [
                        {
                            "propertyName": "erp_project_code",
                            "operator": "CONTAINS_TOKEN",
                            "value": "PRJ-*",
                        }
                    ]
                }
            ],
            properties=["erp_project_code"],
            limit=10,
        )
    )
    assert sorted(r.id for r in found.results) == [str(d) for d in range(2051, 2056)]
    with pytest.raises(ApiException) as refused:
        client.crm.companies.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[CompanyInput(id="1233", properties={"erp_credit_limit": "lots"})]
            )
        )
    assert refused.value.status == 400
