"""An independent recomputation of the delivery marts straight from the sandbox store.

Reads the vendors' SQLite files (``harvest.sqlite``, ``netsuite.sqlite``) with ``sqlite3`` into
polars frames and recomputes, by the definitions in ``dbt_project/DECISIONLOG.md``, what
``mart_utilization_by_resource_month``, ``mart_wip_by_engagement`` and
``mart_margin_by_engagement`` report for one person or one engagement. Nothing here reads the
warehouse: the systems are tied together the way the sandbox README describes the firm (a person
by e-mail, a project by its code, an expense by the invoice line naming it, a posting by the
entry id it carries), and public holidays come from the sandbox's own catalog.

Money is ``decimal.Decimal`` (``fractions.Fraction`` where a division feeds a rounding), rounded
half up once per entry or line as the DECISIONLOG says; polars only selects and joins.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import polars as pl

from sandbox.firm.catalog import public_holidays

CENT = Decimal("0.01")
ZERO = Decimal(0)
ONE = Decimal(1)
REPORTING_CURRENCY = "USD"
CLOSED_JOB_STATUSES = (3, 4)  # NetSuite project status Closed, Completed
BILLING_MODELS = {
    "TM": "time_and_materials",
    "FF": "fixed_fee",
    "MS": "milestone",
    "RT": "retainer",
}


# ---------------------------------------------------------------------------- small helpers


def round_half_up(value: Decimal, places: int = 2) -> Decimal:
    """Round an exact decimal to ``places`` decimals, ties away from zero (what SQL ``round``
    does on decimals)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def round_fraction_half_up(value: Fraction, places: int = 2) -> Decimal:
    """Round an exact fraction to ``places`` decimals, ties away from zero, without any
    intermediate decimal approximation."""
    scale = 10**places
    scaled = value * scale
    sign = -1 if scaled < 0 else 1
    magnitude = abs(scaled)
    whole, rest = divmod(magnitude.numerator, magnitude.denominator)
    if 2 * rest >= magnitude.denominator:
        whole += 1
    return Decimal(sign * whole).scaleb(-places)


def money(value: float | int | None) -> Decimal | None:
    """A REAL of the store (at most 2 decimals, rates 6) as the exact decimal it was written
    from: ``repr`` of a float is its shortest round-trip form."""
    if value is None:
        return None
    return Decimal(repr(float(value)))


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_end(start: dt.date) -> dt.date:
    return start.replace(day=calendar.monthrange(start.year, start.month)[1])


def next_month(start: dt.date) -> dt.date:
    return dt.date(start.year + start.month // 12, start.month % 12 + 1, 1)


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Month starts from ``first``'s month to ``last``'s month, both included."""
    months, current = [], month_start(first)
    while current <= month_start(last):
        months.append(current)
        current = next_month(current)
    return months


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text[:10]) if text else None


def _read(con: sqlite3.Connection, sql: str, *, money_columns: Iterable[str] = (),
          date_columns: Iterable[str] = ()) -> pl.DataFrame:
    """One query's rows as a polars frame; money as Decimal objects, dates as dates."""
    cursor = con.execute(sql)
    names = [column[0] for column in cursor.description]
    rows = cursor.fetchall()
    money_columns, date_columns = set(money_columns), set(date_columns)
    columns: dict[str, list] = {name: [] for name in names}
    for row in rows:
        for name, value in zip(names, row, strict=True):
            if name in money_columns:
                value = money(value)
            elif name in date_columns:
                value = _date(value)
            columns[name].append(value)
    schema = {
        name: (pl.Object if name in money_columns else pl.Date if name in date_columns else None)
        for name in names
    }
    return pl.DataFrame(
        {name: pl.Series(name, values, dtype=schema[name]) for name, values in columns.items()}
    )


# ---------------------------------------------------------------------------- the store


@dataclass
class Store:
    """The tables of one sandbox store that the delivery marts are made of."""

    as_of: dt.date
    users: pl.DataFrame
    projects: pl.DataFrame
    time_entries: pl.DataFrame
    expenses: pl.DataFrame
    employees: pl.DataFrame
    subsidiaries: pl.DataFrame
    currencies: pl.DataFrame
    currency_rates: pl.DataFrame
    jobs: pl.DataFrame
    timebills: pl.DataFrame
    transactions: pl.DataFrame
    expense_lines: pl.DataFrame
    rate_cards: pl.DataFrame
    _valued: pl.DataFrame | None = field(default=None, repr=False)

    @classmethod
    def load(cls, folder: Path, as_of: dt.date | None = None) -> Store:
        if as_of is None:
            as_of = dt.date.fromisoformat(json.loads((folder / "firm.json").read_text())["as_of"])
        harvest = sqlite3.connect(f"file:{folder / 'harvest.sqlite'}?mode=ro", uri=True)
        netsuite = sqlite3.connect(f"file:{folder / 'netsuite.sqlite'}?mode=ro", uri=True)
        try:
            return cls(
                as_of=as_of,
                users=_read(
                    harvest,
                    "select id as user_id, lower(trim(email)) as email_key, roles,"
                    " weekly_capacity, cost_rate as psa_cost_rate from users",
                    money_columns=["psa_cost_rate"],
                ),
                projects=_read(
                    harvest,
                    "select id as project_id, upper(trim(code)) as code_key, code,"
                    " is_billable as project_is_billable from projects",
                ),
                time_entries=_read(
                    harvest,
                    "select id as entry_id, spent_date, user_id, project_id, hours, billable,"
                    " is_closed, billable_rate, cost_rate as entry_cost_rate from time_entries",
                    money_columns=["hours", "billable_rate", "entry_cost_rate"],
                    date_columns=["spent_date"],
                ),
                expenses=_read(
                    harvest,
                    "select id as expense_id, project_id, user_id, total_cost, billable,"
                    " is_closed, spent_date from expenses",
                    money_columns=["total_cost"],
                    date_columns=["spent_date"],
                ),
                employees=_read(
                    netsuite,
                    "select id as employee_id, lower(trim(email)) as email_key, title,"
                    " subsidiary as employee_subsidiary, laborcost, hiredate, releasedate"
                    " from employee",
                    money_columns=["laborcost"],
                    date_columns=["hiredate", "releasedate"],
                ),
                subsidiaries=_read(
                    netsuite, "select id as subsidiary, country, currency from subsidiary"
                ),
                currencies=_read(
                    netsuite, "select id as currency, symbol, isbasecurrency from currency"
                ),
                currency_rates=_read(
                    netsuite,
                    "select basecurrency, transactioncurrency, exchangerate, effectivedate"
                    " from currencyrate",
                    money_columns=["exchangerate"],
                    date_columns=["effectivedate"],
                ),
                jobs=_read(
                    netsuite,
                    "select id as job_id, upper(trim(entityid)) as code_key, entityid,"
                    " customer, subsidiary as job_subsidiary, entitystatus, enddate,"
                    " jobbillingtype, estimatedrevenue, estimatedlaborhours,"
                    " currency as job_currency from job",
                    money_columns=["estimatedrevenue", "estimatedlaborhours"],
                    date_columns=["enddate"],
                ),
                timebills=_read(
                    netsuite,
                    "select id as timebill_id, externalid, invoice from timebill"
                    " where cast(id as text) not in (select recordid from deletedrecord"
                    "   where lower(recordtype) in ('timebill', 'time bill', 'timeentry'))",
                ),
                transactions=_read(
                    netsuite,
                    "select id as transaction_id, type, trandate, job, foreigntotal, voided"
                    " from \"transaction\" where type in ('CustInvc', 'CustCred')",
                    money_columns=["foreigntotal"],
                    date_columns=["trandate"],
                ),
                expense_lines=_read(
                    netsuite,
                    "select \"transaction\" as transaction_id, custcol_harvest_expense_id"
                    " from transactionline where custcol_harvest_expense_id is not null",
                ),
                rate_cards=_read(
                    netsuite,
                    "select custrecord_rc_subsidiary as rc_subsidiary,"
                    " custrecord_rc_customer as rc_customer, custrecord_rc_role as rc_role,"
                    " custrecord_rc_rate as rc_rate,"
                    " custrecord_rc_effective_from as rc_from,"
                    " custrecord_rc_effective_to as rc_to"
                    " from customrecord_pslake_rate_card where isinactive = 'F'",
                    money_columns=["rc_rate"],
                    date_columns=["rc_from", "rc_to"],
                ),
            )
        finally:
            harvest.close()
            netsuite.close()

    # ------------------------------------------------------------------ people and projects

    def people(self) -> pl.DataFrame:
        """PSA users with their ERP employee (same e-mail): role, entity, country, cost rate,
        employment dates and the standard day."""
        employees = self.employees.join(
            self.subsidiaries.rename({"subsidiary": "employee_subsidiary"}),
            on="employee_subsidiary",
            how="left",
        )
        people = self.users.join(employees, on="email_key", how="left")
        rows = []
        for person in people.iter_rows(named=True):
            roles = json.loads(person["roles"] or "[]")
            cost_rate = person["laborcost"] if person["laborcost"] is not None \
                else person["psa_cost_rate"]
            rows.append({
                "user_id": person["user_id"],
                "role": person["title"] if person["title"] is not None
                else (roles[0] if roles else None),
                "country": person["country"],
                "hire_date": person["hiredate"],
                "release_date": person["releasedate"],
                "weekly_capacity_seconds": person["weekly_capacity"],
                "cost_rate": cost_rate,
            })
        return pl.DataFrame(rows, schema_overrides={"cost_rate": pl.Object})

    def project_jobs(self) -> pl.DataFrame:
        """PSA projects with the ERP job of the same project code, if any."""
        return self.projects.join(self.jobs, on="code_key", how="left")

    def fx_rate(self, currency_id: int, day: dt.date) -> Decimal:
        """Units of the reporting currency per unit of ``currency_id`` on ``day``: the latest
        published rate on or before it."""
        symbols = dict(self.currencies.select("currency", "symbol").iter_rows())
        if symbols[currency_id] == REPORTING_CURRENCY:
            return ONE
        base = next(c for c, s in symbols.items() if s == REPORTING_CURRENCY)
        rates = self.currency_rates.filter(
            (pl.col("basecurrency") == base)
            & (pl.col("transactioncurrency") == currency_id)
            & (pl.col("effectivedate") <= day)
        ).sort("effectivedate")
        assert rates.height, f"no rate for currency {currency_id} on or before {day}"
        return rates["exchangerate"][-1]

    # ------------------------------------------------------------------ time, valued

    def valued_entries(self) -> pl.DataFrame:
        """Every PSA time entry with its category, whether it is client work, the contracted
        rate (client card, else the job entity's standard card, else the PSA rate), its
        contracted and cost amounts (rounded once per entry) and the date of the first live
        invoice that billed a posting of it."""
        if self._valued is not None:
            return self._valued
        people = self.people()
        entries = (
            self.time_entries
            .join(self.project_jobs(), on="project_id", how="left")
            .join(people, on="user_id", how="left")
        )
        cards = list(self.rate_cards.iter_rows(named=True))
        client_cards: dict[tuple[int, str], list[dict]] = defaultdict(list)
        standard_cards: dict[tuple[int, str], list[dict]] = defaultdict(list)
        for card in cards:
            if card["rc_customer"] is None:
                standard_cards[(card["rc_subsidiary"], card["rc_role"])].append(card)
            else:
                client_cards[(card["rc_customer"], card["rc_role"])].append(card)

        def card_rate(found: list[dict], day: dt.date) -> Decimal | None:
            for card in found:
                if card["rc_from"] <= day and (card["rc_to"] is None or day <= card["rc_to"]):
                    return card["rc_rate"]
            return None

        invoice_dates = self._time_invoice_dates()
        rows = []
        for entry in entries.iter_rows(named=True):
            has_job = entry["job_id"] is not None
            is_pto = (entry["code_key"] or "").startswith("INT-") and \
                (entry["code_key"] or "").endswith("-PTO")
            is_client_work = has_job or bool(entry["project_is_billable"])
            if is_pto:
                category = "pto"
            elif is_client_work and entry["billable"]:
                category = "billable"
            elif is_client_work:
                category = "non_billable_client"
            else:
                category = "internal"
            day, hours = entry["spent_date"], entry["hours"]
            rate = None
            if has_job:
                rate = card_rate(client_cards.get((entry["customer"], entry["role"]), []), day)
                if rate is None:
                    rate = card_rate(
                        standard_cards.get((entry["job_subsidiary"], entry["role"]), []), day
                    )
            if rate is None:
                rate = entry["billable_rate"]
            cost_rate = entry["cost_rate"] if entry["cost_rate"] is not None \
                else entry["entry_cost_rate"]
            rows.append({
                "entry_id": entry["entry_id"],
                "user_id": entry["user_id"],
                "project_id": entry["project_id"],
                "job_id": entry["job_id"],
                "work_date": day,
                "month_start_date": month_start(day),
                "category": category,
                "is_client_work": is_client_work,
                "is_approved": bool(entry["is_closed"]),
                "hours": hours,
                "contracted_amount": round_half_up(hours * rate)
                if category == "billable" else ZERO,
                "cost_amount": round_half_up(hours * (cost_rate or ZERO)),
                "invoice_date": invoice_dates.get(str(entry["entry_id"])),
            })
        self._valued = pl.DataFrame(
            rows,
            schema_overrides={
                "hours": pl.Object, "contracted_amount": pl.Object, "cost_amount": pl.Object,
                "job_id": pl.Int64, "invoice_date": pl.Date,
            },
        )
        return self._valued

    def _live_invoices(self) -> pl.DataFrame:
        return self.transactions.filter(
            (pl.col("type") == "CustInvc") & (pl.col("voided") != "T")
        )

    def _time_invoice_dates(self) -> dict[str, dt.date]:
        """PSA entry id -> the earliest live invoice date among the invoices its postings are on."""
        billed = self.timebills.filter(pl.col("invoice").is_not_null()).join(
            self._live_invoices().select(
                pl.col("transaction_id").alias("invoice"), "trandate"
            ),
            on="invoice",
        )
        return dict(
            billed.group_by("externalid").agg(pl.col("trandate").min()).iter_rows()
        )

    def _expense_invoice_dates(self) -> dict[str, dt.date]:
        """PSA expense id -> date of the (first, by id) live invoice with a line naming it."""
        lines = self.expense_lines.join(
            self._live_invoices().select("transaction_id", "trandate"), on="transaction_id"
        ).sort("transaction_id")
        found: dict[str, dt.date] = {}
        for expense_id, day in lines.select("custcol_harvest_expense_id", "trandate").iter_rows():
            found.setdefault(str(expense_id), day)
        return found

    # ------------------------------------------------------------------ utilization

    def utilization(self, user_id: int, month: dt.date) -> dict:
        """One person's month: capacity, hours by category and utilization.

        Capacity = the standard day (weekly capacity / 5) on each weekday of the month the
        person was employed (ERP hire to release date, both included), nothing on a public
        holiday of their entity's country, within the data window (first month with time to
        the day before the as-of date). Hours: all logged time, approved or not."""
        person = self.people().filter(pl.col("user_id") == user_id).row(0, named=True)
        entries = self.valued_entries()
        window_start = month_start(entries["work_date"].min())
        window_end = self.as_of - dt.timedelta(days=1)
        standard_day = Decimal(person["weekly_capacity_seconds"]) / 3600 / 5
        holidays: set[dt.date] = set()
        if person["country"]:
            for year in range(month.year - 1, month.year + 2):
                holidays |= public_holidays(person["country"], year)
        capacity, working_days, holiday_days = ZERO, 0, 0
        day = month
        while day <= month_end(month):
            employed = (
                window_start <= day <= window_end
                and day.isoweekday() <= 5
                and (person["hire_date"] is None or day >= person["hire_date"])
                and (person["release_date"] is None or day <= person["release_date"])
            )
            if employed and day in holidays:
                holiday_days += 1
            elif employed:
                working_days += 1
                capacity += standard_day
            day += dt.timedelta(days=1)
        mine = entries.filter(
            (pl.col("user_id") == user_id) & (pl.col("month_start_date") == month)
        )
        hours = {category: ZERO for category in
                 ("billable", "non_billable_client", "internal", "pto")}
        for category, entry_hours in mine.select("category", "hours").iter_rows():
            hours[category] += entry_hours
        return {
            "working_days": working_days,
            "public_holiday_days": holiday_days,
            "capacity_hours": round_half_up(capacity),
            "billable_hours": round_half_up(hours["billable"]),
            "non_billable_client_hours": round_half_up(hours["non_billable_client"]),
            "internal_hours": round_half_up(hours["internal"]),
            "pto_hours": round_half_up(hours["pto"]),
            "total_hours": round_half_up(sum(hours.values(), ZERO)),
            "utilization": None if capacity == 0
            else round_fraction_half_up(Fraction(hours["billable"]) / Fraction(capacity), 4),
            "total_utilization": None if capacity == 0
            else round_fraction_half_up(
                Fraction(hours["billable"] + hours["non_billable_client"]) / Fraction(capacity),
                4,
            ),
        }

    # ------------------------------------------------------------------ engagements

    def engagement_months(self, job_id: int) -> list[dict]:
        """One ERP project's months (first month with time, expenses or invoices to the month
        of the day before the as-of date): revenue recognised by its billing model, cost, margin
        and WIP at each month end, in the project's currency and in the reporting currency."""
        job = self.jobs.filter(pl.col("job_id") == job_id).row(0, named=True)
        billing_model = BILLING_MODELS[job["jobbillingtype"]]
        project_ids = self.projects.filter(pl.col("code_key") == job["code_key"])["project_id"]
        flows: dict[dt.date, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))

        entries = self.valued_entries().filter(
            pl.col("project_id").is_in(project_ids.to_list()) & pl.col("is_approved")
        )
        for entry in entries.iter_rows(named=True):
            month = entry["month_start_date"]
            flows[month]["approved_hours"] += entry["hours"]
            flows[month]["labour_cost"] += entry["cost_amount"]
            if entry["category"] == "billable":
                flows[month]["billable_time"] += entry["contracted_amount"]
                if entry["invoice_date"] is not None:
                    flows[month_start(entry["invoice_date"])]["billed_time"] += \
                        entry["contracted_amount"]

        expense_invoice_dates = self._expense_invoice_dates()
        expenses = self.expenses.filter(
            pl.col("project_id").is_in(project_ids.to_list()) & (pl.col("is_closed") == 1)
        )
        for expense in expenses.iter_rows(named=True):
            month = month_start(expense["spent_date"])
            flows[month]["expense_cost"] += expense["total_cost"]
            if expense["billable"]:
                flows[month]["billable_expense"] += expense["total_cost"]
                invoiced_on = expense_invoice_dates.get(str(expense["expense_id"]))
                if invoiced_on is not None:
                    flows[month_start(invoiced_on)]["billed_expense"] += expense["total_cost"]

        documents = self.transactions.filter(
            (pl.col("job") == job_id) & (pl.col("voided") != "T")
        )
        for document in documents.iter_rows(named=True):
            month = month_start(document["trandate"])
            if document["type"] == "CustCred":
                flows[month]["invoiced"] -= document["foreigntotal"]
                flows[month]["credited"] += document["foreigntotal"]
            else:
                flows[month]["invoiced"] += document["foreigntotal"]

        if not flows:
            return []
        last_month = month_start(self.as_of - dt.timedelta(days=1))
        contract = job["estimatedrevenue"]
        budget = job["estimatedlaborhours"]
        is_closed = job["entitystatus"] in CLOSED_JOB_STATUSES
        ended_from = month_start(job["enddate"]) if job["enddate"] else None

        totals: dict[str, Decimal] = defaultdict(Decimal)
        previous_recognised, revenue_to_date_reporting, cost_to_date_reporting = ZERO, ZERO, ZERO
        months = []
        for month in months_between(min(flows), last_month):
            flow = flows.get(month, {})
            for key in ("approved_hours", "billable_time", "billed_time", "billable_expense",
                        "billed_expense", "invoiced", "credited", "labour_cost",
                        "expense_cost"):
                totals[key] += flow.get(key, ZERO)
            percent: Fraction | None = None
            if billing_model in ("fixed_fee", "milestone"):
                if is_closed and ended_from is not None and month >= ended_from:
                    percent = Fraction(1)
                elif budget is not None and budget > 0:
                    percent = min(Fraction(totals["approved_hours"]) / Fraction(budget), 1)
            if billing_model == "time_and_materials":
                recognised = totals["billable_time"] + totals["billable_expense"] \
                    - totals["credited"]
                wip = (totals["billable_time"] - totals["billed_time"]) \
                    + (totals["billable_expense"] - totals["billed_expense"])
            else:
                if percent is not None:
                    recognised = round_fraction_half_up(
                        Fraction(contract - totals["credited"]) * percent
                    )
                else:
                    recognised = totals["invoiced"]
                wip = recognised - totals["invoiced"]
            revenue = recognised - previous_recognised
            previous_recognised = recognised
            cost = flow.get("labour_cost", ZERO) + flow.get("expense_cost", ZERO)
            rate_date = min(month_end(month), self.as_of)
            rate = self.fx_rate(job["job_currency"], rate_date)
            revenue_reporting = round_half_up(revenue * rate)
            cost_reporting = round_half_up(cost * rate)
            revenue_to_date_reporting += revenue_reporting
            cost_to_date_reporting += cost_reporting
            cost_to_date = totals["labour_cost"] + totals["expense_cost"]
            months.append({
                "month_start_date": month,
                "wip_date": rate_date,
                "billing_model": billing_model,
                # WIP
                "approved_hours_to_date": totals["approved_hours"],
                "percent_complete": None if percent is None
                else round_fraction_half_up(percent, 4),
                "unbilled_time_amount": totals["billable_time"] - totals["billed_time"]
                if billing_model == "time_and_materials" else None,
                "unbilled_expense_amount": totals["billable_expense"] - totals["billed_expense"]
                if billing_model == "time_and_materials" else None,
                "recognised_revenue_to_date": recognised,
                "invoiced_amount_to_date": totals["invoiced"],
                "wip_amount": wip,
                "is_billed_in_advance": wip < 0,
                "rate_to_reporting": rate,
                "wip_amount_reporting": round_half_up(wip * rate),
                # margin
                "approved_hours": flow.get("approved_hours", ZERO),
                "recognised_revenue": revenue,
                "labour_cost_amount": flow.get("labour_cost", ZERO),
                "expense_cost_amount": flow.get("expense_cost", ZERO),
                "cost_amount": cost,
                "margin_amount": revenue - cost,
                "margin_pct": None if revenue == 0
                else round_fraction_half_up(Fraction(revenue - cost) / Fraction(revenue), 4),
                "cost_amount_to_date": cost_to_date,
                "margin_amount_to_date": recognised - cost_to_date,
                "recognised_revenue_reporting": revenue_reporting,
                "cost_amount_reporting": cost_reporting,
                "margin_amount_reporting": revenue_reporting - cost_reporting,
                "recognised_revenue_to_date_reporting": revenue_to_date_reporting,
                "cost_amount_to_date_reporting": cost_to_date_reporting,
            })
        return months

    # ------------------------------------------------------------------ choosing records

    def latest_complete_month(self) -> dt.date:
        """The last calendar month that ends before the as-of date."""
        return month_start(month_start(self.as_of) - dt.timedelta(days=1))

    def billable_hours_by_user(self, month: dt.date) -> pl.DataFrame:
        """user_id, billable hours in the month, highest first (ties by id)."""
        entries = self.valued_entries().filter(
            (pl.col("month_start_date") == month) & (pl.col("category") == "billable")
        )
        totals: dict[int, Decimal] = defaultdict(Decimal)
        for user_id, hours in entries.select("user_id", "hours").iter_rows():
            totals[user_id] += hours
        ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
        return pl.DataFrame(
            {"user_id": [u for u, _ in ranked], "billable_hours": [h for _, h in ranked]},
            schema_overrides={"billable_hours": pl.Object},
        )

    def engagements_ranked(self) -> pl.DataFrame:
        """ERP projects with at least one live invoice: billing model, approved hours, invoice
        and credit-memo counts, ranked by approved hours (highest first, ties by id)."""
        entries = self.valued_entries().filter(
            pl.col("is_approved") & pl.col("job_id").is_not_null()
        )
        hours: dict[int, Decimal] = defaultdict(Decimal)
        for job_id, entry_hours in entries.select("job_id", "hours").iter_rows():
            hours[job_id] += entry_hours
        live = self.transactions.filter(pl.col("voided") != "T")
        counts = live.group_by("job").agg(
            (pl.col("type") == "CustInvc").sum().alias("invoices"),
            (pl.col("type") == "CustCred").sum().alias("credit_memos"),
        ).rename({"job": "job_id"})
        jobs = self.jobs.select("job_id", "jobbillingtype").join(counts, on="job_id")
        jobs = jobs.filter(pl.col("invoices") > 0).with_columns(
            pl.col("jobbillingtype").replace_strict(BILLING_MODELS).alias("billing_model"),
            pl.col("job_id").map_elements(
                lambda j: float(hours.get(j, ZERO)), return_dtype=pl.Float64
            ).alias("approved_hours"),  # only to rank
        )
        return jobs.sort(["approved_hours", "job_id"], descending=[True, False])
