"""Exploit: forged readings slip through a verifier buffer shared by the server's threads.

The attacker knows a registered node's genuine readings (they are public through the proofs
endpoint) and posts them again, mixed with readings of its own choosing that carry random
well-formed signatures, from many threads at once. Verification runs on the server's thread pool
and libsecp256k1 releases the GIL, so a verifier that kept one output buffer per instance could
read another thread's recovered key (the node's) for a forged signature and store the forgery as
the node's. No forged reading may ever be stored.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from metering_helpers import DAY, EPOCH, GPU_ASSET

from drakewell.metering.ingest import MeterStore
from drakewell.metering.readings import MeterDomain, Reading, SignedReading
from drakewell.metering.signing import SECP256K1_HALF_N, FastVerifier, NodeKey, recover_with_eth_account

GENUINE = 64
THREADS = 8
ROUNDS = 40  # per thread; each round posts GENUINE genuine and FORGED_PER_ROUND forged readings
FORGED_PER_ROUND = 64


def second_reading(node: str, seq: int, *, gpu_seconds: int = 1, lease_id: int = 0) -> Reading:
    """A one-second window of its own per seq, so nothing but the signature stops a forgery."""
    start = EPOCH * DAY + seq
    return Reading(node, GPU_ASSET, EPOCH, seq, start, start + 1, 1, gpu_seconds, 0, 0, lease_id)


def random_signature() -> bytes:
    """A canonical (in range, low s) signature that recovers to some random key."""
    r = 1 + secrets.randbelow(2**255)
    s = 1 + secrets.randbelow(SECP256K1_HALF_N - 1)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + secrets.randbelow(2)])


def forged_batch(node: str, first_seq: int) -> list[SignedReading]:
    return [
        SignedReading(second_reading(node, first_seq + k, gpu_seconds=8), random_signature())
        for k in range(FORGED_PER_ROUND)
    ]


def hammer(post: Any, node: str, genuine: list[Any], *, threads: int, rounds: int) -> None:
    """``threads`` clients, each posting ``rounds`` batches of genuine + forged readings."""
    errors: list[BaseException] = []

    def client(t: int) -> None:
        try:
            for k in range(rounds):
                first = GENUINE + 1 + (t * rounds + k) * FORGED_PER_ROUND
                post([*genuine, *forged_batch(node, first)])
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors[0]
    assert not any(w.is_alive() for w in workers)


def test_concurrent_ingest_stores_no_forged_reading(
    store: MeterStore, domain: MeterDomain, gpu_key: NodeKey
) -> None:
    genuine = [gpu_key.sign(second_reading(gpu_key.address, s), domain) for s in range(1, GENUINE + 1)]
    assert store.ingest(genuine).accepted == GENUINE
    started = time.monotonic()
    hammer(store.ingest, gpu_key.address, genuine, threads=THREADS, rounds=ROUNDS)
    assert time.monotonic() - started < 120
    stored = store.signed_readings()
    forged = [s for s in stored if s.reading.seq > GENUINE]
    assert forged == [], f"{len(forged)} forged readings stored as {gpu_key.address}"
    assert stored == genuine
    assert all(recover_with_eth_account(s, domain) == gpu_key.address for s in stored[:4])


def test_one_verifier_shared_by_threads_never_mixes_keys(gpu_key: NodeKey, asic_key: NodeKey) -> None:
    """The verifier itself, shared by threads: each thread gets back the key of its own signature."""
    verifier = FastVerifier()
    digests = [secrets.token_bytes(32) for _ in range(64)]
    jobs = {key.address: [key.sign_digest(d) for d in digests] for key in (gpu_key, asic_key)}
    expected = {node: verifier.recover_many(digests, sigs) for node, sigs in jobs.items()}
    mixed: list[str] = []

    def worker(node: str) -> None:
        for _ in range(60):
            if verifier.recover_many(digests, jobs[node]) != expected[node]:
                mixed.append(node)

    workers = [threading.Thread(target=worker, args=(node,)) for node in jobs for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert mixed == []
