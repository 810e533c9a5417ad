"""Bitcoin economics against hand-computed values."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from drakewell.catalog import load_catalog
from drakewell.core.errors import InputDataError
from drakewell.inputs.bitcoin import (
    DIFFICULTY_LEVELS_2023,
    block_subsidy_btc,
    block_subsidy_sats,
    breakeven_usd_per_mwh,
    derive_daily_hashprice,
    estimate_height,
    hashprice_on_index,
    hashprice_usd_per_ph_day,
    hashrate_eh_s_from_difficulty,
    load_btc_prices,
    load_hashprice_csv,
    mining_revenue_usd_per_mwh,
    parse_hashprice,
    subsidy_btc_at,
)


def test_subsidy_halves_every_210000_blocks() -> None:
    assert block_subsidy_btc(0) == 50.0
    assert block_subsidy_btc(209_999) == 50.0
    assert block_subsidy_btc(210_000) == 25.0
    assert block_subsidy_btc(839_999) == 6.25
    assert block_subsidy_btc(840_000) == 3.125
    assert block_subsidy_sats(1_050_000) == 156_250_000
    assert block_subsidy_sats(64 * 210_000) == 0
    with pytest.raises(ValueError):
        block_subsidy_sats(-1)


def test_subsidy_by_date_switches_at_block_840000() -> None:
    assert subsidy_btc_at(datetime(2024, 4, 20, 0, 0, tzinfo=UTC)) == 6.25
    assert subsidy_btc_at(datetime(2024, 4, 20, 0, 10, tzinfo=UTC)) == 3.125
    assert subsidy_btc_at(datetime(2023, 7, 1, tzinfo=UTC)) == 6.25
    # block 797,200 or so was mined on 2023-07-01; interpolation stays within a few hundred blocks
    assert abs(estimate_height(datetime(2023, 7, 1, tzinfo=UTC)) - 797_200) < 1_000
    with pytest.raises(ValueError):
        estimate_height(datetime(2023, 7, 1))


def test_hashrate_from_difficulty_by_hand() -> None:
    # D × 2^32 / 600 s: 55.62e12 × 4294967296 / 600 = 3.981e20 H/s = 398.1 EH/s
    assert hashrate_eh_s_from_difficulty(55.62e12) == pytest.approx(398.14, rel=1e-4)


def test_hashprice_by_hand() -> None:
    # 144 blocks × (6.25 + 0.15) BTC × $30,000 / 400,000 PH/s = $69.12 per PH/s per day
    assert hashprice_usd_per_ph_day(30_000, 400, 6.25, 0.15) == pytest.approx(69.12)
    assert hashprice_usd_per_ph_day(60_000, 600, 3.125) == pytest.approx(144 * 3.125 * 60_000 / 600_000)
    with pytest.raises(ValueError):
        hashprice_usd_per_ph_day(30_000, 0, 6.25)


def test_breakeven_13_5_j_per_th_at_43_usd_is_about_133_usd_per_mwh() -> None:
    # 13.5 J/TH → 1 PH/s draws 13.5 kW → 0.324 MWh a day; 43 / 0.324 = 132.72 $/MWh
    assert mining_revenue_usd_per_mwh(13.5, 43.0) == pytest.approx(43 / 0.324)
    assert mining_revenue_usd_per_mwh(13.5, 43.0) == pytest.approx(132.7, abs=0.05)
    s21xp = load_catalog().asic("S21 XP")
    assert breakeven_usd_per_mwh(s21xp, 43.0) == pytest.approx(132.716, abs=1e-3)
    # PUE 1.05 spreads the same revenue over 5 % more energy
    assert breakeven_usd_per_mwh(s21xp, 43.0, pue=1.05) == pytest.approx(132.716 / 1.05, abs=1e-3)
    # a 2 % pool fee
    assert breakeven_usd_per_mwh(s21xp, 43.0, pool_fee=0.02) == pytest.approx(132.716 * 0.98, abs=1e-3)
    # S19j Pro: 30.5 J/TH → 43 / 0.732 = 58.74
    assert breakeven_usd_per_mwh(load_catalog().asic("S19j Pro"), 43.0) == pytest.approx(58.74, abs=0.01)
    with pytest.raises(ValueError):
        mining_revenue_usd_per_mwh(13.5, 43.0, pue=0.9)
    with pytest.raises(ValueError):
        mining_revenue_usd_per_mwh(0.0, 43.0)


def test_parse_hashprice_constant_or_csv(tmp_path: Path) -> None:
    assert parse_hashprice("45") == 45.0
    assert parse_hashprice(43) == 43.0
    csv = tmp_path / "hp.csv"
    csv.write_text("date,hashprice_usd_per_ph_day\n2023-07-01,70.5\n2023-07-02,71\n", encoding="utf-8")
    series = parse_hashprice(str(csv))
    assert isinstance(series, pd.Series) and series.tolist() == [70.5, 71.0]
    with pytest.raises(InputDataError, match="neither a number nor an existing CSV"):
        parse_hashprice("lots")
    with pytest.raises(InputDataError, match="non-negative"):
        parse_hashprice("-3")


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ("2023-07-01,70\n2023-07-03,71\n", r"hp\.csv:3: 1 day\(s\) missing after 2023-07-01"),
        ("2023-07-01,70\n2023-07-01,71\n", r"hp\.csv:3: 2023-07-01 repeats line 2"),
        ("2023-07-01,seventy\n", r"hp\.csv:2: hashprice_usd_per_ph_day 'seventy' is not a positive number"),
        ("2023-07-01,-1\n", r"hp\.csv:2: .*not a positive number"),
        ("07/01/2023,70\n", r"hp\.csv:2: date '07/01/2023' is not YYYY-MM-DD"),
        ("2023-07-02,70\n2023-07-01,71\n", r"hp\.csv:3: 2023-07-01 is out of order"),
    ],
)
def test_bad_hashprice_csv_names_file_and_line(tmp_path: Path, body: str, pattern: str) -> None:
    csv = tmp_path / "hp.csv"
    csv.write_text("date,hashprice_usd_per_ph_day\n" + body, encoding="utf-8")
    with pytest.raises(InputDataError, match=pattern):
        load_hashprice_csv(csv)


def test_hashprice_csv_bad_header(tmp_path: Path) -> None:
    csv = tmp_path / "hp.csv"
    csv.write_text("day,usd\n2023-07-01,70\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"hp\.csv:1: header"):
        load_hashprice_csv(csv)


def test_hashprice_on_index_maps_utc_days() -> None:
    index = pd.date_range("2023-07-01T22:00Z", periods=12, freq="15min")  # crosses UTC midnight
    assert (hashprice_on_index(45.0, index) == 45.0).all()
    daily = pd.Series([70.0, 80.0], index=pd.DatetimeIndex(["2023-07-01", "2023-07-02"]).tz_localize("UTC"))
    values = hashprice_on_index(daily, index)
    assert values.tolist() == [70.0] * 8 + [80.0] * 4
    with pytest.raises(InputDataError, match="no value for 2023-07-03"):
        hashprice_on_index(daily, pd.date_range("2023-07-02T23:45Z", periods=2, freq="15min"))


def test_derived_hashprice_from_real_btc_prices(shared_data: Path) -> None:
    prices = load_btc_prices(shared_data / "bitcoin" / "btc_price_volume_yahoo_lukmol.csv")
    assert prices.index[0] == pd.Timestamp("2015-01-01", tz="UTC")
    hashprice = derive_daily_hashprice(prices)
    assert hashprice.index[0] == pd.Timestamp("2023-07-01", tz="UTC")
    # by hand for 2023-07-01: 144 × (6.25 + 0.15) × close / hashrate(53.98 T)
    close = float(prices.loc[pd.Timestamp("2023-07-01", tz="UTC")])
    by_hand = 144 * 6.4 * close / (DIFFICULTY_LEVELS_2023[0][1] * 2**32 / 600 / 1e15)
    assert hashprice.iloc[0] == pytest.approx(by_hand)
    # Q3 2023 hashprice was in the $55-75 per PH/day range
    quarter = hashprice["2023-07-01":"2023-09-30"]
    assert len(quarter) == 92
    assert quarter.min() > 55 and quarter.max() < 80
    assert np.isfinite(hashprice.to_numpy()).all()


def test_derived_hashprice_refuses_prices_outside_the_levels() -> None:
    prices = pd.Series([30_000.0], index=pd.DatetimeIndex(["2020-01-01"]).tz_localize("UTC"))
    with pytest.raises(InputDataError, match="do not overlap the difficulty levels"):
        derive_daily_hashprice(prices)
