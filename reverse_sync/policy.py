"""Govern: per planned change, apply, hold for approval, or refuse.

Pure. The field-ownership matrix (dbt seed) says who owns each field and whether pslake may
write it; the policy file (``reverse_sync/policy.toml``, or ``--policy`` / ``$PSLAKE_SYNC_POLICY``)
sets the thresholds and the retry and batching limits.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pslake.errors import PslakeError
from reverse_sync.model import Change, FieldRule, PlannedChange

POLICY_ENV = "PSLAKE_SYNC_POLICY"
DEFAULT_POLICY = Path(__file__).with_name("policy.toml")


@dataclass(frozen=True, slots=True)
class Policy:
    """Thresholds and limits (the policy file's keys, same names).

    Attributes:
        hold_money_change_over: A money or number change larger than this (in the record's
            currency) waits for approval, on fields the matrix marks ``over_threshold``.
        hold_money_change_over_pct: ... or larger than this percentage of the CRM's value.
        hold_in_closed_period: Fields whose change waits for approval when the record lies in
            a closed accounting period.
        hold_fields: Fields always held (on top of the matrix's ``always``).
        refuse_fields: Fields never written (on top of the CRM-owned ones).
        retry_max_attempts: Failed writes of one change before it is given up (then it is an
            exception on the dashboard).
        retry_backoff_minutes: Wait before the 2nd, 3rd, ... attempt (the last repeats).
        batch_size: Records per batch call (HubSpot: 100).
        calls_per_window: CRM calls allowed per ``window_s`` (HubSpot Professional: 190 / 10 s).
        window_s: The rate-limit window.
        max_call_attempts: Tries of one call on 429 / 5xx / dropped connection before the batch
            counts as failed for this run.
        timeout_s: Seconds to wait for a CRM answer; after a crash, also how long a write the
            dead run sent is given to land before its records are read back.
    """

    hold_money_change_over: Decimal = Decimal("10000")
    hold_money_change_over_pct: Decimal = Decimal("25")
    hold_in_closed_period: tuple[str, ...] = ("invoice_amount", "invoice_date", "due_date",
                                              "currency", "invoice_number")
    hold_fields: tuple[str, ...] = ()
    refuse_fields: tuple[str, ...] = ()
    retry_max_attempts: int = 5
    retry_backoff_minutes: tuple[int, ...] = (5, 30, 120, 480)
    batch_size: int = 100
    calls_per_window: int = 190
    window_s: float = 10.0
    max_call_attempts: int = 8
    timeout_s: float = 30.0

    def backoff_minutes(self, attempts: int) -> int:
        """Minutes to wait after the ``attempts``-th failure."""
        steps = self.retry_backoff_minutes or (0,)
        return steps[min(max(attempts, 1), len(steps)) - 1]


def load_policy(path: Path | None = None) -> Policy:
    """The policy from ``path``, else ``$PSLAKE_SYNC_POLICY``, else the shipped default.

    Raises:
        PslakeError: The file is missing, not TOML, has an unknown key or a bad value.
    """
    env = os.environ.get(POLICY_ENV)
    source = path or (Path(env) if env else DEFAULT_POLICY)
    try:
        raw = tomllib.loads(source.read_text())
    except FileNotFoundError:
        raise PslakeError(f"sync policy file not found: {source}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PslakeError(f"sync policy {source} is not valid TOML: {exc}") from None
    return policy_from_mapping(raw, str(source))


def policy_from_mapping(raw: Mapping[str, Any], origin: str = "policy") -> Policy:
    """Build a policy from a mapping (the TOML's tables are flattened: ``[hold] money_...``).

    Raises:
        PslakeError: An unknown key or a value of the wrong type.
    """
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            for inner, item in value.items():
                flat[f"{key}_{inner}"] = item
        else:
            flat[key] = value
    known = {f.name: f for f in fields(Policy)}
    unknown = sorted(set(flat) - set(known))
    if unknown:
        raise PslakeError(f"{origin}: unknown setting(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    defaults = Policy()
    for name, value in flat.items():
        default = getattr(defaults, name)
        try:
            if isinstance(default, Decimal):
                values[name] = Decimal(str(value))
            elif isinstance(default, tuple):
                if not isinstance(value, list):
                    raise TypeError("a list")
                values[name] = tuple(type(default[0])(v) if default else v for v in value)
            elif isinstance(default, bool | str):
                values[name] = value
            elif isinstance(default, int):
                if isinstance(value, bool) or int(value) != value or int(value) < 1:
                    raise TypeError("a positive whole number")
                values[name] = int(value)
            else:
                values[name] = float(value)
        except (TypeError, ValueError, InvalidOperation) as exc:
            raise PslakeError(f"{origin}: {name} = {value!r} is not valid"
                              + (f" (expected {exc})" if isinstance(exc, TypeError) else "")
                              ) from None
    policy = Policy(**values)
    if not 1 <= policy.batch_size <= 100:
        raise PslakeError(f"{origin}: batch_size must be 1..100 (HubSpot's batch limit)")
    return policy


def decide(change: Change, rule: FieldRule | None, policy: Policy,
           approvals: Mapping[str, str]) -> PlannedChange:
    """The decision for one change and the rule that made it, in words.

    Args:
        change: The planned change.
        rule: Its field's row of the ownership matrix (``None``: the field is not in it).
        policy: Thresholds.
        approvals: change id -> "who at when" for changes someone approved.
    """
    if rule is None:
        return PlannedChange(change, "refuse", "field not in the field-ownership matrix")
    if rule.owner_system == "crm" or rule.pslake_writes == "never":
        return PlannedChange(change, "refuse", f"{change.field} is owned by the CRM")
    if change.field in policy.refuse_fields:
        return PlannedChange(change, "refuse", "refused by the policy (refuse_fields)")
    hold = _hold_reason(change, rule, policy)
    if hold is None:
        return PlannedChange(change, "apply", "auto")
    approval = approvals.get(change.change_id)
    if approval is not None:
        return PlannedChange(change, "apply", f"{hold}; approved by {approval}")
    return PlannedChange(change, "hold", hold)


def _hold_reason(change: Change, rule: FieldRule, policy: Policy) -> str | None:
    if rule.pslake_writes == "always_approve" or rule.approval == "always":
        return f"{change.field} changes always need approval"
    if change.field in policy.hold_fields:
        return "held by the policy (hold_fields)"
    if change.closed_period and change.field in policy.hold_in_closed_period:
        return "touches a closed accounting period"
    if rule.approval == "over_threshold" and change.kind in ("money", "number"):
        return _over_threshold(change, policy)
    return None


def _over_threshold(change: Change, policy: Policy) -> str | None:
    if change.current is None:
        return None  # a first value fills an empty field; it changes nothing anyone relied on
    try:
        desired = Decimal(change.desired)
        current = Decimal(change.current)
    except InvalidOperation:
        return None
    delta = abs(desired - current)
    unit = f" {change.currency}" if change.currency else ""
    if delta > policy.hold_money_change_over:
        return f"change of {delta}{unit} is over {policy.hold_money_change_over}{unit}"
    if current != 0:
        pct = delta / abs(current) * 100
        if pct > policy.hold_money_change_over_pct:
            return (f"change of {pct:.1f}% is over {policy.hold_money_change_over_pct}% "
                    "of the CRM's value")
    return None
