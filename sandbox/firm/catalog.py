"""Fixed facts of the synthetic firm: entities, practices, roles, tasks, names, holidays."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Entity:
    """A legal entity (NetSuite subsidiary) with its currency and country."""

    key: str
    name: str
    legal_name: str
    country: str
    currency: str
    weight: float


@dataclass(frozen=True, slots=True)
class Role:
    """A delivery role with cost and standard bill rates in USD and a utilization target."""

    name: str
    cost_usd: int
    bill_usd: int
    target: float
    weight: float


SIZES: dict[str, tuple[int, int]] = {
    # consultants, months of history
    "small": (50, 6),
    "medium": (500, 12),
    "enterprise": (10_000, 12),
}

REPORTING_CURRENCY = "USD"
PARENT_NAME = "Northwind Advisory Group"

ENTITIES: tuple[Entity, ...] = (
    Entity("US", "Northwind Advisory US", "Northwind Advisory Inc.", "US", "USD", 0.45),
    Entity("UK", "Northwind Advisory UK", "Northwind Advisory Ltd", "GB", "GBP", 0.25),
    Entity("DE", "Northwind Advisory DE", "Northwind Beratung GmbH", "DE", "EUR", 0.20),
    Entity("CA", "Northwind Advisory CA", "Northwind Advisory Canada ULC", "CA", "CAD", 0.10),
)

# USD per 1 unit of the currency, around which daily rates wander.
FX_CENTRES: dict[str, float] = {"USD": 1.0, "GBP": 1.27, "EUR": 1.09, "CAD": 0.74}
# Local rates are the USD rate times this factor, rounded to whole units.
RATE_FACTOR: dict[str, Decimal] = {
    "USD": Decimal("1"),
    "GBP": Decimal("0.80"),
    "EUR": Decimal("0.92"),
    "CAD": Decimal("1.36"),
}

PRACTICES: tuple[str, ...] = (
    "Strategy",
    "Technology",
    "Data & Analytics",
    "Operations",
    "Finance Transformation",
)

ROLES: tuple[Role, ...] = (
    Role("Analyst", 55, 150, 0.85, 0.20),
    Role("Consultant", 70, 190, 0.85, 0.25),
    Role("Senior Consultant", 85, 230, 0.80, 0.20),
    Role("Manager", 105, 275, 0.75, 0.15),
    Role("Senior Manager", 125, 320, 0.65, 0.10),
    Role("Director", 150, 380, 0.50, 0.06),
    Role("Partner", 190, 450, 0.35, 0.04),
)

ANNUAL_RATE_INCREASE = Decimal("0.04")

# Harvest tasks: (name, billable by default, used on client projects, used on internal projects)
TASKS: tuple[tuple[str, bool, bool, bool], ...] = (
    ("Delivery", True, True, False),
    ("Analysis", True, True, False),
    ("Design", True, True, False),
    ("Project Management", True, True, False),
    ("Travel", False, True, False),
    ("Internal Meetings", False, False, True),
    ("Training", False, False, True),
    ("Business Development", False, False, True),
    ("Paid Time Off", False, False, True),
)

EXPENSE_CATEGORIES: tuple[tuple[str, str | None, float | None], ...] = (
    ("Airfare", None, None),
    ("Lodging", None, None),
    ("Meals", None, None),
    ("Mileage", "mile", 0.67),
)

TERMS: tuple[tuple[str, int], ...] = (
    ("Net 15", 15),
    ("Net 30", 30),
    ("Net 45", 45),
    ("Net 60", 60),
)
TERM_WEIGHTS = (0.05, 0.70, 0.15, 0.10)

BILLING_MODELS = ("TM", "FF", "MS", "RT")
BILLING_WEIGHTS = (0.55, 0.20, 0.10, 0.15)
BILLING_LABELS = {
    "TM": "Time and materials",
    "FF": "Fixed fee",
    "MS": "Milestone",
    "RT": "Retainer",
}

DEAL_STAGES: tuple[tuple[str, str, str, bool], ...] = (
    # id, label, probability, closed
    ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
    ("qualifiedtobuy", "Qualified to Buy", "0.4", False),
    ("presentationscheduled", "Presentation Scheduled", "0.6", False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
    ("contractsent", "Contract Sent", "0.9", False),
    ("closedwon", "Closed Won", "1.0", True),
    ("closedlost", "Closed Lost", "0.0", True),
)

FIRST_NAMES = (
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Nikhil",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Xavier",
    "Yara",
    "Zane",
    "Amir",
    "Bianca",
    "Carlos",
    "Dana",
    "Emil",
    "Fatima",
    "Gustav",
    "Hana",
    "Ivan",
    "Julia",
    "Kofi",
    "Lena",
    "Marco",
    "Nora",
    "Oscar",
    "Priya",
    "Rafael",
    "Sara",
    "Tomas",
    "Uma",
    "Viktor",
    "Wanda",
    "Yusuf",
    "Zoe",
)
LAST_NAMES = (
    "Abbott",
    "Baker",
    "Chen",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Murphy",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quintero",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zimmermann",
    "Andersen",
    "Bauer",
    "Costa",
    "Dimitrov",
    "Evans",
    "Ferreira",
    "Gupta",
    "Hoffmann",
    "Iqbal",
    "Jovanovic",
    "Keller",
    "Larsen",
    "Moreau",
    "Novak",
    "Olsen",
    "Petrov",
    "Reyes",
    "Silva",
    "Thompson",
    "Ueda",
    "Vasquez",
    "Walsh",
    "Young",
    "Zhou",
)

CLIENT_WORDS_A = (
    "Acme",
    "Apex",
    "Aurora",
    "Beacon",
    "Blue",
    "Bright",
    "Cedar",
    "Cobalt",
    "Crest",
    "Delta",
    "Ember",
    "Evergreen",
    "Falcon",
    "Summit",
    "Granite",
    "Harbor",
    "Horizon",
    "Iron",
    "Juniper",
    "Keystone",
    "Lumen",
    "Maple",
    "Meridian",
    "Northstar",
    "Oak",
    "Orion",
    "Pacific",
    "Pinnacle",
    "Quantum",
    "Redwood",
    "Riverside",
    "Sable",
    "Silver",
    "Sterling",
    "Tidal",
    "Unity",
    "Vanguard",
    "Vertex",
    "Willow",
    "Zenith",
    "Atlas",
    "Boreal",
    "Crimson",
    "Dawn",
    "Echo",
    "Fjord",
    "Golden",
    "Highland",
    "Indigo",
    "Jade",
)
CLIENT_WORDS_B = (
    "Analytics",
    "Bank",
    "Biotech",
    "Capital",
    "Chemicals",
    "Logistics",
    "Energy",
    "Foods",
    "Health",
    "Industries",
    "Insurance",
    "Labs",
    "Manufacturing",
    "Media",
    "Motors",
    "Partners",
    "Pharma",
    "Retail",
    "Robotics",
    "Shipping",
    "Software",
    "Systems",
    "Telecom",
    "Textiles",
    "Travel",
    "Utilities",
    "Ventures",
    "Water",
    "Wireless",
    "Aerospace",
)
INDUSTRIES = (
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Technology",
    "Energy",
    "Public Sector",
    "Media",
)
LEGAL_SUFFIX = {
    "US": ("Inc.", "LLC", "Corp."),
    "GB": ("Ltd", "PLC"),
    "DE": ("GmbH", "AG"),
    "CA": ("Inc.", "Ltd"),
}
NOTES = (
    None,
    None,
    "Workshop preparation",
    "Client meeting",
    "Deliverable drafting",
    "Data review",
    "Status report",
    "Stakeholder interviews",
    "Testing",
    "Follow-ups",
)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th given weekday of a month (n = -1 for the last)."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def public_holidays(country: str, year: int) -> set[dt.date]:
    """Public holidays the firm observes per country (fixed rules, no Easter-based days)."""
    d = dt.date
    days = {d(year, 1, 1), d(year, 12, 25)}
    if country == "US":
        days |= {
            _nth_weekday(year, 5, 0, -1),
            d(year, 7, 4),
            _nth_weekday(year, 9, 0, 1),
            _nth_weekday(year, 11, 3, 4),
        }
    elif country == "GB":
        days |= {_nth_weekday(year, 5, 0, 1), _nth_weekday(year, 8, 0, -1), d(year, 12, 26)}
    elif country == "DE":
        days |= {d(year, 5, 1), d(year, 10, 3), d(year, 12, 26)}
    elif country == "CA":
        days |= {d(year, 7, 1), _nth_weekday(year, 9, 0, 1), _nth_weekday(year, 10, 0, 2)}
    return days
