"""The HubSpot source against the sandbox: a full load equals the store, reruns load only what
changed, archived records and removed associations end up marked, malformed records are
quarantined with a reason."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
import duckdb
import orjson
import pytest
import requests

from ingestion.hubspot import hubspot_source
from ingestion.hubspot.client import AssociationReader
from ingestion.hubspot.settings import ASSOCIATIONS, NO_ASSOCIATIONS, OBJECTS
from ingestion.summary import SourceTally, TableTally
from sandbox.server.app import SandboxThread
from sandbox.server.hubspot import ASSOCIATION_TYPES

pytestmark = pytest.mark.integration

# Properties compared value for value with the store, per table (pslake's custom ones included).
COMPARED = {
    "companies": ("name", "legal_name", "country", "billing_currency", "payment_terms",
                  "netsuite_customer_id"),
    "contacts": ("email", "firstname", "lastname"),
    "deals": ("amount", "dealstage", "pipeline", "erp_project_code", "hs_is_closed_won"),
    "erp_invoices": ("netsuite_invoice_id", "invoice_status", "amount_paid", "currency"),
}
# What a malformed record breaks (sandbox/server/faults.py) and the reason naming it.
MALFORMED_REASON = {
    "companies": "hs_lastmodifieddate: expected timestamptz, got yesterday",
    "deals": "amount: expected double, got 12k USD",
    "erp_invoices": "amount_paid: expected double, got paid?",
    "contacts": "missing primary key id",  # other objects lose their id
}


@dataclass
class FirstLoad:
    """A full load of the small firm: its lake folder (warehouse + dlt state), rows, tally."""

    lake: Path
    counts: dict[str, int]
    tally: SourceTally


@pytest.fixture(autouse=True)
def _uncompressed_parquet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_WRITER__DISABLE_COMPRESSION", "true")


@pytest.fixture(scope="module")
def first_load(small_firm_template: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> FirstLoad:
    """One full load (lists paged by 10), shared: tests copy it rather than load again."""
    root = tmp_path_factory.mktemp("hubspot-first-load")
    shutil.copytree(small_firm_template, root / "sandbox")
    with pytest.MonkeyPatch.context() as env, SandboxThread(root / "sandbox") as server:
        env.setenv("DATA_WRITER__DISABLE_COMPRESSION", "true")
        counts, tally = _run(_pipeline(root / "lake"), server, root / "lake", page_size=10)
    return FirstLoad(root / "lake", counts, tally)


@pytest.fixture
def loaded(first_load: FirstLoad, tmp_path: Path) -> Path:
    """A private copy of the first load's lake, to run incremental loads on."""
    lake = tmp_path / "lake"
    shutil.copytree(first_load.lake, lake)
    return lake


@pytest.fixture
def hubspot(served_firm: SandboxThread) -> Iterator[SandboxThread]:
    """The served firm (a fresh copy: what the first load read); faults off after the test."""
    try:
        yield served_firm
    finally:
        _faults(served_firm, malformed_rate=0.0, drift=False, drift_after=2)


def _faults(server: SandboxThread, **settings: Any) -> None:
    r = requests.put(f"{server.root}/_sandbox/faults", json=settings, timeout=10)
    assert r.status_code == 200, r.text


def _call(server: SandboxThread, method: str, path: str, body: Any = None,
          api: str = "crm/v3/objects") -> None:
    e = server.endpoints["hubspot"]
    r = requests.request(method, f"{e['base_url']}/{api}/{path}", json=body,
                         headers={"Authorization": f"Bearer {e['access_token']}"}, timeout=10)
    assert r.ok, r.text


def _pipeline(lake: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name="pslake_test_hubspot",
        destination=dlt.destinations.duckdb(str(lake / "warehouse.duckdb")),
        dataset_name="raw_hubspot",
        pipelines_dir=str(lake / "dlt"),
    )


def _run(pipeline: dlt.Pipeline, server: SandboxThread, lake: Path,
         **options: Any) -> tuple[dict[str, int], SourceTally]:
    """One run; the rows normalised per table, and the source's tally."""
    e = server.endpoints["hubspot"]
    tally = SourceTally("hubspot")
    source = hubspot_source(base_url=e["base_url"], access_token=e["access_token"], tally=tally,
                            landing_dir=str(lake / "landing"), **options)
    pipeline.run(source, loader_file_format="parquet").raise_on_failed_jobs()
    normalized = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    assert normalized is not None
    return dict(normalized.row_counts), tally


def _data_rows(counts: dict[str, int]) -> dict[str, int]:
    return {table: counts.get(table, 0) for table in OBJECTS}


def _warehouse(lake: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True)


def _ids(store: sqlite3.Connection, table: str, limit: int) -> list[int]:
    return [r[0] for r in store.execute(
        "select id from objects where object_type = ? order by id limit ?", (table, limit))]


def _store_values(store: sqlite3.Connection, table: str) -> dict[int, tuple[Any, ...]]:
    paths = ", ".join(f"json_extract(properties, '$.{p}')" for p in COMPARED[table])
    rows = store.execute(f"select id, {paths} from objects where object_type = ? "
                         "and archived = 0", (table,))
    return {row[0]: tuple(row[1:]) for row in rows}


def _loaded_values(warehouse: duckdb.DuckDBPyConnection, table: str
                   ) -> dict[int, tuple[Any, ...]]:
    rows = warehouse.execute(
        f"select id, {', '.join(COMPARED[table])} from raw_hubspot.{table} where not archived")
    return {row[0]: tuple(row[1:]) for row in rows.fetchall()}


Link = tuple[int, int, int, str]  # from id, to id, type id, category
PAIRS = [(table, to) for table, targets in ASSOCIATIONS.items() for to in targets]


def _store_links(store: sqlite3.Connection) -> dict[tuple[str, str], list[Link]]:
    """The links HubSpot returns per pair type: between live records, stored one way round.

    The generated store keeps one direction and the emulator reads the other one backwards,
    answering its own default type for the inverse default (as HubSpot does); links written
    through the API are stored both ways, hence ``union``, which also drops the duplicates.
    """
    links: dict[tuple[str, str], list[Link]] = {}
    for table, to in PAIRS:
        own, inverse = ASSOCIATION_TYPES[(table, to)], ASSOCIATION_TYPES.get((to, table))
        links[(table, to)] = store.execute(
            "select a.from_id, a.to_id, a.type_id, a.category from associations a "
            "join objects f on f.object_type = a.from_type and f.id = a.from_id "
            "join objects t on t.object_type = a.to_type and t.id = a.to_id "
            "where f.archived = 0 and t.archived = 0 and a.from_type = ? and a.to_type = ? "
            "union "
            "select a.to_id, a.from_id, case when a.type_id = ? then ? else a.type_id end, "
            "a.category from associations a "
            "join objects f on f.object_type = a.to_type and f.id = a.to_id "
            "join objects t on t.object_type = a.from_type and t.id = a.from_id "
            "where f.archived = 0 and t.archived = 0 and a.from_type = ? and a.to_type = ?",
            (table, to, inverse, own, to, table)).fetchall()
    return links


def _live_links(warehouse: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], list[Link]]:
    return {(table, to): warehouse.execute(
        "select from_id, to_id, type_id, category from raw_hubspot.associations where "
        "from_type = ? and to_type = ? and removed_at is null", [table, to]).fetchall()
        for table, to in PAIRS}


def _assert_links_equal(warehouse: duckdb.DuckDBPyConnection, store: sqlite3.Connection
                        ) -> None:
    """Per pair type: as many live rows as HubSpot's links (no duplicates), and the same ones."""
    loaded, expected = _live_links(warehouse), _store_links(store)
    for pair in PAIRS:
        assert len(loaded[pair]) == len(expected[pair]), pair
        assert set(loaded[pair]) == set(expected[pair]), pair


def test_full_load_reproduces_the_crm_then_an_identical_rerun_loads_nothing(
        first_load: FirstLoad, loaded: Path, hubspot: SandboxThread, small_firm: Path) -> None:
    store = sqlite3.connect(small_firm / "hubspot.sqlite")
    with _warehouse(first_load.lake) as warehouse:
        for table in OBJECTS:
            expected = store.execute("select count(*), sum(id) from objects where "
                                     "object_type = ? and archived = 0", (table,)).fetchone()
            assert warehouse.execute(f"select count(*), sum(id) from raw_hubspot.{table}"
                                     ).fetchone() == expected, table
            assert _loaded_values(warehouse, table) == _store_values(store, table), table
            assert first_load.tally.tables[table].received == first_load.counts[table]
            assert first_load.tally.tables[table].pages > 1, table  # lists paged by 10
        assert warehouse.execute("select count(*), sum(id) from raw_hubspot.owners"
                                 ).fetchone() == store.execute(
            "select count(*), sum(id) from owners").fetchone()
        assert set(warehouse.execute("select id, pipeline_id from raw_hubspot.deal_stages"
                                     ).fetchall()) == set(store.execute(
            "select s.id, s.pipeline_id from pipeline_stages s join pipelines p "
            "on p.id = s.pipeline_id where p.object_type = 'deals' and s.archived = 0"))
        assert set(warehouse.execute("select id from raw_hubspot.deal_pipelines").fetchall()
                   ) == set(store.execute("select id from pipelines where object_type = "
                                          "'deals' and archived = 0"))
        # the custom object's definitions are loaded, and its columns typed by HubSpot's type
        assert warehouse.execute(
            "select type, has_unique_value from raw_hubspot.properties where object_type = "
            "'erp_invoices' and name = 'netsuite_invoice_id'").fetchall() == [("string", True)]
        types = dict(warehouse.execute(
            "select column_name, data_type from information_schema.columns where "
            "table_schema = 'raw_hubspot' and table_name = 'erp_invoices'").fetchall())
        assert types["invoice_date"] == "DATE" and types["amount_paid"] == "VARCHAR"
        assert types["updated_at"] == "TIMESTAMP WITH TIME ZONE" and types["id"] == "BIGINT"
        assert "quarantine" not in {r[0] for r in warehouse.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'raw_hubspot'").fetchall()}

    hubspot.state.stats.reset()
    again, _ = _run(_pipeline(loaded), hubspot, loaded)
    assert _data_rows(again) == dict.fromkeys(OBJECTS, 0)
    assert "associations" not in again  # nothing re-read, no pass due: no association call
    calls = hubspot.state.stats.requests["hubspot"]
    assert calls["POST /crm/v3/objects/deals/search"] == 1  # later runs search, one page each
    assert calls["GET /crm/v3/objects/deals"] == 1  # and list only the archived records
    assert not [call for call in calls if "/crm/v4/" in call]


def test_full_load_reads_every_association_between_live_records(
        first_load: FirstLoad, small_firm: Path) -> None:
    store = sqlite3.connect(small_firm / "hubspot.sqlite")
    with _warehouse(first_load.lake) as warehouse:
        _assert_links_equal(warehouse, store)
        assert all(_live_links(warehouse).values())  # every pair type has some
        assert warehouse.execute("select count(*) from raw_hubspot.associations where "
                                 "removed_at is not null or first_seen_at is null"
                                 ).fetchone() == (0,)
        assert first_load.tally.tables["associations"].received == first_load.counts[
            "associations"]  # every record had its links (no marker rows)


def test_associations_added_or_removed_in_hubspot_end_up_live_or_marked(
        loaded: Path, hubspot: SandboxThread, small_firm: Path) -> None:
    store = sqlite3.connect(small_firm / "hubspot.sqlite")
    links = _store_links(store)
    contacts = links[("contacts", "companies")]
    kept = contacts[0][0]
    dropped, dropped_company = next(link[:2] for link in contacts if link[0] != kept)
    added = next(c for c in _ids(store, "companies", 20)
                 if (kept, c) not in {link[:2] for link in contacts})
    invoice, deal = links[("erp_invoices", "deals")][0][:2]
    invoice_links = {(to, link[1], (to, link[1]) == ("deals", deal))
                     for (table, to), found in links.items() if table == "erp_invoices"
                     for link in found if link[0] == invoice}
    archived, archived_company = next(
        link[:2] for link in links[("deals", "companies")] if link[0] != deal)
    # Added through the v4 API (it does not move the contact's modification time). The
    # emulator has no v4 removal (DELETE .../associations/... or batch/archive), so removals
    # are made in its store; HubSpot's reads then no longer return them, as after a removal.
    _call(hubspot, "PUT", f"contacts/{kept}/associations/default/companies/{added}",
          api="crm/v4/objects")
    with store:
        store.execute("delete from associations where (from_id, to_id) in ((?, ?), (?, ?))",
                      (dropped, dropped_company, invoice, deal))
    # the invoice also changes, so the next run re-reads it; the contacts do not. An archived
    # deal is never searched again, and HubSpot hides the links to it.
    _call(hubspot, "PATCH", f"erp_invoices/{invoice}", {"properties": {"amount_paid": "7"}})
    _call(hubspot, "DELETE", f"deals/{archived}")
    pipeline = _pipeline(loaded)

    hubspot.state.stats.reset()
    counts, _ = _run(pipeline, hubspot, loaded, search_settle_s=0)
    assert _data_rows(counts)["erp_invoices"] == 1
    calls = hubspot.state.stats.requests["hubspot"]
    # one batch read per pair type of the re-read invoice; no pass, so no list of contact ids
    assert {c: n for c, n in calls.items() if "/crm/v4/" in c} == {
        "POST /crm/v4/associations/2-9001/companies/batch/read": 1,
        "POST /crm/v4/associations/2-9001/deals/batch/read": 1}
    assert calls["GET /crm/v3/objects/contacts"] == 1  # the archived list only
    with _warehouse(loaded) as warehouse:
        # the invoice's deal link ended (a marker did it when no deal is left; markers are
        # not loaded), its other links stay live
        assert set(warehouse.execute(
            "select to_type, to_id, removed_at is not null from raw_hubspot.associations "
            "where from_type = 'erp_invoices' and from_id = ?", [invoice]).fetchall()
                   ) == invoice_links
        assert warehouse.execute("select count(*) from raw_hubspot.associations where "
                                 "removed_at is not null").fetchone() == (1,)

    # the periodic full pass (due every run with 0 days) finds what no record change showed
    hubspot.state.stats.reset()
    _run(pipeline, hubspot, loaded, association_pass_days=0)
    assert hubspot.state.stats.requests["hubspot"]["GET /crm/v3/objects/contacts"] == 2
    now = _store_links(store)
    ended = {(pair, link[:2]) for pair in PAIRS for link in set(links[pair]) - set(now[pair])}
    # the removed links, and the archived deal's own link, which only the pass's marker for
    # the whole pair type can end (the invoices' links to the deal end too)
    assert {(("contacts", "companies"), (dropped, dropped_company)),
            (("erp_invoices", "deals"), (invoice, deal)),
            (("deals", "companies"), (archived, archived_company))} <= ended
    with _warehouse(loaded) as warehouse:
        _assert_links_equal(warehouse, store)
        assert {((table, to), (f, t)) for table, to, f, t, later in warehouse.execute(
            "select from_type, to_type, from_id, to_id, first_seen_at < removed_at from "
            "raw_hubspot.associations where removed_at is not null").fetchall()
            if later} == ended
        assert warehouse.execute(
            "select count(*) from raw_hubspot.associations where from_type = 'contacts' and "
            "from_id = ? and to_id = ? and removed_at is null", [kept, added]).fetchone() == (1,)
        assert warehouse.execute("select count(*) from raw_hubspot.associations where "
                                 "to_id is null").fetchone() == (0,)


def test_incremental_run_after_edits_loads_exactly_the_changed_and_archived_records(
        loaded: Path, hubspot: SandboxThread, small_firm: Path) -> None:
    store = sqlite3.connect(small_firm / "hubspot.sqlite")
    [company], [contact], [invoice] = (_ids(store, t, 1) for t in
                                       ("companies", "contacts", "erp_invoices"))
    deal_a, deal_b = _ids(store, "deals", 2)
    _call(hubspot, "PATCH", f"companies/{company}", {"properties": {"legal_name": "Renamed"}})
    _call(hubspot, "PATCH", f"deals/{deal_a}", {"properties": {"amount": 123456.5}})
    _call(hubspot, "PATCH", f"deals/{deal_b}", {"properties": {"dealstage": "closedlost"}})
    _call(hubspot, "PATCH", f"erp_invoices/{invoice}",
          {"properties": {"invoice_status": "paid", "amount_paid": "42"}})
    _call(hubspot, "DELETE", f"contacts/{contact}")
    pipeline = _pipeline(loaded)

    # Changes younger than the settle time wait (search lags writes); the archival does not,
    # as archived records are listed, not searched. They are listed on every run.
    waiting, _ = _run(pipeline, hubspot, loaded)
    assert _data_rows(waiting) == {"companies": 0, "contacts": 1, "deals": 0, "erp_invoices": 0}

    counts, _ = _run(pipeline, hubspot, loaded, search_settle_s=0)
    assert _data_rows(counts) == {"companies": 1, "contacts": 1, "deals": 2, "erp_invoices": 1}
    with _warehouse(loaded) as warehouse:
        for table in OBJECTS:
            assert _loaded_values(warehouse, table) == _store_values(store, table), table
        assert warehouse.execute(
            "select legal_name from raw_hubspot.companies where id = ?", [company]
        ).fetchone() == ("Renamed",)
        assert warehouse.execute(
            "select amount, updated_at > created_at from raw_hubspot.deals where id = ?",
            [deal_a]).fetchone() == ("123456.5", True)
        assert warehouse.execute(
            "select id, archived_at is not null from raw_hubspot.contacts where archived"
        ).fetchall() == [(contact, True)]
        assert warehouse.execute("select count(*) from raw_hubspot.contacts").fetchone() == (
            store.execute("select count(*) from objects where object_type = 'contacts'"
                          ).fetchone())


def test_an_archival_older_than_the_cursor_still_marks_the_row_archived(
        loaded: Path, hubspot: SandboxThread, small_firm: Path) -> None:
    # Whether HubSpot moves updatedAt on archiving is not documented: archive a company in the
    # store without touching its modification time, far behind the cursor.
    store = sqlite3.connect(small_firm / "hubspot.sqlite")
    company, updated = store.execute("select id, updated_at from objects where object_type = "
                                     "'companies' order by updated_at limit 1").fetchone()
    with store:
        store.execute("update objects set archived = 1, archived_at = ? where "
                      "object_type = 'companies' and id = ?",
                      (dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"), company))
    counts, _ = _run(_pipeline(loaded), hubspot, loaded, search_settle_s=0)
    assert _data_rows(counts)["companies"] == 1
    with _warehouse(loaded) as warehouse:
        row = warehouse.execute(
            "select archived, archived_at is not null, updated_at, (select max(updated_at) "
            "from raw_hubspot.companies) from raw_hubspot.companies where id = ?", [company]
        ).fetchone()
    assert row is not None
    archived, has_archived_at, row_updated, cursor = row
    assert archived and has_archived_at
    assert row_updated == dt.datetime.fromisoformat(updated) < cursor


def test_search_restarts_from_the_last_instant_and_reads_each_change_once(
        loaded: Path, hubspot: SandboxThread, small_firm: Path) -> None:
    # Search pages of 5 and a window of 20 results stand for HubSpot's 200 and 10,000.
    store = sqlite3.connect(small_firm / "hubspot.sqlite")
    for i, deal in enumerate(_ids(store, "deals", 12)):  # twelve calls: twelve instants
        _call(hubspot, "PATCH", f"deals/{deal}", {"properties": {"amount": 1000 + i}})
    # one batch call stamps all its records with one instant: 10 fit the window, 30 do not
    _call(hubspot, "POST", "companies/batch/update", {"inputs": [
        {"id": str(i), "properties": {"legal_name": "Batch"}} for i in _ids(store, "companies",
                                                                              10)]})
    _call(hubspot, "POST", "erp_invoices/batch/update", {"inputs": [
        {"id": str(i), "properties": {"amount_paid": "1"}} for i in _ids(store, "erp_invoices",
                                                                          30)]})

    hubspot.state.stats.reset()
    counts, tally = _run(_pipeline(loaded), hubspot, loaded, search_settle_s=0,
                         search_page_size=5, search_window=20)
    assert _data_rows(counts) == {"companies": 10, "contacts": 0, "deals": 12,
                                  "erp_invoices": 30}
    calls = hubspot.state.stats.requests["hubspot"]
    # deals: each page is a new query from the last instant read, without offsets
    assert calls["POST /crm/v3/objects/deals/search"] == 3
    assert tally.tables["deals"].received == 13  # the twelve, and the one at the old cursor
    # companies: an instant longer than a page is read by offset, then search goes on after it
    assert "paged by offset" in " ".join(tally.tables["companies"].notes)
    assert calls["GET /crm/v3/objects/companies"] == 1  # the archived list only
    # invoices: an instant longer than the window: the rest of the changes from a full list
    assert "read the full list" in " ".join(tally.tables["erp_invoices"].notes)
    assert calls["GET /crm/v3/objects/2-9001"] == 2  # the archived list, and the full list
    with _warehouse(loaded) as warehouse:
        for table in OBJECTS:
            assert _loaded_values(warehouse, table) == _store_values(store, table), table


def test_malformed_records_are_quarantined_with_a_reason_and_drift_adds_a_column(
        hubspot: SandboxThread, small_firm: Path, tmp_path: Path) -> None:
    _faults(hubspot, vendors=["hubspot"], malformed_rate=0.2, drift=True, drift_after=0)
    faults = hubspot.state.faults
    store = sqlite3.connect(small_firm / "hubspot.sqlite")
    broken = {table: {i for (i,) in store.execute(
        "select id from objects where object_type = ?", (table,))
        if faults.is_malformed("hubspot", table, i)} for table in OBJECTS}
    assert all(broken.values())  # every object has some, or the test proves nothing

    counts, tally = _run(_pipeline(tmp_path), hubspot, tmp_path)
    with _warehouse(tmp_path) as warehouse:
        for table in OBJECTS:
            rows = warehouse.execute(
                "select id, reason, record from raw_hubspot.quarantine where table_name = ?",
                [table]).fetchall()
            assert {reason for _, reason, _ in rows} == {MALFORMED_REASON[table]}, table
            assert all(record.startswith("{") for _, _, record in rows)
            if table == "contacts":  # the id itself is what broke
                assert [i for i, _, _ in rows] == [None] * len(broken[table])
            else:
                assert {i for i, _, _ in rows} == broken[table]
                loaded = {r[0] for r in warehouse.execute(f"select id from raw_hubspot.{table}"
                                                          ).fetchall()}
                assert not loaded & broken[table]
            received = tally.tables[table].received
            assert received == store.execute("select count(*) from objects where "
                                             "object_type = ?", (table,)).fetchone()[0]
            assert received == counts[table] + len(rows) == tally.tables[table].passed + len(
                rows)
            drift = warehouse.execute(
                f"select distinct hs_pslake_drift_score from raw_hubspot.{table}").fetchall()
            assert drift == [("42",)], table
        # a quarantined record's associations are read too, into their own table
        assert {r[0] for r in warehouse.execute(
            "select distinct table_name from raw_hubspot.quarantine").fetchall()} == set(OBJECTS)
        assert broken["deals"] <= {r[0] for r in warehouse.execute(
            "select from_id from raw_hubspot.associations where from_type = 'deals'").fetchall()}


class _CannedPortal:
    """Batch read answers HubSpot can give and the emulator does not (paging, other errors)."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers = answers
        self.asked: list[list[dict[str, str]]] = []

    def associations(self, table: str, to_table: str, inputs: list[dict[str, str]]) -> bytes:
        self.asked.append(inputs)
        return orjson.dumps(self.answers.pop(0))


def _to(*to_ids: int) -> list[dict[str, Any]]:
    return [{"toObjectId": i, "associationTypes": [
        {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}]} for i in to_ids]


@pytest.mark.unit
def test_batch_read_follows_paging_marks_empty_records_and_leaves_failed_ones_alone() -> None:
    portal = _CannedPortal([
        {"results": [{"from": {"id": "1"}, "to": _to(10), "paging": {"next": {"after": "a"}}},
                     {"from": {"id": "2"}, "to": _to(20), "paging": {"next": {"after": "b"}}}],
         "errors": [
             # 3: HubSpot's answer for a record without associations
             {"category": "OBJECT_NOT_FOUND", "subCategory": NO_ASSOCIATIONS,
              "context": {"fromObjectId": ["3"]}},
             # 4: any other error; its rows stay as they are
             {"category": "RATE_LIMITS", "message": "busy", "context": {"fromObjectId": ["4"]}}]},
        # 5 is left out without an error: none either. 2 fails on its second page.
        {"results": [{"from": {"id": "1"}, "to": _to(11)}],
         "errors": [{"category": "RATE_LIMITS", "message": "busy",
                     "context": {"fromObjectId": ["2"]}}]},
    ])
    tally = TableTally("associations")
    reader = AssociationReader(portal, tally, batch_size=5)  # type: ignore[arg-type]
    tables = list(reader.read("contacts", [1, 2, 3, 4, 5]))
    rows = {(r["from_id"], r["to_id"]) for t in tables for r in t.to_pylist()}
    assert rows == {(1, 10), (1, 11), (3, None), (5, None)}  # None: a marker
    assert portal.asked[1] == [{"id": "1", "after": "a"}, {"id": "2", "after": "b"}]
    assert tally.received == 2 and tally.pages == 2
    assert "no answer for 2 records" in tally.notes[0]
    # the failed records are not counted as read: a full pass in the same run asks again
    portal.answers.append({"results": [{"from": {"id": "2"}, "to": _to(20)},
                                       {"from": {"id": "4"}, "to": _to(40)}]})
    again = list(reader.read("contacts", [1, 2, 3, 4, 5]))
    assert portal.asked[2] == [{"id": "2"}, {"id": "4"}]
    assert {(r["from_id"], r["to_id"]) for t in again for r in t.to_pylist()} == {
        (2, 20), (4, 40)}
