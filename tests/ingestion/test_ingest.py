"""The ingest runner against the sandbox: full, incremental, deletions, faults, bad settings."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from typer.testing import CliRunner

from ingestion.http import HttpSettings
from ingestion.pipeline import IngestResult, format_summary, ingest
from pslake.cli import app
from pslake.errors import PslakeError
from sandbox.server.app import SandboxThread

pytestmark = pytest.mark.integration

FAST_RETRY = HttpSettings(timeout_s=10, max_attempts=10, backoff_factor=0.05,
                          max_retry_delay_s=3)
# what a Harvest reference or fact table must hold: (count, sum of ids)
CHECKED = ("clients", "users", "projects", "tasks", "task_assignments", "user_assignments",
           "expense_categories", "time_entries", "expenses")


@pytest.fixture(autouse=True)
def _dlt_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "ERROR")
    for vendor in ("HUBSPOT", "HARVEST", "NETSUITE"):
        for name in ("BASE_URL", "ACCESS_TOKEN", "ACCOUNT_ID"):
            monkeypatch.delenv(f"SOURCES__{vendor}__{name}", raising=False)


def _harvest(server: SandboxThread) -> tuple[str, dict[str, str]]:
    e = server.endpoints["harvest"]
    return e["base_url"] + "/v2", {"Authorization": f"Bearer {e['access_token']}",
                                   "Harvest-Account-Id": e["account_id"],
                                   "User-Agent": "pslake tests"}


def _faults(server: SandboxThread, **settings: Any) -> None:
    r = requests.put(f"{server.root}/_sandbox/faults", json=settings, timeout=10)
    assert r.status_code == 200, r.text


def _run(firm: Path, **kwargs: Any) -> IngestResult:
    kwargs.setdefault("http", FAST_RETRY)
    kwargs.setdefault("deletion_scan_hours", 0)
    result = ingest(data_dir=firm.parent, sources=["harvest"], **kwargs)
    assert not result.errors, result.errors
    return result


def _table(result: IngestResult, name: str) -> Any:
    return result.runs[0].tally.tables[name]


def _warehouse_matches_store(firm: Path) -> None:
    store = sqlite3.connect(firm / "harvest.sqlite")
    with duckdb.connect(str(firm.parent / "warehouse.duckdb"), read_only=True) as wh:
        for name in CHECKED:
            expected = store.execute(f"select count(*), sum(id) from {name}").fetchone()
            loaded = wh.execute(f"select count(*), sum(id) from raw_harvest.{name}").fetchone()
            assert loaded == expected, name
        hours = store.execute("select round(sum(hours), 4), round(sum(cost_rate * hours), 4) "
                              "from time_entries").fetchone()
        loaded_hours = wh.execute(
            "select sum(hours)::double, round(sum(cost_rate * hours), 4)::double "
            "from raw_harvest.time_entries").fetchone()
        assert loaded_hours == pytest.approx(hours, abs=1e-6)


def test_full_load_equals_the_store_and_an_identical_rerun_loads_nothing(served_firm,
                                                                        small_firm):
    first = _run(small_firm)
    _warehouse_matches_store(small_firm)
    entries = _table(first, "time_entries")
    assert entries.received == entries.loaded == entries.new > 20_000
    assert entries.quarantined == 0
    second = _run(small_firm)
    for name in CHECKED:
        t = _table(second, name)
        assert (t.loaded, t.new, t.updated, t.deleted) == (0, 0, 0, 0), name
    summary = "\n".join(format_summary(second))
    assert "raw_harvest.time_entries" in summary and "retries: none" in summary


def test_incremental_run_picks_up_exactly_the_changed_rows_and_marks_deletions(
        served_firm, small_firm):
    _run(small_firm)
    base, headers = _harvest(served_firm)
    store = sqlite3.connect(small_firm / "harvest.sqlite")
    recent = [r[0] for r in store.execute(
        "select id from time_entries where is_locked = 0 order by spent_date desc, id desc "
        "limit 5")]
    for entry_id in recent[:2]:
        r = requests.patch(f"{base}/time_entries/{entry_id}", headers=headers,
                           json={"hours": 3.25, "notes": "changed in the sandbox"}, timeout=10)
        assert r.status_code == 200, r.text
    r = requests.delete(f"{base}/time_entries/{recent[2]}", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    template = store.execute("select project_id, task_id, user_id from time_entries "
                             "where id = ?", (recent[3],)).fetchone()
    r = requests.post(f"{base}/time_entries", headers=headers, timeout=10,
                      json={"project_id": template[0], "task_id": template[1],
                            "user_id": template[2],
                            "spent_date": "2026-11-16", "hours": 1.5})
    assert r.status_code == 201, r.text
    created = r.json()["id"]
    time.sleep(2)  # a run leaves what changed in its own first second to the next run

    # the deletion scan is not due yet (it ran with the full load): changes load, marks wait
    result = _run(small_firm, deletion_scan_hours=24)
    entries = _table(result, "time_entries")
    assert (entries.loaded, entries.new, entries.updated, entries.deleted) == (3, 1, 2, 0)
    assert any("deletion scan: last" in note for note in result.runs[0].tally.notes)
    # moved out of the deletion scan's window: no longer listed there, yet not deleted
    r = requests.patch(f"{base}/time_entries/{recent[4]}", headers=headers,
                       json={"spent_date": "2026-01-05"}, timeout=10)
    assert r.status_code == 200, r.text
    time.sleep(2)
    result = _run(small_firm, deletion_scan_hours=0)
    entries = _table(result, "time_entries")
    assert (entries.loaded, entries.updated, entries.deleted) == (1, 1, 1)
    with duckdb.connect(str(small_firm.parent / "warehouse.duckdb"), read_only=True) as wh:
        changed = wh.execute("select id, hours, notes from raw_harvest.time_entries "
                             "where id in (?, ?) order by id", recent[:2]).fetchall()
        assert changed == [(i, pytest.approx(3.25), "changed in the sandbox")
                           for i in sorted(recent[:2])]
        assert wh.execute("select count(*) from raw_harvest.time_entries where id = ?",
                          [created]).fetchone() == (1,)
        marks = wh.execute("select resource, id from raw_harvest.deleted_records").fetchall()
        assert marks == [("time_entries", recent[2])]
    again = _run(small_firm)
    assert _table(again, "time_entries").deleted == 0  # marked once, not again


def test_with_every_fault_on_the_load_ends_with_the_same_data(served_firm, small_firm):
    _faults(served_firm, rate_limit=True, limits={"harvest": {"requests": 8, "window_s": 1}},
            error_rate=0.15, reset_rate=0.1, slow_rate=0.1, slow_ms=200, seed=3,
            retry_after_format="mixed")
    result = _run(small_firm)
    _warehouse_matches_store(small_firm)
    calls = result.runs[0].tally.calls
    assert calls.retried > 0
    assert "429" in calls.retries
    assert any(cause.startswith("5") for cause in calls.retries)
    summary = "\n".join(format_summary(result))
    assert "retries: none" not in summary and "429 x" in summary


def test_malformed_records_are_quarantined_with_a_reason_and_drift_adds_a_column(
        served_firm, small_firm):
    _faults(served_firm, malformed_rate=0.01, drift=True, drift_after=1, seed=5)
    result = _run(small_firm)
    entries = _table(result, "time_entries")
    assert entries.quarantined > 0
    assert entries.received == entries.passed + entries.quarantined
    assert entries.loaded == entries.passed
    with duckdb.connect(str(small_firm.parent / "warehouse.duckdb"), read_only=True) as wh:
        rows = wh.execute("select table_name, id, reason, record from raw_harvest.quarantine "
                          "where table_name = 'time_entries'").fetchall()
        assert len(rows) == entries.quarantined
        assert all(reason.startswith("hours: expected decimal(12,4), got 7,5h")
                   for _, _, reason, _ in rows)
        assert all(json.loads(record)["id"] == record_id for _, record_id, _, record in rows)
        quarantined_ids = [r[1] for r in rows]
        assert wh.execute(
            "select count(*) from raw_harvest.time_entries where id in "
            f"({', '.join(map(str, quarantined_ids))})").fetchone() == (0,)
        columns = {r[0] for r in wh.execute("describe raw_harvest.time_entries").fetchall()}
        assert "approval_status" in columns
        drifted = wh.execute("select count(*) from raw_harvest.time_entries "
                             "where approval_status = 'approved'").fetchone()[0]
        assert drifted > 0
        users_missing_id = wh.execute(
            "select count(*) from raw_harvest.quarantine where table_name = 'clients' "
            "and reason = 'missing primary key id'").fetchone()[0]
    assert users_missing_id == _table(result, "clients").quarantined

    # the next run sees the boundary's bad records again; dlt drops what it saw at the cursor
    # boundary, and the check knows those are in the quarantine table already
    again = _run(small_firm)
    assert not again.errors
    with duckdb.connect(str(small_firm.parent / "warehouse.duckdb"), read_only=True) as wh:
        assert wh.execute("select count(*) from raw_harvest.time_entries where _dlt_load_id "
                          "is null").fetchone() == (0,)


def test_wrong_token_gives_one_line_naming_the_source_and_url_without_the_secret(
        served_firm, small_firm, monkeypatch):
    endpoints = small_firm / "endpoints.json"
    data = json.loads(endpoints.read_text())
    data["harvest"]["access_token"] = "wrong-token-do-not-print"
    endpoints.write_text(json.dumps(data))
    result = ingest(data_dir=small_firm.parent, sources=["harvest"], http=FAST_RETRY)
    assert len(result.errors) == 1
    line = result.errors[0]
    assert line.startswith("harvest: ") and "refused the credentials (HTTP 401)" in line
    assert served_firm.endpoints["harvest"]["base_url"] in line
    assert "SOURCES__HARVEST__ACCESS_TOKEN" in line
    assert "wrong-token-do-not-print" not in line

    monkeypatch.setenv("PSLAKE_DATA_DIR", str(small_firm.parent))
    out = CliRunner().invoke(app, ["ingest", "--source", "harvest"])
    assert out.exit_code == 1
    assert "error: harvest:" in out.output and "Traceback" not in out.output
    assert "wrong-token-do-not-print" not in out.output


def test_unreachable_vendor_says_which_url_and_what_to_set(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCES__HARVEST__BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SOURCES__HARVEST__ACCESS_TOKEN", "secret-token-value")
    monkeypatch.setenv("SOURCES__HARVEST__ACCOUNT_ID", "1")
    monkeypatch.setenv("SOURCES__HARVEST__RATE_LIMIT_CALLS", "1000")
    result = ingest(data_dir=tmp_path, sources=["harvest"],
                    http=HttpSettings(timeout_s=2, max_attempts=2, backoff_factor=0.01,
                                      max_retry_delay_s=0.1))
    assert result.errors == [
        "harvest: cannot reach http://127.0.0.1:9 (ConnectionError); "
        "check SOURCES__HARVEST__BASE_URL"]


def test_a_package_a_killed_run_left_behind_is_loaded_first(served_firm, small_firm):
    import dlt

    from ingestion.harvest import harvest_source

    # a run that died after its extract: the cursor moved, the data is only in dlt's folder
    data = small_firm.parent
    pipeline = dlt.pipeline(pipeline_name="pslake_harvest",
                            destination=dlt.destinations.duckdb(str(data / "warehouse.duckdb")),
                            dataset_name="raw_harvest", pipelines_dir=str(data / "dlt"))
    e = served_firm.endpoints["harvest"]
    pipeline.extract(harvest_source(base_url=e["base_url"], access_token=e["access_token"],
                                    account_id=e["account_id"],
                                    landing_dir=str(data / "landing")),
                     loader_file_format="parquet")
    assert pipeline.has_pending_data
    lines: list[str] = []
    result = ingest(data_dir=data, sources=["harvest"], http=FAST_RETRY, progress=lines.append)
    assert not result.errors, result.errors
    assert "harvest: finishing the load a previous run left pending" in lines
    assert _table(result, "time_entries").loaded == 0  # the cursor had already moved
    _warehouse_matches_store(small_firm)


def test_a_warehouse_held_by_another_process_is_one_line(served_firm, small_firm):
    import subprocess
    import sys

    _run(small_firm)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('open', flush=True); time.sleep(120)", str(small_firm.parent / "warehouse.duckdb")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(PslakeError, match=r"the warehouse \S+ is in use by another process "
                                            r"\(pid \d+\); wait for it to finish"):
            ingest(data_dir=small_firm.parent, sources=["harvest"], http=FAST_RETRY)
    finally:
        holder.kill()
        holder.wait()


def test_raw_pages_a_killed_run_left_in_the_landing_folder_are_removed(served_firm, small_firm):
    # a run killed between a page's download and its batch's parse leaves the page behind
    stale = small_firm.parent / "dlt" / "landing" / "harvest" / "time_entries-0dead0"
    stale.mkdir(parents=True)
    (stale / "0000000.json").write_bytes(b'{"time_entries": []}')
    _run(small_firm)
    assert not stale.exists()


@pytest.mark.unit
def test_rows_a_resumed_load_wrote_twice_lose_their_second_copy_and_nothing_else(tmp_path):
    from ingestion.pipeline import drop_replayed_rows

    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema raw_x")
        con.execute("create table raw_x.expenses (id bigint, amount decimal(12, 2), "
                    "_dlt_load_id varchar)")
        con.execute("insert into raw_x.expenses values "
                    "(1, 10, 'resumed'), (1, 10, 'resumed'), (2, 20, 'resumed'), "
                    "(2, 20, 'resumed'), (2, 20, 'resumed'), (3, 30, 'resumed'), "
                    "(4, 40, 'earlier'), (4, 40, 'earlier'), (5, 50, 'resumed'), "
                    "(5, 51, 'resumed')")  # same key, other content: a real second version
        con.execute("create table raw_x._dlt_loads (load_id varchar, status int)")
    assert drop_replayed_rows(warehouse, "raw_x", ["resumed"]) == 3
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select id, amount, _dlt_load_id from raw_x.expenses "
                           "order by 1, 2, 3").fetchall()
    assert [(i, int(a), load) for i, a, load in rows] == [
        (1, 10, "resumed"), (2, 20, "resumed"), (3, 30, "resumed"), (4, 40, "earlier"),
        (4, 40, "earlier"), (5, 50, "resumed"), (5, 51, "resumed")]
    assert drop_replayed_rows(warehouse, "raw_x", []) == 0
