"""Reliability battery tests 16 to 19 against the sandbox CRM (shared/RELIABILITY.md): a 409 on a
create, the CRM's rate limit with 429s and 5xx, ambiguous outcomes (the CRM wrote, then the
answer was lost or came too late) and people editing fields while a sync runs.

Every figure is counted on the CRM's side: its write log, its store, and the tap in front of its
API (``tests/reverse_sync/tap.py``), which sees each call arrive and is answered.
"""

from __future__ import annotations

import dataclasses
import random
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

import orjson
import pytest
import requests

from reverse_sync.desired import OBJECTS_BY_NAME, read_desired
from reverse_sync.model import Change, CrmObject, DesiredRecord
from reverse_sync.runner import Sync
from reverse_sync.writer import CrmRecord
from tests.reliability import record
from tests.reverse_sync.conftest import TEST_POLICY, Crm
from tests.reverse_sync.tap import Call, max_in_window, tapped

pytestmark = pytest.mark.integration


def _planned(sync: Sync) -> int:
    """Changes a fresh plan still has to write (0: the CRM holds the desired state)."""
    return sync.plan().counts().get("planned", 0)


def _mirrors(crm: Crm, count: int) -> list[DesiredRecord]:
    """Invoice mirrors the CRM holds and the sync models describe, with an invoice number."""
    desired = read_desired(crm.data_dir / "warehouse.duckdb")
    found = [r for r in desired.records["erp_invoices"]
             if r.crm_id and r.values.get("invoice_number")]
    assert len(found) >= count
    return found[:count]


# ---- 16: a 409 conflict on a create -----------------------------------------------------------


def test_a_create_refused_with_409_is_bisected_to_its_record_retried_then_given_up(
        crm: Crm) -> None:
    """Battery test 16 (409 part): a mirror to re-create clashes with a record someone made by
    hand, on a property an admin made unique; the rest of the batch is written."""
    clash, fresh = _mirrors(crm, 2)
    # HubSpot's API cannot make an existing property unique (neither can the sandbox's): the
    # admin's change goes into the store before the CRM serves its first call
    with sqlite3.connect(crm.store / "hubspot.sqlite") as db:
        db.execute("update properties set has_unique_value = 1 "
                   "where object_type = 'erp_invoices' and name = 'invoice_number'")
    for mirror in (clash, fresh):  # a clean-up deleted two mirrors: the sync re-creates them
        assert mirror.crm_id is not None
        crm.archive("erp_invoices", mirror.crm_id)
    crm.create("erp_invoices", {"netsuite_invoice_id": f"manual-{clash.key}",
                                "invoice_number": str(clash.values["invoice_number"])})
    policy = dataclasses.replace(TEST_POLICY, hold_in_closed_period=())
    with crm.sync(policy) as sync:
        plan, result = sync.apply()
        assert plan is not None
        failed = {c.record_key for c, _ in result.failures}
        assert failed == {clash.key}  # exactly the clashing record
        assert all("already exists" in reason for _, reason in result.failures)
        letters = sync.journal.dead_letters()
        assert {d["record_key"] for d in letters.values()} == {clash.key}
        assert {d["http_status"] for d in letters.values()} == {409}
        assert result.bisections > 0
        batches = sync.journal.db.execute("select count(*) from batches where run_id = ?",
                                          (result.run_id,)).fetchone()[0]
        bisection_calls = result.write_calls - batches
        first_calls = crm.write_calls()
        for attempt in (2, 3):  # later runs retry it, up to retry_max_attempts (3)
            _, retry = sync.apply()
            assert retry.write_calls == 1
            assert {d["attempts"] for d in sync.journal.dead_letters().values()} == {attempt}
        assert {d["state"] for d in sync.journal.dead_letters().values()} == {"given_up"}
        calls = crm.write_calls()
        again, _ = sync.apply()
        assert again is not None and again.counts()["given_up"] == len(letters)
        assert crm.write_calls() == calls  # given up: an exception, not sent again
    live = crm.live_records("erp_invoices", "netsuite_invoice_id", [clash.key, fresh.key])
    assert live == {fresh.key: 1}  # the other mirror was created once; the clash never
    assert crm.duplicate_writes() == []
    assert crm.resent_records() == []  # a record that succeeded was never sent again
    record("sync_partial_207_and_bisect", case="409-create", injected=1,
           survived=len(failed) if failed == {clash.key} else 0,
           duplicates=len(crm.duplicate_writes()), extra_calls=bisection_calls,
           bisections=result.bisections, succeeded_resent=len(crm.resent_records()),
           retries=calls - first_calls, given_up=len(letters))


# ---- 17: the CRM's rate limit, 429 with Retry-After, and 5xx ----------------------------------


def test_at_the_crm_limit_with_429s_and_5xx_the_run_completes_within_the_limit(
        crm: Crm) -> None:
    """Battery test 17. The CRM allows 8 calls a second (HubSpot's 190 per 10 s, scaled down so
    the test is short), and the sync is set to the same budget; another app on the account
    spends part of it, so the sync meets 429s (Retry-After in seconds and as an HTTP date),
    and 5 % of calls fail with a 5xx."""
    _rate_limited_run(crm, seed=5)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(1, 11))
def test_at_the_crm_limit_the_run_completes_for_many_seeds(crm: Crm, seed: int) -> None:
    _rate_limited_run(crm, seed=seed)


def _rate_limited_run(crm: Crm, seed: int) -> None:
    limit, window = 8, 1.0
    crm.faults(rate_limit=True, error_rate=0.05, seed=seed, retry_after_format="mixed",
               limits={"hubspot": {"requests": limit, "window_s": window}})
    policy = dataclasses.replace(TEST_POLICY, batch_size=5, calls_per_window=limit,
                                 window_s=window)
    stop = threading.Event()

    def neighbour() -> None:  # another integration on the same account: 3 calls a second
        with requests.Session() as session:
            while not stop.is_set():
                session.get(crm.url("/crm/v3/objects/companies"), params={"limit": 1},
                            headers={"Authorization": f"Bearer {crm.token}",
                                     "User-Agent": "another-app"}, timeout=10)
                stop.wait(1 / 3)

    with tapped(crm.server) as tap, crm.sync(policy) as sync:
        other = threading.Thread(target=neighbour, daemon=True)
        other.start()
        try:
            _, result = sync.apply()
        finally:
            stop.set()
            other.join(timeout=30)
        during = list(tap.calls)  # switching the faults off starts the CRM's windows afresh
        crm.faults(rate_limit=False, error_rate=0.0)
        left = _planned(sync)
    assert result.outcome["failed"] == 0
    assert left == 0  # the CRM holds every applied value
    assert crm.duplicate_writes() == []
    calls = [c for c in during if c.from_sync]
    throttled = [c for c in calls if c.status == 429]
    errors = [c for c in calls if c.status >= 500]
    assert throttled, "the other app should have pushed the sync into the CRM's limit"
    # the sandbox never counted more than its limit in any window ...
    accepted = max_in_window([c.at for c in during if c.status not in (0, 429)], window)
    assert accepted <= limit
    # ... and the sync alone never sent more than the budget it was given
    most = max_in_window([c.at for c in calls], window)
    assert most <= limit
    # no call came before a Retry-After ran out (429, and 503 when it carries one)
    early = tap.early_retries()
    assert early and max(early) <= 0.01, max(early)
    record("sync_rate_limit_adaptation", seed=seed, injected=len(throttled) + len(errors),
           survived=len(throttled) + len(errors) if left == 0 else 0,
           duplicates=len(crm.duplicate_writes()), extra_calls=len(throttled) + len(errors),
           limit=limit, window_s=window, max_calls_per_window=most,
           max_accepted_per_window=accepted, throttled_429=len(throttled),
           server_errors=len(errors), worst_early_retry_s=round(max(max(early), 0.0), 3),
           sync_calls=len(calls), retry_after_checked=len(early))


# ---- 18: the CRM wrote, then the answer was lost ------------------------------------------------


def _injected_resolved(crm: Crm, injected: list[Call]) -> int:
    """Injected calls after which none of their batch's records was written again (one write
    request per correlation id in the CRM's write log)."""
    requests_by_batch: dict[str, set[str]] = {}
    for w in crm.writes():
        if w["correlation_id"]:
            requests_by_batch.setdefault(w["correlation_id"], set()).add(w["written_at"])
    batches = {c.correlation_id for c in injected}
    return sum(1 for b in batches if b is not None and len(requests_by_batch.get(b, ())) == 1)


VARIANTS = pytest.mark.parametrize(("variant", "budget"), [
    ("reset", 6),  # the CRM writes, then the connection drops mid-answer
    ("stall", 3),  # the CRM writes, then answers only after the client has given up
], ids=["reset-after-write", "stall-past-timeout"])


@VARIANTS
def test_an_ambiguous_write_is_read_back_and_confirmed_without_writing_again(
        crm: Crm, variant: str, budget: int) -> None:
    """Battery test 18: faults on write calls drawn at random, and on a call that creates
    invoice mirrors (upsert by the unique property ``netsuite_invoice_id``)."""
    _ambiguous_run(crm, variant, budget, seed=18)


@pytest.mark.soak
@VARIANTS
@pytest.mark.parametrize("seed", range(1, 9))
def test_ambiguous_writes_resolve_for_many_seeds(crm: Crm, variant: str, budget: int,
                                                 seed: int) -> None:
    _ambiguous_run(crm, variant, budget, seed)


def _ambiguous_run(crm: Crm, variant: str, budget: int, seed: int) -> None:
    rng = random.Random(seed)
    gone = _mirrors(crm, 3)
    for mirror in gone:  # three mirrors to re-create
        assert mirror.crm_id is not None
        crm.archive("erp_invoices", mirror.crm_id)
    keys = {m.key for m in gone}
    writes = Counter[str]()  # faults so far

    def choose(call: Call) -> str | None:
        if not (call.from_sync and call.is_write):
            return None
        inputs = orjson.loads(call.body or b"{}").get("inputs") or []
        creates = call.path.endswith("/batch/upsert") and any(
            str(i.get("id")) in keys for i in inputs)
        # half the writes at random, keeping the last fault for a call that creates mirrors
        if (creates and writes["faulted"] < budget) or (
                rng.random() < 0.5 and writes["faulted"] < budget - 1):
            writes["faulted"] += 1
            return variant
        return None

    policy = dataclasses.replace(TEST_POLICY, batch_size=5, timeout_s=2.0,
                                 hold_in_closed_period=())
    with tapped(crm.server, choose, stall_s=4.0) as tap, crm.sync(policy) as sync:
        _, result = sync.apply()
        injected = [c for c in tap.calls if c.fault == variant]
        sent = Counter("write" if c.is_write else "read" for c in tap.sync_calls()
                       if c.is_write or c.path.endswith("/batch/read"))
    with crm.sync(policy) as sync:
        left = _planned(sync)
        batches = sync.journal.db.execute("select count(*) from batches where run_id = ?",
                                          (result.run_id,)).fetchone()[0]
    # a fault-free run: one read per object at plan time, then per batch one re-read, one write
    extra_writes = sent["write"] - batches
    extra_reads = sent["read"] - len(OBJECTS_BY_NAME) - batches
    assert 0 < len(injected) <= budget
    assert any(c.path.endswith("/batch/upsert") for c in injected)  # creates were hit
    assert result.outcome["failed"] == 0
    assert result.ambiguous >= len(injected)
    assert left == 0  # the CRM holds the desired state
    assert crm.duplicate_writes() == []
    live = crm.live_records("erp_invoices", "netsuite_invoice_id", sorted(keys))
    assert live == dict.fromkeys(sorted(keys), 1)  # each mirror created once
    resolved = _injected_resolved(crm, injected)
    assert resolved == len({c.correlation_id for c in injected})
    record("sync_ambiguous_outcome", seed=seed, case=variant, injected=len(injected),
           survived=resolved,
           duplicates=len(crm.duplicate_writes()), extra_calls=extra_writes + extra_reads,
           resent_writes=extra_writes, read_backs=extra_reads,
           duplicate_creates=sum(n - 1 for n in live.values()))


# ---- 19: a person's edit is a conflict, not an overwrite -----------------------------------


def _another_value(change: Change) -> str:
    """A value a person might type that is neither what the plan read nor what it wants."""
    if change.kind in ("money", "number"):
        return str(Decimal(change.desired) + Decimal("1234.56"))
    return f"{change.desired}-edited"


def test_person_edits_before_apply_and_just_before_the_re_read_are_kept_as_conflicts(
        crm: Crm) -> None:
    """Battery test 19: one edit between plan and apply, one in the moment before the
    pre-write re-read of a later batch (after earlier batches were written)."""
    policy = dataclasses.replace(TEST_POLICY, batch_size=5)
    with crm.sync(policy) as sync:
        plan = sync.plan()
        applied = [p.change for p in plan.changes if p.decision == "apply"]
        # the early edit is on a property the CRM has before pslake creates its own ones
        early = next(c for c in applied if (c.object, c.field) == ("deals", "erp_project_code"))
        deals = sorted({c.key for c in applied if c.object == "deals"} - {early.key})
        late = next(c for c in applied if c.object == "deals" and c.key == deals[-1])
        values = {early.change_id: _another_value(early), late.change_id: _another_value(late)}
        crm.person_edits("deals", early.key, {early.field: values[early.change_id]})

        deals_obj = OBJECTS_BY_NAME["deals"]
        late_ref = deals_obj.read_key(late.key, late.crm_id)
        read = sync.writer.read
        rereads = Counter[str]()

        def edit_then_read(obj: CrmObject, keys: Sequence[str], fields: Sequence[str]
                           ) -> dict[str, CrmRecord]:
            if obj.name == "deals" and late_ref in keys and not rereads["edited"]:
                rereads["edited"] += 1
                rereads["written before"] = crm.write_calls()
                crm.person_edits("deals", late.key, {late.field: values[late.change_id]})
            return read(obj, keys, fields)

        sync.writer.read = edit_then_read  # type: ignore[method-assign]
        _, result = sync.apply(plan.run_id)
    assert rereads["edited"] == 1 and rereads["written before"] > 0  # a later batch
    found = {(c.record_key, c.field): c.detail or "" for c in result.conflicts}
    assert set(found) == {(early.key, early.field), (late.key, late.field)}
    for change in (early, late):
        detail = found[(change.key, change.field)]
        # reported with both values: the person's, and the one pslake would have written
        assert repr(values[change.change_id]) in detail and repr(change.desired) in detail
        assert crm.read("deals", change.key, [change.field]) == {
            change.field: values[change.change_id]}
    touched = {(early.key, early.field), (late.key, late.field)}
    overwrites = [w for w in crm.writes() if w["correlation_id"]
                  and (str(w["record_id"]), w["property"]) in touched]
    assert overwrites == []
    assert result.outcome["written"] == len(applied) - 2
    record("sync_conflict_not_overwritten", injected=2,
           survived=len(set(found) & touched) - len(overwrites), overwrites=len(overwrites),
           conflicts_detected=len(result.conflicts), written=result.outcome["written"])
