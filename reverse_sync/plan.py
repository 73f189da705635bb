"""Plan: desired CRM values against the CRM's current values and pslake's last written ones.

Pure: no I/O. The caller reads the desired records (dbt sync models), the CRM's current values
(batch reads at plan time) and the journal's last confirmed writes, and gets back the changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from reverse_sync.model import Change, DesiredRecord, FieldRule, ValueKind, canonical, same

RecordKey = tuple[str, str]  # (object, key)
FieldKey = tuple[str, str, str]  # (object, key, field)


@dataclass(frozen=True, slots=True)
class PlanInput:
    """Everything a plan compares.

    Attributes:
        desired: The records the sync models describe.
        current: (object, key) -> the CRM's values, for records the CRM has; a record missing
            here does not exist in the CRM yet.
        last_written: (object, key, field) -> the value pslake last wrote and saw confirmed.
        rules: (object, field) -> the field-ownership row.
    """

    desired: Iterable[DesiredRecord]
    current: Mapping[RecordKey, Mapping[str, str | None]]
    last_written: Mapping[FieldKey, str]
    rules: Mapping[tuple[str, str], FieldRule]


@dataclass(slots=True)
class PlanResult:
    """The changes, and what was compared but needs nothing (counted, never silent)."""

    changes: list[Change] = field(default_factory=list)
    records: int = 0
    fields_compared: int = 0
    unchanged: int = 0
    no_desired_value: int = 0
    missing_records: list[RecordKey] = field(default_factory=list)


def plan(data: PlanInput) -> PlanResult:
    """Every field whose CRM value differs from the desired one, with the reason.

    A desired ``None`` (the source has no value) is never written: it is counted in
    ``no_desired_value``. A record keyed by CRM id that the CRM does not have (archived or
    merged since) is listed in ``missing_records`` and planned anyway: the write fails with
    the CRM's reason and lands in the dead-letter table, where someone can see it.
    """
    result = PlanResult()
    for record in data.desired:
        result.records += 1
        current = data.current.get((record.object, record.key))
        if current is None and record.crm_id is not None:
            result.missing_records.append((record.object, record.key))
        for name, wanted in record.values.items():
            rule = data.rules.get((record.object, name))
            kind = rule.value_kind if rule is not None else "text"
            result.fields_compared += 1
            desired = canonical(kind, wanted)
            if desired is None:
                result.no_desired_value += 1
                continue
            now = current.get(name) if current is not None else None
            if same(kind, now, desired):
                result.unchanged += 1
                continue
            last = data.last_written.get((record.object, record.key, name))
            result.changes.append(Change(
                object=record.object, key=record.key, crm_id=record.crm_id, field=name,
                current=canonical(kind, now), desired=desired, last_written=last,
                reason=_reason(kind, current is None, canonical(kind, now), desired, last),
                kind=kind, currency=record.currency, closed_period=record.closed_period,
            ))
    return result


def _reason(kind: ValueKind, new_record: bool, now: str | None, desired: str,
            last: str | None) -> str:
    if new_record:
        return "record missing in the CRM"
    if last is None:
        return "CRM value empty" if now is None else "CRM differs from the source"
    if same(kind, last, desired):
        return "CRM edited since pslake wrote it"
    return "source changed since pslake wrote it"
