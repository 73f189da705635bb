"""Shared fixtures: a generated small firm, and the sandbox serving it on a free port."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.firm.generate import generate
from sandbox.server.app import SandboxThread

AS_OF = dt.date(2026, 11, 16)


@pytest.fixture(scope="session")
def small_firm_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small firm generated once per session; copy it before writing to it."""
    store = tmp_path_factory.mktemp("small-firm") / "sandbox"
    generate(store, size="small", seed=11, as_of=AS_OF)
    return store


@pytest.fixture
def small_firm(small_firm_template: Path, tmp_path: Path) -> Path:
    """A private copy of the small firm that a test may change."""
    store = tmp_path / "sandbox"
    shutil.copytree(small_firm_template, store)
    return store


@pytest.fixture
def served_firm(small_firm: Path) -> Iterator[SandboxThread]:
    """The sandbox serving a private copy of the small firm."""
    with SandboxThread(small_firm) as server:
        yield server
