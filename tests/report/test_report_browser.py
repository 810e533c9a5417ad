"""The report opens offline in a real headless Chromium without script errors, every chart drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_report import SUMMARY, _ledger

from drakewell.report import write_report

pytestmark = pytest.mark.integration


def test_report_opens_in_chromium_with_every_chart_drawn(tmp_path: Path, chromium: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    leases = [{"lease": 1, "contracted_gpu_hours": 100.0, "delivered_gpu_hours": 97.5}]
    investors = [{"investor": "alice", "shares": 10, "value_usd": 1000.0, "yield": 0.12}]
    out = write_report(
        tmp_path / "report.html", ledger=_ledger(), summary=SUMMARY, leases=leases, investors=investors
    )
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # No network at all: the report must carry plotly.js itself.
            page.route("http*://**", lambda route: route.abort())
            page.goto(out.as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 5")
            drawn = page.evaluate(
                "[...document.querySelectorAll('.js-plotly-plot')].map(d => [d.id, d.data.length])"
            )
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert {fid for fid, _ in drawn} == {
        f"fig-{k}" for k in ("power", "revenue", "credits", "leases", "investors")
    }
    assert all(n > 0 for _, n in drawn)
