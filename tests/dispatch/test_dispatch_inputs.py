"""The adapter from a site file and price frames to dispatch inputs, and every bad input it refuses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from drakewell.core.errors import DispatchError, InputDataError
from drakewell.dispatch.backtest import resolve_site
from drakewell.dispatch.inputs import build_inputs, dispatch_site, forecast_publication
from drakewell.dispatch.types import DispatchInputError, DispatchInputs, DispatchSite, TrainingLoad
from drakewell.inputs.synthetic import synthetic_inputs
from drakewell.site import Site

Make = Callable[..., DispatchInputs]


@pytest.fixture(scope="module")
def site() -> Site:
    return resolve_site(None)


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    syn = synthetic_inputs("2023-07-03", 9, seed=2)
    return syn.rt, syn.da


def test_example_site_flattens_to_it_power_and_per_gpu_figures(site: Site) -> None:
    d = dispatch_site(site)
    assert d.mining_it_mw == pytest.approx(15_680 * 3_645 / 1e6)
    assert d.mining_pue == pytest.approx(1.05)
    assert d.mining_j_per_th == pytest.approx(13.5)
    assert d.mining_ramp_up_mw_per_interval == pytest.approx(15.0 / 1.05)  # facility MW → IT MW
    assert d.mining_min_off_intervals == 4
    assert d.gpu_mw == pytest.approx(0.001275)
    assert d.ai_pue == pytest.approx(1.25)
    assert d.ai_revenue_usd_per_mwh == pytest.approx(2.0 / 0.001275)
    assert d.four_cp_rate_usd_per_mw == pytest.approx(60_000 / 4)
    assert d.contract == "fixed_block" and d.block_mw == 70.0


def test_day_ahead_price_is_known_from_13h_central_the_day_before() -> None:
    index = pd.date_range("2023-07-03T05:00Z", periods=4 * 96, freq="15min")  # from midnight CDT
    known = forecast_publication(index)
    day3_10am = index.get_loc(pd.Timestamp("2023-07-05T10:00-05:00"))
    assert index[known[day3_10am]] == pd.Timestamp("2023-07-04T13:00-05:00")
    assert known[:96].max() == 0  # the first day was published before the data starts
    assert (np.diff(known) >= 0).all()


def test_build_inputs_aligns_every_series(site: Site, frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    rt, da = frames
    inputs = build_inputs(site, rt, da, 55.0, "LZ_NORTH")
    assert inputs.n == len(rt) and inputs.hours == 0.25 and inputs.zone == "LZ_NORTH"
    np.testing.assert_allclose(inputs.price_usd_per_mwh, rt["LZ_NORTH"].to_numpy())
    hour = rt.index.floor("h")
    np.testing.assert_allclose(inputs.forecast_usd_per_mwh, da["LZ_NORTH"].reindex(hour).to_numpy())
    assert (inputs.hashprice_usd_per_ph_day == 55.0).all()
    np.testing.assert_allclose(
        inputs.reserve_price_usd_per_mw_h, np.maximum(0.3 * inputs.forecast_usd_per_mwh, 0)
    )
    assert len(inputs.jobs) == 1  # one weekly job fits in nine days
    job = inputs.jobs[0]
    assert (job.release, job.deadline) == (0, 7 * 96)
    assert job.energy_mwh == pytest.approx(600_000 * 0.001275)
    assert inputs.ai_inference_mw.max() <= inputs.site.gpu_it_mw


def test_without_a_forecast_file_the_forecast_is_yesterdays_real_time(
    site: Site, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    rt, _ = frames
    inputs = build_inputs(site, rt, None, 55.0, "LZ_WEST")
    np.testing.assert_allclose(inputs.forecast_usd_per_mwh[96:], inputs.price_usd_per_mwh[:-96])
    assert (inputs.forecast_known_from <= np.arange(inputs.n)).all()


def test_unknown_zone_is_refused_with_the_zones_present(
    site: Site, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    with pytest.raises(InputDataError, match="LZ_MARS") as err:
        build_inputs(site, frames[0], frames[1], 55.0, "LZ_MARS")
    assert "LZ_WEST" in (err.value.hint or "")


def test_price_interval_must_match_the_site(site: Site, frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    with pytest.raises(DispatchInputError, match="dispatches every 15 min"):
        build_inputs(site, frames[1], None, 55.0, "LZ_WEST")  # hourly prices


def test_day_ahead_must_cover_the_real_time_range(
    site: Site, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    rt, da = frames
    with pytest.raises(InputDataError, match="do not cover"):
        build_inputs(site, rt, da.iloc[:24], 55.0, "LZ_WEST")


@pytest.mark.parametrize(
    ("hashprice", "error", "match"),
    [
        (-1.0, DispatchError, "finite and >= 0"),
        (float("nan"), DispatchError, "finite and >= 0"),
        (np.ones(5), DispatchInputError, "shape"),
        (pd.Series([50.0], index=pd.DatetimeIndex(["2024-01-01"], tz="UTC")), InputDataError, "no value for"),
    ],
)
def test_bad_hashprice_is_refused(
    site: Site, frames: tuple[pd.DataFrame, pd.DataFrame], hashprice: object, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        build_inputs(site, frames[0], frames[1], hashprice, "LZ_WEST")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"connection_mw": -1.0}, "connection_mw"),
        ({"mining_it_mw": float("inf")}, "mining_it_mw"),
        ({"mining_pue": 0.9}, "mining_pue"),
        ({"mining_j_per_th": 0.0}, "mining_j_per_th"),
        ({"gpu_count": -5}, "counts"),
        ({"contract": "barter"}, "unknown power contract"),
        ({"reserve_penalty_multiplier": -1.0}, "reserve_penalty_multiplier"),
    ],
)
def test_bad_site_numbers_are_refused_naming_the_key(
    tiny_site: DispatchSite, change: dict[str, object], match: str
) -> None:
    with pytest.raises(DispatchInputError, match=match):
        replace(tiny_site, **change)  # type: ignore[arg-type]


def test_bad_series_are_refused(tiny_inputs: Make) -> None:
    good = tiny_inputs([10.0, 20.0, 30.0])
    with pytest.raises(DispatchInputError, match="'price_usd_per_mwh' has 2 values for 3"):
        replace(good, price_usd_per_mwh=np.array([1.0, 2.0]))
    with pytest.raises(DispatchInputError, match="NaN at interval 1"):
        replace(good, forecast_usd_per_mwh=np.array([1.0, np.nan, 2.0]))
    with pytest.raises(DispatchInputError, match="no intervals"):
        tiny_inputs([])
    with pytest.raises(DispatchInputError, match=">= 0"):
        tiny_inputs([1.0], demand=-1.0)
    with pytest.raises(DispatchInputError, match="training job 'late'"):
        tiny_inputs([1.0, 2.0], jobs=[TrainingLoad("late", 1.0, 1, 5, 1.0, 0.0, 0.0)])
    with pytest.raises(DispatchInputError, match="interval length"):
        replace(good, hours=0.0)


def test_dispatch_site_is_frozen(tiny_site: DispatchSite) -> None:
    with pytest.raises(AttributeError):
        tiny_site.connection_mw = 5.0  # type: ignore[misc]


def test_synthetic_default_picks_4cp_intervals_by_the_proxy_rule() -> None:
    from drakewell.dispatch.backtest import load_backtest_inputs

    inputs = load_backtest_inputs(None, zone="LZ_NORTH", seed=3)
    assert inputs.n == 92 * 96
    picks = np.flatnonzero(inputs.four_cp)
    assert len(picks) == 3  # July, August, September
    local = inputs.interval_start_utc.tz_convert("America/Chicago")
    for i in picks:
        same_month = (
            (local.month == local[i].month) & (local.day_of_week < 5) & (local.hour >= 15) & (local.hour < 19)
        )
        assert inputs.price_usd_per_mwh[i] == inputs.price_usd_per_mwh[np.asarray(same_month)].max()


def test_4cp_alerts_follow_the_sites_forecast_rule(
    site: Site, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    from drakewell.inputs.grid import forecast_4cp_alerts

    rt, da = frames
    fc = site.markets.four_cp
    inputs = build_inputs(site, rt, da, 55.0, "LZ_WEST")
    expected = forecast_4cp_alerts(
        da,
        inputs.interval_start_utc,
        zone=fc.forecast_zone,
        ratio=fc.forecast_ratio,
        threshold_usd_per_mwh=fc.forecast_threshold_usd_per_mwh,
    )
    np.testing.assert_array_equal(inputs.four_cp_forecast, expected)
    no_da = build_inputs(site, rt, None, 55.0, "LZ_WEST")
    local = inputs.interval_start_utc.tz_convert("America/Chicago")
    window = (local.day_of_week < 5) & (local.hour >= 15) & (local.hour < 19)
    np.testing.assert_array_equal(no_da.four_cp_forecast, np.asarray(window))
