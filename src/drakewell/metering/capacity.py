"""Capacity leaves: what each node was shown to deliver in an epoch, in a Merkle tree of its own.

One leaf per (node, asset, epoch), in OpenZeppelin's ``StandardMerkleTree`` convention
(:mod:`drakewell.core.merkle`), leaf types :data:`CAPACITY_LEAF_TYPES`:

``(address node, bytes32 asset, uint64 epoch, uint8 kind, uint256 verifiedPerSecond,
uint256 declaredPerSecond, uint32 passed, uint32 failed)``

- GPU nodes (``kind`` 0): ``verifiedPerSecond`` is the best lower bound on int8 operations per
  second shown by a passed challenge (:mod:`drakewell.proofs.gpu`; every such bound is a lower
  bound, so their maximum is one too); ``declaredPerSecond`` is the int8 throughput the operator
  declares for the node; ``passed``/``failed`` count challenges.
- ASIC nodes (``kind`` 1): ``verifiedPerSecond`` is the lower end of the hashrate interval from the
  shares the Stratum proxy verified (:mod:`drakewell.proofs.stratum`); ``declaredPerSecond`` is the
  hashrate the node's readings claim; ``passed`` counts accepted shares and ``failed`` invalid and
  duplicate ones (stale shares are not counted against a miner: a new block makes them honestly).

A node is **flagged** when a GPU challenge failed, or when more than
:data:`ASIC_FAILED_SHARE_ALLOWANCE` of a miner's checked shares failed (hardware errors make a few).

The capacity root is recorded when the epoch closes (:func:`close_capacity`, called by
``metering.epochs.close_epoch``) and travels with the epoch's record (``capacityRoot``); leaves are
refused for a closed epoch. ``metering.onchain.anchor_epoch`` anchors it beside the readings and
deliveries roots (``MeterRegistry.anchor_capacity``, operator only, before the epoch is final, once
per anchoring). A dispute uses it inside the escrow's challenge window: whoever holds the
``CHALLENGER_ROLE`` of ``MeterRegistry`` fetches the flagged node's capacity leaf and proof
(:func:`prove_capacity`, ``drakewell proofs prove-capacity``), checks it against the anchored
capacity root (``MeterRegistry.verify_capacity``, or :func:`verify_capacity_proof` off chain),
and, if the leaf shows a failed challenge for a node that delivered against a lease in that epoch,
calls ``MeterRegistry.void_epoch(asset, epoch, reason)`` with ``reason = keccak256(capacity
leaf)`` before the window ends; a voided epoch pays no lease until it is anchored again without
that node's delivery.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Integer,
    LargeBinary,
    RowMapping,
    String,
    Table,
    case,
    select,
)
from sqlalchemy.engine import Engine

from drakewell.core.errors import ProofError
from drakewell.core.fields import Fields, as_int, hex_bytes, hex_list, json_object
from drakewell.core.jsontypes import JsonMapping, JsonObject
from drakewell.core.merkle import MerkleTree, keccak256, leaf_hashes_static, verify_proof
from drakewell.metering.fields import path_json
from drakewell.metering.readings import asset_id, normalize_address
from drakewell.store import metadata

CAPACITY_LEAF_TYPES = ("address", "bytes32", "uint64", "uint8", "uint256", "uint256", "uint32", "uint32")
KIND_CODES = {"gpu": 0, "asic": 1}
ZERO_ROOT = bytes(32)
ASIC_FAILED_SHARE_ALLOWANCE = 0.01
MAX_PER_SECOND = 2**63 - 1

Kind = Literal["gpu", "asic"]
_KINDS: dict[str, Kind] = {"gpu": "gpu", "asic": "asic"}


def _per_epoch(name: str, *columns: Column[object]) -> Table:
    """A table keyed by ``(asset, epoch)`` (then by ``columns`` marked ``primary_key``)."""
    asset = Column("asset", String(66), primary_key=True)
    return Table(name, metadata, asset, Column("epoch", BigInteger, primary_key=True), *columns)


capacity_leaves = _per_epoch(
    "proof_capacity",
    Column("node", String(42), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("verified_per_s", BigInteger, nullable=False),
    Column("declared_per_s", BigInteger, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)

capacity_roots = _per_epoch(
    "proof_capacity_roots",
    Column("capacity_root", LargeBinary(32), nullable=False),
    Column("n_nodes", Integer, nullable=False),
    Column("closed_at", Float, nullable=False),
)

_WRITE_LOCK = threading.Lock()  # read-check-write of a leaf is one step for threads of a process


_READY: weakref.WeakSet[Engine] = weakref.WeakSet()


def ensure_tables(engine: Engine) -> None:
    """Create the capacity tables in a database opened before this module was imported (once)."""
    if engine not in _READY:
        metadata.create_all(engine, tables=[capacity_leaves, capacity_roots])
        _READY.add(engine)


@dataclass(frozen=True)
class CapacityLeaf:
    node: str
    asset: bytes
    epoch: int
    kind: Kind
    verified_per_s: int
    declared_per_s: int
    passed: int
    failed: int

    @property
    def flagged(self) -> bool:
        if self.kind == "gpu":
            return self.failed > 0
        checked = self.passed + self.failed
        return checked > 0 and self.failed > ASIC_FAILED_SHARE_ALLOWANCE * checked

    def values(self) -> tuple[str, bytes, int, int, int, int, int, int]:
        return (
            self.node,
            self.asset,
            self.epoch,
            KIND_CODES[self.kind],
            self.verified_per_s,
            self.declared_per_s,
            self.passed,
            self.failed,
        )

    def leaf(self) -> bytes:
        return leaf_hashes_static(CAPACITY_LEAF_TYPES, [[v] for v in self.values()])[0]

    def to_json(self) -> JsonObject:
        return {
            "node": self.node,
            "asset": "0x" + self.asset.hex(),
            "epoch": self.epoch,
            "kind": self.kind,
            "verifiedPerSecond": self.verified_per_s,
            "declaredPerSecond": self.declared_per_s,
            "passed": self.passed,
            "failed": self.failed,
            "flagged": self.flagged,
        }

    @classmethod
    def from_json(cls, value: object) -> CapacityLeaf:
        try:
            obj = json_object(value)
            return cls(
                normalize_address(obj["node"]),
                asset_id(str(obj["asset"])),
                as_int(obj["epoch"]),
                _kind(obj["kind"]),
                as_int(obj["verifiedPerSecond"]),
                as_int(obj["declaredPerSecond"]),
                as_int(obj["passed"]),
                as_int(obj["failed"]),
            )
        except (KeyError, TypeError, ValueError, ProofError) as exc:
            raise ProofError(
                f"bad capacity leaf: {exc}", hint="pass what 'proofs prove-capacity' wrote"
            ) from None

    @classmethod
    def from_row(cls, row: Fields) -> CapacityLeaf:
        return cls(
            str(row["node"]),
            hex_bytes(row["asset"]),
            as_int(row["epoch"]),
            _kind(row["kind"]),
            as_int(row["verified_per_s"]),
            as_int(row["declared_per_s"]),
            as_int(row["passed"]),
            as_int(row["failed"]),
        )


def _kind(value: object) -> Kind:
    kind = _KINDS.get(str(value))
    if kind is None:
        raise ValueError(f"kind {str(value)!r} is not gpu or asic")
    return kind


def _check_value(name: str, value: int) -> int:
    if not 0 <= int(value) <= MAX_PER_SECOND:
        raise ProofError(
            f"{name} = {value} is outside 0..2**63-1", hint="pass a rate per second, not negative"
        )
    return int(value)


def record_capacity(
    engine: Engine,
    *,
    node: str,
    asset: bytes,
    epoch: int,
    kind: Kind,
    verified_per_s: int,
    declared_per_s: int,
    passed: int = 0,
    failed: int = 0,
    now_s: float | None = None,
) -> CapacityLeaf:
    """Add checks to a node's leaf of an open epoch: counts add up, the verified rate keeps its
    maximum, the declared rate takes the latest value. Refused once the epoch is closed."""
    if kind not in KIND_CODES:
        raise ProofError(f"kind {kind!r} is not gpu or asic", hint="GPU nodes are 'gpu', miners 'asic'")
    if passed < 0 or failed < 0:
        raise ProofError(f"passed {passed}, failed {failed}: counts cannot be negative", hint="count checks")
    node = normalize_address(node)
    verified, declared = (
        _check_value("verified_per_s", verified_per_s),
        _check_value("declared_per_s", declared_per_s),
    )
    ensure_tables(engine)
    a_hex = "0x" + asset_id(asset).hex()
    c = capacity_leaves.c
    stamp = time.time() if now_s is None else float(now_s)
    with _WRITE_LOCK, engine.begin() as conn:
        if _root_row(conn, a_hex, int(epoch)) is not None:
            raise ProofError(
                f"epoch {epoch} of asset {a_hex} is closed; its capacity root is recorded",
                hint="record checks for the epoch in which they ran",
            )
        where = (c.asset == a_hex, c.epoch == int(epoch), c.node == node)
        row = conn.execute(select(capacity_leaves).where(*where)).mappings().first()
        if row is None:
            conn.execute(
                capacity_leaves.insert(),
                {
                    "asset": a_hex,
                    "epoch": int(epoch),
                    "node": node,
                    "kind": kind,
                    "verified_per_s": verified,
                    "declared_per_s": declared,
                    "passed": int(passed),
                    "failed": int(failed),
                    "updated_at": stamp,
                },
            )
        else:
            if row["kind"] != kind:
                raise ProofError(
                    f"node {node} is a {row['kind']} node in epoch {epoch}, not {kind}",
                    hint="record GPU challenges and shares under the node's own kind",
                )
            conn.execute(
                capacity_leaves.update()
                .where(*where)
                .values(
                    verified_per_s=case((c.verified_per_s < verified, verified), else_=c.verified_per_s),
                    declared_per_s=declared,
                    passed=c.passed + int(passed),
                    failed=c.failed + int(failed),
                    updated_at=stamp,
                )
            )
        out = conn.execute(select(capacity_leaves).where(*where)).mappings().one()
    return CapacityLeaf.from_row(out)


def _root_row(conn: Connection, a_hex: str, epoch: int) -> RowMapping | None:
    r = capacity_roots.c
    q = select(capacity_roots).where(r.asset == a_hex, r.epoch == epoch)
    return conn.execute(q).mappings().first()


def capacity_leaves_of(engine: Engine, asset: bytes, epoch: int) -> list[CapacityLeaf]:
    """The epoch's leaves, ordered by node address (leaf ``i`` of the tree is node ``i``)."""
    ensure_tables(engine)
    c = capacity_leaves.c
    q = select(capacity_leaves).where(c.asset == "0x" + asset.hex(), c.epoch == int(epoch)).order_by(c.node)
    with engine.connect() as conn:
        return [CapacityLeaf.from_row(r) for r in conn.execute(q).mappings().all()]


def build_capacity_tree(leaves: Sequence[CapacityLeaf]) -> MerkleTree | None:
    if not leaves:
        return None
    columns = [list(col) for col in zip(*(leaf.values() for leaf in leaves), strict=True)]
    return MerkleTree.from_leaf_hashes(leaf_hashes_static(CAPACITY_LEAF_TYPES, columns))


def close_capacity(engine: Engine, asset: bytes, epoch: int, *, now_s: float | None = None) -> bytes:
    """Record the epoch's capacity root (``bytes32(0)`` with no leaves); closing twice returns it."""
    ensure_tables(engine)
    a_hex = "0x" + asset.hex()
    with _WRITE_LOCK, engine.begin() as conn:
        existing = _root_row(conn, a_hex, int(epoch))
        if existing is not None:
            return bytes(existing["capacity_root"])
        c = capacity_leaves.c
        q = select(capacity_leaves).where(c.asset == a_hex, c.epoch == int(epoch)).order_by(c.node)
        leaves = [CapacityLeaf.from_row(r) for r in conn.execute(q).mappings().all()]
        tree = build_capacity_tree(leaves)
        root = tree.root if tree is not None else ZERO_ROOT
        conn.execute(
            capacity_roots.insert(),
            {
                "asset": a_hex,
                "epoch": int(epoch),
                "capacity_root": root,
                "n_nodes": len(leaves),
                "closed_at": time.time() if now_s is None else float(now_s),
            },
        )
    return root


def capacity_root(engine: Engine, asset: bytes, epoch: int) -> bytes | None:
    """The recorded capacity root of a closed epoch, or None while it is open."""
    ensure_tables(engine)
    with engine.connect() as conn:
        row = _root_row(conn, "0x" + asset.hex(), int(epoch))
    return bytes(row["capacity_root"]) if row is not None else None


@dataclass(frozen=True)
class CapacityProof:
    leaf: CapacityLeaf
    proof: tuple[bytes, ...]
    root: bytes

    def to_json(self) -> JsonObject:
        return {
            "kind": "capacity",
            "capacity": self.leaf.to_json(),
            **path_json(self.leaf.leaf(), self.proof, self.root),
            "disputeReason": "0x" + keccak256(self.leaf.leaf()).hex(),
        }

    @classmethod
    def from_json(cls, obj: JsonMapping) -> CapacityProof:
        try:
            return cls(
                CapacityLeaf.from_json(obj["capacity"]),
                hex_list(obj["proof"]),
                hex_bytes(obj["root"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProofError(
                f"bad capacity proof: {exc}", hint="pass what 'proofs prove-capacity' wrote"
            ) from None


def prove_capacity(engine: Engine, asset: bytes, epoch: int, node: str) -> CapacityProof:
    """A node's capacity leaf in a closed epoch and its path to the recorded capacity root."""
    root = capacity_root(engine, asset, epoch)
    if root is None:
        raise ProofError(f"epoch {epoch} is not closed", hint="close it first (drakewell meter close-epoch)")
    leaves = capacity_leaves_of(engine, asset, epoch)
    tree = build_capacity_tree(leaves)
    if tree is None or tree.root != root:
        raise ProofError(
            f"stored capacity leaves of epoch {epoch} do not hash to the recorded root",
            hint="the database was changed after the epoch closed; restore it from a backup",
        )
    node = normalize_address(node)
    for leaf in leaves:
        if leaf.node == node:
            return CapacityProof(leaf, tuple(tree.proof(leaf.leaf())), root)
    raise ProofError(f"node {node} has no capacity leaf in epoch {epoch}", hint="check the node address")


def verify_capacity_proof(proof: CapacityProof, root: bytes | None = None) -> bool:
    return verify_proof(proof.root if root is None else root, proof.leaf.leaf(), proof.proof)


CAPACITY_COLUMNS = [
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


def capacity_frame(engine: Engine, asset: bytes | None = None) -> pd.DataFrame:
    """Every capacity leaf (of one asset, if given) as a frame, with the ``flagged`` column."""
    ensure_tables(engine)
    c = capacity_leaves.c
    q = select(capacity_leaves).order_by(c.asset, c.epoch, c.node)
    if asset is not None:
        q = q.where(c.asset == "0x" + asset.hex())
    with engine.connect() as conn:
        leaves = [CapacityLeaf.from_row(r) for r in conn.execute(q).mappings().all()]
    rows = [{**{c: getattr(x, c) for c in CAPACITY_COLUMNS}, "asset": "0x" + x.asset.hex()} for x in leaves]
    return pd.DataFrame(rows, columns=CAPACITY_COLUMNS)


def flagged_nodes(engine: Engine, asset: bytes, epoch: int) -> list[str]:
    """Nodes of the epoch whose checks failed (see the module docstring)."""
    return [leaf.node for leaf in capacity_leaves_of(engine, asset, epoch) if leaf.flagged]


def capacity_epochs(engine: Engine, asset: bytes | None = None) -> list[dict[str, Any]]:
    """Per (asset, epoch) with checks or a recorded root: the capacity root (``None`` while the
    epoch is open), node count, GPU challenges and miners' shares passed and failed, flagged nodes.
    Ordered by asset, then epoch."""
    frame = capacity_frame(engine, asset)
    r = capacity_roots.c
    q = select(capacity_roots).order_by(r.asset, r.epoch)
    if asset is not None:
        q = q.where(r.asset == "0x" + asset.hex())
    with engine.connect() as conn:
        roots = {
            (str(x["asset"]), int(x["epoch"])): bytes(x["capacity_root"]) for x in conn.execute(q).mappings()
        }
    keys = sorted(
        set(roots) | {(str(a), int(e)) for a, e in zip(frame["asset"], frame["epoch"], strict=True)}
    )
    groups = {key: g for key, g in frame.groupby(["asset", "epoch"], sort=False)} if len(frame) else {}
    out = []
    for a_hex, epoch in keys:
        g = groups.get((a_hex, epoch), frame.iloc[0:0])
        gpu, asic = g[g["kind"] == "gpu"], g[g["kind"] == "asic"]
        root = roots.get((a_hex, epoch))
        out.append(
            {
                "asset": a_hex,
                "epoch": epoch,
                "capacityRoot": None if root is None else "0x" + root.hex(),
                "closed": root is not None,
                "nodes": len(g),
                "challengesPassed": int(gpu["passed"].sum()),
                "challengesFailed": int(gpu["failed"].sum()),
                "sharesAccepted": int(asic["passed"].sum()),
                "sharesRejected": int(asic["failed"].sum()),
                "flaggedNodes": sorted(str(n) for n in g.loc[g["flagged"].astype(bool), "node"]),
            }
        )
    return out
