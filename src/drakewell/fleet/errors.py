"""Errors of the fleet package (inventory, drivers, emulator)."""

from __future__ import annotations

from drakewell.core.errors import DrakewellError


class FleetError(DrakewellError):
    """An inventory is invalid, a device library is missing, or a fleet operation was refused."""


class InventoryError(FleetError):
    """The fleet inventory TOML is malformed (the message names file and key path)."""


class GpuLibraryError(FleetError):
    """NVML could not be loaded or used (no NVIDIA driver, or no permission)."""
