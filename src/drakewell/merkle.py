"""Merkle trees in OpenZeppelin's ``StandardMerkleTree`` convention.

- leaf  = keccak256(keccak256(abi.encode(values)))   (double hash: no second-preimage via inner nodes)
- node  = keccak256(sort(a, b))                       (sorted pairs: proofs carry no left/right bits)
- leaves are sorted by hash, laid out like OpenZeppelin's array tree (root at index 0, leaves at the
  end in reverse order), so roots and proofs equal those of ``@openzeppelin/merkle-tree`` and verify
  with snekmate's ``merkle_proof_verification`` on chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from Crypto.Hash import keccak as _keccak
from eth_abi import encode as abi_encode

from drakewell.errors import DrakewellError


class MerkleError(DrakewellError):
    """A tree could not be built or a proof was asked for a value that is not in it."""


def keccak256(data: bytes) -> bytes:
    return _keccak.new(digest_bits=256, data=data).digest()


def leaf_hash(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """OpenZeppelin's standard leaf: keccak256(keccak256(abi.encode(values)))."""
    return keccak256(keccak256(abi_encode(list(types), list(values))))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak256(a + b if a < b else b + a)


@dataclass(frozen=True)
class MerkleTree:
    """An immutable tree over already-hashed leaves (use :meth:`of` for typed values)."""

    tree: tuple[bytes, ...]
    leaf_hashes: tuple[bytes, ...]  # in the caller's order
    positions: dict[bytes, int]  # leaf hash -> index into ``tree``

    @classmethod
    def from_leaf_hashes(cls, hashes: Sequence[bytes]) -> MerkleTree:
        if not hashes:
            raise MerkleError("cannot build a Merkle tree of no leaves", hint="add at least one leaf")
        ordered = sorted(hashes)
        n = len(ordered)
        tree: list[bytes] = [b""] * (2 * n - 1)
        for i, h in enumerate(ordered):
            tree[len(tree) - 1 - i] = h
        for i in range(len(tree) - 1 - n, -1, -1):
            tree[i] = hash_pair(tree[2 * i + 1], tree[2 * i + 2])
        positions = {h: len(tree) - 1 - i for i, h in enumerate(ordered)}
        return cls(tuple(tree), tuple(hashes), positions)

    @classmethod
    def of(cls, types: Sequence[str], rows: Sequence[Sequence[Any]]) -> MerkleTree:
        return cls.from_leaf_hashes([leaf_hash(types, row) for row in rows])

    @property
    def root(self) -> bytes:
        return self.tree[0]

    def proof(self, leaf: bytes) -> list[bytes]:
        """Sibling hashes from the leaf up to (not including) the root."""
        try:
            i = self.positions[leaf]
        except KeyError:
            raise MerkleError(
                f"leaf 0x{leaf.hex()} is not in this tree", hint="hash the values with leaf_hash()"
            ) from None
        out: list[bytes] = []
        while i > 0:
            sibling = i - 1 if i % 2 == 0 else i + 1
            out.append(self.tree[sibling])
            i = (i - 1) // 2
        return out


def verify_proof(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root
