"""Reverse-sync fixtures: the small firm's warehouse (built once) and a private, served copy of
its CRM per test, whose write log and request counters tell what the sync did."""

from __future__ import annotations

import collections
import contextlib
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from pslake import transform
from reverse_sync.policy import Policy
from reverse_sync.runner import Sync
from sandbox.server.app import SandboxThread
from sandbox.store import property_writes
from tests.conftest import BuiltFirm

# No waiting between retries in tests: backoff is measured, not slept through.
TEST_POLICY = Policy(retry_backoff_minutes=(0,), retry_max_attempts=3)


@dataclass
class Crm:
    """A data folder (its own journal, the shared warehouse) and its served CRM."""

    data_dir: Path
    store: Path
    server: SandboxThread

    def sync(self, policy: Policy = TEST_POLICY) -> Sync:
        """A sync over this data folder (use as a context manager)."""
        return Sync(self.data_dir, policy=policy)

    @property
    def token(self) -> str:
        return str(self.server.state.credentials["hubspot"]["access_token"])

    def url(self, path: str) -> str:
        return f"{self.server.root}/hubspot{path}"

    def write_calls(self) -> int:
        """Write calls the CRM has served (batch update / upsert / archive, single PATCH)."""
        endpoints = self.server.state.stats.requests["hubspot"]
        return sum(n for key, n in endpoints.items()
                   if key.startswith("PATCH ") or key.endswith(("/batch/update", "/batch/upsert",
                                                                 "/batch/archive")))

    def writes(self) -> list[dict[str, Any]]:
        """Every property write the CRM logged."""
        return property_writes(self.store)

    def duplicate_writes(self) -> list[tuple[Any, ...]]:
        """(object, record, property, value) written more than once."""
        counts = collections.Counter((w["object_type"], w["record_id"], w["property"], w["value"])
                                     for w in self.writes())
        return [key for key, n in counts.items() if n > 1]

    def resent_records(self, exclude: set[str] | None = None) -> list[tuple[str, str]]:
        """(object, record) pslake wrote in more than one call (a call: one correlation id and
        time in the write log), leaving out the ``exclude`` record ids."""
        calls: dict[tuple[str, str], set[tuple[str, str]]] = collections.defaultdict(set)
        for w in self.writes():
            if w["correlation_id"] and str(w["record_id"]) not in (exclude or set()):
                calls[(w["object_type"], str(w["record_id"]))].add(
                    (w["correlation_id"], w["written_at"]))
        return sorted(key for key, seen in calls.items() if len(seen) > 1)

    def live_records(self, object_type: str, unique_property: str, values: list[str]
                     ) -> dict[str, int]:
        """Live (not archived) records per value of a unique property, from the CRM's store."""
        uri = f"{(self.store / 'hubspot.sqlite').resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            rows = db.execute(
                "select cast(json_extract(properties, ?) as text) as v, count(*) from objects "
                f"where object_type = ? and archived = 0 and v in ({', '.join('?' * len(values))}) "
                "group by v", [f"$.{unique_property}", object_type, *values]).fetchall()
        return {str(v): int(n) for v, n in rows}

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def archive(self, object_name: str, record_id: str) -> None:
        """Someone deletes (archives) a record in the CRM."""
        response = requests.delete(self.url(f"/crm/v3/objects/{object_name}/{record_id}"),
                                   headers=self._auth(), timeout=10)
        assert response.status_code == 204, response.text

    def create(self, object_name: str, values: dict[str, str]) -> str:
        """Someone creates a record by hand in the CRM; returns its id."""
        response = requests.post(self.url(f"/crm/v3/objects/{object_name}"),
                                 json={"properties": values}, headers=self._auth(), timeout=10)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def person_edits(self, object_name: str, record_id: str, values: dict[str, str]) -> None:
        """Someone changes a record in the CRM's UI (a single PATCH, no correlation id)."""
        response = requests.patch(self.url(f"/crm/v3/objects/{object_name}/{record_id}"),
                                  json={"properties": values}, timeout=10,
                                  headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 200, response.text

    def read(self, object_name: str, record_id: str, names: list[str],
             id_property: str | None = None) -> dict[str, str | None]:
        """A record's current values, as the CRM's API returns them."""
        params: dict[str, Any] = {"properties": ",".join(names)}
        if id_property:
            params["idProperty"] = id_property
        response = requests.get(self.url(f"/crm/v3/objects/{object_name}/{record_id}"),
                                params=params, timeout=10,
                                headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 200, response.text
        props = response.json()["properties"]
        return {name: props.get(name) for name in names}

    def faults(self, **config: Any) -> None:
        """Switch sandbox faults on (HubSpot only)."""
        self.server.state.faults.update({"vendors": ["hubspot"], **config})


def private_crm(firm: BuiltFirm, data_dir: Path) -> Path:
    """A data folder with a private copy of a built firm's CRM store and its warehouse linked."""
    store = data_dir / "sandbox"
    shutil.copytree(firm.firm, store, ignore=shutil.ignore_patterns("endpoints.json"))
    (data_dir / transform.WAREHOUSE_FILE).symlink_to(firm.warehouse)
    return store


@pytest.fixture
def crm(small_warehouse: BuiltFirm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> Iterator[Crm]:
    """The small firm's CRM, served privately for one test, with the built warehouse."""
    data_dir = tmp_path / "data"
    store = private_crm(small_warehouse, data_dir)
    for name in ("BASE_URL", "ACCESS_TOKEN"):
        monkeypatch.delenv(f"SOURCES__HUBSPOT__{name}", raising=False)
    monkeypatch.setenv("PSLAKE_ACTOR", "tester")
    with SandboxThread(store) as server:
        yield Crm(data_dir, store, server)
