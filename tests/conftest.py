"""Shared fixtures: where the real public data lives, and a skip that says what to provide."""

from __future__ import annotations

from pathlib import Path

import pytest

from drakewell.config import DATA_DIR_ENV, data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; tests that need it skip with a message when it is absent."""
    root = data_dir()
    if not (root / "ercot").is_dir():
        pytest.skip(
            f"real data not found at {root}: set {DATA_DIR_ENV} to a folder with ercot/, latency/ and "
            "bitcoin/ (see README, 'Real data')"
        )
    return root
