"""Builders for hand-sized dispatch cases: a tiny site and inputs with every series explicit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from drakewell.dispatch.types import DispatchInputs, DispatchSite, TrainingLoad

TINY = DispatchSite(
    name="tiny",
    connection_mw=100.0,
    mining_it_mw=10.0,
    mining_pue=1.0,
    mining_j_per_th=13.5,
    mining_ramp_up_mw_per_interval=100.0,
    mining_min_off_intervals=0,
    gpu_count=1000,
    gpu_mw=0.001,  # 1 MW of GPUs: $2/GPU-h = $2,000/MWh
    ai_pue=1.0,
    ai_price_usd_per_gpu_hour=2.0,
    spot_price_usd_per_gpu_hour=0.0,
    spot_max_gpus=0,
    inference_shed_penalty_usd_per_gpu_hour=0.0,
)


def make_inputs(
    prices: Sequence[float],
    *,
    site: DispatchSite = TINY,
    hashprice: float = 43.0,
    demand: float | Sequence[float] = 0.0,
    forecast: Sequence[float] | None = None,
    known_from: Sequence[int] | None = None,
    reserve_price: float | Sequence[float] = 0.0,
    four_cp: Sequence[int] = (),
    caps: dict[int, float] | None = None,
    jobs: Sequence[TrainingLoad] = (),
    start: str = "2023-07-03T05:00:00Z",
    **site_changes: Any,
) -> DispatchInputs:
    n = len(prices)
    cp = np.zeros(n, dtype=bool)
    cp[list(four_cp)] = True
    cap = np.full(n, np.inf)
    for t, value in (caps or {}).items():
        cap[t] = value
    price = np.asarray(prices, dtype=np.float64)
    return DispatchInputs(
        site=replace(site, **site_changes) if site_changes else site,
        interval_start_utc=pd.date_range(start, periods=n, freq="15min"),
        hours=0.25,
        price_usd_per_mwh=price,
        forecast_usd_per_mwh=price.copy() if forecast is None else np.asarray(forecast, dtype=np.float64),
        forecast_known_from=np.zeros(n, np.int64) if known_from is None else np.asarray(known_from, np.int64),
        hashprice_usd_per_ph_day=np.full(n, hashprice),
        ai_inference_mw=np.broadcast_to(np.asarray(demand, dtype=np.float64), (n,)).copy(),
        reserve_price_usd_per_mw_h=np.broadcast_to(np.asarray(reserve_price, dtype=np.float64), (n,)).copy(),
        four_cp=cp,
        four_cp_forecast=cp.copy(),
        emergency_cap_mw=cap,
        jobs=tuple(jobs),
    )


@pytest.fixture
def tiny_inputs() -> Callable[..., DispatchInputs]:
    return make_inputs


@pytest.fixture
def tiny_site() -> DispatchSite:
    return TINY
