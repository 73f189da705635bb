"""Harvest v2 as a dlt source (``raw_harvest``): reference tables, incremental on ``updated_at``.

Each resource follows Harvest's ``links.next`` with dlt's REST client, asks only for records
updated since the last load (``updated_since``), and merges on Harvest's ``id``. The cursor is
dlt's incremental state, which advances only when a load completes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
from dlt.sources import DltResource
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator

from ingestion.harvest.settings import EPOCH, PER_PAGE, REFERENCE_RESOURCES, USER_AGENT


def _client(base_url: str, access_token: str, account_id: str) -> RESTClient:
    return RESTClient(
        base_url=f"{base_url.rstrip('/')}/v2",
        headers={"Harvest-Account-Id": account_id, "User-Agent": USER_AGENT},
        auth=BearerTokenAuth(access_token),
        paginator=JSONLinkPaginator(next_url_path="links.next"),
    )


def _reference(client: RESTClient, name: str) -> DltResource:
    @dlt.resource(name=name, primary_key="id", write_disposition="merge")
    def records(
        updated_at: dlt.sources.incremental[str] = dlt.sources.incremental(
            "updated_at", initial_value=EPOCH
        ),
    ) -> Iterator[list[dict[str, Any]]]:
        params = {"per_page": PER_PAGE, "updated_since": updated_at.start_value}
        yield from client.paginate(name, params=params, data_selector=name)

    return records


@dlt.source(name="harvest")
def harvest_source(
    base_url: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    account_id: str = dlt.config.value,
) -> list[DltResource]:
    """The Harvest resources pslake reads.

    Args:
        base_url: ``https://api.harvestapp.com`` or the sandbox's ``/harvest`` URL.
        access_token: A personal access token or OAuth token.
        account_id: The Harvest account id (sent as ``Harvest-Account-Id``).
    """
    client = _client(base_url, access_token, account_id)
    return [_reference(client, name) for name in REFERENCE_RESOURCES]
