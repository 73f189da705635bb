"""What the reverse sync has done and what waits: for `pslake sync status` and the dashboard."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from reverse_sync.journal import Journal, sync_dir


def status(data_dir: Path | None = None, runs: int = 10, held: bool = False,
           run_id: str | None = None, csv_path: Path | None = None) -> list[str]:
    """Readable lines: recent runs, approvals waiting, dead letters, open intents."""
    journal = Journal(sync_dir(data_dir))
    try:
        if run_id is not None:
            return _one_run(journal, run_id, csv_path)
        lines = ["recent runs:"]
        for row in journal.runs(runs):
            summary = json.loads(row["summary"] or "{}")
            counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.items())
                               if isinstance(v, int) and v)
            lines.append(f"  {row['run_id']}  {row['kind']:<6} {row['status']:<7} "
                         f"by {row['actor']}  {counts}")
        if len(lines) == 1:
            lines.append("  none yet: `pslake sync plan` makes the first")
        waiting = _held(journal)
        lines.append(f"approvals waiting: {len(waiting)}"
                     + ("" if held or not waiting else " (--held lists them)"))
        if held:
            lines += [f"  {c['change_id']}  {c['object']} {c['record_key']} {c['field']}: "
                      f"{c['current_value']!r} -> {c['desired_value']!r} ({c['rule']})"
                      for c in waiting]
        letters = list(journal.db.execute(
            "select * from dead_letters where state != 'resolved' order by last_failed_at"))
        given_up = sum(1 for d in letters if d["state"] == "given_up")
        lines.append(f"dead letters: {len(letters)} ({given_up} given up)")
        lines += [f"  {d['change_id']}  {d['object']} {d['record_key']} {d['field']}: "
                  f"{d['reason']} (attempts {d['attempts']}, {d['state']}, next "
                  f"{d['next_attempt_at']})" for d in letters[:20]]
        pending = journal.pending_batches()
        lines.append(f"write intents left open by a crash: {len(pending)}"
                     + (" (the next plan or apply settles them)" if pending else ""))
        return lines
    finally:
        journal.close()


def _held(journal: Journal) -> list[dict[str, str]]:
    """Changes held in the latest plan and not approved yet."""
    latest = journal.latest_plan()
    if latest is None:
        return []
    approved = journal.approvals()
    return [dict(r) for r in journal.db.execute(
        "select * from changes where run_id = ? and status = 'held' order by object, "
        "record_key, field", (latest,)) if r["change_id"] not in approved]


def _one_run(journal: Journal, run_id: str, csv_path: Path | None) -> list[str]:
    run = journal.run(run_id)
    if run is None:
        from pslake.errors import PslakeError

        raise PslakeError(f"no run {run_id!r}; `pslake sync status` lists them")
    plan_id = run_id if run["kind"] != "apply" else run["plan_run_id"]
    rows = [dict(r) for r in journal.db.execute(
        "select * from changes where run_id = ? order by object, record_key, field",
        (plan_id,))]
    audit = [dict(r) for r in journal.db.execute(
        "select * from audit where run_id = ? order by audit_id", (run_id,))]
    lines = [f"run {run_id}: {run['kind']} {run['status']} by {run['actor']}, "
             f"started {run['started_at']}, finished {run['finished_at'] or '-'}",
             f"  summary: {run['summary'] or '{}'}",
             f"  changes in plan {plan_id}: {len(rows)}; audited writes of this run: "
             f"{len(audit)}"]
    if csv_path is not None:
        chosen = audit if run["kind"] != "plan" else rows
        with open(csv_path, "w", newline="") as handle:
            if chosen:
                writer = csv.DictWriter(handle, fieldnames=list(chosen[0]))
                writer.writeheader()
                writer.writerows(chosen)
        lines.append(f"  wrote {len(chosen)} row(s) to {csv_path}")
    return lines
