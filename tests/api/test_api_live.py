"""``GET /api/live``: the live controller's state, fetched read-only from its ``/state.json`` on loopback;
503 with a hint when none is configured or it does not answer; a bad ``--live-url`` is refused."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from api_live_server import serve
from typer.testing import CliRunner

from drakewell.api.app import check_live_url, create_app
from drakewell.cli import app as cli_app
from drakewell.core.errors import ConfigError
from drakewell.live.config import LiveConfig, OpenAdrConfig
from drakewell.live.controller import Controller
from drakewell.live.journal import Journal
from drakewell.live.signals import DrEvent, PriceTick, ReplayClock, ReplayPrices

ROOT = Path(__file__).resolve().parents[2]
SITE_FILE = ROOT / "examples/sites/emulated-live.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def live_controller(journal: Path) -> Controller:
    """A dry-run controller of the emulated site that decided two intervals ($20, then $300) and
    opted into one demand-response event (a 0.3 MW facility setpoint)."""
    from drakewell.dispatch.inputs import build_inputs
    from drakewell.site import load_site

    site = load_site(SITE_FILE)
    index = pd.date_range(pd.Timestamp("2023-08-10T05:00", tz="UTC"), periods=8, freq="15min")
    frame = pd.DataFrame({"LZ_WEST": np.full(8, 20.0)}, index=index.rename("interval_start_utc"))
    inputs = build_inputs(site, frame, None, 55.0)
    prices = pd.Series([20.0, 300.0] + [20.0] * 6, index=inputs.interval_start_utc)
    clock = ReplayClock(inputs.interval_start_utc[0], speed=0)
    config = LiveConfig(openadr=OpenAdrConfig(vtn_url="http://127.0.0.1:1/x", payment_usd_per_mwh=500.0))
    c = Controller(inputs, config, Journal(journal), prices=ReplayPrices(prices, clock), clock=clock)
    now = datetime.now(UTC)
    event = DrEvent("EV-7", 0, "LOAD_DISPATCH", "setpoint", 0.3, now, now + timedelta(minutes=30))

    async def drive() -> None:
        await c._on_price(PriceTick(prices.index[0], 20.0))
        await c.on_event(event)
        await c._on_event_act("EV-7")
        await c._on_price(PriceTick(prices.index[1], 300.0))

    asyncio.run(drive())
    return c


@pytest.fixture(scope="module")
def controller_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The controller's own read-only state server (``LiveMetrics.serve``) on a loopback port."""
    pytest.importorskip("prometheus_client")
    from drakewell.live.metrics import LiveMetrics

    c = live_controller(tmp_path_factory.mktemp("live") / "journal.jsonl")
    server, thread = LiveMetrics().serve("127.0.0.1", 0, c.live_state)
    try:
        yield {"controller": c, "url": f"http://127.0.0.1:{server.server_address[1]}"}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_configured_the_live_state_comes_from_the_controller(controller_server: dict[str, Any]) -> None:
    c: Controller = controller_server["controller"]
    with serve(create_app(live_url=controller_server["url"] + "/")) as base:
        answer = httpx.get(base + "/api/live")
    assert answer.status_code == 200, answer.text
    state = answer.json()
    assert state["controller"] == controller_server["url"]
    assert state["interval"] == 1 and [d["t"] for d in state["decisions"]] == [1, 0, 0]
    assert [d["reason"] for d in state["decisions"]] == ["interval", "event:EV-7", "interval"]
    assert state["decisions"][0]["price"] == 300.0
    classes = {k["class"]: k for k in state["classes"]}
    assert set(classes) == {"mining", "inference", "training", "spot"}
    assert c.state.current is not None
    assert classes["mining"]["setpoint_mw"] == pytest.approx(c.state.current.mining_mw)
    assert classes["mining"]["measured_mw"] is None  # a dry run reads nothing back
    (event,) = state["events"]
    assert event["event_id"] == "EV-7" and event["opt"] == "optIn" and event["target_mw"] == 0.3


def test_the_live_endpoint_changes_nothing(controller_server: dict[str, Any]) -> None:
    c: Controller = controller_server["controller"]
    before = len(c.journal.records)
    with serve(create_app(live_url=controller_server["url"])) as base:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert httpx.request(method, base + "/api/live", json={"mining_mw": 0}).status_code == 405
        assert httpx.get(base + "/api/live").status_code == 200
    assert len(c.journal.records) == before


def test_unconfigured_answers_503_with_a_hint() -> None:
    with serve(create_app()) as base:
        answer = httpx.get(base + "/api/live")
    assert answer.status_code == 503
    assert "--live-url" in answer.json()["detail"]


def test_an_unreachable_controller_answers_503_quickly() -> None:
    import time

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with serve(create_app(live_url=url)) as base:
        t0 = time.monotonic()
        answer = httpx.get(base + "/api/live")
    assert answer.status_code == 503 and "unreachable" in answer.json()["detail"]
    assert url in answer.json()["detail"] and time.monotonic() - t0 < 5


def test_a_server_without_a_state_answers_502() -> None:
    pytest.importorskip("prometheus_client")
    from drakewell.live.metrics import LiveMetrics

    server, thread = LiveMetrics().serve("127.0.0.1", 0)  # /metrics only: /state.json is 404
    try:
        with serve(create_app(live_url=f"http://127.0.0.1:{server.server_address[1]}")) as base:
            answer = httpx.get(base + "/api/live")
        assert answer.status_code == 502 and "404" in answer.json()["detail"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://127.0.0.1:9109", "http"),
        ("127.0.0.1:9109", "http"),
        ("http://", "http"),
        ("http://example.com:9109", "neither loopback"),
        ("http://10.0.0.5:9109", "neither loopback"),
        ("http://user:secret@127.0.0.1:9109", "credentials"),
        ("http://127.0.0.1:9109/?next=x", "query"),
        ("http://127.0.0.1:9109/state.json", "base address"),
        ("http://127.0.0.1:99999", "not a URL"),
    ],
)
def test_a_bad_live_url_is_refused(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as refused:
        create_app(live_url=url)
    assert refused.value.hint


def test_loopback_and_allowed_hosts_are_accepted() -> None:
    assert check_live_url("http://127.0.0.1:9109/") == "http://127.0.0.1:9109"
    assert check_live_url("http://localhost:9109") == "http://localhost:9109"
    assert check_live_url("http://[::1]:9109") == "http://[::1]:9109"
    assert check_live_url("https://127.8.0.1") == "https://127.8.0.1"
    assert (
        check_live_url("http://site-ctl.internal:9109", ["site-ctl.internal"])
        == "http://site-ctl.internal:9109"
    )
    # the names the API answers to by default are not controller hosts
    with pytest.raises(ConfigError):
        check_live_url("http://testserver:9109")
    app = create_app(allowed_hosts=["site-ctl.internal", "127.0.0.1"], live_url="http://site-ctl.internal:1")
    assert app is not None


def test_serve_refuses_a_bad_live_url_before_opening_anything(tmp_path: Path) -> None:
    data = tmp_path / "serve"
    result = CliRunner().invoke(
        cli_app, ["serve", "--data-dir", str(data), "--port", "1", "--live-url", "http://example.com:9109"]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError) and "neither loopback" in str(result.exception)
    assert not data.exists()
