"""The reverse sync's vocabulary: CRM objects, field rules, desired records, planned changes.

Plain frozen dataclasses with ``Literal`` decisions, so :mod:`reverse_sync.plan` and
:mod:`reverse_sync.policy` are pure functions over them (STYLE rule 17).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

Decision = Literal["apply", "hold", "refuse"]
ValueKind = Literal["text", "id", "date", "money", "number"]
Writes = Literal["never", "auto", "always_approve"]
Approval = Literal["", "always", "over_threshold"]

# What became of one planned change, in the journal.
ChangeStatus = Literal[
    "planned",  # decided apply, not sent yet
    "held",  # waits for `pslake sync approve`
    "refused",  # never written (a CRM-owned field, a field outside the matrix)
    "deferred",  # failed before; waits for its retry time
    "given_up",  # failed too often: a dashboard exception until the desired value changes
    "sent",  # in a write call whose outcome is not known yet
    "written",  # the CRM confirmed it (or a read-back found it there)
    "already",  # the CRM held the desired value when the batch was about to be sent
    "conflict",  # someone changed the CRM value after the plan read it: left alone
    "failed",  # the CRM rejected it (dead-letter table has the reason)
]


@dataclass(frozen=True, slots=True)
class CrmObject:
    """How pslake addresses one CRM object and where its desired state comes from.

    Attributes:
        name: The CRM object's path name (``companies``, ``deals``, ``erp_invoices``).
        model: The dbt sync model holding its desired values.
        key_column: The model column naming the record: the CRM id, or the unique property.
        id_property: ``None`` when ``key_column`` is the CRM record id (update by id); else the
            unique property the record is upserted by (creates the record when missing).
        context: Model columns that are not CRM fields (kept for the plan's readers).
        currency_column: The column with the record's currency (for money thresholds).
        closed_period_column: A boolean column: the record's period is closed.
    """

    name: str
    model: str
    key_column: str
    id_property: str | None
    context: tuple[str, ...]
    currency_column: str | None = None
    closed_period_column: str | None = None

    def read_key(self, key: str, crm_id: str | None) -> str:
        """What a batch read or update names a record by.

        The unique property's value for an upserted object, else the CRM id (the key itself
        when no separate id is known).
        """
        return key if self.id_property else (crm_id or key)


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One row of the field-ownership matrix (dbt seed ``field_ownership``)."""

    crm_object: str
    crm_property: str
    owner_system: str
    pslake_writes: Writes
    approval: Approval
    value_kind: ValueKind


@dataclass(frozen=True, slots=True)
class DesiredRecord:
    """What one CRM record should hold, per the sync model.

    Attributes:
        object: The CRM object's name.
        key: The record's key (CRM id, or the unique property's value).
        crm_id: The CRM record id when known (``None``: no record yet, upsert creates it).
        values: Field -> desired value as text (``None``: the source has no value).
        currency: The record's currency, when the model has one.
        closed_period: The record falls in a closed accounting period.
    """

    object: str
    key: str
    crm_id: str | None
    values: Mapping[str, str | None]
    currency: str | None = None
    closed_period: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """One field of one record whose CRM value differs from the desired one."""

    object: str
    key: str
    crm_id: str | None
    field: str
    current: str | None
    desired: str
    last_written: str | None
    reason: str
    kind: ValueKind
    currency: str | None = None
    closed_period: bool = False

    @property
    def change_id(self) -> str:
        """Deterministic id of (object, record, field, desired value): what an approval names.

        Replanning the same change gives the same id, so an approval made on one plan applies
        to the next; a different desired value is a different change needing its own approval.
        """
        return change_id(self.object, self.key, self.field, self.desired)


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """A change with the policy's decision and the rule that made it."""

    change: Change
    decision: Decision
    rule: str


def change_id(object_name: str, key: str, field: str, desired: str) -> str:
    """12 hex characters naming (object, record, field, desired value)."""
    raw = "\x1f".join((object_name, key, field, desired)).encode()
    return hashlib.sha256(raw).hexdigest()[:12]


def canonical(kind: ValueKind, value: str | None) -> str | None:
    """A value as pslake writes and compares it (``None`` and ``""`` mean empty).

    Numbers compare by value (the CRM stores ``1234.5`` for ``1234.50``); money is written with
    two decimals; dates as ``YYYY-MM-DD`` (the CRM may return a midnight timestamp).
    """
    if value is None:
        return None
    text = str(value).strip()
    if text == "":
        return None
    if kind in ("money", "number"):
        try:
            number = Decimal(text)
        except InvalidOperation:
            return text
        if kind == "money":
            return f"{number.quantize(Decimal('0.01'))}"
        normal = number.normalize()
        return f"{normal:f}" if normal != normal.to_integral() else f"{normal.to_integral():f}"
    if kind == "date":
        return text[:10]
    return text


def same(kind: ValueKind, left: str | None, right: str | None) -> bool:
    """Whether two values are the same for a field of this kind."""
    return canonical(kind, left) == canonical(kind, right)
