"""Capacity leaves in the metering store: recording, closing, proofs, flags and verified KPIs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from drakewell.core.errors import ProofError
from drakewell.core.merkle import MerkleTree, leaf_hash
from drakewell.metering.capacity import (
    CAPACITY_LEAF_TYPES,
    ZERO_ROOT,
    CapacityLeaf,
    CapacityProof,
    capacity_frame,
    capacity_root,
    close_capacity,
    flagged_nodes,
    prove_capacity,
    record_capacity,
    verify_capacity_proof,
)
from drakewell.metering.ingest import NodeSpec
from drakewell.metering.kpis import CAPACITY_KPI_COLUMNS, capacity_kpis, node_kpis
from drakewell.metering.readings import asset_id
from drakewell.store import open_engine, sqlite_url

ASSET = asset_id("test:capacity")
GPU_NODE = "0x" + "11" * 20
ASIC_NODE = "0x" + "22" * 20
CHEAT_NODE = "0x" + "33" * 20
EPOCH = 20_000
DAY = 86_400


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    eng = open_engine(sqlite_url(tmp_path / "meter.sqlite"))
    yield eng
    eng.dispose()


def _fill(engine) -> None:  # type: ignore[no-untyped-def]
    record_capacity(
        engine,
        node=GPU_NODE,
        asset=ASSET,
        epoch=EPOCH,
        kind="gpu",
        verified_per_s=300 * 10**12,
        declared_per_s=1_979 * 10**12,
        passed=1,
        now_s=1.0,
    )
    record_capacity(
        engine,
        node=GPU_NODE,
        asset=ASSET,
        epoch=EPOCH,
        kind="gpu",
        verified_per_s=250 * 10**12,
        declared_per_s=1_979 * 10**12,
        passed=1,
        now_s=2.0,
    )
    record_capacity(
        engine,
        node=CHEAT_NODE,
        asset=ASSET,
        epoch=EPOCH,
        kind="gpu",
        verified_per_s=0,
        declared_per_s=1_979 * 10**12,
        failed=1,
        now_s=3.0,
    )
    record_capacity(
        engine,
        node=ASIC_NODE,
        asset=ASSET,
        epoch=EPOCH,
        kind="asic",
        verified_per_s=190 * 10**12,
        declared_per_s=200 * 10**12,
        passed=5_000,
        failed=3,
        now_s=4.0,
    )


def test_leaves_accumulate_and_the_root_is_the_standard_tree(engine) -> None:  # type: ignore[no-untyped-def]
    _fill(engine)
    frame = capacity_frame(engine, ASSET)
    gpu = frame[frame["node"] == GPU_NODE].iloc[0]
    assert (gpu["passed"], gpu["failed"], gpu["verified_per_s"]) == (
        2,
        0,
        300 * 10**12,
    )  # best lower bound kept
    root = close_capacity(engine, ASSET, EPOCH, now_s=10.0)
    rows = [
        (node, ASSET, EPOCH, kind, v, d, p, f)
        for node, kind, v, d, p, f in [
            (GPU_NODE, 0, 300 * 10**12, 1_979 * 10**12, 2, 0),
            (ASIC_NODE, 1, 190 * 10**12, 200 * 10**12, 5_000, 3),
            (CHEAT_NODE, 0, 0, 1_979 * 10**12, 0, 1),
        ]
    ]
    assert root == MerkleTree.of(CAPACITY_LEAF_TYPES, rows).root
    assert close_capacity(engine, ASSET, EPOCH) == root == capacity_root(engine, ASSET, EPOCH)
    assert capacity_root(engine, ASSET, EPOCH + 1) is None
    assert close_capacity(engine, ASSET, EPOCH + 1) == ZERO_ROOT  # an epoch with no checks


def test_a_closed_epoch_refuses_new_checks_and_proofs_verify(engine) -> None:  # type: ignore[no-untyped-def]
    _fill(engine)
    with pytest.raises(ProofError, match="not closed"):
        prove_capacity(engine, ASSET, EPOCH, CHEAT_NODE)
    root = close_capacity(engine, ASSET, EPOCH)
    with pytest.raises(ProofError, match="closed"):
        record_capacity(
            engine,
            node=GPU_NODE,
            asset=ASSET,
            epoch=EPOCH,
            kind="gpu",
            verified_per_s=1,
            declared_per_s=1,
            passed=1,
        )
    proof = prove_capacity(engine, ASSET, EPOCH, CHEAT_NODE)
    assert proof.leaf.flagged and verify_capacity_proof(proof, root)
    again = CapacityProof.from_json(proof.to_json())
    assert verify_capacity_proof(again, root)
    assert proof.leaf.leaf() == leaf_hash(CAPACITY_LEAF_TYPES, list(proof.leaf.values()))
    forged = CapacityProof(
        CapacityLeaf(CHEAT_NODE, ASSET, EPOCH, "gpu", 0, 1_979 * 10**12, 1, 0), proof.proof, root
    )
    assert not verify_capacity_proof(forged, root)
    assert flagged_nodes(engine, ASSET, EPOCH) == [CHEAT_NODE]


def test_changed_leaves_after_close_are_detected(engine) -> None:  # type: ignore[no-untyped-def]
    from drakewell.metering.capacity import capacity_leaves

    _fill(engine)
    close_capacity(engine, ASSET, EPOCH)
    with engine.begin() as conn:
        conn.execute(capacity_leaves.update().where(capacity_leaves.c.node == CHEAT_NODE).values(failed=0))
    with pytest.raises(ProofError, match="do not hash"):
        prove_capacity(engine, ASSET, EPOCH, GPU_NODE)


def test_flags_follow_the_stated_rule() -> None:
    def leaf(kind: str, passed: int, failed: int) -> CapacityLeaf:
        return CapacityLeaf(GPU_NODE, ASSET, EPOCH, kind, 1, 1, passed, failed)  # type: ignore[arg-type]

    assert leaf("gpu", 10, 1).flagged and not leaf("gpu", 10, 0).flagged
    assert not leaf("asic", 1_000, 10).flagged  # 1 % of shares: hardware errors
    assert leaf("asic", 1_000, 11).flagged
    assert not leaf("asic", 0, 0).flagged


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"kind": "fpga"}, "kind"),
        ({"verified_per_s": -1}, "outside"),
        ({"declared_per_s": 2**63}, "outside"),
        ({"passed": -1}, "negative"),
        ({"node": "0x12"}, "address"),
    ],
)
def test_bad_records_get_clear_errors(engine, kwargs, fragment) -> None:  # type: ignore[no-untyped-def]
    args = {
        "node": GPU_NODE,
        "asset": ASSET,
        "epoch": EPOCH,
        "kind": "gpu",
        "verified_per_s": 1,
        "declared_per_s": 1,
    } | kwargs
    with pytest.raises(Exception) as info:
        record_capacity(engine, **args)
    assert fragment in str(info.value) and getattr(info.value, "hint", None)
    assert capacity_frame(engine).empty  # nothing half-written


def test_kind_cannot_change_within_an_epoch(engine) -> None:  # type: ignore[no-untyped-def]
    _fill(engine)
    with pytest.raises(ProofError, match="gpu node"):
        record_capacity(
            engine, node=GPU_NODE, asset=ASSET, epoch=EPOCH, kind="asic", verified_per_s=1, declared_per_s=1
        )


def test_kpis_show_verified_beside_declared(engine) -> None:  # type: ignore[no-untyped-def]
    _fill(engine)
    a_hex = "0x" + ASSET.hex()
    start = EPOCH * DAY
    readings = pd.DataFrame(
        [
            # node, energy Wh, GPU-s, TH, tokens, window
            (GPU_NODE, 8_000, 8 * 43_200, 0, 10**9, start, start + DAY),
            (CHEAT_NODE, 8_000, 8 * 43_200, 0, 10**9, start, start + DAY),
            (ASIC_NODE, 84_000, 0, 200 * DAY, 0, start, start + DAY),
        ],
        columns=["node", "energy_wh", "gpu_seconds", "hashes_th", "tokens", "window_start", "window_end"],
    ).assign(asset=a_hex, epoch=EPOCH, lease_id="0")
    specs = {
        GPU_NODE: NodeSpec(GPU_NODE, ASSET, "gpu", gpus=8, gpu_w=1_200.0),
        CHEAT_NODE: NodeSpec(CHEAT_NODE, ASSET, "gpu", gpus=8, gpu_w=1_200.0),
        ASIC_NODE: NodeSpec(ASIC_NODE, ASSET, "asic", asic_units=1, asic_w=3_500.0, asic_th_s=200.0),
    }
    kpis = capacity_kpis(node_kpis(readings, specs), capacity_frame(engine, ASSET)).set_index("node")
    assert list(kpis.reset_index().columns) == CAPACITY_KPI_COLUMNS
    assert kpis.loc[GPU_NODE, "load_rate"] == kpis.loc[GPU_NODE, "load_rate_verified"] == 0.5
    assert kpis.loc[CHEAT_NODE, "load_rate"] == 0.5 and kpis.loc[CHEAT_NODE, "load_rate_verified"] == 0.0
    assert bool(kpis.loc[CHEAT_NODE, "flagged"]) and not bool(kpis.loc[GPU_NODE, "flagged"])
    assert kpis.loc[GPU_NODE, "verified_ratio"] == pytest.approx(300 / 1_979)
    declared_j_per_th = 84_000 * 3600 / (200 * DAY)
    assert kpis.loc[ASIC_NODE, "j_per_th"] == pytest.approx(declared_j_per_th)
    assert kpis.loc[ASIC_NODE, "j_per_th_verified"] == pytest.approx(declared_j_per_th * 200 / 190)
    assert math.isnan(kpis.loc[ASIC_NODE, "load_rate_verified"])


def test_kpis_without_capacity_leaves_are_unverified() -> None:
    readings = pd.DataFrame(
        [(GPU_NODE, 100, 3_600, 0, 10, EPOCH * DAY, EPOCH * DAY + 3_600)],
        columns=["node", "energy_wh", "gpu_seconds", "hashes_th", "tokens", "window_start", "window_end"],
    ).assign(asset="0x" + ASSET.hex(), epoch=EPOCH, lease_id="0")
    empty = pd.DataFrame(
        columns=[
            "node",
            "asset",
            "epoch",
            "kind",
            "verified_per_s",
            "declared_per_s",
            "passed",
            "failed",
            "flagged",
        ]
    )
    kpis = capacity_kpis(node_kpis(readings, {}), empty)
    assert np.isnan(kpis.loc[0, "load_rate_verified"]) and not bool(kpis.loc[0, "flagged"])
