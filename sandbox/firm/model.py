"""In-memory reference data of the synthetic firm (people, clients, deals, projects, rate cards).

Everything here is small even for the enterprise firm (10,000 people, a few thousand clients and
projects); the large tables (time entries, postings) are streamed by ``sandbox.firm.timeflow``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

from sandbox.firm.catalog import (
    ANNUAL_RATE_INCREASE,
    BILLING_MODELS,
    BILLING_WEIGHTS,
    CLIENT_WORDS_A,
    CLIENT_WORDS_B,
    ENTITIES,
    FIRST_NAMES,
    INDUSTRIES,
    LAST_NAMES,
    LEGAL_SUFFIX,
    PRACTICES,
    RATE_FACTOR,
    ROLES,
    TERM_WEIGHTS,
    TERMS,
    Entity,
    Role,
    public_holidays,
)

_T = TypeVar("_T")

CENT = Decimal("0.01")
PROJECT_KINDS = ("Programme", "Review", "Implementation", "Assessment", "Roadmap", "Support")

# The firm's operating rhythm; sandbox/README.md states these as the rules the data obeys.
APPROVAL_DAYS_AFTER_FRIDAY = (3, 4, 5, 6)  # timesheets approved Mon-Thu after the week
CLOSE_DAYS_AFTER_MONTH_END = 12  # accounting period closed on this day
INVOICE_DAYS_AFTER_MONTH_END = 13  # T&M invoice run, + 0..2 days, + 1 month if late
POSTING_GRACE_DAYS = 14  # approved time is in the ERP by then
DEAL_GRACE_DAYS = 30  # a won deal has its project by then


def money(value: Decimal | int | float) -> Decimal:
    """Round to cents, half up (the business rounding)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (clamped to the month's last day)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    last = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def month_end(day: dt.date) -> dt.date:
    """Last day of the day's month."""
    return add_months(day.replace(day=1), 1) - dt.timedelta(days=1)


def month_key(day: dt.date) -> int:
    """A sortable month number (year * 12 + month - 1)."""
    return day.year * 12 + day.month - 1


def key_to_month(key: int) -> dt.date:
    """First day of a month number."""
    return dt.date(key // 12, key % 12 + 1, 1)


@dataclass(slots=True)
class Consultant:
    """A person: Harvest user, NetSuite employee, and (some) HubSpot owner."""

    idx: int
    harvest_id: int
    netsuite_id: int
    first: str
    last: str
    email: str
    entity: Entity
    practice_idx: int
    role: Role
    fte: Decimal
    cost_rate: int
    hire: dt.date
    release: dt.date | None
    utilization: float
    owner_id: int | None = None


@dataclass(slots=True)
class Client:
    """A client: Harvest client, NetSuite customer, HubSpot company."""

    idx: int
    name: str
    legal_name: str
    domain: str
    entity: Entity
    terms_idx: int
    industry: str
    harvest_id: int
    netsuite_id: int
    hubspot_id: int
    created: dt.date
    pay_profile: int  # 0 prompt, 1 slow, 2 very slow
    has_card: bool
    crm_has_erp_id: bool = True
    erp_has_crm_id: bool = True


@dataclass(slots=True)
class Deal:
    """A HubSpot deal; won deals usually become projects."""

    hubspot_id: int
    client: Client
    name: str
    amount: Decimal
    stage: str
    created: dt.date
    closedate: dt.date
    owner_id: int


@dataclass(slots=True)
class Project:
    """A client engagement: Harvest project, NetSuite job, from a won deal."""

    idx: int
    code: str
    name: str
    client: Client
    deal: Deal
    model: str
    harvest_id: int
    netsuite_id: int
    created: dt.date
    start: dt.date
    end: dt.date
    team_size: int
    budget_hours: int
    contract: Decimal
    monthly_fee: Decimal
    late_invoicing: bool
    manager: Consultant | None = None
    harvest_code: str = ""
    harvest_active: bool = True
    members: set[int] = field(default_factory=set)
    closed_status: int | None = None

    @property
    def is_closed(self) -> bool:
        """Closed (or completed) in the ERP."""
        return self.closed_status is not None


@dataclass(slots=True)
class InternalProject:
    """A PSA-only internal project (admin, training, business development, time off)."""

    entity: Entity
    kind: str  # ADM | PTO
    harvest_id: int
    code: str
    name: str
    client_harvest_id: int


class RateCards:
    """Bill rates in force per entity, role, client and year (whole currency units)."""

    def __init__(self, years: list[int], base_year: int) -> None:
        self.years = years
        self.base_year = base_year
        self.standard: dict[tuple[str, str, int], int] = {}
        self.client: dict[tuple[int, str, int], int] = {}
        self.discount: dict[int, Decimal] = {}

    def build(self, clients: list[Client], rng: random.Random) -> None:
        """Standard cards for every entity and role, client cards for some clients."""
        for entity in ENTITIES:
            factor = RATE_FACTOR[entity.currency]
            for role in ROLES:
                for year in self.years:
                    growth = (1 + ANNUAL_RATE_INCREASE) ** (year - self.base_year)
                    rate = (Decimal(role.bill_usd) * factor * growth).quantize(Decimal(1))
                    self.standard[(entity.key, role.name, year)] = int(rate)
        for client in clients:
            if client.has_card:
                self.discount[client.idx] = Decimal(rng.choice((5, 8, 10, 12, 15))) / 100
                for role in ROLES:
                    for year in self.years:
                        std = self.standard[(client.entity.key, role.name, year)]
                        rate = (Decimal(std) * (1 - self.discount[client.idx])).quantize(Decimal(1))
                        self.client[(client.idx, role.name, year)] = int(rate)

    def rate(self, client: Client, role: Role, year: int) -> int:
        """The rate in force for a role at a client in a year."""
        year = min(max(year, self.years[0]), self.years[-1])
        found = self.client.get((client.idx, role.name, year))
        if found is not None:
            return found
        return self.standard[(client.entity.key, role.name, year)]


@dataclass
class Firm:
    """All reference data, plus the calendar the streaming steps follow."""

    seed: int
    size: str
    as_of: dt.date
    start: dt.date
    consultants: list[Consultant]
    clients: list[Client]
    deals: list[Deal]
    projects: list[Project]
    internal: dict[tuple[str, str], InternalProject]
    cards: RateCards
    staffing: dict[tuple[int, int], tuple[int | None, int | None]]
    holidays: dict[str, set[dt.date]]
    period_first: dt.date
    period_last: dt.date
    owners: list[Consultant]
    internal_clients: dict[str, int]

    def closed_on(self, day: dt.date) -> dt.date:
        """The day the accounting period of ``day`` closes."""
        return month_end(day) + dt.timedelta(days=CLOSE_DAYS_AFTER_MONTH_END)

    def period_closed(self, day: dt.date) -> bool:
        """Whether the period of ``day`` is closed as of the firm's date."""
        return self.closed_on(day) < self.as_of


def _weighted(rng: random.Random, items: Sequence[_T], weights: Sequence[float]) -> _T:
    return rng.choices(items, weights=weights, k=1)[0]


def _client_names(n: int, rng: random.Random) -> list[str]:
    qualifiers = (
        "Global",
        "United",
        "First",
        "National",
        "Northern",
        "Pacific",
        "Royal",
        "Central",
        "Allied",
        "Premier",
    )
    combos = [f"{a} {b}" for a in CLIENT_WORDS_A for b in CLIENT_WORDS_B]
    rng.shuffle(combos)
    if n > len(combos):
        extra = [f"{a} {q} {b}" for a in CLIENT_WORDS_A for q in qualifiers for b in CLIENT_WORDS_B]
        rng.shuffle(extra)
        combos += extra
    if n > len(combos):
        raise ValueError(f"cannot name {n} distinct clients")
    return combos[:n]


def build_firm(size: str, seed: int, as_of: dt.date, consultants_n: int, months: int) -> Firm:
    """Build the reference data of a firm deterministically from its seed."""
    rng = random.Random(seed)
    start = add_months(as_of.replace(day=1), -months)
    history_first = start.replace(day=1)
    holidays: dict[str, set[dt.date]] = {}
    for entity in ENTITIES:
        days: set[dt.date] = set()
        for year in range(start.year - 1, as_of.year + 2):
            days |= public_holidays(entity.country, year)
        holidays[entity.country] = days

    # ---- people ------------------------------------------------------------------------------
    consultants: list[Consultant] = []
    entity_weights = [e.weight for e in ENTITIES]
    role_weights = [r.weight for r in ROLES]
    for i in range(consultants_n):
        entity = _weighted(rng, ENTITIES, entity_weights)
        role = _weighted(rng, ROLES, role_weights)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        fte = Decimal("0.8") if rng.random() < 0.1 else Decimal("1.0")
        hired_late = rng.random() < 0.08
        hire = (
            start + dt.timedelta(days=rng.randint(10, months * 30 - 20))
            if hired_late
            else start - dt.timedelta(days=rng.randint(60, 3000))
        )
        release = (
            start + dt.timedelta(days=rng.randint(30, months * 30 - 5))
            if rng.random() < 0.05
            else None
        )
        if release is not None and release <= hire + dt.timedelta(days=30):
            release = None
        cost = int(
            (
                Decimal(role.cost_usd)
                * RATE_FACTOR[entity.currency]
                * Decimal(rng.uniform(0.95, 1.05))
            ).quantize(Decimal(1))
        )
        util = min(0.95, max(0.2, role.target + rng.uniform(-0.08, 0.06)))
        consultants.append(
            Consultant(
                idx=i,
                harvest_id=4_000_001 + i,
                netsuite_id=1_001 + i,
                first=first,
                last=last,
                email=f"{first}.{last}.{i + 1}@northwind-advisory.com".lower(),
                entity=entity,
                practice_idx=rng.randrange(len(PRACTICES)),
                role=role,
                fte=fte,
                cost_rate=cost,
                hire=hire,
                release=release,
                utilization=util,
            )
        )
    seniors = [c for c in consultants if c.role.name in ("Partner", "Director")]
    owners = seniors[: max(3, consultants_n // 40)] or consultants[:3]
    for n, owner in enumerate(owners):
        owner.owner_id = 70_000_001 + n

    # ---- clients -----------------------------------------------------------------------------
    n_clients = max(12, consultants_n // 4)
    names = _client_names(n_clients, rng)
    clients: list[Client] = []
    for i, name in enumerate(names):
        # the first clients go one to each entity, so every entity has work for its people
        entity = ENTITIES[i] if i < len(ENTITIES) else _weighted(rng, ENTITIES, entity_weights)
        suffix = rng.choice(LEGAL_SUFFIX[entity.country])
        clients.append(
            Client(
                idx=i,
                name=name,
                legal_name=f"{name} {suffix}",
                domain=name.lower().replace(" ", "") + ".com",
                entity=entity,
                terms_idx=rng.choices(range(len(TERMS)), weights=TERM_WEIGHTS, k=1)[0],
                industry=rng.choice(INDUSTRIES),
                harvest_id=3_000_001 + i,
                netsuite_id=20_001 + i,
                hubspot_id=2_000_000_001 + i,
                created=start - dt.timedelta(days=rng.randint(200, 2000)),
                pay_profile=rng.choices((0, 1, 2), weights=(0.6, 0.3, 0.1), k=1)[0],
                has_card=rng.random() < 0.2,
                crm_has_erp_id=rng.random() < 0.9,
                erp_has_crm_id=rng.random() < 0.9,
            )
        )

    years = list(range(start.year - 1, as_of.year + 1))
    cards = RateCards(years, base_year=years[0])
    cards.build(clients, rng)

    # ---- deals and projects ------------------------------------------------------------------
    by_entity: dict[str, list[Consultant]] = {e.key: [] for e in ENTITIES}
    for c in consultants:
        by_entity[c.entity.key].append(c)
    clients_by_entity: dict[str, list[Client]] = {e.key: [] for e in ENTITIES}
    for cl in clients:
        clients_by_entity[cl.entity.key].append(cl)
    deals: list[Deal] = []
    projects: list[Project] = []
    lead_days = 200
    span_days = (as_of - start).days + lead_days
    deal_id = iter(range(3_000_000_001, 4_000_000_000))
    project_seq = iter(range(10_001, 99_999))
    owner_ids = [o.owner_id for o in owners if o.owner_id is not None]
    durations = {"TM": (3, 9), "FF": (2, 6), "MS": (3, 8), "RT": (6, 12)}
    for entity in ENTITIES:
        people = by_entity[entity.key]
        target_active = max(1, round(len(people) / 4.5))
        n_projects = max(2, round(target_active * span_days / 165 * 1.1))
        for _ in range(n_projects):
            client = rng.choice(clients_by_entity[entity.key])
            model = str(_weighted(rng, BILLING_MODELS, BILLING_WEIGHTS))
            lo, hi = durations[model]
            months_n = rng.randint(lo, hi)
            closedate = as_of - dt.timedelta(days=rng.randint(1, span_days))
            created = closedate + dt.timedelta(days=rng.randint(2, 20))
            # work begins inside the history window, so every project's time is in the data
            begin = max(created + dt.timedelta(days=rng.randint(0, 7)), start)
            end = add_months(begin, months_n) - dt.timedelta(days=1)
            team = rng.randint(2, 7)
            budget_hours = team * months_n * 120
            avg_rate = Decimal(sum(cards.rate(client, r, begin.year) for r in ROLES[:4]) / 4)
            base = Decimal(budget_hours) * avg_rate
            monthly_fee = Decimal(0)
            if model == "TM":
                contract = (base / 1000).quantize(Decimal(1)) * 1000
            elif model == "RT":
                monthly_fee = (base * Decimal("0.95") / months_n / 100).quantize(Decimal(1)) * 100
                contract = monthly_fee * months_n
            else:
                contract = (base * Decimal(str(rng.uniform(0.9, 1.15))) / 1000).quantize(
                    Decimal(1)
                ) * 1000
            deal = Deal(
                hubspot_id=next(deal_id),
                client=client,
                name=f"{client.name} - {rng.choice(PRACTICES)} engagement",
                amount=contract,
                stage="closedwon",
                created=closedate - dt.timedelta(days=rng.randint(20, 120)),
                closedate=closedate,
                owner_id=rng.choice(owner_ids),
            )
            deals.append(deal)
            if created >= as_of:
                continue  # won recently: the project is not set up yet (within the grace)
            seq = next(project_seq)
            project = Project(
                idx=len(projects),
                code=f"PRJ-{seq:05d}",
                name=f"{client.name} {rng.choice(PRACTICES)} {rng.choice(PROJECT_KINDS)}",
                client=client,
                deal=deal,
                model=model,
                harvest_id=5_000_001 + len(projects),
                netsuite_id=40_001 + len(projects),
                created=created,
                start=begin,
                end=end,
                team_size=team,
                budget_hours=budget_hours,
                contract=contract,
                monthly_fee=monthly_fee,
                late_invoicing=rng.random() < 0.1,
            )
            project.harvest_code = project.code
            if end < as_of - dt.timedelta(days=1):
                project.closed_status = 3 if model in ("TM", "RT") else 4
                project.harvest_active = False
            projects.append(project)
        # lost and open deals: part of the pipeline, never projects
        for _ in range(max(2, target_active)):
            client = rng.choice(clients_by_entity[entity.key])
            stage = rng.choice(
                (
                    "closedlost",
                    "closedlost",
                    "appointmentscheduled",
                    "qualifiedtobuy",
                    "presentationscheduled",
                    "decisionmakerboughtin",
                    "contractsent",
                )
            )
            created_d = as_of - dt.timedelta(days=rng.randint(10, span_days))
            close = created_d + dt.timedelta(days=rng.randint(20, 90))
            if stage == "closedlost":
                close = min(close, as_of - dt.timedelta(days=1))
            deals.append(
                Deal(
                    hubspot_id=next(deal_id),
                    client=client,
                    name=f"{client.name} - {rng.choice(PRACTICES)} proposal",
                    amount=Decimal(rng.randint(20, 600) * 1000),
                    stage=stage,
                    created=created_d,
                    closedate=close,
                    owner_id=rng.choice(owner_ids),
                )
            )

    # ---- internal projects -------------------------------------------------------------------
    internal: dict[tuple[str, str], InternalProject] = {}
    internal_clients: dict[str, int] = {}
    hid = 5_900_001
    for n, entity in enumerate(ENTITIES):
        internal_clients[entity.key] = 3_900_001 + n
        for kind, label in (("ADM", "Internal"), ("PTO", "Time Off")):
            internal[(entity.key, kind)] = InternalProject(
                entity=entity,
                kind=kind,
                harvest_id=hid,
                code=f"INT-{entity.key}-{kind}",
                name=f"{entity.name} {label}",
                client_harvest_id=internal_clients[entity.key],
            )
            hid += 1

    staffing = _staff(consultants, projects, by_entity, start, as_of, rng)
    period_first = add_months(history_first, -8)
    period_last = add_months(as_of.replace(day=1), 2)
    return Firm(
        seed=seed,
        size=size,
        as_of=as_of,
        start=start,
        consultants=consultants,
        clients=clients,
        deals=deals,
        projects=projects,
        internal=internal,
        cards=cards,
        staffing=staffing,
        holidays=holidays,
        period_first=period_first,
        period_last=period_last,
        owners=owners,
        internal_clients=internal_clients,
    )


def _staff(
    consultants: list[Consultant],
    projects: list[Project],
    by_entity: dict[str, list[Consultant]],
    start: dt.date,
    as_of: dt.date,
    rng: random.Random,
) -> dict[tuple[int, int], tuple[int | None, int | None]]:
    """Primary and secondary project per consultant and month (month-major, so loads balance)."""
    staffing: dict[tuple[int, int], tuple[int | None, int | None]] = {}
    first, last = month_key(start), month_key(as_of)
    projects_by_entity: dict[str, list[Project]] = {}
    for p in projects:
        projects_by_entity.setdefault(p.client.entity.key, []).append(p)
    previous: dict[int, int | None] = {}
    for mk in range(first, last + 1):
        m_first = key_to_month(mk)
        m_last = month_end(m_first)
        for entity_key, people in by_entity.items():
            active = [
                p
                for p in projects_by_entity.get(entity_key, [])
                if p.start <= m_last and p.end >= m_first and p.start < as_of
            ]
            if not active:
                for c in people:
                    staffing[(c.idx, mk)] = (None, None)
                continue
            active_ids = {p.idx for p in active}
            # open seats: each project offers as many seats as its planned team, in random order
            seats = [p.idx for p in active for _ in range(p.team_size)]
            rng.shuffle(seats)
            seat = 0
            for c in people:
                if c.hire > m_last or (c.release is not None and c.release < m_first):
                    staffing[(c.idx, mk)] = (None, None)
                    continue
                prev = previous.get(c.idx)
                if prev in active_ids and rng.random() < 0.85:
                    primary = prev
                else:
                    primary = seats[seat % len(seats)]
                    seat += 1
                secondary = None
                if len(active) > 1 and rng.random() < (0.5 if c.role.target < 0.7 else 0.2):
                    secondary = active[rng.randrange(len(active))].idx
                    if secondary == primary:
                        secondary = None
                staffing[(c.idx, mk)] = (primary, secondary)
                previous[c.idx] = primary
                projects[primary].members.add(c.idx)
                if secondary is not None:
                    projects[secondary].members.add(c.idx)
    for p in projects:
        team = [consultants[i] for i in p.members]
        if team:
            p.manager = max(team, key=lambda c: (c.role.bill_usd, -c.idx))
    return staffing
