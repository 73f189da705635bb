"""Scheduled runs: ingest -> transform -> sync apply, on a cron expression, never two at once.

Each step runs as its own ``pslake`` process (memory is returned between steps, and a step that
crashes cannot take the scheduler down); its output goes to ``DATA_DIR/logs/run-<time>.log``
and the scheduler prints one line per run. A run takes ``DATA_DIR/run.lock`` (an OS lock: a
crashed run releases it; the step processes share it, so a scheduler killed mid-run keeps the
lock until its step has finished too), so a run still going when the next one is due, or a
second scheduler, or a cron job calling ``pslake schedule --once``, skips instead of
overlapping.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from croniter import croniter  # type: ignore[import-untyped]

from pslake import settings
from pslake.errors import PslakeError

STEPS: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest",),
    "transform": ("transform",),
    "sync": ("sync", "apply", "--limit", "20"),
}
DEFAULT_STEPS = ("ingest", "transform", "sync")
LOCK_FILE = "run.lock"


@dataclass(slots=True)
class RunResult:
    """One scheduled run: its steps' times and exit codes, and where its log is."""

    started: dt.datetime
    log: Path
    steps: list[tuple[str, float, int]] = field(default_factory=list)
    skipped: bool = False

    @property
    def ok(self) -> bool:
        """Every step exited 0 (a skipped run is not a failure)."""
        return all(code == 0 for _, _, code in self.steps)

    def line(self) -> str:
        """The run as one log line."""
        stamp = f"{self.started:%Y-%m-%d %H:%M:%S}Z"
        if self.skipped:
            return f"{stamp} skipped: a previous run still holds the lock"
        parts = ", ".join(f"{name} {seconds:.1f}s" + ("" if code == 0 else f" (exit {code})")
                          for name, seconds, code in self.steps)
        return f"{stamp} {'ok' if self.ok else 'FAILED'}: {parts}; log {self.log}"


def parse_cron(expression: str) -> None:
    """Check a cron expression (5 fields; a 6th field for seconds is accepted).

    Raises:
        PslakeError: Not a valid expression.
    """
    fields = expression.split()
    if len(fields) not in (5, 6) or not croniter.is_valid(expression):
        raise PslakeError(f"--cron {expression!r} is not a cron expression "
                          "(five fields, e.g. '*/15 * * * *')")


@contextmanager
def run_lock(data_dir: Path) -> Iterator[bool]:
    """Try to take the run lock; yields whether it was taken."""
    with _run_lock(data_dir) as handle:
        yield handle is not None


@contextmanager
def _run_lock(data_dir: Path) -> Iterator[TextIO | None]:
    """Try to take the run lock; yields the locked file (None when another run holds it).

    The steps get the file too (``pass_fds``): a lock is held by its open file, so it stays
    taken until the scheduler *and* the step it started are gone. A scheduler killed mid-run
    (SIGKILL) then leaves its step to finish under the lock, and the next run waits for it
    instead of overlapping it.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _new_log(logs: Path, started: dt.datetime) -> TextIO:
    """Create this run's log file.

    A name a run already used (the clock stepped back) gets a suffix: every run has its own log.
    """
    stem = f"run-{started:%Y%m%dT%H%M%SZ}"
    for n in range(1, 1000):
        try:
            return open(logs / (stem + ("" if n == 1 else f"-{n}") + ".log"), "x")
        except FileExistsError:
            continue
    raise PslakeError(f"{logs}: too many run logs named {stem}*.log")


def run_once(data_dir: Path | None = None, steps: Sequence[str] = DEFAULT_STEPS,
             echo: Callable[[str], None] | None = None) -> RunResult:
    """Run the steps in order, each a ``pslake`` process; stop at the first that fails.

    Args:
        data_dir: The data folder (``--data-dir`` / ``$PSLAKE_DATA_DIR`` / ``data``).
        steps: Names from ``STEPS``, in order.
        echo: Also called with each line the steps print, and a heading per step (``pslake
            run`` shows them on the terminal); the log file gets them either way.
    """
    root = settings.data_dir(data_dir).resolve()
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise PslakeError(f"unknown step(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(STEPS)}")
    started = dt.datetime.now(dt.UTC)
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    result = RunResult(started, logs / f"run-{started:%Y%m%dT%H%M%SZ}.log")
    with _run_lock(root) as lock:
        if lock is None:
            result.skipped = True
            return result
        keep = (lock.fileno(),)  # the step holds the lock too (see _run_lock)
        with _new_log(logs, started) as log:
            result.log = Path(log.name)
            for name in steps:
                command = [sys.executable, "-m", "pslake", "--data-dir", str(root), *STEPS[name]]
                heading = f"$ pslake {' '.join(STEPS[name])}"
                log.write(heading + "\n")
                log.flush()
                t0 = time.monotonic()
                if echo is None:
                    code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                          check=False, pass_fds=keep).returncode
                else:
                    echo(heading)
                    code = _relay(command, log, echo, keep)
                result.steps.append((name, time.monotonic() - t0, code))
                if code != 0:
                    break
    return result


def _relay(command: list[str], log: TextIO, echo: Callable[[str], None],
           keep: tuple[int, ...]) -> int:
    """Run ``command``, writing each line it prints to the log and to ``echo``."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1, pass_fds=keep) as process:
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            echo(line.rstrip("\n"))
        log.flush()
        return process.wait()


def schedule(expression: str, data_dir: Path | None = None,
             steps: Sequence[str] = DEFAULT_STEPS, max_runs: int | None = None,
             say: Callable[[str], None] = print,
             sleep: Callable[[float], None] = time.sleep) -> int:
    """Run on the cron schedule until interrupted (or ``max_runs``); returns failed runs."""
    parse_cron(expression)
    runs = failed = 0
    say(f"schedule: {expression!r}, steps {' -> '.join(steps)}; Ctrl-C stops")
    while max_runs is None or runs < max_runs:
        # the next time from now: times a long run overran are skipped, not caught up
        due = croniter(expression, dt.datetime.now(dt.UTC)).get_next(dt.datetime)
        wait = (due - dt.datetime.now(dt.UTC)).total_seconds()
        if wait > 0:
            sleep(wait)
        result = run_once(data_dir, steps)
        runs += 1
        failed += 0 if result.ok else 1
        say(result.line())
    return failed
