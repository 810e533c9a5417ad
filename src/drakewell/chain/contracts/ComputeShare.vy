# pragma version ~=0.4.3
"""
@title ComputeShare
@notice Shares of one tokenized compute asset (e.g. a GPU pool), with compliance and revenue.
@dev Compliance (ERC-3643's intent without its weight): shares move, are minted to and are
     received only by allowlisted, unfrozen addresses, and not while paused; an allowance is
     spent only by an allowlisted, unfrozen spender. The compliance role manages the allowlist,
     freezes and the lending vaults that may hold collateral (`add_vault`); a holder whose
     shares sit as collateral in such a vault stays on the allowlist until they are withdrawn
     or seized (the vaults themselves refuse frozen or de-allowlisted accounts).

     Roles: ISSUER_ROLE mints; COMPLIANCE_ROLE allowlists, freezes and adds vaults;
     PAUSER_ROLE pauses share movement (transfer, transferFrom, mint: so also vault deposits,
     withdrawals and liquidations), never revenue (distribute, claim); REVENUE_ROLE (the lease
     escrow) deposits revenue that counts as verified; DEFAULT_ADMIN_ROLE grants roles.

     Revenue: stablecoin deposited by `distribute` is shared pro rata with O(1) gas whatever
     the number of holders (a magnified revenue-per-share accumulator with per-holder
     corrections). `acc` is revenue per share scaled by PRECISION; holder h has earned
         earned(h) = floor((acc * balance(h) + correction(h)) / PRECISION)
     and may claim `earned(h) - withdrawn(h)`. Every balance change keeps earned(h) unchanged
     by moving `acc * amount` between the parties' corrections (a mint subtracts it from the
     receiver's), so a transfer touches one word per party and no holder list exists. Rounding
     only rounds down (once per distribution, once per holder's cumulative total), so the sum
     paid never exceeds the sum deposited, and the dust is below one base unit per holder plus
     one per distribution. Anyone may deposit revenue, but only deposits by REVENUE_ROLE (the
     lease escrow, which pays only for proven delivery) count in `total_escrow_revenue`, the
     figure a NAV is built on: a holder paying itself cannot move the NAV.

     Storage: each account's compliance flags (bit 0 allowlisted, bit 1 frozen) and its
     correction (a signed 248-bit integer in bits 8..255) share one word, so a compliant
     transfer reads and writes one word per party for both compliance and revenue.
"""

from ethereum.ercs import IERC20
from snekmate.auth import access_control
from snekmate.auth import ownable
from snekmate.tokens import erc20
from snekmate.utils import pausable

interface IVault:
    def collateral(account: address) -> uint256: view

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
REVENUE_ROLE: public(constant(bytes32)) = keccak256("REVENUE_ROLE")
MAX_VAULTS: constant(uint256) = 8

usd: public(IERC20)
asset_id: public(bytes32)

ALLOWLISTED: constant(uint256) = 1
FROZEN: constant(uint256) = 2
FLAGS: constant(uint256) = 255
MAX_CORRECTION: constant(int256) = 2**247 - 1
MIN_CORRECTION: constant(int256) = -(2**247)

account_word: HashMap[address, uint256]
acc: public(uint256)
withdrawn: public(HashMap[address, uint256])
total_distributed: public(uint256)
total_claimed: public(uint256)
total_escrow_revenue: public(uint256)
vaults: public(DynArray[address, MAX_VAULTS])

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
@pure
def _correction(word: uint256) -> int256:
    return convert(convert(word, bytes32), int256) >> 8


@internal
@pure
def _pack(flags: uint256, correction: int256) -> uint256:
    assert correction >= MIN_CORRECTION and correction <= MAX_CORRECTION, "ComputeShare: revenue overflow"
    return convert(convert(correction << 8, bytes32), uint256) | flags


@view
@internal
def _earned(holder: address) -> uint256:
    total: int256 = convert(self.acc * erc20.balanceOf[holder], int256) + self._correction(self.account_word[holder])
    return convert(total, uint256) // PRECISION


@internal
def _compliant_move(owner: address, to: address, amount: uint256):
    pausable._require_not_paused()
    word_from: uint256 = self.account_word[owner]
    word_to: uint256 = self.account_word[to]
    assert word_from & ALLOWLISTED != 0, "ComputeShare: sender not allowlisted"
    assert word_to & ALLOWLISTED != 0, "ComputeShare: receiver not allowlisted"
    assert word_from & FROZEN == 0, "ComputeShare: sender frozen"
    assert word_to & FROZEN == 0, "ComputeShare: receiver frozen"
    if owner != to and amount > 0:
        moved: int256 = convert(self.acc * amount, int256)
        self.account_word[owner] = self._pack(word_from & FLAGS, self._correction(word_from) + moved)
        self.account_word[to] = self._pack(word_to & FLAGS, self._correction(word_to) - moved)


@external
def transfer(to: address, amount: uint256) -> bool:
    """@dev Any allowlisted, unfrozen holder, to an allowlisted, unfrozen receiver."""
    self._compliant_move(msg.sender, to, amount)
    erc20._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """@dev An allowlisted, unfrozen spender with the owner's allowance (owner and receiver compliant)."""
    spender: uint256 = self.account_word[msg.sender]
    assert spender & ALLOWLISTED != 0, "ComputeShare: spender not allowlisted"
    assert spender & FROZEN == 0, "ComputeShare: spender frozen"
    self._compliant_move(owner, to, amount)
    erc20._spend_allowance(owner, msg.sender, amount)
    erc20._transfer(owner, to, amount)
    return True


@external
def mint(to: address, amount: uint256):
    """@dev ISSUER_ROLE only; not while paused."""
    assert access_control.hasRole[ISSUER_ROLE][msg.sender], "ComputeShare: not issuer"
    pausable._require_not_paused()
    word: uint256 = self.account_word[to]
    assert word & ALLOWLISTED != 0, "ComputeShare: receiver not allowlisted"
    assert word & FROZEN == 0, "ComputeShare: receiver frozen"
    self.account_word[to] = self._pack(word & FLAGS, self._correction(word) - convert(self.acc * amount, int256))
    erc20._mint(to, amount)


@view
@external
def allowlisted(account: address) -> bool:
    return self.account_word[account] & ALLOWLISTED != 0


@view
@external
def frozen(account: address) -> bool:
    return self.account_word[account] & FROZEN != 0


@external
def set_allowlisted(account: address, status: bool):
    """@dev COMPLIANCE_ROLE only. Removal needs no shares in the wallet nor in any vault."""
    assert access_control.hasRole[COMPLIANCE_ROLE][msg.sender], "ComputeShare: not compliance"
    if not status:
        assert erc20.balanceOf[account] == 0, "ComputeShare: holder still has shares"
        for vault: address in self.vaults:
            assert staticcall IVault(vault).collateral(account) == 0, "ComputeShare: holder has shares in a vault"
    word: uint256 = self.account_word[account]
    self.account_word[account] = word | ALLOWLISTED if status else word & ~ALLOWLISTED
    log Allowlisted(account=account, status=status)


@external
def set_frozen(account: address, status: bool):
    """@dev COMPLIANCE_ROLE only."""
    assert access_control.hasRole[COMPLIANCE_ROLE][msg.sender], "ComputeShare: not compliance"
    word: uint256 = self.account_word[account]
    self.account_word[account] = word | FROZEN if status else word & ~FROZEN
    log Frozen(account=account, status=status)


@external
def pause():
    """@dev PAUSER_ROLE only."""
    assert access_control.hasRole[PAUSER_ROLE][msg.sender], "ComputeShare: not pauser"
    pausable._pause()


@external
def unpause():
    """@dev PAUSER_ROLE only."""
    assert access_control.hasRole[PAUSER_ROLE][msg.sender], "ComputeShare: not pauser"
    pausable._unpause()


@external
def distribute(amount: uint256):
    """@notice Deposit `amount` stablecoin base units of revenue for the current holders.
    @dev Anyone; only REVENUE_ROLE deposits count in `total_escrow_revenue`."""
    supply: uint256 = erc20.totalSupply
    assert supply > 0, "ComputeShare: no shares to pay"
    assert amount > 0, "ComputeShare: nothing to distribute"
    assert extcall self.usd.transferFrom(msg.sender, self, amount, default_return_value=True)
    self.acc += amount * PRECISION // supply
    self.total_distributed += amount
    if access_control.hasRole[REVENUE_ROLE][msg.sender]:
        self.total_escrow_revenue += amount
    log RevenueDistributed(sender=msg.sender, amount=amount, acc=self.acc)


@view
@external
def claimable(holder: address) -> uint256:
    return self._earned(holder) - self.withdrawn[holder]


@external
def claim() -> uint256:
    """@notice Pay the caller its revenue share (frozen holders cannot claim until unfrozen).
    @dev Any unfrozen account with revenue earned."""
    assert self.account_word[msg.sender] & FROZEN == 0, "ComputeShare: sender frozen"
    amount: uint256 = self._earned(msg.sender) - self.withdrawn[msg.sender]
    if amount == 0:
        return 0
    self.withdrawn[msg.sender] += amount
    self.total_claimed += amount
    assert extcall self.usd.transfer(msg.sender, amount, default_return_value=True)
    log RevenueClaimed(holder=msg.sender, amount=amount)
    return amount


@external
def add_vault(vault: address):
    """@notice Allowlist a lending vault and count its collateral as its depositors' shares.
    @dev COMPLIANCE_ROLE only."""
    assert access_control.hasRole[COMPLIANCE_ROLE][msg.sender], "ComputeShare: not compliance"
    assert vault != empty(address), "ComputeShare: zero vault"
    assert vault not in self.vaults, "ComputeShare: vault already added"
    assert len(self.vaults) < MAX_VAULTS, "ComputeShare: too many vaults"
    self.vaults.append(vault)
    self.account_word[vault] = self.account_word[vault] | ALLOWLISTED
    log Allowlisted(account=vault, status=True)
