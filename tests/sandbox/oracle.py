"""An independent reading of a sandbox store: every discrepancy the data holds, by the rules.

It applies the rules of sandbox/README.md ("Discrepancy rules") straight to the three SQLite
files, knowing nothing of how the generator injected anything. Tests compare its findings with
the ground-truth manifest both ways: every manifest row must be found (the manifest is true) and
nothing else may be found (the manifest is complete).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from pathlib import Path

LEGAL_WORDS = {
    "inc",
    "llc",
    "corp",
    "ltd",
    "plc",
    "gmbh",
    "ag",
    "ulc",
    "co",
    "company",
    "corporation",
    "incorporated",
    "limited",
}


def normalise_name(name: str) -> str:
    """Lower case, punctuation gone, legal-form words dropped."""
    words = re.sub(r"[^a-z0-9 ]+", " ", name.lower()).split()
    return " ".join(w for w in words if w not in LEGAL_WORDS)


def normalise_domain(value: str | None) -> str | None:
    """A bare host name from a URL or domain."""
    if not value:
        return None
    host = re.sub(r"^https?://", "", value.strip().lower()).split("/")[0]
    return host.removeprefix("www.")


def _connect(store: Path) -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    for vendor in ("hubspot", "harvest", "netsuite"):
        con.execute(f"attach database '{store / (vendor + '.sqlite')}' as {vendor}")
    con.row_factory = sqlite3.Row
    return con


def find(store: Path) -> set[tuple[str, str]]:
    """All (exception_type, record_ref) pairs the store's data holds."""
    firm = json.loads((store / "firm.json").read_text())
    as_of = dt.date.fromisoformat(firm["as_of"])
    rules = firm["rules"]
    con = _connect(store)
    found: set[tuple[str, str]] = set()
    posting_cutoff = (as_of - dt.timedelta(days=rules["posting_grace_days"])).isoformat()
    deal_cutoff = (as_of - dt.timedelta(days=rules["deal_grace_days"])).isoformat()
    tolerance = rules["contract_value_tolerance"]

    postings = {
        row[0]: row[1:]
        for row in con.execute(
            "select externalid, count(*), min(hours) from netsuite.timebill group by externalid"
        )
    }
    for row in con.execute(
        "select id, hours, billable, is_closed, spent_date from harvest.time_entries"
    ):
        posted = postings.get(str(row["id"]))
        ref = f"harvest:time_entry:{row['id']}"
        if posted is None:
            if row["is_closed"] and row["billable"] and row["spent_date"] <= posting_cutoff:
                found.add(("time_not_posted", ref))
        elif posted[0] > 1:
            found.add(("time_posted_twice", ref))
        elif abs(posted[1] - row["hours"]) > 1e-9:
            found.add(("time_hours_mismatch", ref))

    for row in con.execute("""
            select te.id from harvest.time_entries as te
            join netsuite.accountingperiod as ap
              on ap.isposting = 'T' and te.spent_date between ap.startdate and ap.enddate
            where ap.closed = 'T' and substr(te.updated_at, 1, 10) > ap.closedondate"""):
        found.add(("time_in_closed_period", f"harvest:time_entry:{row['id']}"))

    for row in con.execute("""
            select te.id from harvest.time_entries as te
            join harvest.projects as hp on hp.id = te.project_id
            join netsuite.job as job on job.entityid = hp.code
            where job.entitystatus in (3, 4) and te.spent_date > job.enddate"""):
        found.add(("time_on_closed_project", f"harvest:time_entry:{row['id']}"))

    cards: dict[tuple[int | None, str], list[tuple[str, str, float]]] = {}
    for row in con.execute("select * from netsuite.customrecord_pslake_rate_card"):
        key = (row["custrecord_rc_customer"], row["custrecord_rc_role"])
        if row["custrecord_rc_customer"] is None:
            key = (-row["custrecord_rc_subsidiary"], row["custrecord_rc_role"])
        cards.setdefault(key, []).append(
            (
                row["custrecord_rc_effective_from"],
                row["custrecord_rc_effective_to"],
                row["custrecord_rc_rate"],
            )
        )

    def card(customer: int, subsidiary: int, role: str, day: str) -> float | None:
        for key in ((customer, role), (-subsidiary, role)):
            for start, end, rate in cards.get(key, []):
                if start <= day <= end:
                    return rate
        return None

    roles = {
        row["id"]: json.loads(row["roles"])[0]
        for row in con.execute("select id, roles from harvest.users")
    }
    for row in con.execute("""
            select te.id, te.user_id, te.spent_date, te.billable_rate, job.customer,
                   job.subsidiary
            from harvest.time_entries as te
            join harvest.projects as hp on hp.id = te.project_id
            join netsuite.job as job on job.entityid = hp.code
            where te.billable = 1"""):
        expected = card(
            row["customer"], row["subsidiary"], roles[row["user_id"]], row["spent_date"]
        )
        if expected is None or abs(expected - (row["billable_rate"] or 0)) > 1e-9:
            found.add(("rate_mismatch", f"harvest:time_entry:{row['id']}"))

    codes = {row[0] for row in con.execute("select entityid from netsuite.job")}
    for row in con.execute("select id, code from harvest.projects where is_billable = 1"):
        if (row["code"] or "").strip().upper() not in codes:
            found.add(("project_code_unmapped", f"harvest:project:{row['id']}"))

    # duplicates: same normalised name or domain; the oldest record survives
    erp = [
        dict(r)
        for r in con.execute(
            "select id, companyname, url, datecreated, currency, terms, billcountry, "
            "custentity_hubspot_company_id from netsuite.customer"
        )
    ]
    survivors_erp = _duplicates(
        erp,
        lambda r: (normalise_name(r["companyname"]), normalise_domain(r["url"])),
        lambda r: (r["datecreated"], r["id"]),
        "netsuite:customer",
        found,
    )
    crm = []
    for r in con.execute(
        "select id, properties, created_at from hubspot.objects "
        "where object_type = 'companies' and archived = 0"
    ):
        props = json.loads(r["properties"])
        crm.append({"id": r["id"], "created_at": r["created_at"], **props})
    survivors_crm = _duplicates(
        crm,
        lambda r: (normalise_name(r.get("name") or ""), normalise_domain(r.get("domain"))),
        lambda r: (r["created_at"], r["id"]),
        "hubspot:company",
        found,
    )

    currencies = {r[0]: r[1] for r in con.execute("select id, symbol from netsuite.currency")}
    terms = {r[0]: r[1] for r in con.execute("select id, name from netsuite.term")}
    erp_by_id = {r["id"]: r for r in survivors_erp}
    erp_by_crm = {
        r["custentity_hubspot_company_id"]: r
        for r in survivors_erp
        if r["custentity_hubspot_company_id"]
    }
    erp_by_name = {normalise_name(r["companyname"]): r for r in survivors_erp}
    for company in survivors_crm:
        customer = None
        if company.get("netsuite_customer_id"):
            customer = erp_by_id.get(int(company["netsuite_customer_id"]))
        customer = customer or erp_by_crm.get(str(company["id"]))
        customer = customer or erp_by_name.get(normalise_name(company.get("name") or ""))
        if customer is None:
            continue
        expected = {
            "legal_name": customer["companyname"],
            "country": customer["billcountry"],
            "billing_currency": currencies[customer["currency"]],
            "payment_terms": terms.get(customer["terms"]),
        }
        for field, value in expected.items():
            if (company.get(field) or "") != (value or ""):
                found.add(("customer_master_drift", f"hubspot:company:{company['id']}#{field}"))

    jobs_by_deal = {
        r[0]: r[1]
        for r in con.execute(
            "select custentity_hubspot_deal_id, estimatedrevenue from netsuite.job"
        )
    }
    for r in con.execute(
        "select id, properties from hubspot.objects where object_type = 'deals' and archived = 0"
    ):
        props = json.loads(r["properties"])
        ref = f"hubspot:deal:{r['id']}"
        value = jobs_by_deal.get(str(r["id"]))
        if value is None:
            if (
                props.get("dealstage") == "closedwon"
                and (props.get("closedate") or "")[:10] <= deal_cutoff
            ):
                found.add(("deal_won_without_project", ref))
        elif abs(float(props.get("amount") or 0) - value) > tolerance * abs(value):
            found.add(("contract_value_mismatch", ref))

    crm_invoices = {}
    for r in con.execute(
        "select properties from hubspot.objects where object_type = 'erp_invoices' and archived = 0"
    ):
        props = json.loads(r["properties"])
        crm_invoices[props["netsuite_invoice_id"]] = props
    for r in con.execute(
        "select id, foreigntotal, foreignamountpaid, foreignamountremaining "
        "from netsuite.\"transaction\" where type = 'CustInvc'"
    ):
        props = crm_invoices.get(str(r["id"]))
        if props is None:
            continue
        paid, remaining = r["foreignamountpaid"] or 0, r["foreignamountremaining"]
        status = "paid" if remaining == 0 else "partially_paid" if paid > 0 else "open"
        if props["invoice_status"] != status or abs(float(props["amount_paid"]) - paid) > 0.001:
            found.add(("invoice_status_drift", f"netsuite:invoice:{r['id']}"))
    con.close()
    return found


def _duplicates(
    rows: list[dict[str, object]],
    keys: object,
    age: object,
    system: str,
    found: set[tuple[str, str]],
) -> list[dict[str, object]]:
    """Group rows sharing a normalised name or domain; flag all but the oldest; return survivors."""
    parent = list(range(len(rows)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[object, int] = {}
    for i, row in enumerate(rows):
        for part, key in enumerate(keys(row)):  # type: ignore[operator]
            if not key:
                continue
            j = seen.setdefault((part, key), i)
            parent[root(i)] = root(j)
    groups: dict[int, list[dict[str, object]]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(root(i), []).append(row)
    survivors = []
    for members in groups.values():
        members.sort(key=age)  # type: ignore[arg-type]
        survivors.append(members[0])
        for dup in members[1:]:
            found.add(("duplicate_customer", f"{system}:{dup['id']}"))
    return survivors
