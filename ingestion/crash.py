"""Named crash points for the reliability battery: ``PSLAKE_CRASH_AT`` signals the run there.

Off unless the environment variable is set (nothing here runs otherwise). The battery's kill
tests (``tests/reliability/test_ingest_kill.py``) set it on a ``pslake ingest`` subprocess to
prove that a run killed at any step is finished by the next run without a row lost or doubled.
``PSLAKE_CRASH_AT=<point>`` sends the process SIGKILL the first time the run reaches the point,
``<point>:<n>`` the n-th time, ``<point>:<n>:SIGTERM`` another signal (a comma separates several;
each writes a line to stderr with the time it was sent):

- ``mid_extract``: a table's first items are in the extract package, the rest not yet read;
- ``after_extract``: the package is extracted and the cursors moved, nothing normalized;
- ``mid_normalize``: the first file of the package is normalized, the others not;
- ``mid_load``: the first load job is complete, the package is not.

The points inside dlt's steps are seen through dlt's progress collector (``progress``), which
dlt calls as items are extracted, files normalized and jobs completed.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from dlt.common.runtime.collector import NULL_COLLECTOR, Collector

CRASH_ENV = "PSLAKE_CRASH_AT"
POINTS = ("mid_extract", "after_extract", "mid_normalize", "mid_load")
_reached: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(point: str) -> None:
    """Signal this process if ``PSLAKE_CRASH_AT`` names ``point`` and its occurrence is due."""
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    with _lock:
        _reached[point] = _reached.get(point, 0) + 1
        reached = _reached[point]
    for spec in wanted.split(","):
        name, _, rest = spec.strip().partition(":")
        nth, _, sent = rest.partition(":")
        if name == point and reached == int(nth or 1):
            number = getattr(signal, sent or "SIGKILL")
            os.write(2, f"crash point {point}:{reached}: {sent or 'SIGKILL'} at "
                        f"{time.time():.3f}\n".encode())
            os.kill(os.getpid(), number)


class _CrashCollector(Collector):
    """dlt's progress callbacks, turned into the crash points inside its steps."""

    def __init__(self) -> None:
        self.step = ""
        self._phase = ""

    def update(self, name: str, inc: int = 1, total: int | None = None,
               inc_total: int | None = None, message: str | None = None,
               label: str | None = None) -> None:
        """Called by dlt with progress: items written, files normalized, jobs completed."""
        if inc <= 0 or label:
            return
        if self._phase == "Extract" and name != "Resources":
            crash_point("mid_extract")
        elif self._phase == "Normalize" and name not in ("Files", "Items"):
            crash_point("mid_normalize")
        elif self._phase == "Load" and name == "Jobs":
            crash_point("mid_load")

    def _start(self, step: str) -> None:
        self._phase = step.split(" ", 1)[0]

    def _stop(self) -> None:
        self._phase = ""


def progress() -> Collector:
    """The collector for dlt's pipeline: dlt's own null collector unless a point is armed."""
    return _CrashCollector() if os.environ.get(CRASH_ENV) else NULL_COLLECTOR
