"""Fixtures for metering tests: a domain, deterministic node keys, a store, a reading factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from metering_helpers import ASIC_ASSET, DAY, EPOCH, GPU_ASSET, TEST_LEASE_IDS

from drakewell.metering.ingest import LeaseTerms, MeterStore, NodeSpec
from drakewell.metering.readings import MeterDomain, Reading
from drakewell.metering.signing import NodeKey
from drakewell.store import sqlite_url


@pytest.fixture
def domain() -> MeterDomain:
    return MeterDomain(31337, "0x5fbdb2315678afecb367f032d93f642f64180aa3")


@pytest.fixture
def gpu_key() -> NodeKey:
    return NodeKey((1001).to_bytes(32, "big"))


@pytest.fixture
def asic_key() -> NodeKey:
    return NodeKey((2002).to_bytes(32, "big"))


@pytest.fixture
def store(tmp_path: Path, domain: MeterDomain, gpu_key: NodeKey, asic_key: NodeKey) -> MeterStore:
    s = MeterStore(sqlite_url(tmp_path / "meter.sqlite"), domain)
    s.register_nodes(
        [
            NodeSpec(gpu_key.address, GPU_ASSET, "gpu", gpus=8, gpu_w=1_000.0, max_tokens_per_gpu_s=5_000),
            NodeSpec(asic_key.address, ASIC_ASSET, "asic", asic_units=10, asic_w=3_000.0, asic_th_s=200.0),
        ]
    )
    s.register_leases(
        LeaseTerms(lid, GPU_ASSET, 8, (EPOCH - 1) * DAY, (EPOCH + 2) * DAY) for lid in TEST_LEASE_IDS
    )
    return s


MakeReading = Callable[..., Reading]


@pytest.fixture
def make_reading(gpu_key: NodeKey) -> MakeReading:
    """A valid 5-minute GPU reading in EPOCH; keyword arguments override fields."""

    def make(seq: int = 1, key: NodeKey | None = None, **fields: Any) -> Reading:
        start = EPOCH * DAY + (seq - 1) * 300
        values: dict[str, Any] = {
            "node": (key or gpu_key).address,
            "asset": GPU_ASSET,
            "epoch": EPOCH,
            "seq": seq,
            "window_start": start,
            "window_end": start + 300,
            "energy_wh": 500,
            "gpu_seconds": 1_800,
            "hashes_th": 0,
            "tokens": 1_000_000,
            "lease_id": 0,
        }
        values.update(fields)
        return Reading(**values)

    return make
