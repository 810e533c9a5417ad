"""Merkle trees in OpenZeppelin's ``StandardMerkleTree`` convention.

- leaf  = keccak256(keccak256(abi.encode(values)))   (double hash: no second-preimage via inner nodes)
- node  = keccak256(sort(a, b))                       (sorted pairs: proofs carry no left/right bits)
- leaves are sorted by hash, laid out like OpenZeppelin's array tree (root at index 0, leaves at the
  end in reverse order), so roots and proofs equal those of ``@openzeppelin/merkle-tree`` and verify
  with snekmate's ``merkle_proof_verification`` on chain.

Fast path (a million leaves in seconds). In the array layout node ``i`` has children ``2i+1`` and
``2i+2``, so the nodes ``[hi // 2, hi)`` depend only on nodes ``>= hi``: the tree is built in
``O(log n)`` slices, each hashed by one list comprehension. Leaves are sorted with NumPy on their
four big-endian 64-bit words (a lexicographic sort of 32-byte strings). For rows of static ABI types
``abi.encode`` is the concatenation of one 32-byte big-endian word per value, so
:func:`leaf_hashes_static` packs whole columns with NumPy instead of calling ``eth_abi`` per row.
Keccak comes from ``safe-pysha3`` (C, about four times less call overhead than pycryptodome's).
Large batches of leaves are hashed in forked worker processes, one per core (see
:func:`leaf_hashes_static`).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import SupportsInt, TypeAlias

import numpy as np
from eth_abi import encode as abi_encode
from sha3 import keccak_256 as _keccak_256

from drakewell.core.errors import DrakewellError


class MerkleError(DrakewellError):
    """A tree could not be built or a proof was asked for a value that is not in it."""


Column: TypeAlias = Sequence[object] | np.ndarray
"""One ABI type's values, one per row: a sequence, or a NumPy array (integers, for ``uintN``)."""


def keccak256(data: bytes) -> bytes:
    return _keccak_256(data).digest()


def leaf_hash(types: Sequence[str], values: Sequence[object]) -> bytes:
    """OpenZeppelin's standard leaf: keccak256(keccak256(abi.encode(values)))."""
    return keccak256(keccak256(abi_encode(list(types), list(values))))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak256(a + b if a < b else b + a)


_UINT_BITS = {f"uint{8 * k}": 8 * k for k in range(1, 33)}


def _word_column(abi_type: str, column: Column, n: int) -> np.ndarray:
    """One ABI type's column as an ``(n, 32)`` uint8 array of big-endian words."""
    out = np.zeros((n, 32), dtype=np.uint8)
    if abi_type in _UINT_BITS:
        arr = np.asarray(column)
        if arr.dtype.kind in "iu" and (arr.dtype.kind == "u" or n == 0 or int(arr.min()) >= 0):
            out[:, 24:] = arr.astype(">u8").view(np.uint8).reshape(n, 8)
            return out
        limit = 1 << _UINT_BITS[abi_type]
        words = []
        for v in column:
            iv = _int(v)
            if not 0 <= iv < limit:
                raise MerkleError(f"{v!r} is out of range for {abi_type}", hint="pass values the type holds")
            words.append(iv.to_bytes(32, "big"))
        return np.frombuffer(b"".join(words), dtype=np.uint8).reshape(n, 32)
    if abi_type == "address":
        raw = b"".join(_address_bytes(v) for v in column)
        out[:, 12:] = np.frombuffer(raw, dtype=np.uint8).reshape(n, 20)
        return out
    if abi_type == "bytes32":
        raw = b"".join(_bytes32(v) for v in column)
        return np.frombuffer(raw, dtype=np.uint8).reshape(n, 32)
    if abi_type == "bool":
        out[:, 31] = np.asarray(column, dtype=bool)
        return out
    raise MerkleError(
        f"type {abi_type!r} has no fast static encoding",
        hint="use uintN, address, bytes32 or bool, or hash rows one by one with leaf_hash()",
    )


def _int(v: object) -> int:
    """``int(v)`` of a value ``int`` takes (an int, a NumPy integer, a decimal string)."""
    if isinstance(v, int):  # the common case first: a protocol check is slow
        return int(v)
    if isinstance(v, str | bytes | SupportsInt):
        return int(v)
    raise MerkleError(f"{v!r} is not an integer", hint="pass integers for uintN columns")


def _raw_bytes(v: object) -> bytes:
    """``v``'s bytes: hex text (``0x`` optional) or a bytes-like value."""
    if isinstance(v, str):
        return bytes.fromhex(v[2:] if v[:2] in ("0x", "0X") else v)
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v)
    raise MerkleError(f"{v!r} is neither hex text nor bytes", hint="pass 0x-prefixed hex or bytes")


def _address_bytes(v: object) -> bytes:
    raw = _raw_bytes(v)
    if len(raw) != 20:
        raise MerkleError(f"address {v!r} is not 20 bytes", hint="pass 0x-prefixed 40-hex-digit addresses")
    return raw


def _bytes32(v: object) -> bytes:
    raw = _raw_bytes(v)
    if len(raw) != 32:
        raise MerkleError(f"bytes32 value {v!r} is not 32 bytes", hint="pass exactly 32 bytes")
    return raw


def _check_columns(types: Sequence[str], columns: Sequence[Column]) -> int:
    if len(types) != len(columns):
        raise MerkleError(f"{len(columns)} columns for {len(types)} types", hint="pass one column per type")
    n = len(columns[0]) if columns else 0
    if any(len(c) != n for c in columns):
        raise MerkleError("columns have different lengths", hint="pass one value per row in every column")
    return n


def encode_static_columns(types: Sequence[str], columns: Sequence[Column]) -> bytes:
    """``abi.encode`` of every row, concatenated: row ``i`` is ``32 * len(types)`` bytes."""
    n = _check_columns(types, columns)
    words = np.empty((n, len(types), 32), dtype=np.uint8)
    for j, (t, c) in enumerate(zip(types, columns, strict=True)):
        words[:, j, :] = _word_column(t, c, n)
    return words.tobytes()


_CHUNK_ROWS = 32768  # rows encoded at a time: keeps the packed words in cache and memory flat


PARALLEL_MIN_LEAVES = 250_000  # below this, forking costs more than it saves


def leaf_hashes_static(types: Sequence[str], columns: Sequence[Column]) -> list[bytes]:
    """Standard leaves of rows given column by column; every type must be static (see module doc).

    From :data:`PARALLEL_MIN_LEAVES` rows on, in a single-threaded process on a POSIX system with
    more than one core, the rows are split between forked workers (the hashing holds the GIL);
    the result is the same list either way.
    """
    n = _check_columns(types, columns)
    workers = _parallel_workers(n)
    if workers <= 1:
        return _leaf_hashes_serial(types, columns, 0, n)
    global _FORK_INPUT
    _FORK_INPUT = (types, columns)
    try:
        bounds = [(n * i // workers, n * (i + 1) // workers) for i in range(workers)]
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_hash_rows_in_child, bounds)
    finally:
        _FORK_INPUT = None
    blob = b"".join(parts)
    return [blob[i : i + 32] for i in range(0, len(blob), 32)]


_FORK_INPUT: tuple[Sequence[str], Sequence[Column]] | None = None


def _parallel_workers(n: int) -> int:
    if n < PARALLEL_MIN_LEAVES or threading.active_count() != 1:
        return 1  # forking a process with other threads running is unsafe
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return min(os.cpu_count() or 1, 8)


def _hash_rows_in_child(bounds: tuple[int, int]) -> bytes:
    assert _FORK_INPUT is not None
    types, columns = _FORK_INPUT
    return b"".join(_leaf_hashes_serial(types, columns, *bounds))


def _leaf_hashes_serial(
    types: Sequence[str], columns: Sequence[Column], start: int, stop: int
) -> list[bytes]:
    width = 32 * len(types)
    k = _keccak_256
    out: list[bytes] = []
    for lo in range(start, stop, _CHUNK_ROWS):
        hi = min(stop, lo + _CHUNK_ROWS)
        data = encode_static_columns(types, [c[lo:hi] for c in columns])
        out += [k(k(data[i : i + width]).digest()).digest() for i in range(0, len(data), width)]
    return out


def _sorted_hashes(hashes: Sequence[bytes]) -> list[bytes]:
    n = len(hashes)
    if n < 4096:
        return sorted(hashes)
    words = np.frombuffer(b"".join(hashes), dtype=">u8").reshape(n, 4).astype(np.uint64)
    order = np.argsort(words[:, 0], kind="stable")
    first = words[order, 0]
    if bool((first[1:] == first[:-1]).any()):  # equal leading words: sort on all four
        order = np.lexsort((words[:, 3], words[:, 2], words[:, 1], words[:, 0]))
    return [hashes[i] for i in order.tolist()]


@dataclass(frozen=True)
class MerkleTree:
    """An immutable tree over already-hashed leaves (use :meth:`of` for typed values)."""

    tree: tuple[bytes, ...]
    leaf_hashes: tuple[bytes, ...]  # in the caller's order

    @cached_property
    def positions(self) -> dict[bytes, int]:
        """Leaf hash -> index into ``tree`` (built on the first proof)."""
        n = len(self.leaf_hashes)
        size = len(self.tree)
        return {self.tree[i]: i for i in range(size - n, size)}

    @classmethod
    def from_leaf_hashes(cls, hashes: Sequence[bytes]) -> MerkleTree:
        if not hashes:
            raise MerkleError("cannot build a Merkle tree of no leaves", hint="add at least one leaf")
        if set(map(len, hashes)) != {32}:
            raise MerkleError("a leaf hash is not 32 bytes", hint="hash values with leaf_hash()")
        ordered = _sorted_hashes(hashes)
        n = len(ordered)
        tree: list[bytes] = [b""] * (2 * n - 1)
        tree[n - 1 :] = ordered[::-1]
        k = _keccak_256
        hi = n - 1
        while hi > 0:
            lo = hi // 2  # nodes [lo, hi) have all their children at indices >= hi
            lefts = tree[2 * lo + 1 : 2 * hi : 2]
            rights = tree[2 * lo + 2 : 2 * hi + 1 : 2]
            tree[lo:hi] = [
                k(a + b).digest() if a < b else k(b + a).digest() for a, b in zip(lefts, rights, strict=True)
            ]
            hi = lo
        return cls(tuple(tree), tuple(hashes))

    @classmethod
    def of(cls, types: Sequence[str], rows: Sequence[Sequence[object]]) -> MerkleTree:
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
