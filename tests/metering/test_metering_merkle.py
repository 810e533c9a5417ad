"""Epoch trees: fast leaves equal eth_abi's, roots equal hand-built trees and OpenZeppelin's JS."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drakewell.core.merkle import (
    MerkleError,
    MerkleTree,
    hash_pair,
    keccak256,
    leaf_hash,
    leaf_hashes_static,
    verify_proof,
)
from drakewell.metering.epochs import Delivery
from drakewell.metering.readings import DELIVERY_LEAF_TYPES, READING_LEAF_TYPES, Reading

REPO = Path(__file__).resolve().parents[2]
OZ = REPO / "node_modules" / "@openzeppelin" / "merkle-tree"


def _readings(n: int, seed: int = 0) -> list[Reading]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        start = 20_270 * 86_400 + i * 300
        out.append(
            Reading(
                "0x" + rng.bytes(20).hex(),
                rng.bytes(32),
                20_270,
                i + 1,
                start,
                start + 300,
                int(rng.integers(0, 10**6)),
                int(rng.integers(0, 10**4)),
                int(rng.integers(0, 10**9)),
                int(rng.integers(0, 10**9)),
                int(rng.integers(0, 2**62)) * 2**190,  # a lease id beyond 64 bits
            )
        )
    return out


def test_fast_leaves_equal_eth_abi_leaves() -> None:
    readings = _readings(50)
    cols = [list(c) for c in zip(*(r.values() for r in readings), strict=True)]
    fast = leaf_hashes_static(READING_LEAF_TYPES, cols)
    assert fast == [leaf_hash(READING_LEAF_TYPES, r.values()) for r in readings]
    assert fast == [r.leaf() for r in readings]
    d = Delivery(2**255, bytes(range(32)), 7, 3_600, 900)
    assert d.leaf() == leaf_hash(DELIVERY_LEAF_TYPES, d.values())


def test_fast_leaves_refuse_values_their_type_cannot_hold() -> None:
    with pytest.raises(MerkleError, match="out of range"):
        leaf_hashes_static(["uint64"], [[2**64]])
    with pytest.raises(MerkleError, match="not 20 bytes"):
        leaf_hashes_static(["address"], [["0x1234"]])
    with pytest.raises(MerkleError, match="no fast static encoding"):
        leaf_hashes_static(["string"], [["x"]])
    with pytest.raises(MerkleError, match="one column per type"):
        leaf_hashes_static(["uint256", "uint256"], [[1]])


def test_roots_equal_hand_computed_trees() -> None:
    a, b, c = (keccak256(bytes([i])) for i in range(3))
    assert MerkleTree.from_leaf_hashes([a]).root == a
    assert MerkleTree.from_leaf_hashes([a, b]).root == keccak256(min(a, b) + max(a, b))
    # three leaves, OpenZeppelin layout: sorted s0<s1<s2 sit at tree[4], tree[3], tree[2];
    # node 1 = H(s0, s1) and the root = H(node 1, s2)
    s0, s1, s2 = sorted([a, b, c])
    three = MerkleTree.from_leaf_hashes([c, a, b])
    assert three.root == hash_pair(hash_pair(s0, s1), s2)
    assert three.proof(s2) == [hash_pair(s0, s1)]
    assert three.proof(s0) == [s1, s2]


def test_large_tree_equals_the_reference_construction() -> None:
    hashes = [keccak256(i.to_bytes(4, "big")) for i in range(5_001)]  # above the NumPy sort threshold
    ordered = sorted(hashes)
    tree: list[bytes] = [b""] * (2 * len(ordered) - 1)
    for i, h in enumerate(ordered):
        tree[len(tree) - 1 - i] = h
    for i in range(len(tree) - 1 - len(ordered), -1, -1):
        tree[i] = hash_pair(tree[2 * i + 1], tree[2 * i + 2])
    fast = MerkleTree.from_leaf_hashes(hashes)
    assert fast.tree == tuple(tree)
    for h in hashes[::997]:
        assert verify_proof(fast.root, h, fast.proof(h))


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, 11), byte=st.integers(0, 351), flip=st.integers(1, 255))
def test_any_changed_byte_breaks_the_proof(index: int, byte: int, flip: int) -> None:
    readings = _readings(12, seed=3)
    tree = MerkleTree.from_leaf_hashes([r.leaf() for r in readings])
    target = readings[index]
    proof = tree.proof(target.leaf())
    encoded = bytearray(target.encode())
    assert verify_proof(tree.root, keccak256(keccak256(bytes(encoded))), proof)
    encoded[byte] ^= flip
    assert not verify_proof(tree.root, keccak256(keccak256(bytes(encoded))), proof)


def _node_or_fail() -> str:
    node = shutil.which("node")
    if node is None or not (OZ / "package.json").exists():
        pytest.fail(
            "node and node_modules/@openzeppelin/merkle-tree are needed to cross-check roots: run `make node`"
        )
    return node


def _oz(values: list[list[Any]], types: list[str], index: int) -> dict[str, Any]:
    script = (
        "const {StandardMerkleTree} = require('@openzeppelin/merkle-tree');"
        "const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "const t = StandardMerkleTree.of(input.values, input.types);"
        "console.log(JSON.stringify({root: t.root, proof: t.getProof(input.index)}));"
    )
    payload = json.dumps({"values": values, "types": types, "index": index})
    done = subprocess.run(
        [_node_or_fail(), "-e", script], input=payload, capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _json_values(values: tuple[Any, ...]) -> list[Any]:
    return ["0x" + v.hex() if isinstance(v, bytes) else v if isinstance(v, str) else str(v) for v in values]


def test_readings_root_and_proof_equal_openzeppelin_js() -> None:
    readings = _readings(7, seed=11)
    tree = MerkleTree.from_leaf_hashes([r.leaf() for r in readings])
    oz = _oz([_json_values(r.values()) for r in readings], list(READING_LEAF_TYPES), 4)
    assert oz["root"] == "0x" + tree.root.hex()
    assert oz["proof"] == ["0x" + p.hex() for p in tree.proof(readings[4].leaf())]


def test_deliveries_root_equals_openzeppelin_js() -> None:
    deliveries = [
        Delivery(lid, bytes([lid % 251]) * 32, 20_270, lid * 3_600, lid * 700) for lid in (1, 2, 3, 10, 2**70)
    ]
    tree = MerkleTree.from_leaf_hashes([d.leaf() for d in deliveries])
    oz = _oz([_json_values(d.values()) for d in deliveries], list(DELIVERY_LEAF_TYPES), 3)
    assert oz["root"] == "0x" + tree.root.hex()
    assert oz["proof"] == ["0x" + p.hex() for p in tree.proof(deliveries[3].leaf())]


def test_forked_leaf_hashing_equals_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    import drakewell.core.merkle as merkle

    readings = _readings(301, seed=5)
    cols = [list(c) for c in zip(*(r.values() for r in readings), strict=True)]
    serial = leaf_hashes_static(READING_LEAF_TYPES, cols)
    monkeypatch.setattr(merkle, "_parallel_workers", lambda n: 3)
    assert leaf_hashes_static(READING_LEAF_TYPES, cols) == serial
    assert merkle._FORK_INPUT is None  # nothing left behind for later forks
