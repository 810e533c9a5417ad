"""An NVML-shaped fake: the ``pynvml`` functions the fleet uses, with the same names and units.

Units as in NVML: power and limits in milliwatts, energy in millijoules. Errors are raised as
``NVMLError`` subclasses with the same names and ``value`` codes as ``pynvml``'s
(``NVMLError_LibraryNotFound`` = 12, ``NVMLError_NoPermission`` = 4, ``NVMLError_InvalidArgument``
= 2, ``NVMLError_Uninitialized`` = 1).

A fake GPU draws ``min(demand, limit)`` (NVML enforces a cap within milliseconds, so the cap acts at
once) and its energy counter integrates that power over ``clock()`` seconds. Like the real library
the state is per process: :func:`configure` installs the GPUs, ``root=False`` makes
``nvmlDeviceSetPowerManagementLimit`` fail with NoPermission, and ``library_found=False`` makes
``nvmlInit`` fail as it does on a machine without the NVIDIA driver. Calls may come from several
threads (the driver runs NVML off the event loop), so the state sits behind one lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "NVML_ERROR_INVALID_ARGUMENT",
    "NVML_ERROR_LIBRARY_NOT_FOUND",
    "NVML_ERROR_NO_PERMISSION",
    "NVML_ERROR_UNINITIALIZED",
    "FakeGpu",
    "NVMLError",
    "NVMLError_InvalidArgument",
    "NVMLError_LibraryNotFound",
    "NVMLError_NoPermission",
    "NVMLError_Uninitialized",
    "configure",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetPowerManagementLimit",
    "nvmlDeviceGetPowerManagementLimitConstraints",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetTotalEnergyConsumption",
    "nvmlDeviceSetPowerManagementLimit",
    "nvmlInit",
    "nvmlShutdown",
]

NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_LIBRARY_NOT_FOUND = 12


class NVMLError(Exception):
    """An NVML return code; each subclass below is raised with its own code and message."""

    code = 0
    message = "Unknown Error"

    def __init__(self) -> None:
        super().__init__(self.message)
        self.value = self.code


class NVMLError_Uninitialized(NVMLError):
    code, message = NVML_ERROR_UNINITIALIZED, "Uninitialized"


class NVMLError_InvalidArgument(NVMLError):
    code, message = NVML_ERROR_INVALID_ARGUMENT, "Invalid Argument"


class NVMLError_NoPermission(NVMLError):
    code, message = NVML_ERROR_NO_PERMISSION, "Insufficient Permissions"


class NVMLError_LibraryNotFound(NVMLError):
    code, message = NVML_ERROR_LIBRARY_NOT_FOUND, "NVML Shared Library Not Found"


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    demand_mw: int = 650_000
    limit_mw: int = 700_000
    min_limit_mw: int = 200_000
    max_limit_mw: int = 700_000
    energy_mj: float = 0.0
    _at_s: float | None = None

    def power_mw(self) -> int:
        return min(self.demand_mw, self.limit_mw)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.gpus: list[FakeGpu] = []
        self.root = True
        self.library_found = True
        self.initialised = 0
        self.clock: Callable[[], float] = time.monotonic


_state = _State()


def configure(
    gpus: Sequence[FakeGpu],
    *,
    root: bool = True,
    library_found: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Install the fake machine's GPUs (and forget any earlier ``nvmlInit``)."""
    with _state.lock:
        _state.gpus = list(gpus)
        _state.root = root
        _state.library_found = library_found
        _state.initialised = 0
        _state.clock = clock
        now = clock()
        for gpu in _state.gpus:
            gpu._at_s = now


def _advance(gpu: FakeGpu) -> None:
    now = _state.clock()
    if gpu._at_s is not None:
        gpu.energy_mj += gpu.power_mw() * (now - gpu._at_s)  # mW × s = mJ
    gpu._at_s = now


def _gpu(handle: object) -> FakeGpu:
    if not _state.initialised:
        raise NVMLError_Uninitialized()
    if not isinstance(handle, FakeGpu) or handle not in _state.gpus:
        raise NVMLError_InvalidArgument()
    _advance(handle)
    return handle


def nvmlInit() -> None:
    with _state.lock:
        if not _state.library_found:
            raise NVMLError_LibraryNotFound()
        _state.initialised += 1


def nvmlShutdown() -> None:
    with _state.lock:
        if not _state.initialised:
            raise NVMLError_Uninitialized()
        _state.initialised -= 1


def nvmlDeviceGetCount() -> int:
    with _state.lock:
        if not _state.initialised:
            raise NVMLError_Uninitialized()
        return len(_state.gpus)


def nvmlDeviceGetHandleByIndex(index: int) -> FakeGpu:
    with _state.lock:
        if not _state.initialised:
            raise NVMLError_Uninitialized()
        if not 0 <= index < len(_state.gpus):
            raise NVMLError_InvalidArgument()
        return _state.gpus[index]


def nvmlDeviceGetName(handle: object) -> str:
    with _state.lock:
        return _gpu(handle).name


def nvmlDeviceGetPowerUsage(handle: object) -> int:
    """Board power in mW."""
    with _state.lock:
        return _gpu(handle).power_mw()


def nvmlDeviceGetTotalEnergyConsumption(handle: object) -> int:
    """Energy in mJ since the driver was loaded."""
    with _state.lock:
        return int(_gpu(handle).energy_mj)


def nvmlDeviceGetPowerManagementLimit(handle: object) -> int:
    with _state.lock:
        return _gpu(handle).limit_mw


def nvmlDeviceGetPowerManagementLimitConstraints(handle: object) -> list[int]:
    """``[min_mw, max_mw]``."""
    with _state.lock:
        gpu = _gpu(handle)
        return [gpu.min_limit_mw, gpu.max_limit_mw]


def nvmlDeviceSetPowerManagementLimit(handle: object, limit: int) -> None:
    """Set the power cap in mW (root only; within the constraints)."""
    with _state.lock:
        gpu = _gpu(handle)
        if not _state.root:
            raise NVMLError_NoPermission()
        if not gpu.min_limit_mw <= limit <= gpu.max_limit_mw:
            raise NVMLError_InvalidArgument()
        gpu.limit_mw = int(limit)
