"""Build the dispatcher's inputs from a validated site and price frames (the one adapter).

- :func:`dispatch_site` flattens a :class:`drakewell.site.Site` into a :class:`DispatchSite`:
  IT capacities (facility ÷ PUE), J/TH of the whole ASIC fleet, per-GPU IT power, ramp limits in IT
  MW, minimum off time in intervals, and the 4CP charge per facility MW at each 4CP interval
  (``rate_usd_per_mw_year / 4``: the yearly charge is set by the average of four monthly peaks).
- :func:`build_inputs` aligns everything on the real-time interval index (UTC):
  the day-ahead price becomes the forecast, published at 13:00 Central Time the day before delivery
  (``forecast_known_from``); without a day-ahead file the forecast is the real-time price of the
  same interval one day earlier (known then). Hashprice is a constant, a daily series (by UTC
  day) or one value per interval. AI inference demand is the site's GPU profile × IT MW per GPU;
  training jobs become interval windows with IT energy ``gpu_hours × IT MW per GPU``. Reserve
  prices follow the site's rule (e.g. a fraction of the day-ahead price), 4CP intervals come from
  the site's file and the 4CP alert flags from :func:`drakewell.inputs.grid.forecast_4cp_alerts`
  (day-ahead data only; without a day-ahead file every weekday 15:00-19:00 CT window of June to
  September is flagged). Emergency events become a facility cap per interval. Behind-the-meter
  plants (:mod:`drakewell.site.renewables`) give the on-site generation per interval.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TypeAlias

import numpy as np
import pandas as pd

from drakewell.dispatch.types import (
    BoolArray,
    DispatchInputError,
    DispatchInputs,
    DispatchSite,
    FloatArray,
    TrainingLoad,
)
from drakewell.inputs.bitcoin import hashprice_on_index
from drakewell.inputs.grid import (
    FOUR_CP_MONTHS,
    PEAK_WINDOW_CT,
    emergency_cap_mw,
    forecast_4cp_alerts,
    four_cp_mask,
)
from drakewell.inputs.prices import CENTRAL, align_da_to_rt, select_zone
from drakewell.site import Site

DA_PUBLISH_HOUR_CT = 13  # ERCOT publishes day-ahead results about 13:00 CT the day before delivery

HashpriceInput: TypeAlias = float | int | pd.Series | np.ndarray


def four_cp_window(index: pd.DatetimeIndex) -> BoolArray:
    """Weekday 15:00-19:00 Central Time intervals of the 4CP months (June-September)."""
    local = index.tz_convert(CENTRAL)
    start, end = PEAK_WINDOW_CT
    return np.asarray(
        (local.day_of_week < 5)
        & (local.hour >= start)
        & (local.hour < end)
        & local.month.isin(list(FOUR_CP_MONTHS)),
        dtype=bool,
    )


def dispatch_site(site: Site) -> DispatchSite:
    """The optimiser's flat view of ``site`` (IT MW at the hardware, facility = IT × PUE)."""
    asics = site.asic_fleets
    gpus = site.gpu_fleets
    mining_it = sum(f.it_power_mw for f in asics)
    mining_fac = sum(f.facility_power_mw for f in asics)
    hashrate_th = sum(f.count * f.unit_hashrate_th_s for f in asics)
    mining_pue = mining_fac / mining_it if mining_it > 0 else 1.0
    j_per_th = mining_it * 1e6 / hashrate_th if hashrate_th > 0 else 1.0
    hall_cap_it = sum(h.capacity_mw / h.pue for h in site.halls if any(f.kind == "asic" for f in h.fleets))
    mining_it = min(mining_it, hall_cap_it) if asics else 0.0
    gpu_count = site.gpu_count
    gpu_it = sum(f.it_power_mw for f in gpus)
    gpu_fac = sum(f.facility_power_mw for f in gpus)
    ramp_fac = site.mining.ramp_mw_per_interval
    ramp_it = mining_it if math.isinf(ramp_fac) else ramp_fac / mining_pue
    min_off = math.ceil(site.mining.min_off_minutes / site.interval_minutes)
    markets = site.markets
    return DispatchSite(
        name=site.name,
        connection_mw=site.grid_connection_mw,
        mining_it_mw=mining_it,
        mining_pue=mining_pue,
        mining_j_per_th=j_per_th,
        mining_ramp_up_mw_per_interval=ramp_it,
        mining_min_off_intervals=min_off,
        gpu_count=gpu_count,
        gpu_mw=gpu_it / gpu_count if gpu_count else 0.0,
        ai_pue=gpu_fac / gpu_it if gpu_it > 0 else 1.0,
        ai_price_usd_per_gpu_hour=site.ai.contract_price_usd_per_gpu_hour,
        spot_price_usd_per_gpu_hour=site.ai.spot.price_usd_per_gpu_hour,
        spot_max_gpus=site.ai.spot.max_gpus,
        inference_shed_penalty_usd_per_gpu_hour=site.ai.shed_penalty_usd_per_gpu_hour,
        contract=site.contract.kind,
        index_adder_usd_per_mwh=site.contract.adder_usd_per_mwh,
        block_mw=site.contract.block_mw,
        block_price_usd_per_mwh=site.contract.block_price_usd_per_mwh,
        four_cp_rate_usd_per_mw=markets.four_cp.rate_usd_per_mw_year / 4.0
        if markets.four_cp.enabled
        else 0.0,
        reserve_max_mw=markets.reserves.max_mw if markets.reserves.enabled else 0.0,
        reserve_penalty_multiplier=markets.reserves.undelivered_penalty_multiplier,
        renewable_surplus=site.renewables.surplus,
    )


def hashprice_series(hashprice: HashpriceInput, index: pd.DatetimeIndex) -> FloatArray:
    """Hashprice (USD per PH/s per day) on ``index``: a constant, a daily series (by UTC day, see
    :func:`drakewell.inputs.bitcoin.hashprice_on_index`) or one value per interval."""
    if isinstance(hashprice, np.ndarray):
        arr = np.asarray(hashprice, dtype=np.float64)
        if arr.shape != (len(index),):
            raise DispatchInputError(
                f"hashprice array has shape {arr.shape}, expected ({len(index)},)",
                hint="give one value per real-time interval, or a daily series",
            )
    else:
        value = float(hashprice) if isinstance(hashprice, int | float) else hashprice
        arr = hashprice_on_index(value, index)
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise DispatchInputError(
            "hashprice must be finite and >= 0 everywhere",
            hint="pass e.g. --hashprice 45 (USD per PH/s per day)",
        )
    return np.asarray(arr, dtype=np.float64)


def forecast_publication(index: pd.DatetimeIndex) -> np.ndarray:
    """For every interval, the index of the first interval at which its day-ahead price is known."""
    local = index.tz_convert(CENTRAL)
    day = local.normalize()
    published = (day - pd.Timedelta(days=1) + pd.Timedelta(hours=DA_PUBLISH_HOUR_CT)).tz_convert("UTC")
    pos = np.searchsorted(index.asi8, published.asi8, side="left")
    return np.clip(pos, 0, len(index) - 1).astype(np.int64)


def _forecast(
    da: pd.DataFrame | None, index: pd.DatetimeIndex, zone: str, price: np.ndarray, per_day: int
) -> tuple[np.ndarray, np.ndarray]:
    """The forecast price per interval and the interval from which it is known: the day-ahead price
    (published the day before), or without one, the real-time price a day earlier."""
    if da is not None:
        forecast = align_da_to_rt(da, index)
        return select_zone(forecast, zone).to_numpy(dtype=np.float64), forecast_publication(index)
    shift = np.maximum(np.arange(len(index)) - per_day, 0)
    return price[shift], shift.astype(np.int64)


def _four_cp_alerts(site: Site, da: pd.DataFrame | None, index: pd.DatetimeIndex, zone: str) -> np.ndarray:
    """Intervals with a 4CP alert: the day-ahead rule, or with no day-ahead prices every peak window."""
    fc = site.markets.four_cp
    if fc.enabled and da is not None:
        return forecast_4cp_alerts(
            da,
            index,
            zone=fc.forecast_zone,
            ratio=fc.forecast_ratio,
            threshold_usd_per_mwh=fc.forecast_threshold_usd_per_mwh,
        )
    if fc.enabled:  # no day-ahead information: every peak window is at risk
        return four_cp_window(index)
    return np.zeros(len(index), dtype=bool)


def _training_jobs(
    site: Site, index: pd.DatetimeIndex, end: pd.Timestamp, gpu_it_per_gpu: float
) -> list[TrainingLoad]:
    """The site's training jobs released in ``[index[0], end)``, in intervals and IT MW."""
    jobs = []
    for job in site.training_jobs(index[0], end):
        release = int(np.searchsorted(index.asi8, pd.Timestamp(job.release_utc).value, side="left"))
        deadline = int(np.searchsorted(index.asi8, pd.Timestamp(job.deadline_utc).value, side="left"))
        if deadline <= release:
            continue
        jobs.append(
            TrainingLoad(
                name=job.name,
                energy_mwh=job.gpu_hours * gpu_it_per_gpu,
                release=release,
                deadline=deadline,
                max_mw=job.gpus_max * gpu_it_per_gpu,
                revenue_usd_per_mwh=job.price_usd_per_gpu_hour / gpu_it_per_gpu,
                unmet_penalty_usd_per_mwh=job.miss_penalty_usd_per_gpu_hour / gpu_it_per_gpu,
            )
        )
    return jobs


def build_inputs(
    site: Site,
    rt: pd.DataFrame,
    da: pd.DataFrame | None,
    hashprice: HashpriceInput,
    zone: str | None = None,
) -> DispatchInputs:
    """Align the site, real-time prices (zone column), forecast and hashprice on one UTC index."""
    zone = zone or site.zone
    price_series = select_zone(rt, zone)
    index = pd.DatetimeIndex(price_series.index).tz_convert("UTC")
    if len(index) < 2:
        raise DispatchInputError(
            "the real-time price frame needs at least two intervals", hint="pass a longer price file"
        )
    step = index[1] - index[0]
    hours = step.total_seconds() / 3600
    if step != timedelta(minutes=site.interval_minutes):
        raise DispatchInputError(
            f"prices are every {step} but site '{site.name}' dispatches every {site.interval_minutes} min",
            hint="set site.interval_minutes to the price interval",
        )
    price = price_series.to_numpy(dtype=np.float64)
    forecast_price, known_from = _forecast(da, index, zone, price, round(24 / hours))
    dsite = dispatch_site(site)
    inference = site.ai.inference.gpus_busy(index) * dsite.gpu_mw
    reserves = site.markets.reserves
    reserve_price = (
        reserves.price_usd_per_mw_h_series(forecast_price) if reserves.enabled else np.zeros(len(index))
    )
    fc = site.markets.four_cp
    four_cp = four_cp_mask(fc.intervals_utc, index) if fc.enabled else np.zeros(len(index), dtype=bool)
    alerts = _four_cp_alerts(site, da, index, zone)
    em = site.markets.emergency
    caps = emergency_cap_mw(em.events, index) if em.enabled else np.full(len(index), np.inf)
    jobs = _training_jobs(site, index, index[-1] + step, dsite.gpu_mw)
    return DispatchInputs(
        site=dsite,
        interval_start_utc=index,
        hours=hours,
        price_usd_per_mwh=price,
        forecast_usd_per_mwh=forecast_price,
        forecast_known_from=known_from,
        hashprice_usd_per_ph_day=hashprice_series(hashprice, index),
        ai_inference_mw=np.asarray(inference, dtype=np.float64),
        reserve_price_usd_per_mw_h=np.asarray(reserve_price, dtype=np.float64),
        four_cp=np.asarray(four_cp, dtype=bool),
        four_cp_forecast=np.asarray(alerts, dtype=bool),
        emergency_cap_mw=np.asarray(caps, dtype=np.float64),
        jobs=tuple(jobs),
        zone=zone,
        renewable_mw=site.renewables.generation_mw(index) if site.renewables.plants else None,
    )
