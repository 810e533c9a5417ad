import pytest
from chain_helpers import USD, World

from drakewell.chain import ContractReverted
from drakewell.core.merkle import MerkleTree, leaf_hash

TYPES = ["uint256", "address", "uint256"]


def test_claims_once_each_with_a_valid_proof(w: World) -> None:
    rows = [[0, w.alice, 50 * USD], [1, w.bob, 25 * USD], [2, w.outsider, 7]]
    tree = MerkleTree.of(TYPES, rows)
    d = w.chain.deploy_distributor(w.market.usd.address, tree.root)
    w.market.usd.mint(d.address, 75 * USD + 7)
    proof = tree.proof(leaf_hash(TYPES, rows[1]))
    with pytest.raises(ContractReverted, match="invalid proof"):
        d.claim(1, w.bob, 26 * USD, proof, sender=w.bob)
    with pytest.raises(ContractReverted, match="invalid proof"):
        d.claim(1, w.alice, 25 * USD, proof, sender=w.alice)
    d.claim(1, w.bob, 25 * USD, proof, sender=w.alice)  # anyone may submit; bob is paid
    assert w.market.usd.balance_of(w.bob) == 25 * USD and d.is_claimed(1) and not d.is_claimed(0)
    with pytest.raises(ContractReverted, match="already claimed"):
        d.claim(1, w.bob, 25 * USD, proof, sender=w.bob)
