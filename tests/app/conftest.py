"""The dashboard's fixtures: the small firm's marts published as a snapshot in a data folder of
the test run, with two users (one who sees every entity, one granted the UK entity only); a
snapshot derived from it by SQL (a mart missing, rows removed); one whose reverse sync ran
against the sandbox CRM; the bytes each download button serves; and for the battery's tests 24
and 25, a tampered browser (``send_raw``), a single sign-on identity as ``st.user`` holds it
(``identity``, ``sso_app``) and what of the firm's data a run shows (``data_shown``)."""

from __future__ import annotations

import contextlib
import copy
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pandas as pd
import pytest
import requests
import streamlit as st
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module
from streamlit.testing.v1.element_tree import Block, Widget

from app.auth import save_user
from app.state import connect
from pslake import transform
from pslake.snapshot import publish
from reverse_sync.policy import Policy
from reverse_sync.runner import Sync
from sandbox.server.app import SandboxThread
from tests.conftest import BuiltFirm

ENTRYPOINT = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"
UK = "Northwind Advisory UK"
USERS = {  # name: (password, entities)
    "ceo": ("ceo-password-1", ["*"]),
    "uk_lead": ("uk-password-2", [UK]),
}


@dataclass(frozen=True)
class Dashboard:
    """A data folder with a published snapshot and a users file."""

    data_dir: Path
    snapshot: Path
    users: Path

    def query(self, sql: str, params: list[object] | dict[str, object] | None = None
              ) -> list[tuple[Any, ...]]:
        """Rows of a query on the published snapshot, opened as the app opens it (read-only).

        The app's configuration, since DuckDB refuses a second connection to a file with
        another one while the app's cached connection is open.
        """
        with connect(str(self.snapshot)) as con:
            return con.execute(sql, params or []).fetchall()


def make_dashboard(built: BuiltFirm, data_dir: Path, warehouse: Path | None = None
                   ) -> Dashboard:
    """Publish ``built``'s marts (or another warehouse's) into ``data_dir``; write the users."""
    snap = publish(data_dir, warehouse=warehouse or built.warehouse)
    users = data_dir / "app" / "users.toml"
    for name, (password, entities) in USERS.items():
        save_user(users, name, password, entities, display_name=name.upper())
    return Dashboard(data_dir=data_dir, snapshot=snap.path, users=users)


def derived_dashboard(dashboard: Dashboard, data_dir: Path, *statements: str) -> Dashboard:
    """The dashboard's snapshot changed by SQL ``statements``, published in ``data_dir``.

    The changed copy is published like a warehouse (``pslake.snapshot.publish``), so the app
    reads it exactly as it reads a real snapshot.
    """
    source = data_dir.parent / f"{data_dir.name}-source.duckdb"
    shutil.copy2(dashboard.snapshot, source)
    with duckdb.connect(str(source)) as con:
        for statement in statements:
            con.execute(statement)
    snap = publish(data_dir, warehouse=source)
    users = data_dir / "app" / "users.toml"
    users.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(dashboard.users, users)
    return Dashboard(data_dir=data_dir, snapshot=snap.path, users=users)


@pytest.fixture(scope="session")
def dashboard(small_warehouse: BuiltFirm, tmp_path_factory: pytest.TempPathFactory
              ) -> Dashboard:
    """The small firm's dashboard data (shared: tests only read it)."""
    return make_dashboard(small_warehouse, tmp_path_factory.mktemp("dashboard"))


# No waiting between retries: the fixture makes one run, it does not measure backoff.
SYNC_POLICY = Policy(retry_backoff_minutes=(0,), retry_max_attempts=3)


@pytest.fixture(scope="session")
def synced_dashboard(small_warehouse: BuiltFirm, tmp_path_factory: pytest.TempPathFactory
                     ) -> Dashboard:
    """The small firm after a reverse sync ran against its sandbox CRM, transformed, published.

    A copy of the warehouse and of the CRM's store; the sync plans, the CRM loses one deal the
    plan writes to (so that write is dead-lettered), the sync applies; then ``pslake.transform``
    builds the sync marts from the journal and the marts are published.
    """
    data_dir = small_warehouse.copy_to(tmp_path_factory.mktemp("synced") / "data")
    store = data_dir / "sandbox"
    shutil.copytree(small_warehouse.firm, store, ignore=shutil.ignore_patterns("endpoints.json"))
    with pytest.MonkeyPatch.context() as env:
        for name in ("BASE_URL", "ACCESS_TOKEN"):
            env.delenv(f"SOURCES__HUBSPOT__{name}", raising=False)
        env.setenv("PSLAKE_ACTOR", "app-test")
        with SandboxThread(store) as server, Sync(data_dir, policy=SYNC_POLICY) as sync:
            plan = sync.plan()
            deal = next(p.change.key for p in plan.changes
                        if p.change.object == "deals" and p.decision == "apply")
            token = server.state.credentials["hubspot"]["access_token"]
            requests.delete(f"{server.root}/hubspot/crm/v3/objects/deals/{deal}", timeout=10,
                            headers={"Authorization": f"Bearer {token}"}).raise_for_status()
            sync.apply(plan.run_id)
    built = transform.build(data_dir, select=["sync_runs", "sync_open_items"],
                            as_of=small_warehouse.as_of, freshness=False)
    assert built.success, built.failures
    return make_dashboard(small_warehouse, data_dir, warehouse=data_dir / transform.WAREHOUSE_FILE)


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def app_env(dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch) -> Dashboard:
    """The process environment pointing the app at the dashboard's data folder."""
    monkeypatch.setenv("PSLAKE_DATA_DIR", str(dashboard.data_dir))
    monkeypatch.delenv("PSLAKE_APP_USERS", raising=False)
    return dashboard


class _RecordingStorage(MemoryMediaFileStorage):
    """AppTest's in-memory media store, kept after the run so a test can read what it holds."""

    made: ClassVar[list[MemoryMediaFileStorage]] = []

    def __init__(self, media_endpoint: str) -> None:
        super().__init__(media_endpoint)
        self.made.append(self)


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the files download buttons serve (``downloaded`` reads them).

    AppTest gives each run a fresh in-memory media store and drops it; this keeps them.
    """
    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", _RecordingStorage)
    yield
    _RecordingStorage.made.clear()


def downloaded(at: AppTest, key: str) -> bytes:
    """The bytes the download button ``key`` serves, as of the latest run (``downloads``)."""
    button = next(b for b in at.download_button if b.key == key)
    name = button.proto.url.rsplit("/", 1)[-1]
    content = _RecordingStorage.made[-1].get_file(name).content
    return content if isinstance(content, bytes) else content.encode()


def tables(at: AppTest) -> dict[str, pd.DataFrame]:
    """Every table shown, by its ``show_table`` key (``margin_project``).

    A dataframe's key does not reach AppTest, but ``show_table`` draws each table just before
    its download button (keyed ``<key>_csv``), so the two lists pair up in order.
    """
    buttons = [b.key.removesuffix("_csv") for b in at.download_button]
    assert len(buttons) == len(at.dataframe), "every table comes with its download button"
    return dict(zip(buttons, [d.value for d in at.dataframe], strict=True))


def table(at: AppTest, key: str) -> pd.DataFrame:
    """The rows the table ``key`` shows."""
    shown = tables(at)
    assert key in shown, f"no table {key}: {list(shown)}"
    return shown[key]


def metric(at: AppTest, label: str) -> str:
    """A tile's exact figure: its tooltip where that is the exact amount, else its value."""
    tile = next(m for m in at.metric if m.label == label)
    exact = tile.proto.help
    return exact if re.fullmatch(r"[A-Z]{3} -?[\d,]+\.\d\d", exact or "") else tile.value


def signed_in(user: str, password: str | None = None) -> AppTest:
    """The app after ``user`` signed in through the form (the overview page shown)."""
    at = AppTest.from_file(str(ENTRYPOINT), default_timeout=60)
    at.run()
    at.text_input(key="auth_username").input(user)
    at.text_input(key="auth_password").input(password or USERS[user][0])
    at.button[0].click().run()
    return at


def send_raw(at: AppTest, values: dict[str, str | list[str]]) -> AppTest:
    """Rerun as a tampered browser would: each widget key of ``values`` reports its value verbatim.

    A browser reports a select widget's choice as the text of an option; a hostile one can send
    any text instead (another entity's name or id, an injection). This sends the widget states
    AppTest would send, with those replaced, for the page last switched to.
    """
    ids = {n.key: n.id for n in at._tree if isinstance(n, Widget) and n.key in values}
    assert set(ids) == set(values), f"no widget {set(values) - set(ids)} on the page"
    states = at._tree.get_widget_states()
    by_id = {state.id: state for state in states.widgets}
    for key, widget_id in ids.items():
        state = by_id.get(widget_id) or states.widgets.add(id=widget_id)
        value = values[key]
        if isinstance(value, list):
            state.string_array_value.data[:] = value
        else:
            state.string_value = value
    return at._run(states)


# Streamlit's [auth] section; its values are not used by AppTest, which takes the identity from
# ``AppTest.user`` (what ``st.user`` returns), but its presence turns single sign-on on.
SSO_SECRETS = {"auth": {"redirect_uri": "http://127.0.0.1:8501/oauth2callback",
                        "cookie_secret": "not-a-secret", "client_id": "pslake",
                        "client_secret": "not-a-secret",
                        "server_metadata_url": "http://127.0.0.1:1/.well-known/openid-configuration"}}


def identity(email: str, issued: float | None = None, lifetime: float = 300,
             **claims: Any) -> dict[str, Any]:
    """What ``st.user`` holds after the provider signed ``email`` in: the ID token's claims."""
    issued = time.time() if issued is None else issued
    return {"is_logged_in": True, "email": email, "iat": int(issued),
            "exp": int(issued + lifetime), "iss": "http://127.0.0.1:1", "sub": email,
            **claims}


def sso_app(user: dict[str, Any]) -> AppTest:
    """The app with single sign-on configured and ``user`` as what the provider vouched for."""
    at = AppTest.from_file(str(ENTRYPOINT), default_timeout=60)
    at.secrets = copy.deepcopy(SSO_SECRETS)
    at.user = user
    return at


# what counts as data on a page: any table, tile, chart or download, and the filters (they list
# the user's legal entities)
DATA_ELEMENTS = {"dataframe", "table", "metric", "download_button", "vega_lite_chart",
                 "plotly_chart", "json", "arrow_data_frame", "arrow_table",
                 "arrow_vega_lite_chart"}


def elements(at: AppTest) -> list[Any]:
    """Every element of the latest run, main area and sidebar."""
    return [node for node in at._tree if not isinstance(node, Block)]


def text_of(node: Any) -> str:
    """The words an element shows: its value (when text), label and body."""
    parts = []
    with contextlib.suppress(Exception):  # some elements have no value to read
        value = node.value
        if isinstance(value, str):
            parts.append(value)
    for name in ("label", "body", "help", "placeholder"):
        part = getattr(node.proto, name, "")
        if isinstance(part, str) and part:
            parts.append(part)
    return " ".join(parts)


def data_shown(at: AppTest, names: list[str]) -> list[str]:
    """What of the firm's data the latest run shows: its data elements, the filters, and any
    text naming a legal entity in ``names`` (empty when nothing is shown)."""
    shown = []
    for node in elements(at):
        kind = getattr(node, "type", type(node).__name__)
        if kind in DATA_ELEMENTS:
            shown.append(kind)
        elif isinstance(node, Widget) and (node.key or "").startswith("filter_"):
            shown.append(f"filter {node.key}")
        else:
            text = text_of(node)
            shown += [f"{kind} naming {name}" for name in names if name in text]
    return shown
