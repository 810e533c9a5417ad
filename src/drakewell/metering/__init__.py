"""Verifiable metering: signed readings, ingest, epoch Merkle trees, proofs, KPIs, a simulated fleet.

Nodes sign EIP-712 :class:`Reading` structs (:mod:`~drakewell.metering.readings`,
:mod:`~drakewell.metering.signing`); :class:`MeterStore` verifies, deduplicates and stores them
(:mod:`~drakewell.metering.ingest`); :func:`close_epoch` builds each epoch's readings and
deliveries trees whose roots go to ``MeterRegistry`` (:mod:`~drakewell.metering.epochs`);
:func:`prove_reading` / :func:`prove_delivery` prove one leaf; :mod:`~drakewell.metering.kpis`
turns readings into utilisation and efficiency frames; :func:`simulate_fleet` turns a dispatch
ledger into the readings a fleet would sign.

Typical use::

    from drakewell.metering import MeterDomain, MeterStore, close_epoch, simulate_fleet
    domain = MeterDomain(chain_id, meter_registry_address)
    fleet = simulate_fleet(ledger, FleetParams(...), domain)
    store = MeterStore("sqlite:///meter.sqlite", domain)
    store.register_nodes(fleet.nodes)
    store.register_leases(fleet.leases)         # LeaseTerms: what each reading's leaseId stands for
    store.ingest(fleet.readings)
    record = close_epoch(store, asset, epoch, now_s=now)   # record.anchor_args() -> MeterRegistry.anchor
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drakewell.core.lazy import lazy_exports

if TYPE_CHECKING:
    from drakewell.metering.epochs import (
        Delivery,
        DeliveryProof,
        EpochRecord,
        ReadingProof,
        close_epoch,
        epoch_record,
        prove_delivery,
        prove_reading,
        verify_delivery_proof,
        verify_reading_proof,
    )
    from drakewell.metering.fleet import FleetParams, NoiseModel, SimulatedFleet, simulate_fleet
    from drakewell.metering.ingest import IngestResult, LeaseTerms, MeterStore, NodeSpec, RejectReason
    from drakewell.metering.kpis import lease_kpis, node_kpis
    from drakewell.metering.onchain import (
        anchor_epoch,
        register_signers_on_chain,
        verify_delivery_on_chain,
        verify_reading_on_chain,
    )
    from drakewell.metering.readings import MeterDomain, Reading, SignedReading, asset_id, epoch_of
    from drakewell.metering.signing import FastVerifier, NodeKey

_EXPORTS = {
    "Delivery": "epochs",
    "DeliveryProof": "epochs",
    "EpochRecord": "epochs",
    "ReadingProof": "epochs",
    "close_epoch": "epochs",
    "epoch_record": "epochs",
    "prove_delivery": "epochs",
    "prove_reading": "epochs",
    "verify_delivery_proof": "epochs",
    "verify_reading_proof": "epochs",
    "FleetParams": "fleet",
    "NoiseModel": "fleet",
    "SimulatedFleet": "fleet",
    "simulate_fleet": "fleet",
    "IngestResult": "ingest",
    "LeaseTerms": "ingest",
    "MeterStore": "ingest",
    "NodeSpec": "ingest",
    "RejectReason": "ingest",
    "lease_kpis": "kpis",
    "node_kpis": "kpis",
    "anchor_epoch": "onchain",
    "register_signers_on_chain": "onchain",
    "verify_delivery_on_chain": "onchain",
    "verify_reading_on_chain": "onchain",
    "MeterDomain": "readings",
    "Reading": "readings",
    "SignedReading": "readings",
    "asset_id": "readings",
    "epoch_of": "readings",
    "FastVerifier": "signing",
    "NodeKey": "signing",
}
__all__ = [
    "Delivery",
    "DeliveryProof",
    "EpochRecord",
    "FastVerifier",
    "FleetParams",
    "IngestResult",
    "LeaseTerms",
    "MeterDomain",
    "MeterStore",
    "NodeKey",
    "NodeSpec",
    "NoiseModel",
    "Reading",
    "ReadingProof",
    "RejectReason",
    "SignedReading",
    "SimulatedFleet",
    "anchor_epoch",
    "asset_id",
    "close_epoch",
    "epoch_of",
    "epoch_record",
    "lease_kpis",
    "node_kpis",
    "prove_delivery",
    "prove_reading",
    "register_signers_on_chain",
    "simulate_fleet",
    "verify_delivery_on_chain",
    "verify_delivery_proof",
    "verify_reading_on_chain",
    "verify_reading_proof",
]


# Resolved on first use: importing the package loads none of its modules (pandas, SQLAlchemy, coincurve).
__getattr__ = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _EXPORTS.items()})
