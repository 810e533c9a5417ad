"""Stratum V1 shares: rebuild the block header, check its double SHA-256, estimate hashrate.

A pool sends ``mining.notify`` with ``[job_id, prevhash, coinb1, coinb2, merkle_branch, version,
nbits, ntime, clean_jobs]``; the subscription gave the connection ``extranonce1`` and the size of
``extranonce2``. A miner answers ``mining.submit [worker, job_id, extranonce2, ntime, nonce
(, version_bits)]``. The share is checked the way a pool checks it:

- coinbase = ``coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2`` (bytes of the hex strings);
- merkle root: ``r = SHA256d(coinbase)``, then ``r = SHA256d(r ‖ h)`` for each branch hash ``h``;
- header (80 bytes) = ``version`` (LE) ‖ ``prevhash`` (Stratum's hex is the internal byte order with
  each 4-byte word reversed; reversing each word back gives it) ‖ ``r`` ‖ ``ntime`` (LE) ‖ ``nbits``
  (LE) ‖ ``nonce`` (LE); with version rolling (BIP 310, negotiated by ``mining.configure``) the
  version is ``(job_version & ~mask) | (version_bits & mask)``;
- the share is valid when ``int.from_bytes(SHA256d(header), "little") ≤ target`` where the share
  target at difficulty ``d`` (``mining.set_difficulty``, effective for jobs notified after it) is
  ``floor(0xFFFF·2**208 / d)``, computed on the exact rational value of ``d``.

A share at target ``T`` stands for ``2**256 / (T + 1)`` hashes on average (each hash is below the
target with probability ``(T + 1) / 2**256``). A miner hashing at ``H`` hashes/s for ``t`` seconds
therefore finds ``N ~ Poisson(H·t / w)`` shares of work ``w`` each. The estimate is
``Ĥ = N·w / t`` and its interval at confidence ``1 − α`` is the exact (Garwood) Poisson interval
``[χ²(α/2; 2N)/2, χ²(1−α/2; 2N+2)/2]·w / t``, which covers the true rate with probability at least
``1 − α`` (computed as ``scipy.special.gammaincinv``: ``χ²(q; 2m)/2`` is the inverse regularized
gamma function ``P⁻¹(m, q)``). When the difficulty changes within the window, ``w`` is the mean
work per share (then the interval is approximate).

SHA-256 is hashlib's. :func:`verify_shares` checks a batch of one connection's shares: the
coinbase prefix ``coinb1 ‖ extranonce1`` is hashed once per (job, connection) and its state copied
per share, and the loop keeps hashlib's functions in local names. Accepted headers are remembered
per job, so a resubmitted share is a duplicate; a job dropped by ``clean_jobs`` takes them along
(its shares are stale from then on).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import NamedTuple, TypeAlias

from drakewell.core.errors import ProofError
from drakewell.core.jsontypes import JsonMapping, JsonObject

DIFF1_TARGET = 0xFFFF << 208
MAX_TARGET = (1 << 256) - 1
DEFAULT_VERSION_MASK = 0x1FFFE000  # BIP 310's usual mask

Difficulty: TypeAlias = float | int | str | Fraction
"""A share difficulty as a pool sends it (a JSON number, or its text) or as an exact fraction."""


class ShareStatus(StrEnum):
    ACCEPTED = "accepted"
    INVALID = "invalid"  # hash above the share target
    DUPLICATE = "duplicate"  # the same header was submitted before
    STALE = "stale"  # unknown job id (never sent, or dropped by clean_jobs)
    MALFORMED = "malformed"  # wrong field sizes or hex, or a worker not authorized here


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def target_for_difficulty(difficulty: Difficulty) -> int:
    """Share target ``floor(0xFFFF·2**208 / d)`` on the exact value of ``d`` (capped at 2**256 − 1)."""
    try:
        d = Fraction(difficulty)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        raise ProofError(
            f"difficulty {difficulty!r} is not a number", hint="mining.set_difficulty takes [d]"
        ) from None
    if d <= 0:
        raise ProofError(
            f"difficulty {difficulty!r} is not positive", hint="pools send a positive difficulty"
        )
    return min(MAX_TARGET, math.floor(Fraction(DIFF1_TARGET) / d))


def hashes_per_share(target: int) -> float:
    """Expected hashes per share at ``target``: ``2**256 / (target + 1)``."""
    return float(Fraction(1 << 256, target + 1))


def _unhex(text: object, size: int | None, what: str) -> bytes:
    if not isinstance(text, str):
        raise ProofError(f"{what} {text!r} is not a hex string", hint="Stratum fields are hex strings")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ProofError(f"{what} {text!r} is not hex", hint="Stratum fields are hex strings") from None
    if size is not None and len(raw) != size:
        raise ProofError(f"{what} is {len(raw)} bytes, not {size}", hint="check the miner's extranonce2 size")
    return raw


def _word_swapped(raw: bytes) -> bytes:
    return b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))


@dataclass(frozen=True)
class Job:
    """One ``mining.notify``, decoded, with the share target in force when it arrived."""

    job_id: str
    prevhash: bytes  # header order
    coinb1: bytes
    coinb2: bytes
    branch: tuple[bytes, ...]
    version: int
    nbits: bytes  # header order (LE)
    ntime: int
    clean: bool
    target: int

    @property
    def work(self) -> float:
        """Hashes one share of this job stands for."""
        return hashes_per_share(self.target)

    @classmethod
    def from_notify(cls, params: Sequence[object], target: int) -> Job:
        if not isinstance(params, Sequence) or len(params) < 9:
            raise ProofError(f"mining.notify has {params!r}", hint="notify carries 9 parameters")
        job_id, prevhash, coinb1, coinb2, branch, version, nbits, ntime, clean = params[:9]
        if not isinstance(branch, list):
            raise ProofError(
                f"merkle branch {branch!r} is not a list", hint="notify's 5th parameter is a list"
            )
        return cls(
            job_id=str(job_id),
            prevhash=_word_swapped(_unhex(prevhash, 32, "prevhash")),
            coinb1=_unhex(coinb1, None, "coinb1"),
            coinb2=_unhex(coinb2, None, "coinb2"),
            branch=tuple(_unhex(h, 32, "merkle branch hash") for h in branch),
            version=int.from_bytes(_unhex(version, 4, "version"), "big"),
            nbits=_unhex(nbits, 4, "nbits")[::-1],
            ntime=int.from_bytes(_unhex(ntime, 4, "ntime"), "big"),
            clean=bool(clean),
            target=target,
        )


def build_header(
    job: Job,
    extranonce1: bytes,
    extranonce2: bytes,
    ntime: bytes,
    nonce: bytes,
    version_bits: bytes | None = None,
    version_mask: int = 0,
) -> bytes:
    """The 80-byte header of a share (see module docstring); ``ntime``/``nonce`` as submitted (BE)."""
    root = sha256d(job.coinb1 + extranonce1 + extranonce2 + job.coinb2)
    for h in job.branch:
        root = sha256d(root + h)
    version = job.version
    if version_bits is not None:
        version = (version & ~version_mask) | (int.from_bytes(version_bits, "big") & version_mask)
    return version.to_bytes(4, "little") + job.prevhash + root + ntime[::-1] + job.nbits + nonce[::-1]


@dataclass(frozen=True)
class Submission:
    """The parameters of one ``mining.submit``."""

    worker: str
    job_id: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None = None

    @classmethod
    def from_params(cls, params: object) -> Submission:
        if (
            not isinstance(params, list)
            or len(params) not in (5, 6)
            or not all(isinstance(p, str) for p in params)
        ):
            raise ProofError(
                f"mining.submit params {params!r}",
                hint="submit carries [worker, job_id, extranonce2, ntime, nonce] and optional version bits",
            )
        return cls(*params)

    def to_params(self) -> list[str]:
        out = [self.worker, self.job_id, self.extranonce2, self.ntime, self.nonce]
        return [*out, self.version_bits] if self.version_bits is not None else out


@dataclass(frozen=True)
class ShareResult:
    status: ShareStatus
    work: float  # hashes the share stands for (0 unless accepted)
    reason: str = ""


class _JobState(NamedTuple):
    """What every share of one job on one session reuses (:func:`verify_shares` unpacks it)."""

    prefix: hashlib._Hash  # sha256 state after ``coinb1 ‖ extranonce1``, copied per share
    coinb2: bytes
    branch: tuple[bytes, ...]
    head: bytes  # version ‖ prevhash: the header's start without version rolling
    prevhash: bytes
    nbits: bytes
    target_be: bytes  # digest[::-1] <= this  ⇔  int(digest, little) <= target
    accepted: ShareResult  # the one result every accepted share of the job shares
    seen: set[bytes]  # accepted headers of the job


@dataclass
class Session:
    """What one miner connection negotiated: extranonce, version mask, jobs and difficulty."""

    extranonce1: bytes = b""
    extranonce2_size: int = 4
    version_mask: int = 0
    target: int = DIFF1_TARGET
    jobs: dict[str, Job] = field(default_factory=dict)
    workers: set[str] = field(default_factory=set)
    prefixes: dict[str, _JobState] = field(default_factory=dict)  # job id -> what its shares reuse
    seen: dict[str, set[bytes]] = field(default_factory=dict)  # job id -> accepted headers

    def set_difficulty(self, difficulty: Difficulty) -> None:
        self.target = target_for_difficulty(difficulty)

    def notify(self, params: Sequence[object]) -> Job:
        job = Job.from_notify(params, self.target)
        if job.clean:
            self.jobs.clear()
            self.prefixes.clear()
            self.seen.clear()
        self.prefixes.pop(job.job_id, None)  # a job id sent again may carry new fields
        self.jobs[job.job_id] = job
        return job

    def set_extranonce(self, extranonce1: bytes, size: int) -> None:
        self.extranonce1, self.extranonce2_size = extranonce1, int(size)
        self.prefixes.clear()


def _job_state(session: Session, job: Job) -> _JobState:
    """What every share of ``job`` on this session reuses (see :func:`verify_shares`)."""
    state = session.prefixes.get(job.job_id)
    if state is None:
        state = session.prefixes[job.job_id] = _JobState(
            hashlib.sha256(job.coinb1 + session.extranonce1),
            job.coinb2,
            job.branch,
            job.version.to_bytes(4, "little") + job.prevhash,
            job.prevhash,
            job.nbits,
            job.target.to_bytes(32, "big"),
            ShareResult(ShareStatus.ACCEPTED, job.work),
            session.seen.setdefault(job.job_id, set()),
        )
    return state


def verify_shares(session: Session, subs: Iterable[Submission]) -> list[ShareResult]:
    """Verify shares of one session in order; an accepted header is remembered per job, so a
    second submission of it (in this batch or later) is a duplicate until the job is dropped."""
    sha = hashlib.sha256
    jobs, workers = session.jobs, session.workers
    hex_len = 2 * session.extranonce2_size
    mask = session.version_mask
    out: list[ShareResult] = []
    append = out.append
    for sub in subs:
        job = jobs.get(sub.job_id)
        if job is None:
            append(ShareResult(ShareStatus.STALE, 0.0, f"unknown job {sub.job_id!r}"))
            continue
        if sub.worker not in workers:
            append(ShareResult(ShareStatus.MALFORMED, 0.0, f"worker {sub.worker!r} is not authorized"))
            continue
        vhex = sub.version_bits
        if (
            len(sub.extranonce2) != hex_len
            or len(sub.ntime) != 8
            or len(sub.nonce) != 8
            or (vhex is not None and len(vhex) != 8)
        ):
            append(ShareResult(ShareStatus.MALFORMED, 0.0, "a field has the wrong size"))
            continue
        try:
            raw = bytes.fromhex(sub.extranonce2 + sub.ntime + sub.nonce + (vhex or ""))
        except ValueError:
            append(ShareResult(ShareStatus.MALFORMED, 0.0, "a field is not hex"))
            continue
        prefix, coinb2, branch, head, prevhash, nbits, target_be, accepted, seen = _job_state(session, job)
        n2 = hex_len // 2
        h = prefix.copy()
        h.update(raw[:n2])
        h.update(coinb2)
        root = sha(h.digest()).digest()
        for b in branch:
            root = sha(sha(root + b).digest()).digest()
        if vhex is not None:
            version = (job.version & ~mask) | (int.from_bytes(raw[n2 + 8 :], "big") & mask)
            head = version.to_bytes(4, "little") + prevhash
        header = head + root + raw[n2 : n2 + 4][::-1] + nbits + raw[n2 + 4 : n2 + 8][::-1]
        if sha(sha(header).digest()).digest()[::-1] > target_be:
            append(ShareResult(ShareStatus.INVALID, 0.0, "hash above the share target"))
            continue
        if header in seen:
            append(ShareResult(ShareStatus.DUPLICATE, 0.0, "share submitted before"))
            continue
        seen.add(header)
        append(accepted)
    return out


@dataclass(frozen=True)
class HashrateEstimate:
    """Hashrate from accepted shares over a window, with its exact Poisson interval."""

    shares: int
    work_hashes: float
    seconds: float
    confidence: float
    hashes_per_s: float
    low_per_s: float
    high_per_s: float

    def to_json(self) -> JsonObject:
        return {
            "shares": self.shares,
            "workHashes": self.work_hashes,
            "seconds": self.seconds,
            "confidence": self.confidence,
            "hashesPerSecond": self.hashes_per_s,
            "lowPerSecond": self.low_per_s,
            "highPerSecond": self.high_per_s,
        }


@functools.lru_cache(maxsize=4096)
def poisson_interval(count: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson mean from one observed ``count`` (memoized: pure)."""
    # χ²(q; 2m)/2 = P⁻¹(m, q), the inverse regularized gamma; scipy.special takes seconds to import,
    # so it loads with the first interval (checking shares never needs it)
    from scipy.special import gammaincinv

    if count < 0:
        raise ProofError(f"share count {count} is negative", hint="count accepted shares")
    if not 0 < confidence < 1:
        raise ProofError(f"confidence {confidence} is not in (0, 1)", hint="use e.g. 0.95")
    alpha = 1.0 - confidence
    low = 0.0 if count == 0 else float(gammaincinv(count, alpha / 2))
    high = float(gammaincinv(count + 1, 1 - alpha / 2))
    return low, high


def estimate_hashrate(
    shares: int, seconds: float, hashes_per_share_mean: float, confidence: float = 0.95
) -> HashrateEstimate:
    """``Ĥ = N·w/t`` and the interval of the module docstring (``w`` the mean work per share)."""
    if not seconds > 0:
        raise ProofError(
            f"window of {seconds} s is not positive", hint="estimate over a window that has begun"
        )
    if not hashes_per_share_mean > 0:
        raise ProofError("work per share is not positive", hint="pass 2**256 / (target + 1)")
    low, high = poisson_interval(int(shares), confidence)
    scale = hashes_per_share_mean / seconds
    return HashrateEstimate(
        int(shares),
        shares * hashes_per_share_mean,
        float(seconds),
        confidence,
        shares * scale,
        low * scale,
        high * scale,
    )


def submissions_from_json(items: Sequence[JsonMapping]) -> list[Submission]:
    return [Submission.from_params(item["params"]) for item in items]
