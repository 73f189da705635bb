"""``firm.json``: what a store holds (seed, size, as-of date, counts) and its API credentials."""

from __future__ import annotations

import random
import secrets
from pathlib import Path
from typing import Any

import orjson

from sandbox.store import FIRM_FILE


class StoreNotFoundError(FileNotFoundError):
    """The directory holds no generated store."""


def new_credentials(seed: int = 0) -> dict[str, dict[str, str]]:
    """Credentials for the three emulated vendors.

    Tokens are fresh random secrets, never derived from anything; account ids are not secret
    and follow the seed, because the data refers to them (a Harvest time entry's external
    reference names the NetSuite account), so the same seed gives the same data.
    """
    accounts = random.Random(seed)
    return {
        "hubspot": {"access_token": f"pat-na1-{secrets.token_hex(16)}"},
        "harvest": {
            "access_token": f"{secrets.randbelow(9_000_000) + 1_000_000}.pt."
            f"{secrets.token_urlsafe(24)}",
            "account_id": str(accounts.randrange(100_000, 1_000_000)),
        },
        "netsuite": {
            "access_token": secrets.token_urlsafe(32),
            "account_id": f"{accounts.randrange(1_000_000, 10_000_000)}_SB1",
        },
    }


def load(store_dir: Path) -> dict[str, Any]:
    """Read ``firm.json``.

    Raises:
        StoreNotFoundError: No store was generated in ``store_dir``.
    """
    path = store_dir / FIRM_FILE
    if not path.exists():
        raise StoreNotFoundError(
            f"sandbox: no generated firm in {store_dir}; "
            f"run `pslake sandbox generate --dir {store_dir}`"
        )
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def save(store_dir: Path, data: dict[str, Any]) -> None:
    """Write ``firm.json`` readable by its owner only (it holds the sandbox tokens)."""
    path = store_dir / FIRM_FILE
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    path.chmod(0o600)
