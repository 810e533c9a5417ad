"""Seeded synthetic prices and hashprice, calibrated to stated statistics of real 2023 data.

Drakewell runs without the real-data folder: the demo and the defaults use these series. The
constants below were measured with :func:`measure_price_stats` on ERCOT's July–September 2023
load-zone settlement point prices (real-time 15-minute and day-ahead hourly; the ``ercot/`` files of
the data folder) and with :func:`~drakewell.inputs.bitcoin.derive_daily_hashprice` on the daily BTC
close over the same months. A test re-measures the real files and checks the constants, and checks
that the generator reproduces them.

Statistics (per zone): the mean real-time price; the mean of *base* intervals (below
``SPIKE_THRESHOLD_USD_PER_MWH`` = $500/MWh); the share of intervals at or above the threshold (spike
frequency), their mean price (spike size), the share of days with at least one spike; the mean
day-ahead price. Shared by all zones (measured on LZ_WEST): the daily shape of base real-time prices
and of day-ahead prices by Central-Time hour (each normalised to mean 1), and where spikes fall.

Generator (real-time, per 15-minute interval ``t`` of local day ``d``, zone ``z``)::

    base   = base_mean[z] · shape[hour(t)] · L[d] · exp(σ·ε[t] − σ²/2)    L: daily AR(1) lognormal level
    spikes : each day is a spike day with probability spike_day_fraction; a spike day has one
             episode (Poisson length, mean spike intervals per spike day) starting at an hour drawn
             from the measured spike-hour histogram; in the episode zone z spikes with probability
             spike_fraction[z] / max spike fraction, at 500 + (spike_mean[z] − 500) · LogNormal(σ=0.8)
    DA     = base_mean[z] · shape[h] · L[d] · exp(noise) + tight[d] · premium[z, h] / P(tight)
             premium[z, h] = max(da_mean[z] · da_shape[h] − base_mean[z] · shape[h], 0): what the
             day-ahead market adds over the base in that hour; a day is tight (foreseen scarcity)
             with probability 0.8 if it is a spike day and 0.1 otherwise.

Hashprice: daily AR(1) in log space around ``HASHPRICE_MEAN_USD_PER_PH_DAY`` with the measured daily
log-change standard deviation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from drakewell.core.errors import InputDataError
from drakewell.inputs.prices import CENTRAL, INDEX_NAME

__all__ = [
    "BASE_SHAPE_CT",
    "CALIBRATION",
    "DA_SHAPE_CT",
    "HASHPRICE_DAILY_LOG_STD",
    "HASHPRICE_MEAN_USD_PER_PH_DAY",
    "SPIKE_HOUR_WEIGHTS_CT",
    "SPIKE_THRESHOLD_USD_PER_MWH",
    "SyntheticInputs",
    "ZoneStats",
    "hourly_shape",
    "measure_price_stats",
    "synthetic_hashprice",
    "synthetic_inputs",
    "synthetic_prices",
]

SPIKE_THRESHOLD_USD_PER_MWH = 500.0


@dataclass(frozen=True)
class ZoneStats:
    """Statistics of one zone's real-time and day-ahead prices ($/MWh unless stated)."""

    rt_mean: float
    rt_base_mean: float  # mean of intervals below the spike threshold
    spike_fraction: float  # share of intervals at or above the threshold
    spike_mean: float  # mean price of those intervals
    spike_day_fraction: float  # share of (Central-Time) days with at least one spike
    da_mean: float


# Measured on ERCOT 2023-07-01..2023-09-30 (8,832 real-time intervals, 2,208 day-ahead hours).
CALIBRATION: dict[str, ZoneStats] = {
    "LZ_HOUSTON": ZoneStats(110.78, 40.77, 0.03601, 1985.4, 0.3587, 131.74),
    "LZ_NORTH": ZoneStats(110.13, 39.18, 0.03668, 1973.3, 0.3913, 131.35),
    "LZ_SOUTH": ZoneStats(93.43, 41.82, 0.02921, 1808.5, 0.3478, 120.59),
    "LZ_WEST": ZoneStats(112.62, 43.48, 0.03578, 1975.9, 0.3913, 134.81),
}
# LZ_WEST mean base real-time price by Central-Time hour 0..23, normalised to mean 1.
BASE_SHAPE_CT: tuple[float, ...] = (
    0.6968,
    0.6310,
    0.6241,
    0.5784,
    0.5990,
    0.6329,
    0.6865,
    0.6190,
    0.4568,
    0.4168,
    0.4915,
    0.6500,
    0.8348,
    1.1198,
    1.3572,
    1.5684,
    1.5171,
    1.5533,
    1.7731,
    2.3403,
    1.9465,
    1.2252,
    0.9437,
    0.7379,
)
# LZ_WEST mean day-ahead price by Central-Time hour, normalised to mean 1.
DA_SHAPE_CT: tuple[float, ...] = (
    0.2242,
    0.2056,
    0.1930,
    0.1855,
    0.1869,
    0.1960,
    0.2006,
    0.1882,
    0.1487,
    0.1407,
    0.1652,
    0.2095,
    0.2783,
    0.5582,
    1.1252,
    2.1075,
    2.8871,
    3.0604,
    3.6322,
    4.7490,
    2.3065,
    0.5001,
    0.3033,
    0.2484,
)
# LZ_WEST count of spike intervals by Central-Time hour (where spike episodes start).
SPIKE_HOUR_WEIGHTS_CT: tuple[float, ...] = (
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    7,
    18,
    30,
    52,
    34,
    54,
    86,
    35,
    0,
    0,
    0,
)
# Derived daily hashprice 2023-07-01..2023-09-30 (see drakewell.inputs.bitcoin).
HASHPRICE_MEAN_USD_PER_PH_DAY = 66.04
HASHPRICE_DAILY_LOG_STD = 0.0188

_DAILY_LEVEL_SIGMA = 0.30
_DAILY_LEVEL_PHI = 0.6
_INTERVAL_SIGMA = 0.25
_INTERVAL_PHI = 0.8
_SPIKE_SIGMA = 0.8
_TIGHT_HIT = 0.8
_TIGHT_FALSE = 0.1
_DA_SIGMA = 0.10
_HASHPRICE_PHI = 0.97


def hourly_shape(series: pd.Series, *, tz: str = "America/Chicago") -> np.ndarray:
    """Mean of a series by local hour 0..23, normalised to mean 1."""
    hours = series.index.tz_convert(tz).hour
    by_hour = series.groupby(hours).mean().reindex(range(24))
    if by_hour.isna().any():
        raise InputDataError("series does not cover all 24 hours", hint="pass at least one full day")
    values = by_hour.to_numpy(dtype=np.float64)
    return values / values.mean()


def measure_price_stats(rt: pd.DataFrame, da: pd.DataFrame) -> dict[str, ZoneStats]:
    """The calibration statistics of real-time and day-ahead price frames, per zone."""
    out: dict[str, ZoneStats] = {}
    days = rt.index.tz_convert(CENTRAL).strftime("%Y-%m-%d")
    n_days = len(set(days))
    for zone in rt.columns:
        s = rt[zone]
        spike = s >= SPIKE_THRESHOLD_USD_PER_MWH
        out[str(zone)] = ZoneStats(
            rt_mean=float(s.mean()),
            rt_base_mean=float(s[~spike].mean()),
            spike_fraction=float(spike.mean()),
            spike_mean=float(s[spike].mean()) if spike.any() else 0.0,
            spike_day_fraction=len(set(days[np.asarray(spike)])) / n_days,
            da_mean=float(da[zone].mean()) if zone in da.columns else float("nan"),
        )
    return out


@dataclass(frozen=True)
class SyntheticInputs:
    """Real-time (15-min) and day-ahead (hourly) price frames and a daily hashprice series."""

    rt: pd.DataFrame
    da: pd.DataFrame
    hashprice: pd.Series
    seed: int


def _local_days(start: str | pd.Timestamp, days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    if days < 1:
        raise InputDataError(f"days = {days}", hint="generate at least one day")
    first = pd.Timestamp(start)
    if first.tzinfo is None:
        first = first.tz_localize(CENTRAL)
    first = first.tz_convert(CENTRAL).normalize()
    # calendar days in local time: a fall-back day has 25 hours, a spring-forward day 23
    last = (first.tz_localize(None) + pd.Timedelta(days=days)).tz_localize(CENTRAL)
    return first, last


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """Stationary AR(1) with unit variance."""
    eps = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = eps[0]
    scale = np.sqrt(1.0 - phi * phi)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + scale * eps[i]
    return x


def synthetic_prices(
    start: str | pd.Timestamp = "2023-07-01",
    days: int = 92,
    *,
    seed: int = 0,
    zones: tuple[str, ...] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded real-time (15-min) and day-ahead (hourly) price frames from Central-Time midnight of ``start``.

    Frames have the same shape as :func:`~drakewell.inputs.prices.load_ercot_prices` returns.
    """
    zone_names = tuple(zones) if zones is not None else tuple(CALIBRATION)
    unknown = [z for z in zone_names if z not in CALIBRATION]
    if unknown:
        raise InputDataError(
            f"no calibration for zone(s) {', '.join(unknown)}", hint=f"use {', '.join(CALIBRATION)}"
        )
    first, last = _local_days(start, days)
    rt_index = pd.date_range(first.tz_convert("UTC"), last.tz_convert("UTC"), freq="15min", inclusive="left")
    rt_index = rt_index.rename(INDEX_NAME).as_unit("ns")
    da_index = pd.date_range(first.tz_convert("UTC"), last.tz_convert("UTC"), freq="h", inclusive="left")
    da_index = da_index.rename(INDEX_NAME).as_unit("ns")
    rng = np.random.default_rng(seed)

    local = rt_index.tz_convert(CENTRAL)
    day_codes, day_labels = pd.factorize(local.strftime("%Y-%m-%d"))
    n_days = len(day_labels)
    hours = np.asarray(local.hour)
    shape = np.asarray(BASE_SHAPE_CT)
    level = np.exp(_DAILY_LEVEL_SIGMA * _ar1(rng, n_days, _DAILY_LEVEL_PHI) - _DAILY_LEVEL_SIGMA**2 / 2)
    expected = shape[hours] * level[day_codes]  # per unit of base mean
    noise = np.exp(_INTERVAL_SIGMA * _ar1(rng, len(rt_index), _INTERVAL_PHI) - _INTERVAL_SIGMA**2 / 2)

    # Spike episodes shared by all zones (system-wide scarcity).
    top_fraction = max(CALIBRATION[z].spike_fraction for z in zone_names)
    p_day = max(CALIBRATION[z].spike_day_fraction for z in zone_names)
    mean_len = top_fraction * 96.0 / p_day  # intervals per spike day
    spike_day = rng.random(n_days) < p_day
    hour_w = np.asarray(SPIKE_HOUR_WEIGHTS_CT, dtype=np.float64)
    hour_p = hour_w / hour_w.sum()
    in_episode = np.zeros(len(rt_index), dtype=bool)
    day_start = np.searchsorted(day_codes, np.arange(n_days))
    day_len = np.bincount(day_codes, minlength=n_days)
    for d in np.flatnonzero(spike_day):
        length = max(1, int(rng.poisson(mean_len)))
        # centre the episode on a drawn spike hour
        centre = int(rng.choice(24, p=hour_p)) * 4 + int(rng.integers(0, 4))
        begin = int(np.clip(centre - length // 2, 0, max(0, day_len[d] - length)))
        in_episode[day_start[d] + begin : day_start[d] + min(day_len[d], begin + length)] = True
    spike_draw = np.exp(_SPIKE_SIGMA * rng.standard_normal(len(rt_index)) - _SPIKE_SIGMA**2 / 2)
    zone_draw = rng.random((len(rt_index), len(zone_names)))

    # Day-ahead: expectation of the base, plus a scarcity premium on days seen as tight.
    da_local = da_index.tz_convert(CENTRAL)
    da_day = np.asarray(pd.Index(day_labels).get_indexer(da_local.strftime("%Y-%m-%d")))
    da_hours = np.asarray(da_local.hour)
    tight = np.where(spike_day, rng.random(n_days) < _TIGHT_HIT, rng.random(n_days) < _TIGHT_FALSE)
    da_noise = np.exp(_DA_SIGMA * rng.standard_normal(len(da_index)) - _DA_SIGMA**2 / 2)
    p_tight = p_day * _TIGHT_HIT + (1 - p_day) * _TIGHT_FALSE

    rt_cols: dict[str, np.ndarray] = {}
    da_cols: dict[str, np.ndarray] = {}
    for k, zone in enumerate(zone_names):
        stats = CALIBRATION[zone]
        base = stats.rt_base_mean * expected * noise
        spikes = in_episode & (zone_draw[:, k] < stats.spike_fraction / top_fraction)
        size = SPIKE_THRESHOLD_USD_PER_MWH + (stats.spike_mean - SPIKE_THRESHOLD_USD_PER_MWH) * spike_draw
        rt_cols[zone] = np.round(np.where(spikes, size, base), 2)
        da_base = stats.rt_base_mean * shape[da_hours] * level[da_day] * da_noise
        # what day-ahead adds over the base by hour ($/MWh), paid only on days seen as tight
        premium = np.clip(stats.da_mean * np.asarray(DA_SHAPE_CT) - stats.rt_base_mean * shape, 0.0, None)
        da_cols[zone] = np.round(da_base + premium[da_hours] / p_tight * tight[da_day], 2)
    rt = pd.DataFrame(rt_cols, index=rt_index)
    da = pd.DataFrame(da_cols, index=da_index)
    rt.index.freq = pd.tseries.frequencies.to_offset("15min")
    da.index.freq = pd.tseries.frequencies.to_offset("60min")
    rt.attrs.update(source=f"synthetic(seed={seed})", market="rt", interval_minutes=15)
    da.attrs.update(source=f"synthetic(seed={seed})", market="da", interval_minutes=60)
    return rt, da


def synthetic_hashprice(
    start: str | pd.Timestamp = "2023-07-01", days: int = 92, *, seed: int = 0
) -> pd.Series:
    """Seeded daily hashprice (USD/PH/day) on UTC days, log-AR(1) around the measured mean."""
    if days < 1:
        raise InputDataError(f"days = {days}", hint="generate at least one day")
    rng = np.random.default_rng([seed, 1])
    first = pd.Timestamp(start)
    first = (first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")).normalize()
    index = pd.date_range(first, periods=days + 1, freq="D", name="date").as_unit("ns")
    phi = _HASHPRICE_PHI
    stationary = HASHPRICE_DAILY_LOG_STD / np.sqrt(1 - phi * phi)
    x = stationary * _ar1(rng, len(index), phi)
    values = HASHPRICE_MEAN_USD_PER_PH_DAY * np.exp(x - stationary**2 / 2)
    series = pd.Series(np.round(values, 4), index=index, name="hashprice_usd_per_ph_day")
    series.attrs["source"] = f"synthetic(seed={seed})"
    return series


def synthetic_inputs(
    start: str | pd.Timestamp = "2023-07-01", days: int = 92, *, seed: int = 0
) -> SyntheticInputs:
    """Prices and hashprice for the same days (the embedded default when no real data is present)."""
    rt, da = synthetic_prices(start, days, seed=seed)
    hashprice = synthetic_hashprice(rt.index[0], days, seed=seed)
    return SyntheticInputs(rt=rt, da=da, hashprice=hashprice, seed=seed)
