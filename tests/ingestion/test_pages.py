"""The fast path on its own: raw pages -> DuckDB -> Arrow, with the contract and quarantine."""

from __future__ import annotations

import decimal
import json
from pathlib import Path
from typing import Any

import pytest

from ingestion.pages import Batch, Contract, PageBatch, scan_ids
from pslake.errors import PslakeError

pytestmark = pytest.mark.unit

CONTRACT = Contract(
    table="time_entries", primary_key=("id",), cursor="updated_at",
    columns={"id": "BIGINT", "updated_at": "TIMESTAMPTZ", "spent_date": "DATE",
             "hours": "DECIMAL(12,4)", "user__id": "BIGINT", "invoice__id": "BIGINT"},
)


def _entry(i: int, **over: Any) -> dict[str, Any]:
    record = {"id": i, "spent_date": "2026-11-02", "hours": 1.25,
              "updated_at": "2026-11-03T10:00:00Z", "user": {"id": 7, "name": "Ada"},
              "project": {"id": 9, "code": "P-1"}, "invoice": None, "links": [1, 2]}
    record.update(over)
    return record


def _read(tmp_path: Path, pages: list[list[dict[str, Any]]], contract: Contract = CONTRACT,
          selector: str = "time_entries") -> Batch:
    with PageBatch(tmp_path, contract, selector, max_pages=len(pages) + 1) as batch:
        for records in pages:
            batch.add(json.dumps({selector: records, "links": {"next": None}}).encode())
        return batch.read()


def test_nested_objects_are_flattened_and_typed_by_the_contract(tmp_path):
    out = _read(tmp_path, [[_entry(1), _entry(2, hours=7)]])
    assert (out.received, out.n_rows, out.n_quarantined) == (2, 2, 0)
    rows = out.rows.to_pylist()
    assert rows[0]["user__id"] == 7 and rows[0]["project__code"] == "P-1"
    assert rows[1]["hours"] == decimal.Decimal("7.0000")
    assert str(out.rows.schema.field("spent_date").type) == "date32[day]"
    assert str(out.rows.schema.field("updated_at").type) == "timestamp[us, tz=UTC]"
    assert out.rows.schema.field("id").nullable is False
    # the contract names invoice__id: it is there (null) though no page had an invoice object
    assert rows[0]["invoice__id"] is None
    assert rows[0]["links"] == "[1,2]"  # lists are kept as JSON text
    assert out.max_key == 2


def test_a_record_that_breaks_the_contract_is_quarantined_with_the_reason(tmp_path):
    out = _read(tmp_path, [[_entry(1), _entry(2, hours="7,5h"), _entry(3, spent_date="soon"),
                            _entry(None)]])
    assert (out.received, out.n_rows, out.n_quarantined) == (4, 1, 3)
    q = {r["reason"]: r for r in out.quarantined.to_pylist()}
    assert set(q) == {"hours: expected decimal(12,4), got 7,5h",
                      "spent_date: expected date, got soon", "missing primary key id"}
    bad = q["hours: expected decimal(12,4), got 7,5h"]
    assert bad["table_name"] == "time_entries" and bad["id"] == 2
    assert json.loads(bad["record"])["hours"] == "7,5h"  # the record as received
    assert bad["updated_at"] is not None  # the cursor travels with it


def test_a_bad_value_past_duckdbs_type_sample_still_only_quarantines_its_record(tmp_path):
    pages = [[_entry(p * 10 + i) for i in range(10)] for p in range(40)]
    pages[37][4]["hours"] = "eight"
    out = _read(tmp_path, pages)
    assert (out.received, out.n_rows, out.n_quarantined) == (400, 399, 1)
    assert out.quarantined.to_pylist()[0]["id"] == 374


def test_a_new_field_becomes_a_column_and_a_field_null_everywhere_is_left_out(tmp_path):
    out = _read(tmp_path, [[_entry(1, approval_status="approved", timer=None)]])
    names = out.rows.schema.names
    assert "approval_status" in names and "timer" not in names


def test_formats_checks_and_unwrap(tmp_path):
    contract = Contract(table="deals", primary_key=("id",),
                        columns={"id": "BIGINT", "closedate": "DATE"},
                        formats={"closedate": "%m/%d/%Y"}, checks={"amount": "DOUBLE"},
                        unwrap="properties")
    records = [{"id": "1", "properties": {"amount": "100.5", "closedate": "11/3/2026"}},
               {"id": "2", "properties": {"amount": "12k USD", "closedate": "11/4/2026"}}]
    out = _read(tmp_path, [records], contract, selector="results")
    assert out.rows.to_pylist()[0]["amount"] == "100.5"  # checked, kept as the vendor's text
    assert str(out.rows.to_pylist()[0]["closedate"]) == "2026-11-03"
    assert out.quarantined.to_pylist()[0]["reason"] == "amount: expected double, got 12k USD"


def test_scan_ids_counts_records_without_an_id(tmp_path):
    pages = [json.dumps({"users": [{"id": 1}, {"id": 2}, {"id": None}]}).encode(),
             json.dumps({"users": [{"id": 3}]}).encode()]
    assert scan_ids(pages, tmp_path, "users", batch_pages=1) == ({1, 2, 3}, 1)


@pytest.mark.parametrize("bad_value", [False, True], ids=["one-read", "page-by-page"])
def test_a_field_seen_on_one_middle_page_only_is_kept(tmp_path, bad_value):
    # 40 pages of 1,000: past DuckDB's default sample of 32 files and 20,480 records
    pages = [[_entry(p * 1000 + i) for i in range(1000)] for p in range(40)]
    pages[25][7]["invoice"] = {"id": 88, "number": "INV-88"}  # null everywhere else
    pages[33][1]["memo"] = "sparse"  # a key only one record has (SuiteQL omits nulls)
    if bad_value:
        pages[36][4]["hours"] = "eight"
    out = _read(tmp_path, pages)
    assert (out.received, out.n_rows, out.n_quarantined) == (40_000, 40_000 - bad_value,
                                                             bad_value)
    rows = {r["id"]: r for r in out.rows.to_pylist()}
    assert rows[25_007]["invoice__id"] == 88 and rows[25_007]["invoice__number"] == "INV-88"
    assert rows[33_001]["memo"] == "sparse" and rows[5]["memo"] is None


def test_quarantined_rows_do_not_divert_the_later_batches_of_a_resource(tmp_path):
    import dlt

    from ingestion.summary import SourceTally, pages_to_items

    tally = SourceTally("harvest")
    pages = [json.dumps({"time_entries": [_entry(i * 2 + 1, hours="x" if i == 0 else 1),
                                          _entry(i * 2 + 2)]}).encode() for i in range(4)]

    @dlt.resource(name="time_entries", primary_key="id", write_disposition="merge")
    def entries():  # type: ignore[no-untyped-def]
        with PageBatch(tmp_path / "landing", CONTRACT, "time_entries", max_pages=1) as batch:
            yield from pages_to_items(pages, batch, tally.table("time_entries"))

    pipeline = dlt.pipeline(pipeline_name="divert", pipelines_dir=str(tmp_path / "dlt"),
                            destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
                            dataset_name="raw_test")
    pipeline.run(entries(), loader_file_format="parquet").raise_on_failed_jobs()
    counts = pipeline.last_trace.last_normalize_info.row_counts
    assert (counts["time_entries"], counts["quarantine"]) == (7, 1)


def test_records_changed_after_the_run_began_are_deferred_not_loaded(tmp_path):
    pages = [[_entry(1, updated_at="2026-11-03T10:00:00Z"),
              _entry(2, updated_at="2026-11-03T10:00:05Z"),
              _entry(3, updated_at="2026-11-03T10:00:06Z", hours="bad")]]
    with PageBatch(tmp_path, CONTRACT, "time_entries") as batch:
        batch.until = "2026-11-03T10:00:04+00:00"
        for records in pages:
            batch.add(json.dumps({"time_entries": records}).encode())
        out = batch.read()
    assert (out.received, out.n_rows, out.n_quarantined, out.deferred) == (3, 1, 0, 2)
    assert out.rows.to_pylist()[0]["id"] == 1


def _read_raw(tmp_path: Path, records: list[bytes], selector: str = "time_entries") -> Batch:
    """One page made of record texts as given (bytes JSON cannot express included)."""
    with PageBatch(tmp_path, CONTRACT, selector, max_pages=2) as batch:
        batch.add(b'{"' + selector.encode() + b'":[' + b",".join(records)
                  + b'],"links":{"next":null}}')
        return batch.read()


def _raw(i: int) -> bytes:
    return json.dumps(_entry(i, notes=f"secret note {i}")).encode()


@pytest.mark.parametrize(
    ("element", "reason"),
    [(b"42", "not a JSON object"), (b'"text"', "not a JSON object"),
     (b"null", "not a JSON object"), (b"[1, 2]", "not a JSON object")],
    ids=["number", "string", "null", "list"],
)
def test_an_element_that_is_not_an_object_is_quarantined_and_the_others_load(
        tmp_path, element, reason):
    out = _read_raw(tmp_path, [_raw(1), element, _raw(3)])
    assert (out.received, out.n_rows, out.n_quarantined) == (3, 2, 1)
    assert [r["id"] for r in out.rows.to_pylist()] == [1, 3]
    assert out.quarantined.to_pylist()[0]["reason"] == reason


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        # bytes that are not UTF-8, and an escaped half of a surrogate pair
        (_raw(2).replace(b"secret note 2", b"bad \xff\xfe bytes"),
         "invalid UTF-8 or a lone surrogate in a string"),
        (_raw(2).replace(b"secret note 2", b"\\ud800 alone"),
         "invalid UTF-8 or a lone surrogate in a string"),
        (_raw(2)[:-1] + b', "hours": "twice"}', "duplicate key 'hours'"),
        (_raw(2)[:-1] + b', "deep": ' + b'{"a":' * 200 + b"1" + b"}" * 200 + b"}",
         "nested deeper than 100 levels"),
    ],
    ids=["invalid-utf8", "lone-surrogate", "duplicate-key", "deep-nesting"],
)
def test_a_record_duckdb_cannot_read_is_quarantined_on_its_own(tmp_path, bad, reason):
    out = _read_raw(tmp_path, [_raw(1), bad, _raw(3)])
    assert (out.received, out.n_rows, out.n_quarantined) == (3, 2, 1)
    held = out.quarantined.to_pylist()[0]
    assert (held["id"], held["reason"], held["table_name"]) == (2, reason, "time_entries")
    assert json.loads(held["record"])["id"] == 2  # the record, as near as JSON allows


def test_a_page_that_is_no_json_stops_the_run_in_words_without_its_data(tmp_path):
    with pytest.raises(PslakeError, match=r"^time_entries: a page from the vendor is not valid "
                       r"JSON \(unexpected character in record 2\); nothing of this run is "
                       r"loaded, and the next run reads the page again$") as raised:
        _read_raw(tmp_path, [_raw(1), _raw(2)[:40]])
    assert "secret note" not in str(raised.value) and "Ada" not in str(raised.value)
