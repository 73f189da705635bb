"""Dashboard figures: the server-side time to render each page on the size's snapshot.

Each page is rendered by Streamlit's AppTest (the app's own script run, queries and all, no
browser), signed in as a user who sees every entity, with Streamlit's caches cleared before each
render, so the figure is a cold render: the one a user meets after a new snapshot. Runs on the
snapshot the transform benchmark published (``--work``/ingest-<size>/snapshots).
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from pathlib import Path

from benchmarks.harness import Context, Figure

PAGES = ["overview", "utilization", "margin", "wip", "reconciliation", "reverse_sync",
         "integration_health"]
RENDERS = 10
ENTRYPOINT = Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"


def pages(ctx: Context) -> list[Figure]:
    """Median and p95 of cold renders of each page."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    # AppTest runs the app without Streamlit's server: its warning about that, once per
    # render, would bury the report
    for name in ("streamlit.runtime.caching.cache_data_api",
                 "streamlit.runtime.scriptrunner_utils.script_run_context"):
        logging.getLogger(name).setLevel(logging.ERROR)

    from app.auth import save_user
    from pslake import snapshot

    data = ctx.work / f"ingest-{ctx.size}"
    if snapshot.current(data) is None:
        raise RuntimeError(f"no snapshot in {data}: run the transform benchmark first")
    users = ctx.work / "bench-users.toml"
    save_user(users, "bench", "bench-password", ["*"])
    saved = {k: os.environ.get(k) for k in ("PSLAKE_DATA_DIR", "PSLAKE_APP_USERS")}
    os.environ.update(PSLAKE_DATA_DIR=str(data), PSLAKE_APP_USERS=str(users))
    figures = []
    try:
        at = AppTest.from_file(str(ENTRYPOINT), default_timeout=120)
        at.run()
        at.text_input(key="auth_username").input("bench")
        at.text_input(key="auth_password").input("bench-password")
        at.button[0].click().run()
        for page in PAGES:
            seconds = []
            for _ in range(RENDERS):
                st.cache_data.clear()
                st.cache_resource.clear()
                started = time.perf_counter()
                at.switch_page(f"app_pages/{page}.py").run()
                seconds.append(time.perf_counter() - started)
                if at.exception:
                    raise RuntimeError(f"{page}: {at.exception[0].message}")
            seconds.sort()
            median = statistics.median(seconds)
            p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]
            figures.append(Figure(f"page render {ctx.size}: {page} (median, cold)", median, "s",
                                  "< 1 s", median < 1.0, {"p95_s": p95, "renders": RENDERS}))
            figures.append(Figure(f"  {page} p95", p95, "s", "< 1 s", p95 < 1.0))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return figures
