"""Reverse-sync figures: time and calls to apply 10,000 and 100,000 changes at HubSpot's limit.

Runs on the firm and warehouse of the transform benchmark (``--work``/ingest-<size>). Steps, in
a private copy of the CRM store (the other vendors' files are hard links, never written):

1. ``pslake sync apply`` once without a rate limit, so the CRM holds everything pslake writes;
2. a bad import empties the ERP fields of N / 8 invoice mirrors in the CRM (8 fields each);
3. ``pslake sync apply`` again, measured, with the sandbox enforcing HubSpot's real limit
   (190 calls per 10 s), in a fresh process.

The lower bound is the write calls the changes need (100 records a call) at the allowed rate;
the run's own figure also pays a re-read per batch (conflict check) and the plan's reads.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import urllib.request
from pathlib import Path

from benchmarks.harness import Context, Figure, run_measured
from benchmarks.sandbox_bench import _start_server, store_for

CLEARED = ("invoice_number", "invoice_status", "invoice_amount", "amount_paid", "amount_due",
           "currency", "invoice_date", "due_date")
CALLS, WINDOW_S = 190, 10.0  # HubSpot Professional (vendor-apis.md 1.11); the sandbox's default
BATCH = 100
# Closed-period invoice fields would wait for approval; the figure is about throughput.
POLICY = """
[hold]
in_closed_period = []
"""


def _private_store(source: Path, target: Path) -> None:
    """Copy the CRM's file; hard-link the rest (the sync never writes them)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.name == "endpoints.json" or item.is_dir():
            continue
        if item.name.startswith("hubspot.sqlite"):
            shutil.copy2(item, target / item.name)
        else:
            os.link(item, target / item.name)


def _serve(store: Path, faults: str) -> tuple[subprocess.Popen[bytes], str]:
    proc, endpoints = _start_server(store, faults)
    return proc, endpoints["hubspot"]["base_url"].rsplit("/hubspot", 1)[0]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=60)


def _stats(root: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{root}/_sandbox/stats", timeout=30) as response:
        stats: dict[str, object] = json.loads(response.read())["vendors"]["hubspot"]
    return stats


def _apply(ctx: Context, data: Path, policy: Path) -> tuple[float, float, str]:
    run = run_measured([ctx.python, "-m", "pslake", "--data-dir", str(data), "sync", "apply",
                        "--limit", "0"], env={"PSLAKE_SYNC_POLICY": str(policy),
                                              "PSLAKE_ACTOR": "bench"})
    if run.returncode != 0:
        raise RuntimeError(f"pslake sync apply failed:\n{run.stdout[-3000:]}")
    return run.seconds, run.peak_mib, run.stdout


def _empty_invoice_fields(store: Path, invoices: int) -> int:
    paths = ", ".join(f"'$.{name}'" for name in CLEARED)
    with sqlite3.connect(store / "hubspot.sqlite") as db:
        ids = [r[0] for r in db.execute(
            "select id from objects where object_type = 'erp_invoices' and archived = 0 "
            "order by id limit ?", (invoices,))]
        db.executemany(f"update objects set properties = json_remove(properties, {paths}) "
                       "where object_type = 'erp_invoices' and id = ?", [(i,) for i in ids])
    return len(ids)


def sync(ctx: Context) -> list[Figure]:
    """Apply 10,000 (and, when the firm is big enough, 100,000) changes at HubSpot's limit."""
    firm = store_for(ctx, ctx.size)
    ingest = ctx.work / f"ingest-{ctx.size}"
    warehouse = ingest / "warehouse.duckdb"
    if not warehouse.exists():
        raise RuntimeError(f"no warehouse in {ingest}: run ingestion and transform first")
    with sqlite3.connect(firm / "hubspot.sqlite") as db:
        mirrors = db.execute("select count(*) from objects where object_type = 'erp_invoices' "
                             "and archived = 0").fetchone()[0]
    figures: list[Figure] = []
    for changes in (10_000, 100_000):
        invoices = math.ceil(changes / len(CLEARED))
        if invoices > mirrors:
            figures.append(Figure(f"sync apply {changes:,} changes", float("nan"), "s",
                                  "", None, {"skipped": f"the {ctx.size} firm has "
                                             f"{mirrors:,} invoice mirrors, {invoices:,} needed"}))
            continue
        data = ctx.work / f"sync-{ctx.size}-{changes}"
        shutil.rmtree(data, ignore_errors=True)
        store = data / "sandbox"
        _private_store(firm, store)
        (data / "warehouse.duckdb").symlink_to(warehouse)
        policy = data / "policy.toml"
        policy.write_text(POLICY)
        proc, _root = _serve(store, "")
        try:
            _apply(ctx, data, policy)  # the CRM catches up with everything pslake writes
        finally:
            _stop(proc)
        emptied = _empty_invoice_fields(store, invoices)
        proc, root = _serve(store, "rate_limit,vendors=hubspot")
        try:
            seconds, peak, output = _apply(ctx, data, policy)
            stats = _stats(root)
        finally:
            _stop(proc)
        endpoints: dict[str, int] = stats["endpoints"]  # type: ignore[assignment]
        statuses: dict[str, int] = stats["statuses"]  # type: ignore[assignment]
        writes = sum(n for k, n in endpoints.items() if k.endswith(("/batch/upsert",
                                                                     "/batch/update")))
        reads = sum(n for k, n in endpoints.items() if k.endswith("/batch/read"))
        needed = math.ceil(emptied / BATCH)
        bound = needed / (CALLS / WINDOW_S)
        all_calls_bound = (writes + reads) / (CALLS / WINDOW_S)
        summary = output.strip().splitlines()[-1]
        figures += [
            Figure(f"sync apply {emptied * len(CLEARED):,} changes at 190 calls / 10 s",
                   seconds, "s", "", None,
                   {"peak_mib": peak, "summary": summary, "status_429": statuses.get("429", 0),
                    "records": emptied}),
            Figure("  write calls (batches of 100 records)", writes, "calls",
                   f"<= {math.ceil(changes / BATCH)}", writes <= math.ceil(changes / BATCH)),
            Figure("  read calls (plan reads + a re-read per batch)", reads, "calls", "", None),
            Figure("  lower bound: write calls needed / allowed rate", bound, "s", "", None,
                   {"write_calls_needed": needed}),
            Figure("  time / lower bound", seconds / bound, "x", "", None,
                   {"all_calls_at_the_limit_s": round(all_calls_bound, 1)}),
        ]
    return figures
