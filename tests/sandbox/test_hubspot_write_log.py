"""The HubSpot emulator's write log: every property written through the API, by which request.

Runs the sandbox over a private copy of the generated small firm and reads the log with
``sandbox.store.property_writes``, as the reverse-sync tests do.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.server.app import SandboxThread
from sandbox.store import property_writes

pytestmark = pytest.mark.integration

BATCH_UPDATE = "POST /crm/v3/objects/{object_type}/batch/update"


class Api:
    """A requests session on the sandbox's HubSpot base URL with the portal's token."""

    def __init__(self, srv: SandboxThread) -> None:
        self.base = srv.endpoints["hubspot"]["base_url"]
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {srv.endpoints['hubspot']['access_token']}"

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        correlation: str | None = None,
        **params: Any,
    ) -> requests.Response:
        headers = {"X-Correlation-Id": correlation} if correlation else {}
        return self.session.request(
            method, self.base + path, json=body, params=params, headers=headers, timeout=30
        )

    def ids(self, object_type: str, n: int) -> list[str]:
        reply = self.send("GET", f"/crm/v3/objects/{object_type}", limit=n)
        assert reply.status_code == 200, reply.text
        return [record["id"] for record in reply.json()["results"]]


@pytest.fixture
def api(served_firm: SandboxThread) -> Api:
    return Api(served_firm)


@pytest.fixture
def store(served_firm: SandboxThread) -> Path:
    return Path(served_firm.state.store_dir)


def counts(rows: list[dict[str, Any]]) -> Counter[tuple[str, int, str, str | None]]:
    return Counter((r["object_type"], r["record_id"], r["property"], r["value"]) for r in rows)


def test_generated_store_has_an_empty_write_log(small_firm_template: Path) -> None:
    # the generator writes straight into the store and logs nothing
    assert property_writes(small_firm_template) == []


@pytest.mark.parametrize(
    ("correlation", "expected_id"),
    [
        ("run-42:batch-1", "run-42:batch-1"),  # the writer names its request
        (None, None),  # no header: logged with a null correlation id
    ],
    ids=["with-header", "without-header"],
)
def test_batch_update_logs_one_row_per_record_and_property_with_the_correlation_id(
    api: Api, store: Path, correlation: str | None, expected_id: str | None
) -> None:
    first, second = api.ids("companies", 2)
    inputs = [
        {"id": first, "properties": {"legal_name": "Renamed Ltd", "payment_terms": "Net 60"}},
        # the same value it already has: still a write
        {"id": second, "properties": {"payment_terms": "Net 45", "hs_lastmodifieddate": "1"}},
    ]
    reply = api.send(
        "POST", "/crm/v3/objects/companies/batch/update", {"inputs": inputs}, correlation
    )
    assert reply.status_code == 200, reply.text
    rows = property_writes(store)
    assert counts(rows) == {
        ("companies", int(first), "legal_name", "Renamed Ltd"): 1,
        ("companies", int(first), "payment_terms", "Net 60"): 1,
        ("companies", int(second), "payment_terms", "Net 45"): 1,
    }  # the read-only hs_lastmodifieddate the emulator ignores is not logged
    assert {r["correlation_id"] for r in rows} == {expected_id}
    assert {(r["request_method"], r["endpoint"]) for r in rows} == {("POST", BATCH_UPDATE)}
    updated_at = {r["id"]: r["updatedAt"] for r in reply.json()["results"]}
    assert {r["written_at"] for r in rows if r["record_id"] == int(first)} == {updated_at[first]}


def test_unchanged_value_written_twice_is_logged_twice(api: Api, store: Path) -> None:
    [company] = api.ids("companies", 1)
    body = {"inputs": [{"id": company, "properties": {"legal_name": "Same Name Inc"}}]}
    for request in ("first", "second"):
        reply = api.send("POST", "/crm/v3/objects/companies/batch/update", body, request)
        assert reply.status_code == 200, reply.text
    rows = property_writes(store, "companies")
    assert [(r["correlation_id"], r["value"]) for r in rows] == [
        ("first", "Same Name Inc"),
        ("second", "Same Name Inc"),
    ]
    assert rows[1]["previous_value"] == "Same Name Inc"


def test_batch_update_with_a_missing_id_logs_only_the_records_found(api: Api, store: Path) -> None:
    first, second = api.ids("companies", 2)
    inputs = [
        {"id": first, "properties": {"payment_terms": "Net 30"}},
        {"id": "999999999", "properties": {"payment_terms": "Net 30"}},
        {"id": second, "properties": {"payment_terms": "Net 30"}},
    ]
    reply = api.send(
        "POST", "/crm/v3/objects/companies/batch/update", {"inputs": inputs}, "partial"
    )
    assert reply.status_code == 207, reply.text
    assert sorted(r["record_id"] for r in property_writes(store)) == sorted(
        [int(first), int(second)]
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"payment_terms": "Net 999"},  # not among the enumeration's options
        {"billing_currency": "XYZ"},  # not among the enumeration's options
        {"no_such_property": "x"},  # unknown property
    ],
    ids=["bad-terms-option", "bad-currency-option", "unknown-property"],
)
def test_batch_rejected_by_validation_logs_nothing(
    api: Api, store: Path, bad: dict[str, str]
) -> None:
    first, second = api.ids("companies", 2)
    inputs = [
        {"id": first, "properties": {"legal_name": "Valid Name"}},
        {"id": second, "properties": bad},
    ]
    reply = api.send(
        "POST", "/crm/v3/objects/companies/batch/update", {"inputs": inputs}, "rejected"
    )
    assert reply.status_code == 400, reply.text
    assert property_writes(store) == []


def test_each_write_endpoint_logs_its_method_and_route(api: Api, store: Path) -> None:
    [company] = api.ids("companies", 1)
    [invoice] = api.ids("erp_invoices", 1)
    existing = api.send(
        "GET", f"/crm/v3/objects/erp_invoices/{invoice}", properties="netsuite_invoice_id"
    ).json()["properties"]["netsuite_invoice_id"]
    objects = "/crm/v3/objects/{object_type}"
    calls = [
        ("PATCH", f"/crm/v3/objects/companies/{company}", {"properties": {"country": "FR"}}),
        ("POST", "/crm/v3/objects/companies", {"properties": {"name": "New Co"}}),
        (
            "POST",
            "/crm/v3/objects/companies/batch/create",
            {"inputs": [{"properties": {"name": "Batch Co", "country": "US"}}]},
        ),
        (
            "POST",
            "/crm/v3/objects/2-9001/batch/upsert",
            {
                "inputs": [
                    {
                        "id": existing,
                        "idProperty": "netsuite_invoice_id",
                        "properties": {"invoice_status": "open"},
                    },
                    {
                        "id": "new-invoice-1",
                        "idProperty": "netsuite_invoice_id",
                        "properties": {"invoice_status": "paid"},
                    },
                ]
            },
        ),
    ]
    for n, (method, path, body) in enumerate(calls):
        reply = api.send(method, path, body, f"call-{n}")
        assert reply.status_code in (200, 201), reply.text
    logged = {
        (r["correlation_id"], r["object_type"], r["property"], r["value"], r["endpoint"])
        for r in property_writes(store)
    }
    assert logged == {
        ("call-0", "companies", "country", "FR", f"PATCH {objects}/{{object_id}}"),
        ("call-1", "companies", "name", "New Co", f"POST {objects}"),
        ("call-2", "companies", "name", "Batch Co", f"POST {objects}/batch/create"),
        ("call-2", "companies", "country", "US", f"POST {objects}/batch/create"),
        # an upsert that finds its record writes the properties sent, not the key it was found by
        ("call-3", "erp_invoices", "invoice_status", "open", f"POST {objects}/batch/upsert"),
        # one that creates its record writes the key too
        ("call-3", "erp_invoices", "invoice_status", "paid", f"POST {objects}/batch/upsert"),
        (
            "call-3",
            "erp_invoices",
            "netsuite_invoice_id",
            "new-invoice-1",
            f"POST {objects}/batch/upsert",
        ),
    }


def test_clearing_a_property_logs_a_null_value(api: Api, store: Path) -> None:
    [company] = api.ids("companies", 1)
    body = {"inputs": [{"id": company, "properties": {"industry": ""}}]}
    reply = api.send("POST", "/crm/v3/objects/companies/batch/update", body, "clear")
    assert reply.status_code == 200, reply.text
    [row] = property_writes(store, "companies")
    assert row["value"] is None and row["previous_value"] is not None


@pytest.mark.parametrize(
    "read",
    ["get", "list", "batch-read"],
    ids=["get", "list", "batch-read"],
)
def test_properties_with_history_lists_logged_writes_newest_first_then_the_generated_value(
    api: Api, read: str
) -> None:
    [company] = api.ids("companies", 1)
    before = api.send("GET", f"/crm/v3/objects/companies/{company}", properties="legal_name")
    generated = before.json()["properties"]["legal_name"]
    created = before.json()["createdAt"]
    stamps = []
    for correlation, name in (("sync-1", "First Name Ltd"), (None, "Second Name Ltd")):
        body = {"inputs": [{"id": company, "properties": {"legal_name": name}}]}
        reply = api.send("POST", "/crm/v3/objects/companies/batch/update", body, correlation)
        assert reply.status_code == 200, reply.text
        stamps.append(reply.json()["results"][0]["updatedAt"])
    if read == "get":
        record = api.send(
            "GET", f"/crm/v3/objects/companies/{company}", propertiesWithHistory="legal_name"
        ).json()
    elif read == "list":
        page = api.send(
            "GET", "/crm/v3/objects/companies", limit=100, propertiesWithHistory="legal_name"
        ).json()
        [record] = [r for r in page["results"] if r["id"] == company]
    else:
        record = api.send(
            "POST",
            "/crm/v3/objects/companies/batch/read",
            {"inputs": [{"id": company}], "propertiesWithHistory": ["legal_name"]},
        ).json()["results"][0]
    assert record["propertiesWithHistory"]["legal_name"] == [
        {
            "value": "Second Name Ltd",
            "timestamp": stamps[1],
            "sourceType": "INTEGRATION",
            "sourceId": "sandbox-api",
        },
        {
            "value": "First Name Ltd",
            "timestamp": stamps[0],
            "sourceType": "INTEGRATION",
            "sourceId": "sync-1",
        },
        {"value": generated, "timestamp": created, "sourceType": "API", "sourceId": "sandbox"},
    ]


def test_record_created_through_the_api_has_no_generated_version(api: Api) -> None:
    reply = api.send("POST", "/crm/v3/objects/companies", {"properties": {"name": "Fresh"}}, "c")
    assert reply.status_code == 201, reply.text
    record = api.send(
        "GET", f"/crm/v3/objects/companies/{reply.json()['id']}", propertiesWithHistory="name"
    ).json()
    assert [v["value"] for v in record["propertiesWithHistory"]["name"]] == ["Fresh"]


def test_store_generated_before_the_write_log_gains_it_when_served(small_firm: Path) -> None:
    # a store from an older sandbox: no property_writes table
    with sqlite3.connect(small_firm / "hubspot.sqlite") as con:
        con.execute("drop table property_writes")
    assert property_writes(small_firm) == []
    with SandboxThread(small_firm) as srv:
        api = Api(srv)
        [company] = api.ids("companies", 1)
        body = {"inputs": [{"id": company, "properties": {"country": "CA"}}]}
        reply = api.send("POST", "/crm/v3/objects/companies/batch/update", body, "old-store")
        assert reply.status_code == 200, reply.text
        assert [(r["correlation_id"], r["value"]) for r in property_writes(small_firm)] == [
            ("old-store", "CA")
        ]
