"""The reverse sync's memory: runs, planned changes, write intents, audit, approvals, dead letters.

One SQLite file (``DATA_DIR/reverse_sync/state.sqlite``, WAL, synchronous FULL): every write
call is journaled as an intent *before* it is sent and confirmed after, in transactions that
survive a SIGKILL at any point. SQLite rather than the warehouse: an operator approving changes
must not wait for (or block) a dbt build holding the DuckDB file, and the journal is small,
transactional, row-at-a-time work.

Tables (all times ISO 8601 UTC):

- ``runs``: one row per plan / apply / revert, with counts.
- ``changes``: the planned changes of each plan run, with decision and what became of them.
- ``batches``: one row per write call (the intent): payload, correlation id, when its last
  call left, state ``pending`` -> ``confirmed`` | ``resolved`` (read back after a crash) |
  ``failed``.
- ``audit``: every confirmed field write: before, after, run, correlation id, decision, approver.
- ``last_written``: the last confirmed value per (object, record, field), the next diff's baseline.
- ``approvals``: who approved which change id, and when.
- ``dead_letters``: changes the CRM rejected, with its reason, attempts and next retry time.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pslake import settings
from reverse_sync.model import ChangeStatus, PlannedChange

SCHEMA = """
create table if not exists runs (
    run_id text primary key,
    kind text not null,               -- plan | apply | revert
    plan_run_id text,                 -- apply: the plan applied; revert: the run reverted
    started_at text not null,
    finished_at text,
    status text not null,             -- running | done | failed
    actor text,
    summary text                      -- JSON counts
);
create table if not exists changes (
    run_id text not null,
    change_id text not null,
    object text not null,
    record_key text not null,
    crm_id text,
    field text not null,
    kind text not null,
    current_value text,
    desired_value text not null,
    last_written text,
    reason text not null,
    currency text,
    closed_period integer not null default 0,
    decision text not null,           -- apply | hold | refuse
    rule text not null,
    status text not null,             -- see reverse_sync.model.ChangeStatus
    batch_id text,
    detail text,
    updated_at text not null,
    primary key (run_id, change_id)
);
create index if not exists changes_by_batch on changes (batch_id);
create index if not exists changes_by_status on changes (status, run_id);
create table if not exists batches (
    batch_id text primary key,        -- the correlation id sent to the CRM
    run_id text not null,
    object text not null,
    operation text not null,          -- update | upsert | archive
    payload text not null,            -- JSON: the inputs as sent
    state text not null,              -- pending | confirmed | resolved | failed
    created_at text not null,
    finished_at text,
    calls integer not null default 0,
    detail text,
    sent_at text                      -- when its last call left (a call may still be on its way)
);
create index if not exists batches_by_state on batches (state);
create table if not exists audit (
    audit_id integer primary key autoincrement,
    run_id text not null,
    change_id text not null,
    batch_id text not null,
    object text not null,
    record_key text not null,
    crm_id text,
    field text not null,
    kind text not null,               -- the value kind (a revert compares by it)
    before_value text,
    after_value text,
    decision text not null,
    rule text not null,
    approver text,
    written_at text not null,
    reverted_by text
);
create index if not exists audit_by_run on audit (run_id);
create table if not exists last_written (
    object text not null,
    record_key text not null,
    field text not null,
    value text,
    run_id text not null,
    written_at text not null,
    primary key (object, record_key, field)
);
create table if not exists approvals (
    change_id text primary key,
    object text not null,
    record_key text not null,
    field text not null,
    desired_value text not null,
    approved_by text not null,
    approved_at text not null
);
create table if not exists dead_letters (
    change_id text primary key,
    object text not null,
    record_key text not null,
    crm_id text,
    field text not null,
    desired_value text not null,
    reason text not null,
    http_status integer,
    attempts integer not null,
    first_failed_at text not null,
    last_failed_at text not null,
    next_attempt_at text not null,
    state text not null,              -- retrying | given_up | resolved
    run_id text not null
);
"""

STATE_FILE = "state.sqlite"
SYNC_SUBDIR = "reverse_sync"


def sync_dir(data_dir: Path | None = None) -> Path:
    """``DATA_DIR/reverse_sync``: the journal and the lock."""
    return settings.data_dir(data_dir) / SYNC_SUBDIR


def now_utc() -> dt.datetime:
    """The current time (UTC)."""
    return dt.datetime.now(dt.UTC)


def stamp(moment: dt.datetime | None = None) -> str:
    """A time as the journal stores it."""
    return (moment or now_utc()).isoformat(timespec="milliseconds")


def new_run_id(kind: str) -> str:
    """``<UTC time>-<kind>-<4 hex>``: sortable and unique."""
    return f"{now_utc():%Y%m%dT%H%M%SZ}-{kind}-{secrets.token_hex(2)}"


@dataclass(frozen=True, slots=True)
class StoredChange:
    """A change as the journal holds it."""

    run_id: str
    change_id: str
    object: str
    record_key: str
    crm_id: str | None
    field: str
    kind: str
    current_value: str | None
    desired_value: str
    last_written: str | None
    reason: str
    currency: str | None
    closed_period: bool
    decision: str
    rule: str
    status: str
    batch_id: str | None
    detail: str | None


class Journal:
    """The state file; one instance per process, used from one thread."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / STATE_FILE
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("pragma journal_mode = wal")
        self.db.execute("pragma synchronous = full")  # a confirmed intent survives power loss
        self.db.execute("pragma busy_timeout = 30000")
        self.db.executescript(SCHEMA)
        columns = {row[1] for row in self.db.execute("pragma table_info(batches)")}
        if "sent_at" not in columns:  # a state file made before the column existed
            self.db.execute("alter table batches add column sent_at text")

    def close(self) -> None:
        """Close the file."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write (``begin immediate``: other writers wait, readers go on)."""
        self.db.execute("begin immediate")
        try:
            yield self.db
        except BaseException:
            self.db.execute("rollback")
            raise
        self.db.execute("commit")

    # ---- runs ---------------------------------------------------------------------------------

    def start_run(self, kind: str, actor: str, plan_run_id: str | None = None) -> str:
        """Record a new run and return its id."""
        run_id = new_run_id(kind)
        with self.transaction() as db:
            db.execute("insert into runs (run_id, kind, plan_run_id, started_at, status, actor) "
                       "values (?, ?, ?, ?, 'running', ?)",
                       (run_id, kind, plan_run_id, stamp(), actor))
        return run_id

    def finish_run(self, run_id: str, status: str, summary: Mapping[str, Any]) -> None:
        """Close a run with its counts."""
        with self.transaction() as db:
            db.execute("update runs set finished_at = ?, status = ?, summary = ? where run_id = ?",
                       (stamp(), status, json.dumps(summary, sort_keys=True), run_id))

    def run(self, run_id: str) -> sqlite3.Row | None:
        """One run's row."""
        row: sqlite3.Row | None = self.db.execute(
            "select * from runs where run_id = ?", (run_id,)).fetchone()
        return row

    def runs(self, limit: int = 10) -> list[sqlite3.Row]:
        """The latest runs, newest first."""
        return list(self.db.execute(
            "select * from runs order by started_at desc, run_id desc limit ?", (limit,)))

    # ---- changes ------------------------------------------------------------------------------

    def store_plan(self, run_id: str, planned: Iterable[PlannedChange],
                   statuses: Mapping[str, tuple[ChangeStatus, str | None]]) -> None:
        """Store a plan's changes; ``statuses``: change id -> (status, detail) overrides."""
        at = stamp()
        rows = []
        for item in planned:
            c = item.change
            default: ChangeStatus = {"apply": "planned", "hold": "held",
                                     "refuse": "refused"}[item.decision]  # type: ignore[assignment]
            status, detail = statuses.get(c.change_id, (default, None))
            rows.append((run_id, c.change_id, c.object, c.key, c.crm_id, c.field, c.kind,
                         c.current, c.desired, c.last_written, c.reason, c.currency,
                         int(c.closed_period), item.decision, item.rule, status, detail, at))
        with self.transaction() as db:
            db.executemany(
                "insert into changes (run_id, change_id, object, record_key, crm_id, field, "
                "kind, current_value, desired_value, last_written, reason, currency, "
                "closed_period, decision, rule, status, detail, updated_at) values "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def changes(self, run_id: str, statuses: Iterable[str] | None = None) -> list[StoredChange]:
        """A plan's changes (optionally only some statuses), in a stable order."""
        sql = "select * from changes where run_id = ?"
        params: list[Any] = [run_id]
        if statuses is not None:
            wanted = list(statuses)
            sql += f" and status in ({', '.join('?' for _ in wanted)})"
            params += wanted
        sql += " order by object, record_key, field"
        return [_stored(row) for row in self.db.execute(sql, params)]

    def set_status(self, db: sqlite3.Connection, run_id: str, change_ids: Iterable[str],
                   status: ChangeStatus, detail: str | None = None,
                   batch_id: str | None = None) -> None:
        """Move changes to a status (inside the caller's transaction)."""
        at = stamp()
        db.executemany(
            "update changes set status = ?, detail = coalesce(?, detail), batch_id = "
            "coalesce(?, batch_id), updated_at = ? where run_id = ? and change_id = ?",
            [(status, detail, batch_id, at, run_id, cid) for cid in change_ids])

    def latest_plan(self) -> str | None:
        """The newest plan run id."""
        row = self.db.execute("select run_id from runs where kind = 'plan' "
                              "order by started_at desc, run_id desc limit 1").fetchone()
        return str(row[0]) if row else None

    # ---- intents --------------------------------------------------------------------------------

    def open_batch(self, run_id: str, object_name: str, operation: str,
                   payload: list[dict[str, Any]], change_ids: Iterable[str]) -> str:
        """Write the intent of one call (before it is sent); returns its correlation id."""
        batch_id = f"pslake-{run_id}-{secrets.token_hex(4)}"
        with self.transaction() as db:
            db.execute("insert into batches (batch_id, run_id, object, operation, payload, state, "
                       "created_at) values (?, ?, ?, ?, ?, 'pending', ?)",
                       (batch_id, run_id, object_name, operation, json.dumps(payload), stamp()))
            self.set_status(db, run_id, change_ids, "sent", batch_id=batch_id)
        return batch_id

    def mark_sent(self, batch_id: str) -> None:
        """Note that a call of the batch is leaving now (committed before it leaves)."""
        self.db.execute("update batches set sent_at = ? where batch_id = ?",
                        (stamp(), batch_id))

    def pending_batches(self) -> list[sqlite3.Row]:
        """Intents whose outcome was never recorded (the process died in between)."""
        return list(self.db.execute(
            "select * from batches where state = 'pending' order by created_at"))

    def batch_changes(self, batch_id: str) -> list[StoredChange]:
        """The changes a call carried."""
        return [_stored(row) for row in self.db.execute(
            "select * from changes where batch_id = ? and status = 'sent' "
            "order by record_key, field", (batch_id,))]

    def close_batch(self, db: sqlite3.Connection, batch_id: str, state: str, calls: int,
                    detail: str | None = None) -> None:
        """Record a call's outcome (inside the caller's transaction)."""
        db.execute("update batches set state = ?, finished_at = ?, calls = calls + ?, "
                   "detail = ? where batch_id = ?", (state, stamp(), calls, detail, batch_id))

    # ---- confirmations ----------------------------------------------------------------------

    def confirm_written(self, db: sqlite3.Connection, change: StoredChange, batch_id: str,
                        approver: str | None, apply_run_id: str) -> None:
        """A change the CRM now holds: audit, baseline, status, dead letter resolved."""
        at = stamp()
        db.execute(
            "insert into audit (run_id, change_id, batch_id, object, record_key, crm_id, field, "
            "kind, before_value, after_value, decision, rule, approver, written_at) values "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (apply_run_id, change.change_id, batch_id, change.object, change.record_key,
             change.crm_id, change.field, change.kind, change.current_value,
             change.desired_value, change.decision, change.rule, approver, at))
        self.remember(db, change.object, change.record_key, change.field,
                      change.desired_value, apply_run_id)
        self.set_status(db, change.run_id, [change.change_id], "written")
        db.execute("update dead_letters set state = 'resolved' where change_id = ? "
                   "and state != 'resolved'", (change.change_id,))

    def remember(self, db: sqlite3.Connection, object_name: str, key: str, field: str,
                 value: str | None, run_id: str) -> None:
        """Set the baseline of one field."""
        db.execute(
            "insert into last_written (object, record_key, field, value, run_id, written_at) "
            "values (?, ?, ?, ?, ?, ?) on conflict (object, record_key, field) do update set "
            "value = excluded.value, run_id = excluded.run_id, written_at = excluded.written_at",
            (object_name, key, field, value, run_id, stamp()))

    def last_written(self) -> dict[tuple[str, str, str], str]:
        """(object, record, field) -> last confirmed value."""
        return {(r[0], r[1], r[2]): r[3] for r in self.db.execute(
            "select object, record_key, field, value from last_written where value is not null")}

    # ---- dead letters -----------------------------------------------------------------------

    def dead_letter(self, db: sqlite3.Connection, change: StoredChange, reason: str,
                    http_status: int | None, run_id: str, max_attempts: int,
                    backoff: Callable[[int], int]) -> str:
        """Record a rejected change; returns its new state (``retrying`` or ``given_up``).

        ``backoff`` maps the number of attempts so far to minutes before the next one.
        """
        now = now_utc()
        row = db.execute("select attempts, first_failed_at from dead_letters where "
                         "change_id = ?", (change.change_id,)).fetchone()
        attempts = (row["attempts"] if row else 0) + 1
        state = "given_up" if attempts >= max_attempts else "retrying"
        next_at = stamp(now + dt.timedelta(minutes=backoff(attempts)))
        db.execute(
            "insert into dead_letters (change_id, object, record_key, crm_id, field, "
            "desired_value, reason, http_status, attempts, first_failed_at, last_failed_at, "
            "next_attempt_at, state, run_id) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "on conflict (change_id) do update set reason = excluded.reason, "
            "http_status = excluded.http_status, attempts = excluded.attempts, "
            "last_failed_at = excluded.last_failed_at, next_attempt_at = "
            "excluded.next_attempt_at, state = excluded.state, run_id = excluded.run_id",
            (change.change_id, change.object, change.record_key, change.crm_id, change.field,
             change.desired_value, reason, http_status, attempts,
             row["first_failed_at"] if row else stamp(now), stamp(now), next_at, state, run_id))
        self.set_status(db, change.run_id, [change.change_id], "failed", detail=reason)
        return state

    def dead_letters(self, states: Iterable[str] = ("retrying", "given_up")
                     ) -> dict[str, sqlite3.Row]:
        """Change id -> dead letter, for the given states."""
        wanted = list(states)
        return {row["change_id"]: row for row in self.db.execute(
            f"select * from dead_letters where state in ({', '.join('?' for _ in wanted)})",
            wanted)}

    def resolve_dead_letters(self, keep: Iterable[str]) -> int:
        """Close the dead letters of changes no longer planned (the CRM or the source moved)."""
        keep_set = set(keep)
        open_ids = [cid for cid in self.dead_letters() if cid not in keep_set]
        if not open_ids:
            return 0
        with self.transaction() as db:
            db.executemany("update dead_letters set state = 'resolved' where change_id = ?",
                           [(cid,) for cid in open_ids])
        return len(open_ids)

    # ---- approvals ----------------------------------------------------------------------------

    def approvals(self) -> dict[str, str]:
        """Change id -> "who at when"."""
        return {row["change_id"]: f"{row['approved_by']} at {row['approved_at']}"
                for row in self.db.execute("select * from approvals")}

    def approve(self, change: StoredChange, who: str) -> bool:
        """Record an approval; False when the change was already approved."""
        with self.transaction() as db:
            cursor = db.execute(
                "insert or ignore into approvals (change_id, object, record_key, field, "
                "desired_value, approved_by, approved_at) values (?, ?, ?, ?, ?, ?, ?)",
                (change.change_id, change.object, change.record_key, change.field,
                 change.desired_value, who, stamp()))
            return cursor.rowcount == 1

    def find_change(self, change_id: str) -> StoredChange | None:
        """The newest stored occurrence of a change id."""
        row = self.db.execute(
            "select changes.* from changes join runs using (run_id) where change_id = ? "
            "order by runs.started_at desc limit 1", (change_id,)).fetchone()
        return _stored(row) if row else None

    # ---- audit --------------------------------------------------------------------------------

    def audit_rows(self, run_id: str) -> list[sqlite3.Row]:
        """The confirmed writes of one apply or revert run, not reverted yet."""
        return list(self.db.execute(
            "select * from audit where run_id = ? and reverted_by is null "
            "order by object, record_key, field", (run_id,)))


def _stored(row: sqlite3.Row) -> StoredChange:
    return StoredChange(
        run_id=row["run_id"], change_id=row["change_id"], object=row["object"],
        record_key=row["record_key"], crm_id=row["crm_id"], field=row["field"],
        kind=row["kind"], current_value=row["current_value"],
        desired_value=row["desired_value"], last_written=row["last_written"],
        reason=row["reason"], currency=row["currency"],
        closed_period=bool(row["closed_period"]), decision=row["decision"], rule=row["rule"],
        status=row["status"], batch_id=row["batch_id"], detail=row["detail"])
