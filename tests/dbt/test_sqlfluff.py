"""The dbt project's SQL passes SQLFluff (STYLE rule 12; config in dbt_project/.sqlfluff)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pslake import transform

pytestmark = [pytest.mark.unit, pytest.mark.slow]  # slow: 85 models took 38 s


def test_every_model_and_singular_test_passes_sqlfluff():
    # A subprocess: SQLFluff lints in two worker processes (dbt_project/.sqlfluff `processes`).
    project = transform.project_dir()
    expected = {str(p.relative_to(project)) for folder in ("models", "tests/singular", "analyses")
                for p in (project / folder).rglob("*.sql")}
    result = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", ".", "--format", "json", "--nocolor",
         "--disable-progress-bar"],
        cwd=project, capture_output=True, text=True, timeout=300)
    files = json.loads(result.stdout or "[]")
    linted = {str(Path(f["filepath"])) for f in files}
    assert expected <= linted, f"not linted: {sorted(expected - linted)}"
    problems = [f"{f['filepath']}:{v['start_line_no']}:{v['start_line_pos']}: {v['code']} "
                f"{v['description']}" for f in files for v in f["violations"]]
    assert not problems and result.returncode == 0, (
        "SQLFluff found problems (fix with `cd dbt_project && sqlfluff fix <file>`):\n"
        + "\n".join(problems) + result.stderr)
