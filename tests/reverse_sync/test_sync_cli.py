"""The sync and schedule commands as a user runs them: readable output, clear errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pslake.schedule import run_lock
from tests.reverse_sync.conftest import Crm

pytestmark = pytest.mark.e2e


def _pslake(crm: Crm, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pslake", "--data-dir", str(crm.data_dir),
                           *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PSLAKE_ACTOR": "ops@example.com"})


def test_plan_prints_a_table_of_changes_and_writes_nothing(crm: Crm) -> None:
    run = _pslake(crm, "sync", "plan", "--limit", "5")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    header = next(line for line in lines if line.startswith("id "))
    for column in ("object", "record", "field", "current -> desired", "reason", "decision"):
        assert column in header
    assert any("legal_name" in line and "hold:" in line for line in lines)  # held first
    assert "more (--limit 0 shows all" in run.stdout
    assert lines[-1].startswith("plan ") and "held for approval" in lines[-1]
    assert crm.write_calls() == 0


def test_apply_then_status_then_approve_then_apply_again(crm: Crm) -> None:
    applied = _pslake(crm, "sync", "apply", "--limit", "0")
    assert applied.returncode == 0, applied.stderr
    assert " written, " in applied.stdout.splitlines()[-1]
    status = _pslake(crm, "sync", "status", "--held")
    assert status.returncode == 0, status.stderr
    assert "approvals waiting: 1" in status.stdout
    held_id = next(line.split()[0] for line in status.stdout.splitlines()
                   if "legal_name" in line)
    approved = _pslake(crm, "sync", "approve", held_id)
    assert approved.returncode == 0, approved.stderr
    assert f"approved {held_id}" in approved.stdout and "ops@example.com" in approved.stdout
    again = _pslake(crm, "sync", "apply")
    assert "1 written" in again.stdout.splitlines()[-1]


def test_approving_an_unknown_change_is_one_error_line(crm: Crm) -> None:
    run = _pslake(crm, "sync", "approve", "0123456789ab")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: 0123456789ab: no such change (see `pslake sync status --held`)"]


def test_plan_without_a_warehouse_says_which_command_to_run(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "pslake", "--data-dir", str(tmp_path),
                          "sync", "plan"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "pslake transform" in run.stderr or "pslake sandbox serve" in run.stderr
    assert "Traceback" not in run.stderr


def test_scheduled_run_skips_while_another_run_holds_the_lock(crm: Crm) -> None:
    with run_lock(crm.data_dir) as taken:
        assert taken
        run = _pslake(crm, "schedule", "--once", "--steps", "sync")
    assert run.returncode == 0, run.stderr
    assert "skipped: a previous run still holds the lock" in run.stdout
    assert crm.write_calls() == 0


def test_schedule_runs_the_steps_on_the_cron_and_logs_one_line_per_run(crm: Crm) -> None:
    run = _pslake(crm, "schedule", "--cron", "* * * * * */2", "--steps", "sync",
                  "--max-runs", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if " ok: " in line]
    assert len(lines) == 2
    logs = sorted((crm.data_dir / "logs").glob("run-*.log"))
    assert len(logs) == 2
    assert "apply " in logs[0].read_text()  # the first run applied, the second had nothing
    assert "0 write calls" in logs[1].read_text()


def test_a_bad_cron_expression_is_refused(crm: Crm) -> None:
    run = _pslake(crm, "schedule", "--cron", "every quarter hour")
    assert run.returncode == 2
    assert "is not a cron expression" in run.stderr


def test_run_shows_each_steps_output_then_one_line_and_logs_it(crm: Crm) -> None:
    run = _pslake(crm, "run", "--steps", "sync")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "$ pslake sync apply --limit 20"
    applied = next(line for line in lines if line.startswith("apply "))
    assert " written, " in applied and crm.write_calls() > 0
    assert " ok: sync " in lines[-1]
    log = Path(lines[-1].rsplit("; log ", 1)[1])
    assert applied in log.read_text()  # the log holds what the terminal showed


def test_run_while_another_run_holds_the_lock_exits_3_and_writes_nothing(crm: Crm) -> None:
    with run_lock(crm.data_dir) as taken:
        assert taken
        run = _pslake(crm, "run", "--steps", "sync")
    assert run.returncode == 3
    assert "skipped: a previous run still holds the lock" in run.stdout
    assert crm.write_calls() == 0
