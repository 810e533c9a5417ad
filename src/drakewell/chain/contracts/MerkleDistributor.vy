# pragma version ~=0.4.3
"""
@title MerkleDistributor
@notice Rewards claimable against a Merkle root of (index, account, amount) leaves.
@dev OpenZeppelin StandardMerkleTree leaves: keccak256(keccak256(abi.encode(index, account,
     amount))) with types (uint256, address, uint256); a claimed-bitmap makes every index
     claimable once. Anyone may submit a claim; the tokens always go to the leaf's account.
"""

from ethereum.ercs import IERC20
from snekmate.utils import merkle_proof_verification as merkle

token: public(IERC20)
merkle_root: public(bytes32)
claimed_bitmap: HashMap[uint256, uint256]
total_claimed: public(uint256)


event Claimed:
    index: indexed(uint256)
    account: indexed(address)
    amount: uint256


@deploy
def __init__(token_: IERC20, merkle_root_: bytes32):
    self.token = token_
    self.merkle_root = merkle_root_


@view
@external
def is_claimed(index: uint256) -> bool:
    return (self.claimed_bitmap[index // 256] >> (index % 256)) & 1 == 1


@external
def claim(index: uint256, account: address, amount: uint256, proof: DynArray[bytes32, 64]):
    word: uint256 = self.claimed_bitmap[index // 256]
    bit: uint256 = 1 << (index % 256)
    assert word & bit == 0, "MerkleDistributor: already claimed"
    leaf: bytes32 = keccak256(keccak256(abi_encode(index, account, amount)))
    assert merkle._verify(proof, self.merkle_root, leaf), "MerkleDistributor: invalid proof"
    self.claimed_bitmap[index // 256] = word | bit
    self.total_claimed += amount
    assert extcall self.token.transfer(account, amount, default_return_value=True)
    log Claimed(index=index, account=account, amount=amount)
