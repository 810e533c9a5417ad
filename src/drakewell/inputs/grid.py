"""Grid events as data: ERCOT 4CP intervals and emergency (load-cap) events.

**4CP.** ERCOT allocates transmission cost by each load's demand in the four coincident-peak
intervals: the 15-minute interval of highest ERCOT system load in each of June, July, August and
September. Drakewell reads them from a CSV (``interval_start_utc`` plus free columns, ``#`` comment
lines allowed). ERCOT system load is not among our public data, so the shipped 2023 file is a
*price proxy* written by :func:`proxy_4cp_intervals`: **in each month, the weekday 15-minute
interval starting between 15:00 and 19:00 Central Time with the highest LZ_NORTH real-time
settlement point price** (ties → the earliest). Peak load and scarcity prices coincide on hot
weekday afternoons, which is what the rule captures; it is not ERCOT's settlement list.

**4CP forecast** (what an online policy may know). :func:`forecast_4cp_alerts` flags the 15:00–19:00
CT window of a June–September weekday when that day's highest day-ahead price in the window is at
least ``threshold_usd_per_mwh`` ($500/MWh by default), or at least ``ratio`` (0.9) × the highest
window day-ahead price on the earlier weekdays of the same month. Day-ahead prices for day *d* are
published around 13:00 CT on day *d* − 1, so the alert uses nothing an operator would not have had.
On the 2023 files the default rule raises 24 alert days in July–September and covers all three
proxy 4CP intervals (the $500 threshold is a round number chosen by looking at that same summer, so
this is an in-sample figure, not a forecast skill).

**Emergency events.** A CSV of ``start,end,load_cap_mw,name`` (ISO-8601 times with offsets) caps the
site's grid import during each event; :func:`emergency_cap_mw` maps them onto an interval index.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from drakewell.core.errors import InputDataError
from drakewell.core.times import aware_utc
from drakewell.inputs.prices import CENTRAL, select_zone

__all__ = [
    "FOUR_CP_MONTHS",
    "PROXY_RULE",
    "EmergencyEvent",
    "emergency_cap_mw",
    "forecast_4cp_alerts",
    "four_cp_mask",
    "load_4cp_intervals",
    "load_emergency_events",
    "proxy_4cp_intervals",
    "write_4cp_intervals",
]

FOUR_CP_MONTHS = (6, 7, 8, 9)
PEAK_WINDOW_CT = (15, 19)  # [start hour, end hour) in Central Time
PROXY_RULE = (
    "price proxy, not ERCOT's settlement list: in each month June-September, the weekday 15-minute "
    "interval starting 15:00-19:00 America/Chicago with the highest LZ_NORTH real-time settlement "
    "point price (ties: earliest)"
)


@dataclass(frozen=True)
class EmergencyEvent:
    """A grid emergency during which the site's grid import may not exceed ``load_cap_mw``."""

    start_utc: datetime
    end_utc: datetime
    load_cap_mw: float
    name: str


def _window_mask(index: pd.DatetimeIndex, months: Sequence[int] = FOUR_CP_MONTHS) -> np.ndarray:
    local = index.tz_convert(CENTRAL)
    start, end = PEAK_WINDOW_CT
    return np.asarray(
        (local.day_of_week < 5) & (local.hour >= start) & (local.hour < end) & local.month.isin(list(months)),
        dtype=bool,
    )


def proxy_4cp_intervals(
    rt: pd.DataFrame, *, zone: str = "LZ_NORTH", months: Sequence[int] = FOUR_CP_MONTHS
) -> pd.DatetimeIndex:
    """The proxy 4CP intervals (UTC starts) of each month the real-time frame covers (see module doc)."""
    prices = select_zone(rt, zone)
    mask = _window_mask(prices.index, months)
    window = prices[mask]
    if window.empty:
        raise InputDataError(
            "no weekday 15:00-19:00 CT interval in June-September in the price frame",
            hint="pass real-time prices covering at least one summer month",
        )
    months_ct = window.index.tz_convert(CENTRAL).strftime("%Y-%m")
    picks = [group.idxmax() for _, group in window.groupby(months_ct, sort=True)]
    return pd.DatetimeIndex(picks, name="interval_start_utc").tz_convert("UTC")


def write_4cp_intervals(
    intervals: Iterable[pd.Timestamp], path: str | Path, *, rule: str = PROXY_RULE
) -> None:
    """Write 4CP intervals as CSV with the rule that chose them in a ``#`` header comment."""
    lines = [f"# 4CP intervals: {rule}", "interval_start_utc,interval_start_ct"]
    for ts in intervals:
        utc = pd.Timestamp(ts).tz_convert("UTC")
        lines.append(f"{utc.isoformat().replace('+00:00', 'Z')},{utc.tz_convert(CENTRAL).isoformat()}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _data_rows(file: Path) -> list[tuple[int, list[str]]]:
    if not file.is_file():
        raise InputDataError(
            f"grid event file {file} not found", hint="check the path (relative to the site file)"
        )
    rows: list[tuple[int, list[str]]] = []
    with file.open(newline="", encoding="utf-8-sig") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            rows.append((line_no, [c.strip() for c in row]))
    if not rows:
        raise InputDataError(f"{file}: no header line", hint="the file needs a header and data rows")
    return rows


def _aware(raw: str, where: str) -> datetime:
    text = raw.strip()
    return aware_utc(
        text,
        f"{where}: {text!r}",
        InputDataError,
        hint="e.g. 2023-08-10T21:45:00Z",
        zone_hint="append Z or an offset such as -05:00",
    )


def load_4cp_intervals(path: str | Path) -> tuple[datetime, ...]:
    """Read 4CP interval starts (UTC); one per calendar month, on a 15-minute boundary."""
    file = Path(path)
    rows = _data_rows(file)
    header_line, header = rows[0]
    if "interval_start_utc" not in header:
        raise InputDataError(
            f"{file}:{header_line}: no 'interval_start_utc' column", hint="name the column interval_start_utc"
        )
    col = header.index("interval_start_utc")
    out: list[datetime] = []
    months: dict[tuple[int, int], int] = {}
    for line_no, row in rows[1:]:
        where = f"{file}:{line_no}"
        if len(row) <= col:
            raise InputDataError(f"{where}: missing interval_start_utc", hint="one interval per row")
        ts = _aware(row[col], where)
        if ts.minute % 15 or ts.second or ts.microsecond:
            raise InputDataError(
                f"{where}: {row[col]} is not a 15-minute boundary", hint="use the interval start"
            )
        local = ts.astimezone(CENTRAL)
        key = (local.year, local.month)
        if key in months:
            raise InputDataError(
                f"{where}: a second 4CP interval in {local:%Y-%m} (first on line {months[key]})",
                hint="4CP has one interval per month",
            )
        months[key] = line_no
        out.append(ts)
    return tuple(sorted(out))


def four_cp_mask(intervals: Iterable[datetime], index: pd.DatetimeIndex) -> np.ndarray:
    """Boolean array over ``index``: True for each interval that contains a 4CP interval start."""
    if len(index) == 0:
        return np.zeros(0, dtype=bool)
    starts = index.tz_convert("UTC").as_unit("ns").asi8
    step = int(starts[1] - starts[0]) if len(starts) > 1 else 15 * 60 * 10**9
    mask = np.zeros(len(index), dtype=bool)
    for ts in intervals:
        t = pd.Timestamp(ts).value
        pos = int(np.searchsorted(starts, t, side="right")) - 1
        if pos >= 0 and t < starts[pos] + step:
            mask[pos] = True
    return mask


def forecast_4cp_alerts(
    da: pd.DataFrame,
    index: pd.DatetimeIndex,
    *,
    zone: str = "LZ_NORTH",
    ratio: float = 0.9,
    threshold_usd_per_mwh: float = 500.0,
) -> np.ndarray:
    """Boolean array over ``index``: True inside a forecast 4CP window (rule in the module docstring).

    ``da`` is an hourly day-ahead frame (UTC index). Only day-ahead prices of the interval's own day
    and of earlier days are read.
    """
    if not 0 < ratio <= 1:
        raise InputDataError(f"4CP forecast ratio {ratio} outside (0, 1]", hint="use e.g. 0.9")
    if not threshold_usd_per_mwh >= 0:
        raise InputDataError(
            f"4CP forecast threshold {threshold_usd_per_mwh} is negative", hint="use e.g. 500 ($/MWh)"
        )
    prices = select_zone(da, zone)
    window = prices[_window_mask(prices.index)]
    local_day = window.index.tz_convert(CENTRAL).strftime("%Y-%m-%d")
    daily_max = window.groupby(local_day).max()
    alerts: set[str] = set()
    best: dict[str, float] = {}
    for day, value in daily_max.items():
        month = str(day)[:7]
        prior = best.get(month)
        if value >= threshold_usd_per_mwh or (prior is not None and value >= ratio * prior):
            alerts.add(str(day))
        best[month] = float(value) if prior is None else max(prior, float(value))
    local = index.tz_convert(CENTRAL)
    days = local.strftime("%Y-%m-%d")
    return _window_mask(index) & np.asarray(days.isin(sorted(alerts)), dtype=bool)


def load_emergency_events(path: str | Path) -> tuple[EmergencyEvent, ...]:
    """Read emergency events: columns ``start,end,load_cap_mw,name`` (extra columns are kept out)."""
    file = Path(path)
    rows = _data_rows(file)
    header_line, header = rows[0]
    required = ("start", "end", "load_cap_mw", "name")
    missing = [c for c in required if c not in header]
    if missing:
        raise InputDataError(
            f"{file}:{header_line}: missing column(s) {', '.join(missing)}",
            hint="the header must name start, end, load_cap_mw and name",
        )
    pos = {c: header.index(c) for c in required}
    events: list[EmergencyEvent] = []
    for line_no, row in rows[1:]:
        where = f"{file}:{line_no}"
        if len(row) < len(header):
            raise InputDataError(
                f"{where}: expected {len(header)} cells, found {len(row)}", hint="fill every column"
            )
        start, end = _aware(row[pos["start"]], where), _aware(row[pos["end"]], where)
        if end <= start:
            raise InputDataError(f"{where}: event ends before it starts", hint="end must be after start")
        try:
            cap = float(row[pos["load_cap_mw"]])
        except ValueError:
            cap = math.nan
        if not math.isfinite(cap) or cap < 0:
            raise InputDataError(
                f"{where}: load_cap_mw {row[pos['load_cap_mw']]!r} is not a non-negative number",
                hint="the cap is the most MW the site may import during the event",
            )
        events.append(EmergencyEvent(start_utc=start, end_utc=end, load_cap_mw=cap, name=row[pos["name"]]))
    return tuple(sorted(events, key=lambda e: e.start_utc))


def emergency_cap_mw(
    events: Iterable[EmergencyEvent], index: pd.DatetimeIndex, *, interval: timedelta | None = None
) -> np.ndarray:
    """Grid import cap per interval (MW): the lowest cap of the events overlapping it, ``inf`` elsewhere.

    An interval ``[t, t + interval)`` that overlaps an event at all is capped for the whole interval.
    """
    caps = np.full(len(index), np.inf)
    if len(index) == 0:
        return caps
    starts = index.tz_convert("UTC").as_unit("ns").asi8
    if interval is None:
        step = int(starts[1] - starts[0]) if len(starts) > 1 else 15 * 60 * 10**9
    else:
        step = int(interval.total_seconds() * 10**9)
    ends = starts + step
    for event in events:
        s, e = pd.Timestamp(event.start_utc).value, pd.Timestamp(event.end_utc).value
        overlap = (starts < e) & (ends > s)
        caps[overlap] = np.minimum(caps[overlap], event.load_cap_mw)
    return caps
