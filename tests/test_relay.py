"""The test relay's own measurement of early retries (``tests/relay.py``), against the sandbox.

The battery asserts that no retry comes before the ``Retry-After`` it answers; the relay must
report a retry that does, and must not blame one on an answer nobody read: a try the client
gave up on (its read timeout) whose late answer carried ``Retry-After``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from sandbox.server.app import SandboxThread
from tests.relay import Relay, Request

pytestmark = [pytest.mark.integration]


def _faults(server: SandboxThread, **settings: Any) -> None:
    reply = requests.put(f"{server.root}/_sandbox/faults", json=settings, timeout=10)
    assert reply.status_code == 200, reply.text


def _get(server: SandboxThread, timeout_s: float, relay: Relay | None = None) -> int | None:
    """One Harvest call, through the relay or straight to the sandbox: its status, or None
    when the client gave up waiting."""
    e = server.endpoints["harvest"]
    base = e["base_url"]
    if relay is not None:
        base = f"http://127.0.0.1:{relay.port}/{base.partition('://')[2].partition('/')[2]}"
    try:
        reply = requests.get(f"{base}/v2/users?per_page=1", timeout=timeout_s,
                             headers={"Authorization": f"Bearer {e['access_token']}",
                                      "Harvest-Account-Id": e["account_id"]})
    except requests.ReadTimeout:
        return None
    return reply.status_code


def _settle(relay: Relay, exchanges: int) -> None:
    """Wait until the relay has logged ``exchanges`` answers (a held one comes late)."""
    deadline = time.monotonic() + 10
    while len(relay.exchanges) < exchanges and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(relay.exchanges) == exchanges


ONE_CALL_IN_10_S = {"rate_limit": True, "limits": {"harvest": {"requests": 1, "window_s": 10}}}


def test_a_retry_before_retry_after_is_reported(served_firm: SandboxThread) -> None:
    _faults(served_firm, **ONE_CALL_IN_10_S)
    with Relay(served_firm.port) as relay:
        statuses = [_get(served_firm, 5, relay) for _ in range(3)]  # no wait between them
        _settle(relay, 3)
    assert statuses == [200, 429, 429]
    (early,) = relay.early_retries()  # the third came ~10 s before the second's Retry-After
    assert early > 5


def test_an_answer_that_came_after_the_client_gave_up_is_not_a_retry_after_to_keep(
        served_firm: SandboxThread) -> None:
    _faults(served_firm, **ONE_CALL_IN_10_S)
    assert _get(served_firm, 5) == 200  # the window's one call, straight to the sandbox
    held = threading.Event()

    def hold_the_first(request: Request) -> None:  # it reaches the sandbox after 1.5 s
        if not held.is_set():
            held.set()
            time.sleep(1.5)

    with Relay(served_firm.port, on_request=hold_the_first) as relay:
        assert _get(served_firm, 0.5, relay) is None  # the client gives up after 0.5 s
        assert _get(served_firm, 5, relay) == 429  # and tries again at once
        _settle(relay, 2)
    first, second = sorted(relay.exchanges, key=lambda e: e.requested_at)
    assert (first.status, first.fault, first.retry_after) == (429, "client gone", None)
    assert second.retry_after is not None and second.fault is None
    # the first answer's Retry-After was never read: the second try was not early
    assert relay.early_retries() == []
