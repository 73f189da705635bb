"""``pslake transform``: build the dbt project (staging, canonical, marts) on the warehouse."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import Counter
from typing import TYPE_CHECKING

import typer

from pslake.cli import friendly, say

if TYPE_CHECKING:
    from pslake.transform import SourceFreshness

AS_OF_ENV = "PSLAKE_AS_OF"


def resolve_as_of(value: str | None) -> dt.date:
    """``--as-of``, else ``$PSLAKE_AS_OF``, else today (UTC)."""
    text = value or os.environ.get(AS_OF_ENV) or ""
    if not text:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        source = "--as-of" if value else AS_OF_ENV
        raise ValueError(f"{source} must be YYYY-MM-DD, got {text!r}") from None


@friendly
def transform(
    select: list[str] = typer.Option(  # noqa: B008 (typer's option declaration)
        None, "--select", "-s", help="dbt node selector (repeatable) [default: everything]."),
    exclude: list[str] = typer.Option(  # noqa: B008 (typer's option declaration)
        None, "--exclude", help="dbt node selector to leave out (repeatable)."),
    full_refresh: bool = typer.Option(
        False, "--full-refresh", help="Rebuild incremental models from scratch."),
    as_of: str | None = typer.Option(
        None, "--as-of",
        help="The date reconciliation and ageing judge at, YYYY-MM-DD "
             f"[default: ${AS_OF_ENV}, else today (UTC)]."),
    publish: bool = typer.Option(
        True, "--publish/--no-publish",
        help="After a successful build, publish the marts' snapshot the dashboard reads."),
) -> None:
    """Run `dbt build` on DATA_DIR/warehouse.duckdb: models, then their tests, layer by layer.

    dbt's own progress is shown as it runs; its target/ and logs/ are in DATA_DIR/dbt/. Ends with
    one summary line; exits 1 when a model or test failed.
    """
    from pslake.transform import build

    day = resolve_as_of(as_of)
    result = build(select=select or None, exclude=exclude or None, full_refresh=full_refresh,
                   as_of=day)
    if result.freshness:
        _say_freshness(result.freshness)
    for failure in result.failures:
        typer.secho(f"failed: {failure.resource_type} {failure.name}: {failure.message}",
                    fg=typer.colors.RED, err=True)
    extra = "".join(f", {n} {label}" for n, label in (
        (result.tests.warned + result.models.warned, "warned"),
        (result.models.skipped + result.tests.skipped + result.seeds.skipped, "skipped"),
    ) if n)
    say(f"transform: {result.models.passed} models, {result.tests.passed} tests passed, "
        f"{result.failed} failed{extra} in {result.seconds:.1f} s (as of {day})")
    if not result.success:
        raise typer.Exit(1)
    if publish:
        _publish()


def _say_freshness(verdicts: list[SourceFreshness]) -> None:
    """One line of counts, then a line per source table that is not fresh (on stderr)."""
    counts = Counter(v.status for v in verdicts)
    say(f"freshness: {len(verdicts)} source tables checked, "
        + ", ".join(f"{counts[s]} {s}" for s in ("pass", "warn", "error", "runtime error")
                    if counts[s]))
    for v in verdicts:
        if v.status == "pass":
            continue
        newest = (f"newest {v.max_loaded_at:%Y-%m-%d %H:%M} UTC, {v.age_seconds / 3600:,.1f} h old"
                  if v.max_loaded_at is not None and v.age_seconds is not None
                  else "dbt could not read it")
        typer.secho(f"freshness {v.status}: {v.source}.{v.table} ({newest})",
                    fg=typer.colors.RED if v.status != "warn" else typer.colors.YELLOW, err=True)


def _publish() -> None:
    from pslake.snapshot import publish

    started = time.monotonic()
    snapshot = publish()
    say(f"publish: {snapshot.tables} tables to {snapshot.path} "
        f"in {time.monotonic() - started:.1f} s")


@friendly
def publish_command() -> None:
    """Publish the marts of DATA_DIR/warehouse.duckdb as the snapshot the dashboard reads.

    `pslake transform` does this after each successful build; the dashboard picks up the new
    snapshot on its next page view, and never reads the warehouse while it is being written.
    """
    _publish()
