"""dbt figures: a full build, an incremental one after 1% change, the reconciliation's score.

A full ``dbt build`` of the firm, an incremental one after 1% of time entries changed, and the
reconciliation's score against the manifest after each.

Runs on the warehouse the ingestion benchmark loaded (``--work``/ingest-<size>); each
``pslake transform`` runs in a fresh, measured process.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from benchmarks.harness import Context, Figure, run_measured
from benchmarks.ingest_bench import CHANGED_SHARE, _change_time_entries, _ingest
from benchmarks.sandbox_bench import _start_server, store_for
from sandbox.score import score


def _transform(ctx: Context, data: Path, as_of: str, *extra: str) -> tuple[float, float]:
    run = run_measured([ctx.python, "-m", "pslake", "--data-dir", str(data), "transform",
                        "--as-of", as_of, *extra])
    if run.returncode != 0:
        raise RuntimeError(f"pslake transform failed:\n{run.stdout[-4000:]}")
    return run.seconds, run.peak_mib


def _score_figures(label: str, store: Path, warehouse: Path) -> list[Figure]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        found = set(con.execute(
            "select exception_type, record_ref from marts.rec_exceptions").fetchall())
    result = score(store, found)
    detail = {"expected": len(result.expected), "found": len(result.found),
              "missing": sorted(result.missing)[:20], "extra": sorted(result.extra)[:20]}
    return [
        Figure(f"  reconciliation recall ({label})", result.recall * 100, "%", "100 %",
               result.recall == 1.0, detail),
        Figure(f"  reconciliation precision ({label})", result.precision * 100, "%", "100 %",
               result.precision == 1.0),
    ]


def transform(ctx: Context) -> list[Figure]:
    """Full build, the reconciliation score, then the 1% incremental build and its score."""
    store = store_for(ctx, ctx.size)
    data = ctx.work / f"ingest-{ctx.size}"
    warehouse = data / "warehouse.duckdb"
    if not warehouse.exists():
        raise RuntimeError(f"no warehouse in {data}: run the ingestion benchmark first")
    as_of = json.loads((store / "firm.json").read_text())["as_of"]

    full_s, full_mib = _transform(ctx, data, as_of, "--full-refresh")
    figures = [Figure(f"dbt build {ctx.size}: full (pslake transform --full-refresh)", full_s,
                      "s", "", None, {"peak_mib": full_mib})]
    figures += _score_figures("full build", store, warehouse)

    proc, _endpoints = _start_server(store)
    try:
        changed = _change_time_entries(store, CHANGED_SHARE)
        ingest_run, _report = _ingest(ctx, data, ctx.work / "transform-ingest.json")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    inc_s, inc_mib = _transform(ctx, data, as_of)
    figures += [
        Figure(f"dbt build {ctx.size}: incremental after {CHANGED_SHARE:.0%} of time entries "
               "changed", inc_s, "s", "", None,
               {"changed": changed, "ingest_seconds": ingest_run.seconds, "peak_mib": inc_mib}),
        Figure("  incremental / full build", inc_s / full_s * 100, "%", "", None),
    ]
    figures += _score_figures("after the incremental", store, warehouse)
    return figures
