"""Settings that tie the parts together: where the data lives."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "PSLAKE_DATA_DIR"
DEFAULT_DATA_DIR = Path("data")
SANDBOX_SUBDIR = "sandbox"
SANDBOX_HOST = "127.0.0.1"
SANDBOX_PORT = 8765


def data_dir(override: Path | None = None) -> Path:
    """The data folder: ``--data-dir``, else ``$PSLAKE_DATA_DIR``, else ``data/``."""
    if override is not None:
        return override
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else DEFAULT_DATA_DIR


def sandbox_dir(data: Path | None = None) -> Path:
    """Where the sandbox store lives by default: ``DATA_DIR/sandbox``."""
    return data_dir(data) / SANDBOX_SUBDIR
