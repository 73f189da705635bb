"""Battery test 14, ``sync_kill_anywhere_no_double_write``: kill `pslake sync apply` (SIGKILL)
at named journal steps, while a write call is on its way to the CRM (mid-batch) and at random
moments, interleaved with plans, reruns and applies of stale stored plans, and check the CRM
ends in the desired state with no (record, field, value) written twice and no write intent
left open."""

from __future__ import annotations

import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from reverse_sync.policy import load_policy
from reverse_sync.runner import CRASH_ENV
from tests.reliability import record
from tests.reverse_sync.conftest import Crm
from tests.reverse_sync.tap import Call, tapped

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SMALL_BATCHES = """
batch_size = 5
timeout_s = 2
[retry]
backoff_minutes = [0]
"""
STEPS = ("after_intent", "after_send", "after_confirm")


def _sync(crm: Crm, policy: Path, *args: str, crash_at: str | None = None
          ) -> subprocess.Popen[str]:
    env = {**os.environ, "PSLAKE_SYNC_POLICY": str(policy)}
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.Popen(
        [sys.executable, "-m", "pslake", "--data-dir", str(crm.data_dir), "sync", *args,
         "--limit", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _apply(crm: Crm, policy: Path, crash_at: str | None = None) -> subprocess.Popen[str]:
    return _sync(crm, policy, "apply", crash_at=crash_at)


def _converge(crm: Crm, policy: Path) -> int:
    """Rerun apply until it exits 0 (the journal settles what the kills left open); returns
    the reruns it took."""
    for rerun in range(1, 5):
        proc = _apply(crm, policy)
        out, _ = proc.communicate(timeout=300)
        if proc.returncode == 0:
            return rerun
    raise AssertionError(f"apply did not converge:\n{out}")


def _assert_desired_state(crm: Crm, policy: Path) -> None:
    with crm.sync() as sync:
        due = sync.plan().counts()
        pending = sync.journal.pending_batches()
    assert due.get("planned", 0) == 0, due  # the CRM holds every value pslake may write
    assert pending == []  # no intent left dangling
    assert crm.duplicate_writes() == []


def _clean_write_calls(crm: Crm, policy: Path) -> tuple[int, str]:
    """Write calls a fault-free apply of the first plan needs (one per batch), and its id."""
    batch_size = load_policy(policy).batch_size
    with crm.sync(load_policy(policy)) as sync:
        first = sync.plan()
    records = Counter(obj for obj, _ in {(p.change.object, p.change.key) for p in first.changes
                                         if p.decision == "apply"})
    return sum(math.ceil(n / batch_size) for n in records.values()), first.run_id


def _settled_kills(crm: Crm) -> tuple[int, int]:
    """(runs a kill left running, of those how many have no write intent still open)."""
    with crm.sync() as sync:
        killed = [r[0] for r in sync.journal.db.execute(
            "select run_id from runs where kind = 'apply' and status = 'running'")]
        open_runs = {b["run_id"] for b in sync.journal.pending_batches()}
    return len(killed), sum(1 for run in killed if run not in open_runs)


@pytest.mark.parametrize("point", [
    "after_intent:3",  # journaled, killed before the call was sent
    "after_send:3",  # the CRM wrote the batch, killed before the journal confirmed it
    "after_confirm:2",  # killed between two batches
], ids=["before-send", "after-send-before-confirm", "between-batches"])
def test_apply_killed_at_a_journal_step_finishes_on_rerun_without_a_double_write(
        crm: Crm, tmp_path: Path, point: str) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(SMALL_BATCHES)
    clean, _ = _clean_write_calls(crm, policy)
    proc = _apply(crm, policy, point)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, out
    reruns = _converge(crm, policy)
    _assert_desired_state(crm, policy)
    killed, settled = _settled_kills(crm)
    assert (killed, settled) == (1, 1)
    record("sync_kill_anywhere_no_double_write", case=point, injected=killed,
           survived=settled, duplicates=len(crm.duplicate_writes()),
           extra_calls=crm.write_calls() - clean, reruns=reruns, dangling_intents=0)


def _empty_invoice_payments(crm: Crm) -> None:
    """A bad import emptied the payment fields of every invoice mirror (before the CRM has
    served a call, so its caches hold nothing of the old values)."""
    with sqlite3.connect(crm.store / "hubspot.sqlite") as db:
        db.execute("update objects set properties = json_remove(properties, '$.amount_paid', "
                   "'$.amount_due', '$.invoice_status') where object_type = 'erp_invoices'")


def test_apply_killed_while_a_write_is_in_flight_does_not_write_it_twice(
        crm: Crm, tmp_path: Path) -> None:
    """Mid-batch: the write call has left when the process dies and reaches the CRM a second
    later, while the next run starts (within the client's 2 s timeout)."""
    policy = tmp_path / "policy.toml"
    policy.write_text(SMALL_BATCHES)
    clean, _ = _clean_write_calls(crm, policy)
    in_flight = InFlight()
    with tapped(crm.server, in_flight, stall_s=1.0) as tap:
        proc = _apply(crm, policy)
        in_flight.kill_when_held(proc)
        proc.communicate(timeout=60)
        reruns = _converge(crm, policy)
        _all_landed(tap.calls)
    held = [c for c in tap.calls if c.fault == "hold"]
    assert proc.returncode == -signal.SIGKILL and len(held) == 1
    landed = [w for w in crm.writes() if w["correlation_id"] == held[0].correlation_id]
    assert landed, "the held call should have reached the CRM after the kill"
    _assert_desired_state(crm, policy)
    killed, settled = _settled_kills(crm)
    assert (killed, settled) == (1, 1)
    record("sync_kill_anywhere_no_double_write", case="in-flight", injected=killed,
           survived=settled, duplicates=len(crm.duplicate_writes()),
           extra_calls=crm.write_calls() - clean, reruns=reruns, dangling_intents=0)


class InFlight:
    """Holds the next write call of the sync on its way to the CRM, when armed, so a test can
    kill the sender while the call is travelling (it lands ``hold_s`` after it arrived)."""

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.held = threading.Event()

    def __call__(self, call: Call) -> str | None:
        if self.armed.is_set() and call.from_sync and call.is_write:
            self.armed.clear()
            self.held.set()
            return "hold"
        return None

    def kill_when_held(self, proc: subprocess.Popen[str]) -> None:
        """Arm, wait for the held call (or for the process to end without one), then kill."""
        self.held.clear()
        self.armed.set()
        while not self.held.wait(0.02) and proc.poll() is None:
            pass
        self.armed.clear()
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)


def _all_landed(calls: list[Call], timeout_s: float = 60) -> None:
    """Wait until every held call has reached the CRM (it may land after the runs end)."""
    deadline = time.monotonic() + timeout_s
    while any(c.fault == "hold" and c.answered_at is None and not c.reset for c in calls):
        assert time.monotonic() < deadline, "a held call never landed"
        time.sleep(0.05)


def _interleave(crm: Crm, policy: Path, seed: int, ops: int) -> None:
    """Plans, applies of the newest or a stale stored plan, and applies killed at a journal step
    (drawn at random), at a random moment, or while a write call is on its way to the CRM, in a
    seeded random order; then reruns to the end."""
    rng = random.Random(seed)
    _empty_invoice_payments(crm)  # work for every kill: ~90 more records to write
    clean, _ = _clean_write_calls(crm, policy)
    crm.faults(slow_rate=1.0, slow_ms=60)  # every CRM call takes 60 ms: a run lasts seconds
    kinds: Counter[str] = Counter()
    kills = 0
    in_flight = InFlight()
    every = ["plan", "kill-at-step", "kill-at-moment", "stale-plan-killed", "kill-in-flight"]
    order = rng.sample(every, len(every))  # each kind once, in a random order, then at random
    order += rng.choices(every, weights=[1, 3, 2, 2, 2], k=max(ops - len(every), 0))
    with tapped(crm.server, in_flight, stall_s=1.0) as tap:
        for kind in order[:ops]:
            kinds[kind] += 1
            if kind == "plan":
                _sync(crm, policy, "plan").communicate(timeout=300)
                continue
            args = ["apply"]
            if kind == "stale-plan-killed":
                with crm.sync() as sync:
                    plans = [r[0] for r in sync.journal.db.execute(
                        "select run_id from runs where kind = 'plan' order by started_at")]
                args += ["--plan", rng.choice(plans)]
            if kind == "kill-at-moment":
                proc = _sync(crm, policy, *args)
                time.sleep(rng.uniform(1.5, 3.5))  # start-up is ~1.5 s
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
            elif kind == "kill-in-flight":
                proc = _sync(crm, policy, *args)
                in_flight.kill_when_held(proc)
            else:
                step = f"{rng.choice(STEPS)}:{rng.randint(1, 3)}"
                proc = _sync(crm, policy, *args, crash_at=step)
            proc.communicate(timeout=300)
            kills += proc.returncode == -signal.SIGKILL
        assert kills >= ops // 3, "the kills should land while the apply is running"
        crm.faults(slow_rate=0.0)
        reruns = _converge(crm, policy)
        _all_landed(tap.calls)
    _assert_desired_state(crm, policy)
    killed, settled = _settled_kills(crm)
    assert settled == killed  # every killed run's intents were settled by a later step
    # a kill during start-up or the plan leaves no apply run: it has nothing to settle
    record("sync_kill_anywhere_no_double_write", seed=seed, case="interleaved",
           injected=kills, survived=kills - (killed - settled),
           duplicates=len(crm.duplicate_writes()), extra_calls=crm.write_calls() - clean,
           reruns=reruns, operations=dict(kinds), dangling_intents=0)


def test_apply_killed_many_times_at_random_points_converges_without_a_double_write(
        crm: Crm, tmp_path: Path) -> None:
    """Kills at a journal step drawn at random, at random moments and with a write in flight,
    interleaved with plans and with applies of stale stored plans (fixed seed)."""
    policy = tmp_path / "policy.toml"
    policy.write_text(SMALL_BATCHES.replace("batch_size = 5", "batch_size = 2"))
    _interleave(crm, policy, seed=20261123, ops=7)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(1, 21))
def test_apply_killed_at_random_points_converges_for_many_seeds(
        crm: Crm, tmp_path: Path, seed: int) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(SMALL_BATCHES.replace("batch_size = 5", "batch_size = 2"))
    _interleave(crm, policy, seed=seed, ops=14)
