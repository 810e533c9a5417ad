"""On chain (titanoboa): signatures recover with snekmate's ECDSA, proofs verify with its Merkle code.

``contracts/MeterProbe.vy`` performs the checks MeterRegistry and LeaseEscrow make, so this pins
the off-chain encoding (EIP-712 digest, OpenZeppelin leaves) to what the EVM computes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boa
import pytest
from metering_helpers import DAY, EPOCH, GPU_ASSET

from drakewell.metering.epochs import close_epoch, prove_delivery, prove_reading
from drakewell.metering.ingest import LeaseTerms, MeterStore, NodeSpec
from drakewell.metering.readings import MeterDomain
from drakewell.metering.signing import NodeKey
from drakewell.store import sqlite_url

PROBE = Path(__file__).resolve().parent / "contracts" / "MeterProbe.vy"


@pytest.fixture(scope="module")
def probe() -> Any:
    return boa.load(str(PROBE))


@pytest.fixture
def chain_store(tmp_path: Path, probe: Any, gpu_key: NodeKey) -> MeterStore:
    domain = MeterDomain(probe.chain_id(), str(probe.address))
    store = MeterStore(sqlite_url(tmp_path / "chain.sqlite"), domain)
    store.register_nodes([NodeSpec(gpu_key.address, GPU_ASSET, "gpu", gpus=8, gpu_w=1_000.0)])
    store.register_leases(LeaseTerms(lid, GPU_ASSET, 8, EPOCH * DAY, (EPOCH + 1) * DAY) for lid in (11, 22))
    return store


def test_domain_separator_equals_the_contracts(probe: Any) -> None:
    domain = MeterDomain(probe.chain_id(), str(probe.address))
    assert probe.domain_separator() == domain.separator


def test_signatures_recover_on_chain(
    probe: Any, chain_store: MeterStore, make_reading: Any, gpu_key: NodeKey
) -> None:
    reading = make_reading(lease_id=2**130 + 1)
    signed = gpu_key.sign(reading, chain_store.domain)
    assert probe.signer(reading.values(), signed.signature).lower() == gpu_key.address
    other = gpu_key.sign(reading, MeterDomain(probe.chain_id() + 1, str(probe.address)))
    assert probe.signer(reading.values(), other.signature).lower() != gpu_key.address


def test_reading_and_delivery_proofs_verify_on_chain(
    probe: Any, chain_store: MeterStore, make_reading: Any, gpu_key: NodeKey
) -> None:
    signed = [
        gpu_key.sign(make_reading(seq=s, lease_id=(s % 3) * 11, gpu_seconds=300 + s), chain_store.domain)
        for s in range(1, 10)
    ]
    assert chain_store.ingest(signed).accepted == 9
    record = close_epoch(chain_store, GPU_ASSET, EPOCH)
    for s in signed:
        proof = prove_reading(chain_store, s.reading.node, s.reading.seq)
        assert probe.verify_reading(record.readings_root, list(proof.proof), s.reading.values())
        assert probe.signer(s.reading.values(), s.signature).lower() == gpu_key.address
    proof = prove_reading(chain_store, gpu_key.address, 4)
    tampered = list(proof.reading.values())
    tampered[6] += 1  # energyWh
    assert not probe.verify_reading(record.readings_root, list(proof.proof), tuple(tampered))
    for lease in (11, 22):
        d = prove_delivery(chain_store, GPU_ASSET, EPOCH, lease)
        assert probe.verify_delivery(record.deliveries_root, list(d.proof), *d.delivery.values())
        inflated = list(d.delivery.values())
        inflated[3] += 1  # gpuSeconds
        assert not probe.verify_delivery(record.deliveries_root, list(d.proof), *inflated)
