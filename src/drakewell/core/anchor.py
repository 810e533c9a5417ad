"""``MeterRegistry.anchor``'s arguments as one record: what closing an epoch gives the chain.

Metering builds it when it closes an epoch; the chain's ``MeterClient.anchor`` sends it. Its fields
are the contract function's arguments, in their order.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass


@dataclass(frozen=True)
class EpochAnchor:
    """One epoch's roots and totals, as ``MeterRegistry.anchor`` takes them."""

    asset: bytes  # bytes32 asset id
    epoch: int
    readings_root: bytes
    deliveries_root: bytes
    n_readings: int
    energy_wh: int
    gpu_seconds: int

    def args(self) -> tuple[bytes, int, bytes, bytes, int, int, int]:
        """``(asset, epoch, readings_root, deliveries_root, n_readings, energy_wh, gpu_seconds)``."""
        return astuple(self)  # the fields are in the arguments' order
