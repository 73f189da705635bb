"""The discrepancy types the generator injects, their default rates, and the ground-truth manifest.

The vocabulary and ``record_ref`` form are DESIGN.md's ("Exception types and how each is
identified"); the exact rule behind each type, as the generator guarantees it, is in
``sandbox/README.md`` so that the reconciliation can be written against it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import TracebackType
from typing import Literal, get_args

from sandbox.store import GROUND_TRUTH_COLUMNS

ExceptionType = Literal[
    "deal_won_without_project",
    "contract_value_mismatch",
    "customer_master_drift",
    "duplicate_customer",
    "project_code_unmapped",
    "time_not_posted",
    "time_hours_mismatch",
    "time_posted_twice",
    "time_in_closed_period",
    "time_on_closed_project",
    "rate_mismatch",
    "invoice_status_drift",
]

EXCEPTION_TYPES: tuple[ExceptionType, ...] = get_args(ExceptionType)

# Default share of eligible records perturbed, per type. Record-level time types are rarer
# because there are far more time entries than clients, deals or invoices.
DEFAULT_RATES: dict[str, float] = {
    "deal_won_without_project": 0.03,  # of won deals
    "contract_value_mismatch": 0.04,  # of won deals with a project
    "customer_master_drift": 0.05,  # of linked CRM companies (one field each)
    "duplicate_customer": 0.03,  # of clients (split between ERP and CRM duplicates)
    "project_code_unmapped": 0.03,  # of billable client projects
    "time_not_posted": 0.002,  # of eligible time entries
    "time_hours_mismatch": 0.002,
    "time_posted_twice": 0.001,
    "time_in_closed_period": 0.001,
    "time_on_closed_project": 0.05,  # of closed client projects
    "rate_mismatch": 0.002,
    "invoice_status_drift": 0.03,  # of invoices
}

# Record-level types on time entries: each entry carries at most one of them.
TIME_ENTRY_TYPES = (
    "time_not_posted",
    "time_hours_mismatch",
    "time_posted_twice",
    "time_in_closed_period",
    "rate_mismatch",
)

# Every type appears at least this often when there are enough eligible records.
MIN_PER_TYPE = 2


def parse_rates(items: list[str]) -> dict[str, float]:
    """Turn ``["0.01"]`` (all types) or ``["rate_mismatch=0.01", ...]`` into a rate table.

    Raises:
        ValueError: An unknown type or a rate outside [0, 1].
    """
    rates = dict(DEFAULT_RATES)
    for item in items:
        name, sep, raw = item.partition("=")
        try:
            value = float(raw if sep else name)
        except ValueError:
            raise ValueError(f"rate {item!r} is not a number (use TYPE=0.01 or 0.01)") from None
        if not 0 <= value <= 1:
            raise ValueError(f"rate {item!r} must be between 0 and 1")
        if not sep:
            rates = {key: value for key in rates}
        elif name not in rates:
            raise ValueError(f"unknown discrepancy type {name!r}; known: {', '.join(rates)}")
        else:
            rates[name] = value
    shared = sum(rates[name] for name in TIME_ENTRY_TYPES)
    if shared > 1:
        raise ValueError(
            f"the rates of {', '.join(TIME_ENTRY_TYPES)} add up to {shared:g}; "
            "one time entry carries at most one of them, so they must add up to 1 or less"
        )
    return rates


def ref(system: str, obj: str, key: object, field: str | None = None) -> str:
    """A ``record_ref``: ``<system>:<object>:<id>`` (``#field`` for one field of it)."""
    base = f"{system}:{obj}:{key}"
    return f"{base}#{field}" if field else base


class GroundTruth:
    """Streams manifest rows to ``ground_truth.csv`` and counts them per type."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(GROUND_TRUTH_COLUMNS)
        self.counts: dict[str, int] = dict.fromkeys(EXCEPTION_TYPES, 0)
        self._seen: set[tuple[str, str]] = set()

    def add(
        self, exception_type: ExceptionType, record_ref: str, expected: object, actual: object
    ) -> None:
        """Record one injected discrepancy (a record is never listed twice for one type)."""
        key = (exception_type, record_ref)
        if key in self._seen:
            raise ValueError(f"discrepancy injected twice: {key}")
        self._seen.add(key)
        self._writer.writerow((exception_type, record_ref, _text(expected), _text(actual)))
        self.counts[exception_type] += 1

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()

    def __enter__(self) -> GroundTruth:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _text(value: object) -> str:
    return "" if value is None else str(value)
