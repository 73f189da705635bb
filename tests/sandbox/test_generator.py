"""The synthetic firm: deterministic, realistic in shape, and its manifest true and complete."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import sqlite3
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from sandbox.firm.discrepancies import EXCEPTION_TYPES, parse_rates
from sandbox.firm.generate import generate
from sandbox.store import GROUND_TRUTH_COLUMNS
from tests.sandbox import oracle

AS_OF = dt.date(2026, 11, 16)
pytestmark = pytest.mark.integration


def _table_digests(store: Path) -> dict[str, str]:
    digests = {}
    for vendor in ("hubspot", "harvest", "netsuite"):
        con = sqlite3.connect(store / f"{vendor}.sqlite")
        tables = [
            r[0]
            for r in con.execute(
                "select name from sqlite_master where type = 'table' order by name"
            )
        ]
        for table in tables:
            h = hashlib.sha256()
            for row in con.execute(f'select * from "{table}" order by 1, 2'):
                h.update(repr(row).encode())
            digests[f"{vendor}.{table}"] = h.hexdigest()
        con.close()
    return digests


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("firm") / "sandbox"
    generate(store, size="small", seed=7, as_of=AS_OF)
    return store


def test_same_seed_and_date_give_the_same_firm_and_manifest(small: Path, tmp_path: Path):
    again = tmp_path / "again"
    generate(again, size="small", seed=7, as_of=AS_OF)
    assert _table_digests(again) == _table_digests(small)
    assert (again / "ground_truth.csv").read_bytes() == (small / "ground_truth.csv").read_bytes()


def test_another_seed_gives_another_firm(small: Path, tmp_path: Path):
    other = tmp_path / "other"
    generate(other, size="small", seed=8, as_of=AS_OF)
    a, b = _table_digests(small), _table_digests(other)
    assert a["harvest.time_entries"] != b["harvest.time_entries"]
    assert a["netsuite.customer"] != b["netsuite.customer"]


def test_manifest_is_exactly_what_the_data_holds(small: Path):
    # Every manifest row is really in the data, and the data holds no other discrepancy.
    with (small / "ground_truth.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == GROUND_TRUTH_COLUMNS
        truth = {(row["exception_type"], row["record_ref"]) for row in reader}
    found = oracle.find(small)
    assert truth - found == set(), "injected but not in the data"
    assert found - truth == set(), "in the data but not in the manifest"


def test_every_exception_type_is_injected_with_the_design_vocabulary(small: Path):
    with (small / "ground_truth.csv").open() as f:
        rows = list(csv.DictReader(f))
    counts = Counter(row["exception_type"] for row in rows)
    assert set(counts) == set(EXCEPTION_TYPES)
    assert min(counts.values()) >= 2
    prefixes = {
        "deal_won_without_project": "hubspot:deal:",
        "contract_value_mismatch": "hubspot:deal:",
        "customer_master_drift": "hubspot:company:",
        "project_code_unmapped": "harvest:project:",
        "invoice_status_drift": "netsuite:invoice:",
    }
    for row in rows:
        prefix = prefixes.get(row["exception_type"], "")
        assert row["record_ref"].startswith(prefix)
        if row["exception_type"] == "customer_master_drift":
            assert row["record_ref"].split("#")[1] in {
                "legal_name",
                "country",
                "billing_currency",
                "payment_terms",
            }
        if row["exception_type"].startswith("time_") or row["exception_type"] == "rate_mismatch":
            assert row["record_ref"].startswith("harvest:time_entry:")


def test_small_firm_has_the_size_and_shape_of_a_consultancy(small: Path):
    info = json.loads((small / "firm.json").read_text())
    assert info["consultants"] == 50 and info["months"] == 6
    hv = sqlite3.connect(small / "harvest.sqlite")
    ns = sqlite3.connect(small / "netsuite.sqlite")
    people, days, entries, hours, billable = hv.execute(
        "select count(distinct user_id), count(distinct user_id || spent_date), count(*), "
        "sum(hours), sum(case when billable = 1 then hours else 0 end) "
        "from time_entries"
    ).fetchone()
    assert people == 50
    assert 2.5 <= entries / days <= 4  # several entries a day, as people log them
    assert 7.0 <= hours / days <= 9.0
    assert 0.5 <= billable / hours <= 0.8  # firm-wide billable share
    # four legal entities in four currencies, with dated FX rates for every weekday
    assert {
        r[0]
        for r in ns.execute(
            "select c.symbol from subsidiary as s join currency as c on c.id = s.currency"
        )
    } == {"USD", "GBP", "EUR", "CAD"}
    weekdays_missing = ns.execute(
        "select count(*) from timebill as t where not exists (select 1 from currencyrate as r "
        "where r.effectivedate = t.trandate)"
    ).fetchone()[0]
    assert weekdays_missing == 0
    models = {r[0] for r in ns.execute("select distinct jobbillingtype from job")}
    assert models <= {"TM", "FF", "MS", "RT"} and {"TM", "FF", "RT"} <= models
    # approval states, PTO and internal time exist
    assert hv.execute("select count(*) from time_entries where is_closed = 0").fetchone()[0] > 0
    assert (
        hv.execute(
            "select count(*) from time_entries as t join tasks as k on k.id = t.task_id "
            "where k.name = 'Paid Time Off'"
        ).fetchone()[0]
        > 0
    )
    # periods are closed up to the last month at most
    open_months = ns.execute(
        "select min(startdate) from accountingperiod where isposting = 'T' and closed = 'F'"
    ).fetchone()[0]
    assert open_months <= AS_OF.replace(day=1).isoformat()
    # people have a utilization target the firm expects of their role
    assert ns.execute("select min(custentity_utilization_target), "
                      "max(custentity_utilization_target) from employee").fetchone() == (0.35, 0.85)


STAMP_COLUMNS = {"created_at", "updated_at", "archived_at", "lastmodifieddate", "datecreated",
                 "createddate", "linelastmodifieddate", "deleteddate"}


@pytest.mark.parametrize("seed", [1, 7, 12, 113], ids=lambda s: f"seed-{s}")
def test_no_record_is_stamped_at_or_after_the_as_of_date(tmp_path: Path, seed: int):
    # time runs to the day before: an incremental cursor must never start in the future
    store = tmp_path / "firm"
    generate(store, size="small", seed=seed, as_of=AS_OF)
    checked = 0
    for vendor in ("hubspot", "harvest", "netsuite"):
        con = sqlite3.connect(store / f"{vendor}.sqlite")
        for (table,) in con.execute("select name from sqlite_master where type = 'table'"):
            for column in con.execute(f'pragma table_info("{table}")'):
                if column[1] in STAMP_COLUMNS:
                    latest = con.execute(f'select max("{column[1]}") from "{table}"').fetchone()[0]
                    assert latest is None or latest < AS_OF.isoformat(), (table, column[1])
                    checked += 1
    assert checked >= 20


def test_invoices_add_up_and_payments_never_exceed_them(small: Path):
    ns = sqlite3.connect(small / "netsuite.sqlite")
    for inv_id, total, paid, remaining in ns.execute(
        "select id, foreigntotal, foreignamountpaid, foreignamountremaining "
        "from \"transaction\" where type = 'CustInvc'"
    ):
        lines = ns.execute(
            "select netamount, quantity, rate from transactionline "
            "where \"transaction\" = ? and mainline = 'F'",
            (inv_id,),
        ).fetchall()
        assert lines, inv_id
        line_sum = sum(Decimal(str(amount)) for amount, _q, _r in lines)
        assert line_sum == Decimal(str(total))
        for amount, qty, rate in lines:  # rounded once per line, half up
            assert Decimal(str(amount)) == (Decimal(str(qty)) * Decimal(str(rate))).quantize(
                Decimal("0.01")
            )
        applied = ns.execute(
            "select coalesce(sum(amount), 0) from previoustransactionlink where previousdoc = ?",
            (inv_id,),
        ).fetchone()[0]
        assert Decimal(str(applied)) == Decimal(str(paid))
        assert Decimal(str(paid)) + Decimal(str(remaining)) == Decimal(str(total))
    # T&M invoices bill exactly the ERP's posted billable time linked to them
    billed = ns.execute(
        "select round(sum(t.hours * t.rate), 2) from timebill as t where t.invoice is not null"
    ).fetchone()[0]
    lines = ns.execute(
        "select round(sum(netamount), 2) from transactionline where item = 1 and mainline = 'F'"
    ).fetchone()[0]
    assert billed == pytest.approx(lines, abs=0.01)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["0.2"], {"rate_mismatch": 0.2, "duplicate_customer": 0.2}),  # one rate for all
        (["rate_mismatch=0"], {"rate_mismatch": 0.0}),  # switch one type off
    ],
    ids=["all-types", "one-type"],
)
def test_rates_parse_for_all_types_or_one(items: list[str], expected: dict[str, float]):
    rates = parse_rates(items)
    for name, value in expected.items():
        assert rates[name] == value


@pytest.mark.parametrize(
    "bad",
    ["nonsense=0.1", "rate_mismatch=2", "x", "0.3"],
    ids=["unknown-type", "out-of-range", "not-a-number", "time-rates-add-up-over-1"],
)
def test_bad_rates_are_refused_with_a_reason(bad: str):
    with pytest.raises(ValueError, match=r"rate|type|add up"):
        parse_rates([bad])


def test_a_type_switched_off_is_not_injected_and_not_found(tmp_path: Path):
    rates = {name: 0.0 for name in EXCEPTION_TYPES}
    rates["time_hours_mismatch"] = 0.01
    store = tmp_path / "firm"
    info = generate(store, size="small", seed=3, as_of=AS_OF, rates=rates)
    assert {k for k, v in info["discrepancies"].items() if v} == {"time_hours_mismatch"}
    assert {t for t, _ in oracle.find(store)} == {"time_hours_mismatch"}


def test_regenerating_replaces_the_store_atomically(small: Path, tmp_path: Path):
    store = tmp_path / "firm"
    generate(store, size="small", seed=1, as_of=AS_OF)
    (store / "endpoints.json").write_text("{}")
    generate(store, size="small", seed=2, as_of=AS_OF)
    assert json.loads((store / "firm.json").read_text())["seed"] == 2
    assert not (store / "endpoints.json").exists()  # stale endpoints of the old store are gone
    assert not (store / ".generating").exists()
