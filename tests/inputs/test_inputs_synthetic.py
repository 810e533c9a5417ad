"""Synthetic series: constants match the real data, and the generator reproduces them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from drakewell.core.errors import InputDataError
from drakewell.inputs.bitcoin import derive_daily_hashprice, load_btc_prices
from drakewell.inputs.prices import load_ercot_prices
from drakewell.inputs.synthetic import (
    BASE_SHAPE_CT,
    CALIBRATION,
    DA_SHAPE_CT,
    HASHPRICE_DAILY_LOG_STD,
    HASHPRICE_MEAN_USD_PER_PH_DAY,
    SPIKE_HOUR_WEIGHTS_CT,
    SPIKE_THRESHOLD_USD_PER_MWH,
    hourly_shape,
    measure_price_stats,
    synthetic_hashprice,
    synthetic_inputs,
    synthetic_prices,
)


def test_constants_are_the_statistics_of_the_real_2023_files(shared_data: Path) -> None:
    rt = load_ercot_prices(shared_data / "ercot" / "ercot_rtm_spp_2023-07_09.csv")
    da = load_ercot_prices(shared_data / "ercot" / "ercot_dam_spp_2023-07_09.csv")
    measured = measure_price_stats(rt, da)
    assert set(measured) == set(CALIBRATION)
    for zone, stats in CALIBRATION.items():
        real = measured[zone]
        assert real.rt_mean == pytest.approx(stats.rt_mean, abs=0.01)
        assert real.rt_base_mean == pytest.approx(stats.rt_base_mean, abs=0.01)
        assert real.spike_fraction == pytest.approx(stats.spike_fraction, abs=1e-5)
        assert real.spike_mean == pytest.approx(stats.spike_mean, abs=0.1)
        assert real.spike_day_fraction == pytest.approx(stats.spike_day_fraction, abs=1e-4)
        assert real.da_mean == pytest.approx(stats.da_mean, abs=0.01)
    west = rt["LZ_WEST"]
    base = west[west < SPIKE_THRESHOLD_USD_PER_MWH]
    assert hourly_shape(base) == pytest.approx(np.array(BASE_SHAPE_CT), abs=1e-4)
    assert hourly_shape(da["LZ_WEST"]) == pytest.approx(np.array(DA_SHAPE_CT), abs=1e-4)
    spikes = west[west >= SPIKE_THRESHOLD_USD_PER_MWH]
    hours = np.bincount(spikes.index.tz_convert("America/Chicago").hour, minlength=24)
    assert hours.tolist() == list(SPIKE_HOUR_WEIGHTS_CT)
    hashprice = derive_daily_hashprice(
        load_btc_prices(shared_data / "bitcoin" / "btc_price_volume_yahoo_lukmol.csv")
    )
    quarter = hashprice["2023-07-01":"2023-09-30"]
    assert quarter.mean() == pytest.approx(HASHPRICE_MEAN_USD_PER_PH_DAY, abs=0.01)
    assert np.diff(np.log(quarter.to_numpy())).std() == pytest.approx(HASHPRICE_DAILY_LOG_STD, abs=2e-4)


def test_generator_reproduces_the_stated_statistics() -> None:
    # ten quarters of synthetic data so the rare spikes are measured tightly
    rt, da = synthetic_prices("2023-07-01", days=920, seed=7)
    measured = measure_price_stats(rt, da)
    for zone, stats in CALIBRATION.items():
        got = measured[zone]
        assert got.rt_mean == pytest.approx(stats.rt_mean, rel=0.12), zone
        assert got.rt_base_mean == pytest.approx(stats.rt_base_mean, rel=0.10), zone
        assert got.spike_fraction == pytest.approx(stats.spike_fraction, rel=0.15), zone
        assert got.spike_mean == pytest.approx(stats.spike_mean, rel=0.10), zone
        assert got.spike_day_fraction == pytest.approx(stats.spike_day_fraction, abs=0.06), zone
        assert got.da_mean == pytest.approx(stats.da_mean, rel=0.12), zone
    west = rt["LZ_WEST"]
    base = west[west < SPIKE_THRESHOLD_USD_PER_MWH]
    assert np.corrcoef(hourly_shape(base), BASE_SHAPE_CT)[0, 1] > 0.98
    assert np.corrcoef(hourly_shape(da["LZ_WEST"]), DA_SHAPE_CT)[0, 1] > 0.98
    spike_hours = set(west[west >= SPIKE_THRESHOLD_USD_PER_MWH].index.tz_convert("America/Chicago").hour)
    assert spike_hours <= set(range(11, 23))  # afternoons and evenings, like the real data


def test_frames_have_the_loader_shape_and_are_seeded() -> None:
    inputs = synthetic_inputs("2023-07-01", days=3, seed=1)
    rt, da = inputs.rt, inputs.da
    assert len(rt) == 3 * 96 and len(da) == 3 * 24
    assert rt.index[0] == pd.Timestamp("2023-07-01T05:00Z")  # Central-Time midnight
    assert str(rt.index.tz) == "UTC" and rt.index.name == "interval_start_utc"
    assert rt.attrs["interval_minutes"] == 15 and da.attrs["market"] == "da"
    assert list(rt.columns) == list(CALIBRATION)
    assert len(inputs.hashprice) >= 3
    again = synthetic_inputs("2023-07-01", days=3, seed=1)
    pd.testing.assert_frame_equal(rt, again.rt)
    pd.testing.assert_series_equal(inputs.hashprice, again.hashprice)
    other = synthetic_inputs("2023-07-01", days=3, seed=2)
    assert not rt.equals(other.rt)


def test_synthetic_hashprice_level_and_volatility() -> None:
    series = synthetic_hashprice("2023-07-01", days=3650, seed=3)
    assert series.mean() == pytest.approx(HASHPRICE_MEAN_USD_PER_PH_DAY, rel=0.10)
    log_std = np.diff(np.log(series.to_numpy())).std()
    assert log_std == pytest.approx(HASHPRICE_DAILY_LOG_STD, rel=0.10)
    assert (series > 0).all()


def test_bad_arguments() -> None:
    with pytest.raises(InputDataError, match="no calibration for zone"):
        synthetic_prices(days=1, zones=("LZ_EAST",))
    with pytest.raises(InputDataError, match="at least one day"):
        synthetic_prices(days=0)
    with pytest.raises(InputDataError, match="at least one day"):
        synthetic_hashprice(days=0)
