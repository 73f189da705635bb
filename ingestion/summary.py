"""What one ingest run did, per table and per vendor, for the summary ``pslake ingest`` prints."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dlt

from ingestion.http import CallStats
from ingestion.pages import QUARANTINE_TABLE, Batch, PageBatch


@dataclass
class TableTally:
    """One raw table in one run.

    ``received`` counts records read from the vendor; ``passed`` those that met the contract;
    ``quarantined`` those that did not; ``deferred`` those changed after the run began, which
    the next run reads (so the cursor never passes a change made while the run was reading).
    ``loaded``, ``new`` and ``updated`` come from the
    warehouse after the load (dlt drops rows its incremental cursor has already loaded, so
    ``loaded`` may be below ``passed``).
    """

    table: str
    received: int = 0
    passed: int = 0
    quarantined: int = 0
    deferred: int = 0
    pages: int = 0
    deleted: int = 0
    loaded: int = 0
    new: int = 0
    updated: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def add(self, batch: Batch) -> None:
        """Count one parsed batch."""
        self.received += batch.received
        self.passed += batch.n_rows
        self.quarantined += batch.n_quarantined
        self.deferred += batch.deferred


@dataclass
class SourceTally:
    """One vendor in one run: its tables and its calls."""

    vendor: str
    calls: CallStats = field(default_factory=CallStats)
    tables: dict[str, TableTally] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def table(self, name: str) -> TableTally:
        """The tally of one table (created on first use)."""
        with self._lock:
            return self.tables.setdefault(name, TableTally(name))


def quarantine_item(table: Any) -> Any:
    """Send an Arrow table of rejected records to the ``quarantine`` table (append only)."""
    # a table variant: without it dlt would make these hints the resource's own, and every
    # later batch of the resource would go to the quarantine table
    return dlt.mark.with_hints(
        table,
        dlt.mark.make_hints(table_name=QUARANTINE_TABLE, write_disposition="append",
                            primary_key=[], merge_key=[]),
        create_table_variant=True,
    )


def emit(batch: Batch, tally: TableTally) -> Iterator[Any]:
    """Count a parsed batch and yield its loadable rows and its quarantined rows."""
    tally.add(batch)
    if batch.rows is not None:
        yield batch.rows
    if batch.quarantined is not None:
        yield quarantine_item(batch.quarantined)


def pages_to_items(pages: Iterable[bytes], batch: PageBatch, tally: TableTally) -> Iterator[Any]:
    """Feed page bodies through a :class:`PageBatch` and yield what each full batch gives.

    The table's ``seconds`` is the time its generator was working (fetching and parsing), not
    the time dlt spent between its items on other tables.
    """
    clock = time.monotonic()
    for body in pages:
        batch.add(body)
        tally.pages += 1
        if batch.full:
            parsed = batch.read()
            tally.seconds += time.monotonic() - clock
            yield from emit(parsed, tally)
            clock = time.monotonic()
    parsed = batch.read()
    tally.seconds += time.monotonic() - clock
    yield from emit(parsed, tally)
