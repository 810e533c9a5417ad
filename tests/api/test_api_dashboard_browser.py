"""The dashboard in a real headless Chromium: charts render with data, and an order placed through
the page appears in the book."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_dashboard_renders_and_places_an_order(
    live_app: dict[str, Any], tmp_path: Path, chromium: dict[str, Any]
) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(live_app["base"] + "/")
            page.wait_for_selector("#power-chart .main-svg", timeout=20_000)
            n_traces = page.evaluate("document.getElementById('power-chart').data.length")
            n_points = page.evaluate("document.getElementById('power-chart').data[0].x.length")
            assert n_traces >= 5 and n_points == 48
            page.wait_for_selector("#assets tbody tr", timeout=10_000)
            assert "West Texas H100 pool A" in page.inner_text("#assets")
            page.wait_for_selector("#assets-chart .main-svg", timeout=10_000)
            page.wait_for_selector("#epochs tbody tr", timeout=10_000)
            assert live_app["record"].to_json()["readingsRoot"][:18] in page.inner_text("#epochs")

            # the default contract is the server's first listed day, not a date written in the page
            listed = httpx.get(live_app["base"] + "/exchange/instruments").json()["listed"]
            page.wait_for_function("document.getElementById('order-instrument').value !== ''", timeout=10_000)
            assert page.input_value("#order-instrument") == listed[0]
            page.fill("#api-key", live_app["keys"]["demo-buyer"])
            page.fill("#order-qty", "8")
            page.fill("#order-price", "1.83")
            page.click("button[type=submit]")
            page.wait_for_function(
                "document.getElementById('order-result').textContent.includes('open')", timeout=10_000
            )
            page.wait_for_function(
                "document.querySelector('#book tbody').textContent.includes('1.83')", timeout=10_000
            )
            row = page.inner_text("#book tbody tr")
            assert "8" in row and "1.83" in row

            page.fill("#api-key", "not-a-key")
            page.click("button[type=submit]")
            page.wait_for_function(
                "document.getElementById('order-result').textContent.includes('refused')", timeout=10_000
            )
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
