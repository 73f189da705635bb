"""The NetSuite source against the sandbox: full load, rerun, edits, deletions, faults, windows."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest
import requests
from dlt.pipeline.exceptions import PipelineStepFailed

import sandbox.server.netsuite as netsuite_emulator
from ingestion.http import HttpSettings
from ingestion.netsuite import contract, netsuite_source
from ingestion.netsuite.client import SuiteQLPaginator
from ingestion.netsuite.settings import RESOURCES, TABLES
from ingestion.summary import SourceTally
from sandbox.server.app import SandboxThread

pytestmark = pytest.mark.integration

RECORD = "/services/rest/record/v1"

# Per table, a checksum beside the count: the key's sum, plus money or hours where the table has
# them. Written so SQLite (the store) and DuckDB (the warehouse) both run it.
CHECKSUMS = {
    "subsidiary": "sum(id), sum(currency)",
    "currency": "sum(id)",
    "currencyrate": "sum(id), round(sum(exchangerate), 6)",
    "accountingperiod": "sum(id)",
    "term": "sum(id), sum(daysuntilnetdue)",
    "department": "sum(id)",
    "item": "sum(id)",
    "customer": "sum(id), sum(subsidiary)",
    "job": "sum(id), round(sum(estimatedrevenue), 4)",
    "employee": "sum(id), round(sum(laborcost), 4)",
    "timebill": "sum(id), round(sum(hours), 4), round(sum(hours * rate), 4)",
    "transaction": "sum(id), round(sum(foreigntotal), 4), round(sum(foreignamountpaid), 4)",
    "transactionline": "sum(uniquekey), round(sum(netamount), 4), round(sum(quantity), 4)",
    "previoustransactionlink": "sum(previousdoc), sum(nextdoc), round(sum(amount), 4)",
    "customrecord_pslake_rate_card": "sum(id), round(sum(custrecord_rc_rate), 4)",
    "deletedrecord": "sum(id)",
}


@pytest.fixture(autouse=True)
def plain_parquet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_WRITER__DISABLE_COMPRESSION", "true")


@pytest.fixture
def faults(served_firm: SandboxThread) -> Iterator[Callable[..., None]]:
    """Switch sandbox faults on for one test; all off again afterwards."""

    def switch(**settings: Any) -> None:
        reply = requests.put(f"{served_firm.root}/_sandbox/faults", json=settings, timeout=10)
        assert reply.status_code == 200, reply.text

    yield switch
    switch(malformed_rate=0, drift=False)


def _pipeline(tmp_path: Path, name: str = "warehouse") -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=f"pslake_test_netsuite_{name}",
        destination=dlt.destinations.duckdb(str(tmp_path / f"{name}.duckdb")),
        dataset_name="raw_netsuite",
        pipelines_dir=str(tmp_path / f"dlt-{name}"),
    )


def _load(pipeline: dlt.Pipeline, server: SandboxThread, tmp_path: Path,
          resources: Sequence[str] = RESOURCES, **options: Any) -> dict[str, int]:
    """Run the source; the rows each raw table received (quarantine included)."""
    e = server.endpoints["netsuite"]
    source = netsuite_source(base_url=e["base_url"], access_token=e["access_token"],
                             account_id=e["account_id"], landing_dir=str(tmp_path / "landing"),
                             **options)
    info = pipeline.run(source.with_resources(*resources), loader_file_format="parquet")
    info.raise_on_failed_jobs()
    trace = pipeline.last_trace
    assert trace is not None and trace.last_normalize_info is not None
    counts = trace.last_normalize_info.row_counts
    return {t: n for t, n in counts.items() if not t.startswith("_dlt") and n}


def _numbers(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(float(v) if isinstance(v, Decimal | float) else v for v in row)


def _row(con: sqlite3.Connection | duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    row = con.execute(sql).fetchone()
    assert row is not None, sql
    return tuple(row)


def _warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    return con


def _assert_counts_and_checksums(firm: Path, tmp_path: Path, names: Sequence[str]) -> None:
    """Per table, the count and checksum of the load equal the sandbox store's."""
    store = sqlite3.connect(firm / "netsuite.sqlite")
    with _warehouse(tmp_path / "warehouse.duckdb") as warehouse:
        for name in names:
            checksum = CHECKSUMS[name]
            expected = _row(store, f'select count(*), {checksum} from "{name}"')
            loaded = _row(warehouse, f'select count(*), {checksum} from raw_netsuite."{name}"')
            assert _numbers(loaded) == pytest.approx(_numbers(expected)), name


def test_full_load_reproduces_every_table_then_a_rerun_loads_nothing(
        served_firm: SandboxThread, small_firm: Path, tmp_path: Path):
    pipeline = _pipeline(tmp_path)
    _load(pipeline, served_firm, tmp_path)
    _assert_counts_and_checksums(small_firm, tmp_path, RESOURCES)
    store = sqlite3.connect(small_firm / "netsuite.sqlite")
    with _warehouse(tmp_path / "warehouse.duckdb") as warehouse:
        # dates, vendor timestamps (to the minute) and the full-precision cursor, row by row
        expected_rows = set(store.execute(
            "select id, trandate, substr(datecreated, 1, 16), substr(lastmodifieddate, 1, 16), "
            "lastmodifieddate from timebill").fetchall())
        loaded_rows = set(warehouse.execute(
            "select id, strftime(trandate, '%Y-%m-%d'), strftime(datecreated, '%Y-%m-%d %H:%M'), "
            "strftime(lastmodifieddate, '%Y-%m-%d %H:%M'), "
            "strftime(modified_at, '%Y-%m-%d %H:%M:%S') from raw_netsuite.timebill").fetchall())
        assert loaded_rows == expected_rows
        assert "links" not in {c[0] for c in warehouse.execute(
            "describe raw_netsuite.transaction").fetchall()}

    served_firm.state.stats.reset()
    assert _load(pipeline, served_firm, tmp_path) == {}
    calls = served_firm.state.stats.requests["netsuite"]
    # per table: its latest modification, then one page of the rows at the cursor (dlt drops
    # them as already loaded); deletedrecord is empty, so its one query is all
    assert sum(calls.values()) == 2 * len(RESOURCES) - 1


class _RecordApi:
    """NetSuite's record API on the sandbox, as a user's edits would reach it."""

    def __init__(self, server: SandboxThread) -> None:
        e = server.endpoints["netsuite"]
        self.base = e["base_url"] + RECORD
        self.headers = {"Authorization": f"Bearer {e['access_token']}"}

    def patch(self, record_type: str, record_id: int, body: dict[str, Any]) -> None:
        reply = requests.patch(f"{self.base}/{record_type}/{record_id}", json=body,
                               headers=self.headers, timeout=10)
        assert reply.status_code == 204, reply.text

    def delete(self, record_type: str, record_id: int) -> None:
        reply = requests.delete(f"{self.base}/{record_type}/{record_id}", headers=self.headers,
                                timeout=10)
        assert reply.status_code == 204, reply.text


def test_server_errors_and_dropped_connections_are_retried_and_the_load_is_complete(
        served_firm: SandboxThread, small_firm: Path, tmp_path: Path,
        faults: Callable[..., None]):
    faults(error_rate=0.2, reset_rate=0.1, seed=5)
    tally = SourceTally("netsuite")
    fast = HttpSettings(timeout_s=10, max_attempts=10, backoff_factor=0.01,
                        max_retry_delay_s=0.05)
    big = ("timebill", "transactionline")
    _load(_pipeline(tmp_path), served_firm, tmp_path, big, tally=tally, http=fast)
    _assert_counts_and_checksums(small_firm, tmp_path, big)
    retries = tally.calls.retries
    assert any(cause.startswith("5") for cause in retries), retries
    assert any(not cause.isdigit() for cause in retries), retries  # a dropped connection


def test_incremental_run_after_edits_loads_only_the_changes_and_the_deletion(
        served_firm: SandboxThread, small_firm: Path, tmp_path: Path):
    pipeline = _pipeline(tmp_path)
    _load(pipeline, served_firm, tmp_path)
    store = sqlite3.connect(small_firm / "netsuite.sqlite")
    edited, deleted = (r[0] for r in store.execute(
        "select id from timebill order by id limit 2").fetchall())
    (customer,) = _row(store, "select min(id) from customer")
    (invoice,) = _row(store, "select min(id) from \"transaction\" where type = 'CustInvc'")
    (rate,) = _row(store, "select max(id) from currencyrate")

    api = _RecordApi(served_firm)
    api.patch("timeBill", edited, {"hours": 7.25, "memo": "corrected"})
    api.patch("customer", customer, {"companyName": "Renamed Holdings"})
    api.patch("invoice", invoice, {"memo": "disputed"})
    api.delete("timeBill", deleted)
    # The sandbox has no record API for currency rates: correct one in the store as NetSuite
    # would (the value changes and lastmodifieddate becomes the time of the change).
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    with store:
        store.execute("update currencyrate set exchangerate = 1.2345678, lastmodifieddate = ? "
                      "where id = ?", (now, rate))
    served_firm.state.wrote()

    changed = _load(pipeline, served_firm, tmp_path)

    assert changed == {"timebill": 1, "customer": 1, "transaction": 1, "currencyrate": 1,
                       "deletedrecord": 1}
    with _warehouse(tmp_path / "warehouse.duckdb") as warehouse:
        def one(sql: str) -> tuple[Any, ...]:
            return _numbers(_row(warehouse, sql))

        assert one(f"select hours, memo from raw_netsuite.timebill where id = {edited}") == (
            7.25, "corrected")
        assert one(f"select companyname from raw_netsuite.customer where id = {customer}") == (
            "Renamed Holdings",)
        assert one(f'select memo from raw_netsuite."transaction" where id = {invoice}') == (
            "disputed",)
        assert one(f"select exchangerate from raw_netsuite.currencyrate where id = {rate}") == (
            1.2345678,)
        assert one("select recordtype, recordid, context from raw_netsuite.deletedrecord") == (
            "timebill", deleted, "WEBSERVICES")
        # raw keeps the deleted row; deletedrecord is the mark that it is gone
        assert one(f"select count(*) from raw_netsuite.timebill where id = {deleted}") == (1,)


def test_malformed_records_are_quarantined_with_the_field_and_drift_adds_a_column(
        served_firm: SandboxThread, small_firm: Path, tmp_path: Path,
        faults: Callable[..., None]):
    # 0.2: the emulator picks bad transaction lines by line id (0, 1, 2, ...), so a low rate can
    # miss every line of the small firm
    faults(malformed_rate=0.2, drift=True, drift_after=0)
    tally = SourceTally("netsuite")
    _load(_pipeline(tmp_path), served_firm, tmp_path, tally=tally)

    store = sqlite3.connect(small_firm / "netsuite.sqlite")
    bad = served_firm.state.faults.is_malformed
    with _warehouse(tmp_path / "warehouse.duckdb") as warehouse:
        for name in RESOURCES:
            counts = tally.tables[name]
            (total,) = _row(store, f'select count(*) from "{name}"')
            (loaded,) = _row(warehouse, f'select count(*) from raw_netsuite."{name}"')
            (quarantined,) = _row(warehouse, "select count(*) from raw_netsuite.quarantine "
                                  f"where table_name = '{name}'")
            assert counts.received == total == counts.passed + counts.quarantined, name
            assert (loaded, quarantined) == (counts.passed, counts.quarantined), name

        def quarantine(table: str, key: str) -> tuple[set[Any], set[str]]:
            rows = warehouse.execute(
                f"select {key}, reason from raw_netsuite.quarantine where table_name = ?",
                [table]).fetchall()
            return {r[0] for r in rows}, {r[1] for r in rows}

        # the three tables whose bad records break a field: named with the bad value
        timebills = {i for (i,) in store.execute("select id from timebill")
                     if bad("netsuite", "timebill", str(i))}
        assert timebills and quarantine("timebill", "id") == (
            timebills, {"hours: expected decimal(12,4), got eight"})
        invoices = {i for (i,) in store.execute('select id from "transaction"')
                    if bad("netsuite", "transaction", str(i))}
        assert invoices and quarantine("transaction", "id") == (
            invoices, {"foreigntotal: expected decimal(18,4), got #ERROR"})
        # the emulator decides per line id (0, 1, ...), not per uniquekey
        lines = {k for (k, i) in store.execute("select uniquekey, id from transactionline")
                 if bad("netsuite", "transactionline", str(i))}
        assert lines and quarantine("transactionline", "uniquekey") == (
            lines, {"netamount: expected decimal(18,4), got #ERROR"})
        # elsewhere a bad record loses its id: kept, keyless, with the reason
        rates = sum(bad("netsuite", "currencyrate", str(i))
                    for (i,) in store.execute("select id from currencyrate"))
        assert rates and quarantine("currencyrate", "id") == ({None}, {"missing primary key id"})
        assert tally.tables["currencyrate"].quarantined == rates

        flags = warehouse.execute(
            "select distinct custbody_drift_flag from raw_netsuite.timebill").fetchall()
        assert flags == [("T",)]


# Each case shrinks the sandbox's offset cap (SuiteQL's 100,000 rows) to a couple of pages, so
# the small firm needs many windows, as a table of millions does at the real cap.
@pytest.mark.parametrize(
    ("cap", "page_size", "resources"),
    [
        # timebill (11,660 rows) in six windows of two 1,000-row pages; transaction in one
        (2000, 1000, ("timebill", "transaction")),
        # 10-row pages: transactionline in 21 windows by uniquekey; previoustransactionlink
        # windows on previousdoc, so an invoice's links cut by the cap are read again whole
        (20, 10, ("transactionline", "previoustransactionlink")),
    ],
    ids=["two-pages-per-window", "composite-key"],
)
def test_keyset_windows_read_the_same_rows_as_one_window(
        served_firm: SandboxThread, small_firm: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, cap: int, page_size: int, resources: Sequence[str]):
    one = _pipeline(tmp_path, "one_window")
    _load(one, served_firm, tmp_path, resources)

    monkeypatch.setattr(netsuite_emulator, "MAX_RESULTS", cap)
    if "previoustransactionlink" in resources:
        # a composite key pages by offset: one window of 100,000 rows now passes the cap, and
        # NetSuite says why (single-column keys page by key and never reach the cap)
        with pytest.raises(PipelineStepFailed,
                           match=r"netsuite: 400 from \S+ reading \w+; Invalid value '\d+' "
                                 r"for query parameter 'offset'"):
            _load(_pipeline(tmp_path, "capped"), served_firm, tmp_path, resources,
                  page_size=page_size)
    windows = _pipeline(tmp_path, "windows")
    _load(windows, served_firm, tmp_path, resources, page_size=page_size, window_rows=cap)

    store = sqlite3.connect(small_firm / "netsuite.sqlite")
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{tmp_path / 'one_window.duckdb'}' AS one (READ_ONLY)")
        con.execute(f"ATTACH '{tmp_path / 'windows.duckdb'}' AS win (READ_ONLY)")
        for name in resources:
            columns = ", ".join(f'"{c}"' for (c,) in con.execute(
                "select column_name from information_schema.columns where table_catalog = "
                "'one' and table_schema = 'raw_netsuite' and table_name = ? and column_name "
                "not like '\\_dlt%' escape '\\' order by ordinal_position", [name]).fetchall())
            a = f'one.raw_netsuite."{name}"'
            b = f'win.raw_netsuite."{name}"'
            (differ,) = _row(con, f"select count(*) from ((select {columns} from {a} except all "
                                  f"select {columns} from {b}) union all (select {columns} "
                                  f"from {b} except all select {columns} from {a}))")
            count = _row(con, f"select count(*) from {b}")
            total = _row(store, f'select count(*) from "{name}"')
            assert (differ, count) == (0, total), name


def test_a_refused_query_names_the_table_and_netsuites_reason(
        served_firm: SandboxThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # an account without the custom record: SuiteQL refuses the table by name
    monkeypatch.delitem(netsuite_emulator.TABLES, "customrecord_pslake_rate_card")
    with pytest.raises(PipelineStepFailed, match=(
            r"netsuite: 400 from \S+ reading customrecord_pslake_rate_card; Invalid search "
            r"query.*Record 'customrecord_pslake_rate_card' was not found")):
        _load(_pipeline(tmp_path), served_firm, tmp_path, ("customrecord_pslake_rate_card",))


@pytest.mark.parametrize(
    ("body", "more"),
    [
        # NetSuite's order: hasMore before the items
        (b'{"links":[],"count":1,"hasMore":true,"items":[{"memo":"\\"hasMore\\":false"}]}', True),
        # after the items: read from the bytes after the last ]
        (b'{"count":1,"items":[{"memo":"\\"hasMore\\":true"}],"hasMore":false}', False),
        # anywhere else: the envelope is parsed whole
        (b'{"items":[{"memo":"]"}],"hasMore":true,"links":[{"rel":"self"}]}', True),
    ],
    ids=["head", "tail", "parsed"],
)
def test_paginator_reads_has_more_without_being_fooled_by_record_text(body: bytes, more: bool):
    assert SuiteQLPaginator(limit=1000, max_rows=2000, head_bytes=40).has_more(body) is more


@pytest.mark.parametrize("date_format", ["%m/%d/%Y", "%d.%m.%Y"], ids=["us", "european"])
def test_contract_parses_dates_and_timestamps_in_the_accounts_date_format(date_format: str):
    rules = contract(TABLES["transaction"], date_format)
    assert rules.formats["trandate"] == date_format
    assert rules.formats["createddate"] == date_format + " %I:%M %p"
    assert rules.formats["modified_at"] == "%Y-%m-%d %H:%M:%S"  # the cursor, from TO_CHAR
    assert rules.columns["id"] == rules.columns["entity"] == "BIGINT"
    assert rules.columns["foreigntotal"] == "DECIMAL(18,4)"
    assert rules.columns["exchangerate"] == "DECIMAL(24,10)"
    assert rules.drop == ("links",)
