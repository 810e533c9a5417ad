"""GPU capacity challenges: a committed int8 matrix product, spot-checked row by row.

Protocol (one challenge):

1. The verifier sends ``Challenge(seed, n)``: a fresh 32-byte seed and a size ``n`` (a multiple of
   32). It notes the time it sent it.
2. The node expands the seed into int8 matrices ``A`` and ``B`` (``n × n``, below), computes
   ``C = A·B`` exactly with int32 results (:mod:`drakewell.proofs.arrays`), and commits to ``C``
   with a Merkle root over its rows: leaf ``i`` is OpenZeppelin's standard leaf of
   ``(uint256 i, bytes32 sha256(row_i))``, ``row_i`` as little-endian int32 bytes
   (:mod:`drakewell.core.merkle`, so a proof also verifies on chain). It answers with the root.
3. The verifier notes the time the root arrived. The elapsed time ``t`` bounds the node's
   throughput from below: ``TOPS ≥ 2n³ / t / 10¹²`` (one multiply and one add per inner index;
   ``t`` also holds the expansion, the hashing and the network, hence a lower bound).
4. The verifier draws ``k`` distinct rows uniformly with randomness the node cannot predict, the
   node opens them (row and Merkle proof), and the verifier checks each proof against the root and
   recomputes each row as ``row_i(A)·B`` (``k·n²`` multiply-adds against the node's ``n³``): the
   ``k`` rows as one ``(k × n)·(n × n)`` product, expanding only those rows of ``A`` and sharing
   the expansion of ``B`` and the product among the cores (:func:`recompute_rows`).

A node that committed a wrong value in ``m = f·n`` rows passes only if no sampled row is one of
them: ``P(pass) = C(n−m, k) / C(n, k) ≤ (1 − f)^k``, so it is caught with probability at least
``1 − (1 − f)^k`` (0.815 for ``f = 0.1``, ``k = 16``).

Expansion (identical on every backend, and the same code for node and verifier; it runs on the
host and the backend receives the bytes): matrix ``X ∈ {A, B}`` is the AES-256-CTR keystream under
the key ``sha256(b"drakewell/proofs/aes-256-ctr/" + X + seed + n as 8 big-endian bytes)`` (all 32
bytes), read as int8 in row-major order. The counter block starts at 0 and counts 16-byte blocks
as one 128-bit big-endian integer (NIST SP 800-38A's standard incrementing function), so byte
``j`` of the stream is byte ``j mod 16`` of ``AES(key, (j div 16) as 16 big-endian bytes)`` and
entry ``(i, c)`` is byte ``i·n + c``. ``n`` is a multiple of 32, so row ``i`` of ``A`` starts at
counter block ``i·n/16`` and the verifier expands just the rows it checks. AES runs on the CPU's
AES instructions through ``cryptography`` (OpenSSL) at several GB/s: expanding ``B`` at
``n = 4096`` takes a few milliseconds.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from drakewell.core.errors import ProofError
from drakewell.core.fields import as_float, as_int, hex_bytes
from drakewell.core.jsontypes import JsonMapping, JsonObject
from drakewell.core.merkle import MerkleTree, leaf_hashes_static, verify_proof
from drakewell.proofs.arrays import FEW_ROWS, multiply, resolve_backend

ROW_LEAF_TYPES = ("uint256", "bytes32")
DEFAULT_N = 4096
DEFAULT_K = 16
MIN_N = 32
MAX_N = 1 << 15  # 2**15 rows of 2**15 int32: 4 GiB for C, beyond any sensible challenge
AES_BLOCK = 16  # bytes per AES block: one CTR counter step
_DOMAIN = b"drakewell/proofs/aes-256-ctr/"
_ZEROS = bytes(1 << 20)  # the plaintext whose encryption is the keystream, 1 MiB at a time
_VERIFY_THREADS = max(1, min(4, os.cpu_count() or 1))  # slabs of the verifier's product


@dataclass(frozen=True)
class Challenge:
    """A seed and a size; the node must answer with a commitment to ``C = A·B``."""

    seed: bytes
    n: int

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise ProofError(f"challenge seed is {len(self.seed)} bytes, not 32", hint="use new_challenge()")
        if not (MIN_N <= self.n <= MAX_N) or self.n % 32:
            raise ProofError(
                f"challenge size n={self.n} is not a multiple of 32 in [{MIN_N}, {MAX_N}]",
                hint="use n = 4096 (the default) or another multiple of 32",
            )

    @property
    def ops(self) -> int:
        """Integer operations of the product: ``2n³`` (a multiply and an add per inner index)."""
        return 2 * self.n**3

    def to_json(self) -> JsonObject:
        return {"seed": "0x" + self.seed.hex(), "n": self.n}

    @classmethod
    def from_json(cls, obj: JsonMapping) -> Challenge:
        try:
            return cls(seed=hex_bytes(obj["seed"]), n=as_int(obj["n"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProofError(
                f"bad challenge {obj!r}: {exc}", hint='a challenge is {"seed": "0x…", "n": 4096}'
            ) from None


def new_challenge(n: int = DEFAULT_N, *, seed: bytes | None = None) -> Challenge:
    """A challenge with a fresh random seed (or the given one, for replay)."""
    return Challenge(seed if seed is not None else secrets.token_bytes(32), int(n))


def _key(name: bytes, challenge: Challenge) -> bytes:
    """The AES-256 key of matrix ``name`` (``b"A"`` or ``b"B"``): the domain-tagged SHA-256."""
    return hashlib.sha256(_DOMAIN + name + challenge.seed + challenge.n.to_bytes(8, "big")).digest()


def _keystream(key: bytes, start_byte: int) -> CipherContext:
    """An AES-256-CTR encryptor positioned at ``start_byte`` (a multiple of 16) of the key's stream.

    Encrypting zeros gives the keystream; successive calls continue it. The counter block is the
    128-bit big-endian block index, as every CTR implementation of the library increments it.
    """
    if start_byte % AES_BLOCK:
        raise ProofError(f"stream offset {start_byte} is not a whole AES block", hint="start at i·n")
    counter = (start_byte // AES_BLOCK).to_bytes(AES_BLOCK, "big")
    return Cipher(algorithms.AES(key), modes.CTR(counter)).encryptor()


def _stream(key: bytes, start_byte: int, n_bytes: int) -> np.ndarray:
    """``n_bytes`` of the key's stream from ``start_byte`` (a multiple of 16), as int8."""
    out = bytearray(n_bytes + AES_BLOCK - 1)  # the library asks for a block's slack
    view, zeros = memoryview(out), memoryview(_ZEROS)
    enc = _keystream(key, start_byte)
    for lo in range(0, n_bytes, len(_ZEROS)):
        size = min(len(_ZEROS), n_bytes - lo)
        enc.update_into(zeros[:size], view[lo:])
    return np.frombuffer(out, dtype=np.int8, count=n_bytes)


def expand_matrices(challenge: Challenge) -> tuple[np.ndarray, np.ndarray]:
    """``A`` and ``B`` (int8, ``n × n``) of a challenge (see the module docstring)."""
    n = challenge.n
    a = _stream(_key(b"A", challenge), 0, n * n).reshape(n, n)
    b = _stream(_key(b"B", challenge), 0, n * n).reshape(n, n)
    return a, b


def expand_rows(challenge: Challenge, rows: Sequence[int]) -> np.ndarray:
    """Rows of ``A`` alone, each expanded from its own counter (``len(rows) × n`` int8)."""
    n = challenge.n
    key = _key(b"A", challenge)
    return np.stack([_stream(key, int(i) * n, n) for i in rows]) if rows else np.zeros((0, n), np.int8)


def expand_b(challenge: Challenge) -> np.ndarray:
    n = challenge.n
    return _stream(_key(b"B", challenge), 0, n * n).reshape(n, n)


def _row_leaves(rows: Sequence[int], values: np.ndarray | None) -> list[bytes]:
    """The Merkle leaves of opened rows (``values``: their int32 rows, stacked), in one batch."""
    if not rows or values is None:
        return []
    return leaf_hashes_static(ROW_LEAF_TYPES, [list(rows), row_digests(values)])


def recompute_rows(
    challenge: Challenge, rows: Sequence[int], *, b: np.ndarray | None = None, backend: str = "numpy"
) -> np.ndarray:
    """Rows ``rows`` of ``C = A·B`` (int32), computed as one ``(k × n)·(n × n)`` product.

    Only the ``k`` rows of ``A`` are expanded. A GPU backend, or a given ``b``, gets one
    :func:`~drakewell.proofs.arrays.multiply` call. On NumPy the inner index is cut into one slab
    per core: each thread expands its rows of ``B`` from their own counter and multiplies them
    with its columns of the ``k`` rows in single-thread BLAS calls
    (:class:`~drakewell.proofs.arrays.RowsProduct`), and the int32 partial products are added.
    The machine's cores serve the verifier as they serve the node's product, and no thread waits
    on another's BLAS call, so a busy core delays its own slab only.
    """
    a_rows = expand_rows(challenge, rows)
    if b is not None or resolve_backend(backend) != "numpy" or len(rows) > FEW_ROWS:
        return multiply(a_rows, b if b is not None else expand_b(challenge), backend).c
    n = challenge.n
    key = _key(b"B", challenge)
    per = -(-n // _VERIFY_THREADS // AES_BLOCK) * AES_BLOCK  # rows of B per slab
    cuts = [(lo, min(n, lo + per)) for lo in range(0, n, per)]

    def slab(cut: tuple[int, int]) -> np.ndarray:
        lo, hi = cut
        b_rows = _stream(key, lo * n, (hi - lo) * n).reshape(hi - lo, n)
        return multiply(np.ascontiguousarray(a_rows[:, lo:hi]), b_rows, "numpy").c

    if len(cuts) == 1:
        return slab(cuts[0])
    with ThreadPoolExecutor(len(cuts) - 1, thread_name_prefix="drakewell-verify") as pool:
        others = [pool.submit(slab, cut) for cut in cuts[1:]]
        out = slab(cuts[0])
        for fut in others:
            out += fut.result()
    return out


def row_digests(c: np.ndarray) -> list[bytes]:
    """sha256 of each row as little-endian int32 bytes."""
    rows = np.ascontiguousarray(c.astype("<i4", copy=False))
    return [hashlib.sha256(r.data).digest() for r in rows]


def commit_rows(c: np.ndarray) -> MerkleTree:
    """The Merkle tree over ``C``'s rows: leaf ``i`` = standard leaf of ``(i, sha256(row_i))``."""
    digests = row_digests(c)
    return MerkleTree.from_leaf_hashes(leaf_hashes_static(ROW_LEAF_TYPES, [np.arange(len(digests)), digests]))


@dataclass(frozen=True)
class Commitment:
    """The node's answer: the root over ``C``'s rows and the seconds it reports it took."""

    seed: bytes
    n: int
    root: bytes
    node_seconds: float  # the node's own report; the verifier times the challenge itself
    backend: str = "numpy"
    device: str = "cpu"

    def to_json(self) -> JsonObject:
        return {
            "seed": "0x" + self.seed.hex(),
            "n": self.n,
            "root": "0x" + self.root.hex(),
            "nodeSeconds": self.node_seconds,
            "backend": self.backend,
            "device": self.device,
        }

    @classmethod
    def from_json(cls, obj: JsonMapping) -> Commitment:
        try:
            return cls(
                seed=hex_bytes(obj["seed"]),
                n=as_int(obj["n"]),
                root=hex_bytes(obj["root"]),
                node_seconds=as_float(obj["nodeSeconds"]),
                backend=str(obj.get("backend", "numpy")),
                device=str(obj.get("device", "cpu")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProofError(
                f"bad commitment: {exc}", hint="pass the JSON 'proofs challenge' wrote"
            ) from None


@dataclass(frozen=True)
class NodeWork:
    """What a node keeps after committing: ``C`` and its tree, to open rows on request."""

    challenge: Challenge
    c: np.ndarray
    tree: MerkleTree
    commitment: Commitment
    digests: tuple[bytes, ...] = field(repr=False, default=())

    def open_rows(self, rows: Sequence[int]) -> list[RowOpening]:
        """Row ``i`` of ``C`` with its Merkle proof, for each requested ``i``."""
        out = []
        for i in rows:
            if not 0 <= int(i) < self.challenge.n:
                raise ProofError(f"row {i} is outside 0..{self.challenge.n - 1}", hint="ask for rows of C")
            leaf = self.tree.leaf_hashes[int(i)]
            out.append(RowOpening(int(i), self.c[int(i)].astype(np.int32), tuple(self.tree.proof(leaf))))
        return out


def answer_challenge(challenge: Challenge, backend: str = "auto") -> NodeWork:
    """The node's side: expand, multiply exactly, commit. Returns what it needs to open rows."""
    t0 = time.perf_counter()
    a, b = expand_matrices(challenge)
    product = multiply(a, b, backend)
    tree = commit_rows(product.c)
    seconds = time.perf_counter() - t0
    commitment = Commitment(challenge.seed, challenge.n, tree.root, seconds, product.backend, product.device)
    return NodeWork(challenge, product.c, tree, commitment)


def commit_product(challenge: Challenge, c: np.ndarray, seconds: float = 0.0) -> NodeWork:
    """Commit to a given ``C`` (a node that computed it elsewhere, or a dishonest one in tests)."""
    if c.shape != (challenge.n, challenge.n):
        raise ProofError(
            f"C has shape {c.shape}, not ({challenge.n}, {challenge.n})", hint="pass the n × n product"
        )
    tree = commit_rows(c)
    return NodeWork(challenge, c, tree, Commitment(challenge.seed, challenge.n, tree.root, seconds))


@dataclass(frozen=True)
class RowOpening:
    """Row ``index`` of ``C`` (int32) and its Merkle proof."""

    index: int
    row: np.ndarray
    proof: tuple[bytes, ...]

    def leaf(self) -> bytes:
        digest = hashlib.sha256(np.ascontiguousarray(self.row.astype("<i4")).data).digest()
        return leaf_hashes_static(ROW_LEAF_TYPES, [[self.index], [digest]])[0]

    def to_json(self) -> JsonObject:
        return {
            "index": self.index,
            "row": self.row.astype(np.int64).tolist(),
            "proof": ["0x" + p.hex() for p in self.proof],
        }

    @classmethod
    def from_json(cls, obj: JsonMapping) -> RowOpening:
        try:
            values, proof = obj["row"], obj["proof"]
            if not isinstance(values, list) or not isinstance(proof, list):
                raise TypeError("row and proof are not lists")
            row = np.asarray(values, dtype=np.int64)
            if row.ndim != 1 or (row.size and (row.min() < -(2**31) or row.max() >= 2**31)):
                raise ValueError("row is not a list of int32 values")
            return cls(as_int(obj["index"]), row.astype(np.int32), tuple(hex_bytes(p) for p in proof))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProofError(
                f"bad row opening: {exc}", hint="pass the openings 'proofs challenge' wrote"
            ) from None


def sample_rows(n: int, k: int, rng: np.random.Generator) -> list[int]:
    """``k`` distinct rows of ``n``, uniformly (the verifier's draw, after the commitment)."""
    if not 1 <= k <= n:
        raise ProofError(f"cannot sample k={k} rows of n={n}", hint="use 1 ≤ k ≤ n (default k = 16)")
    return sorted(int(i) for i in rng.choice(n, size=k, replace=False))


@dataclass(frozen=True)
class Verdict:
    """The verifier's conclusion on one challenge."""

    passed: bool
    checked_rows: tuple[int, ...]
    bad_rows: tuple[int, ...]  # rows whose proof or value failed
    reason: str  # "ok", or what failed first
    elapsed_s: float  # challenge sent → root received, on the verifier's clock
    tops_lower_bound: float  # 2n³ / elapsed / 1e12 (0 when the challenge failed)

    def to_json(self) -> JsonObject:
        return {
            "passed": self.passed,
            "checkedRows": list(self.checked_rows),
            "badRows": list(self.bad_rows),
            "reason": self.reason,
            "elapsedSeconds": self.elapsed_s,
            "topsLowerBound": self.tops_lower_bound,
        }


def detection_probability(n: int, faked_rows: int, k: int) -> float:
    """``1 − C(n−m, k)/C(n, k)``: chance that ``k`` distinct sampled rows hit one of ``m`` faked."""
    if faked_rows <= 0:
        return 0.0
    if n - faked_rows < k:
        return 1.0
    return 1.0 - math.comb(n - faked_rows, k) / math.comb(n, k)


def verify_openings(
    challenge: Challenge,
    commitment: Commitment,
    requested: Sequence[int],
    openings: Sequence[RowOpening],
    *,
    elapsed_s: float,
    b: np.ndarray | None = None,
    backend: str = "numpy",
) -> Verdict:
    """Check each opened row's Merkle proof against the root and recompute it as ``row_i(A)·B``.

    ``elapsed_s`` is the verifier's own time from sending the challenge to receiving the root.
    ``b`` may be passed when the verifier expanded ``B`` ahead of time. The ``k`` rows are
    recomputed as one ``(k × n)·(n × n)`` product on ``backend`` (:func:`~drakewell.proofs.arrays.multiply`),
    and their leaves are hashed in one batch.
    """
    rows = tuple(int(i) for i in requested)
    if elapsed_s <= 0 or not math.isfinite(elapsed_s):
        raise ProofError(
            f"elapsed time {elapsed_s} s is not positive", hint="time the challenge on your clock"
        )

    def fail(reason: str, bad: Sequence[int]) -> Verdict:
        return Verdict(False, rows, tuple(bad), reason, elapsed_s, 0.0)

    if commitment.seed != challenge.seed or commitment.n != challenge.n:
        return fail("commitment answers another challenge", ())
    by_index = {o.index: o for o in openings}
    missing = [i for i in rows if i not in by_index]
    if missing:
        return fail("rows not opened", missing)
    n = challenge.n
    shaped = [i for i in rows if by_index[i].row.shape != (n,)]
    if shaped:
        return fail(f"opened row is not {n} values", shaped)
    got = np.stack([by_index[i].row for i in rows]).astype("<i4", copy=False) if rows else None
    leaves = _row_leaves(rows, got)
    bad_proof = [
        i
        for i, leaf in zip(rows, leaves, strict=True)
        if not verify_proof(commitment.root, leaf, by_index[i].proof)
    ]
    if bad_proof:
        return fail("Merkle proof does not match the root", bad_proof)
    if not rows:
        return fail("no rows checked", ())
    expected = recompute_rows(challenge, rows, b=b, backend=backend)
    wrong = [rows[j] for j in np.nonzero((expected != got).any(axis=1))[0].tolist()]
    if wrong:
        return fail("row differs from row_i(A)·B", wrong)
    return Verdict(True, rows, (), "ok", elapsed_s, challenge.ops / elapsed_s / 1e12)


def run_challenge(
    challenge: Challenge,
    node: Callable[[Challenge], NodeWork],
    *,
    k: int = DEFAULT_K,
    rng: np.random.Generator,
) -> Verdict:
    """Run one challenge against ``node`` (a callable ``Challenge -> NodeWork``), in process.

    The elapsed time is measured here around the node's call, as a remote verifier would measure
    from sending the challenge to receiving the root.
    """
    t0 = time.perf_counter()
    work = node(challenge)
    elapsed = time.perf_counter() - t0
    rows = sample_rows(challenge.n, k, rng)
    return verify_openings(challenge, work.commitment, rows, work.open_rows(rows), elapsed_s=elapsed)
