"""``pslake ingest``: load HubSpot, Harvest and NetSuite into the warehouse."""

from __future__ import annotations

import enum
import json
import logging
import os
from pathlib import Path

import typer

from pslake.cli import friendly, say


class SourceName(enum.StrEnum):
    """The vendors ``--source`` accepts."""

    hubspot = "hubspot"
    harvest = "harvest"
    netsuite = "netsuite"


REPORT_OPTION = typer.Option(None, "--report", help="Also write the summary as JSON to this file.")


@friendly
def ingest(
    source: list[SourceName] = typer.Option(  # noqa: B008 (typer's option declaration)
        None, "--source", "-s", help="Only this vendor (repeatable) [default: all three]."),
    full_refresh: bool = typer.Option(
        False, "--full-refresh", help="Drop the raw tables and cursors and reload everything."),
    sequential: bool = typer.Option(
        False, "--sequential", help="Extract one vendor at a time instead of in parallel."),
    report: Path | None = REPORT_OPTION,
) -> None:
    """Load the vendors' data into DATA_DIR/warehouse.duckdb (raw_hubspot/_harvest/_netsuite).

    Incremental by each vendor's modified-since cursor; records that break a table's contract go
    to the quarantine table of their dataset with the reason. Ends with a summary per table.
    """
    from ingestion.pipeline import as_dict, format_summary
    from ingestion.pipeline import ingest as run_ingest

    if logging.getLogger().level > logging.DEBUG:
        os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")  # dlt's per-request info lines
    vendors = [s.value for s in source] if source else ["hubspot", "harvest", "netsuite"]
    result = run_ingest(sources=vendors, full_refresh=full_refresh,  # type: ignore[arg-type]
                        progress=say, parallel=not sequential)
    for line in format_summary(result):
        say(line)
    if report is not None:
        report.write_text(json.dumps(as_dict(result), indent=2) + "\n")
    if result.errors:
        for line in result.errors:
            typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
