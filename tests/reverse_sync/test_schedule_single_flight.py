"""Battery test 22, ``scheduler_single_flight``: two schedulers on one data folder never run at
once, a lock left by a killed scheduler is taken over, and every run logs one line, even when
the clock jumps.

Overlaps are seen from outside: a watcher thread lists the step processes (``pslake ... sync
apply``) of the schedulers every few milliseconds and counts how many are alive at once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from pslake import schedule as schedule_module
from tests.reliability import record
from tests.reverse_sync.conftest import Crm

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUN_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ (ok|FAILED|skipped)\b")
EVERY_SECOND = "* * * * * *"  # croniter's sixth field is seconds


class Scheduler:
    """A `pslake schedule` process whose lines the test reads as they come."""

    def __init__(self, crm: Crm, cron: str, max_runs: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pslake", "--data-dir", str(crm.data_dir), "schedule",
             "--cron", cron, "--steps", "sync", "--max-runs", str(max_runs)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PSLAKE_ACTOR": "scheduler", "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def runs(self, outcome: str = "") -> list[str]:
        """Its run lines so far (those with ``outcome``: "ok", "skipped", "FAILED")."""
        return [line for line in _run_lines("\n".join(self.lines))
                if f" {outcome}:" in line]

    def finish(self, timeout_s: float = 300) -> str:
        """Wait for it to exit; its whole output."""
        self.process.wait(timeout=timeout_s)
        self._reader.join(timeout=30)
        return "\n".join(self.lines)


@dataclass
class Step:
    """One step process a scheduler started: who started it, when it was seen alive."""

    pid: int
    scheduler: int
    first_seen: float
    last_seen: float


@dataclass
class StepWatcher:
    """Lists the step processes of some schedulers, and counts how many run at once."""

    schedulers: list[int]
    every_s: float = 0.02
    steps: dict[int, Step] = field(default_factory=dict)
    most_at_once: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> StepWatcher:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    def watch(self, pid: int) -> None:
        """Also watch the steps of this scheduler."""
        self.schedulers.append(pid)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for parent in list(self.schedulers):
                try:
                    children = psutil.Process(parent).children()
                except psutil.Error:
                    continue
                for child in children:
                    if child.pid not in self.steps and _is_step(child):
                        self.steps[child.pid] = Step(child.pid, parent, now, now)
            alive = [s for s in self.steps.values() if _alive(s.pid)]
            for step in alive:
                step.last_seen = now
            self.most_at_once = max(self.most_at_once, len(alive))
            time.sleep(self.every_s)

    def running(self) -> list[Step]:
        """Steps alive now."""
        return [s for s in self.steps.values() if _alive(s.pid)]

    def wait(self, condition: object, timeout_s: float = 120.0) -> None:
        """Wait until ``condition()`` holds."""
        deadline = time.monotonic() + timeout_s
        while not condition():  # type: ignore[operator]
            assert time.monotonic() < deadline, "timed out waiting for the schedulers"
            time.sleep(0.05)


def _is_step(process: psutil.Process) -> bool:
    """A scheduler's step (``pslake ... sync apply``), not a helper a library starts, nor a
    child caught between fork and exec (it still shows the scheduler's command line)."""
    try:
        command = process.cmdline()
    except psutil.Error:
        return False
    return bool(command[-4:-2] == ["sync", "apply"])


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _run_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if RUN_LINE.match(line)]


def _apply_runs(crm: Crm) -> list[tuple[str, str]]:
    """(started, finished) of every apply run in the journal, in order."""
    with crm.sync() as sync:
        rows = sync.journal.db.execute(
            "select started_at, finished_at from runs where kind = 'apply' "
            "order by started_at").fetchall()
    return [(r[0], r[1]) for r in rows]


def _overlapping(intervals: list[tuple[str, str]]) -> int:
    return sum(1 for (_, end), (start, _) in itertools.pairwise(intervals)
               if end is None or start < end)


def test_two_schedulers_started_together_never_run_at_once(crm: Crm) -> None:
    runs = 3
    first, second = Scheduler(crm, EVERY_SECOND, runs), Scheduler(crm, EVERY_SECOND, runs)
    with StepWatcher([first.pid, second.pid]) as watcher:
        outputs = [s.finish() for s in (first, second)]
    assert [s.process.returncode for s in (first, second)] == [0, 0], outputs
    lines = [_run_lines(out) for out in outputs]
    assert [len(found) for found in lines] == [runs, runs], outputs  # one line per run
    took = [line for found in lines for line in found if " ok: " in line]
    skipped = [line for found in lines for line in found if " skipped: " in line]
    assert len(took) + len(skipped) == 2 * runs, outputs  # no run failed
    assert took and skipped, "the two schedulers should have met on the lock"
    assert watcher.most_at_once == 1  # never two steps at once
    assert len(watcher.steps) == len(took)
    applies = _apply_runs(crm)
    assert len(applies) == len(took)
    assert _overlapping(applies) == 0
    assert len(list((crm.data_dir / "logs").glob("run-*.log"))) == len(took)
    overlaps = watcher.most_at_once - 1 + _overlapping(applies)
    # injected: the turns on which both schedulers wanted to run (one of them had to skip)
    record("scheduler_single_flight", case="two-schedulers", injected=len(skipped),
           survived=len(skipped) if overlaps == 0 else 0, overlaps=overlaps,
           runs=len(took), skipped=len(skipped), lines_per_run=1)


def test_a_killed_schedulers_lock_is_taken_over_without_an_overlap(crm: Crm) -> None:
    # every CRM call takes 300 ms, so one sync run lasts several seconds
    crm.faults(slow_rate=1.0, slow_ms=300)
    holder = Scheduler(crm, EVERY_SECOND, 1)
    waiter: Scheduler | None = None
    with StepWatcher([holder.pid]) as watcher:
        try:
            watcher.wait(lambda: watcher.running())  # the holder's sync run has started
            waiter = waiting = Scheduler(crm, EVERY_SECOND, 1000)
            watcher.watch(waiting.pid)
            watcher.wait(lambda: waiting.runs("skipped"))  # the waiter met the held lock
            assert watcher.running(), "the holder's run should still be going"
            holder.process.send_signal(signal.SIGKILL)
            holder.finish(timeout_s=60)
            killed_at = time.monotonic()
            holder_steps = [s for s in watcher.steps.values() if s.scheduler == holder.pid]
            # the holder's run ends (its step finishes, or dies with it): then the waiter
            watcher.wait(lambda: not any(_alive(s.pid) for s in holder_steps))
            released_at = max([killed_at, *(s.last_seen for s in holder_steps)])
            watcher.wait(lambda: any(s.scheduler == waiting.pid for s in watcher.steps.values()))
            taken = min(s.first_seen for s in watcher.steps.values()
                        if s.scheduler == waiting.pid)
            crm.faults(slow_rate=0.0)
            watcher.wait(lambda: waiting.runs("ok"))  # its run is done and logged
        finally:
            out = ""
            if waiter is not None:
                if waiter.process.poll() is None:
                    # Ctrl-C: a step still going goes with it
                    waiter.process.send_signal(signal.SIGINT)
                out = waiter.finish(timeout_s=120)
            watcher.wait(lambda: not watcher.running())
    assert holder.process.returncode == -signal.SIGKILL
    assert watcher.most_at_once == 1, "a step started while the killed run's step still ran"
    assert len(holder_steps) == 1
    lines = _run_lines(out)
    assert any(" skipped: " in line for line in lines), out  # it met the lock first
    assert any(" ok: " in line for line in lines), out  # then took it over
    delay = taken - released_at
    assert 0 <= delay < 30
    with crm.sync() as sync:  # the killed run's work is finished, nothing written twice
        assert sync.plan().counts().get("planned", 0) == 0
        assert sync.journal.pending_batches() == []
    assert crm.duplicate_writes() == []
    record("scheduler_single_flight", case="holder-killed", injected=1,
           survived=int(watcher.most_at_once == 1), overlaps=watcher.most_at_once - 1,
           lock_recovery_delay_s=round(delay, 2),
           holder_step_outlived_scheduler_s=round(max(released_at - killed_at, 0.0), 2))


class FakeClock:
    """The wall clock the schedule loop reads; sleeping moves it, and it can jump."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += dt.timedelta(seconds=seconds)

    def jump(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)

    def datetime_class(self) -> type[dt.datetime]:
        clock = self

        class FakeDatetime(dt.datetime):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> FakeDatetime:
                moment = clock.now if tz is None else clock.now.astimezone(tz)
                return cls.fromtimestamp(moment.timestamp(), moment.tzinfo)

        return FakeDatetime


def test_the_schedule_survives_clock_jumps_with_one_line_and_one_log_per_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC))
    fake_dt = type("dt", (), {"datetime": clock.datetime_class(), "UTC": dt.UTC})
    monkeypatch.setattr(schedule_module, "dt", fake_dt)
    # runs at 08:15 and 08:30; an hour back: 07:45, 08:00, 08:15 again; then 2 h on: 10:30, 10:45
    jumps = {2: -3600.0, 5: +7200.0}
    lines: list[str] = []

    def say(line: str) -> None:  # called once per run, after it
        lines.append(line)
        clock.jump(jumps.get(len(_run_lines("\n".join(lines))), 0.0))

    runs = 7
    failed = schedule_module.schedule("*/15 * * * *", tmp_path, steps=(), max_runs=runs,
                                      say=say, sleep=clock.sleep)
    assert failed == 0
    run_lines = _run_lines("\n".join(lines))
    assert len(run_lines) == runs  # one line per run, no catch-up burst after the jump ahead
    assert all(" ok: " in line for line in run_lines)
    assert len(clock.sleeps) == runs and all(0 < s <= 15 * 60 for s in clock.sleeps)
    # an hour back repeats run times: each run still gets its own log
    assert len(list((tmp_path / "logs").glob("run-*.log"))) == runs
    record("scheduler_single_flight", case="clock-jumps", injected=len(jumps),
           survived=len(jumps) if len(run_lines) == runs else 0, overlaps=0, runs=runs,
           longest_wait_s=max(clock.sleeps))
