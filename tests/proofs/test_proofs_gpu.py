"""GPU challenges: exact products, commitments, openings, and catching a node that fakes rows."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from drakewell.core.errors import DrakewellError, ProofError
from drakewell.core.merkle import verify_proof
from drakewell.proofs import arrays, gpu
from drakewell.proofs.gpu import (
    Challenge,
    Commitment,
    RowOpening,
    answer_challenge,
    commit_product,
    detection_probability,
    expand_b,
    expand_matrices,
    expand_rows,
    new_challenge,
    run_challenge,
    sample_rows,
    verify_openings,
)

SEED = hashlib.sha256(b"test challenge").digest()


def test_expansion_is_fixed_by_the_seed_and_rows_expand_alone() -> None:
    ch = Challenge(SEED, 64)
    a, b = expand_matrices(ch)
    a2, b2 = expand_matrices(Challenge(SEED, 64))
    assert a.dtype == np.int8 and a.shape == (64, 64) and b.dtype == np.int8 and b.shape == (64, 64)
    assert np.array_equal(a, a2) and np.array_equal(b, b2)
    assert not np.array_equal(a, b)  # A and B come from separate keys
    assert np.array_equal(expand_rows(ch, [0, 17, 63]), a[[0, 17, 63]])
    assert all(np.array_equal(expand_rows(ch, [i])[0], a[i]) for i in range(64))
    assert np.array_equal(expand_b(ch), b)
    other = expand_matrices(Challenge(hashlib.sha256(b"other").digest(), 64))[0]
    assert not np.array_equal(a, other)
    assert not np.array_equal(a, expand_matrices(Challenge(SEED, 96))[0][:64, :64])  # n is in the key
    # golden bytes: AES-256-CTR under a SHA-256-derived key; any change would break every replay
    assert a[0, :8].tolist() == [-13, 93, 98, -97, -85, -74, 84, 34]
    assert b[63, -8:].tolist() == [126, 59, 47, -106, 17, -124, 73, -112]


def _aes_block(name: bytes, ch: Challenge, block: int) -> bytes:
    """AES-256 of counter block ``block`` under the matrix's key, by another AES implementation."""
    from Crypto.Cipher import AES

    key = hashlib.sha256(b"drakewell/proofs/aes-256-ctr/" + name + ch.seed + ch.n.to_bytes(8, "big")).digest()
    return AES.new(key, AES.MODE_ECB).encrypt(block.to_bytes(16, "big"))


def test_expansion_is_aes_ctr_known_answer() -> None:
    # each 16 bytes of a matrix are AES(key, counter block) with the block index big-endian: row i
    # of A starts at block i·n/16; checked against PyCryptodome's AES, not the library the code uses
    ch = Challenge(SEED, 96)
    a, b = expand_matrices(ch)
    flat_a, flat_b = a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8)
    for block in (0, 1, 6, 95 * 96 // 16, 96 * 96 // 16 - 1):
        assert flat_a[16 * block : 16 * block + 16].tobytes() == _aes_block(b"A", ch, block)
        assert flat_b[16 * block : 16 * block + 16].tobytes() == _aes_block(b"B", ch, block)
    row = expand_rows(ch, [37])[0].view(np.uint8).tobytes()
    assert row[:16] == _aes_block(b"A", ch, 37 * 96 // 16)
    assert row[-16:] == _aes_block(b"A", ch, 38 * 96 // 16 - 1)


def test_expansion_across_chunks_gives_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    ch = Challenge(SEED, 96)
    whole_a, whole_b = expand_matrices(ch)
    monkeypatch.setattr(gpu, "_ZEROS", bytes(48))  # the keystream in chunks of 3 blocks, not 1 MiB
    a, b = expand_matrices(ch)
    assert np.array_equal(a, whole_a) and np.array_equal(b, whole_b)
    assert np.array_equal(expand_rows(ch, [3, 95]), whole_a[[3, 95]])
    with pytest.raises(ProofError, match="whole AES block"):
        gpu._keystream(bytes(32), 8)


def test_numpy_product_is_exact_against_int64() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, size=(40, 2100), dtype=np.int8)  # three float32 blocks
    b = rng.integers(-128, 128, size=(2100, 33), dtype=np.int8)
    exact = a.astype(np.int64) @ b.astype(np.int64)
    assert np.array_equal(arrays.exact_int8_matmul_numpy(a, b), exact)


def test_numpy_product_is_exact_at_the_float32_block_limit() -> None:
    # all -128: every entry is n · 2**14; at n = 1024 the block sum is exactly 2**24, and beyond
    # it float32 alone would round (2**24 + 2**14 is representable, but odd multiples are not)
    for n in (1024, 1025, 3000):
        a = np.full((2, n), -128, dtype=np.int8)
        b = np.full((n, 3), -128, dtype=np.int8)
        assert (arrays.exact_int8_matmul_numpy(a, b) == n * 16384).all()
    a = np.full((1, 3000), -128, dtype=np.int8)
    b = np.full((3000, 1), 127, dtype=np.int8)
    b[::3] = -127
    assert int(arrays.exact_int8_matmul_numpy(a, b)[0, 0]) == int(
        (a.astype(np.int64) @ b.astype(np.int64))[0, 0]
    )


@pytest.mark.parametrize(
    ("m", "inner", "cols"), [(16, 2100, 300), (1, 4096, 129), (64, 1030, 64), (70, 1100, 40)]
)
def test_few_row_and_many_row_products_are_exact(m: int, inner: int, cols: int) -> None:
    # up to FEW_ROWS rows the product streams b in small single-thread calls; beyond, big blocks
    rng = np.random.default_rng(m + inner)
    a = rng.integers(-128, 128, size=(m, inner), dtype=np.int8)
    b = rng.integers(-128, 128, size=(inner, cols), dtype=np.int8)
    assert np.array_equal(arrays.exact_int8_matmul_numpy(a, b), a.astype(np.int64) @ b.astype(np.int64))
    worst = np.full((m, inner), -128, dtype=np.int8)  # every partial sum at its largest
    assert (arrays.exact_int8_matmul_numpy(worst, np.full((inner, cols), -128, np.int8)) == inner << 14).all()


def test_verifier_recomputes_only_the_checked_rows() -> None:
    ch = new_challenge(128, seed=SEED)
    a, b = expand_matrices(ch)
    rows = sample_rows(128, 16, np.random.default_rng(2))
    want = a[rows].astype(np.int64) @ b.astype(np.int64)
    assert np.array_equal(gpu.recompute_rows(ch, rows), want)  # B expanded by the verifier
    assert np.array_equal(gpu.recompute_rows(ch, rows, b=b), want)  # B given
    work = answer_challenge(ch, "numpy")
    verdict = verify_openings(ch, work.commitment, rows, work.open_rows(rows), elapsed_s=0.5)
    assert verdict.passed
    short = RowOpening(rows[0], work.c[rows[0], :5], ())
    bad = verify_openings(ch, work.commitment, rows, [short, *work.open_rows(rows[1:])], elapsed_s=0.5)
    assert not bad.passed and bad.bad_rows == (rows[0],)


def test_rows_product_refuses_misuse() -> None:
    rng = np.random.default_rng(4)
    a = rng.integers(-128, 128, size=(3, 50), dtype=np.int8)
    b = rng.integers(-128, 128, size=(50, 20), dtype=np.int8)
    product = arrays.RowsProduct(a, 20)
    product.add(b[:17])
    with pytest.raises(ProofError, match="only 17 of 50"):
        product.result()
    product.add(b[17:])
    assert np.array_equal(product.result(), a.astype(np.int64) @ b.astype(np.int64))
    with pytest.raises(ProofError, match="not a few int8 rows"):
        arrays.RowsProduct(np.zeros((65, 4), np.int8), 4)
    with pytest.raises(ProofError, match="rows of B"):
        arrays.RowsProduct(a, 20).add(b[:, :5])


def test_honest_node_passes_and_the_bound_uses_the_verifier_clock() -> None:
    ch = new_challenge(128, seed=SEED)
    work = answer_challenge(ch, "numpy")
    a, b = expand_matrices(ch)
    assert np.array_equal(work.c, a.astype(np.int64) @ b.astype(np.int64))
    rows = sample_rows(128, 16, np.random.default_rng(1))
    verdict = verify_openings(ch, work.commitment, rows, work.open_rows(rows), elapsed_s=0.5)
    assert verdict.passed and verdict.reason == "ok" and verdict.bad_rows == ()
    assert verdict.tops_lower_bound == pytest.approx(2 * 128**3 / 0.5 / 1e12)


def test_openings_verify_against_the_root_with_the_shared_merkle_code() -> None:
    ch = new_challenge(64, seed=SEED)
    work = answer_challenge(ch, "numpy")
    for opening in work.open_rows([0, 5, 63]):
        assert verify_proof(work.commitment.root, opening.leaf(), opening.proof)
        again = RowOpening.from_json(opening.to_json())
        assert again.index == opening.index and np.array_equal(again.row, opening.row)


def _faking_node(fraction: float, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    def node(ch: Challenge):  # type: ignore[no-untyped-def]
        a, b = expand_matrices(ch)
        m = round(fraction * ch.n)
        faked = rng.choice(ch.n, size=m, replace=False)
        keep = np.setdiff1d(np.arange(ch.n), faked)
        c = np.zeros((ch.n, ch.n), dtype=np.int32)
        c[keep] = arrays.exact_int8_matmul_numpy(a[keep], b)  # skips the faked rows' work
        c[faked] = rng.integers(-(2**20), 2**20, size=(m, ch.n), dtype=np.int32)
        return commit_product(ch, c)

    return node


def test_a_node_faking_all_rows_is_always_caught() -> None:
    rng = np.random.default_rng(5)
    ch = new_challenge(64, seed=SEED)
    verdict = run_challenge(ch, _faking_node(1.0, rng), k=4, rng=rng)
    assert not verdict.passed and verdict.reason == "row differs from row_i(A)·B"
    assert set(verdict.bad_rows) == set(verdict.checked_rows) and verdict.tops_lower_bound == 0.0


def test_detection_rate_matches_the_sampling_law() -> None:
    rng = np.random.default_rng(11)
    n, k, trials = 64, 8, 300
    caught = sum(
        not run_challenge(new_challenge(n, seed=rng.bytes(32)), _faking_node(0.125, rng), k=k, rng=rng).passed
        for _ in range(trials)
    )
    expected = detection_probability(n, 8, k)
    assert expected >= 1 - (1 - 0.125) ** k
    sd = (expected * (1 - expected) / trials) ** 0.5
    assert abs(caught / trials - expected) < 4 * sd


def test_a_tampered_opening_or_missing_row_fails() -> None:
    ch = new_challenge(64, seed=SEED)
    work = answer_challenge(ch, "numpy")
    rows = [1, 2, 3]
    openings = work.open_rows(rows)
    forged = RowOpening(2, openings[1].row + 1, openings[1].proof)  # a different row, same proof
    verdict = verify_openings(ch, work.commitment, rows, [openings[0], forged, openings[2]], elapsed_s=1.0)
    assert not verdict.passed and verdict.bad_rows == (2,) and "Merkle" in verdict.reason
    verdict = verify_openings(ch, work.commitment, rows, openings[:2], elapsed_s=1.0)
    assert not verdict.passed and verdict.bad_rows == (3,)
    other = Commitment(bytes(32), 64, work.commitment.root, 0.1)
    assert not verify_openings(ch, other, rows, openings, elapsed_s=1.0).passed


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: Challenge(b"short", 64), "32"),
        (lambda: Challenge(SEED, 100), "multiple of 32"),
        (lambda: Challenge.from_json({"seed": "zz", "n": 64}), "bad challenge"),
        (lambda: sample_rows(64, 65, np.random.default_rng(0)), "k=65"),
        (lambda: arrays.resolve_backend("tpu"), "unknown array backend"),
        (lambda: arrays.exact_int8_matmul_numpy(np.zeros((2, 2)), np.zeros((2, 2))), "not int8"),
        (lambda: RowOpening.from_json({"index": 0, "row": [2**40], "proof": []}), "int32"),
        (lambda: Commitment.from_json({"seed": "0x00"}), "bad commitment"),
    ],
)
def test_bad_input_gets_a_clear_error(make, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProofError) as info:
        make()
    assert fragment in str(info.value) and isinstance(info.value, DrakewellError) and info.value.hint


def test_gpu_backends_fall_back_and_refuse_clearly_here() -> None:
    available = arrays.available_backends()
    assert available[-1] == "numpy"
    for name in ("torch", "cupy"):
        if name not in available:
            with pytest.raises(ProofError, match="not usable"):
                arrays.resolve_backend(name)
    assert arrays.resolve_backend("auto") == available[0]
