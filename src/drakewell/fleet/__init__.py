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
