"""Process-wide settings read from the environment, each with a default that works out of the box."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "DRAKEWELL_DATA_DIR"
DEFAULT_DATA_DIR = "../shared/data"


def data_dir() -> Path:
    """Folder of real public data (ERCOT prices, latency matrix, BTC prices).

    Set ``DRAKEWELL_DATA_DIR``; the default ``../shared/data`` is resolved against the working
    directory. The folder is optional: without it the demo uses calibrated synthetic inputs.
    """
    return Path(os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR)).expanduser().resolve()


def data_file(relative: str) -> Path | None:
    """Path of one data file if present, else ``None``."""
    path = data_dir() / relative
    return path if path.exists() else None
