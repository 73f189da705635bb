"""``pslake sync``: plan, apply, approve, revert and inspect the reverse sync to the CRM."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pslake.cli import friendly, say

if TYPE_CHECKING:  # the sync loads on first use: `pslake --help` stays fast
    from reverse_sync.runner import PlanReport, Sync

sync_app = typer.Typer(
    help="Push governed corrections and invoice status back to the CRM (plan is the default: "
    "nothing is written without `apply`).",
    no_args_is_help=True,
)

POLICY_OPTION = typer.Option(
    None, "--policy", help="Policy file [default: $PSLAKE_SYNC_POLICY, else the shipped one].")
LIMIT_OPTION = typer.Option(40, "--limit", help="Rows of the change table to show (0: all).")


def _sync(policy: Path | None) -> Sync:
    from reverse_sync.runner import Sync

    return Sync(policy_path=policy, progress=say)


def _cut(value: str | None, width: int = 28) -> str:
    text = "-" if value is None or value == "" else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_changes(rows: list[tuple[str, ...]], limit: int) -> None:
    if not rows:
        return
    header = ("id", "object", "record", "field", "current -> desired", "reason", "decision")
    shown = rows if limit <= 0 else rows[:limit]
    widths = [max(len(r[i]) for r in [header, *shown]) for i in range(len(header))]
    for row in [header, *shown]:
        say("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    if len(rows) > len(shown):
        say(f"... and {len(rows) - len(shown):,} more (--limit 0 shows all; "
            "`pslake sync status --run RUN_ID --csv FILE` writes them)")


def _change_rows(report: PlanReport) -> list[tuple[str, ...]]:
    order = {"held": 0, "planned": 1, "deferred": 2, "given_up": 3, "refused": 4}
    rows = []
    for item in report.changes:
        c = item.change
        status, detail = report.status_of(item)
        label = {"planned": "apply", "held": "hold", "refused": "refuse"}.get(status, status)
        rows.append((order.get(status, 9), (
            c.change_id, c.object, c.key, c.field,
            f"{_cut(c.current, 24)} -> {_cut(c.desired, 24)}", _cut(c.reason, 36),
            f"{label}: {_cut(detail or item.rule, 60)}")))
    return [r for _, r in sorted(rows, key=lambda x: (x[0], x[1][1], x[1][2], x[1][3]))]


def _plan_summary(report: PlanReport) -> str:
    counts = report.counts()
    parts = [f"{counts.get(k, 0):,} {label}" for k, label in (
        ("planned", "to apply"), ("held", "held for approval"), ("refused", "refused"),
        ("deferred", "waiting to retry"), ("given_up", "given up"))]
    return (f"plan {report.run_id}: {len(report.changes):,} change(s): {', '.join(parts)}; "
            f"{report.records:,} records, {report.fields_compared:,} fields compared, "
            f"{report.unchanged:,} already right, {report.no_desired_value:,} with no source "
            f"value; {report.calls} CRM read calls")


@sync_app.command("plan")
@friendly
def plan_command(policy: Path | None = POLICY_OPTION, limit: int = LIMIT_OPTION) -> None:
    """Compare what the CRM should hold (dbt sync models) with what it holds; store the plan.

    Reads the CRM in batches; writes nothing to it. The plan's run id can be applied later
    with `pslake sync apply --plan RUN_ID`.
    """
    with _sync(policy) as sync:
        report = sync.plan()
    _print_changes(_change_rows(report), limit)
    say(_plan_summary(report))


@sync_app.command("apply")
@friendly
def apply_command(
    plan: str | None = typer.Option(
        None, "--plan", help="Apply this stored plan [default: plan now, then apply]."),
    policy: Path | None = POLICY_OPTION,
    limit: int = LIMIT_OPTION,
) -> None:
    """Write the planned changes the policy allows (and approved ones) to the CRM.

    Each batch of 100 records is re-read just before it is written: a value someone changed
    since the plan is reported as a conflict and left alone. Rejected records go to the
    dead-letter table and are retried by later runs. Exits 1 when a write failed.
    """
    with _sync(policy) as sync:
        planned, result = sync.apply(plan)
    if planned is not None:
        _print_changes(_change_rows(planned), limit)
        say(_plan_summary(planned))
    for change in result.conflicts[:limit or None]:
        typer.secho(f"conflict: {change.object} {change.record_key} {change.field}: "
                    f"{change.detail}", fg=typer.colors.YELLOW, err=True)
    for change, reason in result.failures[:limit or None]:
        typer.secho(f"failed: {change.object} {change.record_key} {change.field}: {reason}",
                    fg=typer.colors.RED, err=True)
    o = result.outcome
    say(f"apply {result.run_id} (plan {result.plan_run_id}): {o['written']:,} written, "
        f"{o['already']:,} already right, {o['conflict']:,} conflicts, "
        f"{o['failed'] + o['given_up']:,} failed ({o['given_up']:,} given up); "
        f"{result.write_calls} write calls, {result.read_calls} read calls"
        + (f", waited on {dict(result.waits)}" if result.waits else ""))
    if o["failed"] or o["given_up"]:
        raise typer.Exit(1)


@sync_app.command("approve")
@friendly
def approve_command(
    change_ids: list[str] = typer.Argument(..., help="Change ids from the plan (12 hex)."),  # noqa: B008
    by: str | None = typer.Option(None, "--by", help="Approver [default: $PSLAKE_ACTOR or login]."),
) -> None:
    """Approve held changes; the next `pslake sync apply` writes them."""
    from reverse_sync.runner import Sync, actor

    with Sync(progress=say) as sync:
        approved = sync.approve(change_ids, by or actor())
    for change in approved:
        say(f"approved {change.change_id}: {change.object} {change.record_key} {change.field} "
            f"-> {change.desired_value!r} by {by or actor()}")


@sync_app.command("revert")
@friendly
def revert_command(run_id: str = typer.Argument(..., help="The apply run to revert.")) -> None:
    """Restore the before values of an apply run where the CRM still holds pslake's values."""
    from reverse_sync.runner import Sync

    with Sync(progress=say) as sync:
        result = sync.revert(run_id)
    for line in result.skipped:
        typer.secho(f"left alone: {line}", fg=typer.colors.YELLOW, err=True)
    o = result.outcome
    say(f"revert {result.run_id} of {run_id}: {o['written']:,} field(s) restored, "
        f"{o['archived']:,} created record(s) archived, {len(result.skipped):,} left alone, "
        f"{o['conflict']:,} conflicts, {o['failed'] + o['given_up']:,} failed; "
        f"{result.write_calls} write calls")


@sync_app.command("status")
@friendly
def status_command(
    runs: int = typer.Option(10, "--runs", help="How many recent runs to list."),
    held: bool = typer.Option(False, "--held", help="List the changes waiting for approval."),
    run: str | None = typer.Option(None, "--run", help="Show one run's changes."),
    csv: Path | None = typer.Option(  # noqa: B008 (typer's option declaration)
        None, "--csv", help="With --run: write its changes here."),
) -> None:
    """Recent runs, approvals waiting, dead letters, and intents left open by a crash."""
    from reverse_sync.status import status

    report = status(runs=runs, held=held, run_id=run, csv_path=csv)
    for line in report:
        say(line)


@friendly
def schedule_command(
    cron: str = typer.Option("*/15 * * * *", "--cron",
                             help="When to run, a cron expression (UTC)."),
    steps: str = typer.Option("ingest,transform,sync", "--steps",
                              help="Comma-separated steps of a run."),
    once: bool = typer.Option(False, "--once",
                              help="Run once now (for cron or an orchestrator) and exit."),
    max_runs: int | None = typer.Option(None, "--max-runs", help="Stop after this many runs."),
) -> None:
    """Run ingest -> transform -> sync apply on a schedule; never two runs at once.

    One line per run; each step's output is in DATA_DIR/logs/run-<time>.log. A run still going
    when the next is due (or a run started by another scheduler or by cron) makes that turn
    skip. Exits 1 when a run failed (with --once or --max-runs).
    """
    from pslake.schedule import run_once, schedule

    chosen = [s.strip() for s in steps.split(",") if s.strip()]
    if once:
        result = run_once(steps=chosen)
        say(result.line())
        failed = 0 if result.ok else 1
    else:
        failed = schedule(cron, steps=chosen, max_runs=max_runs, say=say)
    if failed:
        raise typer.Exit(1)


@friendly
def run_command(
    steps: str = typer.Option("ingest,transform,sync", "--steps",
                              help="Comma-separated steps, in order."),
) -> None:
    """Run ingest -> transform -> sync apply once, now, showing each step's output.

    The same run as one turn of `pslake schedule` (it takes the same run lock, so it never
    overlaps a scheduled run) against the configured vendors: the sandbox when none is set,
    else the SOURCES__* settings. Exits 1 when a step failed, 3 when another run holds the lock.
    """
    from pslake.schedule import run_once

    chosen = [s.strip() for s in steps.split(",") if s.strip()]
    result = run_once(steps=chosen, echo=say)
    say(result.line())
    if result.skipped:
        raise typer.Exit(3)
    if not result.ok:
        raise typer.Exit(1)
