"""The seam between metering and the chain: anchoring epoch roots in ``MeterRegistry`` and asking
it to verify proofs.

Metering needs one call of the registry, agreed in docs/ARCHITECTURE.md::

    MeterRegistry.anchor(asset, epoch, readings_root, deliveries_root, n_readings, energy_wh, gpu_seconds)

and, when the epoch has proofs of capacity, a second one::

    MeterRegistry.anchor_capacity(asset, epoch, capacity_root)

:class:`MeterRegistryLike` is the first method, called with an epoch's
:class:`~drakewell.metering.epochs.AnchorArgs` spread in that order; any client with it (the chain
package's typed client, a titanoboa contract, or the in-memory :class:`RecordingRegistry`) can
anchor, and a client that also has ``anchor_capacity`` (:class:`CapacityRegistryLike`) anchors the
capacity root too. :func:`anchor_epoch` closes the epoch if needed, sends its roots and totals, then its
capacity root when it is not ``bytes32(0)``, and remembers the transaction hash of the first call
when the client returns one. :func:`verify_reading_on_chain` and
:func:`verify_delivery_on_chain` hand a proof to ``MeterRegistry.verify_reading`` (anchored root,
snekmate Merkle proof, EIP-712 signature recovered to a registered signer) and
``verify_delivery``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, Unpack

from drakewell.core.errors import ChainError, DrakewellError
from drakewell.metering.epochs import (
    ZERO_ROOT,
    AnchorArgs,
    DeliveryProof,
    EpochRecord,
    ReadingProof,
    close_epoch,
    epoch_record,
    record_anchor,
)
from drakewell.metering.ingest import MeterStore, NodeSpec
from drakewell.metering.readings import AbiValue


class MeterRegistryLike(Protocol):
    @property
    def anchor(self) -> Callable[[Unpack[AnchorArgs]], object]:
        """``MeterRegistry.anchor`` called with an epoch's :class:`AnchorArgs`, spread (what it
        returns may carry the transaction hash)."""
        ...


class CapacityRegistryLike(MeterRegistryLike, Protocol):
    def anchor_capacity(self, asset: bytes, epoch: int, capacity_root: bytes) -> object: ...


@dataclass
class RecordingRegistry:
    """In-memory double of ``MeterRegistry.anchor`` and ``anchor_capacity``: keeps every anchored
    epoch's arguments and capacity root."""

    anchored: dict[tuple[bytes, int], tuple[bytes, bytes, int, int, int]] = field(default_factory=dict)
    capacity: dict[tuple[bytes, int], bytes] = field(default_factory=dict)

    def anchor(self, *args: *AnchorArgs) -> str:
        call = AnchorArgs(*args)
        key = (call.asset, call.epoch)
        if key in self.anchored:
            raise ChainError(f"epoch {call.epoch} is already anchored", hint="anchor each epoch once")
        self.anchored[key] = (
            call.readings_root,
            call.deliveries_root,
            call.n_readings,
            call.energy_wh,
            call.gpu_seconds,
        )
        return f"0x{len(self.anchored):064x}"  # a stand-in transaction hash

    def anchor_capacity(self, asset: bytes, epoch: int, capacity_root: bytes) -> None:
        key = (asset, epoch)
        if key not in self.anchored:
            raise ChainError(f"epoch {epoch} is not anchored", hint="anchor its roots first")
        if key in self.capacity:
            raise ChainError(f"epoch {epoch} already has a capacity root", hint="anchor it once")
        self.capacity[key] = capacity_root


def _tx_hash(result: object) -> str | None:
    """A transaction hash from what a client returned (hex text, bytes, or an object/dict carrying one)."""
    for candidate in (
        result,
        getattr(result, "tx_hash", None),
        getattr(result, "transactionHash", None),
        result.get("transactionHash") if isinstance(result, dict) else None,
    ):
        if isinstance(candidate, bytes | bytearray) and len(candidate) == 32:
            return "0x" + bytes(candidate).hex()
        if isinstance(candidate, str) and candidate.startswith("0x") and len(candidate) == 66:
            return candidate.lower()
        hexer = getattr(candidate, "hex", None)
        if callable(hexer) and not isinstance(candidate, str | bytes | bytearray):
            text = hexer()
            if isinstance(text, str) and len(text.removeprefix("0x")) == 64:
                return "0x" + text.removeprefix("0x")
    return None


def anchor_epoch(
    store: MeterStore, registry: MeterRegistryLike, asset: bytes, epoch: int, *, now_s: float | None = None
) -> EpochRecord:
    """Close (if needed) and anchor one epoch; returns the record with ``anchor_tx`` when known.

    ``now_s`` is passed to :func:`~drakewell.metering.epochs.close_epoch` (no close before the
    epoch's end plus the store's grace)."""
    record = close_epoch(store, asset, epoch, now_s=now_s)
    result = registry.anchor(*record.anchor_args())
    tx = _tx_hash(result)
    if tx is not None:
        record_anchor(store, asset, epoch, tx)
    anchor_capacity = getattr(registry, "anchor_capacity", None)
    if record.capacity_root != ZERO_ROOT and anchor_capacity is not None:
        try:
            anchor_capacity(asset, epoch, record.capacity_root)
        except DrakewellError as exc:
            raise ChainError(
                f"epoch {epoch} is anchored but its capacity root was not: {exc}",
                hint="send it again before the epoch is final: registry.anchor_capacity(asset, epoch, root)",
            ) from exc
    updated = epoch_record(store, asset, epoch)
    assert updated is not None
    return updated


class MeterVerifierLike(Protocol):
    """``MeterRegistry``'s proof checks as the chain package's ``MeterClient`` exposes them."""

    def verify_reading(
        self, reading: Sequence[AbiValue], signature: bytes, proof: Sequence[bytes]
    ) -> bool: ...

    @property
    def verify_delivery(self) -> Callable[[int, bytes, int, int, int, Sequence[bytes]], object]:
        """``verify_delivery(*Delivery.values(), proof)``: the deliveries leaf's values in their
        order (lease id, asset, epoch, GPU-seconds, energy), then the proof."""
        ...


def verify_reading_on_chain(meter: MeterVerifierLike, proof: ReadingProof) -> bool:
    """``MeterRegistry.verify_reading``: in the anchored tree and signed by a registered signer."""
    return bool(meter.verify_reading(proof.reading.values(), proof.signature, list(proof.proof)))


def verify_delivery_on_chain(meter: MeterVerifierLike, proof: DeliveryProof) -> bool:
    """``MeterRegistry.verify_delivery``: the lease's summary is in the anchored deliveries tree."""
    return bool(meter.verify_delivery(*proof.delivery.values(), list(proof.proof)))


class SignerRegistryLike(Protocol):
    def set_signer(self, asset: bytes, signer: str, status: bool = True) -> object: ...


def register_signers_on_chain(meter: SignerRegistryLike, nodes: Iterable[NodeSpec]) -> int:
    """``MeterRegistry.set_signer(asset, node, True)`` for each node; returns how many were set."""
    count = 0
    for node in nodes:
        meter.set_signer(node.asset, node.address, True)
        count += 1
    return count
