"""Fleet control: command real miners (pyasic) and GPUs (NVML), and prove they obeyed.

Public API (the full contract is in :mod:`drakewell.fleet.control`'s docstring)::

    from drakewell.fleet import ControlSettings, Fleet, Setpoint, load_inventory

    inventory = load_inventory("examples/fleet/emulated.toml")
    fleet = await Fleet.connect(inventory)                 # pyasic detection, NVML, job hooks
    result = await fleet.apply(Setpoint(mining_mw=0.02))   # → ApplyResult with a per-device account
    fleet.snapshot()                                       # latest read-back of every device
    fleet.telemetry.frame()                                # per-device time series (W, TH/s, mJ)

Devices sit behind one narrow seam (:mod:`drakewell.fleet.devices`): miner drivers (pyasic,
in-memory), GPU drivers (NVML or its fake), training-job hooks (webhook, Slurm, in-memory).
:mod:`drakewell.fleet.emulator` runs emulated Whatsminers on loopback that unmodified pyasic
detects and controls; :mod:`drakewell.fleet.metrics` exports the fleet in Prometheus format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drakewell.core.lazy import lazy_exports

if TYPE_CHECKING:
    from drakewell.fleet.control import (
        ApplyResult,
        ControlSettings,
        DeviceAccount,
        DeviceState,
        Fleet,
        FleetSnapshot,
        Setpoint,
    )
    from drakewell.fleet.devices import Command, GpuReading, MinerReading, Outcome
    from drakewell.fleet.errors import FleetError, GpuLibraryError, InventoryError
    from drakewell.fleet.inventory import Inventory, load_inventory, parse_inventory

_LAZY = {
    "ApplyResult": "drakewell.fleet.control",
    "ControlSettings": "drakewell.fleet.control",
    "DeviceAccount": "drakewell.fleet.control",
    "DeviceState": "drakewell.fleet.control",
    "Fleet": "drakewell.fleet.control",
    "FleetSnapshot": "drakewell.fleet.control",
    "Setpoint": "drakewell.fleet.control",
    "Command": "drakewell.fleet.devices",
    "GpuReading": "drakewell.fleet.devices",
    "MinerReading": "drakewell.fleet.devices",
    "Outcome": "drakewell.fleet.devices",
    "FleetError": "drakewell.fleet.errors",
    "GpuLibraryError": "drakewell.fleet.errors",
    "InventoryError": "drakewell.fleet.errors",
    "Inventory": "drakewell.fleet.inventory",
    "load_inventory": "drakewell.fleet.inventory",
    "parse_inventory": "drakewell.fleet.inventory",
}

__all__ = [
    "ApplyResult",
    "Command",
    "ControlSettings",
    "DeviceAccount",
    "DeviceState",
    "Fleet",
    "FleetError",
    "FleetSnapshot",
    "GpuLibraryError",
    "GpuReading",
    "Inventory",
    "InventoryError",
    "MinerReading",
    "Outcome",
    "Setpoint",
    "load_inventory",
    "parse_inventory",
]

# Resolved on first use, so importing fleet.runner (every `drakewell site` start) stays light.
__getattr__ = lazy_exports(__name__, _LAZY)
