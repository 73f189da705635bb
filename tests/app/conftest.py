"""The dashboard's fixtures: the small firm's marts published as a snapshot in a data folder of
the test run, with two users (one who sees every entity, one granted the UK entity only)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.auth import save_user
from pslake.snapshot import publish
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


def make_dashboard(built: BuiltFirm, data_dir: Path) -> Dashboard:
    """Publish ``built``'s marts into ``data_dir`` and write the test users."""
    snap = publish(data_dir, warehouse=built.warehouse)
    users = data_dir / "app" / "users.toml"
    for name, (password, entities) in USERS.items():
        save_user(users, name, password, entities, display_name=name.upper())
    return Dashboard(data_dir=data_dir, snapshot=snap.path, users=users)


@pytest.fixture(scope="session")
def dashboard(small_warehouse: BuiltFirm, tmp_path_factory: pytest.TempPathFactory
              ) -> Dashboard:
    """The small firm's dashboard data (shared: tests only read it)."""
    return make_dashboard(small_warehouse, tmp_path_factory.mktemp("dashboard"))


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


def signed_in(user: str, password: str | None = None) -> AppTest:
    """The app after ``user`` signed in through the form (the overview page shown)."""
    at = AppTest.from_file(str(ENTRYPOINT), default_timeout=60)
    at.run()
    at.text_input(key="auth_username").input(user)
    at.text_input(key="auth_password").input(password or USERS[user][0])
    at.button[0].click().run()
    return at
