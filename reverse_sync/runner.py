"""The sync's steps with their I/O: plan, apply, approve, revert, status, recovery.

Every step first finishes what a killed run left half done (``recover``): a write intent with no
recorded outcome is read back from the CRM (once a call the killed run may still have had on its
way has had ``timeout_s`` to land), the fields holding their values are confirmed (and audited)
without writing again, the rest are planned again.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import logging
import os
import signal
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from ingestion.settings import vendor_settings
from pslake import settings
from pslake.errors import PslakeError
from pslake.transform import warehouse_path
from reverse_sync.desired import CUSTOM_PROPERTIES, OBJECTS_BY_NAME, read_desired
from reverse_sync.journal import Journal, StoredChange, now_utc, stamp, sync_dir
from reverse_sync.model import Change, CrmObject, PlannedChange, ValueKind, same
from reverse_sync.plan import PlanInput, plan
from reverse_sync.policy import Policy, decide, load_policy
from reverse_sync.writer import CallStats, CrmRecord, HubSpotWriter, WriteInput

log = logging.getLogger(__name__)

LOCK_FILE = "sync.lock"
# Test hook for the crash tests: "<point>:<n>" SIGKILLs this process the n-th time it reaches
# <point> (after_intent: journaled, not sent; after_send: written, not confirmed; after_confirm).
CRASH_ENV = "PSLAKE_SYNC_CRASH_AT"
Progress = Callable[[str], None]
_reached: Counter[str] = Counter()


def _crash_point(name: str) -> None:
    spec = os.environ.get(CRASH_ENV)
    if not spec or spec.partition(":")[0] != name:
        return
    _reached[name] += 1
    if _reached[name] == int(spec.partition(":")[2] or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def actor() -> str:
    """Who runs this: ``$PSLAKE_ACTOR``, else the login name."""
    try:
        return os.environ.get("PSLAKE_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(slots=True)
class PlanReport:
    """A stored plan and its counts."""

    run_id: str
    changes: list[PlannedChange]
    statuses: dict[str, tuple[str, str | None]]
    records: int
    fields_compared: int
    unchanged: int
    no_desired_value: int
    missing_records: int
    recovered: int
    calls: int

    def status_of(self, item: PlannedChange) -> tuple[str, str | None]:
        """What will happen to a change (a failed one may wait or be given up), and why."""
        default = {"apply": "planned", "hold": "held", "refuse": "refused"}[item.decision]
        return self.statuses.get(item.change.change_id, (default, None))

    def counts(self) -> Counter[str]:
        """Changes by what will happen to them."""
        return Counter(self.status_of(p)[0] for p in self.changes)


@dataclass(slots=True)
class ApplyReport:
    """What an apply (or revert) run did."""

    run_id: str
    plan_run_id: str
    outcome: Counter[str] = field(default_factory=Counter)
    write_calls: int = 0
    read_calls: int = 0
    waits: Counter[str] = field(default_factory=Counter)
    ambiguous: int = 0
    bisections: int = 0
    conflicts: list[StoredChange] = field(default_factory=list)
    failures: list[tuple[StoredChange, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class Sync:
    """One data folder's reverse sync: the journal, the policy and (lazily) the CRM writer."""

    def __init__(self, data_dir: Path | None = None, policy: Policy | None = None,
                 policy_path: Path | None = None, writer: HubSpotWriter | None = None,
                 progress: Progress | None = None) -> None:
        self.data_dir = settings.data_dir(data_dir)
        self.policy = policy or load_policy(policy_path)
        self.journal = Journal(sync_dir(self.data_dir))
        self._writer = writer
        self._locked = False
        self._reverts: dict[str, str | None] = {}
        self.say: Progress = progress or (lambda _m: None)

    def close(self) -> None:
        """Close the journal and the CRM connections."""
        self.journal.close()
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> Sync:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def writer(self) -> HubSpotWriter:
        """The CRM client, made on first use (plan and apply need it, status does not)."""
        if self._writer is None:
            hub = vendor_settings("hubspot", self.data_dir)
            p = self.policy
            self._writer = HubSpotWriter(hub.base_url, hub.access_token,
                                         calls_per_window=p.calls_per_window,
                                         window_s=p.window_s, timeout_s=p.timeout_s,
                                         max_call_attempts=p.max_call_attempts)
        return self._writer

    # ---- lock -----------------------------------------------------------------------------------

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """One apply / revert at a time per data folder (an OS lock: a crash releases it)."""
        if self._locked:
            yield
            return
        path = sync_dir(self.data_dir) / LOCK_FILE
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PslakeError("another `pslake sync apply` or `revert` is running on "
                                  f"{self.data_dir}; wait for it to finish") from None
            self._locked = True
            try:
                yield
            finally:
                self._locked = False
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---- recovery -------------------------------------------------------------------------------

    def recover(self) -> int:
        """Settle the write intents a killed run left open; returns changes confirmed.

        Only under the apply lock: the open intents of an apply still running are not to be
        touched. A plan made while an apply runs skips this (and says so).
        """
        if not self._locked:
            try:
                with self.exclusive():
                    return self.recover()
            except PslakeError:
                if self.journal.pending_batches():
                    self.say("an apply is running: its open write intents are left to it")
                return 0
        confirmed = 0
        approvals = self.journal.approvals()
        pending = self.journal.pending_batches()
        self._let_in_flight_land(pending)
        for batch in pending:
            obj = OBJECTS_BY_NAME[batch["object"]]
            changes = self.journal.batch_changes(batch["batch_id"])
            if batch["operation"] == "archive":
                with self.journal.transaction() as db:
                    self.journal.close_batch(db, batch["batch_id"], "resolved", 0,
                                             "open after a crash; archive is repeated if due")
                    self.journal.set_status(db, batch["run_id"], [c.change_id for c in changes],
                                            "planned", "not confirmed before a crash")
                continue
            current = self.writer.read(obj, [obj.read_key(c.record_key, c.crm_id) for c in changes],
                                       sorted({c.field for c in changes})) if changes else {}
            with self.journal.transaction() as db:
                for change in changes:
                    record = current.get(obj.read_key(change.record_key, change.crm_id))
                    value = record.values.get(change.field) if record else None
                    if same(_kind(change), value, change.desired_value):
                        self._confirm(db, change, batch["batch_id"], batch["run_id"],
                                      approvals, record.crm_id if record else None)
                        confirmed += 1
                    else:
                        self.journal.set_status(db, change.run_id, [change.change_id],
                                                "planned", "not written before a crash")
                self.journal.close_batch(db, batch["batch_id"], "resolved", 0,
                                         "read back after the process died mid-call")
        if confirmed:
            self.say(f"recovered: {confirmed} change(s) a killed run had written, confirmed "
                     "from the CRM without writing again")
        return confirmed

    def _let_in_flight_land(self, pending: Sequence[sqlite3.Row]) -> None:
        """Wait until no call of a killed run can still be on its way to the CRM.

        A call that left just before its process died may reach the CRM after the next run's
        read-back; that run would then send the write again, and it would land twice. pslake
        gives up on an answer after ``timeout_s``, so it gives a dead run's last call as long
        before reading back (a call the CRM takes longer to apply can still land late: the
        live path has the same bound).
        """
        sent = [_moment(b["sent_at"] or b["created_at"]) for b in pending]
        if not sent:
            return
        grace = self.policy.timeout_s + 0.5
        wait = min(grace, (max(sent) - now_utc()).total_seconds() + grace)
        if wait > 0:
            self.say(f"waiting {wait:.1f} s for a write a killed run may have on its way")
            time.sleep(wait)

    def _confirm(self, db: sqlite3.Connection, change: StoredChange, batch_id: str,
                 run_id: str, approvals: dict[str, str], crm_id: str | None) -> None:
        if crm_id and not change.crm_id:
            change = replace(change, crm_id=crm_id)
            db.execute("update changes set crm_id = ? where run_id = ? and change_id = ?",
                       (crm_id, change.run_id, change.change_id))
        self.journal.confirm_written(db, change, batch_id, approvals.get(change.change_id),
                                     run_id)
        reverted = self._reverted_run(run_id)
        if reverted is not None:
            db.execute("update audit set reverted_by = ? where run_id = ? and object = ? and "
                       "record_key = ? and field = ? and reverted_by is null",
                       (run_id, reverted, change.object, change.record_key, change.field))

    def _reverted_run(self, run_id: str) -> str | None:
        """For a revert run, the run it reverts (looked up once per run)."""
        if run_id not in self._reverts:
            run = self.journal.run(run_id)
            self._reverts[run_id] = (run["plan_run_id"] if run is not None
                                     and run["kind"] == "revert" else None)
        return self._reverts[run_id]

    # ---- plan -----------------------------------------------------------------------------------

    def plan(self) -> PlanReport:
        """Read the desired and the current state, decide every change, store the plan."""
        recovered = self.recover()
        calls_before = self.writer.stats.calls
        desired = read_desired(warehouse_path(self.data_dir))
        current: dict[tuple[str, str], dict[str, str | None]] = {}
        for name, records in desired.records.items():
            obj = OBJECTS_BY_NAME[name]
            keys = [obj.read_key(r.key, r.crm_id) for r in records]
            self.say(f"reading {len(keys):,} {name} from the CRM")
            found = self.writer.read(obj, keys, desired.fields[name])
            for record in records:
                got = found.get(obj.read_key(record.key, record.crm_id))
                if got is not None:
                    current[(name, record.key)] = dict(got.values)
        result = plan(PlanInput(
            desired=[r for rs in desired.records.values() for r in rs],
            current=current, last_written=self.journal.last_written(), rules=desired.rules))
        approvals = self.journal.approvals()
        decided = [decide(c, desired.rules.get((c.object, c.field)), self.policy, approvals)
                   for c in result.changes]
        statuses = self._retry_statuses(decided)
        self.journal.resolve_dead_letters(p.change.change_id for p in decided)
        run_id = self.journal.start_run("plan", actor())
        self.journal.store_plan(run_id, decided, statuses)  # type: ignore[arg-type]
        report = PlanReport(run_id, decided, statuses, result.records, result.fields_compared,
                            result.unchanged, result.no_desired_value,
                            len(result.missing_records), recovered,
                            self.writer.stats.calls - calls_before)
        self.journal.finish_run(run_id, "done", {**report.counts(),
                                                 "records": result.records,
                                                 "unchanged": result.unchanged,
                                                 "no_desired_value": result.no_desired_value,
                                                 "read_calls": report.calls})
        return report

    def _retry_statuses(self, decided: Sequence[PlannedChange]
                        ) -> dict[str, tuple[str, str | None]]:
        """Changes that failed before: given up, or waiting for their retry time."""
        dead = self.journal.dead_letters()
        now = stamp()
        statuses: dict[str, tuple[str, str | None]] = {}
        for item in decided:
            letter = dead.get(item.change.change_id)
            if letter is None or item.decision != "apply":
                continue
            if letter["state"] == "given_up":
                statuses[item.change.change_id] = (
                    "given_up", f"rejected {letter['attempts']} times: {letter['reason']}")
            elif letter["next_attempt_at"] > now:
                statuses[item.change.change_id] = (
                    "deferred", f"retry after {letter['next_attempt_at']} "
                                f"(attempt {letter['attempts'] + 1}): {letter['reason']}")
        return statuses

    # ---- apply ----------------------------------------------------------------------------------

    def apply(self, plan_run_id: str | None = None) -> tuple[PlanReport | None, ApplyReport]:
        """Apply a stored plan, or plan now and apply that.

        Only changes decided ``apply`` (or held and since approved) are written; each batch is
        re-read just before it is sent, and a field someone changed since the plan read it is
        a conflict, left alone.
        """
        with self.exclusive():
            report = None
            if plan_run_id is None:
                report = self.plan()
                plan_run_id = report.run_id
            else:
                self.recover()
                run = self.journal.run(plan_run_id)
                if run is None or run["kind"] != "plan":
                    raise PslakeError(f"no plan with run id {plan_run_id!r}; "
                                      "see `pslake sync status`")
            apply_id = self.journal.start_run("apply", actor(), plan_run_id)
            result = ApplyReport(apply_id, plan_run_id)
            status = "failed"
            try:
                self._release_approved(plan_run_id)
                due = self.journal.changes(plan_run_id, ["planned"])
                self._ensure_properties(due)
                self._apply_changes(apply_id, due, result)
                status = "done"
            finally:
                self._finish(apply_id, status, result)
            return report, result

    def _release_approved(self, plan_run_id: str) -> None:
        approvals = self.journal.approvals()
        held = [c for c in self.journal.changes(plan_run_id, ["held"])
                if c.change_id in approvals]
        if held:
            with self.journal.transaction() as db:
                for change in held:
                    db.execute("update changes set status = 'planned', decision = 'apply', "
                               "rule = rule || '; approved by ' || ? where run_id = ? and "
                               "change_id = ?", (approvals[change.change_id], change.run_id,
                                                 change.change_id))

    def _ensure_properties(self, due: Sequence[StoredChange]) -> None:
        """Create pslake's own CRM properties the portal lacks, before their first write."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for change in due:
            if change.field in CUSTOM_PROPERTIES.get(change.object, {}):
                wanted[change.object].add(change.field)
        for name, props in wanted.items():
            obj = OBJECTS_BY_NAME[name]
            missing = sorted(props - self.writer.property_names(obj))
            for prop in missing:
                spec = CUSTOM_PROPERTIES[name][prop]
                self.writer.create_property(obj, {"name": prop, "groupName": "pslake",
                                                  "description": "Written by pslake", **spec})
                self.say(f"created CRM property {name}.{prop}")

    def _apply_changes(self, run_id: str, due: Sequence[StoredChange],
                       result: ApplyReport) -> None:
        by_object: dict[str, dict[str, list[StoredChange]]] = defaultdict(dict)
        for change in due:
            by_object[change.object].setdefault(change.record_key, []).append(change)
        size = self.policy.batch_size
        total = sum(len(records) for records in by_object.values())
        done = 0
        approvals = self.journal.approvals()
        for name, records in by_object.items():
            obj = OBJECTS_BY_NAME[name]
            keys = list(records)
            for start in range(0, len(keys), size):
                batch = [c for k in keys[start:start + size] for c in records[k]]
                self._apply_batch(run_id, obj, batch, result, approvals)
                done += len(keys[start:start + size])
                if done % (size * 20) < size or done == total:
                    self.say(f"applied {done:,} of {total:,} records "
                             f"({result.write_calls} write calls)")

    def _apply_batch(self, run_id: str, obj: CrmObject, batch: list[StoredChange],
                     result: ApplyReport, approvals: dict[str, str]) -> None:
        """Re-read, journal the intent, write, confirm: one batch call."""
        writer = self.writer
        before = replace(writer.stats, waits=Counter(writer.stats.waits))
        current = writer.read(obj, [obj.read_key(c.record_key, c.crm_id) for c in batch],
                              sorted({c.field for c in batch}))
        send: list[StoredChange] = []
        with self.journal.transaction() as db:
            for change in batch:
                record = current.get(obj.read_key(change.record_key, change.crm_id))
                value = record.values.get(change.field) if record else None
                kind = _kind(change)
                if same(kind, value, change.desired_value):
                    self.journal.set_status(db, change.run_id, [change.change_id], "already",
                                            "the CRM already held the value")
                    result.outcome["already"] += 1
                elif not same(kind, value, change.current_value):
                    detail = (f"CRM now holds {value!r}; the plan read "
                              f"{change.current_value!r} and would write "
                              f"{change.desired_value!r}: left alone")
                    self.journal.set_status(db, change.run_id, [change.change_id], "conflict",
                                            detail)
                    result.outcome["conflict"] += 1
                    result.conflicts.append(replace(change, detail=detail))
                else:
                    send.append(change)
        if not send:
            _count_calls(result, before, writer.stats)
            return
        inputs = _inputs(send)
        operation = "upsert" if obj.id_property else "update"
        payload = [{"key": i.key, "crm_id": i.crm_id, "values": dict(i.values)} for i in inputs]
        batch_id = self.journal.open_batch(run_id, obj.name, operation, payload,
                                           [c.change_id for c in send])
        _crash_point("after_intent")
        outcome = writer.write(obj, inputs, batch_id,
                               on_send=lambda: self.journal.mark_sent(batch_id))
        _crash_point("after_send")
        _count_calls(result, before, writer.stats)
        with self.journal.transaction() as db:
            for change in send:
                if change.record_key in outcome.written:
                    self._confirm(db, change, batch_id, run_id, approvals,
                                  outcome.written[change.record_key])
                    result.outcome["written"] += 1
                else:
                    reason, status = outcome.failed.get(change.record_key,
                                                        ("no answer for the record", None))
                    state = self.journal.dead_letter(
                        db, change, reason, status, run_id, self.policy.retry_max_attempts,
                        self.policy.backoff_minutes)
                    result.outcome["failed" if state == "retrying" else "given_up"] += 1
                    result.failures.append((change, reason))
            self.journal.close_batch(db, batch_id, "confirmed", outcome.calls,
                                     f"{len(outcome.written)} written, "
                                     f"{len(outcome.failed)} failed")
        _crash_point("after_confirm")

    def _finish(self, run_id: str, status: str, result: ApplyReport) -> None:
        summary: dict[str, object] = dict(result.outcome)
        summary.update(write_calls=result.write_calls, read_calls=result.read_calls,
                       ambiguous=result.ambiguous, bisections=result.bisections,
                       waits=dict(result.waits))
        self.journal.finish_run(run_id, status, summary)

    # ---- approve --------------------------------------------------------------------------------

    def approve(self, change_ids: Iterable[str], who: str) -> list[StoredChange]:
        """Approve held changes by id; they are written by the next apply.

        Raises:
            PslakeError: An id that names no change, or a change that is not held.
        """
        approved = []
        problems = []
        for change_id in change_ids:
            change = self.journal.find_change(change_id.strip().lower())
            if change is None:
                problems.append(f"{change_id}: no such change")
            elif change.status != "held":
                problems.append(f"{change_id}: not waiting for approval (it is {change.status})")
            else:
                approved.append(change)
        if problems:
            raise PslakeError("; ".join(problems) + " (see `pslake sync status --held`)")
        for change in approved:
            self.journal.approve(change, who)
        return approved

    # ---- revert ---------------------------------------------------------------------------------

    def revert(self, run_id: str) -> ApplyReport:
        """Put back the before values of an apply run where the CRM still holds pslake's.

        A field someone edited since is left alone and reported. A record the run created
        (an upsert of a missing mirror) is archived when it still holds pslake's values.
        """
        with self.exclusive():
            self.recover()
            run = self.journal.run(run_id)
            if run is None or run["kind"] not in ("apply", "revert"):
                raise PslakeError(f"no apply run with id {run_id!r}; see `pslake sync status`")
            rows = self.journal.audit_rows(run_id)
            revert_id = self.journal.start_run("revert", actor(), run_id)
            result = ApplyReport(revert_id, run_id)
            status = "failed"
            try:
                self._revert(revert_id, rows, result)
                status = "done"
            finally:
                self._finish(revert_id, status, result)
            return result

    def _revert(self, revert_id: str, rows: Sequence[sqlite3.Row], result: ApplyReport) -> None:
        by_record: dict[tuple[str, str], list[sqlite3.Row]] = defaultdict(list)
        for row in rows:
            by_record[(row["object"], row["record_key"])].append(row)
        planned: list[PlannedChange] = []
        created: dict[str, list[tuple[str, list[sqlite3.Row]]]] = defaultdict(list)
        found: dict[tuple[str, str], CrmRecord] = {}
        for name in {name for name, _ in by_record}:
            obj = OBJECTS_BY_NAME[name]
            keys = {obj.read_key(key, audits[0]["crm_id"]): key
                    for (n, key), audits in by_record.items() if n == name}
            fields = sorted({a["field"] for (n, _), audits in by_record.items() if n == name
                             for a in audits})
            for read_key, got in self.writer.read(obj, list(keys), fields).items():
                found[(name, keys[read_key])] = got
        for (name, key), audits in by_record.items():
            obj = OBJECTS_BY_NAME[name]
            record = found.get((name, key))
            kinds: dict[str, ValueKind] = {a["field"]: a["kind"] for a in audits}
            if record is None:
                result.skipped.append(f"{name} {key}: no longer in the CRM")
                continue
            kept = [a for a in audits
                    if same(kinds[a["field"]], record.values.get(a["field"]), a["after_value"])]
            for a in audits:
                if a not in kept:
                    result.skipped.append(
                        f"{name} {key} {a['field']}: edited since (CRM holds "
                        f"{record.values.get(a['field'])!r}, pslake wrote {a['after_value']!r})")
            if obj.id_property and all(a["before_value"] is None for a in audits) and any(
                    a["field"] == obj.id_property for a in audits):
                if len(kept) == len(audits):
                    created[name].append((record.crm_id, kept))
                continue
            for a in kept:
                planned.append(PlannedChange(Change(
                    object=name, key=key, crm_id=a["crm_id"] or record.crm_id, field=a["field"],
                    current=a["after_value"], desired=a["before_value"] or "",
                    last_written=a["after_value"], reason=f"revert of {a['run_id']}",
                    kind=kinds[a["field"]]), "apply", f"revert of {a['run_id']}"))
        self.journal.store_plan(revert_id, planned, {})
        self._apply_changes(revert_id, self.journal.changes(revert_id, ["planned"]), result)
        for name, items in created.items():
            self._archive_created(revert_id, OBJECTS_BY_NAME[name], items, result)

    def _archive_created(self, revert_id: str, obj: CrmObject,
                         items: Sequence[tuple[str, Sequence[sqlite3.Row]]],
                         result: ApplyReport) -> None:
        ids = [crm_id for crm_id, _ in items]
        batch_id = self.journal.open_batch(revert_id, obj.name, "archive",
                                           [{"crm_id": i} for i in ids], [])
        calls = self.writer.archive(obj, ids, batch_id,
                                    on_send=lambda: self.journal.mark_sent(batch_id))
        result.write_calls += calls
        with self.journal.transaction() as db:
            for _crm_id, audits in items:
                for a in audits:
                    db.execute("update audit set reverted_by = ? where audit_id = ?",
                               (revert_id, a["audit_id"]))
                    db.execute("delete from last_written where object = ? and record_key = ? "
                               "and field = ?", (obj.name, a["record_key"], a["field"]))
            self.journal.close_batch(db, batch_id, "confirmed", calls,
                                     f"archived {len(ids)} record(s) the run created")
        result.outcome["archived"] += len(ids)


def _moment(text: str) -> dt.datetime:
    """A journal time as a datetime."""
    return dt.datetime.fromisoformat(text)


def _kind(change: StoredChange) -> ValueKind:
    return change.kind  # type: ignore[return-value]


def _inputs(changes: Sequence[StoredChange]) -> list[WriteInput]:
    grouped: dict[str, list[StoredChange]] = defaultdict(list)
    for change in changes:
        grouped[change.record_key].append(change)
    return [WriteInput(key=key, crm_id=items[0].crm_id,
                       values={c.field: c.desired_value for c in items},
                       kinds={c.field: _kind(c) for c in items})
            for key, items in grouped.items()]


def _count_calls(result: ApplyReport, before: CallStats, after: CallStats) -> None:
    """Add what the CRM calls cost since ``before`` to a run's report."""
    result.read_calls += after.reads - before.reads
    result.write_calls += after.writes - before.writes
    result.ambiguous += after.ambiguous - before.ambiguous
    result.bisections += after.bisections - before.bisections
    result.waits.update(after.waits - before.waits)
