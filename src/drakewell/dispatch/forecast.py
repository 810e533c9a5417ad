r"""A probabilistic real-time price forecast: LightGBM quantile regression on what is known at each
decision time, retrained on a rolling window of the past only.

For a decision at interval :math:`d` and a target interval :math:`u = d + \ell` (lead :math:`\ell \ge 1`)
the forecast gives the real-time price quantiles :math:`\hat\pi_u(\tau)` for the levels
:math:`\tau \in T` (default 0.05, 0.20, …, 0.95; each level stands for a scenario weighted by the width of its
probability bin, 0.125 at the ends and 0.15 inside).

Model
-----
The target is the spread :math:`y = \pi_u - \tilde D_u` of the real-time price over the day-ahead price
known for ``u`` at ``d`` (:math:`\tilde D_u` is the published day-ahead price, or, beyond what is
published, the same hour of the last published day). One LightGBM model per level minimises the
pinball loss

.. math::  L_\tau(y, \hat y) = \max\big(\tau (y - \hat y),\ (\tau - 1)(y - \hat y)\big)

over features known at ``d``: the lead (hours), :math:`\tilde D_u` and whether it is published, the
target's Central Time hour and weekday, the current real-time price, its mean over the last hour, the
mean and standard deviation of the real-time/day-ahead spread and the highest real-time price over
the last 24 h and the last 7 days, the current spread, the real-time price and its spread over the
day-ahead price at the same time of day on the last day already seen, the highest real-time price at
that time of day over the last three days seen, and the day-ahead maximum of the target's day (of
the last published day beyond what is published) with :math:`\tilde D_u` less that maximum, and
whether the target's day is a published 4CP alert day (0 where unpublished). The
forecast is :math:`\hat\pi_u(\tau) = \tilde D_u + \hat y_\tau`, sorted across levels (no crossing).

Training and no look-ahead
--------------------------
Models are retrained every ``retrain_every_h`` hours of the horizon (default daily) at a retrain
interval :math:`T`, on samples whose decision time *and* target lie before :math:`T` and within
the last ``window_days`` days (a rolling window; decision times every ``sample_every`` intervals,
leads from ``leads``). They then forecast every decision :math:`d \in [T, T')` up to the next
retrain. Before ``min_history_days`` of history the forecast is the day-ahead price at every level
(:func:`da_only_quantiles`), the reference the pinball loss is compared against. Training is
deterministic: fixed seed, ``deterministic=True``, one thread, so the same prices give the same
forecast on any machine load.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from drakewell.core.errors import DispatchError
from drakewell.dispatch.types import DispatchInputs, FloatArray, IntArray
from drakewell.inputs.prices import CENTRAL

DEFAULT_LEVELS: tuple[float, ...] = (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95)
DEFAULT_LEADS: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160)
N_FEATURES = 18


@dataclass(frozen=True)
class ForecastConfig:
    """How the quantile forecast is learned (leads and windows in intervals unless named)."""

    levels: tuple[float, ...] = DEFAULT_LEVELS
    leads: tuple[int, ...] = DEFAULT_LEADS
    retrain_every_h: float = 24.0
    window_days: float = 21.0
    min_history_days: float = 2.0
    sample_every: int = 8
    n_estimators: int = 40
    learning_rate: float = 0.12
    max_bin: int = 63
    num_leaves: int = 15
    min_data_in_leaf: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if (
            not self.levels
            or any(not 0 < q < 1 for q in self.levels)
            or list(self.levels) != sorted(set(self.levels))
        ):
            raise DispatchError(
                f"forecast levels {self.levels} must be distinct, increasing and inside (0, 1)",
                hint="e.g. levels = (0.1, 0.3, 0.5, 0.7, 0.9)",
            )
        if not self.leads or min(self.leads) < 1:
            raise DispatchError(f"forecast leads {self.leads} must be >= 1 interval", hint="e.g. (1, 4, 96)")
        if self.retrain_every_h <= 0 or self.window_days <= 0 or self.min_history_days < 0:
            raise DispatchError(
                "forecast retrain_every_h and window_days must be > 0, min_history_days >= 0",
                hint="e.g. retrain daily on a 28-day window",
            )

    @property
    def weights(self) -> FloatArray:
        """Probability weight of each level's scenario: the width of the bin around it."""
        q = np.asarray(self.levels)
        edges = np.concatenate([[0.0], (q[1:] + q[:-1]) / 2, [1.0]])
        return np.diff(edges)


def _require_lightgbm() -> object:
    try:
        import lightgbm
    except ImportError:  # pragma: no cover - the forecast extra is part of every install here
        raise DispatchError(
            "the stochastic policy needs LightGBM for its price forecast",
            hint="install the forecast extra: pip install 'drakewell[forecast]'",
        ) from None
    return lightgbm


def pinball_loss(actual: FloatArray, quantiles: FloatArray, levels: tuple[float, ...]) -> float:
    """Mean pinball loss (USD/MWh) of ``quantiles`` (rows × levels) against ``actual`` (rows)."""
    q = np.asarray(levels)[None, :]
    diff = np.asarray(actual, dtype=np.float64)[:, None] - quantiles
    return float(np.mean(np.maximum(q * diff, (q - 1.0) * diff)))


class _Known:
    """Per-interval series an operator knows, precomputed once (each entry uses only its past)."""

    def __init__(self, inputs: DispatchInputs) -> None:
        n = inputs.n
        self.n = n
        self.per_day = round(24 / inputs.hours)
        self.hours = inputs.hours
        rt = inputs.price_usd_per_mwh
        da = inputs.forecast_usd_per_mwh
        self.rt = rt
        self.da = da
        known = np.maximum.accumulate(inputs.forecast_known_from)
        self.last_known = np.searchsorted(known, np.arange(n), side="right") - 1
        local = inputs.interval_start_utc.tz_convert(CENTRAL)
        self.hour = np.asarray(local.hour, dtype=np.float64)
        self.weekday = np.asarray(local.day_of_week, dtype=np.float64)
        csum = np.concatenate([[0.0], np.cumsum(rt)])
        idx = np.arange(n)
        lo1 = np.maximum(idx - 3, 0)
        self.rt_1h = (csum[idx + 1] - csum[lo1]) / (idx + 1 - lo1)
        spread = rt - da
        w = self.per_day
        lo = np.maximum(idx - w + 1, 0)
        s1 = np.concatenate([[0.0], np.cumsum(spread)])
        s2 = np.concatenate([[0.0], np.cumsum(spread * spread)])
        cnt = idx + 1 - lo
        mean = (s1[idx + 1] - s1[lo]) / cnt
        self.spread_mean = mean
        self.spread_std = np.sqrt(np.maximum((s2[idx + 1] - s2[lo]) / cnt - mean * mean, 0.0))
        # running 24 h maximum of the real-time price (a sliding window over the past only)
        padded = np.concatenate([np.full(w - 1, -np.inf), rt])
        view = np.lib.stride_tricks.sliding_window_view(padded, w)
        self.rt_max = view.max(axis=1)
        # running 7-day maximum, and the day-ahead daily maximum of each Central Time day
        wk = 7 * w
        padded = np.concatenate([np.full(wk - 1, -np.inf), rt])
        self.rt_max_7d = np.lib.stride_tricks.sliding_window_view(padded, wk).max(axis=1)
        day = np.asarray(local.normalize().asi8)
        _, first, inverse = np.unique(day, return_index=True, return_inverse=True)
        self.da_day_max = np.maximum.reduceat(da, np.sort(first))[inverse] if n else da
        self.alert = np.asarray(inputs.four_cp_forecast, dtype=np.float64)

    def da_known(self, d: IntArray, u: IntArray) -> tuple[FloatArray, FloatArray]:
        """The day-ahead price of ``u`` as known at ``d`` (or the last published day's same hour)."""
        lk = self.last_known[d]
        pub = u <= lk
        back = u - self.per_day * np.ceil(np.maximum(u - lk, 0) / self.per_day).astype(np.int64)
        src = np.clip(np.where(pub, u, back), 0, self.n - 1)
        return self.da[src], pub.astype(np.float64)

    def features(self, d: IntArray, u: IntArray) -> tuple[FloatArray, FloatArray]:
        """Feature rows for decisions ``d`` and targets ``u`` (``u > d``), and the base price."""
        uc = np.clip(u, 0, self.n - 1)
        base, pub = self.da_known(d, uc)
        # same time of day on the last day already seen at d
        same = u - self.per_day * np.ceil((u - d) / self.per_day).astype(np.int64)
        same = np.clip(same, 0, self.n - 1)
        # the same time of day on the two days before that
        same2 = np.clip(same - self.per_day, 0, self.n - 1)
        same3 = np.clip(same - 2 * self.per_day, 0, self.n - 1)
        # the day-ahead maximum of the target's day where published, else of the last published day
        last_day = np.clip(self.last_known[d], 0, self.n - 1)
        peak = np.where(pub > 0, self.da_day_max[uc], self.da_day_max[last_day])
        # calendar features of targets past the horizon continue the daily/weekly cycle
        beyond = u - uc
        hour = (self.hour[uc] + beyond * self.hours) % 24
        weekday = (self.weekday[uc] + np.floor((self.hour[uc] + beyond * self.hours) / 24)) % 7
        x = np.column_stack(
            [
                (u - d) * self.hours,
                base,
                pub,
                hour,
                weekday,
                self.rt[d],
                self.rt_1h[d],
                self.spread_mean[d],
                self.spread_std[d],
                self.rt_max[d],
                self.rt[same],
                self.rt[d] - self.da[d],
                self.rt[same] - self.da[same],
                np.maximum(np.maximum(self.rt[same], self.rt[same2]), self.rt[same3]),
                peak,
                base - peak,
                self.rt_max_7d[d],
                self.alert[uc] * pub,
            ]
        )
        return x, base


@dataclass(frozen=True)
class PriceForecast:
    """Quantile forecasts for every decision interval at fixed lead offsets.

    ``quantiles[t, i, j]``: level ``levels[j]`` of the real-time price at interval ``t + offsets[i]``
    as forecast at ``t`` (USD/MWh). ``trained[t]``: whether a learned model (not the day-ahead
    fallback) made row ``t``. ``train_seconds``: wall time spent learning.
    """

    offsets: IntArray
    levels: tuple[float, ...]
    weights: FloatArray
    quantiles: FloatArray
    trained: np.ndarray
    train_seconds: float

    def mean(self) -> FloatArray:
        """Expected price per decision and offset (the scenario-weighted mean), shape (n, offsets)."""
        return np.asarray(self.quantiles @ self.weights, dtype=np.float64)


class QuantileForecaster:
    """Learns and applies the quantile models (see the module docstring)."""

    def __init__(self, inputs: DispatchInputs, config: ForecastConfig | None = None) -> None:
        self.config = config or ForecastConfig()
        self.inputs = inputs
        self.known = _Known(inputs)
        self.models: list[object] = []
        self.trained_at = -1

    def retrain_points(self) -> IntArray:
        """Intervals at which the models are (re)trained."""
        step = max(round(self.config.retrain_every_h / self.inputs.hours), 1)
        return np.arange(0, self.inputs.n, step, dtype=np.int64)

    def fit(self, t: int) -> bool:
        """Train on samples fully known before ``t``; returns False (no model) without enough history."""
        lgb = _require_lightgbm()
        cfg, k = self.config, self.known
        per_day = k.per_day
        if t < cfg.min_history_days * per_day:
            self.models, self.trained_at = [], t
            return False
        first = max(0, t - int(cfg.window_days * per_day))
        d = np.arange(first, t, cfg.sample_every, dtype=np.int64)
        leads = np.asarray(cfg.leads, dtype=np.int64)
        dd = np.repeat(d, len(leads))
        uu = dd + np.tile(leads, len(d))
        keep = uu < t
        dd, uu = dd[keep], uu[keep]
        if len(dd) < 10 * cfg.min_data_in_leaf:
            self.models, self.trained_at = [], t
            return False
        x, base = k.features(dd, uu)
        y = k.rt[uu] - base
        models = []
        # one binned dataset serves every level (binning does not depend on the objective)
        data = lgb.Dataset(  # type: ignore[attr-defined]
            x, label=y, params={"verbose": -1, "max_bin": cfg.max_bin}, free_raw_data=False
        )
        for level in cfg.levels:
            params = {
                "objective": "quantile",
                "alpha": level,
                "learning_rate": cfg.learning_rate,
                "num_leaves": cfg.num_leaves,
                "min_data_in_leaf": cfg.min_data_in_leaf,
                "seed": cfg.seed,
                "deterministic": True,
                "force_row_wise": True,
                "num_threads": 1,
                "verbose": -1,
                "max_bin": cfg.max_bin,
            }
            models.append(lgb.train(params, data, num_boost_round=cfg.n_estimators))  # type: ignore[attr-defined]
        self.models, self.trained_at = models, t
        return True

    def predict(self, d: IntArray, u: IntArray) -> FloatArray:
        """Sorted quantiles (rows × levels) of the real-time price at ``u`` given what ``d`` knows,
        with the current models (day-ahead at every level when there are none)."""
        x, base = self.known.features(d, u)
        if not self.models:
            return np.repeat(base[:, None], len(self.config.levels), axis=1)
        pred = np.column_stack([m.predict(x, num_threads=1) for m in self.models])  # type: ignore[attr-defined]
        return np.sort(base[:, None] + pred, axis=1)


def da_only_quantiles(inputs: DispatchInputs, d: IntArray, u: IntArray, n_levels: int) -> FloatArray:
    """The reference forecast: the day-ahead price known at ``d`` for ``u`` at every level."""
    base, _ = _Known(inputs).da_known(d, np.clip(u, 0, inputs.n - 1))
    return np.repeat(base[:, None], n_levels, axis=1)


def rolling_forecast(
    inputs: DispatchInputs, offsets: IntArray, config: ForecastConfig | None = None
) -> PriceForecast:
    """Forecast every decision interval ``t`` at ``t + offsets``, retraining on the rolling past
    (see the module docstring). The trained models are cached per (prices, config) in this process,
    so forecasts at other offsets of the same prices only predict."""
    cfg = config or ForecastConfig()
    offs = np.asarray(offsets, dtype=np.int64)
    if len(offs) == 0 or (offs < 1).any():
        raise DispatchError(
            "forecast offsets must be >= 1 interval ahead", hint="the current real-time price is known"
        )
    fc, fitted, seconds = _trained(inputs, cfg)
    n = inputs.n
    out = np.zeros((n, len(offs), len(cfg.levels)))
    trained = np.zeros(n, dtype=bool)
    points = fc.retrain_points()
    ends = np.concatenate([points[1:], [n]])
    for start, stop, models in zip(points, ends, fitted, strict=True):
        fc.models = models
        d = np.repeat(np.arange(start, stop, dtype=np.int64), len(offs))
        u = d + np.tile(offs, int(stop - start))
        out[start:stop] = fc.predict(d, u).reshape(int(stop - start), len(offs), len(cfg.levels))
        trained[start:stop] = bool(models)
    return PriceForecast(offs, cfg.levels, cfg.weights, out, trained, seconds)


def forecast_at(
    inputs: DispatchInputs, d: IntArray, u: IntArray, config: ForecastConfig | None = None
) -> FloatArray:
    """Quantiles (rows × levels) for decisions ``d`` and targets ``u >= d``, each made with the models
    of the last retrain at or before its decision (the same models :func:`rolling_forecast` uses)."""
    cfg = config or ForecastConfig()
    fc, fitted, _ = _trained(inputs, cfg)
    d = np.asarray(d, dtype=np.int64)
    u = np.asarray(u, dtype=np.int64)
    which = np.searchsorted(fc.retrain_points(), d, side="right") - 1
    out = np.empty((len(d), len(cfg.levels)))
    for w in np.unique(which):
        sel = which == w
        fc.models = fitted[int(w)]
        out[sel] = fc.predict(d[sel], u[sel])
    return out


_CACHE: OrderedDict[str, tuple[QuantileForecaster, list[list[object]], float]] = OrderedDict()
_CACHE_SIZE = 4


def clear_forecast_cache() -> None:
    """Forget the trained models (the next forecast retrains; benchmarks time a cold start)."""
    _CACHE.clear()


def _trained(
    inputs: DispatchInputs, cfg: ForecastConfig
) -> tuple[QuantileForecaster, list[list[object]], float]:
    """The models of every retrain point (empty before the warm-up), and the seconds spent."""

    key = _cache_key(inputs, cfg)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    t0 = time.perf_counter()
    fc = QuantileForecaster(inputs, cfg)
    fitted: list[list[object]] = []
    for start in fc.retrain_points():
        fc.fit(int(start))
        fitted.append(fc.models)
    entry = (fc, fitted, time.perf_counter() - t0)
    _CACHE[key] = entry
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return entry


def _cache_key(inputs: DispatchInputs, cfg: ForecastConfig) -> str:
    h = hashlib.sha256()
    for arr in (
        inputs.price_usd_per_mwh,
        inputs.forecast_usd_per_mwh,
        inputs.forecast_known_from,
        np.asarray(inputs.interval_start_utc.asi8),
    ):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(repr(cfg).encode())
    return h.hexdigest()


def evaluate_forecast(
    inputs: DispatchInputs, leads: tuple[int, ...] = (1, 4, 16, 48, 96), config: ForecastConfig | None = None
) -> dict[str, float]:
    """Pinball loss of the learned forecast and of the day-ahead-only forecast on the same rows:
    every decision with a trained model, at ``leads``, whose target lies inside the horizon."""
    cfg = config or ForecastConfig()
    offs = np.asarray(leads, dtype=np.int64)
    fc = rolling_forecast(inputs, offs, cfg)
    n = inputs.n
    d = np.repeat(np.arange(n, dtype=np.int64), len(offs))
    u = d + np.tile(offs, n)
    rows = (u < n) & np.repeat(fc.trained, len(offs))
    if not rows.any():
        raise DispatchError(
            "no forecast to score: the horizon is shorter than the training warm-up",
            hint=f"use at least {cfg.min_history_days + 1:g} days of prices",
        )
    q = fc.quantiles.reshape(n * len(offs), len(cfg.levels))[rows]
    actual = inputs.price_usd_per_mwh[u[rows]]
    ref = da_only_quantiles(inputs, d[rows], u[rows], len(cfg.levels))
    return {
        "pinball_loss": pinball_loss(actual, q, cfg.levels),
        "pinball_loss_da_only": pinball_loss(actual, ref, cfg.levels),
        "rows": float(rows.sum()),
        "train_seconds": fc.train_seconds,
    }
