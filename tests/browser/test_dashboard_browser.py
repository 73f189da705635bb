"""The dashboard in a real browser: headless Chromium (Debian's, installed by `make test`) opens
the running app (`pslake app`), signs in, visits every page and saves a screenshot of each
(benchmarks/results/screenshots/). A user granted one entity never sees another's numbers."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from app.auth import save_user
from tests.app.conftest import UK, USERS, Dashboard, make_dashboard
from tests.browser.oidc_provider import Provider, serving
from tests.conftest import BuiltFirm

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "screenshots"
PAGES = ["Overview", "Utilization", "Margin", "WIP and unbilled", "Reconciliation",
         "Reverse sync", "Integration health"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _app(data_dir: Path, port: int) -> Iterator[str]:
    """`pslake app` serving the data folder's snapshot on ``port``."""
    env = dict(os.environ, PSLAKE_DATA_DIR=str(data_dir))
    env.pop("PSLAKE_APP_USERS", None)
    proc = subprocess.Popen([sys.executable, "-m", "pslake", "app", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"pslake app did not start:\n{output[-3000:]}")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def served(dashboard: Dashboard) -> Iterator[str]:
    """`pslake app` serving the small firm's snapshot on a free port."""
    with _app(dashboard.data_dir, _free_port()) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: `make test` installs it"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        yield chromium
        chromium.close()


def _sign_in(browser: object, url: str, user: str) -> object:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(30_000)
    page.goto(url)
    page.get_by_role("textbox", name="User name").fill(user)
    page.get_by_role("textbox", name="Password").fill(USERS[user][0])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Revenue recognised").wait_for()
    return page


def _visit(page: object, title: str) -> str:
    page.get_by_role("link", name=title, exact=True).click()  # type: ignore[attr-defined]
    heading = {"WIP and unbilled": "WIP and unbilled time", "Reconciliation":
               "Reconciliation exceptions", "Reverse sync": "Reverse sync to the CRM"}
    page.get_by_role(  # type: ignore[attr-defined]
        "heading", name=heading.get(title, title)).first.wait_for()
    page.wait_for_timeout(700)  # type: ignore[attr-defined]  # charts and tables settle
    return str(page.inner_text("body"))  # type: ignore[attr-defined]


def test_a_signed_in_executive_visits_every_page(served: str, browser: object) -> None:
    page = _sign_in(browser, served, "ceo")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for title in PAGES:
        text = _visit(page, title)
        assert "Traceback" not in text and "Error" not in text.split("Integration health")[0]
        page.screenshot(  # type: ignore[attr-defined]
            path=str(SCREENSHOTS / f"ceo-{title.lower().replace(' ', '-')}.png"), full_page=True)
    page.close()  # type: ignore[attr-defined]


def test_a_user_granted_one_entity_never_sees_anothers_numbers(
        served: str, browser: object, dashboard: Dashboard) -> None:
    with duckdb.connect(str(dashboard.snapshot), read_only=True) as con:
        others = con.execute(
            "select legal_entity_name from canonical.dim_legal_entities "
            "where legal_entity_name <> ? and not is_group and not is_elimination", [UK]
        ).fetchall()
        firm_revenue, = con.execute(
            "select recognised_revenue_reporting from marts.mart_exec_kpis_monthly "
            "where is_all_entities and is_latest_month").fetchone()
    assert others
    page = _sign_in(browser, served, "uk_lead")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    seen = []
    for title in PAGES:
        seen.append(_visit(page, title))
        page.screenshot(  # type: ignore[attr-defined]
            path=str(SCREENSHOTS / f"uk-lead-{title.lower().replace(' ', '-')}.png"),
            full_page=True)
    text = "\n".join(seen)
    assert UK in text
    for (name,) in others:
        assert name not in text
    assert f"{firm_revenue:,.2f}" not in text
    page.close()  # type: ignore[attr-defined]


def test_single_sign_on_through_the_identity_provider_grants_the_users_entities(
        small_warehouse: BuiltFirm, browser: object, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    make_dashboard(small_warehouse, data_dir)
    email = "uk.lead@northwind.example"
    save_user(data_dir / "app" / "users.toml", email, None, [UK])
    provider = Provider(client_id="pslake-dashboard", client_secret=secrets.token_urlsafe(16),
                        email=email, name="UK Lead")
    app_port = _free_port()
    with serving(provider, _free_port()):
        (data_dir / "app" / "secrets.toml").write_text(
            "[auth]\n"
            f'redirect_uri = "http://127.0.0.1:{app_port}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_urlsafe(24)}"\n'
            f'client_id = "{provider.client_id}"\n'
            f'client_secret = "{provider.client_secret}"\n'
            f'server_metadata_url = "{provider.url}/.well-known/openid-configuration"\n')
        with _app(data_dir, app_port) as url:
            page = browser.new_page()  # type: ignore[attr-defined]
            page.set_default_timeout(30_000)
            page.goto(url)
            page.get_by_role("button", name="Sign in with single sign-on").click()
            page.get_by_text("Revenue recognised").wait_for()
            text = page.inner_text("body")
            page.screenshot(path=str(SCREENSHOTS / "sso-overview.png"), full_page=True)
            page.close()
    assert provider.sign_ins == 1
    assert "Signed in as" in text and UK in text
    assert "Northwind Advisory US" not in text
