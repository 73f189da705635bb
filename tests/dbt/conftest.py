"""dbt fixtures: throw-away dbt projects (the built firms are in ``tests/conftest.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pslake import transform

PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "macros", "tests/generic")


def empty_project(folder: Path) -> Path:
    """A throw-away dbt project in ``folder/dbt_project``: our profile, macros, generic tests, and
    no models (a test adds the ones it needs)."""
    project = folder / "dbt_project"
    (project / "models").mkdir(parents=True)
    for name in PROJECT_FILES:
        source = transform.project_dir() / name
        if source.is_dir():
            shutil.copytree(source, project / name)
        else:
            shutil.copy2(source, project / name)
    return project


@pytest.fixture
def probe_project(tmp_path: Path) -> Path:
    """An empty throw-away dbt project for one test."""
    return empty_project(tmp_path)
