"""The battery's tests 3, 4 and 5: ingest_kill_anywhere_resume, ingest_workdir_loss and
ingest_sigterm_drain.

A real ``pslake ingest --source harvest`` is killed with SIGKILL, at a named crash point
(``PSLAKE_CRASH_AT``, ``ingestion/crash.py``: mid-extract, after extract, mid-normalize,
mid-load) or at a random moment after it started extracting, and then run again until a run
succeeds. Harvest alone proves the point: its big tables load with ``replace`` on the first
load and ``merge`` after, the cases where a half-done load could lose or double rows.

After the reruns the raw tables must equal the golden load's (key and content hash), with no
duplicate key and no row of an incomplete load (every ``_dlt_load_id`` complete in
``_dlt_loads``); the rerun must say it finished the package the killed run left; and no raw
page of the killed run may be left in the landing folder.

Test 4 deletes dlt's working folder after a kill mid-load (the next run restores the cursors
from the warehouse); test 5 sends SIGTERM during the load, once (drain) and twice (stop now).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.ingestion.battery import (
    PENDING_LINE,
    Golden,
    compare,
    fingerprint,
    golden_load,
    of_vendor,
    orphans,
    pslake,
    pslake_command,
    pslake_env,
)
from tests.reliability import record

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HARVEST = ("raw_harvest",)
INGEST = ("ingest", "--source", "harvest")
EXTRACTING = "harvest: extracting from"
# Points where the killed run leaves a package for the next run to finish.
LEAVES_PACKAGE = ("after_extract", "mid_normalize", "mid_load")


@pytest.fixture(scope="module")
def golden(small_firm_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Golden:
    return golden_load(small_firm_template, tmp_path_factory.mktemp("golden"))


def _kill_at_random(data_dir: Path, rng: random.Random) -> tuple[bool, float]:
    """Start an ingest and SIGKILL it a random time after it starts extracting.

    Returns:
        Whether the kill landed (the run had not finished), and the delay used.
    """
    delay = rng.uniform(0.0, 2.0)
    process = subprocess.Popen(pslake_command(data_dir, *INGEST), env=pslake_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith(EXTRACTING):
                break
        time.sleep(delay)
        landed = process.poll() is None
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=120)
        process.stdout.close()
    return landed, delay


def _landing_files(data_dir: Path) -> int:
    landing = data_dir / "dlt" / "landing"
    return sum(1 for p in landing.rglob("*") if p.is_file()) if landing.exists() else 0


def _kill_and_resume(data_dir: Path, point: str | None, seed: int, golden: Golden
                     ) -> dict[str, Any]:
    """Kill one run, rerun until one succeeds, and count what the end state lost or doubled."""
    if point is not None:
        killed = pslake(data_dir, *INGEST, PSLAKE_CRASH_AT=point)
        landed = killed.returncode == -signal.SIGKILL  # else the run never reached the point
        delay = None
    else:
        landed, delay = _kill_at_random(data_dir, random.Random(seed))
    reruns, reported_pending, outputs = 0, False, []
    while True:
        reruns += 1
        rerun = pslake(data_dir, *INGEST)
        outputs.append(rerun.stdout + rerun.stderr)
        reported_pending |= PENDING_LINE in rerun.stdout
        if rerun.returncode == 0 or reruns == 3:
            break
    warehouse = data_dir / "warehouse.duckdb"
    tables = of_vendor(golden.prints, *HARVEST)
    comparison = compare(golden.prints, fingerprint(warehouse, HARVEST, like=golden.prints),
                         tables)
    return {"landed": landed, "delay": delay, "reruns": reruns, "ok": rerun.returncode == 0,
            "reported_pending": reported_pending, "comparison": comparison,
            "orphans": orphans(warehouse, HARVEST), "landing_files": _landing_files(data_dir),
            "outputs": outputs}


def _check(case: str, point: str | None, seed: int, outcome: dict[str, Any]) -> None:
    comparison = outcome["comparison"]
    survived = (outcome["ok"] and comparison.lost == 0 and comparison.duplicates == 0
                and not outcome["orphans"] and outcome["landing_files"] == 0)
    record("ingest_kill_anywhere_resume", seed=seed, injected=int(outcome["landed"]),
           survived=int(outcome["landed"] and survived), lost=comparison.lost,
           duplicates=comparison.duplicates, case=case, point=point or "random",
           delay_s=outcome["delay"], extra_reruns=outcome["reruns"] - 1,
           packages_resumed=int(outcome["reported_pending"]),
           orphan_rows=sum(outcome["orphans"].values()),
           stale_landing_files=outcome["landing_files"])
    assert outcome["ok"], outcome["outputs"][-1][-3000:]
    assert comparison.lost == 0 and comparison.duplicates == 0, comparison.problems()
    assert not outcome["orphans"], outcome["orphans"]
    assert outcome["landing_files"] == 0, "raw pages of the killed run left in the landing folder"
    assert outcome["reruns"] == 1, "one rerun must be enough"
    if point is not None and point.split(":")[0] in LEAVES_PACKAGE:
        assert outcome["reported_pending"], outcome["outputs"][0][-2000:]


@pytest.mark.parametrize(
    ("point", "seed"),
    [
        ("mid_extract:3", 0),  # clients, users and projects extracted, the big tables not yet
        ("after_extract", 0),  # package extracted and cursors moved, nothing loaded
        ("mid_normalize", 0),  # the package half normalized
        ("mid_load:4", 0),  # some load jobs done (first load: big tables with replace)
        (None, 1),  # a random moment after extraction began
    ],
    ids=["mid-extract", "after-extract", "mid-normalize", "mid-load", "random"],
)
def test_a_run_killed_anywhere_is_finished_by_the_next_run_with_nothing_lost_or_doubled(
        served_firm, small_firm: Path, golden: Golden, point: str | None, seed: int) -> None:
    outcome = _kill_and_resume(small_firm.parent, point, seed, golden)
    assert outcome["landed"], f"the run was not killed at {point or 'a random moment'}"
    _check(point or f"random-{seed}", point, seed, outcome)


_SOAK_POINTS = ("mid_extract", "after_extract", "mid_normalize", "mid_load", None)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(100, 130))
def test_many_seeds_of_kills_at_random_points_and_moments_converge(
        served_firm, small_firm: Path, golden: Golden, seed: int) -> None:
    rng = random.Random(seed)
    point = rng.choice(_SOAK_POINTS)
    if point is not None and point != "after_extract":
        point = f"{point}:{rng.randint(1, 6)}"
    outcome = _kill_and_resume(small_firm.parent, point, seed, golden)
    _check(point or f"random-{seed}", point, seed, outcome)


# ---- test 4 -----------------------------------------------------------------------------------


def _received(report: Path, table: str) -> int:
    received: int = json.loads(report.read_text())["vendors"]["harvest"]["tables"][table][
        "received"]
    return received


def test_a_lost_working_folder_after_a_kill_mid_load_is_restored_from_the_warehouse(
        served_firm, small_firm: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Test 4, ingest_workdir_loss: dlt's working folder is deleted after a run is killed
    mid-load. The next run must restore the cursors from the warehouse's
    ``_dlt_pipeline_state`` (read again only the window the killed run had), and end equal to
    a fresh load of the same data."""
    data = small_firm.parent
    first = pslake(data, *INGEST)
    assert first.returncode == 0, first.stderr
    store = sqlite3.connect(small_firm / "harvest.sqlite", isolation_level=None)
    changed = [r[0] for r in store.execute("select id from time_entries order by id desc "
                                           "limit 40")]
    stamp = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    store.executemany("update time_entries set notes = 'changed', updated_at = ? where id = ?",
                      [(stamp, i) for i in changed])
    served_firm.state.wrote()
    killed = pslake(data, *INGEST, PSLAKE_CRASH_AT="mid_load:2")
    landed = killed.returncode == -signal.SIGKILL
    shutil.rmtree(data / "dlt" / "pslake_harvest")
    report = data / "report.json"
    rerun = pslake(data, *INGEST, "--report", str(report))
    fresh = tmp_path_factory.mktemp("fresh")
    (fresh / "sandbox").mkdir()
    shutil.copy2(small_firm / "endpoints.json", fresh / "sandbox" / "endpoints.json")
    clean = pslake(fresh, *INGEST)
    assert clean.returncode == 0, clean.stderr
    expected = fingerprint(fresh / "warehouse.duckdb", HARVEST)
    comparison = compare(expected, fingerprint(data / "warehouse.duckdb", HARVEST,
                                               like=expected))
    refetched = _received(report, "time_entries") if rerun.returncode == 0 else 0
    restored = rerun.returncode == 0 and refetched < 1_000
    record("ingest_workdir_loss", injected=int(landed),
           survived=int(landed and restored and comparison.lost == 0
                        and comparison.duplicates == 0),
           lost=comparison.lost, duplicates=comparison.duplicates, rows_refetched=refetched,
           rows_changed=len(changed), state_restored=int(restored),
           orphan_rows=sum(orphans(data / "warehouse.duckdb", HARVEST).values()))
    assert landed, killed.stdout[-2000:]
    assert rerun.returncode == 0, rerun.stderr
    assert comparison.lost == 0 and comparison.duplicates == 0, comparison.problems()
    assert restored, f"{refetched} time entries read again: the cursors were not restored"
    assert refetched >= len(changed)


# ---- test 5 -----------------------------------------------------------------------------------

GRACE_S = 30.0  # what a scheduler would wait after SIGTERM before it sends SIGKILL


def _pending_jobs(data_dir: Path) -> dict[str, int]:
    """Jobs of the packages left pending, by state (new, started, completed, failed)."""
    counts: dict[str, int] = {}
    for package in (data_dir / "dlt" / "pslake_harvest" / "load" / "normalized").glob("*"):
        for state in ("new_jobs", "started_jobs", "completed_jobs", "failed_jobs"):
            counts[state] = counts.get(state, 0) + sum(1 for _ in (package / state).glob("*"))
    return counts


def _sigterm(data: Path, golden: Golden, signals: str, stops_at_once: bool) -> int:
    """Stop one run with the signals, rerun, check; how many signals were sent."""
    stopped = pslake(data, *INGEST, PSLAKE_CRASH_AT=signals)
    ended = time.time()
    sent = [float(line.rsplit(" at ", 1)[1]) for line in stopped.stderr.splitlines()
            if line.startswith("crash point mid_load")]
    jobs = _pending_jobs(data)
    rerun = pslake(data, *INGEST)
    warehouse = data / "warehouse.duckdb"
    comparison = compare(golden.prints, fingerprint(warehouse, HARVEST, like=golden.prints),
                         of_vendor(golden.prints, *HARVEST))
    drain_s = ended - sent[0] if sent else None
    resumed = PENDING_LINE in rerun.stdout
    converged = rerun.returncode == 0 and comparison.lost == 0 and comparison.duplicates == 0
    record("ingest_sigterm_drain", injected=len(sent), survived=len(sent) if converged else 0,
           lost=comparison.lost, duplicates=comparison.duplicates, case=signals,
           exit_code=stopped.returncode, drain_s=round(drain_s or 0, 3),
           jobs_drained=jobs.get("completed_jobs", 0), jobs_left=jobs.get("new_jobs", 0),
           packages_resumed=int(resumed))
    assert converged, (rerun.stderr[-2000:], comparison.problems())
    assert not orphans(warehouse, HARVEST)
    if not sent:  # the load had fewer jobs than the signal waited for: nothing to check
        assert stopped.returncode == 0, stopped.stderr[-2000:]
        return 0
    assert resumed, rerun.stdout[-2000:]
    if stops_at_once and len(sent) == 2:
        assert stopped.returncode == -signal.SIGTERM
        return 2
    assert stopped.returncode == 1, stopped.stderr[-2000:]
    assert "error: harvest: stopped by signal 15; running load jobs were finished" in (
        stopped.stderr)
    assert "Traceback" not in stopped.stderr
    assert drain_s is not None and drain_s < GRACE_S
    assert jobs.get("started_jobs", 0) == 0, "every job that had started was finished"
    assert jobs.get("completed_jobs", 0) >= 1 and jobs.get("new_jobs", 0) >= 1, jobs
    return len(sent)


@pytest.mark.parametrize(
    ("signals", "stops_at_once"),
    [
        ("mid_load:1:SIGTERM", False),  # one SIGTERM: drain the running jobs, leave the rest
        ("mid_load:1:SIGTERM,mid_load:2:SIGTERM", True),  # a second one: stop now
    ],
    ids=["once", "twice"],
)
def test_sigterm_during_load_drains_the_running_jobs_and_the_next_run_converges(
        served_firm, small_firm: Path, golden: Golden, signals: str, stops_at_once: bool
) -> None:
    """Test 5, ingest_sigterm_drain: SIGTERM arrives while the load jobs run (sent at the
    crash point ``mid_load``, so it lands there every time)."""
    sent = _sigterm(small_firm.parent, golden, signals, stops_at_once)
    assert sent == signals.count("SIGTERM"), "the signals did not all land during the load"


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(100, 112))
def test_many_seeds_of_sigterms_during_load_converge(
        served_firm, small_firm: Path, golden: Golden, seed: int) -> None:
    rng = random.Random(seed)
    first = rng.randint(1, 9)
    twice = rng.random() < 0.5
    signals = f"mid_load:{first}:SIGTERM" + (f",mid_load:{first + 1}:SIGTERM" if twice else "")
    _sigterm(small_firm.parent, golden, signals, twice)
