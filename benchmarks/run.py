"""``make bench``: measure every figure the issues ask for and record them.

Usage: ``python -m benchmarks.run [--size small|medium|enterprise] [--only NAME ...]``.
Prints a table and writes to ``benchmarks/results/`` (``--results`` for another folder):
``<time>-<size>.json`` (every figure, its details, the machine) and ``<time>-<size>.md`` (the
machine, a table per benchmark, the reliability battery's tally when ``reliability.jsonl`` is
there), with ``latest-<size>.md`` a copy of the newest report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import ingest_bench, pages_bench, sandbox_bench, sync_bench, transform_bench
from benchmarks.harness import (
    RESULTS_DIR,
    Benchmark,
    Context,
    Figure,
    machine,
    print_table,
    write_report,
    write_results,
)

BENCHMARKS: dict[str, Benchmark] = {
    "generation": sandbox_bench.generation,
    "serving": sandbox_bench.serving,
    "ingestion": ingest_bench.ingestion,
    "transform": transform_bench.transform,
    "pages": pages_bench.pages,
    "sync": sync_bench.sync,
}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="medium", choices=("small", "medium", "enterprise"))
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), default=None)
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="Scratch folder (default: a temporary one, removed at the end).",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS_DIR,
        help="Where the JSON and Markdown records go (default: benchmarks/results/).",
    )
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    work = args.work or Path(tempfile.mkdtemp(prefix="pslake-bench-"))
    ctx = Context(size=args.size, work=work)
    figures: list[Figure] = []
    failures: dict[str, str] = {}
    try:
        for name, bench in BENCHMARKS.items():
            if args.only and name not in args.only:
                continue
            print(f"== {name}", flush=True)
            t0 = time.monotonic()
            try:
                measured = bench(ctx)
            except Exception as exc:  # report the rest even if one benchmark breaks
                failures[name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
                print(f"   {name} failed: {exc}", file=sys.stderr)
            else:
                for figure in measured:
                    figure.group = figure.group or name
                figures += measured
            print(f"   {time.monotonic() - t0:.1f}s", flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print_table(figures)
    info = machine()  # once, so that the JSON and the report agree
    json_path = write_results(args.size, figures, started, args.results, info, failures)
    report = write_report(args.size, figures, started, args.results, info, failures)
    print(f"\nwritten: {json_path}")
    print(f"report: {report}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
