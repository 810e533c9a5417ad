import asyncio
import re
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from api_helpers import API_KEY

from drakewell.api.app import STATIC_DIR, load_run_dir, site_series
from drakewell.core.errors import DrakewellError


def test_site_series_is_hourly_and_json_ready(live_app: dict[str, Any]) -> None:
    site = httpx.get(f"{live_app['base']}/api/site").json()
    series = site["series"]
    assert len(series["t"]) == 48  # two days, hourly
    assert set(series) >= {"ai_inference_mw", "mining_mw", "price_usd_per_mwh"}
    assert site["summary"]["profit_usd"] == pytest.approx(live_app["summary"]["profit_usd"])


def test_assets_and_epochs_are_served(live_app: dict[str, Any]) -> None:
    assets = httpx.get(f"{live_app['base']}/api/assets").json()
    assert assets[0]["gpus"] == 2048
    epochs = httpx.get(f"{live_app['base']}/meter/epochs").json()
    assert epochs and epochs[0]["readingsRoot"] == live_app["record"].to_json()["readingsRoot"]


def test_orders_need_the_account_key(live_app: dict[str, Any]) -> None:
    instrument = httpx.get(f"{live_app['base']}/exchange/instruments").json()["listed"][0]
    body = {"instrument": instrument, "side": "buy", "qty": 1, "price": 1_000_000}
    r = httpx.post(f"{live_app['base']}/exchange/orders", json=body)
    assert r.status_code == 401
    r = httpx.post(f"{live_app['base']}/exchange/orders", json=body, headers={"X-API-Key": "wrong"})
    assert r.status_code == 401


def test_static_files_cannot_escape_their_folder(live_app: dict[str, Any]) -> None:
    assert httpx.get(f"{live_app['base']}/static/..%2Fapp.py").status_code == 404
    assert httpx.get(f"{live_app['base']}/static/plotly.min.js").status_code == 200


def test_backtest_endpoint_validates_its_input(live_app: dict[str, Any]) -> None:
    r = httpx.post(
        f"{live_app['base']}/api/backtests", json={"policy": "oracle"}, headers={"X-API-Key": API_KEY}
    )
    assert r.status_code == 422


def test_run_dir_errors_say_what_to_do(tmp_path) -> None:
    with pytest.raises(DrakewellError, match="drakewell demo"):
        load_run_dir(tmp_path)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(DrakewellError, match="not valid JSON"):
        load_run_dir(tmp_path)


def test_site_series_keeps_gaps_as_null() -> None:
    import pandas as pd

    idx = pd.date_range("2026-07-01", periods=8, freq="15min", tz="UTC").delete([4, 5, 6, 7])
    frame = pd.DataFrame({"interval_start_utc": idx, "mining_mw": [1.0, 2, 3, 4], "price_usd_per_mwh": 5.0})
    out = site_series(frame)
    assert out["mining_mw"] == [2.5]


_NOW_S = int(time.time())


@pytest.mark.parametrize(
    "now_s",
    [_NOW_S, _NOW_S + 365 * 86400, int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())],
    ids=["today", "one-year-ahead", "2030-01-01"],
)
def test_the_dashboards_default_instrument_follows_the_servers_clock(now_s: int) -> None:
    """The page takes its default order instrument from ``listed`` (dashboard.js); under any clock
    that is the demo pool's next whole day, and an order on it is accepted after the closer ran."""
    from drakewell.api.app import create_app
    from drakewell.exchange.api import demo_service

    service, keys = demo_service(clock=lambda: now_s)
    service.engine.close_started(now_s)
    app = create_app(exchange=service)

    async def go() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as client:
            listed = await client.get("/exchange/instruments")
            body = {"instrument": listed.json()["listed"][0], "side": "buy", "qty": 8, "price": 1_830_000}
            buyer = {"X-API-Key": keys["demo-buyer"]}
            order = await client.post("/exchange/orders", json=body, headers=buyer)
            return listed, order

    listed, order = asyncio.run(go())
    next_day = datetime.fromtimestamp((now_s // 86400 + 1) * 86400, UTC)
    assert listed.json()["listed"][0] == f"H100-SXM.us-tx.{next_day:%Y-%m-%d}T00Z.24h"
    assert order.status_code == 201 and order.json()["status"] == "open", order.text


def test_the_static_pages_hold_no_calendar_date() -> None:
    for name in ("index.html", "dashboard.js"):
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        assert re.search(r"\b\d{4}-\d{2}-\d{2}", text) is None, name
    assert "inst.listed[0]" in (STATIC_DIR / "dashboard.js").read_text(encoding="utf-8")
