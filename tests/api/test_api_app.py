from typing import Any

import httpx
import pytest

from drakewell.api.app import load_run_dir, site_series
from drakewell.errors import DrakewellError


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
    body = {"instrument": "H100-SXM.us-tx.2026-12-01T00Z.24h", "side": "buy", "qty": 1, "price": 1_000_000}
    r = httpx.post(f"{live_app['base']}/exchange/orders", json=body)
    assert r.status_code == 401
    r = httpx.post(f"{live_app['base']}/exchange/orders", json=body, headers={"X-API-Key": "wrong"})
    assert r.status_code == 401


def test_static_files_cannot_escape_their_folder(live_app: dict[str, Any]) -> None:
    assert httpx.get(f"{live_app['base']}/static/..%2Fapp.py").status_code == 404
    assert httpx.get(f"{live_app['base']}/static/plotly.min.js").status_code == 200


def test_backtest_endpoint_validates_its_input(live_app: dict[str, Any]) -> None:
    r = httpx.post(f"{live_app['base']}/api/backtests", json={"policy": "oracle"})
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
