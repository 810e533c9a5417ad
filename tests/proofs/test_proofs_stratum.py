"""Stratum shares: header building against a real block, verification outcomes, hashrate intervals."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from drakewell.core.errors import ProofError
from drakewell.proofs.stratum import (
    DIFF1_TARGET,
    Job,
    Session,
    ShareStatus,
    Submission,
    build_header,
    estimate_hashrate,
    hashes_per_share,
    poisson_interval,
    sha256d,
    target_for_difficulty,
    verify_shares,
)

# Bitcoin block 1: its coinbase transaction, previous block (genesis) and header fields
BLOCK1_COINBASE = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff0704ffff001d0104"
    "ffffffff0100f2052a0100000043410496b538e853519c726a2c91e61ec11600ae1390813a627c66fb8be7947be63c52da"
    "7589379515d4e0a604f8141781e62294721166bf621e73a82cbf2342c858eeac00000000"
)
GENESIS = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
BLOCK1 = "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"


def _stratum_prevhash(display_hex: str) -> str:
    internal = bytes.fromhex(display_hex)[::-1]
    return b"".join(internal[i : i + 4][::-1] for i in range(0, 32, 4)).hex()


def _block1_session(difficulty: float) -> Session:
    # split the coinbase script (04ffff001d 0104) as a pool would: extranonce1 = ffff001d, extranonce2 = 0104
    session = Session(extranonce1=bytes.fromhex("ffff001d"), extranonce2_size=2, workers={"w"})
    session.set_difficulty(difficulty)
    coinb1, coinb2 = BLOCK1_COINBASE[:43].hex(), BLOCK1_COINBASE[49:].hex()
    session.notify(
        ["b1", _stratum_prevhash(GENESIS), coinb1, coinb2, [], "00000001", "1d00ffff", "4966bc61", True]
    )
    return session


BLOCK1_SHARE = Submission("w", "b1", "0104", "4966bc61", "9962e301")


def test_block_1_rebuilds_to_its_real_hash() -> None:
    session = _block1_session(1)
    header = build_header(
        session.jobs["b1"],
        session.extranonce1,
        b"\x01\x04",
        bytes.fromhex("4966bc61"),
        bytes.fromhex("9962e301"),
    )
    assert len(header) == 80
    assert sha256d(header)[::-1].hex() == BLOCK1
    assert header[36:68][::-1].hex() == "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098"
    [result] = verify_shares(session, [BLOCK1_SHARE])
    assert result.status is ShareStatus.ACCEPTED
    assert result.work == pytest.approx(2**256 / (DIFF1_TARGET + 1))


def test_the_same_share_above_a_higher_target_is_invalid_and_a_repeat_is_a_duplicate() -> None:
    assert verify_shares(_block1_session(2), [BLOCK1_SHARE])[0].status is ShareStatus.INVALID
    session = _block1_session(1)
    statuses = [r.status for r in verify_shares(session, [BLOCK1_SHARE, BLOCK1_SHARE])]
    assert statuses == [ShareStatus.ACCEPTED, ShareStatus.DUPLICATE]
    assert verify_shares(session, [BLOCK1_SHARE])[0].status is ShareStatus.DUPLICATE


def test_merkle_branch_matches_bitcoins_tree() -> None:
    txids = [sha256d(bytes([i])) for i in range(1, 4)]
    session = Session(extranonce1=b"\x00" * 4, extranonce2_size=4, workers={"w"})
    coinbase = b"\x01\x02" + b"\x00" * 8 + b"\x03"
    cb = sha256d(coinbase)
    # Bitcoin's tree of [cb, t1, t2, t3]; the branch for the coinbase is [t1, H(t2 t3)]
    root = sha256d(sha256d(cb + txids[0]) + sha256d(txids[1] + txids[2]))
    branch = [txids[0].hex(), sha256d(txids[1] + txids[2]).hex()]
    job = Job.from_notify(["j", "00" * 32, "0102", "03", branch, "20000000", "1703a30c", "65000000", True], 1)
    header = build_header(job, b"\x00" * 4, b"\x00" * 4, b"\x65\x00\x00\x00", b"\x00" * 4)
    assert header[36:68] == root
    assert header[:4] == bytes.fromhex("00000020") and header[72:76] == bytes.fromhex("0ca30317")
    del session


def test_version_rolling_changes_only_masked_bits() -> None:
    job = Job.from_notify(["j", "00" * 32, "", "", [], "20000000", "1703a30c", "65000000", True], 1)
    h = build_header(job, b"", b"", b"\x00" * 4, b"\x00" * 4, bytes.fromhex("ffffffff"), 0x1FFFE000)
    assert int.from_bytes(h[:4], "little") == 0x20000000 | 0x1FFFE000


def test_targets_use_the_exact_difficulty() -> None:
    assert target_for_difficulty(1) == DIFF1_TARGET
    assert target_for_difficulty(0.5) == 2 * DIFF1_TARGET
    assert target_for_difficulty("65536") == DIFF1_TARGET // 65536
    tiny = 1e-30
    assert target_for_difficulty(tiny) == 2**256 - 1
    assert target_for_difficulty(3) == DIFF1_TARGET // 3
    assert hashes_per_share(target_for_difficulty(1)) == pytest.approx(
        float(Fraction(2**256, DIFF1_TARGET + 1))
    )
    for bad in (0, -1, "abc", None):
        with pytest.raises(ProofError) as info:
            target_for_difficulty(bad)  # type: ignore[arg-type]
        assert info.value.hint


def test_stale_malformed_and_unauthorized_shares_are_not_credited() -> None:
    session = _block1_session(1)
    cases = [
        (Submission("w", "nope", "0104", "4966bc61", "9962e301"), ShareStatus.STALE),
        (Submission("mallory", "b1", "0104", "4966bc61", "9962e301"), ShareStatus.MALFORMED),
        (Submission("w", "b1", "01", "4966bc61", "9962e301"), ShareStatus.MALFORMED),
        (Submission("w", "b1", "0104", "zz", "9962e301"), ShareStatus.MALFORMED),
        (Submission("w", "b1", "0104", "4966bc61", "9962e301", "00"), ShareStatus.MALFORMED),
    ]
    results = verify_shares(session, [s for s, _ in cases])
    assert [r.status for r in results] == [want for _, want in cases]
    assert all(r.work == 0.0 for r in results)
    # a clean job drops the old ones: the block-1 share is stale from then on
    session.notify(["b2", "00" * 32, "00", "00", [], "20000000", "1703a30c", "65000000", True])
    assert verify_shares(session, [BLOCK1_SHARE])[0].status is ShareStatus.STALE


def test_submit_params_are_checked() -> None:
    with pytest.raises(ProofError, match="submit"):
        Submission.from_params(["w", "j", "00"])
    with pytest.raises(ProofError, match="notify"):
        Job.from_notify(["j"], 1)
    with pytest.raises(ProofError, match="prevhash"):
        Job.from_notify(["j", "00", "", "", [], "20000000", "1703a30c", "65000000", True], 1)


def test_poisson_interval_matches_published_values() -> None:
    # Garwood 95 % limits (e.g. Ulm 1990 tables): N=0 → (0, 3.689), N=10 → (4.795, 18.390)
    assert poisson_interval(0) == (0.0, pytest.approx(3.6889, abs=1e-4))
    low, high = poisson_interval(10)
    assert low == pytest.approx(4.7954, abs=1e-4) and high == pytest.approx(18.3904, abs=1e-4)
    with pytest.raises(ProofError):
        poisson_interval(3, confidence=1.5)
    with pytest.raises(ProofError):
        estimate_hashrate(3, 0.0, 1.0)


@pytest.mark.parametrize("mean_shares", [3.0, 40.0, 900.0])
def test_interval_covers_the_true_rate_at_the_stated_confidence(mean_shares: float) -> None:
    """Simulated arrivals: exponential gaps between shares at rate H/w over a window of t seconds."""
    rng = np.random.default_rng(int(mean_shares))
    true_rate, per_share, trials = 1.5e14, 2.0**32 * 65536, 2000
    window = mean_shares * per_share / true_rate
    covered = 0
    for _ in range(trials):
        gaps = rng.exponential(per_share / true_rate, size=int(mean_shares * 3 + 50))
        n = int(np.searchsorted(np.cumsum(gaps), window))
        est = estimate_hashrate(n, window, per_share, confidence=0.95)
        covered += est.low_per_s <= true_rate <= est.high_per_s
    sd = (0.95 * 0.05 / trials) ** 0.5
    assert covered / trials >= 0.95 - 3 * sd  # the exact interval is conservative: ≥ 95 % in theory
