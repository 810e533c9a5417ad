"""Per-device telemetry: a bounded time series of every read-back (W, TH/s, GPU energy).

Each device keeps its most recent ``max_samples`` samples (oldest dropped first). A sample is
``(t_s, power_w, hashrate_th_s, energy_mj)``: wall-clock UTC seconds of the read, the device's IT
power, its hashrate (0 for GPUs) and, for GPUs, NVML's energy counter (mJ since the driver loaded;
``None`` for miners). ``frame()`` returns one long pandas frame (UTC timestamps) for metering to
sign and the dashboard to plot; ``energy_wh(device)`` integrates power over the recorded samples
(trapezoid rule) or, for a GPU, differences its energy counter, which is exact.

:func:`poll` reads a fleet every ``interval_s`` seconds for ``duration_s`` seconds and stops.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from drakewell.fleet.devices import GpuReading, MinerReading

if TYPE_CHECKING:
    from drakewell.fleet.control import Fleet

__all__ = ["Sample", "TelemetrySeries", "poll"]


@dataclass(frozen=True)
class Sample:
    t_s: float
    power_w: float
    hashrate_th_s: float
    energy_mj: int | None


class TelemetrySeries:
    """Samples per device, newest last (written from the fleet's event loop only)."""

    def __init__(self, max_samples: int = 10_000) -> None:
        self.max_samples = max_samples
        self._series: dict[str, deque[Sample]] = {}

    def record(self, device: str, t_s: float, reading: MinerReading | GpuReading) -> None:
        if isinstance(reading, GpuReading):
            sample = Sample(t_s, reading.power_w, 0.0, reading.energy_mj)
        else:
            sample = Sample(t_s, reading.power_w, reading.hashrate_th_s, None)
        series = self._series.setdefault(device, deque(maxlen=self.max_samples))
        series.append(sample)

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(self._series)

    def samples(self, device: str) -> tuple[Sample, ...]:
        return tuple(self._series.get(device, ()))

    def energy_wh(self, device: str) -> float:
        """Energy over the recorded samples (Wh): the GPU counter's difference, else trapezoids."""
        s = self.samples(device)
        if len(s) < 2:
            return 0.0
        if s[0].energy_mj is not None and s[-1].energy_mj is not None:
            return (s[-1].energy_mj - s[0].energy_mj) / 3.6e6
        joules = sum((b.t_s - a.t_s) * (a.power_w + b.power_w) / 2 for a, b in itertools.pairwise(s))
        return joules / 3600.0

    def frame(self) -> pd.DataFrame:
        """Long frame: device, time (UTC), power_w, hashrate_th_s, energy_mj."""
        rows = [
            (device, s.t_s, s.power_w, s.hashrate_th_s, s.energy_mj)
            for device, series in self._series.items()
            for s in series
        ]
        frame = pd.DataFrame(rows, columns=["device", "t_s", "power_w", "hashrate_th_s", "energy_mj"])
        frame.insert(1, "time", pd.to_datetime(frame.pop("t_s"), unit="s", utc=True))
        return frame


async def poll(fleet: Fleet, *, interval_s: float, duration_s: float) -> int:
    """Refresh the fleet every ``interval_s`` s for ``duration_s`` s; returns the number of rounds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + duration_s
    rounds = 0
    while True:
        await fleet.refresh()
        rounds += 1
        left = end - loop.time()
        if left <= 0:
            return rounds
        await asyncio.sleep(min(interval_s, left))
