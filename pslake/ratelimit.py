"""A vendor's call budget on the client side: calls per sliding window and calls at once.

Shared by ingestion (every page request) and the reverse sync (every read and write), so both
stay under the documented limit instead of relying on the vendor's 429s: a call is counted the
way the vendor counts it, whatever the network does to it on the way.
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
    """A sliding-window call budget plus a concurrency cap, shared by a vendor's threads.

    A call holds its place in the window from when it is sent until one window after it was
    answered. The vendor counts a call when it arrives, which is somewhere between the two, so
    however long calls take on the way, no window the vendor counts holds more than ``calls``
    of them (counting from the send alone let a delayed call land in the next call's window).
    Every :meth:`acquire` must be followed by one :meth:`release`, when the call is over
    (answered, failed or timed out).
    """

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._changed = threading.Condition()
        self._answered: deque[float] = deque()  # when each call of the last window was over
        self._in_flight = 0  # calls sent and not yet over: they count until a window after
        self._slots = threading.BoundedSemaphore(limit.concurrent) if limit.concurrent else None
        self.waited_s = 0.0

    def acquire(self) -> None:
        """Wait for a concurrency slot and a place in the window."""
        if self._slots is not None:
            self._slots.acquire()
        try:
            self._take_place()
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise

    def _take_place(self) -> None:
        calls = self.limit.calls
        if not calls:
            return
        started = time.monotonic()
        with self._changed:
            while True:
                now = time.monotonic()
                while self._answered and now - self._answered[0] >= self.limit.window_s:
                    self._answered.popleft()
                if self._in_flight + len(self._answered) < calls:
                    self._in_flight += 1
                    self.waited_s += now - started
                    return
                # the oldest answered call leaves the window then; a call in flight may end
                # sooner (and start its own window), which wakes this wait early
                pause = (self.limit.window_s - (now - self._answered[0])
                         if self._answered else None)
                self._changed.wait(pause)

    def release(self) -> None:
        """The call is over: its window starts now, and its concurrency slot is given back."""
        if self.limit.calls:
            with self._changed:
                self._in_flight = max(0, self._in_flight - 1)
                self._answered.append(time.monotonic())
                self._changed.notify_all()
        if self._slots is not None:
            self._slots.release()
