from decimal import Decimal

import pytest

from drakewell.core.errors import DrakewellError, SiteError
from drakewell.core.merkle import MerkleError, MerkleTree, leaf_hash, verify_proof
from drakewell.core.units import USD, mul_div_floor, usd_to_base


def test_usd_to_base_rounds_half_even_on_exact_decimals() -> None:
    assert usd_to_base("2.00") == 2 * USD
    assert usd_to_base(0.1) == 100_000
    assert usd_to_base(Decimal("0.0000005")) == 0  # half to even
    assert usd_to_base(Decimal("0.0000015")) == 2


def test_mul_div_floor_never_rounds_up() -> None:
    assert mul_div_floor(10, 1, 3) == 3
    with pytest.raises(ZeroDivisionError):
        mul_div_floor(1, 1, 0)


def test_errors_carry_a_hint() -> None:
    err = SiteError("fleet 'x' is too big", hint="lower count")
    assert isinstance(err, DrakewellError)
    assert str(err) == "fleet 'x' is too big (hint: lower count)"


# Root and proof produced by @openzeppelin/merkle-tree 1.0.8 for the same values.
OZ_ROOT = "e264190c3e22d981e46853866509a7576d5037da794a48ed577d392cc9a9b415"
OZ_PROOF_0 = ["1d079e8489684395a2a7a25ec7ee7c2b84871c4c44e8105ffef65c5b40526c88"]


def test_merkle_matches_openzeppelin() -> None:
    types = ["address", "uint256"]
    rows = [
        ["0x1111111111111111111111111111111111111111", 5 * 10**18],
        ["0x2222222222222222222222222222222222222222", 25 * 10**17],
        ["0x3333333333333333333333333333333333333333", 7],
    ]
    tree = MerkleTree.of(types, rows)
    assert tree.root.hex() == OZ_ROOT
    leaf0 = leaf_hash(types, rows[0])
    assert [p.hex() for p in tree.proof(leaf0)] == OZ_PROOF_0
    for row in rows:
        leaf = leaf_hash(types, row)
        assert verify_proof(tree.root, leaf, tree.proof(leaf))
    assert not verify_proof(tree.root, leaf_hash(types, [rows[0][0], 6]), tree.proof(leaf0))
    with pytest.raises(MerkleError):
        tree.proof(b"\x00" * 32)
    with pytest.raises(MerkleError):
        MerkleTree.from_leaf_hashes([])
