"""Volume: ten thousand changes go out in at most a hundred write calls (batches of 100)."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from reverse_sync.runner import Sync
from sandbox.server.app import SandboxThread
from tests.conftest import BuiltFirm
from tests.reverse_sync.conftest import TEST_POLICY, Crm, private_crm

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLEARED = ("invoice_number", "invoice_status", "invoice_amount", "amount_paid", "amount_due",
           "currency", "invoice_date", "due_date")


def test_ten_thousand_changes_go_out_in_at_most_a_hundred_write_calls(
        medium_warehouse: BuiltFirm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "data"
    store = private_crm(medium_warehouse, data_dir)
    for name in ("BASE_URL", "ACCESS_TOKEN"):
        monkeypatch.delenv(f"SOURCES__HUBSPOT__{name}", raising=False)
    # a bad import emptied the ERP fields of every invoice mirror in the CRM
    with sqlite3.connect(store / "hubspot.sqlite") as db:
        paths = ", ".join(f"'$.{name}'" for name in CLEARED)
        cleared = db.execute(f"update objects set properties = json_remove(properties, {paths}) "
                             "where object_type = 'erp_invoices' and archived = 0").rowcount
    assert cleared * len(CLEARED) >= 10_000
    # closed-period invoices would be held for approval; this test is about volume
    policy = dataclasses.replace(TEST_POLICY, hold_in_closed_period=())
    with SandboxThread(store) as server, Sync(data_dir, policy=policy) as sync:
        crm = Crm(data_dir, store, server)
        plan, result = sync.apply()
        assert plan is not None
        applied = sum(1 for p in plan.changes if p.decision == "apply")
        assert applied >= 10_000
        assert result.outcome["written"] == applied
        assert crm.write_calls() <= 100
        assert result.write_calls == crm.write_calls()
        assert crm.duplicate_writes() == []
