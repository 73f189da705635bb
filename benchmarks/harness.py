"""The benchmark harness: figures, machine details, the printed table and the JSON record.

A benchmark is a function ``(ctx) -> list[Figure]``; ``benchmarks/run.py`` lists them. Each
figure names what was measured, the value, its unit, and the target the issue sets (if any).
Long steps run as subprocesses so that wall time and peak memory are the whole process's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Figure:
    """One measured number."""

    name: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)


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
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit or None,
        "load_avg": os.getloadavg(),
        "self_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def print_table(figures: list[Figure]) -> None:
    """The human-readable table."""
    width = max((len(f.name) for f in figures), default=10)
    print(f"{'figure':<{width}}  {'value':>14}  {'unit':<12} {'target':<18} ok")
    print("-" * (width + 54))
    for f in figures:
        mark = "" if f.ok is None else ("yes" if f.ok else "NO")
        value = f"{f.value:,.1f}" if abs(f.value) < 1e6 else f"{f.value:,.0f}"
        print(f"{f.name:<{width}}  {value:>14}  {f.unit:<12} {f.target:<18} {mark}")


def write_results(size: str, figures: list[Figure], started: dt.datetime) -> Path:
    """Write the figures as JSON under ``benchmarks/results/`` and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{stamp}-{size}.json"
    path.write_text(
        json.dumps(
            {
                "size": size,
                "started": started.isoformat(timespec="seconds"),
                "machine": machine(),
                "figures": [asdict(f) for f in figures],
            },
            indent=2,
        )
    )
    return path


Benchmark = Callable[[Context], list[Figure]]
