"""Capacity rounds over a fleet: sampled GPU challenges, miners' share tallies, closed epochs left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from drakewell.core.errors import ProofError
from drakewell.metering.capacity import capacity_epochs, capacity_leaves_of
from drakewell.metering.epochs import close_epoch
from drakewell.metering.ingest import MeterStore, NodeSpec
from drakewell.metering.readings import MeterDomain, Reading, asset_id
from drakewell.metering.signing import NodeKey
from drakewell.proofs.rounds import H100_INT8_OPS_PER_S, run_capacity_round
from drakewell.store import sqlite_url

GPU_ASSET = asset_id("test:rounds-gpu")
EPOCH = 20_300
DAY = 86_400
KEYS = [NodeKey((7000 + i).to_bytes(32, "big")) for i in range(5)]


def _store(tmp_path: Path) -> MeterStore:
    s = MeterStore(sqlite_url(tmp_path / "meter.sqlite"), MeterDomain(31337, "0x" + "66" * 20))
    s.register_nodes([NodeSpec(k.address, GPU_ASSET, "gpu", gpus=8, gpu_w=1_000.0) for k in KEYS])
    for epoch in (EPOCH, EPOCH + 1):
        for seq, key in enumerate(KEYS, start=1):
            start = epoch * DAY
            r = Reading(
                key.address,
                GPU_ASSET,
                epoch,
                seq + 10 * (epoch - EPOCH),
                start,
                start + 300,
                500,
                900,
                0,
                10**6,
                0,
            )
            assert s.ingest([key.sign(r, s.domain)]).accepted == 1
    return s


def test_a_round_samples_nodes_records_leaves_and_flags_the_faker(tmp_path: Path) -> None:
    store = _store(tmp_path)
    liar = KEYS[0].address
    result = run_capacity_round(
        store,
        store.nodes.values(),
        [EPOCH],
        seed=1,
        per_epoch=5,
        n=32,
        k=8,
        dishonest=[liar],
        fake_fraction=1.0,
    )
    assert (result.challenges, result.passed, result.failed) == (5, 4, 1)
    assert result.flagged == [(EPOCH, liar)] and "1 node-epoch flagged" in result.line()
    leaves = {leaf.node: leaf for leaf in capacity_leaves_of(store.engine, GPU_ASSET, EPOCH)}
    assert len(leaves) == 5 and leaves[liar].flagged and leaves[liar].verified_per_s == 0
    honest = [leaf for node, leaf in leaves.items() if node != liar]
    assert all(0 < leaf.verified_per_s < leaf.declared_per_s == 8 * H100_INT8_OPS_PER_S for leaf in honest)

    # a sample of two per epoch, the same for the same seed; a closed epoch is left as it was
    record = close_epoch(store, GPU_ASSET, EPOCH)
    again = run_capacity_round(
        store, store.nodes.values(), [EPOCH, EPOCH + 1], seed=2, per_epoch=2, n=32, k=8
    )
    assert again.challenges == 2
    rows = capacity_epochs(store.engine, GPU_ASSET)
    assert [(r["epoch"], r["nodes"], r["closed"]) for r in rows] == [(EPOCH, 5, True), (EPOCH + 1, 2, False)]
    assert rows[0]["capacityRoot"] == "0x" + record.capacity_root.hex() and rows[0]["flaggedNodes"] == [liar]
    (tmp_path / "other").mkdir()
    other = _store(tmp_path / "other")
    twin = run_capacity_round(other, other.nodes.values(), [EPOCH + 1], seed=2, per_epoch=2, n=32, k=8)
    picked = {leaf.node for leaf in capacity_leaves_of(other.engine, GPU_ASSET, EPOCH + 1)}
    assert twin.challenges == 2 and picked == {
        leaf.node for leaf in capacity_leaves_of(store.engine, GPU_ASSET, EPOCH + 1)
    }


def test_bad_round_settings_are_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(ProofError, match="fake_fraction") as info:
        run_capacity_round(store, store.nodes.values(), [EPOCH], seed=1, fake_fraction=0.0)
    assert info.value.hint
