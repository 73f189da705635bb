"""The generated firm read and edited through the emulated APIs, as pslake's clients will."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox.server.app import SandboxThread
from tests.sandbox import oracle

pytestmark = pytest.mark.integration


def _harvest(server: SandboxThread) -> requests.Session:
    e = server.endpoints["harvest"]
    http = requests.Session()
    http.headers.update({"Authorization": f"Bearer {e['access_token']}",
                         "Harvest-Account-Id": e["account_id"], "User-Agent": "pslake tests"})
    return http


def _harvest_pages(server: SandboxThread, resource: str, **params: str) -> Iterator[dict]:
    http = _harvest(server)
    url: str | None = f"{server.endpoints['harvest']['base_url']}/v2/{resource}"
    query: dict[str, str] | None = {"per_page": "2000", **params}
    while url:
        body = http.get(url, params=query, timeout=60).json()
        yield from body[resource]
        url, query = body["links"]["next"], None


def _suiteql(server: SandboxThread, q: str) -> list[dict]:
    e = server.endpoints["netsuite"]
    items: list[dict] = []
    url: str | None = f"{e['base_url']}/services/rest/query/v1/suiteql?limit=1000"
    while url:
        body = requests.post(url, json={"q": q}, timeout=60, headers={
            "Authorization": f"Bearer {e['access_token']}", "Prefer": "transient"}).json()
        items += body["items"]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    return items


def test_every_time_entry_comes_through_the_api_once_with_the_stored_hours(served_firm,
                                                                           small_firm: Path):
    entries = list(_harvest_pages(served_firm, "time_entries"))
    con = sqlite3.connect(small_firm / "harvest.sqlite")
    count, hours = con.execute("select count(*), sum(hours) from time_entries").fetchone()
    assert len(entries) == count == len({e["id"] for e in entries})
    assert sum(e["hours"] for e in entries) == pytest.approx(hours)
    sample = entries[0]
    assert {"user", "client", "project", "task", "is_closed", "billable_rate",
            "external_reference", "updated_at"} <= set(sample)


def test_suiteql_sees_every_posting_and_invoice(served_firm, small_firm: Path):
    info = json.loads((small_firm / "firm.json").read_text())
    postings = _suiteql(served_firm, "SELECT id, externalid, hours FROM timebill ORDER BY id")
    assert len(postings) == info["counts"]["netsuite.timebill"]
    invoices = _suiteql(served_firm, "SELECT t.id, t.tranid, c.companyname FROM transaction t "
                                     "JOIN customer c ON c.id = t.entity "
                                     "WHERE t.type = 'CustInvc' ORDER BY t.id")
    assert len(invoices) == info["counts"]["netsuite.invoices"]


def test_official_hubspot_client_reads_the_firm_and_upserts_invoices_by_erp_id(served_firm,
                                                                              small_firm: Path):
    from hubspot import HubSpot
    from hubspot.crm.objects import BatchInputSimplePublicObjectBatchInputUpsert
    from hubspot.crm.objects import SimplePublicObjectBatchInputUpsert as Upsert

    info = json.loads((small_firm / "firm.json").read_text())
    e = served_firm.endpoints["hubspot"]
    client = HubSpot(access_token=e["access_token"], host=e["base_url"])
    companies = client.crm.companies.get_all(properties=["name", "netsuite_customer_id"])
    assert len(companies) == info["counts"]["hubspot.companies"]
    deals = client.crm.deals.get_all(properties=["amount", "dealstage", "closedate"])
    assert len(deals) == info["counts"]["hubspot.deals"]
    assert {d.properties["dealstage"] for d in deals} >= {"closedwon", "closedlost"}
    invoices = client.crm.objects.get_all("erp_invoices", properties=["netsuite_invoice_id"])
    assert len(invoices) == info["counts"]["hubspot.erp_invoices"]
    first = invoices[0].properties["netsuite_invoice_id"]
    result = client.crm.objects.batch_api.upsert(
        "erp_invoices",
        BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
            Upsert(id=first, id_property="netsuite_invoice_id",
                   properties={"invoice_status": "paid"}),
            Upsert(id="999999999", id_property="netsuite_invoice_id",
                   properties={"invoice_status": "open", "invoice_number": "INV-NEW"}),
        ]))
    by_new = {r.properties["netsuite_invoice_id"]: r.new for r in result.results}
    assert by_new == {first: False, "999999999": True}


def test_an_edit_through_the_api_after_the_period_closed_becomes_a_real_discrepancy(
        served_firm, small_firm: Path):
    # A person edits an approved entry in a closed period: the rules must now find it.
    con = sqlite3.connect(small_firm / "netsuite.sqlite")
    closed_end = con.execute("select max(enddate) from accountingperiod "
                             "where isposting = 'T' and closed = 'T'").fetchone()[0]
    hv = sqlite3.connect(small_firm / "harvest.sqlite")
    entry_id, notes = hv.execute(
        "select id, notes from time_entries where is_closed = 1 and spent_date <= ? "
        "and billable = 1 order by id limit 1", (closed_end,)).fetchone()
    before = oracle.find(small_firm)
    ref = f"harvest:time_entry:{entry_id}"
    assert ("time_in_closed_period", ref) not in before
    e = served_firm.endpoints["harvest"]
    response = _harvest(served_firm).patch(f"{e['base_url']}/v2/time_entries/{entry_id}",
                                           json={"notes": f"{notes or ''} (corrected)"},
                                           timeout=30)
    assert response.status_code == 200, response.text
    after = oracle.find(small_firm)
    assert after - before == {("time_in_closed_period", ref)}
