"""HTTP for the sources: dlt's REST client with retries, a client-side rate limit, call counts.

Every vendor call goes through dlt's ``requests`` helper, which retries 429, 5xx, timeouts and
dropped connections with exponential backoff and honours ``Retry-After``. pslake adds three
things around it:

- a :class:`pslake.ratelimit.RateLimiter` keeps a vendor's documented budget (calls per window,
  concurrent calls) on the client side; it sits in the transport adapter, so retries are paced.
- :class:`CallStats` counts calls, retries by cause and bytes, for the run summary.
- :class:`RawPageClient` is dlt's ``RESTClient`` that yields each page's raw bytes instead of
  parsed JSON, so the big tables can be parsed by DuckDB in batches (see ``ingestion.pages``).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import dlt
import orjson
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from requests import PreparedRequest, Request, Response
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from pslake.http_answers import whole
from pslake.ratelimit import RateLimiter

RETRY_STATUSES = frozenset({429, *range(500, 600)})


@dataclass
class CallStats:
    """What a vendor's calls cost in one run; thread-safe."""

    calls: int = 0
    bytes: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def failed(self, cause: str) -> None:
        """Count one failed attempt (a status or exception dlt's policy retries)."""
        with self._lock:
            self.retries[cause] += 1

    @property
    def retried(self) -> int:
        """All retried attempts."""
        return sum(self.retries.values())


class _PacedAdapter(HTTPAdapter):
    """The transport adapter: every attempt (first or retry) waits for the rate limiter."""

    def __init__(self, limiter: RateLimiter | None, stats: CallStats, pool: int) -> None:
        super().__init__(pool_connections=2, pool_maxsize=pool)
        self._limiter = limiter
        self._stats = stats

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        if self._limiter is not None:
            self._limiter.acquire()
        try:
            response = super().send(request, *args, **kwargs)
            # read here: a reset mid-body, or a close in the headers, is retried like any error
            size = len(whole(request.method, response).content)
        except OSError as exc:  # requests' connection, timeout and body errors
            self._stats.failed(type(exc).__name__)
            raise
        finally:
            if self._limiter is not None:
                self._limiter.release()
        with self._stats._lock:
            self._stats.calls += 1
            self._stats.bytes += size
        if response.status_code in RETRY_STATUSES:
            self._stats.failed(str(response.status_code))
        return response


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Timeout and retry policy for a vendor's calls (dlt's retry helper does the retrying)."""

    timeout_s: float = 60.0
    max_attempts: int = 8
    backoff_factor: float = 0.5
    max_retry_delay_s: float = 60.0

    @classmethod
    def from_config(cls) -> HttpSettings:
        """The default policy, with dlt's own request settings where they are set.

        dlt documents ``RUNTIME__REQUEST_TIMEOUT``, ``RUNTIME__REQUEST_MAX_ATTEMPTS``,
        ``RUNTIME__REQUEST_BACKOFF_FACTOR`` and ``RUNTIME__REQUEST_MAX_RETRY_DELAY`` (or
        ``[runtime]`` in ``.dlt/config.toml``) for its requests helper; pslake passes its own
        policy to that helper, so it reads them here, or they would be ignored.
        """
        names = {"timeout_s": "request_timeout", "max_attempts": "request_max_attempts",
                 "backoff_factor": "request_backoff_factor",
                 "max_retry_delay_s": "request_max_retry_delay"}
        found: dict[str, Any] = {}
        for attribute, setting in names.items():
            value: Any = dlt.config.get(f"runtime.{setting}")
            if value not in (None, ""):
                kind = int if attribute == "max_attempts" else float
                found[attribute] = kind(value)
        return cls(**found)


def vendor_session(limiter: RateLimiter | None, stats: CallStats,
                   http: HttpSettings | None = None) -> Any:
    """A ``requests`` session with dlt's retry policy, the rate limit and call counting."""
    http = http or HttpSettings.from_config()
    client = Client(
        request_timeout=http.timeout_s,
        request_max_attempts=http.max_attempts,
        request_backoff_factor=http.backoff_factor,
        request_max_retry_delay=http.max_retry_delay_s,
        respect_retry_after_header=True,
        raise_for_status=False,  # the REST client's response hook raises after retries
    )
    session = client.session
    adapter = _PacedAdapter(limiter, stats, pool=16)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class RawPageClient(RESTClient):
    """dlt's REST client, but each page is handed over as its raw body (one ``bytes`` item).

    Paginators used with it read what they need from the bytes (see :class:`TailLinkPaginator`),
    so a page is parsed once, by DuckDB, with the rest of its batch.
    """

    def extract_response(self, response: Response, data_selector: Any) -> list[Any]:
        """The page as one item: its undecoded body."""
        return [response.content]


class TailLinkPaginator(BasePaginator):
    """Follow a next-page URL found near the end of the body (Harvest's ``links.next``).

    Harvest ends every list envelope with its ``links`` object, so the next URL is read from the
    last few hundred bytes with a regular expression instead of parsing megabytes of JSON.
    """

    _NEXT = re.compile(rb'"next"\s*:\s*(null|"((?:[^"\\]|\\.)*)")')

    def __init__(self, tail_bytes: int = 2048) -> None:
        super().__init__()
        self._tail = tail_bytes
        self._next_url: str | None = None

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        """Find the next URL in the tail of the body."""
        body = response.content
        window = body[-self._tail:]
        at = window.rfind(b'"links"')
        match = self._NEXT.search(window, at) if at >= 0 else None
        if match is None:  # not where Harvest puts it: read the whole envelope
            links = orjson.loads(body).get("links") or {}
            url = links.get("next")
        else:
            url = orjson.loads(b'"' + match.group(2) + b'"') if match.group(2) else None
        self._next_url = url
        self._has_next_page = bool(url)

    def update_request(self, request: Request) -> None:
        """Point the request at the next URL (it carries every parameter)."""
        request.url = self._next_url
        request.params = {}


def server_time(response: Response, margin_s: float = 1.0) -> str:
    """The vendor's clock at a response (its ``Date`` header), less a margin, as ISO text.

    Reads bounded by it never move a cursor past a change made while the read went on: the
    ``Date`` has second precision, as the vendors' modification times do.
    """
    stamp = response.headers.get("Date")
    try:
        now = parsedate_to_datetime(stamp) if stamp else dt.datetime.now(dt.UTC)
    except (TypeError, ValueError):
        now = dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return (now - dt.timedelta(seconds=margin_s)).isoformat()


def bearer(token: str) -> AuthBase:
    """Bearer auth whose repr never shows the token."""

    class _Bearer(AuthBase):
        def __call__(self, r: PreparedRequest) -> PreparedRequest:
            r.headers["Authorization"] = f"Bearer {token}"
            return r

        def __repr__(self) -> str:
            return "Bearer(***)"

    return _Bearer()

