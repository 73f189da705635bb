"""The reverse sync against the sandbox CRM: what it writes, what it refuses, what it survives.

Every assertion is on the CRM's side (its write log, request counters and values read back
through its API) or in the journal, never on what the sync says it did.
"""

from __future__ import annotations

import dataclasses

import pytest
import requests

from reverse_sync.desired import OBJECTS_BY_NAME, read_desired
from reverse_sync.model import canonical, same
from reverse_sync.runner import Sync
from reverse_sync.status import status
from tests.reliability import record
from tests.reverse_sync.conftest import TEST_POLICY, Crm
from tests.reverse_sync.tap import tapped

pytestmark = pytest.mark.integration


def _due(sync: Sync) -> dict[str, int]:
    """A fresh plan's changes by status (planned = still to write)."""
    report = sync.plan()
    return dict(report.counts())


def _owned_by_crm(crm: Crm) -> set[tuple[str, str]]:
    state = read_desired(crm.data_dir / "warehouse.duckdb")
    return {key for key, rule in state.rules.items() if rule.owner_system == "crm"}


def test_first_apply_writes_exactly_the_planned_changes_and_a_rerun_writes_nothing(
        crm: Crm) -> None:
    with crm.sync() as sync:
        plan, result = sync.apply()
        assert plan is not None
        planned = {(p.change.object, p.change.key, p.change.field):
                   canonical(p.change.kind, p.change.desired)
                   for p in plan.changes if p.decision == "apply"}
        kinds = {(p.change.object, p.change.field): p.change.kind for p in plan.changes}
        assert len(planned) > 100, "the small firm's first plan should have work to do"
        assert result.outcome["written"] == len(planned)
        written = {(w["object_type"], str(w["record_id"]), w["property"]):
                   canonical(kinds.get((w["object_type"], w["property"]), "text"), w["value"])
                   for w in crm.writes()}
        # what the CRM logged is what was planned (invoice mirrors are keyed by their ERP id)
        by_crm_id = {k: v for k, v in planned.items() if k[0] != "erp_invoices"}
        assert {k: written.get(k) for k in by_crm_id} == by_crm_id
        logged = [(w["object_type"], str(w["record_id"]), w["property"]) for w in crm.writes()]
        assert len(logged) == len(planned), sorted(set(logged) - set(planned))
        assert crm.duplicate_writes() == []
        calls = crm.write_calls()
        log_size = len(crm.writes())

        again, rerun = sync.apply()
        assert again is not None
        assert again.counts().get("planned", 0) == 0  # only held ones remain
        assert rerun.write_calls == 0
        assert crm.write_calls() == calls  # the CRM saw no write call at all
        assert len(crm.writes()) == log_size  # and wrote no property
    record("sync_noop_rerun", injected=1, survived=int(crm.write_calls() == calls),
           duplicates=len(crm.duplicate_writes()), write_calls_on_rerun=crm.write_calls() - calls,
           properties_written_on_rerun=len(crm.writes()) - log_size,
           planned_on_rerun=again.counts().get("planned", 0), plan_read_calls_on_rerun=again.calls,
           written_first=len(planned))


def test_a_record_the_crm_no_longer_has_is_dead_lettered_retried_then_given_up(
        crm: Crm) -> None:
    """Battery test 16 (207 part): k records of a batch are gone from the CRM."""
    waiting = dataclasses.replace(TEST_POLICY, retry_backoff_minutes=(5,))
    with crm.sync(waiting) as sync:
        first = sync.plan()
        gone = sorted({p.change.key for p in first.changes
                       if p.change.object == "deals" and p.decision == "apply"})[:3]
        others = sum(1 for p in first.changes
                     if p.decision == "apply" and p.change.key not in gone)
        for deal in gone:
            requests.delete(crm.url(f"/crm/v3/objects/deals/{deal}"), timeout=10,
                            headers={"Authorization": f"Bearer {crm.token}"}).raise_for_status()
        _, result = sync.apply()
        assert result.outcome["written"] == others  # the rest of its batch went through
        failed = {c.record_key for c, _ in result.failures}
        assert failed == set(gone)
        letters = sync.journal.dead_letters()
        assert {d["record_key"] for d in letters.values()} == set(gone)
        assert all("may be deleted or not exist" in d["reason"] for d in letters.values())
        assert {d["http_status"] for d in letters.values()} == {207}
        first_calls = crm.write_calls()

        # backoff: before the retry time the changes wait, and nothing is sent
        plan, result = sync.apply()
        assert plan is not None and plan.counts()["deferred"] == len(letters)
        assert crm.write_calls() == first_calls
    with crm.sync() as sync:
        for attempt in (2, 3):  # retried by later runs, up to retry_max_attempts (3)
            _due_now(sync)
            _, result = sync.apply()
            assert result.write_calls == 1
            assert {d["attempts"] for d in sync.journal.dead_letters().values()} == {attempt}
        assert {d["state"] for d in sync.journal.dead_letters().values()} == {"given_up"}
        calls = crm.write_calls()
        plan, result = sync.apply()
        assert plan is not None and plan.counts()["given_up"] == len(letters)
        assert crm.write_calls() == calls  # given up: not sent again
        given_up = sync.journal.dead_letters(("given_up",))
    # surfaced as exceptions: `pslake sync status` lists them with the CRM's reason
    shown = status(crm.data_dir)
    assert f"dead letters: {len(given_up)} ({len(given_up)} given up)" in shown
    assert sum("may be deleted or not exist" in line and "given_up" in line
               for line in shown) == len(given_up)
    resent = crm.resent_records(exclude=set(gone))
    assert resent == []  # a record that succeeded was never sent again
    record("sync_partial_207_and_bisect", case="207", injected=len(gone),
           survived=len(failed & set(gone)) if failed == set(gone) else 0,
           duplicates=len(crm.duplicate_writes()), extra_calls=calls - first_calls,
           succeeded_resent=len(resent), given_up=len(given_up), retries=calls - first_calls)


def _due_now(sync: Sync) -> None:
    """Time passes: the dead letters' retry time has come."""
    with sync.journal.transaction() as db:
        db.execute("update dead_letters set next_attempt_at = '2000-01-01T00:00:00.000+00:00'")


def test_a_batch_rejected_for_one_bad_value_is_bisected_to_the_bad_records(crm: Crm) -> None:
    with crm.sync() as sync:
        plan = sync.plan()
        bad = {p.change.key for p in plan.changes
               if p.change.object == "erp_invoices" and p.change.field == "invoice_status"
               and p.change.desired == "paid"}
        assert bad, "the small firm has drifted invoice statuses"
        good = {p.change.key for p in plan.changes
                if p.change.object == "erp_invoices" and p.decision == "apply"} - bad
        # an admin removes the option "paid": every batch carrying it is rejected whole (400)
        response = requests.patch(
            crm.url("/crm/v3/properties/erp_invoices/invoice_status"), timeout=10,
            headers={"Authorization": f"Bearer {crm.token}"},
            json={"options": [{"label": o, "value": o, "displayOrder": i, "hidden": False}
                              for i, o in enumerate(["open", "partially_paid"])]})
        assert response.status_code == 200, response.text
        _, result = sync.apply(plan.run_id)
    failed = {c.record_key for c, _ in result.failures if c.object == "erp_invoices"}
    assert failed == bad
    assert all("paid" in reason for _, reason in result.failures)
    assert result.bisections > 0
    written = {str(w["record_id"]) for w in crm.writes() if w["object_type"] == "erp_invoices"}
    assert len(written) >= len(good)
    assert crm.duplicate_writes() == []  # a record that succeeded was never sent again
    assert crm.resent_records() == []
    with crm.sync() as sync:
        batches = sync.journal.db.execute("select count(*) from batches where run_id = ?",
                                          (result.run_id,)).fetchone()[0]
    record("sync_partial_207_and_bisect", case="400-bisect", injected=len(bad),
           survived=len(failed) if failed == bad else 0,
           duplicates=len(crm.duplicate_writes()),
           extra_calls=crm.write_calls() - batches,  # beyond one call per batch
           bisections=result.bisections, succeeded_resent=len(crm.resent_records()))


def test_a_person_edit_between_plan_and_apply_is_a_conflict_left_alone(crm: Crm) -> None:
    with crm.sync() as sync:
        plan = sync.plan()
        target = next(p.change for p in plan.changes
                      if p.change.object == "companies" and p.decision == "apply")
        crm.person_edits("companies", target.key, {target.field: "FR"})
        _, result = sync.apply(plan.run_id)
    assert [(c.record_key, c.field) for c in result.conflicts] == [(target.key, target.field)]
    assert "'FR'" in (result.conflicts[0].detail or "")
    assert crm.read("companies", target.key, [target.field]) == {target.field: "FR"}
    pslake_writes = [w for w in crm.writes() if w["correlation_id"]]
    assert not [w for w in pslake_writes
                if (str(w["record_id"]), w["property"]) == (target.key, target.field)]
    assert result.outcome["written"] == sum(1 for p in plan.changes if p.decision == "apply") - 1


def test_a_held_change_waits_for_approval_and_records_its_approver(crm: Crm) -> None:
    with crm.sync() as sync:
        plan, _ = sync.apply()
        assert plan is not None
        held = [p.change for p in plan.changes if p.decision == "hold"]
        assert [c.field for c in held] == ["legal_name"]
        legal = held[0]
        assert crm.read("companies", legal.key, ["legal_name"]) == {"legal_name": legal.current}

        approved = sync.approve([legal.change_id], "cfo@example.com")
        assert [c.change_id for c in approved] == [legal.change_id]
        _, result = sync.apply()
        assert result.outcome["written"] == 1
        audit = sync.journal.db.execute(
            "select approver, before_value, after_value from audit where change_id = ?",
            (legal.change_id,)).fetchone()
    assert audit["approver"].startswith("cfo@example.com at ")  # who, and when
    assert (audit["before_value"], audit["after_value"]) == (legal.current, legal.desired)
    assert crm.read("companies", legal.key, ["legal_name"]) == {"legal_name": legal.desired}


def test_approving_an_unknown_or_unheld_change_is_refused_by_name(crm: Crm) -> None:
    from pslake.errors import PslakeError

    with crm.sync() as sync:
        plan = sync.plan()
        applied = next(p.change.change_id for p in plan.changes if p.decision == "apply")
        with pytest.raises(PslakeError, match="ffffffffffff: no such change"):
            sync.approve(["ffffffffffff"], "me")
        with pytest.raises(PslakeError, match="not waiting for approval"):
            sync.approve([applied], "me")


def test_fields_the_crm_owns_are_never_written(crm: Crm) -> None:
    with crm.sync() as sync:
        sync.apply()
    owned = _owned_by_crm(crm)
    assert owned, "the matrix names CRM-owned fields"
    assert not [w for w in crm.writes() if (w["object_type"], w["property"]) in owned]


def test_rate_limits_and_server_errors_slow_the_run_but_it_completes(crm: Crm) -> None:
    # the client believes it may send 40 calls a second; the CRM allows 8, and fails 1 in 10
    crm.faults(rate_limit=True, error_rate=0.1, seed=3,
               limits={"hubspot": {"requests": 8, "window_s": 1.0}})
    policy = dataclasses.replace(TEST_POLICY, batch_size=10, calls_per_window=40,
                                 window_s=1.0)
    with crm.sync(policy) as sync:
        _, result = sync.apply()
        assert result.outcome["failed"] == 0
        assert result.waits["429"] > 0  # throttled, and waited as Retry-After said
        statuses = crm.server.state.stats.statuses["hubspot"]
        assert int(statuses.get("429", 0)) >= result.waits["429"]
        crm.faults(rate_limit=False, error_rate=0.0)
        assert _due(sync).get("planned", 0) == 0  # the CRM holds every applied value
    assert crm.duplicate_writes() == []


def test_the_client_stays_within_the_crm_limit_so_no_call_is_throttled(crm: Crm) -> None:
    crm.faults(rate_limit=True, limits={"hubspot": {"requests": 8, "window_s": 1.0}})
    policy = dataclasses.replace(TEST_POLICY, batch_size=10, calls_per_window=8, window_s=1.0)
    with crm.sync(policy) as sync:
        _, result = sync.apply()
    assert result.outcome["written"] > 0
    assert crm.server.state.stats.statuses["hubspot"].get("429", 0) == 0


def test_a_dropped_connection_after_the_write_is_read_back_not_written_twice(
        crm: Crm) -> None:
    """Battery test 18 with the sandbox's own fault: any call may lose its answer."""
    # the CRM applies the write, then the connection drops mid-answer
    crm.faults(reset_rate=0.35, seed=7)
    policy = dataclasses.replace(TEST_POLICY, batch_size=10)
    with tapped(crm.server) as tap, crm.sync(policy) as sync:
        _, result = sync.apply()
        assert result.ambiguous > 0
        assert result.outcome["failed"] == 0
        crm.faults(reset_rate=0.0)
        assert _due(sync).get("planned", 0) == 0
    assert crm.duplicate_writes() == []
    dropped = [c for c in tap.sync_calls() if c.reset]
    dropped_writes = [c for c in dropped if c.is_write]
    assert dropped_writes, "the sandbox should have dropped a write's answer"
    # each lost answer costs a call: a read sent again, or a write read back
    record("sync_ambiguous_outcome", seed=7, case="sandbox-reset", injected=len(dropped),
           survived=len(dropped) if not crm.duplicate_writes() else 0,
           duplicates=len(crm.duplicate_writes()), extra_calls=len(dropped),
           dropped_writes=len(dropped_writes), read_backs=result.ambiguous)


def test_revert_restores_before_values_and_leaves_edited_fields_alone(crm: Crm) -> None:
    with crm.sync() as sync:
        plan, applied = sync.apply()
        assert plan is not None
        changes = [p.change for p in plan.changes if p.decision == "apply"
                   and p.change.object == "deals"]
        edited, kept = changes[0], changes[1]
        crm.person_edits("deals", edited.key, {edited.field: "12345"})
        result = sync.revert(applied.run_id)
        assert any(edited.field in line and "edited since" in line for line in result.skipped)
        assert crm.read("deals", edited.key, [edited.field]) == {edited.field: "12345"}
        restored = crm.read("deals", kept.key, [kept.field])[kept.field]
        assert restored == kept.current  # empty before pslake's first write
        reverted = sync.journal.db.execute(
            "select count(*) from audit where run_id = ? and reverted_by = ?",
            (applied.run_id, result.run_id)).fetchone()[0]
        assert reverted == result.outcome["written"] + (
            len([1 for p in plan.changes if p.change.object == "erp_invoices"
                 and p.change.current is None and p.decision == "apply"]))
        # every field the revert put back holds its before value in the CRM
        rows = sync.journal.db.execute(
            "select object, record_key, crm_id, field, kind, before_value from audit "
            "where run_id = ? and reverted_by = ?", (applied.run_id, result.run_id)).fetchall()
        not_restored = []
        for row in rows:
            obj = OBJECTS_BY_NAME[row["object"]]
            found = sync.writer.read(obj, [obj.read_key(row["record_key"], row["crm_id"])],
                                     [row["field"]])
            record_now = next(iter(found.values()), None)
            now = record_now.values.get(row["field"]) if record_now else None
            if not same(row["kind"], now, row["before_value"]):
                not_restored.append((row["object"], row["record_key"], row["field"], now))
        assert not_restored == []
        edited_left = crm.read("deals", edited.key, [edited.field]) == {edited.field: "12345"}
    skipped_edited = [line for line in result.skipped if "edited since" in line]
    record("sync_revert_roundtrip", injected=1, survived=int(edited_left),
           records_reverted=len({(r["object"], r["record_key"]) for r in rows}),
           fields_reverted=len(rows), records_skipped_edited=len(skipped_edited),
           revert_write_calls=result.write_calls, overwrites=int(not edited_left))
