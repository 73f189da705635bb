"""Score a reconciliation's findings against the firm's ground-truth manifest.

Both sides are sets of ``(exception_type, record_ref)`` pairs: the manifest's rows, and the
exceptions a reconciliation reported (``marts.rec_exceptions``). Precision is the share of the
reported pairs that are in the manifest, recall the share of the manifest that was reported.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.store import GROUND_TRUTH_FILE

Pair = tuple[str, str]


@dataclass(frozen=True)
class Score:
    """Precision and recall, overall and per exception type."""

    expected: frozenset[Pair]
    found: frozenset[Pair]
    per_type: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # truth, missing, extra

    @property
    def missing(self) -> frozenset[Pair]:
        """In the manifest, not reported."""
        return self.expected - self.found

    @property
    def extra(self) -> frozenset[Pair]:
        """Reported, not in the manifest."""
        return self.found - self.expected

    @property
    def precision(self) -> float:
        """Reported pairs that are right (1.0 when nothing was reported and nothing expected)."""
        return (len(self.found & self.expected) / len(self.found)) if self.found else float(
            not self.expected)

    @property
    def recall(self) -> float:
        """Manifest pairs that were reported."""
        return (len(self.found & self.expected) / len(self.expected)) if self.expected else 1.0

    def lines(self) -> list[str]:
        """One line per exception type, and the first few misses and extras."""
        out = [f"{t:26} {n:6,} expected  {m:4} missing  {e:4} extra"
               for t, (n, m, e) in sorted(self.per_type.items())]
        out += [f"  missing {t} {r}" for t, r in sorted(self.missing)[:10]]
        out += [f"  extra   {t} {r}" for t, r in sorted(self.extra)[:10]]
        return out


def manifest(store: Path) -> frozenset[Pair]:
    """The ``(exception_type, record_ref)`` pairs of a store's ``ground_truth.csv``."""
    with (store / GROUND_TRUTH_FILE).open(newline="") as handle:
        return frozenset((row["exception_type"], row["record_ref"])
                         for row in csv.DictReader(handle))


def score(store: Path, found: set[Pair] | frozenset[Pair]) -> Score:
    """Compare what a reconciliation found with the store's manifest."""
    expected = manifest(store)
    reported = frozenset(found)
    truth = Counter(t for t, _ in expected)
    types = set(truth) | {t for t, _ in reported}
    per_type = {
        t: (truth.get(t, 0),
            sum(1 for p in expected - reported if p[0] == t),
            sum(1 for p in reported - expected if p[0] == t))
        for t in types
    }
    return Score(expected, reported, per_type)
