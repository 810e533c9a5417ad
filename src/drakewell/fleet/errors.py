"""Errors of the fleet package (inventory, drivers, emulator)."""

from __future__ import annotations

import importlib
from types import ModuleType

from drakewell.core.errors import DrakewellError


class FleetError(DrakewellError):
    """An inventory is invalid, a device library is missing, or a fleet operation was refused."""


class InventoryError(FleetError):
    """The fleet inventory TOML is malformed (the message names file and key path)."""


class GpuLibraryError(FleetError):
    """NVML could not be loaded or used (no NVIDIA driver, or no permission)."""


def import_extra(module: str, package: str, error: type[FleetError] = FleetError) -> ModuleType:
    """Import ``module`` (from the fleet extra's ``package``), or raise ``error`` saying to install it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:  # pragma: no cover - the fleet extra installs it
        raise error(
            f"{package} is not installed", hint="install the fleet extra: pip install 'drakewell[fleet]'"
        ) from None
