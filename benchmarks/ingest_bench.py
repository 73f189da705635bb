"""Ingestion figures: full-load throughput beside DuckDB's own limit, the 1% incremental, memory.

The sandbox serves the bench's firm from its own process; ``pslake ingest`` runs in a fresh
process whose wall time and peak RSS are measured. The physical limit is measured in the same
run: the pages of the big tables are saved to disk as the vendors serve them, and DuckDB's
``read_json`` loads them into a table (again in a fresh, measured process).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import requests

from benchmarks.harness import Context, Figure, run_measured
from benchmarks.sandbox_bench import NEXT_LINK, _start_server, store_for

CHANGED_SHARE = 0.01
MEMORY_LIMIT_MIB = 2048
NETSUITE_LIMIT_TABLES = {"timebill": "id", "transactionline": "uniquekey", "transaction": "id"}

_READ_JSON = """
import sys, time, duckdb
folder = sys.argv[1]
con = duckdb.connect(folder + '/limit.duckdb')
started = time.monotonic()
total = 0
for name, key in [('harvest_time_entries', 'time_entries'), ('harvest_expenses', 'expenses'),
                  ('netsuite_timebill', 'items'), ('netsuite_transactionline', 'items'),
                  ('netsuite_transaction', 'items')]:
    con.execute(f"CREATE TABLE {name} AS SELECT unnest({key}, recursive := true) "
                f"FROM read_json('{folder}/{name}/*.json', maximum_object_size=16777216)")
    total += con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
print(total, time.monotonic() - started)
"""


def _ingest(ctx: Context, data: Path, report: Path, *extra: str) -> tuple[Any, dict[str, Any]]:
    run = run_measured([ctx.python, "-m", "pslake", "--data-dir", str(data), "ingest",
                        "--report", str(report), *extra], env={"RUNTIME__LOG_LEVEL": "ERROR"})
    if run.returncode != 0:
        raise RuntimeError(f"pslake ingest failed:\n{run.stdout[-3000:]}")
    return run, json.loads(report.read_text())


def _records(report: dict[str, Any]) -> int:
    return sum(t["received"] for v in report["vendors"].values() for t in v["tables"].values())


def _save_pages(endpoints: dict[str, dict[str, str]], folder: Path) -> int:
    """Save the big tables' pages as the vendors serve them (not timed)."""
    saved = 0
    hv = endpoints["harvest"]
    headers = {"Authorization": f"Bearer {hv['access_token']}",
               "Harvest-Account-Id": hv["account_id"], "User-Agent": "pslake-bench"}
    with requests.Session() as http:
        for name in ("time_entries", "expenses"):
            target = folder / f"harvest_{name}"
            target.mkdir(parents=True, exist_ok=True)
            url: str | None = f"{hv['base_url']}/v2/{name}?per_page=2000"
            page = 0
            while url:
                body = http.get(url, headers=headers, timeout=120).content
                (target / f"{page:06d}.json").write_bytes(body)
                page += 1
                match = NEXT_LINK.search(body, max(0, len(body) - 4096))
                url = match.group(2).decode() if match and match.group(2) else None
            saved += page
        ns = endpoints["netsuite"]
        headers = {"Authorization": f"Bearer {ns['access_token']}", "Prefer": "transient"}
        for table, key in NETSUITE_LIMIT_TABLES.items():
            target = folder / f"netsuite_{table}"
            target.mkdir(parents=True, exist_ok=True)
            last, page = 0, 0
            while True:
                body = http.post(
                    f"{ns['base_url']}/services/rest/query/v1/suiteql?limit=1000",
                    headers=headers, timeout=120,
                    json={"q": f'SELECT * FROM "{table}" WHERE {key} > {last} ORDER BY {key}'},
                ).content
                items = orjson.loads(body)["items"]
                if not items:
                    break
                (target / f"{page:06d}.json").write_bytes(body)
                page += 1
                last = int(items[-1][key])
                if len(items) < 1000:
                    break
            saved += page
    return saved


def _open_from(store: Path) -> str:
    """The first day no closed accounting period covers, as of the firm's date."""
    firm = json.loads((store / "firm.json").read_text())
    as_of = dt.date.fromisoformat(firm["as_of"])
    closes_after = firm["rules"]["period_closes_days_after_month_end"]
    month = as_of.replace(day=1)
    # last month closes `closes_after` days into this month
    return (month if as_of.day > closes_after else (month - dt.timedelta(days=1)).replace(
        day=1)).isoformat()


def _change_time_entries(store: Path, share: float) -> int:
    """Edit a share of all time entries, as people editing this period's timesheets would.

    The edits (a note) fall on entries of the open accounting period, so they create no new
    discrepancy (an entry changed after its period closed would be one) and the reconciliation
    can still be scored against the manifest after the incremental run.
    """
    con = sqlite3.connect(store / "harvest.sqlite")
    try:
        total = con.execute("select count(*) from time_entries").fetchone()[0]
        wanted = max(round(total * share), 1)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        changed = con.execute(
            "update time_entries set notes = coalesce(notes, '') || ' (edited)', updated_at = ? "
            "where id in (select id from time_entries where spent_date >= ? order by id "
            "limit ?)", (stamp, _open_from(store), wanted)).rowcount
        con.commit()
    finally:
        con.close()
    return int(changed)


def ingestion(ctx: Context) -> list[Figure]:
    """Full load, the physical limit beside it, the 1% incremental and peak memory."""
    store = store_for(ctx, ctx.size)
    if not (store / "firm.json").exists():
        raise RuntimeError(f"no {ctx.size} firm in {store}: run the generation benchmark first")
    data = ctx.work / f"ingest-{ctx.size}"
    data.mkdir(parents=True, exist_ok=True)
    link = data / "sandbox"
    if not link.exists():
        link.symlink_to(store.resolve())
    for stale in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        (data / stale).unlink(missing_ok=True)
    proc, endpoints = _start_server(store)
    figures: list[Figure] = []
    try:
        full, report = _ingest(ctx, data, ctx.work / "ingest-full.json", "--full-refresh")
        records = _records(report)
        rate = records / full.seconds
        per_vendor = {v: {"seconds": d["seconds"], "records": sum(
            t["received"] for t in d["tables"].values())} for v, d in report["vendors"].items()}

        pages = ctx.work / f"pages-{ctx.size}"
        shutil.rmtree(pages, ignore_errors=True)
        saved = _save_pages(endpoints, pages)
        limit_run = run_measured([sys.executable, "-c", _READ_JSON, str(pages)])
        if limit_run.returncode != 0:
            raise RuntimeError(f"read_json limit failed:\n{limit_run.stdout[-2000:]}")
        limit_records, limit_seconds = limit_run.stdout.split()[-2:]
        limit_rate = int(limit_records) / float(limit_run.seconds)
        share = rate / limit_rate
        figures += [
            Figure(f"ingest {ctx.size}: full load, all three vendors", rate, "records/s", "",
                   None, {"records": records, "seconds": full.seconds, "vendors": per_vendor}),
            Figure(f"  limit: DuckDB read_json of the same big tables' pages ({saved} pages)",
                   limit_rate, "records/s", "", None,
                   {"records": int(limit_records), "process_seconds": limit_run.seconds,
                    "read_seconds": float(limit_seconds)}),
            Figure("  ingestion / limit", share * 100, "%", ">= 25 %", share >= 0.25),
            Figure(f"ingest {ctx.size}: full load peak memory", full.peak_mib, "MiB",
                   f"< {MEMORY_LIMIT_MIB} MiB", full.peak_mib < MEMORY_LIMIT_MIB),
        ]

        changed = _change_time_entries(store, CHANGED_SHARE)
        incremental, inc_report = _ingest(ctx, data, ctx.work / "ingest-incremental.json")
        loaded = inc_report["vendors"]["harvest"]["tables"]["time_entries"]["loaded"]
        ratio = incremental.seconds / full.seconds
        figures += [
            Figure(f"ingest {ctx.size}: incremental after {CHANGED_SHARE:.0%} of time entries "
                   "changed", incremental.seconds, "s", "", None,
                   {"changed": changed, "loaded": loaded, "peak_mib": incremental.peak_mib}),
            Figure("  incremental / full load", ratio * 100, "%", "<= 10 %", ratio <= 0.10),
        ]
        if loaded != changed:
            raise RuntimeError(f"incremental loaded {loaded} time entries, {changed} changed")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return figures
