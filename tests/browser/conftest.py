"""The browser tests use the dashboard data of the AppTest suite (one snapshot per run)."""

from tests.app.conftest import dashboard  # noqa: F401 (a fixture, shared by import)
