"""GPU driver over NVML (``nvidia-ml-py``'s ``pynvml``, or the NVML-shaped fake for tests).

NVML calls used, with their units:

* ``nvmlDeviceGetPowerUsage`` (mW) and ``nvmlDeviceGetTotalEnergyConsumption`` (mJ) to read;
* ``nvmlDeviceGetPowerManagementLimit`` (mW) for the present cap and
  ``nvmlDeviceGetPowerManagementLimitConstraints`` (``[min, max]`` mW) for its bounds;
* ``nvmlDeviceSetPowerManagementLimit`` (mW) to cap — root only. Not the ``_v2`` variant, which
  ignores NVML's return code and so cannot report a refusal.

NVML is a blocking C library: every call runs in a worker thread (``asyncio.to_thread``) so the
event loop keeps serving the other devices; the fleet's deadline bounds the wait (a call that
finishes late is discarded). Without an NVIDIA driver ``nvmlInit`` raises
``NVMLError_LibraryNotFound``, reported as :class:`GpuLibraryError` with what to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import ModuleType

from drakewell.fleet.devices import GpuReading
from drakewell.fleet.errors import FleetError, GpuLibraryError, import_extra
from drakewell.fleet.inventory import GpuEntry

__all__ = ["NvmlGpuDriver", "open_gpus"]


def _load_nvml(nvml: ModuleType | None) -> ModuleType:
    return nvml if nvml is not None else import_extra("pynvml", "nvidia-ml-py", GpuLibraryError)


class NvmlGpuDriver:
    """One GPU through NVML (``pynvml`` or :mod:`drakewell.fleet.fake_nvml`; ``handle`` is what its
    ``nvmlDeviceGetHandleByIndex`` returned); ``close()`` releases this driver's ``nvmlInit``."""

    def __init__(self, nvml: ModuleType, handle: object, index: int) -> None:
        self.nvml = nvml
        self.handle = handle
        self.index = index
        self._open = True

    def _read_sync(self) -> GpuReading:
        n = self.nvml
        lo, hi = n.nvmlDeviceGetPowerManagementLimitConstraints(self.handle)
        return GpuReading(
            power_w=n.nvmlDeviceGetPowerUsage(self.handle) / 1000.0,
            power_cap_w=n.nvmlDeviceGetPowerManagementLimit(self.handle) / 1000.0,
            energy_mj=int(n.nvmlDeviceGetTotalEnergyConsumption(self.handle)),
            min_cap_w=lo / 1000.0,
            max_cap_w=hi / 1000.0,
        )

    async def read(self) -> GpuReading | None:
        try:
            return await asyncio.to_thread(self._read_sync)
        except self.nvml.NVMLError:
            return None

    def _set_sync(self, watts: int) -> None:
        self.nvml.nvmlDeviceSetPowerManagementLimit(self.handle, int(watts) * 1000)

    async def set_power_cap(self, watts: int) -> bool:
        try:
            await asyncio.to_thread(self._set_sync, watts)
        except self.nvml.NVMLError as exc:
            if getattr(exc, "value", None) == self.nvml.NVML_ERROR_NO_PERMISSION:
                raise FleetError(
                    f"GPU {self.index}: NVML refused the power cap (no permission)",
                    hint="setting GPU power limits needs root: run the controller as root",
                ) from None
            if getattr(exc, "value", None) == self.nvml.NVML_ERROR_INVALID_ARGUMENT:
                raise FleetError(
                    f"GPU {self.index}: cap {watts} W is outside the card's limits",
                    hint="see nvmlDeviceGetPowerManagementLimitConstraints",
                ) from None
            return False
        return True

    def close(self) -> None:
        if self._open:
            self._open = False
            self.nvml.nvmlShutdown()


def open_gpus(
    entries: Sequence[GpuEntry], *, nvml: ModuleType | None = None
) -> list[tuple[str, NvmlGpuDriver]]:
    """Initialise NVML and return one driver per inventory GPU (by NVML index)."""
    n = _load_nvml(nvml)
    try:
        n.nvmlInit()
    except n.NVMLError as exc:
        if getattr(exc, "value", None) == n.NVML_ERROR_LIBRARY_NOT_FOUND:
            raise GpuLibraryError(
                "NVML is not available: no NVIDIA driver (libnvidia-ml.so) on this machine",
                hint="run on a GPU host with the NVIDIA driver, or remove [[gpus]] from the inventory",
            ) from None
        raise GpuLibraryError(
            f"nvmlInit failed: {exc}", hint="check the NVIDIA driver (nvidia-smi)"
        ) from None
    count = n.nvmlDeviceGetCount()
    drivers: list[tuple[str, NvmlGpuDriver]] = []
    for entry in entries:
        if entry.index >= count:
            for _ in range(max(1, len(drivers))):
                n.nvmlShutdown()
            raise GpuLibraryError(
                f"GPU {entry.id!r} has NVML index {entry.index}, but this machine has {count} GPU(s)",
                hint="fix gpus[].index in the inventory (nvidia-smi -L lists the indices)",
            )
        if drivers:
            n.nvmlInit()  # one reference per driver, released by its close()
        drivers.append((entry.id, NvmlGpuDriver(n, n.nvmlDeviceGetHandleByIndex(entry.index), entry.index)))
    if not drivers:
        n.nvmlShutdown()
    return drivers
