"""Constants shared by the metering tests."""

from __future__ import annotations

from drakewell.metering.readings import asset_id

EPOCH = 20_270  # 2025-07-01 UTC with day epochs
DAY = 86_400
GPU_ASSET = asset_id("test:gpu-pool")
ASIC_ASSET = asset_id("test:asic-pool")

# leases the tests' readings name, registered by the ``store`` fixture: 8 GPUs over EPOCH and the
# days either side of it
TEST_LEASE_IDS = (1, 2, 3, 4, 5, 9, 11, 22, 2**63 - 1, 2**90, 2**100, *(2**256 - s for s in range(1, 6)))
