"""The dashboard in a real browser: headless Chromium (Debian's, installed by `make test`) opens
the running app (`pslake app`), signs in, visits every page and saves a screenshot of each
(benchmarks/results/screenshots/). A user granted one entity never sees another's numbers: not
in the text, the tiles as drawn, nor the table cells (read from the grid's accessible copy, every
tab opened), while the same reading of the CEO's pages does find them. Single sign-on runs against
a small OIDC provider on localhost (`oidc_provider.py`): a granted user signs in; an ID token that
has already expired is refused by the app's own `exp` check; signing out in one tab ends the
session in another (with single sign-on and with a password) at its next click."""

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
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb
import pytest

from app.auth import save_user
from app.state import compact_money
from tests.app.conftest import UK, USERS, Dashboard, make_dashboard
from tests.browser.oidc_provider import Provider, serving
from tests.conftest import BuiltFirm
from tests.reliability import record

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


def _text_after_rerun(page: object, gone: tuple[str, ...], patience_ms: int = 10_000) -> str:
    """The page's text once the words ``gone`` have left it, or after ``patience_ms``.

    Streamlit keeps the previous run's elements on screen (faded) until the rerun that replaces
    them ends, so text read as soon as the rerun's first element appears can still hold them. A
    page that keeps showing them past the patience is returned as it is, for the caller's
    assertion to report.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(  # type: ignore[attr-defined]
            "(words) => words.every((w) => !document.body.innerText.includes(w))",
            arg=list(gone), timeout=patience_ms)
    return str(page.inner_text("body"))  # type: ignore[attr-defined]


def _visit(page: object, title: str) -> str:
    page.get_by_role("link", name=title, exact=True).click()  # type: ignore[attr-defined]
    heading = {"WIP and unbilled": "WIP and unbilled time", "Reconciliation":
               "Reconciliation exceptions", "Reverse sync": "Reverse sync to the CRM"}
    page.get_by_role(  # type: ignore[attr-defined]
        "heading", name=heading.get(title, title)).first.wait_for()
    page.wait_for_timeout(700)  # type: ignore[attr-defined]  # charts and tables settle
    return str(page.inner_text("body"))  # type: ignore[attr-defined]


@dataclass
class Seen:
    """What a user could read on the pages visited: the text, the tiles, the table cells."""

    text: list[str] = field(default_factory=list)
    tiles: list[str] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)

    @property
    def numbers(self) -> set[Decimal]:
        """Every cell that is a number (tables show amounts unformatted: ``34444.2``)."""
        found = set()
        for cell in self.cells:
            with contextlib.suppress(InvalidOperation):
                found.add(Decimal(cell.replace(",", "")).normalize())
        return found

    def everything(self) -> str:
        return "\n".join([*self.text, *self.tiles, *self.cells])


def _read(page: object, seen: Seen) -> None:
    """Add what the page shows: tables are drawn on a canvas, so their cells are read from
    the grid's accessible copy (present for the rows on screen, in the open tab only)."""
    frames = page.locator('[data-testid="stDataFrame"]')  # type: ignore[attr-defined]
    for index in range(frames.count()):
        frame = frames.nth(index)
        if frame.is_visible():
            frame.scroll_into_view_if_needed()
            page.wait_for_timeout(200)  # type: ignore[attr-defined]
            seen.cells += frame.locator("th, td").all_text_contents()
    seen.tiles += page.locator(  # type: ignore[attr-defined]
        '[data-testid="stMetricValue"]').all_inner_texts()


def _look_around(page: object, title: str, seen: Seen, screenshot: str | None = None) -> None:
    """Visit a page, open each of its tabs in turn, and note what the user can read."""
    seen.text.append(_visit(page, title))
    if screenshot:
        page.screenshot(path=str(SCREENSHOTS / screenshot), full_page=True)  # type: ignore[attr-defined]
    _read(page, seen)
    tabs = page.get_by_role("tab")  # type: ignore[attr-defined]
    for index in range(1, tabs.count()):
        tabs.nth(index).click()
        page.wait_for_timeout(400)  # type: ignore[attr-defined]
        seen.text.append(str(page.inner_text("body")))  # type: ignore[attr-defined]
        _read(page, seen)


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
        month, = con.execute("select max(month_start_date) "
                             "from marts.mart_exec_kpis_monthly").fetchone()
        tiles = con.execute(
            "select legal_entity_name, is_all_entities, recognised_revenue_reporting, "
            "wip_amount_reporting, ar_balance_reporting from marts.mart_exec_kpis_monthly "
            "where month_start_date = ?", [month]).fetchall()
        revenues = con.execute(
            "select legal_entity_name, recognised_revenue_reporting "
            "from marts.mart_margin_by_entity "
            "join canonical.dim_legal_entities using (legal_entity_id) "
            "where month_start_date = ?", [month]).fetchall()
        currency, = con.execute("select max(reporting_currency_code) "
                                "from marts.mart_exec_kpis_monthly").fetchone()
    others = sorted({name for name, _ in revenues} - {UK})
    assert others
    # tile figures as the dashboard draws them (compactly: "USD 4.41 M"), the firm's and each
    # other entity's, less any that happens to read the same as one of the UK's own
    uk_tiles = {compact_money(v, currency) for name, firm, *values in tiles if name == UK
                for v in values}
    firm_tiles = {compact_money(v, currency) for _, firm, *values in tiles if firm
                  for v in values}
    other_tiles = {compact_money(v, currency) for name, firm, *values in tiles
                   if not firm and name != UK for v in values} - uk_tiles
    other_revenues = {Decimal(v).normalize() for name, v in revenues if name != UK}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    # the control: the same reading of the CEO's pages finds what the UK lead must not see
    page = _sign_in(browser, served, "ceo")
    ceo = Seen()
    for title in ("Overview", "Margin"):
        _look_around(page, title, ceo)
    page.close()  # type: ignore[attr-defined]
    assert firm_tiles - uk_tiles and firm_tiles - uk_tiles <= set(ceo.tiles)
    assert all(name in ceo.everything() for name in others)
    assert other_revenues <= ceo.numbers  # the legal entities tab lists each entity's revenue

    page = _sign_in(browser, served, "uk_lead")
    uk = Seen()
    for title in PAGES:
        _look_around(page, title, uk,
                     screenshot=f"uk-lead-{title.lower().replace(' ', '-')}.png")
    page.close()  # type: ignore[attr-defined]
    assert UK in uk.everything()
    assert uk.cells, "the tables were read"
    assert [name for name in others if name in uk.everything()] == []
    assert set(uk.tiles) & (firm_tiles | other_tiles) - uk_tiles == set()
    assert not any(tile in text for tile in (firm_tiles | other_tiles) - uk_tiles
                   for text in uk.text)
    assert uk.numbers & other_revenues == set()


@contextlib.contextmanager
def _with_single_sign_on(built: BuiltFirm, tmp_path: Path, provider: Provider) -> Iterator[str]:
    """`pslake app` with single sign-on through ``provider`` (served here) for a UK user."""
    data_dir = tmp_path / "data"
    make_dashboard(built, data_dir)
    save_user(data_dir / "app" / "users.toml", provider.email, None, [UK])
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
            yield url


def _provider() -> Provider:
    return Provider(client_id="pslake-dashboard", client_secret=secrets.token_urlsafe(16),
                    email="uk.lead@northwind.example", name="UK Lead")


def test_single_sign_on_through_the_identity_provider_grants_the_users_entities(
        small_warehouse: BuiltFirm, browser: object, tmp_path: Path) -> None:
    provider = _provider()
    with _with_single_sign_on(small_warehouse, tmp_path, provider) as url:
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


def test_an_expired_id_token_is_refused_and_signing_out_ends_every_tab(
        small_warehouse: BuiltFirm, browser: object, tmp_path: Path) -> None:
    """Battery test 25 in a real browser: the provider hands over an ID token that expired a
    minute ago (Streamlit's client accepts it: two minutes' leeway), and the app refuses it by
    its own `exp` check; a fresh token signs in; then a second tab of the same browser (the same
    cookie) is signed in too, and signing out in the first ends the second at its next click."""
    provider = _provider()
    provider.lifetime = -60
    with _with_single_sign_on(small_warehouse, tmp_path, provider) as url:
        context = browser.new_context()  # type: ignore[attr-defined]
        context.set_default_timeout(30_000)
        first = context.new_page()
        first.goto(url)
        first.get_by_role("button", name="Sign in with single sign-on").click()
        first.get_by_text("Your single sign-on expired at").wait_for()
        refused = first.inner_text("body")
        first.screenshot(path=str(SCREENSHOTS / "sso-expired.png"), full_page=True)
        assert provider.sign_ins == 1

        provider.lifetime = 300
        first.get_by_role("button", name="Sign in again with single sign-on").click()
        first.get_by_text("Revenue recognised").wait_for()
        second = context.new_page()
        second.goto(url)  # the same browser: signed in by the cookie
        second.get_by_text("Revenue recognised").wait_for()
        assert UK in second.inner_text("body")

        first.get_by_role("button", name="Sign out").click()
        first.get_by_role("button", name="Sign in with single sign-on").wait_for()
        second.get_by_role("link", name="Margin", exact=True).click()
        second.get_by_text("You signed out").wait_for()
        after = _text_after_rerun(second, ("Revenue recognised", UK))
        second.screenshot(path=str(SCREENSHOTS / "sso-signed-out-elsewhere.png"),
                          full_page=True)
        context.close()
    leaks = ["Revenue recognised" in text or UK in text for text in (refused, after)]
    record("auth_required_and_expiry", layer="browser", injected=2,
           survived=leaks.count(False), pages_checked=2, unauthorized_renders=sum(leaks),
           leaked=sum(leaks), cases=2)
    assert provider.sign_ins == 2
    assert leaks == [False, False], (refused[:500], after[:500])


def test_signing_out_in_one_tab_ends_the_password_session_in_another(
        served: str, browser: object) -> None:
    first = _sign_in(browser, served, "uk_lead")
    second = _sign_in(browser, served, "uk_lead")
    first.get_by_role("button", name="Sign out").click()  # type: ignore[attr-defined]
    first.get_by_role("button", name="Sign in").wait_for()  # type: ignore[attr-defined]
    second.get_by_role("link", name="Margin", exact=True).click()  # type: ignore[attr-defined]
    second.get_by_text("You signed out").wait_for()  # type: ignore[attr-defined]
    text = _text_after_rerun(second, ("Revenue recognised", UK))
    first.close()  # type: ignore[attr-defined]
    second.close()  # type: ignore[attr-defined]
    assert "Revenue recognised" not in text and UK not in text
