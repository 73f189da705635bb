"""The benchmark harness: figures, machine details, the printed table and the records.

A benchmark is a function ``(ctx) -> list[Figure]``; ``benchmarks/run.py`` lists them. Each
figure names what was measured, the value, its unit, and the target the issue sets (if any).
Long steps run as subprocesses so that wall time and peak memory are the whole process's.

A run is recorded in ``benchmarks/results/`` (or another folder given) twice: as JSON
(``<stamp>-<size>.json``, every figure with its details) and as a Markdown report
(``<stamp>-<size>.md``: the machine, one table per benchmark group, the reliability battery's
tally when ``reliability.jsonl`` is there), with ``latest-<size>.md`` a copy of the newest report.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RELIABILITY_FILE = "reliability.jsonl"
# the packages whose version moves the figures
KEY_PACKAGES = ("pslake", "dlt", "duckdb", "dbt-core", "dbt-duckdb", "pyarrow", "polars",
                "orjson", "streamlit", "uvicorn", "starlette")
# the reliability battery's counters, summed per test (``survived`` counts runs that survived)
RELIABILITY_COUNTS = ("injected", "survived", "bad_inputs", "quarantined", "lost", "duplicates",
                      "leaked", "extra_calls")


@dataclass
class Figure:
    """One measured number."""

    name: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    group: str = ""  # the benchmark that measured it (run.py fills it in)


@dataclass
class Context:
    """What every benchmark gets: the size asked for and a scratch folder."""

    size: str
    work: Path
    python: str = sys.executable


@dataclass
class Run:
    """A finished subprocess: wall seconds, peak RSS of the process (MiB), output."""

    seconds: float
    peak_mib: float
    stdout: str
    returncode: int


def run_measured(cmd: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run a command and measure its wall time and its own peak resident memory."""
    started = time.monotonic()
    proc = subprocess.Popen(
        list(cmd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        text=True,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    return Run(seconds, usage.ru_maxrss / 1024, output, code)


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "os": _os_name(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit or None,
        "load_avg": os.getloadavg(),
        "self_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "packages": {name: _version(name) for name in KEY_PACKAGES},
    }


def _os_name() -> str:
    """The distribution's name (``Debian GNU/Linux 12 (bookworm)``), else the kernel's."""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}"


def _version(package: str) -> str | None:
    try:
        return package_version(package)
    except PackageNotFoundError:
        return None


def format_value(value: float) -> str:
    """A figure's value as the table and the report show it (``n/a`` when not measured)."""
    if math.isnan(value):
        return "n/a"
    if abs(value) < 10:  # sub-second page renders and ratios: keep two decimals
        return f"{value:,.2f}"
    return f"{value:,.1f}" if abs(value) < 1e6 else f"{value:,.0f}"


def print_table(figures: list[Figure]) -> None:
    """The human-readable table."""
    width = max((len(f.name) for f in figures), default=10)
    print(f"{'figure':<{width}}  {'value':>14}  {'unit':<12} {'target':<18} ok")
    print("-" * (width + 54))
    for f in figures:
        mark = "" if f.ok is None else ("yes" if f.ok else "NO")
        value = format_value(f.value)
        print(f"{f.name:<{width}}  {value:>14}  {f.unit:<12} {f.target:<18} {mark}")


def _stamp(started: dt.datetime) -> str:
    return started.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def write_results(
    size: str,
    figures: list[Figure],
    started: dt.datetime,
    results_dir: Path = RESULTS_DIR,
    machine_info: Mapping[str, Any] | None = None,
    failures: Mapping[str, str] | None = None,
) -> Path:
    """Write the figures as JSON under ``results_dir`` and return the path.

    Args:
        size: The firm size measured.
        figures: Every figure of the run.
        started: When the run began (names the file).
        results_dir: Where to write (default ``benchmarks/results/``).
        machine_info: The machine details (default: :func:`machine` now).
        failures: Benchmark -> its error, for benchmarks that broke.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{_stamp(started)}-{size}.json"
    path.write_text(
        json.dumps(
            {
                "size": size,
                "started": started.isoformat(timespec="seconds"),
                "machine": dict(machine_info or machine()),
                "figures": [asdict(f) for f in figures],
                "failures": dict(failures or {}),
            },
            indent=2,
            default=str,
        )
    )
    return path


# ---- the Markdown report ----------------------------------------------------------------------


def _cell(text: Any) -> str:
    """Text fit for a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _figure_row(f: Figure) -> str:
    name = f.name.strip()
    if f.name.startswith(" "):  # a figure derived from the one above it
        name = f"↳ {name}"
    ok = "" if f.ok is None else ("yes" if f.ok else "**NO**")
    return (f"| {_cell(name)} | {format_value(f.value)} | {_cell(f.unit)} | "
            f"{_cell(f.target)} | {ok} |")


def _machine_lines(info: Mapping[str, Any]) -> list[str]:
    memory = info.get("memory_gib")
    load = info.get("load_avg")
    lines = [
        "## Machine",
        "",
        f"- CPU: {info.get('cpu') or 'unknown'}",
        f"- Cores: {info.get('cores') or 'unknown'}",
        f"- Memory: {f'{memory} GiB' if memory is not None else 'unknown'}",
        f"- OS: {info.get('os') or 'unknown'} ({info.get('platform') or 'unknown'})",
        f"- Python: {info.get('python') or 'unknown'}",
        f"- Commit: {info.get('commit') or 'unknown'}",
    ]
    if load:
        lines.append(f"- Load average at the end: {', '.join(f'{x:.2f}' for x in load)}")
    packages: Mapping[str, Any] = info.get("packages") or {}
    if packages:
        listed = ", ".join(f"{name} {ver}" for name, ver in packages.items() if ver)
        lines.append(f"- Packages: {listed}")
    return lines


def read_reliability(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The reliability battery's records, and how many lines could not be read."""
    records: list[dict[str, Any]] = []
    unreadable = 0
    for text in path.read_text().splitlines():
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError:
            unreadable += 1
            continue
        if isinstance(record, dict) and record.get("test"):
            records.append(record)
        else:
            unreadable += 1
    return records, unreadable


def _count(value: Any) -> float:
    """A counter of a reliability record as a number (a flag is 0/1, a list its length)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, list | tuple | set):
        return len(value)
    if isinstance(value, dict):
        return sum(_count(v) for v in value.values())
    return 0


def reliability_totals(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per test (and ``total``): runs and the sum of each counter of RELIABILITY_COUNTS."""
    per_test: dict[str, dict[str, float]] = {}
    for record in records:
        for key in (str(record["test"]), "total"):
            row = per_test.setdefault(key, {"runs": 0, **dict.fromkeys(RELIABILITY_COUNTS, 0)})
            row["runs"] += 1
            for name in RELIABILITY_COUNTS:
                row[name] += _count(record.get(name))
    total = per_test.pop("total", None)
    ordered = dict(sorted(per_test.items()))
    if total is not None:
        ordered["total"] = total
    return ordered


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _reliability_lines(path: Path) -> list[str]:
    records, unreadable = read_reliability(path)
    totals = reliability_totals(records)
    lines = ["## Reliability battery", "",
             f"From `{path.name}`: {len(records)} runs of {max(len(totals) - 1, 0)} tests.", ""]
    if not records:
        return [*lines, "No runs recorded."]
    lines += ["| test | runs | injected | survived | lost | duplicates | leaked |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for test, row in totals.items():
        name = "**total**" if test == "total" else _cell(test)
        lines.append(f"| {name} | {_number(row['runs'])} | {_number(row['injected'])} | "
                     f"{_number(row['survived'])} | {_number(row['lost'])} | "
                     f"{_number(row['duplicates'])} | {_number(row['leaked'])} |")
    total = totals["total"]
    lines += ["", f"Also: {_number(total['bad_inputs'])} bad inputs, "
              f"{_number(total['quarantined'])} quarantined, "
              f"{_number(total['extra_calls'])} extra calls."]
    if unreadable:
        lines.append(f"{unreadable} line(s) of the file could not be read and are left out.")
    return lines


def render_report(
    size: str,
    figures: Sequence[Figure],
    started: dt.datetime,
    machine_info: Mapping[str, Any],
    reliability: Path | None = None,
    failures: Mapping[str, str] | None = None,
) -> str:
    """The Markdown report of a run.

    Args:
        size: The firm size measured.
        figures: Every figure of the run, in order; grouped by ``Figure.group``.
        started: When the run began.
        machine_info: The machine details (:func:`machine`).
        reliability: The reliability battery's JSON lines, if any were recorded.
        failures: Benchmark -> its error, for benchmarks that broke.
    """
    when = started.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# pslake benchmarks: {size}, {when}", "", *_machine_lines(machine_info)]
    groups: dict[str, list[Figure]] = {}
    for f in figures:
        groups.setdefault(f.group or "other", []).append(f)
    for group, members in groups.items():
        lines += ["", f"## {group}", "", "| figure | value | unit | target | ok |",
                  "|---|---:|---|---|---|"]
        lines += [_figure_row(f) for f in members]
        notes = [f"- {f.name.strip()}: skipped ({f.detail['skipped']})"
                 for f in members if f.detail.get("skipped")]
        if notes:
            lines += ["", *notes]
    if not figures:
        lines += ["", "No figures were measured."]
    if failures:
        lines += ["", "## Benchmarks that failed", ""]
        lines += [f"- {name}: {_cell(error)}" for name, error in failures.items()]
    if reliability is not None and reliability.exists():
        lines += ["", *_reliability_lines(reliability)]
    return "\n".join(lines) + "\n"


def write_report(
    size: str,
    figures: Sequence[Figure],
    started: dt.datetime,
    results_dir: Path = RESULTS_DIR,
    machine_info: Mapping[str, Any] | None = None,
    failures: Mapping[str, str] | None = None,
) -> Path:
    """Write the Markdown report beside the JSON and copy it to ``latest-<size>.md``.

    The reliability battery's tally is included when ``results_dir/reliability.jsonl`` exists.

    Returns:
        The report's path (``<stamp>-<size>.md``).
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    text = render_report(size, figures, started, machine_info or machine(),
                         results_dir / RELIABILITY_FILE, failures)
    path = results_dir / f"{_stamp(started)}-{size}.md"
    path.write_text(text)
    latest = results_dir / f"latest-{size}.md"
    partial = results_dir / f".latest-{size}.md.partial"
    shutil.copyfile(path, partial)
    os.replace(partial, latest)
    return path


Benchmark = Callable[[Context], list[Figure]]
