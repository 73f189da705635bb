"""What the dashboard says when it cannot show figures: no snapshot, a snapshot missing a mart or
dimension, filters that match no rows. Always a sentence (and the command to run), never a
traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.conftest import UK, Dashboard, derived_dashboard, signed_in

pytestmark = pytest.mark.integration

UK_ID = ("(select legal_entity_id from canonical.dim_legal_entities "
         f"where legal_entity_name = '{UK}')")


def test_without_a_snapshot_the_app_says_which_command_to_run(
        app_env: Dashboard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    (empty / "app").mkdir(parents=True)
    (empty / "app" / "users.toml").write_text(app_env.users.read_text())
    monkeypatch.setenv("PSLAKE_DATA_DIR", str(empty))
    at = signed_in("ceo")
    assert not at.exception
    assert any("pslake transform" in e.value for e in at.error)


@pytest.mark.parametrize(
    ("missing", "page"),
    [
        ("marts.mart_margin_by_engagement", "margin"),   # a page's mart
        ("marts.mart_unbilled_time", "wip"),             # a mart a second query also reads
        ("canonical.dim_legal_entities", None),          # what the filters need: every page
    ],
    ids=["margin-mart", "unbilled-mart", "entities-dimension"],
)
def test_a_snapshot_missing_a_table_names_it_and_the_command_that_rebuilds_it(
        app_env: Dashboard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        missing: str, page: str | None) -> None:
    derived = derived_dashboard(app_env, tmp_path / "data", f"drop table {missing}")
    monkeypatch.setenv("PSLAKE_DATA_DIR", str(derived.data_dir))
    at = signed_in("ceo")
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert missing.split(".")[1] in errors[0]
    assert "run `pslake transform`" in errors[0]
    assert "Traceback" not in errors[0]


@pytest.mark.parametrize(
    ("user", "page", "statements", "explained"),
    [
        # no project of the entity has revenue or cost this month
        ("uk_lead", "margin",
         [f"delete from marts.mart_margin_by_engagement where legal_entity_id = {UK_ID}"],
         ["No revenue or cost for this period and these entities"]),
        # nobody of the entity has capacity this month
        ("uk_lead", "utilization",
         [f"delete from marts.mart_utilization_by_resource_month where legal_entity_id = {UK_ID}"],
         ["No capacity or time for this period, entity and practice"]),
        # neither WIP nor unbilled time: both parts of the page say so
        ("uk_lead", "wip",
         [f"delete from marts.mart_wip_by_engagement where legal_entity_id = {UK_ID}",
          f"delete from marts.mart_unbilled_time where legal_entity_id = {UK_ID}"],
         ["No WIP at the end of", "No unbilled approved time for these entities"]),
        # no open exception
        ("uk_lead", "reconciliation", ["delete from marts.rec_exceptions"],
         ["No open exceptions for these entities"]),
        # an earlier month, before any open exception was first seen
        ("ceo", "reconciliation@1",
         ["update marts.rec_exceptions set first_seen_at = timestamptz '2100-01-01 00:00:00+00'"],
         ["No exception open today had been seen by the end of"]),
        # the reverse sync never ran (the small firm's own snapshot)
        ("ceo", "reverse_sync", [],
         ["No sync run yet", "Nothing waiting: no change needs approval"]),
    ],
    ids=["margin", "utilization", "wip", "reconciliation", "reconciliation-earlier-month",
         "reverse-sync"],
)
def test_a_filter_matching_no_rows_is_explained_in_words(
        app_env: Dashboard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user: str,
        page: str, statements: list[str], explained: list[str]) -> None:
    derived = derived_dashboard(app_env, tmp_path / "data", *statements)
    monkeypatch.setenv("PSLAKE_DATA_DIR", str(derived.data_dir))
    at = signed_in(user)
    page, _, months_back = page.partition("@")  # "@n": the n-th month before the latest
    if months_back:
        at.selectbox(key="filter_month").select_index(int(months_back)).run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error
    said = [e.value for e in [*at.info, *at.success]]
    for words in explained:
        assert any(s.startswith(words) for s in said), (words, said)
    assert not at.dataframe
