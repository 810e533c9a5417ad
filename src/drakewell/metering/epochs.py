"""Epochs: close an epoch into two Merkle trees, and prove one reading or one lease's delivery.

An epoch of an asset is ``floor(windowStart / epoch_seconds)`` (one day by default). Closing it
builds, in OpenZeppelin's ``StandardMerkleTree`` convention (:mod:`drakewell.core.merkle`):

- the **readings tree**: one leaf per stored reading, leaf types :data:`READING_LEAF_TYPES`
  (the reading's fields in struct order);
- the **deliveries tree**: one leaf per lease (``leaseId != 0``) with readings in the epoch,
  ``(leaseId, asset, epoch, min(Σ gpuSeconds, gpus · |epoch ∩ lease window|), Σ energyWh)``, leaf
  types :data:`DELIVERY_LEAF_TYPES`. The cap uses the lease's registered terms
  (:meth:`MeterStore.register_leases`): however many nodes report against a lease, it is paid for
  no more GPU-seconds than it leased in that epoch. An epoch with no leased readings has
  deliveries root ``bytes32(0)``.

The roots and totals ``(n_readings, energy_wh, gpu_seconds)`` are what
``MeterRegistry.anchor(asset, epoch, readings_root, deliveries_root, n_readings, energy_wh,
gpu_seconds)`` takes (:class:`AnchorArgs`, from :meth:`EpochRecord.anchor_args`). Once closed, an
epoch accepts no more readings (ingest answers ``epoch_closed``). An epoch may close only
``close_grace_s`` (the store's, 15 minutes by default) after it ends, so a late but honest reading
still gets in; closing holds the store's write lock, so the root covers exactly the rows stored
before it. Proofs rebuild the tree from the stored readings and check its root against the
recorded one, so a changed database is detected instead of yielding a proof that fails on chain.

Closing also records the epoch's capacity root (:mod:`drakewell.metering.capacity`: what each
node was shown to deliver by GPU challenges and verified mining shares; ``bytes32(0)`` when none
was checked). It travels with the record (``capacityRoot``), and
:func:`drakewell.metering.onchain.anchor_epoch` anchors it with ``MeterRegistry.anchor_capacity``
when it is not ``bytes32(0)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import select, update

from drakewell.core.errors import MeteringError
from drakewell.core.fields import Fields, as_bytes, as_float, as_int, hex_bytes, hex_list, json_object
from drakewell.core.jsontypes import JsonMapping, JsonObject
from drakewell.core.merkle import MerkleTree, keccak256, leaf_hashes_static, verify_proof
from drakewell.metering import tables
from drakewell.metering.capacity import capacity_root, close_capacity
from drakewell.metering.fields import path_json
from drakewell.metering.ingest import LeaseTerms, MeterStore, signed_from_row
from drakewell.metering.readings import (
    DELIVERY_LEAF_TYPES,
    READING_FIELDS,
    READING_LEAF_TYPES,
    MalformedReadingError,
    MeterDomain,
    Reading,
    normalize_address,
)
from drakewell.metering.signing import FastVerifier

ZERO_ROOT = bytes(32)


class EpochError(MeteringError):
    """An epoch cannot be closed, or a proof cannot be built for it."""


@dataclass(frozen=True)
class Delivery:
    """What the nodes delivered against one lease in one epoch (a deliveries-tree leaf)."""

    lease_id: int
    asset: bytes
    epoch: int
    gpu_seconds: int
    energy_wh: int

    def values(self) -> tuple[int, bytes, int, int, int]:
        return (self.lease_id, self.asset, self.epoch, self.gpu_seconds, self.energy_wh)

    def leaf(self) -> bytes:
        return keccak256(keccak256(b"".join(_word(v) for v in self.values())))

    def to_json(self) -> JsonObject:
        return {
            "leaseId": self.lease_id,
            "asset": "0x" + self.asset.hex(),
            "epoch": self.epoch,
            "gpuSeconds": self.gpu_seconds,
            "energyWh": self.energy_wh,
        }

    @classmethod
    def from_json(cls, obj: JsonMapping) -> Delivery:
        try:
            return cls(
                lease_id=as_int(obj["leaseId"]),
                asset=hex_bytes(obj["asset"]),
                epoch=as_int(obj["epoch"]),
                gpu_seconds=as_int(obj["gpuSeconds"]),
                energy_wh=as_int(obj["energyWh"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EpochError(
                f"bad delivery {dict(obj)!r}: {exc}",
                hint="a delivery has leaseId, asset, epoch, gpuSeconds and energyWh",
            ) from None


def _word(v: bytes | int) -> bytes:
    return v if isinstance(v, bytes) else int(v).to_bytes(32, "big")


class AnchorArgs(NamedTuple):
    """What ``MeterRegistry.anchor`` takes, in its order (one closed epoch's roots and totals)."""

    asset: bytes
    epoch: int
    readings_root: bytes
    deliveries_root: bytes
    n_readings: int
    energy_wh: int
    gpu_seconds: int


@dataclass(frozen=True)
class EpochRecord:
    """A closed epoch: roots and totals (the arguments of ``MeterRegistry.anchor``)."""

    asset: bytes
    epoch: int
    epoch_seconds: int
    readings_root: bytes
    deliveries_root: bytes
    n_readings: int
    n_leases: int
    energy_wh: int
    gpu_seconds: int
    hashes_th: int
    tokens: int
    closed_at: float
    anchor_tx: str | None = None
    capacity_root: bytes = ZERO_ROOT  # drakewell.metering.capacity; MeterRegistry.anchor_capacity

    def anchor_args(self) -> AnchorArgs:
        """``(asset, epoch, readings_root, deliveries_root, n_readings, energy_wh, gpu_seconds)``."""
        return AnchorArgs(
            self.asset,
            self.epoch,
            self.readings_root,
            self.deliveries_root,
            self.n_readings,
            self.energy_wh,
            self.gpu_seconds,
        )

    def to_json(self) -> JsonObject:
        return {
            "asset": "0x" + self.asset.hex(),
            "epoch": self.epoch,
            "epochSeconds": self.epoch_seconds,
            "readingsRoot": "0x" + self.readings_root.hex(),
            "deliveriesRoot": "0x" + self.deliveries_root.hex(),
            "nReadings": self.n_readings,
            "nLeases": self.n_leases,
            "energyWh": self.energy_wh,
            "gpuSeconds": self.gpu_seconds,
            "hashesTh": self.hashes_th,
            "tokens": self.tokens,
            "closedAt": self.closed_at,
            "anchorTx": self.anchor_tx,
            "capacityRoot": "0x" + self.capacity_root.hex(),
        }

    def to_row(self) -> dict[str, object]:
        """The ``meter_epochs`` row: every field but the capacity root (the capacity tables keep it)."""
        row: dict[str, object] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "capacity_root"
        }
        row["asset"] = "0x" + self.asset.hex()
        return row

    @classmethod
    def from_row(cls, row: Fields) -> EpochRecord:
        """A ``meter_epochs`` row (its capacity root is kept in the capacity tables)."""
        anchor_tx = row["anchor_tx"]
        return cls(
            asset=hex_bytes(row["asset"]),
            epoch=as_int(row["epoch"]),
            epoch_seconds=as_int(row["epoch_seconds"]),
            readings_root=as_bytes(row["readings_root"]),
            deliveries_root=as_bytes(row["deliveries_root"]),
            n_readings=as_int(row["n_readings"]),
            n_leases=as_int(row["n_leases"]),
            energy_wh=as_int(row["energy_wh"]),
            gpu_seconds=as_int(row["gpu_seconds"]),
            hashes_th=as_int(row["hashes_th"]),
            tokens=as_int(row["tokens"]),
            closed_at=as_float(row["closed_at"]),
            anchor_tx=None if anchor_tx is None else str(anchor_tx),
        )


@dataclass(frozen=True)
class EpochTrees:
    """Both trees of one epoch and the frame they were built from."""

    readings_tree: MerkleTree
    deliveries_tree: MerkleTree | None  # None when no reading carries a lease
    readings: pd.DataFrame  # stored rows, ordered by node and seq (row i <-> leaf i)
    deliveries: tuple[Delivery, ...]  # ordered by lease id (delivery i <-> leaf i)

    @property
    def readings_root(self) -> bytes:
        return self.readings_tree.root

    @property
    def deliveries_root(self) -> bytes:
        return self.deliveries_tree.root if self.deliveries_tree is not None else ZERO_ROOT


def reading_columns(frame: pd.DataFrame) -> list[Sequence[str | bytes | int] | npt.NDArray[np.uint64]]:
    """The readings-tree leaf columns of a ``meter_readings`` frame, in struct order."""
    asset = [bytes.fromhex(a[2:]) for a in frame["asset"]]
    ints = [frame[c].to_numpy(dtype=np.uint64) for _, _, c in READING_FIELDS[2:-1]]  # epoch … tokens
    lease = [int(x) for x in frame["lease_id"]]  # uint256, kept as decimal text
    return [list(frame["node"]), asset, *ints, lease]


def summarize_deliveries(
    frame: pd.DataFrame,
    asset: bytes,
    epoch: int,
    leases: Mapping[int, LeaseTerms],
    epoch_seconds: int,
) -> tuple[Delivery, ...]:
    """One delivery per lease id (non-zero) in the frame, ordered by lease id, its GPU-seconds
    capped at ``gpus · |epoch ∩ lease window|``."""
    leased = frame[frame["lease_id"] != "0"]
    if leased.empty:
        return ()
    sums: dict[int, list[int]] = {}
    for lease, gpu_s, energy in zip(
        leased["lease_id"], leased["gpu_seconds"], leased["energy_wh"], strict=True
    ):
        acc = sums.setdefault(int(lease), [0, 0])
        acc[0] += int(gpu_s)
        acc[1] += int(energy)
    start = int(epoch) * epoch_seconds
    out = []
    for lid, (gpu_s, energy) in sorted(sums.items()):
        terms = leases.get(lid)
        if terms is None or terms.asset != asset:
            raise EpochError(
                f"lease {lid} has readings in epoch {epoch} but is not registered for asset 0x{asset.hex()}",
                hint="register the lease (MeterStore.register_leases) so its delivery can be capped",
            )
        out.append(
            Delivery(
                lid, asset, epoch, min(gpu_s, terms.max_gpu_seconds(start, start + epoch_seconds)), energy
            )
        )
    return tuple(out)


def build_epoch_trees(
    frame: pd.DataFrame,
    asset: bytes,
    epoch: int,
    leases: Mapping[int, LeaseTerms],
    epoch_seconds: int,
) -> EpochTrees:
    """Both Merkle trees over an epoch's stored readings (a ``meter_readings`` frame)."""
    if frame.empty:
        raise EpochError(
            f"epoch {epoch} of asset 0x{asset.hex()} has no readings",
            hint="ingest readings for it first, or pick an epoch that has some",
        )
    readings_tree = MerkleTree.from_leaf_hashes(
        leaf_hashes_static(READING_LEAF_TYPES, reading_columns(frame))
    )
    deliveries = summarize_deliveries(frame, asset, epoch, leases, epoch_seconds)
    deliveries_tree = (
        MerkleTree.from_leaf_hashes(
            leaf_hashes_static(
                DELIVERY_LEAF_TYPES,
                [list(col) for col in zip(*(d.values() for d in deliveries), strict=True)],
            )
        )
        if deliveries
        else None
    )
    return EpochTrees(readings_tree, deliveries_tree, frame.reset_index(drop=True), deliveries)


def close_epoch(store: MeterStore, asset: bytes, epoch: int, *, now_s: float | None = None) -> EpochRecord:
    """Build the epoch's trees and record roots and totals; closing twice returns the record.

    ``now_s`` (Unix seconds) is the caller's clock: with it, an epoch closes only once
    ``now_s >= (epoch + 1) · epoch_seconds + store.close_grace_s``. Servers always pass it; a
    replay of past epochs (the demo, a backfill) may leave it out.
    """
    with store.writing():
        return _close_locked(store, asset, epoch, now_s)


def _close_locked(store: MeterStore, asset: bytes, epoch: int, now_s: float | None) -> EpochRecord:
    existing = epoch_record(store, asset, epoch)
    if existing is not None:
        return existing
    if now_s is not None:
        opens = (int(epoch) + 1) * store.epoch_seconds + store.close_grace_s
        if now_s < opens:
            raise EpochError(
                f"epoch {epoch} cannot close before {opens} (its end plus {store.close_grace_s} s of grace "
                f"for late readings); it is {int(now_s)} now",
                hint=f"close it in {math.ceil(opens - now_s)} s",
            )
    frame = store.readings_frame(asset, epoch)
    trees = build_epoch_trees(frame, asset, epoch, store.leases, store.epoch_seconds)
    record = EpochRecord(
        asset=asset,
        epoch=int(epoch),
        epoch_seconds=store.epoch_seconds,
        readings_root=trees.readings_root,
        deliveries_root=trees.deliveries_root,
        n_readings=len(frame),
        n_leases=len(trees.deliveries),
        energy_wh=int(sum(int(v) for v in frame["energy_wh"])),
        gpu_seconds=int(sum(int(v) for v in frame["gpu_seconds"])),
        hashes_th=int(sum(int(v) for v in frame["hashes_th"])),
        tokens=int(sum(int(v) for v in frame["tokens"])),
        closed_at=time.time(),
        capacity_root=close_capacity(store.engine, asset, int(epoch)),
    )
    with store.engine.begin() as conn:
        conn.execute(tables.epochs.insert(), record.to_row())
    _TREE_CACHE[(store_key(store), asset, int(epoch))] = trees
    return record


def _with_capacity(store: MeterStore, record: EpochRecord) -> EpochRecord:
    root = capacity_root(store.engine, record.asset, record.epoch)
    return record if root is None else replace(record, capacity_root=root)


def epoch_record(store: MeterStore, asset: bytes, epoch: int) -> EpochRecord | None:
    e = tables.epochs.c
    with store.engine.connect() as conn:
        row = (
            conn.execute(select(tables.epochs).where(e.asset == "0x" + asset.hex(), e.epoch == int(epoch)))
            .mappings()
            .first()
        )
    return _with_capacity(store, EpochRecord.from_row(row)) if row is not None else None


def epoch_records(store: MeterStore, asset: bytes | None = None) -> list[EpochRecord]:
    e = tables.epochs.c
    q = select(tables.epochs).order_by(e.asset, e.epoch)
    if asset is not None:
        q = q.where(e.asset == "0x" + asset.hex())
    with store.engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return [_with_capacity(store, EpochRecord.from_row(r)) for r in rows]


def open_epochs(store: MeterStore) -> list[tuple[bytes, int]]:
    """``(asset, epoch)`` pairs that have readings but are not closed yet."""
    r, e = tables.readings.c, tables.epochs.c
    q = (
        select(r.asset, r.epoch)
        .distinct()
        .where(~select(e.epoch).where(e.asset == r.asset, e.epoch == r.epoch).exists())
        .order_by(r.asset, r.epoch)
    )
    with store.engine.connect() as conn:
        return [(bytes.fromhex(a[2:]), int(ep)) for a, ep in conn.execute(q).all()]


def record_anchor(store: MeterStore, asset: bytes, epoch: int, tx_hash: str) -> None:
    """Remember the transaction that anchored an epoch's roots."""
    e = tables.epochs.c
    with store.engine.begin() as conn:
        conn.execute(
            update(tables.epochs)
            .where(e.asset == "0x" + asset.hex(), e.epoch == int(epoch))
            .values(anchor_tx=tx_hash)
        )


# -- proofs ----------------------------------------------------------------------------------------

_TREE_CACHE: dict[tuple[str, bytes, int], EpochTrees] = {}
_TREE_CACHE_MAX = 8


def store_key(store: MeterStore) -> str:
    return str(store.engine.url)


def _trees(store: MeterStore, record: EpochRecord) -> EpochTrees:
    key = (store_key(store), record.asset, record.epoch)
    trees = _TREE_CACHE.get(key)
    if trees is None:
        trees = build_epoch_trees(
            store.readings_frame(record.asset, record.epoch),
            record.asset,
            record.epoch,
            store.leases,
            record.epoch_seconds,
        )
        if len(_TREE_CACHE) >= _TREE_CACHE_MAX:
            _TREE_CACHE.pop(next(iter(_TREE_CACHE)))
        _TREE_CACHE[key] = trees
    if trees.readings_root != record.readings_root or trees.deliveries_root != record.deliveries_root:
        _TREE_CACHE.pop(key, None)
        raise EpochError(
            f"stored readings of epoch {record.epoch} no longer hash to the recorded root",
            hint="the database was changed after the epoch closed; restore it from a backup",
        )
    return trees


def _closed_record(store: MeterStore, asset: bytes, epoch: int) -> EpochRecord:
    record = epoch_record(store, asset, epoch)
    if record is None:
        raise EpochError(
            f"epoch {epoch} of asset 0x{asset.hex()} is not closed",
            hint="close it first (drakewell meter close-epoch)",
        )
    return record


@dataclass(frozen=True)
class ReadingProof:
    """A reading, its signature, and its path to the epoch's readings root."""

    reading: Reading
    signature: bytes
    proof: tuple[bytes, ...]
    root: bytes

    def to_json(self) -> JsonObject:
        return {
            "kind": "reading",
            "reading": self.reading.to_json(),
            "signature": "0x" + self.signature.hex(),
            **path_json(self.reading.leaf(), self.proof, self.root),
        }

    @classmethod
    def from_json(cls, obj: JsonMapping) -> ReadingProof:
        try:
            return cls(
                reading=Reading.from_json(obj["reading"]),
                signature=hex_bytes(obj["signature"]),
                proof=hex_list(obj["proof"]),
                root=hex_bytes(obj["root"]),
            )
        except (KeyError, TypeError, ValueError, MalformedReadingError) as exc:
            raise EpochError(
                f"bad reading proof: {exc}", hint="pass the JSON that 'meter prove' wrote"
            ) from None


@dataclass(frozen=True)
class DeliveryProof:
    """A lease's delivery in one epoch and its path to the epoch's deliveries root."""

    delivery: Delivery
    proof: tuple[bytes, ...]
    root: bytes

    def to_json(self) -> JsonObject:
        return {
            "kind": "delivery",
            "delivery": self.delivery.to_json(),
            **path_json(self.delivery.leaf(), self.proof, self.root),
        }

    @classmethod
    def from_json(cls, obj: JsonMapping) -> DeliveryProof:
        try:
            return cls(
                delivery=Delivery.from_json(json_object(obj["delivery"])),
                proof=hex_list(obj["proof"]),
                root=hex_bytes(obj["root"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EpochError(
                f"bad delivery proof: {exc}", hint="pass the JSON that 'meter prove' wrote"
            ) from None


def prove_reading(store: MeterStore, node: str, seq: int) -> ReadingProof:
    """Proof that reading ``(node, seq)`` is in its (closed) epoch's readings tree."""
    node = normalize_address(node)
    c = tables.readings.c
    with store.engine.connect() as conn:
        row = (
            conn.execute(select(tables.readings).where(c.node == node, c.seq == int(seq))).mappings().first()
        )
    if row is None:
        raise EpochError(f"no stored reading ({node}, seq {seq})", hint="check the node address and sequence")
    signed = signed_from_row(row)
    record = _closed_record(store, signed.reading.asset, signed.reading.epoch)
    trees = _trees(store, record)
    proof = trees.readings_tree.proof(signed.reading.leaf())
    return ReadingProof(signed.reading, signed.signature, tuple(proof), record.readings_root)


def prove_delivery(store: MeterStore, asset: bytes, epoch: int, lease_id: int) -> DeliveryProof:
    """Proof of a lease's delivery summary in a (closed) epoch's deliveries tree."""
    record = _closed_record(store, asset, epoch)
    trees = _trees(store, record)
    for d in trees.deliveries:
        if d.lease_id == int(lease_id):
            assert trees.deliveries_tree is not None
            return DeliveryProof(d, tuple(trees.deliveries_tree.proof(d.leaf())), record.deliveries_root)
    raise EpochError(
        f"lease {lease_id} has no readings in epoch {epoch} of asset 0x{asset.hex()}",
        hint="list the epoch's leases with the deliveries of its record",
    )


def verify_reading_proof(
    proof: ReadingProof,
    root: bytes | None = None,
    *,
    domain: MeterDomain | None = None,
) -> bool:
    """Off-chain check: the reading's leaf (recomputed from its fields) is under ``root``.

    ``root`` defaults to the one in the proof (pass the anchored root to check against the chain's
    record). With ``domain``, the signature must also recover to the reading's node.
    """
    target = proof.root if root is None else root
    if not verify_proof(target, proof.reading.leaf(), proof.proof):
        return False
    if domain is not None:
        return FastVerifier().is_signed_by(proof.reading.node, domain.digest(proof.reading), proof.signature)
    return True


def verify_delivery_proof(proof: DeliveryProof, root: bytes | None = None) -> bool:
    target = proof.root if root is None else root
    return verify_proof(target, proof.delivery.leaf(), proof.proof)


def deliveries_of(store: MeterStore, asset: bytes, epoch: int) -> Sequence[Delivery]:
    """The per-lease delivery summaries of an epoch (closed or not) from the stored readings."""
    return summarize_deliveries(
        store.readings_frame(asset, epoch), asset, int(epoch), store.leases, store.epoch_seconds
    )
