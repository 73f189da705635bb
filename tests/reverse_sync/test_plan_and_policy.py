"""Plan and policy are pure: the diff, the reasons, and every governance rule, without a CRM."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pslake.errors import PslakeError
from reverse_sync.model import Change, DesiredRecord, FieldRule, canonical, change_id, same
from reverse_sync.plan import PlanInput, plan
from reverse_sync.policy import DEFAULT_POLICY, Policy, decide, load_policy, policy_from_mapping

pytestmark = pytest.mark.unit

RULES = {
    ("companies", "name"): FieldRule("companies", "name", "crm", "never", "", "text"),
    ("companies", "legal_name"): FieldRule("companies", "legal_name", "erp", "always_approve",
                                           "always", "text"),
    ("companies", "country"): FieldRule("companies", "country", "erp", "auto", "", "text"),
    ("deals", "pslake_contract_value"): FieldRule("deals", "pslake_contract_value", "erp",
                                                  "auto", "over_threshold", "money"),
    ("erp_invoices", "invoice_amount"): FieldRule("erp_invoices", "invoice_amount", "erp",
                                                  "auto", "over_threshold", "money"),
    ("erp_invoices", "invoice_date"): FieldRule("erp_invoices", "invoice_date", "erp", "auto",
                                                "", "date"),
}


def _change(field: str = "country", current: str | None = "GB", desired: str = "DE",
            obj: str = "companies", closed: bool = False) -> Change:
    kind = RULES[(obj, field)].value_kind if (obj, field) in RULES else "text"
    return Change(object=obj, key="1", crm_id="1", field=field, current=current,
                  desired=desired, last_written=None, reason="test", kind=kind,
                  currency="USD", closed_period=closed)


@pytest.mark.parametrize(("kind", "left", "right", "equal"), [
    ("money", "1234.5", "1234.50", True),  # the CRM drops trailing zeros
    ("money", "1234.50", "1234.51", False),
    ("number", "10", "10.000", True),
    ("date", "2026-01-31T00:00:00.000Z", "2026-01-31", True),  # a date read back as midnight
    ("text", None, "", True),  # empty is empty
    ("text", "Acme", "acme", False),  # text is compared exactly
], ids=["money-trailing-zero", "money-cent", "number-scale", "date-midnight", "empty",
        "text-case"])
def test_values_compare_as_their_kind(kind: str, left: str | None, right: str | None,
                                      equal: bool) -> None:
    assert same(kind, left, right) is equal  # type: ignore[arg-type]


def test_money_is_written_with_two_decimals() -> None:
    assert canonical("money", "566000") == "566000.00"
    assert canonical("number", "1137.50") == "1137.5"


def test_plan_lists_only_fields_that_differ_with_a_reason_each() -> None:
    desired = [DesiredRecord("companies", "1", "1", {"country": "DE", "legal_name": "Acme Ltd"}),
               DesiredRecord("companies", "2", "2", {"country": "GB", "legal_name": None})]
    current = {("companies", "1"): {"country": "GB", "legal_name": "Acme Ltd"},
               ("companies", "2"): {"country": "GB", "legal_name": "Beta"}}
    result = plan(PlanInput(desired, current, {}, RULES))
    assert [(c.key, c.field, c.current, c.desired) for c in result.changes] == [
        ("1", "country", "GB", "DE")]
    assert (result.records, result.fields_compared, result.unchanged,
            result.no_desired_value) == (2, 4, 2, 1)


@pytest.mark.parametrize(("current", "last", "reason"), [
    ("GB", None, "CRM differs from the source"),  # never written by pslake
    (None, None, "CRM value empty"),
    ("FR", "DE", "CRM edited since pslake wrote it"),  # pslake wrote DE, a person put FR
    ("FR", "FR", "source changed since pslake wrote it"),  # pslake wrote FR, the ERP moved
], ids=["differs", "empty", "edited-in-crm", "source-moved"])
def test_plan_says_why_a_field_is_due(current: str | None, last: str | None,
                                      reason: str) -> None:
    desired = [DesiredRecord("companies", "1", "1", {"country": "DE"})]
    written = {("companies", "1", "country"): last} if last else {}
    result = plan(PlanInput(desired, {("companies", "1"): {"country": current}}, written, RULES))
    assert [c.reason for c in result.changes] == [reason]


def test_a_record_missing_from_the_crm_is_planned_and_named() -> None:
    desired = [DesiredRecord("companies", "9", "9", {"country": "DE"}),
               DesiredRecord("erp_invoices", "100", None, {"invoice_amount": "10.00"})]
    result = plan(PlanInput(desired, {}, {}, RULES))
    assert result.missing_records == [("companies", "9")]  # an upsert key is not "missing"
    assert {c.reason for c in result.changes} == {"record missing in the CRM"}


@pytest.mark.parametrize(("change", "decision", "rule_part"), [
    (_change("name", "Acme", "ACME"), "refuse", "owned by the CRM"),
    (_change("legal_name", "Acme", "Acme Ltd"), "hold", "always need approval"),
    (_change("country"), "apply", "auto"),
    (_change("pslake_contract_value", "100000.00", "100900.00", "deals"), "apply", "auto"),
    (_change("pslake_contract_value", "100000.00", "150000.00", "deals"), "hold",
     "over 10000"),
    (_change("pslake_contract_value", "1000.00", "2000.00", "deals"), "hold", "over 25%"),
    (_change("pslake_contract_value", None, "900000.00", "deals"), "apply", "auto"),
    (_change("invoice_date", "2026-01-01", "2026-01-02", "erp_invoices", closed=True),
     "hold", "closed accounting period"),
    (_change("invoice_date", "2026-01-01", "2026-01-02", "erp_invoices"), "apply", "auto"),
    (_change("hs_secret_field", "a", "b"), "refuse", "not in the field-ownership matrix"),
], ids=["crm-owned", "legal-name", "auto", "small-money", "money-over-amount",
        "money-over-percent", "first-value", "closed-period", "open-period", "unknown-field"])
def test_policy_decides_each_change_by_the_matrix_and_thresholds(
        change: Change, decision: str, rule_part: str) -> None:
    planned = decide(change, RULES.get((change.object, change.field)), Policy(), {})
    assert planned.decision == decision
    assert rule_part in planned.rule


def test_an_approved_change_is_applied_and_names_its_approver() -> None:
    change = _change("legal_name", "Acme", "Acme Ltd")
    approvals = {change.change_id: "cfo at 2026-11-23"}
    planned = decide(change, RULES[("companies", "legal_name")], Policy(), approvals)
    assert (planned.decision, planned.rule.endswith("approved by cfo at 2026-11-23")) == (
        "apply", True)
    # an approval names one desired value: another value needs its own
    other = _change("legal_name", "Acme", "Acme Group")
    assert decide(other, RULES[("companies", "legal_name")], Policy(), approvals
                  ).decision == "hold"


def test_change_ids_are_deterministic_per_record_field_and_value() -> None:
    assert _change().change_id == change_id("companies", "1", "country", "DE")
    assert _change().change_id != _change(desired="FR").change_id
    assert len(_change().change_id) == 12


FIELDS = st.sampled_from(sorted({f for _, f in RULES} | {"hs_unknown"}))
VALUES = st.one_of(st.none(), st.decimals(min_value=0, max_value=10**7, places=2).map(str),
                   st.text(min_size=1, max_size=8))


@settings(max_examples=300, deadline=None)
@given(field=FIELDS, current=VALUES, desired=VALUES.filter(lambda v: v is not None),
       closed=st.booleans(), approved=st.booleans())
def test_governance_holds_for_any_change(field: str, current: str | None, desired: str,
                                         closed: bool, approved: bool) -> None:
    """CRM-owned and unknown fields are always refused, approved or not; legal names are
    applied only once approved; nothing is refused that the matrix allows."""
    obj = next((o for o, f in RULES if f == field), "companies")
    change = _change(field, current, desired, obj, closed)
    rule = RULES.get((obj, field))
    approvals = {change.change_id: "someone at now"} if approved else {}
    planned = decide(change, rule, Policy(), approvals)
    if rule is None or rule.owner_system == "crm":
        assert planned.decision == "refuse"
    elif rule.pslake_writes == "always_approve":
        assert planned.decision == ("apply" if approved else "hold")
    else:
        assert planned.decision in ("apply", "hold")
        if planned.decision == "hold":
            assert not approved


def test_the_shipped_policy_file_loads_with_the_documented_defaults() -> None:
    policy = load_policy(DEFAULT_POLICY)
    assert policy == Policy()
    assert (policy.batch_size, policy.calls_per_window, policy.window_s) == (100, 190, 10.0)


@pytest.mark.parametrize(("raw", "message"), [
    ({"hold": {"money_over": 5}}, "unknown setting(s) hold_money_over"),  # a typo is named
    ({"batch_size": 500}, "batch_size must be 1..100"),  # HubSpot's batch limit
    ({"retry": {"max_attempts": 0}}, "retry_max_attempts = 0 is not valid"),
    ({"hold": {"money_change_over": "lots"}}, "hold_money_change_over = 'lots'"),
], ids=["unknown-key", "batch-too-big", "zero-attempts", "not-a-number"])
def test_a_bad_policy_is_refused_with_the_setting_named(raw: dict, message: str) -> None:
    with pytest.raises(PslakeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        policy_from_mapping(raw, "test.toml")


def test_policy_thresholds_come_from_the_file() -> None:
    policy = policy_from_mapping({"hold": {"money_change_over": "50", "fields": ["country"]}})
    assert policy.hold_money_change_over == Decimal("50")
    assert decide(_change("country"), RULES[("companies", "country")], policy, {}
                  ).decision == "hold"
