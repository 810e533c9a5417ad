"""Keys of the composed app the API tests serve (``conftest.live_app``)."""

from __future__ import annotations

OPERATOR_KEY = "operator-" + "o" * 32
API_KEY = "analyst-" + "a" * 32
