"""Bitcoin mining economics: subsidy, hashprice, revenue and breakeven power price per MWh.

**Subsidy.** Block ``h`` pays ``50 BTC >> (h // 210,000)`` (in satoshis, as the consensus code does);
block 840,000 (2024-04-20 00:09:27 UTC) cut it from 6.25 to 3.125 BTC. A date maps to a height by
linear interpolation between the known halving blocks, and at 144 blocks a day after the last one.

**Network hashrate from difficulty.** A block needs on average ``D × 2³²`` hashes and comes every
600 s, so hashrate = ``D × 2³² / 600`` H/s.

**Hashprice** (USD per PH/s per day) is what one PH/s earns in a day::

    hashprice = blocks_per_day × (subsidy + fees per block) × BTC price / network hashrate [PH/s]

**Revenue per MWh.** A miner of efficiency ``e`` J/TH (= W per TH/s) in a hall of PUE ``p`` turns one
facility MW into ``10⁶ / (e · p)`` TH/s = ``1000 / (e · p)`` PH/s, so::

    revenue [USD/MWh] = hashprice × 1000 / (e × p × 24) × (1 − pool fee)

and the **breakeven power price** is that same figure: below it mining earns more than the power
costs. Check: 13.5 J/TH at $43/PH/day and PUE 1.0 → 43 × 1000 / 324 = $132.7/MWh.

**Hashprice series** for dispatch: a constant (``--hashprice 45``) or a daily CSV
``date,hashprice_usd_per_ph_day`` (UTC days), mapped onto an interval index by UTC date. A daily
series can also be *derived* from the daily BTC close (``bitcoin/btc_price_volume_yahoo_lukmol.csv``
in the data folder) and the stated difficulty levels below; no permissively licensed daily
difficulty file exists, so the levels are written down here with their source.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from drakewell.catalog import AsicModel
from drakewell.core.config import data_file
from drakewell.core.errors import InputDataError

__all__ = [
    "BLOCKS_PER_DAY",
    "BTC_PRICE_FILE",
    "DIFFICULTY_LEVELS_2023",
    "DIFFICULTY_SOURCE",
    "FEES_BTC_PER_BLOCK_2023Q3",
    "HALVING_BLOCKS",
    "HALVING_INTERVAL",
    "SATS_PER_BTC",
    "block_subsidy_btc",
    "block_subsidy_sats",
    "breakeven_usd_per_mwh",
    "derive_daily_hashprice",
    "estimate_height",
    "hashprice_on_index",
    "hashprice_usd_per_ph_day",
    "hashrate_eh_s_from_difficulty",
    "load_btc_prices",
    "load_hashprice_csv",
    "mining_revenue_usd_per_mwh",
    "parse_hashprice",
    "subsidy_btc_at",
    "write_hashprice_csv",
]

SATS_PER_BTC = 100_000_000
HALVING_INTERVAL = 210_000
INITIAL_SUBSIDY_SATS = 50 * SATS_PER_BTC
BLOCKS_PER_DAY = 144.0
BLOCK_SECONDS = 600.0

# Block timestamps of the genesis block and the halving blocks (UTC).
HALVING_BLOCKS: tuple[tuple[int, datetime], ...] = (
    (0, datetime(2009, 1, 3, 18, 15, 5, tzinfo=UTC)),
    (210_000, datetime(2012, 11, 28, 15, 24, 38, tzinfo=UTC)),
    (420_000, datetime(2016, 7, 9, 16, 46, 13, tzinfo=UTC)),
    (630_000, datetime(2020, 5, 11, 19, 23, 43, tzinfo=UTC)),
    (840_000, datetime(2024, 4, 20, 0, 9, 27, tzinfo=UTC)),
)

# Network difficulty in effect from each date (UTC) on. Approximate: reconstructed from the
# adjustment percentages reported for 2023 (-2.94 % on 2023-07-26, +6.17 % to a record 55.6 T in
# early August, +5.48 % in early September, +0.35 % to 57.32 T in early October) in the public blog
# post "The latest adjustment: mining difficulty has decreased by 3.9%" (vnish.com); levels marked
# "back-computed" follow from the next step's percentage. Dates ±1 day, levels ±2 %.
DIFFICULTY_SOURCE = (
    "approximate 2023 difficulty levels reconstructed from adjustment percentages published by "
    "vnish.com ('The latest adjustment: mining difficulty has decreased by 3.9%'); dates ±1 day, "
    "levels ±2 %"
)
DIFFICULTY_LEVELS_2023: tuple[tuple[date, float], ...] = (
    (date(2023, 7, 1), 53.98e12),  # back-computed from the 2023-07-26 step
    (date(2023, 7, 26), 52.39e12),  # -2.94 %
    (date(2023, 8, 9), 55.62e12),  # +6.17 %, a record
    (date(2023, 8, 22), 54.15e12),  # back-computed from the September step
    (date(2023, 9, 5), 57.12e12),  # +5.48 %
    (date(2023, 10, 2), 57.32e12),  # +0.35 %
)
DIFFICULTY_LEVELS_END = date(2023, 10, 15)  # the table is not used past this day
# Assumption: average transaction fees per block in Q3 2023 (about 2-3 % of miner revenue).
FEES_BTC_PER_BLOCK_2023Q3 = 0.15
BTC_PRICE_FILE = "bitcoin/btc_price_volume_yahoo_lukmol.csv"


# --- subsidy ---------------------------------------------------------------------------------------


def block_subsidy_sats(height: int) -> int:
    """Block subsidy in satoshis at ``height`` (the consensus rule: a right shift per halving)."""
    if height < 0:
        raise ValueError(f"block height {height} is negative")
    halvings = height // HALVING_INTERVAL
    return 0 if halvings >= 64 else INITIAL_SUBSIDY_SATS >> halvings


def block_subsidy_btc(height: int) -> float:
    return block_subsidy_sats(height) / SATS_PER_BTC


def estimate_height(when: datetime) -> int:
    """Approximate block height at a time: interpolated between halving blocks, 144/day after."""
    if when.tzinfo is None:
        raise ValueError("estimate_height needs a tz-aware time")
    t = when.astimezone(UTC)
    if t < HALVING_BLOCKS[0][1]:
        raise ValueError(f"{t.isoformat()} is before the genesis block")
    for (h0, t0), (h1, t1) in pairwise(HALVING_BLOCKS):
        if t0 <= t < t1:
            return h0 + int((h1 - h0) * (t - t0).total_seconds() / (t1 - t0).total_seconds())
    h_last, t_last = HALVING_BLOCKS[-1]
    return h_last + int((t - t_last).total_seconds() / BLOCK_SECONDS)


def subsidy_btc_at(when: datetime) -> float:
    """Block subsidy (BTC) in effect at a time; exact across the known halvings."""
    return block_subsidy_btc(estimate_height(when))


# --- hashprice and revenue -------------------------------------------------------------------------


def hashrate_eh_s_from_difficulty(difficulty: float) -> float:
    """Network hashrate (EH/s) implied by a difficulty at 600 s blocks: D × 2³² / 600."""
    if not difficulty > 0:
        raise ValueError("difficulty must be positive")
    return difficulty * 2**32 / BLOCK_SECONDS / 1e18


def hashprice_usd_per_ph_day(
    btc_price_usd: float,
    network_hashrate_eh_s: float,
    subsidy_btc: float,
    fees_btc_per_block: float = 0.0,
    *,
    blocks_per_day: float = BLOCKS_PER_DAY,
) -> float:
    """USD one PH/s earns per day: blocks/day × (subsidy + fees) × price / hashrate (PH/s)."""
    if not network_hashrate_eh_s > 0:
        raise ValueError("network hashrate must be positive")
    if btc_price_usd < 0 or subsidy_btc < 0 or fees_btc_per_block < 0:
        raise ValueError("price, subsidy and fees must not be negative")
    return (
        blocks_per_day * (subsidy_btc + fees_btc_per_block) * btc_price_usd / (network_hashrate_eh_s * 1000.0)
    )


def mining_revenue_usd_per_mwh(
    efficiency_j_per_th: float, hashprice: float, *, pue: float = 1.0, pool_fee: float = 0.0
) -> float:
    """Mining revenue per facility MWh: hashprice × 1000 / (J/TH × PUE × 24) × (1 − pool fee)."""
    if not efficiency_j_per_th > 0:
        raise ValueError("efficiency must be positive (J/TH)")
    if pue < 1.0:
        raise ValueError(f"PUE {pue} is below 1")
    if not 0 <= pool_fee < 1:
        raise ValueError("pool fee is a fraction in [0, 1)")
    return hashprice * 1000.0 / (efficiency_j_per_th * pue * 24.0) * (1.0 - pool_fee)


def breakeven_usd_per_mwh(
    asic: AsicModel, hashprice: float, *, pue: float = 1.0, pool_fee: float = 0.0
) -> float:
    """Power price (USD/MWh at the meter) at which mining with ``asic`` just pays for its power."""
    return mining_revenue_usd_per_mwh(asic.efficiency_j_per_th, hashprice, pue=pue, pool_fee=pool_fee)


# --- hashprice series ------------------------------------------------------------------------------


def _read_daily_csv(path: str | Path, value_column: str, *, allow_zero: bool) -> pd.Series:
    file = Path(path)
    if not file.is_file():
        raise InputDataError(f"file {file} not found", hint="check the path")
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [c.strip() for c in next(reader, [])]
        if "date" not in header or value_column not in header:
            raise InputDataError(
                f"{file}:1: header {','.join(header) or '(empty)'} lacks date or {value_column}",
                hint=f"the first line must name the columns date and {value_column}",
            )
        di, vi = header.index("date"), header.index(value_column)
        days: list[date] = []
        values: list[float] = []
        previous_line = 0
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            where = f"{file}:{line_no}"
            if len(row) != len(header):
                raise InputDataError(
                    f"{where}: expected {len(header)} cells, found {len(row)}", hint="fix the row"
                )
            try:
                day = date.fromisoformat(row[di].strip())
            except ValueError:
                raise InputDataError(
                    f"{where}: date {row[di].strip()!r} is not YYYY-MM-DD",
                    hint="write UTC days like 2023-07-01",
                ) from None
            try:
                value = float(row[vi])
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
                raise InputDataError(
                    f"{where}: {value_column} {row[vi].strip()!r} is not a positive number",
                    hint="fix the value",
                )
            if days:
                step = (day - days[-1]).days
                if step == 0:
                    raise InputDataError(
                        f"{where}: {day} repeats line {previous_line}", hint="one row per day"
                    )
                if step > 1:
                    raise InputDataError(
                        f"{where}: {step - 1} day(s) missing after {days[-1]} (line {previous_line})",
                        hint="fill the missing days",
                    )
                if step < 0:
                    raise InputDataError(f"{where}: {day} is out of order", hint="sort the rows by date")
            days.append(day)
            values.append(value)
            previous_line = line_no
    if not days:
        raise InputDataError(f"{file}: no data rows", hint="add daily rows")
    index = pd.DatetimeIndex(pd.to_datetime(days), name="date").tz_localize("UTC").as_unit("ns")
    series = pd.Series(values, index=index, name=value_column, dtype=np.float64)
    series.attrs["source"] = str(file)
    return series


def load_hashprice_csv(path: str | Path) -> pd.Series:
    """Daily hashprice CSV (``date,hashprice_usd_per_ph_day``; UTC days, no gaps) → series."""
    return _read_daily_csv(path, "hashprice_usd_per_ph_day", allow_zero=True)


def write_hashprice_csv(series: pd.Series, path: str | Path) -> Path:
    """Write a daily hashprice series as ``date,hashprice_usd_per_ph_day`` (read back by
    :func:`load_hashprice_csv`)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    index = pd.DatetimeIndex(series.index)
    days = (index.tz_convert("UTC") if index.tz is not None else index).strftime("%Y-%m-%d")
    lines = ["date,hashprice_usd_per_ph_day"]
    lines += [f"{day},{float(v)!r}" for day, v in zip(days, series.to_numpy(dtype=np.float64), strict=True)]
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return file


def parse_hashprice(value: str | float | Path) -> float | pd.Series:
    """A command-line hashprice: a number (USD/PH/day) or the path of a daily CSV."""
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            path = Path(text)
            if not path.is_file():
                raise InputDataError(
                    f"hashprice {text!r} is neither a number nor an existing CSV file",
                    hint="pass e.g. --hashprice 45 or --hashprice hashprice.csv",
                ) from None
            return load_hashprice_csv(path)
    if not math.isfinite(number) or number < 0:
        raise InputDataError(f"hashprice {number} must be a non-negative number", hint="e.g. 45 (USD/PH/day)")
    return number


def hashprice_on_index(hashprice: float | pd.Series, index: pd.DatetimeIndex) -> np.ndarray:
    """Hashprice (USD/PH/day) for every interval of a tz-aware index: constant, or its UTC day's value."""
    if isinstance(hashprice, int | float):
        return np.full(len(index), float(hashprice))
    days = index.tz_convert("UTC").floor("D")
    daily = hashprice.copy()
    daily.index = pd.DatetimeIndex(daily.index).tz_convert("UTC").floor("D")
    missing = ~days.isin(daily.index)
    if missing.any():
        first = days[int(np.flatnonzero(missing)[0])]
        raise InputDataError(
            f"hashprice series has no value for {first.date()} ({int(missing.sum())} interval(s) uncovered)",
            hint="extend the daily hashprice CSV over the whole price range, or pass a constant",
        )
    return daily.reindex(days).to_numpy(dtype=np.float64)


def load_btc_prices(path: str | Path | None = None) -> pd.Series:
    """Daily BTC-USD close (``date,price,...``), UTC days; default: the file in the data folder."""
    if path is None:
        found = data_file(BTC_PRICE_FILE)
        if found is None:
            raise InputDataError(
                f"BTC price file {BTC_PRICE_FILE} not found in the data folder",
                hint="set DRAKEWELL_DATA_DIR, or use a constant hashprice",
            )
        path = found
    return _read_daily_csv(path, "price", allow_zero=False)


def derive_daily_hashprice(
    btc_prices: pd.Series,
    *,
    difficulty_levels: Sequence[tuple[date, float]] = DIFFICULTY_LEVELS_2023,
    levels_end: date | None = DIFFICULTY_LEVELS_END,
    fees_btc_per_block: float = FEES_BTC_PER_BLOCK_2023Q3,
) -> pd.Series:
    """Daily hashprice from the daily BTC close and step-wise difficulty levels.

    Only days covered by the levels (from the first level's date to ``levels_end``) are returned.
    The subsidy is the one in effect at noon UTC of each day.
    """
    if not difficulty_levels:
        raise InputDataError("no difficulty levels given", hint="pass (date, difficulty) pairs")
    levels = sorted(difficulty_levels)
    first_day = levels[0][0]
    last_day = levels_end or date.max
    out: dict[pd.Timestamp, float] = {}
    for ts, price in btc_prices.items():
        day = pd.Timestamp(ts).date()
        if day < first_day or day > last_day:
            continue
        difficulty = [d for start, d in levels if start <= day][-1]
        noon = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=12)
        out[pd.Timestamp(day, tz="UTC")] = hashprice_usd_per_ph_day(
            float(price), hashrate_eh_s_from_difficulty(difficulty), subsidy_btc_at(noon), fees_btc_per_block
        )
    if not out:
        raise InputDataError(
            f"BTC prices do not overlap the difficulty levels ({first_day} to {last_day})",
            hint="pass prices for those days or your own difficulty levels",
        )
    series = pd.Series(out, name="hashprice_usd_per_ph_day", dtype=np.float64)
    series.index = pd.DatetimeIndex(series.index, name="date").as_unit("ns")
    series.attrs["source"] = f"derived: BTC close × subsidy and fees / hashrate; {DIFFICULTY_SOURCE}"
    return series
