"""Shared fixtures: where the real public data lives, and a skip that says what to provide."""

from __future__ import annotations

from pathlib import Path

import pytest

from drakewell.core.config import DATA_DIR_ENV, data_dir


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


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> dict[str, object]:
    """Launch options for Debian's Chromium under Playwright; fails (not skips) when it is missing."""
    import shutil

    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        pytest.fail("Chromium is not installed: run `make sysdeps` (Debian package 'chromium')")
    return {"executable_path": path, "args": CHROMIUM_ARGS}
