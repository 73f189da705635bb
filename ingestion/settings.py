"""Where each vendor is and how to authenticate: dlt's configuration first, then the sandbox.

Settings use dlt's names, so they come from the environment (``SOURCES__HUBSPOT__ACCESS_TOKEN``)
or from ``.dlt/config.toml`` / ``.dlt/secrets.toml`` (``[sources.hubspot] access_token = ...``).
A vendor with nothing configured falls back to the local sandbox described by
``DATA_DIR/sandbox/endpoints.json`` (written by ``pslake sandbox serve``). The sandbox is read
as a plain file: ingestion never imports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dlt

from pslake import settings
from pslake.errors import PslakeError

Vendor = Literal["hubspot", "harvest", "netsuite"]
VENDORS: tuple[Vendor, ...] = ("hubspot", "harvest", "netsuite")
NEEDS_ACCOUNT: frozenset[str] = frozenset({"harvest", "netsuite"})


@dataclass(frozen=True, slots=True)
class VendorSettings:
    """A vendor's base URL, token and (Harvest, NetSuite) account id, and where they came from."""

    vendor: Vendor
    base_url: str
    access_token: str
    account_id: str | None
    origin: Literal["config", "sandbox"]

    def __repr__(self) -> str:
        # never show the token, even in a debugger or a log of the object
        return (f"VendorSettings(vendor={self.vendor!r}, base_url={self.base_url!r}, "
                f"account_id={self.account_id!r}, origin={self.origin!r})")


def _setting(vendor: Vendor, name: str, secret: bool) -> str | None:
    key = f"sources.{vendor}.{name}"
    value: Any = dlt.secrets.get(key) if secret else dlt.config.get(key)
    if value is None and not secret:
        value = dlt.secrets.get(key)  # a base URL put in secrets.toml still counts
    return str(value) if value not in (None, "") else None


def env_name(vendor: Vendor, name: str) -> str:
    """The environment variable dlt reads for a vendor setting."""
    return f"SOURCES__{vendor.upper()}__{name.upper()}"


def vendor_settings(vendor: Vendor, data_dir: Path | None = None) -> VendorSettings:
    """Resolve one vendor's settings.

    Args:
        vendor: ``hubspot``, ``harvest`` or ``netsuite``.
        data_dir: The data folder whose ``sandbox/endpoints.json`` is the fallback.

    Raises:
        PslakeError: Partly configured, or nothing configured and no sandbox running; the
            message names the settings to set and never contains a secret.
    """
    base_url = _setting(vendor, "base_url", secret=False)
    token = _setting(vendor, "access_token", secret=True)
    account = _setting(vendor, "account_id", secret=False)
    if base_url or token:
        missing = [name for name, value in (("base_url", base_url), ("access_token", token))
                   if not value]
        if vendor in NEEDS_ACCOUNT and not account:
            missing.append("account_id")
        if missing:
            names = ", ".join(env_name(vendor, m) for m in missing)
            raise PslakeError(f"{vendor}: partly configured; also set {names} "
                              "(or [sources." + vendor + "] in .dlt/secrets.toml)")
        assert base_url is not None and token is not None
        return VendorSettings(vendor, base_url.rstrip("/"), token, account, "config")
    endpoints_file = settings.sandbox_dir(data_dir) / "endpoints.json"
    try:
        entry = json.loads(endpoints_file.read_text())[vendor]
    except FileNotFoundError:
        raise PslakeError(
            f"{vendor}: not configured and no sandbox at {endpoints_file}; set "
            f"{env_name(vendor, 'base_url')} and {env_name(vendor, 'access_token')}, or start "
            "the sandbox with `pslake sandbox serve`"
        ) from None
    except (KeyError, ValueError):
        raise PslakeError(f"{vendor}: {endpoints_file} is not a sandbox endpoints file; "
                          "restart `pslake sandbox serve`") from None
    return VendorSettings(vendor, str(entry["base_url"]).rstrip("/"), str(entry["access_token"]),
                          entry.get("account_id"), "sandbox")
