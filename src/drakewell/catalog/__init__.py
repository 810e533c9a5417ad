"""Hardware as data: ASIC and GPU models with units and a source per value (``hardware.csv``)."""

from drakewell.catalog.hardware import (
    DEFAULT_CATALOG_PATH,
    AsicModel,
    Catalog,
    CatalogError,
    GpuModel,
    HardwareModel,
    load_catalog,
)

__all__ = [
    "DEFAULT_CATALOG_PATH",
    "AsicModel",
    "Catalog",
    "CatalogError",
    "GpuModel",
    "HardwareModel",
    "load_catalog",
]
