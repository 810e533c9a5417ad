"""The quantile price forecast: pinball loss, past-only training, determinism, and its errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from drakewell.core.errors import DispatchError, DrakewellError
from drakewell.dispatch.backtest import resolve_site
from drakewell.dispatch.forecast import (
    ForecastConfig,
    clear_forecast_cache,
    da_only_quantiles,
    evaluate_forecast,
    forecast_at,
    pinball_loss,
    rolling_forecast,
)
from drakewell.dispatch.inputs import build_inputs
from drakewell.dispatch.types import DispatchInputs
from drakewell.inputs.synthetic import synthetic_inputs

FAST = ForecastConfig(levels=(0.1, 0.5, 0.9), min_history_days=1.0, n_estimators=15, sample_every=8)


@pytest.fixture(scope="module")
def days() -> DispatchInputs:
    syn = synthetic_inputs("2023-08-07", 4, seed=11)
    return build_inputs(resolve_site(None), syn.rt, syn.da, syn.hashprice, "LZ_WEST")


def test_pinball_loss_of_a_hand_case() -> None:
    # actual 10; quantiles 8 (tau .1) and 14 (tau .9): .1*2 = .2 and (.9-1)*(10-14) = .4
    assert pinball_loss(np.array([10.0]), np.array([[8.0, 14.0]]), (0.1, 0.9)) == pytest.approx(0.3)
    assert pinball_loss(np.array([5.0, 7.0]), np.array([[5.0], [7.0]]), (0.5,)) == 0.0


def test_levels_weights_are_the_bins_around_each_level() -> None:
    w = ForecastConfig().weights
    assert w.sum() == pytest.approx(1.0)
    assert w[0] == pytest.approx(0.125) and w[3] == pytest.approx(0.15)


@pytest.mark.parametrize(
    "changes",
    [{"levels": (0.5, 0.2)}, {"levels": (0.0, 0.5)}, {"leads": (0, 4)}, {"window_days": 0.0}],
)
def test_bad_configurations_are_refused_with_a_hint(changes: dict[str, object]) -> None:
    with pytest.raises(DrakewellError) as err:
        ForecastConfig(**changes)  # type: ignore[arg-type]
    assert err.value.hint


def test_forecast_warms_up_on_day_ahead_then_learns_sorted_quantiles(days: DispatchInputs) -> None:
    fc = rolling_forecast(days, np.array([1, 8, 40]), FAST)
    per_day = 96
    assert not fc.trained[:per_day].any() and fc.trained[2 * per_day :].all()
    # before the warm-up every level is the day-ahead price known at the decision
    warm = int(np.argmax(fc.trained))
    d = np.repeat(np.arange(warm), 3)
    u = d + np.tile([1, 8, 40], warm)
    ref = da_only_quantiles(days, d, u, 3).reshape(warm, 3, 3)
    assert np.array_equal(fc.quantiles[:warm], ref)
    assert not np.array_equal(fc.quantiles[warm:, :, 0], fc.quantiles[warm:, :, 2])
    assert (np.diff(fc.quantiles, axis=2) >= 0).all()
    assert np.isfinite(fc.quantiles).all()


def test_forecast_is_deterministic_and_reads_only_the_past(days: DispatchInputs) -> None:
    clear_forecast_cache()
    first = rolling_forecast(days, np.array([1, 16]), FAST).quantiles.copy()
    clear_forecast_cache()
    assert np.array_equal(first, rolling_forecast(days, np.array([1, 16]), FAST).quantiles)
    # change every real-time price from t on: the forecasts made before t stay the same
    t = 2 * 96 + 30
    price = days.price_usd_per_mwh.copy()
    price[t:] = np.random.default_rng(3).uniform(-30, 3000, size=days.n - t)
    changed = replace(days, price_usd_per_mwh=price)
    other = rolling_forecast(changed, np.array([1, 16]), FAST).quantiles
    assert np.array_equal(first[:t], other[:t])
    assert not np.array_equal(first[t:], other[t:])
    # forecast_at uses the same models as the rolling forecast
    d = np.array([t - 1, t - 1])
    u = d + np.array([1, 16])
    assert np.allclose(forecast_at(days, d, u, FAST), first[t - 1])


def test_evaluation_compares_with_the_day_ahead_only_forecast_on_the_same_rows(days: DispatchInputs) -> None:
    loss = evaluate_forecast(days, leads=(1, 8), config=FAST)
    assert loss["rows"] > 0 and loss["pinball_loss"] > 0 and loss["pinball_loss_da_only"] > 0
    with pytest.raises(DispatchError, match="no forecast to score"):
        evaluate_forecast(days.slice(0, 90), leads=(1,), config=FAST)
    with pytest.raises(DispatchError, match="offsets"):
        rolling_forecast(days, np.array([0, 4]), FAST)
