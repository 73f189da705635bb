"""The CRM side: HubSpot batch reads and writes, with pslake's own retry.

Not dlt's retrying session (RELIABILITY decision 4): a write whose outcome is unknown must be
read back before it is sent again, or a retry could write twice. Per call:

- 200 / 201: every record in the call is written.
- 207: the ``errors`` name the records the CRM refused (``context.ids``); the rest are written.
- 400 / 409 for the whole batch (one bad value rejects them all): the batch is split in two and
  each half sent again, down to the bad record(s), which fail with the CRM's message.
- 429 / 477 / 423: nothing was written; wait ``Retry-After`` (or back off) and send again.
- 5xx, a timeout or a dropped connection: the outcome is ambiguous; after the wait the CRM
  asked for (``Retry-After``) or a backoff, the records are read back, the ones holding their
  values count as written, only the rest are sent again.
- 401 / 403: a configuration problem; the run stops with a message naming the setting.

Every call carries ``X-Correlation-Id`` (the journal's batch id), stays within the account's
rate limit as the CRM counts it (:class:`pslake.ratelimit.RateLimiter`: a call counts until a
window after its answer) and times out after ``timeout_s``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
import requests

from pslake.errors import PslakeError
from pslake.http_answers import whole
from pslake.ratelimit import RateLimit, RateLimiter
from reverse_sync.model import CrmObject, ValueKind, same

log = logging.getLogger(__name__)

WAIT_STATUSES = frozenset({423, 429, 477})  # nothing written: wait and send again
AMBIGUOUS_STATUSES = frozenset(range(500, 600))
REJECT_STATUSES = frozenset({400, 409, 422})
MAX_BATCH = 100
WINDOW_MARGIN = 1.02  # the CRM's clock and window edges are not ours: 2 % slower than allowed


OnSend = Callable[[], None]


class CrmAuthError(PslakeError):
    """The CRM refused the token or its scopes."""


@dataclass(slots=True)
class CallStats:
    """What the CRM calls of one run cost."""

    reads: int = 0
    writes: int = 0
    waits: Counter[str] = field(default_factory=Counter)
    ambiguous: int = 0
    bisections: int = 0
    waited_s: float = 0.0

    @property
    def calls(self) -> int:
        """Every HTTP call made."""
        return self.reads + self.writes


@dataclass(frozen=True, slots=True)
class CrmRecord:
    """A record as read back: its CRM id and the asked properties."""

    crm_id: str
    values: Mapping[str, str | None]


@dataclass(slots=True)
class WriteOutcome:
    """What became of the records of one write.

    Attributes:
        written: record key -> CRM id, for records the CRM holds the values of.
        failed: record key -> (reason, HTTP status) for records the CRM refused, or that
            could not be written within ``max_call_attempts``.
        calls: Write calls made (bisection and resends included).
    """

    written: dict[str, str] = field(default_factory=dict)
    failed: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    calls: int = 0


@dataclass(frozen=True, slots=True)
class WriteInput:
    """One record of a batch write: its key, CRM id (update) and the values to set."""

    key: str
    crm_id: str | None
    values: Mapping[str, str]
    kinds: Mapping[str, ValueKind]


class HubSpotWriter:
    """Batch reads and writes against one HubSpot account (or the sandbox)."""

    def __init__(self, base_url: str, access_token: str, *, calls_per_window: int,
                 window_s: float, timeout_s: float, max_call_attempts: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_call_attempts = max_call_attempts
        self.limiter = RateLimiter(RateLimit(calls_per_window, window_s * WINDOW_MARGIN))
        self.stats = CallStats()
        self.session = requests.Session()
        self.session.headers.update({
            "Authorization": f"Bearer {access_token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "pslake-reverse-sync",
        })

    def close(self) -> None:
        """Release the connections."""
        self.session.close()

    # ---- HTTP -----------------------------------------------------------------------------------

    def _post(self, path: str, body: Any, correlation_id: str | None,
              on_send: OnSend | None = None) -> requests.Response:
        """One call, paced by the rate limit; raises ``requests`` errors for the caller.

        ``on_send`` is called just before the call leaves (the journal notes when a write
        was last sent: a run that dies with a call on its way knows how long to wait for it).
        """
        self.limiter.acquire()
        if on_send is not None:
            on_send()
        headers = {"X-Correlation-Id": correlation_id} if correlation_id else None
        try:
            return whole("POST", self.session.post(f"{self.base_url}{path}",
                                                   data=orjson.dumps(body), headers=headers,
                                                   timeout=self.timeout_s))
        finally:
            self.limiter.release()

    def _wait(self, response: requests.Response | None, attempt: int, cause: str) -> None:
        """Sleep before another try: ``Retry-After`` when given, else exponential backoff."""
        pause = min(0.5 * 2 ** (attempt - 1), 30.0)
        header = response.headers.get("Retry-After") if response is not None else None
        if header:
            pause = _retry_after_seconds(header, pause)
        self.stats.waits[cause] += 1
        self.stats.waited_s += pause
        log.debug("CRM %s: waiting %.1f s before try %d", cause, pause, attempt + 1)
        time.sleep(pause)

    def _check_auth(self, response: requests.Response) -> None:
        if response.status_code in (401, 403):
            raise CrmAuthError(
                f"HubSpot refused the credentials (HTTP {response.status_code}: "
                f"{_message(response)}); check SOURCES__HUBSPOT__ACCESS_TOKEN and its scopes")

    # ---- reads ----------------------------------------------------------------------------------

    def read(self, obj: CrmObject, keys: Sequence[str], fields: Sequence[str]
             ) -> dict[str, CrmRecord]:
        """The CRM's current values of ``fields`` for the records named by ``keys``.

        Keys are CRM ids, or values of the object's unique property. Records the CRM does not
        have (archived, merged, never created) are absent from the result.
        """
        found: dict[str, CrmRecord] = {}
        wanted = list(dict.fromkeys([*fields, *([obj.id_property] if obj.id_property else [])]))
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), MAX_BATCH):
            chunk = unique[start:start + MAX_BATCH]
            body: dict[str, Any] = {"inputs": [{"id": k} for k in chunk], "properties": wanted}
            if obj.id_property:
                body["idProperty"] = obj.id_property
            payload = self._read_call(f"/crm/v3/objects/{obj.name}/batch/read", body)
            for item in payload.get("results") or []:
                props = item.get("properties") or {}
                key = str(props.get(obj.id_property)) if obj.id_property else str(item["id"])
                found[key] = CrmRecord(str(item["id"]), {f: props.get(f) for f in fields})
        return found

    def _read_call(self, path: str, body: Any) -> dict[str, Any]:
        """A read: safe to repeat, so every failure short of auth is retried."""
        for attempt in range(1, self.max_call_attempts + 1):
            response: requests.Response | None = None
            try:
                response = self._post(path, body, None)
                self.stats.reads += 1
            except requests.RequestException as exc:  # reset, timeout, body cut short
                self.stats.reads += 1
                if attempt == self.max_call_attempts:
                    raise PslakeError(f"HubSpot read failed: {type(exc).__name__}") from None
                self._wait(None, attempt, type(exc).__name__)
                continue
            self._check_auth(response)
            if response.status_code in (200, 207):
                result: dict[str, Any] = orjson.loads(response.content)
                return result
            if (response.status_code not in WAIT_STATUSES | AMBIGUOUS_STATUSES
                    or attempt == self.max_call_attempts):
                raise PslakeError(f"HubSpot read {path} failed: HTTP {response.status_code} "
                                  f"{_message(response)}")
            self._wait(response, attempt, str(response.status_code))
        raise AssertionError("unreachable")

    # ---- writes ---------------------------------------------------------------------------------

    def write(self, obj: CrmObject, inputs: Sequence[WriteInput], correlation_id: str,
              on_send: OnSend | None = None) -> WriteOutcome:
        """Write a batch (at most 100 records) and say exactly which records made it.

        ``on_send`` is called before each call of the batch leaves (bisection and resends
        included).
        """
        outcome = WriteOutcome()
        self._write_part(obj, list(inputs), correlation_id, outcome, on_send)
        return outcome

    def _write_part(self, obj: CrmObject, inputs: list[WriteInput], correlation_id: str,
                    outcome: WriteOutcome, on_send: OnSend | None = None) -> None:
        pending = inputs
        for attempt in range(1, self.max_call_attempts + 1):
            response: requests.Response | None = None
            try:
                response = self._post(self._write_path(obj), self._write_body(obj, pending),
                                       correlation_id, on_send)
                status = response.status_code
            except requests.RequestException as exc:  # reset, timeout, body cut short
                status, cause = None, type(exc).__name__
            finally:
                outcome.calls += 1
                self.stats.writes += 1
            if response is not None:
                self._check_auth(response)
            if status in (200, 201, 207):
                assert response is not None
                self._accept(obj, pending, orjson.loads(response.content), outcome)
                return
            if status in REJECT_STATUSES:
                assert response is not None
                if len(pending) == 1:
                    outcome.failed[pending[0].key] = (_message(response), status)
                    return
                self.stats.bisections += 1
                middle = len(pending) // 2
                self._write_part(obj, pending[:middle], correlation_id, outcome, on_send)
                self._write_part(obj, pending[middle:], correlation_id, outcome, on_send)
                return
            if status in WAIT_STATUSES:
                if attempt < self.max_call_attempts:
                    self._wait(response, attempt, str(status))
                    continue
                reason = f"HTTP {status} after {attempt} tries: {_message(response)}"
            elif status is None or status in AMBIGUOUS_STATUSES:
                # the CRM may or may not have written. Wait first (its Retry-After, else a
                # backoff): the read-back is a call too, and a write still in flight gets
                # time to land before it. Then send only what the CRM does not hold.
                self.stats.ambiguous += 1
                cause = str(status) if status is not None else cause
                self._wait(response, attempt, cause)
                pending = self._still_missing(obj, pending, outcome)
                if not pending:
                    return
                if attempt < self.max_call_attempts:
                    continue
                reason = f"{cause} on every one of {attempt} tries"
            else:
                assert response is not None
                reason = f"HTTP {status}: {_message(response)}"
            for item in pending:
                outcome.failed[item.key] = (reason, status)
            return

    def _still_missing(self, obj: CrmObject, inputs: list[WriteInput],
                       outcome: WriteOutcome) -> list[WriteInput]:
        """After an ambiguous outcome: count records holding their values as written."""
        fields = sorted({name for item in inputs for name in item.values})
        current = self.read(obj, [obj.read_key(item.key, item.crm_id) for item in inputs], fields)
        missing = []
        for item in inputs:
            record = current.get(obj.read_key(item.key, item.crm_id))
            if record is not None and all(same(item.kinds[name], record.values.get(name), value)
                                          for name, value in item.values.items()):
                outcome.written[item.key] = record.crm_id
            else:
                missing.append(item)
        return missing

    def _accept(self, obj: CrmObject, inputs: list[WriteInput], payload: dict[str, Any],
                outcome: WriteOutcome) -> None:
        refused: dict[str, str] = {}
        for error in payload.get("errors") or []:
            context = error.get("context") or {}
            message = str(error.get("message") or error.get("category") or "refused")
            for key in context.get("ids") or context.get("id") or []:
                refused[str(key)] = message
        by_key: dict[str, str] = {}
        by_id: set[str] = set()
        for item in payload.get("results") or []:
            props = item.get("properties") or {}
            by_id.add(str(item.get("id")))
            if obj.id_property and props.get(obj.id_property) is not None:
                by_key[str(props[obj.id_property])] = str(item.get("id"))
        unanswered: list[WriteInput] = []
        for item in inputs:
            ref = obj.read_key(item.key, item.crm_id)
            if ref in refused:
                outcome.failed[item.key] = (refused[ref], 207)
            elif item.key in by_key:
                outcome.written[item.key] = by_key[item.key]
            elif item.crm_id is not None and item.crm_id in by_id:
                outcome.written[item.key] = item.crm_id
            elif not obj.id_property and item.key in by_id:
                outcome.written[item.key] = item.key
            else:
                unanswered.append(item)
        # neither written nor refused by name: find out (one read) rather than guess
        for item in self._still_missing(obj, unanswered, outcome) if unanswered else []:
            outcome.failed[item.key] = ("not in the CRM's answer", None)

    @staticmethod
    def _write_path(obj: CrmObject) -> str:
        verb = "upsert" if obj.id_property else "update"
        return f"/crm/v3/objects/{obj.name}/batch/{verb}"

    @staticmethod
    def _write_body(obj: CrmObject, inputs: list[WriteInput]) -> dict[str, Any]:
        if obj.id_property:
            # the unique property is sent as a value only for a record to be created, so the
            # answer names it; an existing record is matched by its CRM id (and the key is
            # not rewritten)
            return {"inputs": [
                {"id": item.key, "idProperty": obj.id_property,
                 "properties": {**item.values,
                                **({obj.id_property: item.key} if item.crm_id is None else {})}}
                for item in inputs]}
        return {"inputs": [{"id": item.crm_id or item.key, "properties": dict(item.values)}
                           for item in inputs]}

    def archive(self, obj: CrmObject, crm_ids: Sequence[str], correlation_id: str,
                on_send: OnSend | None = None) -> int:
        """Archive records by CRM id (revert of records a run created); returns calls made."""
        calls = 0
        for start in range(0, len(crm_ids), MAX_BATCH):
            chunk = crm_ids[start:start + MAX_BATCH]
            for attempt in range(1, self.max_call_attempts + 1):
                response = self._post(f"/crm/v3/objects/{obj.name}/batch/archive",
                                      {"inputs": [{"id": i} for i in chunk]}, correlation_id,
                                      on_send)
                calls += 1
                self.stats.writes += 1
                self._check_auth(response)
                if response.status_code in (200, 204):
                    break
                if attempt == self.max_call_attempts or response.status_code < 429:
                    raise PslakeError(f"HubSpot archive failed: HTTP {response.status_code} "
                                      f"{_message(response)}")
                self._wait(response, attempt, str(response.status_code))
        return calls

    # ---- properties -----------------------------------------------------------------------------

    def property_names(self, obj: CrmObject) -> set[str]:
        """The object's property names (one call)."""
        response = self._retried("GET", f"/crm/v3/properties/{obj.name}", None, (200,))
        self.stats.reads += 1
        return {str(p["name"]) for p in orjson.loads(response.content).get("results") or []}

    def create_property(self, obj: CrmObject, definition: Mapping[str, Any]) -> None:
        """Create one custom property (pslake's own fields, before their first write).

        A retry after an ambiguous failure may find it created: 409 counts as done.
        """
        self._retried("POST", f"/crm/v3/properties/{obj.name}", dict(definition),
                      (200, 201, 409))
        self.stats.writes += 1

    def _retried(self, method: str, path: str, body: Any, ok: tuple[int, ...]
                 ) -> requests.Response:
        """A schema call: retried on throttling, server errors and dropped connections."""
        for attempt in range(1, self.max_call_attempts + 1):
            self.limiter.acquire()
            response: requests.Response | None = None
            try:
                response = whole(method, self.session.request(
                    method, f"{self.base_url}{path}", timeout=self.timeout_s,
                    data=orjson.dumps(body) if body is not None else None))
            except requests.RequestException as exc:
                cause = type(exc).__name__
            finally:
                self.limiter.release()
            if response is not None:
                self._check_auth(response)
                if response.status_code in ok:
                    return response
                cause = str(response.status_code)
                if response.status_code not in WAIT_STATUSES | AMBIGUOUS_STATUSES:
                    break
            if attempt < self.max_call_attempts:
                self._wait(response, attempt, cause)
        raise PslakeError(f"HubSpot {method} {path} failed: {cause} {_message(response)}")


def _message(response: requests.Response | None) -> str:
    """The vendor's error message (never the request, which carries the token)."""
    if response is None:
        return ""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("category") or "")[:500]
    return str(body)[:200]


def _retry_after_seconds(header: str, default: float) -> float:
    """``Retry-After`` as seconds (a number or an HTTP date), capped at 5 minutes."""
    try:
        return min(max(float(header), 0.0), 300.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return default
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return min(max((moment - dt.datetime.now(dt.UTC)).total_seconds(), 0.0), 300.0)
