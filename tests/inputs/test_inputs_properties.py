"""Invariants of the input layer, stated as properties."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from drakewell.inputs.bitcoin import HALVING_INTERVAL, block_subsidy_sats, mining_revenue_usd_per_mwh
from drakewell.inputs.prices import load_ercot_prices, write_ercot_prices


def test_total_subsidy_never_reaches_21_million_btc() -> None:
    total_sats = sum(HALVING_INTERVAL * block_subsidy_sats(era * HALVING_INTERVAL) for era in range(70))
    assert total_sats == 2_099_999_997_690_000  # the known cap: 20,999,999.9769 BTC


@given(
    start=st.datetimes(
        min_value=pd.Timestamp("2015-01-01").to_pydatetime(),
        max_value=pd.Timestamp("2035-12-31").to_pydatetime(),
    ),
    n=st.integers(min_value=2, max_value=300),
    hourly=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
@settings(max_examples=40, deadline=None)
def test_any_regular_frame_round_trips_through_an_ercot_csv(
    start: object, n: int, hourly: bool, seed: int
) -> None:
    # any span, including DST changes: written in Central Time with offsets, read back to the same UTC frame
    freq = "h" if hourly else "15min"
    first = pd.Timestamp(start).tz_localize("UTC").floor(freq)
    index = pd.date_range(first, periods=n, freq=freq, name="interval_start_utc").as_unit("ns")
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"LZ_WEST": np.round(rng.normal(40, 300, n), 2), "LZ_NORTH": np.round(rng.normal(30, 50, n), 2)},
        index=index,
    )
    with tempfile.TemporaryDirectory() as folder:
        back = load_ercot_prices(write_ercot_prices(frame, Path(folder) / "p.csv"))
    pd.testing.assert_frame_equal(back, frame, check_freq=False)


@given(
    efficiency=st.floats(min_value=5, max_value=100),
    hashprice=st.floats(min_value=1, max_value=500),
    pue=st.floats(min_value=1.0, max_value=2.0),
)
def test_revenue_per_mwh_scales_as_hashprice_over_efficiency_times_pue(
    efficiency: float, hashprice: float, pue: float
) -> None:
    revenue = mining_revenue_usd_per_mwh(efficiency, hashprice, pue=pue)
    # doubling the hashprice doubles revenue; doubling efficiency or PUE halves it
    assert np.isclose(mining_revenue_usd_per_mwh(efficiency, 2 * hashprice, pue=pue), 2 * revenue)
    assert np.isclose(mining_revenue_usd_per_mwh(2 * efficiency, hashprice, pue=pue), revenue / 2)
    # energy per PH-day (MWh) × revenue per MWh = the hashprice
    assert np.isclose(efficiency * pue * 24 / 1000 * revenue, hashprice)
