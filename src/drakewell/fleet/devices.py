"""The one narrow seam between the fleet and its devices, and the records that cross it.

Three small protocols, each with a real backend and an in-memory double:

* :class:`MinerDriver` — ``read()``, ``sleep()``, ``wake()``, ``set_power_limit(watts)``
  (pyasic: :class:`~drakewell.fleet.miners.PyasicMinerDriver`; double:
  :class:`~drakewell.fleet.miners.MemoryMinerDriver`);
* :class:`GpuDriver` — ``read()``, ``set_power_cap(watts)``
  (NVML: :class:`~drakewell.fleet.gpus.NvmlGpuDriver` over ``pynvml`` or the NVML-shaped fake
  :mod:`drakewell.fleet.fake_nvml`);
* :class:`JobHook` — ``pause(job, power_mw)``, ``resume(job, power_mw)``
  (HTTP webhook, Slurm ``scontrol``; double: :class:`~drakewell.fleet.jobs.MemoryJobHook`).

Contract of every driver call: it is a coroutine that may take as long as the device does; the
fleet wraps each call in its own deadline (``asyncio.wait_for``), so a driver never needs one.
``read()`` returns ``None`` when the device gave no usable answer (connection refused, empty reply):
the device is *unreachable*. A control call returns ``True`` when the device acknowledged and
``False`` when it did not; either way the fleet believes only a later ``read()``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "Command",
    "GpuDriver",
    "GpuReading",
    "JobHook",
    "MinerDriver",
    "MinerReading",
    "Outcome",
]


@dataclass(frozen=True)
class MinerReading:
    """What a miner reported about itself at one moment (IT power at the miner's plug)."""

    power_w: float
    power_limit_w: float | None  # None: the firmware does not report one
    hashrate_th_s: float
    mining: bool


@dataclass(frozen=True)
class GpuReading:
    """What NVML reported about one GPU: board power, its cap and the energy counter."""

    power_w: float
    power_cap_w: float
    energy_mj: int  # millijoules since the driver loaded (nvmlDeviceGetTotalEnergyConsumption)
    min_cap_w: float
    max_cap_w: float


@runtime_checkable
class MinerDriver(Protocol):
    supports_power_limit: bool

    async def read(self) -> MinerReading | None: ...

    async def sleep(self) -> bool: ...

    async def wake(self) -> bool: ...

    async def set_power_limit(self, watts: int) -> bool: ...


@runtime_checkable
class GpuDriver(Protocol):
    async def read(self) -> GpuReading | None: ...

    async def set_power_cap(self, watts: int) -> bool: ...


@runtime_checkable
class JobHook(Protocol):
    async def pause(self, job: str, power_mw: float) -> bool: ...

    async def resume(self, job: str, power_mw: float) -> bool: ...


class Command(enum.Enum):
    SLEEP = "sleep"
    WAKE = "wake"
    LIMIT = "limit"  # miner power limit
    CAP = "cap"  # GPU power cap
    PAUSE = "pause"  # training job
    RESUME = "resume"


class Outcome(enum.Enum):
    """How one device answered one command within the apply deadline."""

    OBEYED = "obeyed"  # a read-back within the deadline shows the command carried out
    LATE = "late"  # the device answered (or timed out) but no read-back confirmed it by the deadline
    REFUSED = "refused"  # the device answered and said no, and its read-back shows no change
    UNREACHABLE = "unreachable"  # no usable answer at all (counted at its last known power)
