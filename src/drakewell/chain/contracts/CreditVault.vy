# pragma version ~=0.4.3
"""
@title CreditVault
@notice Loans of the stablecoin against ComputeShare collateral, priced by an oracle NAV per share.
@dev Parameters (basis points): borrow up to `ltv_bps` of the collateral's value; a position is
     unhealthy when debt > `liq_threshold_bps` of the value, i.e. health factor
     HF = value * liq_threshold / debt < 1. A liquidator repays up to `close_factor_bps` of the
     debt and receives shares worth the repayment plus `bonus_bps` (Aave v3 uses a 50% close
     factor and a ~5% bonus; the defaults here are the same). The oracle posts `nav` (stablecoin
     base units per whole share, 10**18 share units); a price older than `max_age` seconds is
     stale and a change of more than `max_jump_bps` from the last one is refused. Interest
     accrues per second on a global index (simple per-second rate compounded on each touch).
     The vault and every liquidator must be allowlisted in ComputeShare (the share enforces it).

     Revenue on collateral: shares in the vault keep earning. Before any collateral changes the
     vault claims its revenue from ComputeShare and spreads it over the collateral with its own
     accumulator (`rev_acc`, per-depositor checkpoints, O(1) per call), so each depositor gets
     what its shares earned while deposited through `claim_revenue()`. Claimed-but-unpaid
     revenue is reserved: borrowers can never borrow it.
"""

from ethereum.ercs import IERC20
from snekmate.auth import access_control

initializes: access_control

exports: (
    access_control.hasRole,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.DEFAULT_ADMIN_ROLE,
)

interface IShareRevenue:
    def claim() -> uint256: nonpayable
    def claimable(holder: address) -> uint256: view


ORACLE_ROLE: public(constant(bytes32)) = keccak256("ORACLE_ROLE")
PRECISION: constant(uint256) = 10**36
BPS: constant(uint256) = 10_000
WAD: constant(uint256) = 10**18

share: public(IERC20)
usd: public(IERC20)
ltv_bps: public(uint256)
liq_threshold_bps: public(uint256)
close_factor_bps: public(uint256)
bonus_bps: public(uint256)
rate_per_second_wad: public(uint256)
max_age: public(uint256)
max_jump_bps: public(uint256)

nav: public(uint256)
nav_updated_at: public(uint256)
index_wad: public(uint256)
index_updated_at: public(uint256)

collateral: public(HashMap[address, uint256])
debt_scaled: public(HashMap[address, uint256])
total_debt_scaled: public(uint256)

total_collateral: public(uint256)
rev_acc: public(uint256)
rev_paid: HashMap[address, uint256]
rev_owed_scaled: HashMap[address, uint256]
revenue_reserved: public(uint256)


event RevenuePaid:
    account: indexed(address)
    amount: uint256


event NavPosted:
    nav: uint256
    updated_at: uint256


event Deposited:
    account: indexed(address)
    shares: uint256


event Withdrawn:
    account: indexed(address)
    shares: uint256


event Borrowed:
    account: indexed(address)
    amount: uint256


event Repaid:
    account: indexed(address)
    payer: indexed(address)
    amount: uint256


event Liquidated:
    account: indexed(address)
    liquidator: indexed(address)
    repaid: uint256
    shares_seized: uint256


@deploy
def __init__(
    share_: IERC20,
    usd_: IERC20,
    ltv_bps_: uint256,
    liq_threshold_bps_: uint256,
    close_factor_bps_: uint256,
    bonus_bps_: uint256,
    rate_per_second_wad_: uint256,
    max_age_: uint256,
    max_jump_bps_: uint256,
):
    access_control.__init__()
    assert ltv_bps_ < liq_threshold_bps_ and liq_threshold_bps_ < BPS, "CreditVault: bad thresholds"
    assert close_factor_bps_ <= BPS, "CreditVault: bad close factor"
    self.share = share_
    self.usd = usd_
    self.ltv_bps = ltv_bps_
    self.liq_threshold_bps = liq_threshold_bps_
    self.close_factor_bps = close_factor_bps_
    self.bonus_bps = bonus_bps_
    self.rate_per_second_wad = rate_per_second_wad_
    self.max_age = max_age_
    self.max_jump_bps = max_jump_bps_
    self.index_wad = WAD
    self.index_updated_at = block.timestamp
    access_control._grant_role(ORACLE_ROLE, msg.sender)


@internal
def _accrue():
    dt: uint256 = block.timestamp - self.index_updated_at
    if dt > 0:
        self.index_wad += self.index_wad * self.rate_per_second_wad * dt // WAD
        self.index_updated_at = block.timestamp


@view
@internal
def _current_index() -> uint256:
    dt: uint256 = block.timestamp - self.index_updated_at
    return self.index_wad + self.index_wad * self.rate_per_second_wad * dt // WAD


@view
@internal
def _fresh_nav() -> uint256:
    assert self.nav > 0, "CreditVault: no price"
    assert block.timestamp <= self.nav_updated_at + self.max_age, "CreditVault: stale price"
    return self.nav


@view
@internal
def _debt(account: address) -> uint256:
    # round up: the borrower owes at least what was lent
    scaled: uint256 = self.debt_scaled[account]
    if scaled == 0:
        return 0
    return (scaled * self._current_index() + WAD - 1) // WAD


@view
@internal
def _value(shares: uint256, nav: uint256) -> uint256:
    return shares * nav // WAD


@internal
def _sync_revenue():
    amount: uint256 = extcall IShareRevenue(self.share.address).claim()
    if amount > 0 and self.total_collateral > 0:
        self.rev_acc += amount * PRECISION // self.total_collateral
        self.revenue_reserved += amount


@internal
def _checkpoint(account: address):
    acc: uint256 = self.rev_acc
    self.rev_owed_scaled[account] += self.collateral[account] * (acc - self.rev_paid[account])
    self.rev_paid[account] = acc


@view
@external
def revenue_claimable(account: address) -> uint256:
    """@notice Revenue the account's collateral has earned (including revenue not yet pulled in)."""
    acc: uint256 = self.rev_acc
    if self.total_collateral > 0:
        acc += staticcall IShareRevenue(self.share.address).claimable(self) * PRECISION // self.total_collateral
    owed: uint256 = self.rev_owed_scaled[account] + self.collateral[account] * (acc - self.rev_paid[account])
    return owed // PRECISION


@external
def claim_revenue() -> uint256:
    """@notice Pay the caller the revenue its collateral earned while deposited."""
    self._sync_revenue()
    self._checkpoint(msg.sender)
    amount: uint256 = self.rev_owed_scaled[msg.sender] // PRECISION
    if amount == 0:
        return 0
    self.rev_owed_scaled[msg.sender] -= amount * PRECISION
    self.revenue_reserved -= amount
    assert extcall self.usd.transfer(msg.sender, amount, default_return_value=True)
    log RevenuePaid(account=msg.sender, amount=amount)
    return amount


@external
def post_nav(nav_: uint256):
    assert access_control.hasRole[ORACLE_ROLE][msg.sender], "CreditVault: not oracle"
    assert nav_ > 0, "CreditVault: zero price"
    prev: uint256 = self.nav
    if prev > 0:
        diff: uint256 = nav_ - prev if nav_ > prev else prev - nav_
        assert diff * BPS <= prev * self.max_jump_bps, "CreditVault: price jump too large"
    self.nav = nav_
    self.nav_updated_at = block.timestamp
    log NavPosted(nav=nav_, updated_at=block.timestamp)


@external
def deposit(shares: uint256):
    assert shares > 0, "CreditVault: nothing to deposit"
    self._sync_revenue()
    self._checkpoint(msg.sender)
    self.collateral[msg.sender] += shares
    self.total_collateral += shares
    assert extcall self.share.transferFrom(msg.sender, self, shares, default_return_value=True)
    log Deposited(account=msg.sender, shares=shares)


@external
def withdraw(shares: uint256):
    self._accrue()
    assert shares <= self.collateral[msg.sender], "CreditVault: not enough collateral"
    remaining: uint256 = self.collateral[msg.sender] - shares
    debt: uint256 = self._debt(msg.sender)
    if debt > 0:
        assert debt * BPS <= self._value(remaining, self._fresh_nav()) * self.ltv_bps, "CreditVault: would exceed LTV"
    self._sync_revenue()
    self._checkpoint(msg.sender)
    self.collateral[msg.sender] = remaining
    self.total_collateral -= shares
    assert extcall self.share.transfer(msg.sender, shares, default_return_value=True)
    log Withdrawn(account=msg.sender, shares=shares)


@external
def borrow(amount: uint256):
    self._accrue()
    assert amount > 0, "CreditVault: nothing to borrow"
    debt: uint256 = self._debt(msg.sender) + amount
    limit: uint256 = self._value(self.collateral[msg.sender], self._fresh_nav()) * self.ltv_bps
    assert debt * BPS <= limit, "CreditVault: over LTV"
    assert staticcall self.usd.balanceOf(self) >= self.revenue_reserved + amount, "CreditVault: not enough liquidity"
    scaled: uint256 = (amount * WAD + self.index_wad - 1) // self.index_wad
    self.debt_scaled[msg.sender] += scaled
    self.total_debt_scaled += scaled
    assert extcall self.usd.transfer(msg.sender, amount, default_return_value=True)
    log Borrowed(account=msg.sender, amount=amount)


@internal
def _repay(account: address, payer: address, amount: uint256) -> uint256:
    debt: uint256 = self._debt(account)
    pay: uint256 = min(amount, debt)
    assert pay > 0, "CreditVault: no debt"
    scaled: uint256 = self.debt_scaled[account]
    burn: uint256 = scaled
    if pay < debt:
        burn = min(pay * WAD // self.index_wad, scaled)
    self.debt_scaled[account] = scaled - burn
    self.total_debt_scaled -= burn
    assert extcall self.usd.transferFrom(payer, self, pay, default_return_value=True)
    log Repaid(account=account, payer=payer, amount=pay)
    return pay


@external
def repay(amount: uint256) -> uint256:
    self._accrue()
    return self._repay(msg.sender, msg.sender, amount)


@view
@external
def debt_of(account: address) -> uint256:
    return self._debt(account)


@view
@external
def health_factor_wad(account: address) -> uint256:
    """@notice HF scaled by 1e18 (max_value when there is no debt); < 1e18 means liquidatable."""
    debt: uint256 = self._debt(account)
    if debt == 0:
        return max_value(uint256)
    value: uint256 = self._value(self.collateral[account], self.nav)
    return value * self.liq_threshold_bps * WAD // (debt * BPS)


@external
def liquidate(account: address, repay_amount: uint256) -> uint256:
    """@notice Repay up to the close factor of an unhealthy position; returns the shares seized."""
    self._accrue()
    nav: uint256 = self._fresh_nav()
    debt: uint256 = self._debt(account)
    assert debt > 0, "CreditVault: no debt"
    value: uint256 = self._value(self.collateral[account], nav)
    assert value * self.liq_threshold_bps < debt * BPS, "CreditVault: position is healthy"
    assert repay_amount * BPS <= debt * self.close_factor_bps, "CreditVault: above close factor"
    paid: uint256 = self._repay(account, msg.sender, repay_amount)
    seized: uint256 = min(paid * (BPS + self.bonus_bps) * WAD // (BPS * nav), self.collateral[account])
    self._sync_revenue()
    self._checkpoint(account)
    self.collateral[account] -= seized
    self.total_collateral -= seized
    assert extcall self.share.transfer(msg.sender, seized, default_return_value=True)
    log Liquidated(account=account, liquidator=msg.sender, repaid=paid, shares_seized=seized)
    return seized
