"""Electricity prices: ERCOT settlement point price CSVs (and gridstatus frames) → UTC frames.

The one shape prices take inside Drakewell is a :class:`pandas.DataFrame` with a tz-aware UTC
``DatetimeIndex`` (``datetime64[ns, UTC]``) named ``interval_start_utc`` with a regular ``freq``
(15 minutes real-time, 1 hour day-ahead), and one float64 column per settlement point
(``LZ_HOUSTON``, ``LZ_NORTH``, ...) in $/MWh.
``frame.attrs`` holds ``source`` (file or origin), ``market`` (``"rt"`` or ``"da"``) and
``interval_minutes``.

ERCOT files (``interval_start_ct`` for the 15-minute real-time market, ``hour_start_ct`` for the
hourly day-ahead market) carry interval starts in America/Chicago with their UTC offset. The loader
reads them line by line so every error names file and line:

- header: the first column must be one of the two time columns, then at least one unique zone;
- a cell that is not a finite number (empty, ``n/a``, ``inf``) is refused; negative prices are valid;
- a timestamp must carry an offset, and that offset must be the one America/Chicago had at that
  instant (``-05:00`` CDT in summer, ``-06:00`` CST in winter);
- consecutive rows must be exactly one interval apart *in UTC*. The repeated 01:00 hour on the
  November fall-back day is therefore accepted (its two copies have different offsets and are an
  hour apart in UTC), while a true duplicate (same instant twice) and a gap are refused.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from drakewell.core.errors import InputDataError

__all__ = [
    "CENTRAL",
    "INDEX_NAME",
    "Market",
    "align_da_to_rt",
    "fetch_gridstatus_prices",
    "frame_from_gridstatus",
    "load_ercot_prices",
    "select_zone",
    "validate_price_frame",
    "write_ercot_prices",
]

CENTRAL = ZoneInfo("America/Chicago")
INDEX_NAME = "interval_start_utc"
Market = Literal["rt", "da"]

# time column -> (market, interval length)
_TIME_COLUMNS: dict[str, tuple[Market, int]] = {
    "interval_start_ct": ("rt", 15),
    "hour_start_ct": ("da", 60),
}


def load_ercot_prices(path: str | Path) -> pd.DataFrame:
    """Load an ERCOT real-time (15-min) or day-ahead (hourly) settlement point price CSV.

    Returns the UTC price frame described in the module docstring. Raises
    :class:`~drakewell.core.errors.InputDataError` naming file and line for a bad header, a malformed or
    zone-inconsistent timestamp, a gap, a duplicated interval, or a non-numeric cell.
    """
    file = Path(path)
    if not file.is_file():
        raise InputDataError(f"price file {file} not found", hint="pass the path of an ERCOT SPP CSV")
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        market, step_minutes, zones = _check_header(file, header)
        step = timedelta(minutes=step_minutes)
        times: list[datetime] = []
        values: list[list[float]] = []
        previous: datetime | None = None
        previous_line = 0
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            where = f"{file}:{line_no}"
            if len(row) != len(zones) + 1:
                raise InputDataError(
                    f"{where}: expected {len(zones) + 1} cells, found {len(row)}",
                    hint="every row needs a timestamp and one price per zone column",
                )
            ts = _parse_timestamp(row[0], where)
            if previous is not None:
                delta = ts - previous
                if delta == timedelta(0):
                    raise InputDataError(
                        f"{where}: interval {row[0].strip()} repeats line {previous_line} (same instant)",
                        hint="remove the duplicated row; a fall-back hour must carry its second offset "
                        "(-06:00)",
                    )
                if delta > step:
                    missing = int(delta / step) - 1
                    raise InputDataError(
                        f"{where}: gap of {missing} interval(s) after line {previous_line} "
                        f"({previous.astimezone(CENTRAL).isoformat()} → {row[0].strip()})",
                        hint="fill the missing intervals from the source report, or cut the file at the gap",
                    )
                if delta != step:
                    raise InputDataError(
                        f"{where}: {row[0].strip()} is {delta} after line {previous_line}, expected {step}",
                        hint="rows must be in time order, one interval apart",
                    )
            prices = [_parse_price(cell, where, zone) for cell, zone in zip(row[1:], zones, strict=True)]
            times.append(ts)
            values.append(prices)
            previous, previous_line = ts, line_no
    if not times:
        raise InputDataError(f"{file}: no data rows", hint="the file holds only a header")
    index = pd.DatetimeIndex(times, name=INDEX_NAME).as_unit("ns")
    frame = pd.DataFrame(np.asarray(values, dtype=np.float64), index=index, columns=list(zones))
    frame.index.freq = pd.tseries.frequencies.to_offset(f"{step_minutes}min")
    frame.attrs.update(source=str(file), market=market, interval_minutes=step_minutes)
    return frame


def write_ercot_prices(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a price frame as an ERCOT-style CSV that :func:`load_ercot_prices` reads back unchanged.

    Times are written as Central-Time interval starts with their offset (``interval_start_ct`` for
    15-minute frames, ``hour_start_ct`` for hourly ones); prices with ``repr`` precision.
    """
    checked = validate_price_frame(frame, source=str(frame.attrs.get("source", "price frame")))
    minutes = int(checked.attrs["interval_minutes"])
    time_column = next(name for name, (_, m) in _TIME_COLUMNS.items() if m == minutes)
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    local = checked.index.tz_convert(CENTRAL)
    values = checked.to_numpy(dtype=np.float64)
    with file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([time_column, *checked.columns])
        for ts, row in zip(local, values, strict=True):
            writer.writerow([ts.isoformat(), *(repr(float(v)) for v in row)])
    return file


def _check_header(file: Path, header: Sequence[str] | None) -> tuple[Market, int, tuple[str, ...]]:
    if not header:
        raise InputDataError(f"{file}:1: empty file", hint="an ERCOT SPP CSV starts with a header line")
    cells = [c.strip() for c in header]
    first = cells[0]
    if first not in _TIME_COLUMNS:
        raise InputDataError(
            f"{file}:1: first column is {first!r}",
            hint="expected 'interval_start_ct' (real-time, 15 min) or 'hour_start_ct' (day-ahead, hourly)",
        )
    zones = tuple(cells[1:])
    if not zones or any(not z for z in zones):
        raise InputDataError(f"{file}:1: missing or empty zone column name", hint="name every price column")
    if len(set(zones)) != len(zones):
        dup = sorted({z for z in zones if zones.count(z) > 1})
        raise InputDataError(
            f"{file}:1: zone column(s) {', '.join(dup)} repeated", hint="name each zone once"
        )
    market, minutes = _TIME_COLUMNS[first]
    return market, minutes, zones


def _parse_timestamp(raw: str, where: str) -> datetime:
    text = raw.strip()
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise InputDataError(
            f"{where}: timestamp {text!r} is not ISO-8601", hint="write e.g. 2023-07-01T00:15:00-05:00"
        ) from None
    if local.tzinfo is None:
        raise InputDataError(
            f"{where}: timestamp {text!r} has no UTC offset",
            hint="Central Time is ambiguous at the fall-back hour; append -05:00 (CDT) or -06:00 (CST)",
        )
    utc = local.astimezone(UTC)
    expected = utc.astimezone(CENTRAL)
    if expected.utcoffset() != local.utcoffset():
        raise InputDataError(
            f"{where}: offset of {text!r} is wrong for America/Chicago "
            f"(that instant is {expected.isoformat()})",
            hint="use -05:00 while daylight saving time is in effect and -06:00 otherwise",
        )
    return utc


def _parse_price(cell: str, where: str, zone: str) -> float:
    text = cell.strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputDataError(
            f"{where}: {zone} price {text!r} is not a number",
            hint="prices are finite $/MWh numbers (negative values are fine)",
        )
    return value


def validate_price_frame(frame: pd.DataFrame, *, source: str = "price frame") -> pd.DataFrame:
    """Check a price frame built elsewhere and return it with its ``freq`` and attrs set.

    The index must be tz-aware, strictly increasing and regular (15 or 60 minutes); values finite.
    """
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise InputDataError(f"{source}: index is not a tz-aware DatetimeIndex", hint="convert times to UTC")
    if len(index) < 2:
        raise InputDataError(f"{source}: needs at least two intervals", hint="pass a longer range")
    index = index.tz_convert("UTC").as_unit("ns")
    deltas = np.diff(index.asi8)
    step_ns = int(deltas[0])
    minutes = step_ns // 60_000_000_000
    if minutes not in (15, 60) or step_ns % 60_000_000_000:
        raise InputDataError(
            f"{source}: interval is {pd.Timedelta(step_ns)}", hint="use 15-minute or hourly data"
        )
    bad = np.flatnonzero(deltas != step_ns)
    if bad.size:
        i = int(bad[0])
        kind = "duplicate" if deltas[i] == 0 else ("gap" if deltas[i] > step_ns else "out-of-order row")
        raise InputDataError(
            f"{source}: {kind} between {index[i].isoformat()} and {index[i + 1].isoformat()}",
            hint="the series must be regular: one row per interval, in time order",
        )
    values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(values).all():
        row, col = (int(x[0]) for x in np.nonzero(~np.isfinite(values)))
        raise InputDataError(
            f"{source}: {frame.columns[col]} at {index[row].isoformat()} is not a finite number",
            hint="fill or drop the missing price",
        )
    out = pd.DataFrame(values, index=index.rename(INDEX_NAME), columns=[str(c) for c in frame.columns])
    # one resolution for every price frame, whatever built it
    out.index.freq = pd.tseries.frequencies.to_offset(f"{minutes}min")
    out.attrs.update(frame.attrs)
    out.attrs.setdefault("source", source)
    out.attrs.setdefault("market", "rt" if minutes == 15 else "da")
    out.attrs["interval_minutes"] = int(minutes)
    return out


def select_zone(frame: pd.DataFrame, zone: str) -> pd.Series:
    """One zone's price series ($/MWh), with an error that lists the zones present."""
    if zone not in frame.columns:
        raise InputDataError(
            f"zone {zone!r} not in {frame.attrs.get('source', 'the price frame')}",
            hint=f"choose one of {', '.join(map(str, frame.columns))}",
        )
    series = frame[zone].astype(np.float64)
    series.name = zone
    return series


def align_da_to_rt(da: pd.DataFrame, rt_index: pd.DatetimeIndex) -> pd.DataFrame:
    """Day-ahead hourly prices onto a (15-minute) real-time index: each interval gets its hour's price.

    Every interval of ``rt_index`` must fall in an hour the day-ahead frame covers; otherwise
    :class:`InputDataError` says which interval is uncovered.
    """
    if rt_index.tz is None:
        raise InputDataError("real-time index is not tz-aware", hint="load prices with load_ercot_prices")
    hours = rt_index.tz_convert("UTC").floor("h")
    da_utc = da.copy()
    da_utc.index = da.index.tz_convert("UTC")
    missing = ~hours.isin(da_utc.index)
    if missing.any():
        first = rt_index[int(np.flatnonzero(missing)[0])]
        raise InputDataError(
            f"day-ahead prices do not cover {int(missing.sum())} real-time interval(s), "
            f"first {first.isoformat()}",
            hint="pass a day-ahead file spanning the whole real-time range",
        )
    out = da_utc.reindex(hours)
    out.index = rt_index.rename(INDEX_NAME).as_unit("ns")
    out.attrs.update(da.attrs)
    out.attrs["aligned_to_minutes"] = (
        int((rt_index[1] - rt_index[0]).total_seconds() // 60) if len(rt_index) > 1 else None
    )
    return out


# --- gridstatus (optional extra: pip install 'drakewell[grid]') -----------------------------------

_GS_TIME_COLUMNS = ("Interval Start", "Time")


def frame_from_gridstatus(df: pd.DataFrame, *, location_types: Iterable[str] | None = None) -> pd.DataFrame:
    """Convert a gridstatus ERCOT SPP frame (long form) into Drakewell's wide UTC price frame.

    gridstatus returns one row per (interval, location) with columns ``Interval Start`` (tz-aware,
    US/Central), ``Location``, ``Location Type`` and ``SPP`` (``Market`` and ``Interval End``
    are ignored). ``location_types`` keeps only those types (e.g. ``["Load Zone"]``).
    """
    time_col = next((c for c in _GS_TIME_COLUMNS if c in df.columns), None)
    missing = [c for c in ("Location", "SPP") if c not in df.columns]
    if time_col is None:
        missing.append("Interval Start")
    if missing:
        raise InputDataError(
            f"gridstatus frame lacks column(s) {', '.join(missing)}",
            hint="pass the frame returned by gridstatus.Ercot().get_spp(...)",
        )
    data = df
    if location_types is not None:
        if "Location Type" not in df.columns:
            raise InputDataError("gridstatus frame has no 'Location Type' column", hint="drop location_types")
        data = df[df["Location Type"].isin(list(location_types))]
    times = pd.DatetimeIndex(data[time_col])
    if times.tz is None:
        raise InputDataError(
            "gridstatus times are not tz-aware", hint="gridstatus returns US/Central aware times"
        )
    prices = pd.to_numeric(data["SPP"], errors="coerce")
    long = pd.DataFrame(
        {"t": times.tz_convert("UTC"), "loc": data["Location"].astype(str), "p": prices.to_numpy()}
    )
    dup = long.duplicated(subset=["t", "loc"])
    if dup.any():
        row = long[dup].iloc[0]
        raise InputDataError(
            f"gridstatus frame repeats {row['loc']} at {row['t'].isoformat()}",
            hint="query one market (real-time or day-ahead) per frame",
        )
    wide = long.pivot(index="t", columns="loc", values="p").sort_index()
    wide.columns.name = None
    wide.attrs["source"] = "gridstatus"
    return validate_price_frame(wide, source="gridstatus frame")


def fetch_gridstatus_prices(
    start: str | datetime, end: str | datetime, *, market: Market = "rt", zones: Sequence[str] | None = None
) -> pd.DataFrame:
    """Download ERCOT load-zone prices with gridstatus (needs internet and ``drakewell[grid]``)."""
    try:
        import gridstatus  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise InputDataError(
            "gridstatus is not installed",
            hint="pip install 'drakewell[grid]' (or load the ERCOT CSVs with load_ercot_prices)",
        ) from None
    gs_market = "REAL_TIME_15_MIN" if market == "rt" else "DAY_AHEAD_HOURLY"
    with warnings.catch_warnings():
        # gridstatus 0.34 still calls DataFrame.rename(inplace=True), which pandas 3.1 deprecates;
        # the warning is about its code, not the caller's, and would be an error under -W error
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"gridstatus(\.|$)")
        try:
            raw = gridstatus.Ercot().get_spp(date=start, end=end, market=gs_market, location_type="Load Zone")
        except Exception as exc:  # network, ERCOT's API, or a document gridstatus cannot parse
            raise InputDataError(
                f"gridstatus could not get ERCOT {market} prices for {start} to {end}: {exc}",
                hint="check the dates and the network, or load the ERCOT CSVs with load_ercot_prices",
            ) from exc
    frame = frame_from_gridstatus(raw)
    if zones is not None:
        frame = frame[[select_zone(frame, z).name for z in zones]]
    frame.attrs["market"] = market
    return frame
