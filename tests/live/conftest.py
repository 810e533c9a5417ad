"""Fixtures of the live controller tests."""

from __future__ import annotations

import pytest
from live_helpers import SITE_FILE

from drakewell.site import Site, load_site


@pytest.fixture(scope="session")
def live_site() -> Site:
    return load_site(SITE_FILE)
