"""Battery test 20, ``sync_governance_property``: random plans against the sandbox CRM.

Hypothesis draws what the sync models say for a few companies and deals: CRM-owned fields
(``name``, ``amount``) and a field outside the matrix changed or not, legal names, money
changes under and over the thresholds, small changes. Each example writes that as the
warehouse's sync models, applies, approves what was held, and applies again. An oracle built
from the field-ownership matrix and the documented thresholds (not from ``policy.py``) says
what each change should become; the CRM's write log says what happened.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import duckdb
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from reverse_sync.model import ValueKind, canonical, same
from reverse_sync.runner import Sync
from tests.reliability import record
from tests.reverse_sync.conftest import Crm

pytestmark = pytest.mark.integration

OVER_AMOUNT = Decimal("10000")  # policy.toml: [hold] money_change_over
OVER_PCT = Decimal("25")  # policy.toml: [hold] money_change_over_pct
APPROVER = "cfo@example.com"
PROBE = "hs_pslake_probe"  # a column the matrix does not know

TEXT = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8)
# None: keep the CRM's value; ("abs", d): add d; ("rel", r): times 1 + r
MONEY = st.one_of(
    st.none(),
    st.tuples(st.just("abs"), st.decimals(min_value=-40000, max_value=40000, places=2)),
    st.tuples(st.just("rel"), st.decimals(min_value=Decimal("-0.6"), max_value=Decimal("0.6"),
                                          places=3)))
COMPANY = st.fixed_dictionaries({
    "legal_name": st.one_of(st.none(), TEXT.map(lambda t: f"Legal {t} Ltd")),
    "country": st.one_of(st.none(), st.sampled_from(["US", "GB", "DE", "CA", "FR", "NL"])),
    "name": st.one_of(st.none(), TEXT),  # owned by the CRM
    PROBE: st.one_of(st.none(), TEXT),  # outside the matrix
})
DEAL = st.fixed_dictionaries({
    "pslake_contract_value": MONEY,
    "pslake_amount_invoiced": MONEY,
    "pslake_hours_delivered": st.one_of(st.none(), st.integers(1, 40)),
    "amount": st.booleans(),  # owned by the CRM: changed or not
})


@dataclass(frozen=True)
class Rule:
    """A row of the field-ownership matrix, as the oracle needs it."""

    owner: str
    writes: str
    approval: str
    kind: str


@dataclass
class Model:
    """The sync models' columns and the matrix, read once from the built warehouse."""

    source: Path
    rules: dict[tuple[str, str], Rule]
    companies: list[str]
    deals: list[str]


def _model(warehouse: Path) -> Model:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rules = {(o, p): Rule(owner, writes, approval or "", kind) for o, p, owner, writes,
                 approval, kind in con.execute(
                     "select crm_object, crm_property, owner_system, pslake_writes, approval, "
                     "value_kind from reference.field_ownership").fetchall()}
        companies = [r[0] for r in con.execute(
            "select crm_record_id from marts.sync_hubspot__companies order by 1").fetchall()]
        deals = [r[0] for r in con.execute(
            "select crm_record_id from marts.sync_hubspot__deals order by 1").fetchall()]
    return Model(warehouse, rules, companies, deals)


def _expected(rule: Rule | None, current: str | None, desired: str, approved: bool) -> str:
    """What the governance rules say a change becomes: apply, hold or refuse."""
    if rule is None or rule.owner == "crm" or rule.writes == "never":
        return "refuse"
    held = rule.writes == "always_approve" or rule.approval == "always"
    if rule.approval == "over_threshold" and current is not None:
        delta = abs(Decimal(desired) - Decimal(current))
        held = delta > OVER_AMOUNT or (Decimal(current) != 0
                                       and delta * 100 > OVER_PCT * abs(Decimal(current)))
    return "apply" if not held or approved else "hold"


def _money(change: tuple[str, Decimal] | None, current: str | None) -> Decimal | None:
    if change is None:
        return Decimal(current) if current is not None else None
    base = Decimal(current) if current is not None else Decimal("100000")
    kind, amount = change
    value = base + amount if kind == "abs" else base * (1 + amount)
    return max(value, Decimal(0)).quantize(Decimal("0.01"))


def _write_models(model: Model, target: Path, companies: dict[str, dict[str, Any]],
                  deals: dict[str, dict[str, Any]]) -> None:
    """The warehouse the sync reads: the matrix and the three sync models, with these rows."""
    target.unlink(missing_ok=True)  # the shared warehouse is linked here: never write into it
    with duckdb.connect(str(target)) as con:
        con.execute(f"attach '{model.source}' as src (read_only)")
        con.execute("create schema reference")
        con.execute("create table reference.field_ownership as "
                    "select * from src.reference.field_ownership")
        con.execute("create schema marts")
        con.execute("create table marts.sync_hubspot__erp_invoices as "
                    "select * from src.marts.sync_hubspot__erp_invoices where false")
        extra = {"companies": ["null::varchar as name", f"null::varchar as {PROBE}"],
                 "deals": ["null::decimal(18, 2) as amount"]}  # fields the CRM owns, or no one
        for name, rows in (("companies", companies), ("deals", deals)):
            table = f"marts.sync_hubspot__{name}"
            con.execute(f"create table {table} as select *, {', '.join(extra[name])} "
                        f"from src.{table} where false")
            if rows:
                con.execute(f"insert into {table} by name select * from src.{table} "
                            f"where crm_record_id in ({', '.join('?' * len(rows))})", list(rows))
            for crm_id, values in rows.items():
                for column, value in values.items():
                    con.execute(f'update {table} set "{column}" = ? where crm_record_id = ?',
                                [None if value is None else str(value), crm_id])
        con.execute("detach src")


def _governance_run(crm: Crm, model: Model, sync: Sync,
                    companies: list[tuple[str, dict[str, Any]]],
                    deals: list[tuple[str, dict[str, Any]]], totals: Counter[str]) -> None:
    """One random plan: apply, check, approve what was held, apply, check."""
    rows: dict[str, dict[str, dict[str, Any]]] = {"companies": {}, "deals": {}}
    current: dict[tuple[str, str], dict[str, str | None]] = {}
    for crm_id, case in companies:
        now = crm.read("companies", crm_id, ["legal_name", "country", "name", PROBE])
        current[("companies", crm_id)] = now
        rows["companies"][crm_id] = {
            "legal_name": case["legal_name"] or now["legal_name"],
            "country": case["country"] or now["country"],
            "name": case["name"] or now["name"], PROBE: case[PROBE]}
    for crm_id, case in deals:
        fields = ["pslake_contract_value", "pslake_amount_invoiced", "pslake_hours_delivered",
                  "amount"]
        now = crm.read("deals", crm_id, fields)
        current[("deals", crm_id)] = now
        hours = now["pslake_hours_delivered"]
        rows["deals"][crm_id] = {
            "pslake_contract_value": _money(case["pslake_contract_value"],
                                            now["pslake_contract_value"]),
            "pslake_amount_invoiced": _money(case["pslake_amount_invoiced"],
                                             now["pslake_amount_invoiced"]),
            "pslake_hours_delivered": (Decimal(hours or 0) + case["pslake_hours_delivered"]
                                       if case["pslake_hours_delivered"] else hours),
            "amount": (Decimal(now["amount"] or 0) + 1000) if case["amount"] else now["amount"]}
    _write_models(model, crm.data_dir / "warehouse.duckdb", rows["companies"], rows["deals"])

    approvals = sync.journal.approvals()
    start = max((w["seq"] for w in crm.writes()), default=0)
    plan, _ = sync.apply()
    assert plan is not None
    decided = {(p.change.object, p.change.key, p.change.field): p for p in plan.changes}
    # the oracle: every field the models name whose value differs from the CRM's
    expected: dict[tuple[str, str, str], str] = {}
    for item in decided.values():
        c = item.change
        rule = model.rules.get((c.object, c.field))
        expected[(c.object, c.key, c.field)] = _expected(rule, c.current, c.desired,
                                                         c.change_id in approvals)
    for obj, records in rows.items():
        for crm_id, values in records.items():
            for column, value in values.items():
                rule = model.rules.get((obj, column))
                kind = cast(ValueKind, rule.kind if rule else "text")
                wanted = canonical(kind, None if value is None else str(value))
                held_now = current[(obj, crm_id)].get(column)
                if wanted is not None and not same(kind, held_now, wanted):
                    assert (obj, crm_id, column) in decided, (obj, crm_id, column)
    assert {k: p.decision for k, p in decided.items()} == expected

    writes = [w for w in crm.writes() if w["seq"] > start and w["correlation_id"]]
    written = {(w["object_type"], str(w["record_id"]), w["property"]) for w in writes}
    allowed = {k for k, d in expected.items() if d == "apply"}
    crm_owned = {k for k in written if model.rules.get((k[0], k[2])) is None
                 or model.rules[(k[0], k[2])].owner == "crm"}
    premature = {k for k, d in expected.items() if d == "hold"} & written
    assert crm_owned == set() and premature == set()
    assert written == allowed  # and every allowed change went out
    refused = [dict(r) for r in sync.journal.db.execute(
        "select object, record_key, field, status, rule from changes where run_id = ? and "
        "decision = 'refuse'", (plan.run_id,))]
    assert {(r["object"], r["record_key"], r["field"]) for r in refused} == {
        k for k, d in expected.items() if d == "refuse"}
    assert all(r["status"] == "refused" and r["rule"] for r in refused)  # logged, with why

    held = [p.change for p in plan.changes if p.decision == "hold"]
    if held:
        sync.approve([c.change_id for c in held], APPROVER)
        start = max((w["seq"] for w in crm.writes()), default=0)
        _, after = sync.apply()
        later = [w for w in crm.writes() if w["seq"] > start and w["correlation_id"]]
        assert sorted((w["object_type"], str(w["record_id"]), w["property"]) for w in later) == \
            sorted((c.object, c.key, c.field) for c in held)  # each once, nothing else
        for change in held:
            audit = sync.journal.db.execute(
                "select approver from audit where change_id = ? and run_id = ?",
                (change.change_id, after.run_id)).fetchone()
            assert audit is not None
            assert re.fullmatch(rf"{re.escape(APPROVER)} at \d{{4}}-\d\d-\d\dT\d\d:\d\d:\S+",
                                audit["approver"])
    totals["examples"] += 1
    totals["changes"] += len(decided)
    totals["applied"] += len(allowed)
    totals["held"] += len(held)
    totals["refused"] += len(refused)
    totals["crm_owned_written"] += len(crm_owned)
    totals["held_written_before_approval"] += len(premature)


def _property(crm: Crm, examples: int, run_seed: int) -> None:
    model = _model((crm.data_dir / "warehouse.duckdb").resolve())
    totals: Counter[str] = Counter()
    companies = st.lists(st.tuples(st.sampled_from(model.companies), COMPANY), max_size=2,
                         unique_by=lambda item: item[0])
    deals = st.lists(st.tuples(st.sampled_from(model.deals), DEAL), max_size=3,
                     unique_by=lambda item: item[0])

    with crm.sync() as sync:

        @seed(run_seed)
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(companies=companies, deals=deals)
        def governed(companies: list[tuple[str, dict[str, Any]]],
                     deals: list[tuple[str, dict[str, Any]]]) -> None:
            _governance_run(crm, model, sync, companies, deals, totals)

        governed()
    violations = totals["crm_owned_written"] + totals["held_written_before_approval"]
    assert violations == 0
    # injected: random plans; bad inputs: the changes in them the policy must not just apply
    record("sync_governance_property", seed=run_seed, injected=totals["examples"],
           survived=totals["examples"] if violations == 0 else 0,
           bad_inputs=totals["held"] + totals["refused"], violations=violations,
           changes=totals["changes"], holds=totals["held"],
           refusals=totals["refused"], applied=totals["applied"],
           crm_owned_written=totals["crm_owned_written"],
           held_written_before_approval=totals["held_written_before_approval"])


def test_random_plans_never_write_crm_fields_and_write_held_ones_only_once_approved(
        crm: Crm) -> None:
    _property(crm, examples=25, run_seed=20261123)


@pytest.mark.soak
@pytest.mark.parametrize("run_seed", range(1, 6))
def test_governance_holds_over_many_random_plans(crm: Crm, run_seed: int) -> None:
    _property(crm, examples=60, run_seed=run_seed)
