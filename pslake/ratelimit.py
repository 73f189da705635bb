"""A vendor's call budget on the client side: calls per sliding window and calls at once.

Shared by ingestion (every page request) and the reverse sync (every read and write), so both
stay under the documented limit instead of relying on the vendor's 429s.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A vendor's budget: ``calls`` per ``window_s`` seconds, ``concurrent`` calls at once."""

    calls: int | None = None
    window_s: float = 1.0
    concurrent: int | None = None

    def describe(self) -> str:
        """The budget in words, for the summary."""
        parts = []
        if self.calls:
            parts.append(f"{self.calls} calls / {self.window_s:g} s")
        if self.concurrent:
            parts.append(f"{self.concurrent} at once")
        return ", ".join(parts) or "none"


class RateLimiter:
    """A sliding-window call budget plus a concurrency cap, shared by a vendor's threads."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._slots = threading.BoundedSemaphore(limit.concurrent) if limit.concurrent else None
        self.waited_s = 0.0

    def acquire(self) -> None:
        """Wait for a concurrency slot and a place in the window."""
        if self._slots is not None:
            self._slots.acquire()
        calls = self.limit.calls
        if not calls:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.limit.window_s:
                    self._sent.popleft()
                if len(self._sent) < calls:
                    self._sent.append(now)
                    return
                pause = self.limit.window_s - (now - self._sent[0])
                self.waited_s += pause
            time.sleep(pause)

    def release(self) -> None:
        """Give the concurrency slot back."""
        if self._slots is not None:
            self._slots.release()
