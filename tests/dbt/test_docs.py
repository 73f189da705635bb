"""`pslake docs` on the small firm: the catalog and manifest describe every mart and column, the
site is served over HTTP, and the one-line errors."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pslake import settings, transform
from pslake.cli import app
from pslake.docs_cli import SITE_FILES, DocsServer, make_server
from pslake.errors import PslakeError
from tests.conftest import BuiltFirm, held_by_another_process


@pytest.fixture(autouse=True)
def _restore_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--data-dir` sets $PSLAKE_DATA_DIR in this process; put it back after each test."""
    monkeypatch.setenv(settings.DATA_DIR_ENV, os.environ.get(settings.DATA_DIR_ENV, ""))


def docs(data_dir: Path, *args: str):
    return CliRunner().invoke(app, ["--data-dir", str(data_dir), "docs", *args])


@pytest.fixture(scope="module")
def generated(small_warehouse: BuiltFirm, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, str]:
    """`pslake docs --no-serve` run once on a copy of the small firm: its data folder and output."""
    data_dir = small_warehouse.copy_to(tmp_path_factory.mktemp("docs") / "data")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(settings.DATA_DIR_ENV, str(data_dir))
        out = docs(data_dir, "--no-serve")
    assert out.exit_code == 0, out.output
    return data_dir, out.stdout


@pytest.fixture(scope="module")
def site(generated: tuple[Path, str]) -> Path:
    return generated[0] / "dbt" / "target"


@pytest.fixture
def warehouse_columns(generated: tuple[Path, str]) -> dict[str, list[tuple[str, str]]]:
    """Each table of schema marts in the warehouse: its columns and types, in order."""
    with duckdb.connect(str(generated[0] / transform.WAREHOUSE_FILE), read_only=True) as con:
        rows = con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'marts' order by table_name, ordinal_position").fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        tables.setdefault(table, []).append((column, data_type))
    return tables


def _load(site: Path, name: str) -> dict:
    return json.loads((site / name).read_text())


@pytest.mark.integration
def test_no_serve_writes_the_site_and_prints_the_page_that_opens_from_disk(generated, site):
    data_dir, printed = generated
    manifest = _load(site, "manifest.json")
    models = sum(1 for n in manifest["nodes"].values() if n["resource_type"] == "model")
    lines = printed.splitlines()[-2:]
    assert re.fullmatch(rf"docs: {models} models and {len(manifest['sources'])} sources "
                        r"described, \d+ tables in the catalog, in [\d.]+ s", lines[0]), lines
    assert lines[1] == (f"docs: {(data_dir / 'dbt' / 'target').resolve() / 'static_index.html'} "
                        "(opens from disk; `pslake docs` serves the site)")
    for name in SITE_FILES:
        assert (site / name).stat().st_size > 0, name
    static = (site / "static_index.html").read_text()
    assert "mart_unbilled_time" in static  # the manifest is embedded in the static page


@pytest.mark.integration
def test_the_catalog_lists_every_mart_table_with_its_columns(site, warehouse_columns):
    catalog = _load(site, "catalog.json")
    listed = {node["metadata"]["name"]: [(c["name"], c["type"]) for c in
                                         sorted(node["columns"].values(),
                                                key=lambda c: c["index"])]
              for node in catalog["nodes"].values() if node["metadata"]["schema"] == "marts"}
    assert "rec_exceptions" in listed and "mart_exec_kpis_monthly" in listed
    assert listed == warehouse_columns


@pytest.mark.integration
def test_every_mart_and_every_mart_column_is_described_in_the_manifest(site,
                                                                       warehouse_columns):
    manifest = _load(site, "manifest.json")
    marts = {node["name"]: node for node in manifest["nodes"].values()
             if node["resource_type"] == "model" and node["schema"] == "marts"
             and not node["name"].startswith("int_")}  # intermediate: not published
    assert set(marts) == {name for name in warehouse_columns if not name.startswith("int_")}
    undescribed = [name for name, node in marts.items() if not node["description"].strip()]
    assert not undescribed
    for name, node in sorted(marts.items()):
        documented = {column["name"]: column["description"] for column in
                      node["columns"].values()}
        assert set(documented) == {column for column, _ in warehouse_columns[name]}, name
        blank = [column for column, text in documented.items() if not text.strip()]
        assert not blank, f"{name}: columns without a description: {blank}"


@pytest.fixture
def served(site: Path) -> Iterator[DocsServer]:
    server = make_server(site, "127.0.0.1", 0)  # a free port
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


@pytest.mark.integration
def test_the_served_site_answers_the_page_and_its_two_json_files(served, site):
    assert served.url == f"http://127.0.0.1:{served.server_port}/"
    status, page = _get(served.url + "index.html")
    assert status == 200 and page == (site / "index.html").read_bytes()
    assert b"<html" in page.lower()
    assert _get(served.url) == (200, page)
    for name in ("manifest.json", "catalog.json"):
        status, body = _get(f"{served.url}{name}?cb=1700000000")  # the page's cache buster
        assert status == 200, name
        assert json.loads(body) == _load(site, name)
    assert "model.pslake.rec_exceptions" in json.loads(_get(served.url + "catalog.json")[1])[
        "nodes"]


@pytest.mark.integration
@pytest.mark.parametrize("path", ["run_results.json", "compiled/", "../warehouse.duckdb"],
                         ids=["run-results", "compiled-sql", "outside"])
def test_the_server_answers_only_the_site_files(served, path):
    assert _get(served.url + path)[0] == 404


def test_a_port_in_use_is_one_line_saying_how_to_pick_another(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        message = (f"docs: port {port} on 127.0.0.1 is in use; pick another with --port "
                   f"(for example `pslake docs --port {port + 1}`)")
        with pytest.raises(PslakeError, match=f"^{re.escape(message)}$"):
            make_server(tmp_path, "127.0.0.1", port)
        out = docs(tmp_path, "--port", str(port))  # fails before dbt runs: no warehouse needed
    assert out.exit_code == 2
    assert out.stderr == f"error: {message}\n"


def test_docs_without_a_warehouse_is_one_line_saying_to_ingest_then_transform(tmp_path):
    data_dir = (tmp_path / "empty").resolve()
    out = docs(data_dir, "--no-serve")
    assert out.exit_code == 2
    assert out.stderr == (f"error: docs: no warehouse at {data_dir / 'warehouse.duckdb'}; run "
                          "`pslake ingest` then `pslake transform`\n")
    assert "Traceback" not in out.output


def test_a_warehouse_held_by_another_process_is_one_line(tmp_path):
    warehouse = (tmp_path / transform.WAREHOUSE_FILE).resolve()
    duckdb.connect(str(warehouse)).close()
    with held_by_another_process(warehouse, read_only=True) as pid:
        out = docs(tmp_path, "--no-serve")
    assert out.exit_code == 2
    assert out.stderr == (f"error: docs: the warehouse {warehouse} is in use by another process "
                          f"(pid {pid}); wait for it to finish (a running `pslake "
                          "ingest`, `transform` or a SQL client such as `pslake sql "
                          "--warehouse`)\n")
