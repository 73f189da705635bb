"""The reliability battery (shared/RELIABILITY.md): its tests live in this package, and this
module keeps its record, one JSON line per test run.

Each battery test asserts its invariants (lost = 0, duplicates = 0, ...) and also calls
``record(...)`` with what it injected and what it counted, which appends one line to
``benchmarks/results/reliability.jsonl`` (``$PSLAKE_RELIABILITY_LOG`` moves it). ``make bench``
summarises the file; ``summary()`` makes the one-screen summary the test run prints at its end
(``tests/conftest.py``, ``pytest_terminal_summary``), from the lines this run wrote.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LOG_ENV = "PSLAKE_RELIABILITY_LOG"
DEFAULT_LOG = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "reliability.jsonl"
# one id per test session, so the summary counts this run's lines only (set in the parent
# process and inherited by xdist workers and subprocesses)
RUN_ENV = "PSLAKE_RELIABILITY_RUN"
# the tests whose injections are process kills (SIGKILL / SIGTERM)
KILL_TESTS = ("ingest_kill_anywhere_resume", "ingest_workdir_loss", "ingest_sigterm_drain",
              "sync_kill_anywhere_no_double_write", "scheduler_single_flight")
COUNTS = ("injected", "survived", "bad_inputs", "quarantined", "lost", "duplicates",
          "leaked", "extra_calls")


def log_path() -> Path:
    """Where the lines go."""
    return Path(os.environ.get(LOG_ENV) or DEFAULT_LOG)


def run_id() -> str:
    """This test session's id (made on first use)."""
    return os.environ.setdefault(RUN_ENV, uuid.uuid4().hex[:12])


def record(test: str, *, seed: int | None = None, injected: int = 0, survived: int = 0,
           bad_inputs: int = 0, quarantined: int | dict[str, int] = 0, lost: int = 0,
           duplicates: int = 0, leaked: int = 0, extra_calls: int = 0,
           **figures: Any) -> dict[str, Any]:
    """Append one test's figures as a JSON line and return it.

    Args:
        test: The battery's name for the test (``ingest_http_fault_storm``).
        seed: The seed of the run, when it has one.
        injected: Faults, kills or bad inputs injected.
        survived: Of those, how many the system came through with its invariants intact.
        bad_inputs: Malformed records or hostile values tried.
        quarantined: Records quarantined (a count, or counts by reason).
        lost: Records lost (the tests assert 0).
        duplicates: Duplicate rows or vendor writes (the tests assert 0).
        leaked: Secrets, PII or another entity's rows found where they must not be (0).
        extra_calls: Calls beyond the fault-free run's (retries, read-backs, bisection).
        **figures: The test's own figures (retries, worst early retry, ...).
    """
    line = {"test": test, "seed": seed, "injected": injected, "survived": survived,
            "bad_inputs": bad_inputs, "quarantined": quarantined, "lost": lost,
            "duplicates": duplicates, "leaked": leaked, "extra_calls": extra_calls, **figures,
            "run": run_id(), "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:  # one write of one line: appends from workers do not interleave
        out.write(json.dumps(line, default=str) + "\n")
    return line


def lines(path: Path | None = None, run: str | None = None) -> list[dict[str, Any]]:
    """The recorded lines (of one run, when given); unreadable lines are skipped."""
    found = []
    try:
        text = (path or log_path()).read_text()
    except FileNotFoundError:
        return []
    for raw in text.splitlines():
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if isinstance(item, dict) and (run is None or item.get("run") == run):
            found.append(item)
    return found


def _count(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_count(v) for v in value.values())
    if isinstance(value, bool):
        return int(value)
    return int(value or 0)


def summary(items: Iterable[dict[str, Any]]) -> list[str]:
    """The one-screen summary: a line per test, then the totals and the headline figures."""
    by_test: dict[str, dict[str, int]] = {}
    reasons: dict[str, int] = {}
    for item in items:
        totals = by_test.setdefault(str(item.get("test")), dict.fromkeys(("runs", *COUNTS), 0))
        totals["runs"] += 1
        for name in COUNTS:
            totals[name] += _count(item.get(name))
        if isinstance(item.get("quarantined"), dict):
            for reason, count in item["quarantined"].items():
                reasons[reason] = reasons.get(reason, 0) + _count(count)
    if not by_test:
        return []
    widths = {"runs": 5, "injected": 9, "survived": 9, "bad_inputs": 7, "quarantined": 8,
              "lost": 5, "duplicates": 5, "leaked": 7, "extra_calls": 7}
    titles = {"bad_inputs": "bad in", "quarantined": "quarant", "duplicates": "dups",
              "extra_calls": "extra"}

    def row(name: str, figures: dict[str, int]) -> str:
        return f"{name:<38}" + "".join(f"{figures[k]:>{w + 1},}" for k, w in widths.items())

    out = ["reliability battery (benchmarks/results/reliability.jsonl)",
           f"{'test':<38}" + "".join(f"{titles.get(k, k):>{w + 1}}" for k, w in widths.items())]
    grand = dict.fromkeys(("runs", *COUNTS), 0)
    for test, figures in sorted(by_test.items()):
        out.append(row(test, figures))
        for name in grand:
            grand[name] += figures[name]
    out.append(row("all", grand))
    kills = [figures for test, figures in by_test.items() if test in KILL_TESTS]
    out.append(f"kills survived {sum(k['survived'] for k in kills):,} of "
               f"{sum(k['injected'] for k in kills):,}; quarantined by reason: "
               + (", ".join(f"{reason} {count:,}" for reason, count in
                            sorted(reasons.items(), key=lambda r: -r[1])[:4])
                  + (f" and {len(reasons) - 4} more" if len(reasons) > 4 else "")
                  if reasons else "none recorded"))
    out.append(f"injected (faults, kills, discrepancies) {grand['injected']:,}, came through "
               f"{grand['survived']:,}; "
               f"bad inputs tried {grand['bad_inputs']:,}, quarantined "
               f"{grand['quarantined']:,}; lost {grand['lost']}, duplicated "
               f"{grand['duplicates']}, leaked {grand['leaked']}")
    return out
