"""The client-side call budget holds as the vendor counts it, whatever the network delays.

The vendor counts a call when it arrives. A budget counted at send time lets a call delayed on
the way land in the window of a later one: the sandbox, limited to exactly the client's budget,
would answer 429. Through the test relay, which holds some requests back before they reach the
sandbox, a run within budget must meet no 429 at all.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
import requests

from ingestion.http import HttpSettings
from ingestion.pipeline import ingest
from sandbox.server.app import SandboxThread
from tests.ingestion.battery import clean_env
from tests.relay import Relay, Request

pytestmark = [pytest.mark.integration]

CALLS, WINDOW_S = 4, 1.0  # the sandbox's limit for Harvest, and the client's budget


def test_a_budget_equal_to_the_vendors_limit_meets_no_429_when_calls_are_delayed_on_the_way(
        served_firm: SandboxThread, small_firm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)
    monkeypatch.setenv("SOURCES__HARVEST__RATE_LIMIT_CALLS", str(CALLS))
    monkeypatch.setenv("SOURCES__HARVEST__RATE_LIMIT_WINDOW_S", str(WINDOW_S))
    reply = requests.put(f"{served_firm.root}/_sandbox/faults", timeout=10, json={
        "rate_limit": True, "limits": {"harvest": {"requests": CALLS, "window_s": WINDOW_S}}})
    assert reply.status_code == 200, reply.text
    rng, lock = random.Random(11), threading.Lock()
    delays: list[float] = []

    def on_the_way(request: Request) -> None:  # half the requests arrive late, up to 0.4 s
        with lock:
            delay = rng.uniform(0.05, 0.4) if rng.random() < 0.5 else 0.0
            delays.append(delay)
        time.sleep(delay)

    served_firm.state.faults.injected.clear()
    with Relay(served_firm.port, on_request=on_the_way) as relay:
        relay.point(small_firm / "endpoints.json")
        result = ingest(data_dir=small_firm.parent, sources=["harvest"],
                        http=HttpSettings(max_attempts=3, backoff_factor=0.05),
                        deletion_scan_hours=0)
    assert not result.errors, result.errors
    run = result.runs[0]
    calls = run.tally.calls
    assert calls.calls > 3 * CALLS, "enough calls for the budget to bind"
    assert sum(1 for d in delays if d > 0) >= CALLS, "some calls were held back"
    assert run.limiter is not None and run.limiter.waited_s > 0, "the budget was binding"
    throttled = dict(served_firm.state.faults.injected).get("rate_limit", 0)
    assert throttled == 0 and "429" not in calls.retries, (throttled, dict(calls.retries))
