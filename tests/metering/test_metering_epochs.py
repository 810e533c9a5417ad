"""Epochs: roots over stored readings, per-lease deliveries, proofs that verify and that fail."""

from __future__ import annotations

from typing import Any

import pytest
from metering_helpers import EPOCH, GPU_ASSET

from drakewell.core.merkle import MerkleTree, leaf_hash
from drakewell.metering import tables
from drakewell.metering.epochs import (
    ZERO_ROOT,
    Delivery,
    DeliveryProof,
    EpochError,
    ReadingProof,
    close_epoch,
    deliveries_of,
    epoch_record,
    epoch_records,
    open_epochs,
    prove_delivery,
    prove_reading,
    record_anchor,
    verify_delivery_proof,
    verify_reading_proof,
)
from drakewell.metering.ingest import MeterStore
from drakewell.metering.readings import DELIVERY_LEAF_TYPES, READING_LEAF_TYPES, MeterDomain
from drakewell.metering.signing import NodeKey


@pytest.fixture
def filled(store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey) -> list[Any]:
    leases = [0, 5, 5, 9, 0, 5, 2**90]
    signed = [
        gpu_key.sign(make_reading(seq=i + 1, lease_id=lid, gpu_seconds=600 + i, energy_wh=100 + i), domain)
        for i, lid in enumerate(leases)
    ]
    assert store.ingest(signed).accepted == len(signed)
    return signed


def test_close_epoch_roots_equal_reference_trees(store: MeterStore, filled: list[Any]) -> None:
    record = close_epoch(store, GPU_ASSET, EPOCH)
    readings = [s.reading for s in filled]
    assert record.readings_root == MerkleTree.of(READING_LEAF_TYPES, [r.values() for r in readings]).root
    sums = {5: (600 + 1 + 600 + 2 + 600 + 5, 100 + 1 + 100 + 2 + 100 + 5), 9: (603, 103), 2**90: (606, 106)}
    rows = [(lid, GPU_ASSET, EPOCH, g, e) for lid, (g, e) in sorted(sums.items())]
    assert record.deliveries_root == MerkleTree.of(DELIVERY_LEAF_TYPES, rows).root
    assert (record.n_readings, record.n_leases) == (7, 3)
    assert record.energy_wh == sum(r.energy_wh for r in readings)
    assert record.gpu_seconds == sum(r.gpu_seconds for r in readings)
    assert record.anchor_args() == (
        GPU_ASSET,
        EPOCH,
        record.readings_root,
        record.deliveries_root,
        7,
        record.energy_wh,
        record.gpu_seconds,
    )
    assert [d.values() for d in deliveries_of(store, GPU_ASSET, EPOCH)] == rows
    assert close_epoch(store, GPU_ASSET, EPOCH) == record  # closing twice returns the record
    assert epoch_records(store) == [record]
    assert open_epochs(store) == []


def test_reading_proofs_verify_and_bind_every_field(
    store: MeterStore, domain: MeterDomain, filled: list[Any]
) -> None:
    record = close_epoch(store, GPU_ASSET, EPOCH)
    for signed in filled:
        proof = prove_reading(store, signed.reading.node, signed.reading.seq)
        assert proof.root == record.readings_root
        assert verify_reading_proof(proof, record.readings_root, domain=domain)
        assert verify_reading_proof(ReadingProof.from_json(proof.to_json()))
    proof = prove_reading(store, filled[2].reading.node, filled[2].reading.seq)
    forged = ReadingProof(
        type(proof.reading)(
            **{**{k: getattr(proof.reading, k) for k in proof.reading.__slots__}, "energy_wh": 1}
        ),
        proof.signature,
        proof.proof,
        proof.root,
    )
    assert not verify_reading_proof(forged)
    assert not verify_reading_proof(proof, ZERO_ROOT)
    other_domain = MeterDomain(1, domain.verifying_contract)
    assert not verify_reading_proof(proof, domain=other_domain)  # in the tree, but not signed for that chain


def test_delivery_proofs(store: MeterStore, filled: list[Any]) -> None:
    record = close_epoch(store, GPU_ASSET, EPOCH)
    proof = prove_delivery(store, GPU_ASSET, EPOCH, 5)
    assert proof.delivery == Delivery(5, GPU_ASSET, EPOCH, 1_808, 308)
    assert proof.delivery.leaf() == leaf_hash(DELIVERY_LEAF_TYPES, proof.delivery.values())
    assert verify_delivery_proof(proof, record.deliveries_root)
    assert verify_delivery_proof(DeliveryProof.from_json(proof.to_json()))
    inflated = DeliveryProof(Delivery(5, GPU_ASSET, EPOCH, 1_809, 308), proof.proof, proof.root)
    assert not verify_delivery_proof(inflated)
    with pytest.raises(EpochError, match="lease 77 has no readings"):
        prove_delivery(store, GPU_ASSET, EPOCH, 77)


def test_epoch_without_leases_has_zero_deliveries_root(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey
) -> None:
    store.ingest([gpu_key.sign(make_reading(seq=1), domain)])
    record = close_epoch(store, GPU_ASSET, EPOCH)
    assert record.deliveries_root == ZERO_ROOT and record.n_leases == 0
    assert record.readings_root == make_reading(seq=1).leaf()  # one leaf: the root is the leaf


def test_proofs_need_a_closed_epoch_and_a_stored_reading(store: MeterStore, filled: list[Any]) -> None:
    node = filled[0].reading.node
    with pytest.raises(EpochError, match="not closed"):
        prove_reading(store, node, 1)
    with pytest.raises(EpochError, match="not closed"):
        prove_delivery(store, GPU_ASSET, EPOCH, 5)
    close_epoch(store, GPU_ASSET, EPOCH)
    with pytest.raises(EpochError, match="no stored reading"):
        prove_reading(store, node, 99)
    with pytest.raises(EpochError, match="has no readings"):
        close_epoch(store, GPU_ASSET, EPOCH + 1)
    assert epoch_record(store, GPU_ASSET, EPOCH + 1) is None


def test_changed_database_is_detected_instead_of_proven(store: MeterStore, filled: list[Any]) -> None:
    close_epoch(store, GPU_ASSET, EPOCH)
    from drakewell.metering import epochs

    epochs._TREE_CACHE.clear()
    with store.engine.begin() as conn:
        conn.execute(tables.readings.update().where(tables.readings.c.seq == 3).values(energy_wh=1))
    with pytest.raises(EpochError, match="no longer hash to the recorded root"):
        prove_reading(store, filled[0].reading.node, 1)


def test_anchor_transaction_is_recorded(store: MeterStore, filled: list[Any]) -> None:
    close_epoch(store, GPU_ASSET, EPOCH)
    record_anchor(store, GPU_ASSET, EPOCH, "0x" + "ee" * 32)
    record = epoch_record(store, GPU_ASSET, EPOCH)
    assert record is not None and record.anchor_tx == "0x" + "ee" * 32


def test_bad_proof_json_is_named() -> None:
    with pytest.raises(EpochError, match="bad reading proof"):
        ReadingProof.from_json({"reading": {}})
    with pytest.raises(EpochError, match="bad delivery"):
        DeliveryProof.from_json({"delivery": {"leaseId": 1}, "proof": [], "root": "0x00"})


def test_anchor_epoch_sends_the_agreed_arguments(store: MeterStore, filled: list[Any]) -> None:
    from drakewell.core.errors import ChainError
    from drakewell.metering.onchain import RecordingRegistry, anchor_epoch

    registry = RecordingRegistry()
    record = anchor_epoch(store, registry, GPU_ASSET, EPOCH)
    assert registry.anchored[(GPU_ASSET, EPOCH)] == record.anchor_args()[2:]
    assert record.anchor_tx == "0x" + "00" * 31 + "01"
    with pytest.raises(ChainError, match="already anchored"):
        anchor_epoch(store, registry, GPU_ASSET, EPOCH)
