"""Kill `pslake sync apply` (SIGKILL) at named journal steps and at random moments, rerun, and
check the CRM ends in the desired state with no (record, field, value) written twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reverse_sync.runner import CRASH_ENV
from tests.reverse_sync.conftest import Crm

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SMALL_BATCHES = """
batch_size = 5
[retry]
backoff_minutes = [0]
"""


def _apply(crm: Crm, policy: Path, crash_at: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PSLAKE_SYNC_POLICY": str(policy)}
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.Popen(
        [sys.executable, "-m", "pslake", "--data-dir", str(crm.data_dir), "sync", "apply",
         "--limit", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _converge(crm: Crm, policy: Path) -> str:
    """Rerun apply until it exits 0 (the journal settles what the kills left open)."""
    for _ in range(4):
        proc = _apply(crm, policy)
        out, _ = proc.communicate(timeout=300)
        if proc.returncode == 0:
            return out
    raise AssertionError(f"apply did not converge:\n{out}")


def _assert_desired_state(crm: Crm, policy: Path) -> None:
    with crm.sync() as sync:
        due = sync.plan().counts()
        pending = sync.journal.pending_batches()
    assert due.get("planned", 0) == 0, due  # the CRM holds every value pslake may write
    assert pending == []  # no intent left dangling
    assert crm.duplicate_writes() == []


@pytest.mark.parametrize("point", [
    "after_intent:3",  # journaled, killed before the call was sent
    "after_send:3",  # the CRM wrote the batch, killed before the journal confirmed it
    "after_confirm:2",  # killed between two batches
], ids=["before-send", "after-send-before-confirm", "between-batches"])
def test_apply_killed_at_a_journal_step_finishes_on_rerun_without_a_double_write(
        crm: Crm, tmp_path: Path, point: str) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(SMALL_BATCHES)
    proc = _apply(crm, policy, point)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, out
    _converge(crm, policy)
    _assert_desired_state(crm, policy)


def test_apply_killed_many_times_at_random_points_converges_without_a_double_write(
        crm: Crm, tmp_path: Path) -> None:
    """Kills alternate between a journal step drawn at random and a random moment."""
    policy = tmp_path / "policy.toml"
    policy.write_text(SMALL_BATCHES.replace("batch_size = 5", "batch_size = 2"))
    crm.faults(slow_rate=1.0, slow_ms=60)  # every CRM call takes 60 ms: a run lasts seconds
    rng = random.Random(20261123)
    kills = 0
    for round_ in range(6):
        if round_ % 2 == 0:
            step = rng.choice(["after_intent", "after_send", "after_confirm"])
            proc = _apply(crm, policy, f"{step}:{rng.randint(1, 3)}")
            proc.communicate(timeout=300)
        else:
            proc = _apply(crm, policy)
            time.sleep(rng.uniform(1.5, 3.5))  # start-up is ~1.5 s
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
        kills += proc.returncode == -signal.SIGKILL
    assert kills >= 3, "the kills should land while the apply is running"
    _converge(crm, policy)
    crm.faults(slow_rate=0.0)
    _assert_desired_state(crm, policy)
