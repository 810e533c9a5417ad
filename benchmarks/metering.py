"""Metering benchmark: verification, ingest, and Merkle roots, on the same signed readings.

Figures, each beside its target and its ratio to an anchor measured in the same run:

- ``verify_per_s``: readings fully verified per second by the fast path (EIP-712 digest from
  the precomputed type hash and domain separator, libsecp256k1 public-key recovery, signer
  check); anchor ``verify_eth_account_per_s``: eth-account's ``encode_typed_data`` +
  ``Account.recover_message`` on the same readings with eth-keys' pure-Python backend (the plain
  eth-account path). Target ratio ≥ 50×. Also printed: the same eth-account path when eth-keys
  uses coincurve (``verify_eth_account_coincurve_per_s``; eth-keys picks it whenever coincurve is
  installed, so the ratio to it is what the EIP-712 encoding costs), and the bare libsecp256k1
  recovery rate (``recover_ceiling_per_s``), the ceiling of any recovery-based path on this core.
- ``ingest_per_s``: ``MeterStore.ingest`` on one core including every check (signature, window,
  capacity, lease terms, overlapping windows per node) and storage (SQLite file, WAL,
  ``synchronous=FULL``, the store's WAL checkpoint every 10,000 pages, one transaction per
  5,000-reading batch). Target ≥ 20,000/s.
- ``root_1m_seconds``: readings-tree root of 1,000,000 readings (NumPy-packed ``abi.encode``,
  double keccak per leaf, sort, tree), leaves hashed by forked workers, one per core. Target ≤ 5 s.
  ``root_1m_one_core_seconds``: the same on one core. Anchor: the per-leaf ``eth_abi`` path with the
  reference pairwise loop, timed on 50,000 leaves and scaled linearly.
- ``proof_len_2p20``: proof length in a tree of 2**20 leaves (20 expected).

Usage: ``python benchmarks/metering.py [--json OUT] [--readings N]``. Exits 1 when a target is
missed. The machine's load average is printed: figures are per core and fall under load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

VERIFY_RATIO_TARGET = 50.0
INGEST_TARGET = 20_000.0
ROOT_TARGET_S = 5.0
ETH_ACCOUNT_SAMPLE = 300
ANCHOR_LEAVES = 50_000
NATIVE_BACKEND = "eth_keys.backends.NativeECCBackend"
COINCURVE_BACKEND = "eth_keys.backends.CoinCurveECCBackend"


def _signed_readings(n: int, n_nodes: int = 200) -> tuple[Any, Any, list[Any]]:
    from drakewell.metering.ingest import NodeSpec
    from drakewell.metering.readings import MeterDomain, Reading, asset_id
    from drakewell.metering.signing import NodeKey

    domain = MeterDomain(31337, "0x5fbdb2315678afecb367f032d93f642f64180aa3")
    asset = asset_id("bench:gpu-pool")
    keys = [NodeKey((10_000 + i).to_bytes(32, "big")) for i in range(n_nodes)]
    specs = [NodeSpec(k.address, asset, "gpu", gpus=8, gpu_w=1_200.0) for k in keys]
    rng = np.random.default_rng(0)
    epoch = 20_270
    out = []
    for i in range(n):
        k = keys[i % n_nodes]
        seq = i // n_nodes + 1
        start = epoch * 86_400 + (seq - 1) * 60
        r = Reading(
            k.address,
            asset,
            epoch,
            seq,
            start,
            start + 60,
            int(rng.integers(50, 150)),
            480,
            0,
            int(rng.integers(0, 500_000)),
            int(i % 7),
        )
        out.append(k.sign(r, domain))
    return domain, specs, out


def _time_verify_fast(domain: Any, signed: list[Any]) -> float:
    from drakewell.metering.signing import FastVerifier

    verifier = FastVerifier()
    digest = domain.digest
    t0 = time.perf_counter()
    ok = 0
    for s in signed:
        ok += verifier.is_signed_by(s.reading.node, digest(s.reading), s.signature)
    elapsed = time.perf_counter() - t0
    assert ok == len(signed)
    return len(signed) / elapsed


def _time_verify_eth_account(domain: Any, signed: list[Any], backend: str) -> float:
    """eth-account's path with eth-keys' ``backend`` (it reads ECC_BACKEND_CLASS on every call)."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    before = os.environ.get("ECC_BACKEND_CLASS")
    os.environ["ECC_BACKEND_CLASS"] = backend
    try:
        t0 = time.perf_counter()
        for s in signed:
            message = encode_typed_data(full_message=domain.typed_data(s.reading))
            assert Account.recover_message(message, signature=s.signature).lower() == s.reading.node
        return len(signed) / (time.perf_counter() - t0)
    finally:
        if before is None:
            del os.environ["ECC_BACKEND_CLASS"]
        else:
            os.environ["ECC_BACKEND_CLASS"] = before


def _time_bare_recover(domain: Any, signed: list[Any]) -> float:
    from coincurve._libsecp256k1 import ffi, lib
    from coincurve.context import GLOBAL_CONTEXT

    ctx = GLOBAL_CONTEXT.ctx
    parsed = []
    for s in signed:
        rsig = ffi.new("secp256k1_ecdsa_recoverable_signature *")
        lib.secp256k1_ecdsa_recoverable_signature_parse_compact(
            ctx, rsig, s.signature[:64], s.signature[64] - 27
        )
        parsed.append((rsig, domain.digest(s.reading)))
    pub = ffi.new("secp256k1_pubkey *")
    t0 = time.perf_counter()
    for rsig, digest in parsed:
        lib.secp256k1_ecdsa_recover(ctx, pub, rsig, digest)
    return len(parsed) / (time.perf_counter() - t0)


def _time_ingest(domain: Any, specs: list[Any], signed: list[Any]) -> float:
    from drakewell.metering.ingest import LeaseTerms, MeterStore
    from drakewell.store import sqlite_url

    with tempfile.TemporaryDirectory() as tmp:
        store = MeterStore(sqlite_url(Path(tmp) / "bench.sqlite"), domain)
        store.register_nodes(specs)
        epoch = signed[0].reading.epoch  # the readings' leases 1-6: 8 GPUs over the whole epoch
        store.register_leases(
            LeaseTerms(lid, specs[0].asset, 8, epoch * 86_400, (epoch + 1) * 86_400) for lid in range(1, 7)
        )
        t0 = time.perf_counter()
        for lo in range(0, len(signed), 5_000):
            result = store.ingest(signed[lo : lo + 5_000])
            assert result.accepted == len(signed[lo : lo + 5_000]), result.rejected[:3]
        elapsed = time.perf_counter() - t0
        assert store.count() == len(signed)
        store.engine.dispose()
    return len(signed) / elapsed


def _reading_columns(n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    nodes = ["0x" + rng.bytes(20).hex() for _ in range(1_000)]
    node_col = [nodes[i % 1_000] for i in range(n)]
    asset = [b"\x11" * 32] * n
    seq = np.arange(1, n + 1, dtype=np.uint64)
    start = np.uint64(20_270 * 86_400) + (seq % np.uint64(1_440)) * np.uint64(60)
    ints = [rng.integers(0, 10**6, n).astype(np.uint64) for _ in range(4)]
    lease = rng.integers(0, 50, n).astype(np.uint64)
    return [node_col, asset, np.full(n, 20_270, np.uint64), seq, start, start + np.uint64(60), *ints, lease]


def _time_root(n: int, *, one_core: bool = False) -> tuple[float, list[bytes]]:
    import drakewell.core.merkle as merkle
    from drakewell.metering.readings import READING_LEAF_TYPES

    cols = _reading_columns(n, seed=1)
    threshold = merkle.PARALLEL_MIN_LEAVES
    if one_core:
        merkle.PARALLEL_MIN_LEAVES = n + 1
    try:
        t0 = time.perf_counter()
        leaves = merkle.leaf_hashes_static(READING_LEAF_TYPES, cols)
        tree = merkle.MerkleTree.from_leaf_hashes(leaves)
        elapsed = time.perf_counter() - t0
    finally:
        merkle.PARALLEL_MIN_LEAVES = threshold
    assert len(tree.root) == 32
    return elapsed, leaves


def _time_root_anchor(n: int) -> float:
    from drakewell.core.merkle import hash_pair, leaf_hash
    from drakewell.metering.readings import READING_LEAF_TYPES

    cols = _reading_columns(n, seed=2)
    rows = [[c[i] if not isinstance(c, np.ndarray) else int(c[i]) for c in cols] for i in range(n)]
    t0 = time.perf_counter()
    ordered = sorted(leaf_hash(READING_LEAF_TYPES, row) for row in rows)
    tree: list[bytes] = [b""] * (2 * n - 1)
    for i, h in enumerate(ordered):
        tree[len(tree) - 1 - i] = h
    for i in range(len(tree) - 1 - n, -1, -1):
        tree[i] = hash_pair(tree[2 * i + 1], tree[2 * i + 2])
    return time.perf_counter() - t0


def _proof_len_2p20(leaves: list[bytes]) -> int:
    from drakewell.core.merkle import MerkleTree, keccak256

    n = 2**20
    hashes = leaves[:n] + [keccak256(i.to_bytes(8, "big")) for i in range(n - len(leaves[:n]))]
    tree = MerkleTree.from_leaf_hashes(hashes)
    lengths = {len(tree.proof(hashes[i])) for i in range(0, n, n // 64)}
    assert len(lengths) == 1, lengths  # a full tree: every proof is the same length
    return lengths.pop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--readings", type=int, default=40_000, help="signed readings for verify/ingest")
    args = parser.parse_args(argv)

    load = os.getloadavg()
    print(
        f"machine: {platform.machine()} {platform.system()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    domain, specs, signed = _signed_readings(args.readings)
    print(f"{len(signed):,} signed readings from {len(specs)} nodes\n")

    verify = _time_verify_fast(domain, signed)
    verify_eth = _time_verify_eth_account(domain, signed[:ETH_ACCOUNT_SAMPLE], NATIVE_BACKEND)
    verify_eth_cc = _time_verify_eth_account(domain, signed[:ETH_ACCOUNT_SAMPLE], COINCURVE_BACKEND)
    ceiling = _time_bare_recover(domain, signed[:10_000])
    ingest = _time_ingest(domain, specs, signed)
    root_s, leaves = _time_root(1_000_000)
    root_one_core_s, _ = _time_root(1_000_000, one_core=True)
    anchor_s = _time_root_anchor(ANCHOR_LEAVES) * (1_000_000 / ANCHOR_LEAVES)
    proof_len = _proof_len_2p20(leaves)

    ratio = verify / verify_eth
    checks = [
        ("verify fast / eth-account", ratio >= VERIFY_RATIO_TARGET),
        ("ingest per second", ingest >= INGEST_TARGET),
        ("root of 1M leaves", root_s <= ROOT_TARGET_S),
        ("proof length 2^20", proof_len == 20),
    ]
    print(
        f"verify_per_s              {verify:>12,.0f}   ratio to the anchor {ratio:,.1f}x "
        f"(target >= {VERIFY_RATIO_TARGET:.0f}x); {verify / verify_eth_cc:,.1f}x eth-account on coincurve"
    )
    print(
        f"verify_eth_account_per_s  {verify_eth:>12,.0f}   anchor: eth-account, pure-Python eth-keys backend"
    )
    print(f"  ... on coincurve        {verify_eth_cc:>12,.0f}   eth-account when eth-keys uses coincurve")
    print(f"recover_ceiling_per_s     {ceiling:>12,.0f}   bare libsecp256k1 recovery, nothing else")
    print(
        f"ingest_per_s              {ingest:>12,.0f}   target >= {INGEST_TARGET:,.0f}/s "
        f"({ingest / INGEST_TARGET:.2f} of target; {ingest / ceiling:.2f} of the recovery ceiling)"
    )
    print(
        f"root_1m_seconds           {root_s:>12.2f}   target <= {ROOT_TARGET_S:.0f} s; anchor "
        f"(eth_abi per leaf, reference loop, scaled from {ANCHOR_LEAVES:,}) {anchor_s:.1f} s, "
        f"ratio {anchor_s / root_s:.1f}x"
    )
    print(f"root_1m_one_core_seconds  {root_one_core_s:>12.2f}   the same on one core")
    print(f"proof_len_2p20            {proof_len:>12d}   expected 20")
    for name, ok in checks:
        print(f"  {'PASS' if ok else 'MISS'} {name}")
    figures = {
        "verify_per_s": round(verify, 1),
        "verify_eth_account_per_s": round(verify_eth, 1),
        "verify_ratio": round(ratio, 2),
        "verify_eth_account_coincurve_per_s": round(verify_eth_cc, 1),
        "recover_ceiling_per_s": round(ceiling, 1),
        "ingest_per_s": round(ingest, 1),
        "root_1m_seconds": round(root_s, 3),
        "root_1m_one_core_seconds": round(root_one_core_s, 3),
        "root_1m_anchor_seconds": round(anchor_s, 2),
        "proof_len_2p20": proof_len,
        "targets": {
            "verify_ratio": VERIFY_RATIO_TARGET,
            "ingest_per_s": INGEST_TARGET,
            "root_1m_seconds": ROOT_TARGET_S,
            "proof_len_2p20": 20,
        },
        "load_average": list(load),
        "readings": len(signed),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
