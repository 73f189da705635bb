"""Fault injection for the emulators: throttling, 5xx, slowness, resets, bad records, drift.

All modes are off by default. They are chosen at start (``pslake sandbox serve`` flags or the
``PSLAKE_SANDBOX_FAULTS`` environment variable) and switched at run time with
``PUT /_sandbox/faults``. Request-level faults (429, 5xx, slow, reset) are decided in the
middleware; record-level faults (malformed record, schema drift) are applied by the vendor
modules through :meth:`FaultState.shape_record`.
"""

from __future__ import annotations

import dataclasses
import email.utils
import hashlib
import math
import os
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sandbox.store import VENDORS, Vendor

# Real limits (vendor-apis.md): HubSpot Professional 190 requests / 10 s plus the search
# endpoint at 5 / s; Harvest 100 requests / 15 s; NetSuite 15 concurrent requests.
DEFAULT_LIMITS: dict[str, dict[str, float]] = {
    "hubspot": {"requests": 190, "window_s": 10.0, "search_requests": 5, "search_window_s": 1.0},
    "harvest": {"requests": 100, "window_s": 15.0},
    # NetSuite answers are not instant: with rate limiting on, each request holds its
    # concurrency slot for service_ms, so concurrent clients really do meet the limit.
    "netsuite": {"concurrency": 15, "service_ms": 40},
}

# Which field a malformed record breaks, per (vendor, resource); the value no longer parses
# as the type the vendor documents. Anything not listed loses its primary key instead.
MALFORMED_FIELDS: dict[tuple[str, str], tuple[str, Any]] = {
    ("harvest", "time_entries"): ("hours", "7,5h"),
    ("harvest", "expenses"): ("total_cost", "n/a"),
    ("harvest", "projects"): ("budget", "TBD"),
    ("harvest", "users"): ("weekly_capacity", "full time"),
    ("hubspot", "deals"): ("amount", "12k USD"),
    ("hubspot", "companies"): ("hs_lastmodifieddate", "yesterday"),
    ("hubspot", "erp_invoices"): ("amount_paid", "paid?"),
    ("netsuite", "timebill"): ("hours", "eight"),
    ("netsuite", "transaction"): ("foreigntotal", "#ERROR"),
    ("netsuite", "transactionline"): ("netamount", "#ERROR"),
}

# The field that appears when schema drift is on.
DRIFT_FIELD = {
    "hubspot": "hs_pslake_drift_score",
    "harvest": "approval_status",
    "netsuite": "custbody_drift_flag",
}
DRIFT_VALUE = {"hubspot": "42", "harvest": "approved", "netsuite": "T"}


@dataclass
class FaultConfig:
    """Which faults are on. Rates are probabilities per request (or per record)."""

    rate_limit: bool = False
    error_rate: float = 0.0
    slow_rate: float = 0.0
    slow_ms: int = 2000
    reset_rate: float = 0.0
    malformed_rate: float = 0.0
    drift: bool = False
    drift_after: int = 2
    retry_after_format: str = "seconds"  # seconds | http-date | mixed
    vendors: list[str] = field(default_factory=lambda: list(VENDORS))
    seed: int = 0
    limits: dict[str, dict[str, float]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_LIMITS.items()}
    )

    @classmethod
    def from_mapping(cls, data: dict[str, Any], base: FaultConfig | None = None) -> FaultConfig:
        """Build a config from a (partial) mapping, on top of ``base``.

        Raises:
            ValueError: An unknown key or a value of the wrong type.
        """
        current = dataclasses.asdict(base or cls())
        known = {f.name for f in dataclasses.fields(cls)}
        for key, value in data.items():
            if key not in known:
                raise ValueError(
                    f"unknown fault setting {key!r}; known: {', '.join(sorted(known))}"
                )
            if key == "limits":
                if not isinstance(value, dict):
                    raise ValueError("limits must be an object of vendor -> {name: number}")
                for vendor, limits in value.items():
                    current["limits"].setdefault(vendor, {}).update(limits)
                continue
            current[key] = value
        cfg = cls(**current)
        cfg.validate()
        return cfg

    @classmethod
    def parse(cls, text: str) -> FaultConfig:
        """Parse ``rate_limit,error_rate=0.05,slow_rate=0.1`` or a JSON object."""
        text = text.strip()
        if not text:
            return cls()
        if text.startswith("{"):
            import orjson

            return cls.from_mapping(orjson.loads(text))
        data: dict[str, Any] = {}
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            key, _, raw = part.partition("=")
            key = key.strip().replace("-", "_")
            raw = raw.strip()
            if not raw or raw.lower() in ("true", "on", "yes"):
                data[key] = True
            elif raw.lower() in ("false", "off", "no"):
                data[key] = False
            elif key == "vendors":
                data[key] = raw.split("+")
            elif key == "retry_after_format":
                data[key] = raw
            else:
                try:
                    data[key] = float(raw) if any(ch in raw for ch in ".eE") else int(raw)
                except ValueError:
                    raise ValueError(
                        f"fault setting {key}={raw!r} is not a number (e.g. {key}=0.05)"
                    ) from None
        return cls.from_mapping(data)

    @classmethod
    def from_env(cls) -> FaultConfig:
        """The config named by ``PSLAKE_SANDBOX_FAULTS`` (empty: all off)."""
        return cls.parse(os.environ.get("PSLAKE_SANDBOX_FAULTS", ""))

    def validate(self) -> None:
        """Check ranges and names.

        Raises:
            ValueError: A rate outside [0, 1], an unknown vendor or format.
        """
        for name in ("error_rate", "slow_rate", "reset_rate", "malformed_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
        for name in ("rate_limit", "drift"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("slow_ms", "drift_after", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
        for vendor, limits in self.limits.items():
            if vendor not in VENDORS:
                raise ValueError(f"limits: unknown vendor {vendor!r}; known: {', '.join(VENDORS)}")
            for key, number in limits.items():
                if isinstance(number, bool) or not isinstance(number, int | float) or number <= 0:
                    raise ValueError(f"limits.{vendor}.{key} must be a positive number")
        for vendor in self.vendors:
            if vendor not in VENDORS:
                raise ValueError(f"unknown vendor {vendor!r}; known: {', '.join(VENDORS)}")
        if self.retry_after_format not in ("seconds", "http-date", "mixed"):
            raise ValueError("retry_after_format must be seconds, http-date or mixed")
        if self.slow_ms < 0 or self.drift_after < 0:
            raise ValueError("slow_ms and drift_after must not be negative")

    def describe(self) -> str:
        """One line naming the modes that are on ('none' when all are off)."""
        on = []
        if self.rate_limit:
            on.append("rate limits")
        for name in ("error_rate", "slow_rate", "reset_rate", "malformed_rate"):
            if getattr(self, name):
                on.append(f"{name}={getattr(self, name)}")
        if self.drift:
            on.append(f"drift after {self.drift_after} pages")
        return ", ".join(on) or "none"


class FaultState:
    """The live fault configuration plus the counters that throttling and drift need."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._windows: dict[str, deque[float]] = {}
        self._in_flight: dict[str, int] = {v: 0 for v in VENDORS}
        self._pages_served: dict[str, int] = {v: 0 for v in VENDORS}
        self.injected: dict[str, int] = {}

    def update(self, data: dict[str, Any]) -> FaultConfig:
        """Apply a partial update; counters for throttling and drift start afresh."""
        self.config = FaultConfig.from_mapping(data, self.config)
        self._rng = random.Random(self.config.seed)
        self._windows.clear()
        self._pages_served = {v: 0 for v in VENDORS}
        return self.config

    def _count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    def applies(self, vendor: Vendor) -> bool:
        """Whether faults are switched on for this vendor."""
        return vendor in self.config.vendors

    # ---- request-level faults -------------------------------------------------------------

    def draw(self, vendor: Vendor, rate: float, kind: str) -> bool:
        """Roll for a random fault of ``kind`` at ``rate``; counts it when it fires."""
        if rate <= 0 or not self.applies(vendor):
            return False
        hit = self._rng.random() < rate
        if hit:
            self._count(kind)
        return hit

    def random_5xx(self) -> int:
        """Which server error an injected failure answers with."""
        return self._rng.choice((500, 502, 503, 504))

    def throttle(self, vendor: Vendor, is_search: bool, now: float | None = None) -> float | None:
        """Record a request against the vendor's window limit.

        Returns:
            None when the request is allowed, else the seconds until it would be.
        """
        now = time.monotonic() if now is None else now
        limits = self.config.limits.get(vendor, {})
        # window keys are the vendor or "<vendor>:search", so plain strings
        checks: list[tuple[str, float, float]] = []
        if "requests" in limits:
            checks.append((vendor, limits["requests"], limits["window_s"]))
        if is_search and "search_requests" in limits:
            checks.append(
                (vendor + ":search", limits["search_requests"], limits["search_window_s"])
            )
        wait = 0.0
        for key, allowed, window in checks:
            q = self._windows.setdefault(key, deque())
            while q and q[0] <= now - window:
                q.popleft()
            if len(q) >= allowed:
                wait = max(wait, q[0] + window - now)
        if wait > 0:
            self._count("rate_limit")
            return wait
        for key, _allowed, _window in checks:
            self._windows[key].append(now)
        return None

    def window_usage(self, vendor: Vendor, now: float | None = None) -> tuple[int, int, float]:
        """(limit, remaining, window seconds) of the vendor's general window, for headers."""
        now = time.monotonic() if now is None else now
        limits = self.config.limits.get(vendor, {})
        allowed = int(limits.get("requests", 0))
        window = float(limits.get("window_s", 10.0))
        q = self._windows.get(vendor, deque())
        used = sum(1 for t in q if t > now - window)
        return allowed, max(0, allowed - used), window

    def enter(self, vendor: Vendor) -> bool:
        """Take a concurrency slot (NetSuite); False when the account's limit is reached."""
        limit = self.config.limits.get(vendor, {}).get("concurrency")
        if self.config.rate_limit and limit is not None and self._in_flight[vendor] >= limit:
            self._count("rate_limit")
            return False
        self._in_flight[vendor] += 1
        return True

    def service_seconds(self, vendor: Vendor) -> float:
        """How long a request holds its concurrency slot while rate limiting is on."""
        return float(self.config.limits.get(vendor, {}).get("service_ms", 0)) / 1000

    def leave(self, vendor: Vendor) -> None:
        """Give back a concurrency slot."""
        self._in_flight[vendor] = max(0, self._in_flight[vendor] - 1)

    def retry_after(self, wait_s: float) -> str:
        """The ``Retry-After`` value for a wait, in the configured form."""
        seconds = max(1, math.ceil(wait_s))
        form = self.config.retry_after_format
        if form == "mixed":
            form = self._rng.choice(("seconds", "http-date"))
        if form == "http-date":
            # An HTTP-date has whole-second precision: round up one more second so that a
            # client waiting until that instant is never early.
            return email.utils.formatdate(time.time() + seconds + 1, usegmt=True)
        return str(seconds)

    # ---- record-level faults --------------------------------------------------------------

    def page_served(self, vendor: Vendor) -> None:
        """Count one list page served (drift appears after ``drift_after`` of them)."""
        self._pages_served[vendor] += 1

    def drift_active(self, vendor: Vendor) -> bool:
        """Whether records of this vendor now carry the drifted field."""
        return (
            self.config.drift
            and self.applies(vendor)
            and self._pages_served[vendor] > self.config.drift_after
        )

    def is_malformed(self, vendor: Vendor, resource: str, record_id: Any) -> bool:
        """Whether a record is served malformed: stable for a record id, so reruns agree."""
        rate = self.config.malformed_rate
        if rate <= 0 or not self.applies(vendor):
            return False
        digest = hashlib.blake2b(f"{resource}:{record_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < rate

    def shape_record(
        self, vendor: Vendor, resource: str, record: dict[str, Any], record_id: Any
    ) -> dict[str, Any]:
        """Apply malformed-record and drift faults to one outgoing record (in place).

        HubSpot records carry their fields under ``properties``; the others at the top level.
        """
        target = record.get("properties", record) if vendor == "hubspot" else record
        if self.is_malformed(vendor, resource, record_id):
            self._count("malformed")
            name, bad = MALFORMED_FIELDS.get((vendor, resource), ("id", None))
            if name == "id":
                record["id"] = None
            else:
                target[name] = bad
        if self.drift_active(vendor):
            target[DRIFT_FIELD[vendor]] = DRIFT_VALUE[vendor]
        return record

    def record_faults_on(self, vendor: Vendor) -> bool:
        """Cheap check so hot paths skip :meth:`shape_record` when nothing would change."""
        return self.applies(vendor) and (self.config.malformed_rate > 0 or self.config.drift)
