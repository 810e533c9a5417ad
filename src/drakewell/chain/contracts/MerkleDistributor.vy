# pragma version ~=0.4.3
"""
@title MerkleDistributor
@notice Rewards claimable against a Merkle root of (index, account, amount) leaves.
@dev OpenZeppelin StandardMerkleTree leaves: keccak256(keccak256(abi.encode(index, account,
     amount))) with types (uint256, address, uint256); a claimed-bitmap makes every index
     claimable once. Anyone may submit a claim; the tokens always go to the leaf's account.

     Roles: PAUSER_ROLE pauses claims (the deployer holds it and DEFAULT_ADMIN_ROLE); the root
     is fixed at deployment, so no role can change who is owed what.
"""

from ethereum.ercs import IERC20
from snekmate.auth import access_control
from snekmate.utils import merkle_proof_verification as merkle
from snekmate.utils import pausable

initializes: access_control
initializes: pausable

exports: (
    access_control.hasRole,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.DEFAULT_ADMIN_ROLE,
    pausable.paused,
)

PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER_ROLE")

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
    access_control.__init__()
    pausable.__init__()
    access_control._grant_role(PAUSER_ROLE, msg.sender)
    self.token = token_
    self.merkle_root = merkle_root_


@view
@external
def is_claimed(index: uint256) -> bool:
    return (self.claimed_bitmap[index // 256] >> (index % 256)) & 1 == 1


@external
def claim(index: uint256, account: address, amount: uint256, proof: DynArray[bytes32, 64]):
    """@dev Anyone may submit; the leaf's account is paid. Not while paused."""
    pausable._require_not_paused()
    word: uint256 = self.claimed_bitmap[index // 256]
    bit: uint256 = 1 << (index % 256)
    assert word & bit == 0, "MerkleDistributor: already claimed"
    leaf: bytes32 = keccak256(keccak256(abi_encode(index, account, amount)))
    assert merkle._verify(proof, self.merkle_root, leaf), "MerkleDistributor: invalid proof"
    self.claimed_bitmap[index // 256] = word | bit
    self.total_claimed += amount
    assert extcall self.token.transfer(account, amount, default_return_value=True)
    log Claimed(index=index, account=account, amount=amount)


@external
def pause():
    """@notice Stop claims. PAUSER_ROLE only."""
    assert access_control.hasRole[PAUSER_ROLE][msg.sender], "MerkleDistributor: not pauser"
    pausable._pause()


@external
def unpause():
    """@notice PAUSER_ROLE only."""
    assert access_control.hasRole[PAUSER_ROLE][msg.sender], "MerkleDistributor: not pauser"
    pausable._unpause()
