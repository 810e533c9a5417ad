# pragma version ~=0.4.3
"""
@title ComputeShare
@notice Shares of one tokenized compute asset (e.g. a GPU pool), with compliance and revenue.
@dev Compliance (ERC-3643's intent without its weight): shares move, are minted to and are
     received only by allowlisted, unfrozen addresses, and not while paused. The compliance
     role manages the allowlist and freezes; the issuer role mints; the pauser role pauses.

     Revenue: stablecoin deposited by `distribute` is shared pro rata with O(1) gas whatever
     the number of holders. `acc` is revenue per share scaled by PRECISION; each holder is
     checkpointed on every balance change (`owed_scaled += balance * (acc - paid)`), and
     `claim` pays `owed_scaled // PRECISION`, keeping the remainder. Rounding only ever
     rounds down, so the sum paid never exceeds the sum deposited; the dust left is below one
     base unit per holder plus one per distribution (the floor of `amount * PRECISION // supply`).
"""

from ethereum.ercs import IERC20
from snekmate.auth import access_control
from snekmate.auth import ownable
from snekmate.tokens import erc20
from snekmate.utils import pausable

initializes: ownable
initializes: erc20[ownable := ownable]
initializes: access_control
initializes: pausable

exports: (
    erc20.balanceOf,
    erc20.totalSupply,
    erc20.allowance,
    erc20.approve,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    access_control.hasRole,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.DEFAULT_ADMIN_ROLE,
    pausable.paused,
)

PRECISION: constant(uint256) = 10**36
COMPLIANCE_ROLE: public(constant(bytes32)) = keccak256("COMPLIANCE_ROLE")
ISSUER_ROLE: public(constant(bytes32)) = keccak256("ISSUER_ROLE")
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER_ROLE")

usd: public(IERC20)
asset_id: public(bytes32)
allowlisted: public(HashMap[address, bool])
frozen: public(HashMap[address, bool])

acc: public(uint256)
paid: HashMap[address, uint256]
owed_scaled: HashMap[address, uint256]
total_distributed: public(uint256)
total_claimed: public(uint256)


event Allowlisted:
    account: indexed(address)
    status: bool


event Frozen:
    account: indexed(address)
    status: bool


event RevenueDistributed:
    sender: indexed(address)
    amount: uint256
    acc: uint256


event RevenueClaimed:
    holder: indexed(address)
    amount: uint256


@deploy
def __init__(name_: String[25], symbol_: String[5], usd_: IERC20, asset_id_: bytes32):
    ownable.__init__()
    erc20.__init__(name_, symbol_, 18, name_, "1")
    access_control.__init__()
    pausable.__init__()
    self.usd = usd_
    self.asset_id = asset_id_
    access_control._grant_role(COMPLIANCE_ROLE, msg.sender)
    access_control._grant_role(ISSUER_ROLE, msg.sender)
    access_control._grant_role(PAUSER_ROLE, msg.sender)


@internal
def _check_parties(owner: address, to: address):
    pausable._require_not_paused()
    assert self.allowlisted[owner], "ComputeShare: sender not allowlisted"
    assert self.allowlisted[to], "ComputeShare: receiver not allowlisted"
    assert not self.frozen[owner], "ComputeShare: sender frozen"
    assert not self.frozen[to], "ComputeShare: receiver frozen"


@internal
def _checkpoint(holder: address):
    acc: uint256 = self.acc
    self.owed_scaled[holder] += erc20.balanceOf[holder] * (acc - self.paid[holder])
    self.paid[holder] = acc


@external
def transfer(to: address, amount: uint256) -> bool:
    self._check_parties(msg.sender, to)
    self._checkpoint(msg.sender)
    self._checkpoint(to)
    erc20._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self._check_parties(owner, to)
    assert self.allowlisted[msg.sender], "ComputeShare: spender not allowlisted"
    self._checkpoint(owner)
    self._checkpoint(to)
    erc20._spend_allowance(owner, msg.sender, amount)
    erc20._transfer(owner, to, amount)
    return True


@external
def mint(to: address, amount: uint256):
    assert access_control.hasRole[ISSUER_ROLE][msg.sender], "ComputeShare: not issuer"
    pausable._require_not_paused()
    assert self.allowlisted[to], "ComputeShare: receiver not allowlisted"
    assert not self.frozen[to], "ComputeShare: receiver frozen"
    self._checkpoint(to)
    erc20._mint(to, amount)


@external
def set_allowlisted(account: address, status: bool):
    assert access_control.hasRole[COMPLIANCE_ROLE][msg.sender], "ComputeShare: not compliance"
    assert status or erc20.balanceOf[account] == 0, "ComputeShare: holder still has shares"
    self.allowlisted[account] = status
    log Allowlisted(account=account, status=status)


@external
def set_frozen(account: address, status: bool):
    assert access_control.hasRole[COMPLIANCE_ROLE][msg.sender], "ComputeShare: not compliance"
    self.frozen[account] = status
    log Frozen(account=account, status=status)


@external
def pause():
    assert access_control.hasRole[PAUSER_ROLE][msg.sender], "ComputeShare: not pauser"
    pausable._pause()


@external
def unpause():
    assert access_control.hasRole[PAUSER_ROLE][msg.sender], "ComputeShare: not pauser"
    pausable._unpause()


@external
def distribute(amount: uint256):
    """@notice Deposit `amount` stablecoin base units of revenue for the current holders."""
    supply: uint256 = erc20.totalSupply
    assert supply > 0, "ComputeShare: no shares to pay"
    assert amount > 0, "ComputeShare: nothing to distribute"
    assert extcall self.usd.transferFrom(msg.sender, self, amount, default_return_value=True)
    self.acc += amount * PRECISION // supply
    self.total_distributed += amount
    log RevenueDistributed(sender=msg.sender, amount=amount, acc=self.acc)


@view
@external
def claimable(holder: address) -> uint256:
    pending: uint256 = erc20.balanceOf[holder] * (self.acc - self.paid[holder])
    return (self.owed_scaled[holder] + pending) // PRECISION


@external
def claim() -> uint256:
    """@notice Pay the caller its revenue share (frozen holders cannot claim until unfrozen)."""
    assert not self.frozen[msg.sender], "ComputeShare: sender frozen"
    self._checkpoint(msg.sender)
    amount: uint256 = self.owed_scaled[msg.sender] // PRECISION
    if amount == 0:
        return 0
    self.owed_scaled[msg.sender] -= amount * PRECISION
    self.total_claimed += amount
    assert extcall self.usd.transfer(msg.sender, amount, default_return_value=True)
    log RevenueClaimed(holder=msg.sender, amount=amount)
    return amount
