"""Signals in: site clocks, price sources (replay from CSV, live ERCOT through gridstatus) and
demand-response events with their value test.

**Clocks.** The controller lives on *site time* (UTC). :class:`WallClock` is the real time;
:class:`ReplayClock` runs ``speed`` times faster than the wall from a start instant (``speed=0``:
unpaced, site time jumps to each price as soon as the controller is ready for it). Events from an
OpenADR VTN carry wall-clock times; the clock maps them onto site time (:meth:`site_time`).

**Prices.** A source is an async iterator of :class:`PriceTick` (interval start, USD/MWh): the
price the controller may use for that interval, delivered at the interval's start.

- :class:`ReplayPrices`: a price series (one zone of an ERCOT real-time CSV); missing values are
  simply not delivered (that is how a test or a real outage starves the controller).
- :class:`GridstatusPrices`: every ``poll_s`` reads ERCOT's real-time 15-minute settlement point
  prices (``Ercot().get_spp(date, market="REAL_TIME_15_MIN", location_type="Load Zone")``, no key)
  and delivers, for the current interval, the newest settled price when it is at most two
  intervals old (ERCOT settles an interval a few minutes after it ends; the newest settled price
  stands for the current one).

**Events.** :class:`DrEvent` is an OpenADR event reduced to what the site acts on:
``LOAD_DISPATCH`` ``setpoint`` (facility MW to stay at or below), ``LOAD_DISPATCH`` ``delta``
(MW to shed) and ``SIMPLE`` ``level`` 1..n (MW to shed from ``simple_level_reduction_mw``; level 0
is normal operation). :func:`event_value` weighs the programme's payment for the MWh shed against
the margin given up — mining first (its revenue ÷ PUE minus the price, per facility MWh), then AI
(contract revenue plus the SLA penalty) — and the controller opts in when the payment covers it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from drakewell.core.fields import as_float, as_int, as_str
from drakewell.core.jsontypes import JsonMapping, JsonObject
from drakewell.inputs.prices import fetch_gridstatus_prices, select_zone
from drakewell.live.config import LiveError, OpenAdrConfig

__all__ = [
    "DrEvent",
    "GridstatusPrices",
    "PriceTick",
    "ReplayClock",
    "ReplayPrices",
    "WallClock",
    "event_target_mw",
    "event_value",
]


@dataclass(frozen=True)
class PriceTick:
    interval_start_utc: pd.Timestamp
    usd_per_mwh: float


class WallClock:
    """Site time is the wall clock (UTC)."""

    speed = 1.0

    def now(self) -> pd.Timestamp:
        return pd.Timestamp(time.time(), unit="s", tz="UTC")

    def site_time(self, wall: datetime) -> pd.Timestamp:
        return pd.Timestamp(wall).tz_convert("UTC")

    def wall_seconds(self, site_seconds: float) -> float:
        return site_seconds

    async def sleep_until(self, at: pd.Timestamp) -> None:
        delay = (at - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


class ReplayClock:
    """Site time ``start + (wall − wall at start) × speed``; ``speed = 0``: unpaced (see module doc)."""

    def __init__(self, start: pd.Timestamp, speed: float) -> None:
        if not (speed >= 0 and math.isfinite(speed)):
            raise LiveError(f"replay speed {speed} is not a finite number >= 0", hint="use e.g. --speed 96")
        self.start = pd.Timestamp(start).tz_convert("UTC")
        self.speed = speed
        self._wall0 = time.time()
        self._virtual = self.start

    def now(self) -> pd.Timestamp:
        if self.speed == 0:
            return self._virtual
        return self.start + pd.Timedelta(seconds=(time.time() - self._wall0) * self.speed)

    def site_time(self, wall: datetime) -> pd.Timestamp:
        if self.speed == 0:
            return self._virtual + (pd.Timestamp(wall).tz_convert("UTC") - pd.Timestamp.now(tz="UTC"))
        return self.start + pd.Timedelta(seconds=(pd.Timestamp(wall).timestamp() - self._wall0) * self.speed)

    def wall_seconds(self, site_seconds: float) -> float:
        """Wall seconds that ``site_seconds`` of site time take (0 when unpaced)."""
        return site_seconds / self.speed if self.speed else 0.0

    async def sleep_until(self, at: pd.Timestamp) -> None:
        if self.speed == 0:
            self._virtual = max(self._virtual, at)
            await asyncio.sleep(0)
            return
        delay = (at - self.now()).total_seconds() / self.speed
        if delay > 0:
            await asyncio.sleep(delay)


class ReplayPrices:
    """Deliver a UTC-indexed price series at each interval's start on ``clock``, from ``after`` on."""

    def __init__(self, series: pd.Series, clock: ReplayClock | WallClock) -> None:
        self.series = series
        self.clock = clock

    async def ticks(self, after: pd.Timestamp | None = None) -> AsyncIterator[PriceTick]:
        for ts, value in self.series.items():
            stamp = pd.Timestamp(ts)
            if after is not None and stamp <= after:
                continue
            await self.clock.sleep_until(stamp)
            if value is None or not math.isfinite(float(value)):
                continue  # no price published for this interval
            yield PriceTick(stamp, float(value))


Fetch = Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame]


def _fetch_ercot_rt(start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:

    return fetch_gridstatus_prices(start.to_pydatetime(), end.to_pydatetime(), market="rt")


class GridstatusPrices:
    """Live ERCOT real-time prices of ``zone`` through gridstatus (``fetch`` is injectable: tests pass
    a recorded frame, the product passes :func:`drakewell.inputs.prices.fetch_gridstatus_prices`)."""

    def __init__(
        self,
        zone: str,
        clock: WallClock | ReplayClock,
        *,
        interval: timedelta = timedelta(minutes=15),
        poll_s: float = 30.0,
        fetch: Fetch | None = None,
        max_age_intervals: int = 2,
    ) -> None:
        self.zone, self.clock, self.interval, self.poll_s = zone, clock, pd.Timedelta(interval), poll_s
        self.fetch = fetch or _fetch_ercot_rt
        self.max_age_intervals = max_age_intervals

    def latest(self, frame: pd.DataFrame, now: pd.Timestamp) -> PriceTick | None:
        """The tick for the interval containing ``now`` from a fetched frame, or ``None`` when the newest
        settled price is older than ``max_age_intervals`` intervals (or the zone has none)."""

        series = select_zone(frame, self.zone).dropna()
        series = series[series.index <= now]
        if series.empty:
            return None
        current = now.floor(self.interval)
        newest = pd.Timestamp(series.index[-1])
        if current - newest > self.max_age_intervals * self.interval:
            return None
        return PriceTick(current, float(series.iloc[-1]))

    async def ticks(self, after: pd.Timestamp | None = None) -> AsyncIterator[PriceTick]:
        last = after
        while True:
            now = self.clock.now()
            try:
                frame = await asyncio.to_thread(self.fetch, now - 3 * self.interval, now + self.interval)
            except Exception:  # network or ERCOT trouble: no tick; the controller's staleness rule acts
                frame = None
            tick = self.latest(frame, now) if frame is not None and len(frame) else None
            if tick is not None and (last is None or tick.interval_start_utc > last):
                last = tick.interval_start_utc
                yield tick
            await asyncio.sleep(self.poll_s)


# -- demand response ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrEvent:
    event_id: str
    modification: int
    signal_name: str
    signal_type: str
    value: float
    start_wall: datetime
    end_wall: datetime
    status: str = "far"

    @classmethod
    def from_openadr(cls, event: Mapping[str, Any]) -> DrEvent:
        """The first signal's first interval of an openleadr event dict (openleadr is untyped: its
        dict holds nested dicts, lists, datetimes and timedeltas)."""
        desc = event["event_descriptor"]
        signal = event["event_signals"][0]
        first = signal["intervals"][0]
        start = event.get("active_period", {}).get("dtstart") or first.get("dtstart")
        duration = first.get("duration") or event.get("active_period", {}).get("duration")
        if start is None or duration is None:
            raise LiveError(
                f"event {desc.get('event_id')} has no start or duration", hint="send dtstart and duration"
            )
        return cls(
            event_id=str(desc["event_id"]),
            modification=int(desc.get("modification_number", 0)),
            signal_name=str(signal["signal_name"]),
            signal_type=str(signal["signal_type"]),
            value=float(first["signal_payload"]),
            start_wall=start,
            end_wall=start + duration,
            status=str(desc.get("event_status", "far")),
        )

    def to_json(self) -> JsonObject:
        return {
            "event_id": self.event_id,
            "modification": self.modification,
            "signal_name": self.signal_name,
            "signal_type": self.signal_type,
            "value": self.value,
            "start_wall": self.start_wall.isoformat(),
            "end_wall": self.end_wall.isoformat(),
            "status": self.status,
        }

    @classmethod
    def from_json(cls, obj: JsonMapping) -> DrEvent:
        """The event as :meth:`to_json` journalled it."""
        return cls(
            event_id=as_str(obj["event_id"]),
            modification=as_int(obj["modification"]),
            signal_name=as_str(obj["signal_name"]),
            signal_type=as_str(obj["signal_type"]),
            value=as_float(obj["value"]),
            start_wall=datetime.fromisoformat(as_str(obj["start_wall"])),
            end_wall=datetime.fromisoformat(as_str(obj["end_wall"])),
            status=as_str(obj.get("status", "far")),
        )


def event_target_mw(event: DrEvent, config: OpenAdrConfig, facility_mw: float) -> float | None:
    """Facility MW the site must stay at or below during ``event`` (``None``: the event asks nothing
    this site understands, or level 0)."""
    name, kind = event.signal_name.upper(), event.signal_type.lower()
    if name == "LOAD_DISPATCH" and kind == "setpoint":
        return max(event.value, 0.0)
    if name == "LOAD_DISPATCH" and kind == "delta":
        return max(facility_mw - abs(event.value), 0.0)
    if name == "SIMPLE" and kind == "level":
        level = round(event.value)
        if level <= 0:
            return None
        levels = config.simple_level_reduction_mw
        shed = levels[min(level, len(levels)) - 1] if levels else 0.0
        return max(facility_mw - shed, 0.0)
    return None


@dataclass(frozen=True)
class EventValue:
    shed_mw: float
    hours: float
    payment_usd: float
    margin_lost_usd: float

    @property
    def opt(self) -> str:
        return "optIn" if self.payment_usd >= self.margin_lost_usd else "optOut"


def event_value(
    *,
    target_mw: float,
    hours: float,
    price_usd_per_mwh: float,
    mining_facility_mw: float,
    ai_facility_mw: float,
    mining_revenue_usd_per_mwh: float,
    mining_pue: float,
    ai_revenue_usd_per_mwh: float,
    ai_penalty_usd_per_mwh: float,
    ai_pue: float,
    payment_usd_per_mwh: float,
) -> EventValue:
    """What shedding down to ``target_mw`` for ``hours`` pays against the margin it gives up (float USD,
    analytics). Mining is shed first; a negative mining margin counts as a gain."""
    load = mining_facility_mw + ai_facility_mw
    shed = max(load - target_mw, 0.0)
    from_mining = min(shed, mining_facility_mw)
    from_ai = min(shed - from_mining, ai_facility_mw)
    mining_margin = mining_revenue_usd_per_mwh / mining_pue - price_usd_per_mwh
    ai_margin = (ai_revenue_usd_per_mwh + ai_penalty_usd_per_mwh) / ai_pue - price_usd_per_mwh
    lost = (from_mining * mining_margin + from_ai * ai_margin) * hours
    return EventValue(shed, hours, payment_usd_per_mwh * shed * hours, lost)
