"""The dashboard's Live section in a real headless Chromium, against a live controller's state server on
loopback: setpoint vs measured MW per class, the recent decisions and the events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from api_live_server import serve
from test_api_live import live_controller

from drakewell.api.app import create_app

pytestmark = pytest.mark.integration


def test_the_live_section_shows_the_controller(tmp_path: Path, chromium: dict[str, Any]) -> None:
    pytest.importorskip("prometheus_client")
    from playwright.sync_api import sync_playwright

    from drakewell.live.metrics import LiveMetrics

    c = live_controller(tmp_path / "journal.jsonl")
    server, thread = LiveMetrics().serve("127.0.0.1", 0, c.live_state)
    errors: list[str] = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with serve(create_app(live_url=url)) as base, sync_playwright() as p:
            browser = p.chromium.launch(**chromium)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1200})
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(base + "/")
                page.wait_for_selector("#live-chart .main-svg", timeout=20_000)
                chart = page.evaluate(
                    "document.getElementById('live-chart').data.map(t => [t.name, t.x, t.y])"
                )
                assert c.state.current is not None
                (name_s, x_s, y_s), (name_m, x_m, y_m) = chart
                assert name_s == "setpoint MW" and name_m == "measured MW"
                assert x_s == x_m == ["mining", "inference", "training", "spot"]
                assert y_s[0] == pytest.approx(c.state.current.mining_mw)
                assert y_s[1] == pytest.approx(c.state.current.inference_mw)
                assert y_m == [None, None, None, None]  # a dry run reads nothing back
                page.wait_for_selector("#live-decisions tbody tr", timeout=10_000)
                rows = page.locator("#live-decisions tbody tr").all_inner_texts()
                assert len(rows) == 3 and rows[0].split("\t")[:3] == ["1", "interval", "300.00"]
                assert "event:EV-7" in rows[1] and "0.300" in rows[1]  # re-decided under the event's cap
                events = page.locator("#live-events tbody tr").all_inner_texts()
                assert len(events) == 1 and events[0].split("\t")[:3] == ["EV-7", "optIn", "0.300"]
                status = page.inner_text("#live-status")
                assert "interval 1" in status and "devices up 0/0" in status
                page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert not errors, errors


def test_without_a_controller_the_live_section_says_so(chromium: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    with serve(create_app()) as base, sync_playwright() as p:
        browser = p.chromium.launch(**chromium)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(base + "/")
            page.wait_for_function(
                "document.getElementById('live-status').textContent.includes('--live-url')", timeout=10_000
            )
            assert page.inner_text("#live-status").startswith("no live controller")
            assert page.locator("#live-decisions tbody tr").count() == 0
        finally:
            browser.close()
    assert not errors, errors
