"""The capacity root travels with the epoch: closing an epoch records it, lookups return it."""

from __future__ import annotations

from pathlib import Path

import pytest

from drakewell.core.errors import ProofError
from drakewell.metering.capacity import capacity_root, prove_capacity, record_capacity, verify_capacity_proof
from drakewell.metering.epochs import ZERO_ROOT, close_epoch, epoch_record, epoch_records
from drakewell.metering.ingest import MeterStore, NodeSpec
from drakewell.metering.readings import MeterDomain, Reading, asset_id
from drakewell.metering.signing import NodeKey
from drakewell.store import sqlite_url

ASSET = asset_id("test:epochs-capacity")
EPOCH = 20_100
DAY = 86_400


@pytest.fixture
def store(tmp_path: Path) -> tuple[MeterStore, NodeKey]:
    key = NodeKey((4242).to_bytes(32, "big"))
    s = MeterStore(sqlite_url(tmp_path / "meter.sqlite"), MeterDomain(31337, "0x" + "55" * 20))
    s.register_nodes([NodeSpec(key.address, ASSET, "gpu", gpus=8, gpu_w=1_000.0)])
    for epoch in (EPOCH, EPOCH + 1):
        start = epoch * DAY
        reading = Reading(key.address, ASSET, epoch, epoch, start, start + 300, 500, 1_800, 0, 10**6, 0)
        assert s.ingest([key.sign(reading, s.domain)]).accepted == 1
    return s, key


def test_close_epoch_records_the_capacity_root(store: tuple[MeterStore, NodeKey]) -> None:
    s, key = store
    record_capacity(
        s.engine,
        node=key.address,
        asset=ASSET,
        epoch=EPOCH,
        kind="gpu",
        verified_per_s=10**14,
        declared_per_s=10**15,
        passed=1,
        failed=1,
    )
    record = close_epoch(s, ASSET, EPOCH)
    assert record.capacity_root != ZERO_ROOT
    assert record.capacity_root == capacity_root(s.engine, ASSET, EPOCH)
    assert record.to_json()["capacityRoot"] == "0x" + record.capacity_root.hex()
    again = epoch_record(s, ASSET, EPOCH)
    assert again is not None and again.capacity_root == record.capacity_root
    proof = prove_capacity(s.engine, ASSET, EPOCH, key.address)
    assert proof.leaf.flagged and verify_capacity_proof(proof, record.capacity_root)
    with pytest.raises(ProofError, match="closed"):
        record_capacity(
            s.engine,
            node=key.address,
            asset=ASSET,
            epoch=EPOCH,
            kind="gpu",
            verified_per_s=1,
            declared_per_s=1,
            passed=1,
        )
    # an epoch nobody checked closes with bytes32(0)
    other = close_epoch(s, ASSET, EPOCH + 1)
    assert other.capacity_root == ZERO_ROOT
    assert [r.capacity_root for r in epoch_records(s, ASSET)] == [record.capacity_root, ZERO_ROOT]
