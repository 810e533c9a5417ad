"""Constants shared by the metering tests."""

from __future__ import annotations

from drakewell.metering.readings import asset_id

EPOCH = 20_270  # 2025-07-01 UTC with day epochs
DAY = 86_400
GPU_ASSET = asset_id("test:gpu-pool")
ASIC_ASSET = asset_id("test:asic-pool")
