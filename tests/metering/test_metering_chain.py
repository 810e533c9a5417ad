"""Against the deployed MeterRegistry (``Chain.embedded()``): anchor an epoch, verify proofs on chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from metering_helpers import DAY, EPOCH

from drakewell.chain import AssetSpec, Chain
from drakewell.metering.epochs import close_epoch, prove_delivery, prove_reading
from drakewell.metering.ingest import LeaseTerms, MeterStore, NodeSpec
from drakewell.metering.onchain import (
    anchor_epoch,
    register_signers_on_chain,
    verify_delivery_on_chain,
    verify_reading_on_chain,
)
from drakewell.metering.readings import MeterDomain, Reading
from drakewell.metering.signing import NodeKey
from drakewell.store import sqlite_url


@pytest.fixture(scope="module")
def market() -> Any:
    chain = Chain.embedded()
    return chain, chain.deploy_market(AssetSpec(name="metering test pool"))


def _reading(key: NodeKey, asset: bytes, seq: int, lease: int) -> Reading:
    start = EPOCH * DAY + seq * 300
    return Reading(key.address, asset, EPOCH, seq, start, start + 300, 400 + seq, 1_200, 0, 10_000, lease)


def test_anchor_and_verify_on_the_meter_registry(tmp_path: Path, market: Any) -> None:
    chain, m = market
    asset = m.asset_id
    domain = MeterDomain(chain.chain_id, m.meter.address)
    signer, outsider = NodeKey((71).to_bytes(32, "big")), NodeKey((72).to_bytes(32, "big"))
    store = MeterStore(sqlite_url(tmp_path / "m.sqlite"), domain)
    store.register_nodes(
        [NodeSpec(k.address, asset, "gpu", gpus=8, gpu_w=1_000.0) for k in (signer, outsider)]
    )
    store.register_leases([LeaseTerms(1, asset, 8, EPOCH * DAY, (EPOCH + 1) * DAY)])  # readings name it
    assert (
        register_signers_on_chain(m.meter, [store.nodes[signer.address]]) == 1
    )  # the outsider: off chain only
    signed = [signer.sign(_reading(signer, asset, s, lease=s % 2), domain) for s in range(1, 8)]
    stray = outsider.sign(_reading(outsider, asset, 1, lease=0), domain)
    assert store.ingest([*signed, stray]).accepted == 8

    record = anchor_epoch(store, m.meter, asset, EPOCH)
    assert record == close_epoch(store, asset, EPOCH)
    on_chain = m.meter.call("epochs", asset, EPOCH)  # the embedded EVM has no transaction hashes
    assert tuple(on_chain)[:5] == record.anchor_args()[2:]

    for s in signed:
        assert verify_reading_on_chain(m.meter, prove_reading(store, s.reading.node, s.reading.seq))
    assert not verify_reading_on_chain(m.meter, prove_reading(store, outsider.address, 1))  # not a signer
    proof = prove_reading(store, signer.address, 3)
    forged = type(proof)(
        _reading(signer, asset, 3, lease=1).__class__(
            **{**{k: getattr(proof.reading, k) for k in proof.reading.__slots__}, "tokens": 10_001}
        ),
        proof.signature,
        proof.proof,
        proof.root,
    )
    assert not verify_reading_on_chain(m.meter, forged)

    delivery = prove_delivery(store, asset, EPOCH, 1)
    assert delivery.delivery.gpu_seconds == 4 * 1_200  # seq 1, 3, 5, 7
    assert verify_delivery_on_chain(m.meter, delivery)
    inflated = type(delivery)(
        type(delivery.delivery)(
            1, asset, EPOCH, delivery.delivery.gpu_seconds + 1, delivery.delivery.energy_wh
        ),
        delivery.proof,
        delivery.root,
    )
    assert not verify_delivery_on_chain(m.meter, inflated)


def test_the_capacity_root_is_anchored_with_the_epoch_and_proves(tmp_path: Path, market: Any) -> None:
    from drakewell.metering.capacity import prove_capacity, record_capacity

    chain, m = market
    asset, epoch = m.asset_id, EPOCH + 3  # an epoch of its own on the module's registry
    domain = MeterDomain(chain.chain_id, m.meter.address)
    key = NodeKey((73).to_bytes(32, "big"))
    store = MeterStore(sqlite_url(tmp_path / "m.sqlite"), domain)
    store.register_nodes([NodeSpec(key.address, asset, "gpu", gpus=8, gpu_w=1_000.0)])
    start = epoch * DAY
    reading = Reading(key.address, asset, epoch, 1, start, start + 300, 400, 1_200, 0, 10_000, 0)
    assert store.ingest([key.sign(reading, domain)]).accepted == 1
    for node, failed in ((key.address, 0), ("0x" + "ab" * 20, 1)):  # the second failed a GPU challenge
        record_capacity(
            store.engine,
            node=node,
            asset=asset,
            epoch=epoch,
            kind="gpu",
            verified_per_s=300 * 10**12,
            declared_per_s=1_979 * 10**12,
            passed=1 - failed,
            failed=failed,
        )

    record = anchor_epoch(store, m.meter, asset, epoch)
    assert record.capacity_root != bytes(32)
    assert m.meter.capacity_root(asset, epoch) == record.capacity_root  # sent with the epoch's roots
    evidence = prove_capacity(store.engine, asset, epoch, "0x" + "ab" * 20)
    assert evidence.leaf.flagged and m.meter.verify_capacity(evidence.leaf.values(), list(evidence.proof))
    forged = type(evidence.leaf)(**{**evidence.leaf.__dict__, "failed": 0})
    assert not m.meter.verify_capacity(forged.values(), list(evidence.proof))


def test_an_epoch_without_capacity_checks_anchors_no_capacity_root(tmp_path: Path) -> None:
    from drakewell.metering.onchain import RecordingRegistry

    domain = MeterDomain(1, "0x" + "11" * 20)
    key = NodeKey((74).to_bytes(32, "big"))
    asset = b"\x05" * 32
    store = MeterStore(sqlite_url(tmp_path / "m.sqlite"), domain)
    store.register_nodes([NodeSpec(key.address, asset, "gpu", gpus=8, gpu_w=1_000.0)])
    start = EPOCH * DAY
    reading = Reading(key.address, asset, EPOCH, 1, start, start + 300, 400, 1_200, 0, 10_000, 0)
    assert store.ingest([key.sign(reading, domain)]).accepted == 1
    registry = RecordingRegistry()
    anchor_epoch(store, registry, asset, EPOCH)
    assert (asset, EPOCH) in registry.anchored and registry.capacity == {}
