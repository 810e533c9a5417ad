"""Wiring: site file + inventory + price source → a running :class:`~drakewell.live.controller.Controller`.

- :func:`replay_inputs`: the backtest's own inputs for an ERCOT real-time CSV (and day-ahead CSV),
  optionally cut to ``start`` and ``intervals``; its prices feed a :class:`ReplayPrices` source.
- :func:`live_inputs`: a horizon of ``hours`` from the current interval with ERCOT's day-ahead
  prices from gridstatus as the forecast (and the stand-in for prices not yet seen).
- :func:`run_site`: connect the fleet (pyasic), start the VEN, ``/metrics`` and the meter, run the
  controller, and return a summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from drakewell.core.fields import as_float, as_str
from drakewell.core.jsontypes import JsonObject
from drakewell.dispatch.backtest import load_backtest_inputs, resolve_site
from drakewell.dispatch.inputs import build_inputs
from drakewell.dispatch.types import DispatchInputs
from drakewell.fleet import Fleet, load_inventory
from drakewell.inputs.prices import align_da_to_rt, fetch_gridstatus_prices
from drakewell.live.config import LiveConfig, LiveError, load_live_config
from drakewell.live.controller import Controller, PriceSource
from drakewell.live.journal import Journal
from drakewell.live.meter import IntervalMeter
from drakewell.live.signals import DrEvent, GridstatusPrices, ReplayClock, ReplayPrices, WallClock
from drakewell.live.ven import Ven
from drakewell.site import Site

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from drakewell.live.metrics import LiveMetrics

__all__ = ["live_inputs", "percentile_ms", "replay_inputs", "run_site"]


def replay_inputs(
    site: Site | str | Path,
    rt_csv: str | Path,
    da_csv: str | Path | None,
    *,
    zone: str | None = None,
    start: str | pd.Timestamp | None = None,
    intervals: int | None = None,
) -> tuple[DispatchInputs, pd.Series]:
    """The backtest's inputs for the replay window and its real-time prices (UTC index)."""

    inputs = load_backtest_inputs(site, prices=rt_csv, forecast=da_csv, zone=zone)
    lo = 0
    if start is not None:
        stamp = pd.Timestamp(start)
        stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
        lo = int(inputs.interval_start_utc.searchsorted(stamp))
        if lo >= inputs.n:
            raise LiveError(f"replay start {stamp} is after the price file", hint="pick a start inside it")
    hi = inputs.n if intervals is None else min(inputs.n, lo + intervals)
    if hi - lo < 2:
        raise LiveError("a replay needs at least two intervals", hint="widen --intervals or --start")
    if (lo, hi) != (0, inputs.n):
        inputs = inputs.slice(lo, hi)
    prices = pd.Series(inputs.price_usd_per_mwh.copy(), index=inputs.interval_start_utc)
    return inputs, prices


FetchDa = Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame]


def live_inputs(
    site: Site,
    *,
    now: pd.Timestamp,
    hours: float,
    hashprice_usd_per_ph_day: float,
    zone: str | None = None,
    fetch_da: FetchDa | None = None,
) -> DispatchInputs:
    """A horizon of ``hours`` from the interval containing ``now``, with day-ahead prices as forecast."""

    step = pd.Timedelta(minutes=site.interval_minutes)
    first = now.tz_convert("UTC").floor(step)
    index = pd.date_range(first, first + pd.Timedelta(hours=hours), freq=step, inclusive="left", name="t")
    if fetch_da is None:

        def fetch_da(a: pd.Timestamp, b: pd.Timestamp) -> pd.DataFrame:
            return fetch_gridstatus_prices(a.to_pydatetime(), b.to_pydatetime(), market="da")

    da = fetch_da(first - pd.Timedelta(days=1), first + pd.Timedelta(hours=hours) + pd.Timedelta(days=1))
    rt = align_da_to_rt(da, pd.DatetimeIndex(index))  # stand-in until each real-time price arrives
    if rt.isna().any().any():
        rt = rt.ffill().bfill()
    return build_inputs(site, rt, da, hashprice_usd_per_ph_day, zone)


def percentile_ms(seconds: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(seconds) * 1000.0, q)) if seconds else None


@dataclass
class RunOptions:
    prices: str = "gridstatus"  # "replay:RT.csv" or "gridstatus"
    forecast: str | None = None
    speed: float = 1.0
    zone: str | None = None
    start: str | None = None
    intervals: int | None = None
    hours: float = 24.0
    max_wall_s: float | None = None
    apply_deadline_s: float | None = None


async def run_site(
    site_path: str | Path,
    journal_path: str | Path,
    options: RunOptions,
    *,
    inventory_path: str | Path | None = None,
    config: LiveConfig | None = None,
    live_clock: ReplayClock | WallClock | None = None,
    fetch_rt: Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame] | None = None,
    fetch_da: FetchDa | None = None,
) -> JsonObject:
    """Run the controller until a replay's last interval or ``max_wall_s``; returns the last horizon's
    summary. Live (gridstatus) runs roll from one horizon of ``hours`` to the next, each starting
    where the previous ended and from the state it ended in (read back from the journal, so a restart
    in any horizon decides as an uninterrupted run); ``live_clock`` and the ``fetch_*`` functions
    replace the wall clock and gridstatus (tests)."""

    site = resolve_site(site_path)
    cfg = config or load_live_config(site_path)
    live = options.prices == "gridstatus"
    async with contextlib.AsyncExitStack() as stack:
        journal = Journal(journal_path)
        stack.callback(journal.close)
        feed = await _Feed.open(site, cfg, options, journal, live_clock, fetch_rt, fetch_da)
        devices = await _Devices.open(cfg, feed.inputs, inventory_path, stack)

        def controller_for(horizon_inputs: DispatchInputs) -> Controller:
            # a live horizon starts from the state the journal's previous horizon ended in
            return Controller(
                horizon_inputs,
                cfg,
                journal,
                prices=feed.source,
                clock=feed.clock,
                fleet=devices.fleet,
                fleet_rated_mining_w=devices.rated_w,
                meter=devices.meter,
                metrics=devices.metrics,
                apply_deadline_s=options.apply_deadline_s,
                continues=live,
            )

        current = controller_for(feed.inputs)
        count = 1
        if devices.metrics is not None and cfg.metrics.port:
            server, _ = devices.metrics.serve(
                cfg.metrics.host, cfg.metrics.port, lambda: current.live_state()
            )
            stack.callback(_shut_down, server)
        ven = await _start_ven(cfg, lambda: current, stack)
        deadline = None if options.max_wall_s is None else time.monotonic() + options.max_wall_s
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            await current.run(max_wall_s=left, ven=ven)
            if (
                feed.horizons is None
                or not current.finished
                or (deadline is not None and time.monotonic() >= deadline)
            ):
                break
            # a live run rolls on: the next horizon starts where this one ended
            current = controller_for(await feed.horizons.next())
            count += 1
    return {**summarize(current), "horizons": count}


@dataclass(frozen=True)
class _Feed:
    """Where a run's prices come from: the first horizon's inputs, the clock, the price source and,
    for a live run, the horizons that follow."""

    inputs: DispatchInputs
    clock: ReplayClock | WallClock
    source: PriceSource
    horizons: _Horizons | None

    @classmethod
    async def open(
        cls,
        site: Site,
        cfg: LiveConfig,
        options: RunOptions,
        journal: Journal,
        live_clock: ReplayClock | WallClock | None,
        fetch_rt: Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame] | None,
        fetch_da: FetchDa | None,
    ) -> _Feed:
        """A replay of ``replay:RT.csv`` (at ``options.speed``) or live gridstatus prices."""
        if options.prices.startswith("replay:"):
            inputs, series = replay_inputs(
                site,
                options.prices.removeprefix("replay:"),
                options.forecast,
                zone=options.zone,
                start=options.start,
                intervals=options.intervals,
            )
            clock = ReplayClock(inputs.interval_start_utc[0], options.speed)
            return cls(inputs, clock, ReplayPrices(series, clock), None)
        if options.prices == "gridstatus":
            wall = live_clock or WallClock()
            horizons = _Horizons(site, cfg, options, journal, wall, fetch_da)
            source = GridstatusPrices(
                options.zone or site.zone, wall, fetch=fetch_rt, poll_s=cfg.price_poll_s
            )
            return cls(await horizons.next(), wall, source, horizons)
        raise LiveError(
            f"unknown price source {options.prices!r}",
            hint="use replay:RT.csv (with --forecast DA.csv) or gridstatus",
        )


async def _start_ven(
    cfg: LiveConfig, current: Callable[[], Controller], stack: contextlib.AsyncExitStack
) -> Ven | None:
    """Start the VEN when the site has ``[live.openadr]``: it hands events to the ``current``
    horizon's controller and reports its measured power; ``stack`` stops it when the run ends."""
    if cfg.openadr is None:
        return None

    async def on_event(event: DrEvent) -> str:
        return await current().on_event(event)

    ven = Ven(cfg.openadr, on_event, lambda: current().measured_facility_mw() * 1e6)
    await ven.start()
    stack.push_async_callback(ven.stop)
    return ven


def _shut_down(server: WSGIServer) -> None:
    with contextlib.suppress(Exception):
        server.shutdown()
        server.server_close()


class _Horizons:
    """A live run's horizons of ``hours``: a restart resumes the horizon its journal left open, else
    each starts now, with the day-ahead prices known then."""

    def __init__(
        self,
        site: Site,
        cfg: LiveConfig,
        options: RunOptions,
        journal: Journal,
        clock: ReplayClock | WallClock,
        fetch_da: FetchDa | None,
    ) -> None:
        if cfg.hashprice_usd_per_ph_day is None:
            raise LiveError(
                "live prices need [live] hashprice_usd_per_ph_day in the site file",
                hint="set the hashprice (USD per PH/s per day) the controller should assume",
            )
        self.site, self.options, self.clock, self.fetch_da = site, options, clock, fetch_da
        self.hashprice = cfg.hashprice_usd_per_ph_day
        self.open_start: JsonObject | None = None
        for r in journal.records:
            self.open_start = r if r["kind"] == "start" else (None if r["kind"] == "end" else self.open_start)

    async def next(self) -> DispatchInputs:
        now, hours = self.clock.now(), self.options.hours
        if self.open_start is not None:
            now, hours = (
                pd.Timestamp(as_str(self.open_start["first"])),
                as_float(self.open_start["n"]) * as_float(self.open_start["hours"]),
            )
            self.open_start = None
        return await asyncio.to_thread(
            live_inputs,
            self.site,
            now=now,
            hours=hours,
            hashprice_usd_per_ph_day=self.hashprice,
            zone=self.options.zone,
            fetch_da=self.fetch_da,
        )


@dataclass(frozen=True)
class _Devices:
    """The fleet (with an inventory), the interval meter and the Prometheus metrics of a run."""

    fleet: Fleet | None
    rated_w: float | None
    meter: IntervalMeter | None
    metrics: LiveMetrics | None

    @classmethod
    async def open(
        cls,
        cfg: LiveConfig,
        inputs: DispatchInputs,
        inventory_path: str | Path | None,
        stack: contextlib.AsyncExitStack,
    ) -> _Devices:
        """Connect what the run uses; ``stack`` closes each when the run ends."""
        fleet = inventory = rated = meter = None
        if inventory_path is not None:
            inventory = load_inventory(inventory_path)  # pyasic and NVML (the "fleet" extra) load on use
            fleet = await Fleet.connect(inventory)
            stack.push_async_callback(fleet.close)
            rated = inventory.rated_mining_w
        if cfg.meter is not None:
            count = len(inventory.miners) if inventory is not None else 1
            total_w = rated if rated else inputs.site.mining_it_mw * 1e6
            total_th = (
                sum(m.model.hashrate_th_s for m in inventory.miners)
                if inventory is not None
                else total_w / 34.0
            )
            meter = IntervalMeter.from_config(
                cfg.meter, miners=count, miner_w=total_w / count, miner_th_s=total_th / count
            )
            stack.callback(meter.close)
        metrics: LiveMetrics | None
        try:
            from drakewell.live.metrics import LiveMetrics  # prometheus-client: the "live" extra

            metrics = LiveMetrics(fleet)
        except ImportError:
            metrics = None
        return cls(fleet, rated, meter, metrics)


def summarize(controller: Controller) -> JsonObject:
    j = controller.journal
    return {
        "intervals_decided": len(controller.decisions()),
        "finished": controller.finished,
        "commands": sum(1 for _ in j.of_kind("command")),
        "safe_mode_entries": sum(1 for r in j.of_kind("safe_mode") if r["on"]),
        "decision_p50_ms": percentile_ms(controller.decision_s, 50),
        "decision_p99_ms": percentile_ms(controller.decision_s, 99),
        "events": [rec.summary() for rec in controller.events.values()],
        "readings": sum(1 for _ in j.of_kind("reading")),
    }
