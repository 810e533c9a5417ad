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
     stale. The price moves at most `max_move_bps` per period: each post must stay within
     `max_move_bps` of the reference price, which is reset to the last posted price when
     `move_period_s` has passed since the reference was set, so however many posts are made
     the price moves at most max_move_bps within one period. Interest accrues per second on a
     global index (simple per-second rate compounded on each touch).

     Lenders: `supply` stablecoin for lender shares (lp), `redeem` them for their part of
         assets = cash + total_debt      (cash: lendable stablecoin the vault holds)
     so interest paid by borrowers accrues to lenders, and bad debt is their loss. Stablecoin
     sent to the vault outside `supply`/`repay` is not counted (no donation can move lp value).
     A debt is never below `min_debt` (a dust position would cost more gas to liquidate than it
     pays) unless a liquidation leaves it so; a position with debt below `min_debt` may be
     liquidated in full. When a liquidation seizes all remaining collateral and debt is left,
     that debt is written off (`total_bad_debt`): it stops accruing and lenders bear it.

     Compliance: the vault enforces ComputeShare's state: a frozen account cannot borrow,
     withdraw or claim revenue; an account off the allowlist cannot borrow or withdraw (the
     share refuses to de-allowlist an account with collateral here). The vault and every
     liquidator must be allowlisted in ComputeShare (the share enforces it). No new debt while
     the share is paused: liquidations cannot move shares then.

     Roles: ORACLE_ROLE posts the NAV; PAUSER_ROLE pauses borrow, deposit, withdraw and supply
     (repay, liquidate, redeem and claim_revenue stay open: they only reduce risk or pay out
     what is owed); DEFAULT_ADMIN_ROLE grants roles. Everything else is open to any account
     for itself.

     Revenue on collateral: shares in the vault keep earning. Before any collateral changes the
     vault claims its revenue from ComputeShare and spreads it over the collateral with its own
     accumulator (`rev_acc`, per-depositor checkpoints, O(1) per call), so each depositor gets
     what its shares earned while deposited through `claim_revenue()`. Claimed-but-unpaid
     revenue is reserved: borrowers can never borrow it.
"""

from ethereum.ercs import IERC20
from snekmate.auth import access_control
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

interface IShare:
    def transfer(to: address, amount: uint256) -> bool: nonpayable
    def transferFrom(owner: address, to: address, amount: uint256) -> bool: nonpayable
    def claim() -> uint256: nonpayable
    def claimable(holder: address) -> uint256: view
    def frozen(account: address) -> bool: view
    def allowlisted(account: address) -> bool: view
    def paused() -> bool: view


ORACLE_ROLE: public(constant(bytes32)) = keccak256("ORACLE_ROLE")
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER_ROLE")
PRECISION: constant(uint256) = 10**36
BPS: constant(uint256) = 10_000
WAD: constant(uint256) = 10**18

share: public(IShare)
usd: public(IERC20)
ltv_bps: public(uint256)
liq_threshold_bps: public(uint256)
close_factor_bps: public(uint256)
bonus_bps: public(uint256)
rate_per_second_wad: public(uint256)
max_age: public(uint256)
max_move_bps: public(uint256)
move_period_s: public(uint256)
min_debt: public(uint256)

nav: public(uint256)
nav_updated_at: public(uint256)
ref_nav: public(uint256)
ref_at: public(uint256)
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

cash: public(uint256)
lp_shares: public(HashMap[address, uint256])
total_lp: public(uint256)
total_bad_debt: public(uint256)


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


event Supplied:
    lender: indexed(address)
    amount: uint256
    lp: uint256


event Redeemed:
    lender: indexed(address)
    amount: uint256
    lp: uint256


event BadDebtWrittenOff:
    account: indexed(address)
    amount: uint256


event Liquidated:
    account: indexed(address)
    liquidator: indexed(address)
    repaid: uint256
    shares_seized: uint256


@deploy
def __init__(
    share_: IShare,
    usd_: IERC20,
    ltv_bps_: uint256,
    liq_threshold_bps_: uint256,
    close_factor_bps_: uint256,
    bonus_bps_: uint256,
    rate_per_second_wad_: uint256,
    max_age_: uint256,
    max_move_bps_: uint256,
    move_period_s_: uint256,
    min_debt_: uint256,
):
    access_control.__init__()
    pausable.__init__()
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
    self.max_move_bps = max_move_bps_
    self.move_period_s = move_period_s_
    self.min_debt = min_debt_
    self.index_wad = WAD
    self.index_updated_at = block.timestamp
    access_control._grant_role(ORACLE_ROLE, msg.sender)
    access_control._grant_role(PAUSER_ROLE, msg.sender)


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


@view
@internal
def _total_assets() -> uint256:
    return self.cash + self.total_debt_scaled * self._current_index() // WAD


@view
@internal
def _require_unfrozen(account: address):
    assert not staticcall self.share.frozen(account), "CreditVault: account frozen"


@view
@internal
def _require_compliant(account: address):
    self._require_unfrozen(account)
    assert staticcall self.share.allowlisted(account), "CreditVault: account not allowlisted"


@internal
def _sync_revenue():
    amount: uint256 = extcall self.share.claim()
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
        acc += staticcall self.share.claimable(self) * PRECISION // self.total_collateral
    owed: uint256 = self.rev_owed_scaled[account] + self.collateral[account] * (acc - self.rev_paid[account])
    return owed // PRECISION


@external
def claim_revenue() -> uint256:
    """@notice Pay the caller the revenue its collateral earned while deposited.
    @dev Any unfrozen account, for itself."""
    self._require_unfrozen(msg.sender)
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
    """@dev ORACLE_ROLE only; within max_move_bps of the period's reference price."""
    assert access_control.hasRole[ORACLE_ROLE][msg.sender], "CreditVault: not oracle"
    assert nav_ > 0, "CreditVault: zero price"
    prev: uint256 = self.nav
    if prev == 0:
        self.ref_nav = nav_
        self.ref_at = block.timestamp
    else:
        if block.timestamp >= self.ref_at + self.move_period_s:
            self.ref_nav = prev
            self.ref_at = block.timestamp
        ref: uint256 = self.ref_nav
        diff: uint256 = nav_ - ref if nav_ > ref else ref - nav_
        assert diff * BPS <= ref * self.max_move_bps, "CreditVault: price moved too far this period"
    self.nav = nav_
    self.nav_updated_at = block.timestamp
    log NavPosted(nav=nav_, updated_at=block.timestamp)


@external
def deposit(shares: uint256):
    """@dev Any holder, for itself (the share checks compliance); not while paused."""
    pausable._require_not_paused()
    assert shares > 0, "CreditVault: nothing to deposit"
    self._sync_revenue()
    self._checkpoint(msg.sender)
    self.collateral[msg.sender] += shares
    self.total_collateral += shares
    assert extcall self.share.transferFrom(msg.sender, self, shares, default_return_value=True)
    log Deposited(account=msg.sender, shares=shares)


@external
def withdraw(shares: uint256):
    """@dev Any compliant depositor, its own collateral within LTV; not while paused."""
    pausable._require_not_paused()
    self._require_compliant(msg.sender)
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
    """@dev Any compliant depositor, against its own collateral; not while the vault or the share is paused."""
    pausable._require_not_paused()
    self._require_compliant(msg.sender)
    assert not staticcall self.share.paused(), "CreditVault: share paused"
    self._accrue()
    assert amount > 0, "CreditVault: nothing to borrow"
    debt: uint256 = self._debt(msg.sender) + amount
    assert debt >= self.min_debt, "CreditVault: below minimum debt"
    limit: uint256 = self._value(self.collateral[msg.sender], self._fresh_nav()) * self.ltv_bps
    assert debt * BPS <= limit, "CreditVault: over LTV"
    assert self.cash >= amount, "CreditVault: not enough liquidity"
    self.cash -= amount
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
    self.cash += pay
    assert extcall self.usd.transferFrom(payer, self, pay, default_return_value=True)
    log Repaid(account=account, payer=payer, amount=pay)
    return pay


@external
def repay(amount: uint256) -> uint256:
    """@dev Any borrower, its own debt: in full, or leaving at least `min_debt`."""
    self._accrue()
    debt: uint256 = self._debt(msg.sender)
    assert amount >= debt or debt - amount >= self.min_debt, "CreditVault: below minimum debt; repay all"
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
    """@notice Repay up to the close factor of an unhealthy position; returns the shares seized.
    @dev Any allowlisted, unfrozen account (it receives the shares), paying from its own stablecoin."""
    self._accrue()
    nav: uint256 = self._fresh_nav()
    debt: uint256 = self._debt(account)
    assert debt > 0, "CreditVault: no debt"
    value: uint256 = self._value(self.collateral[account], nav)
    assert value * self.liq_threshold_bps < debt * BPS, "CreditVault: position is healthy"
    closable: uint256 = debt * self.close_factor_bps // BPS
    if debt - closable < self.min_debt:
        closable = debt  # a dust remainder would never be worth liquidating
    assert repay_amount <= closable, "CreditVault: above close factor"
    paid: uint256 = self._repay(account, msg.sender, repay_amount)
    seized: uint256 = min(paid * (BPS + self.bonus_bps) * WAD // (BPS * nav), self.collateral[account])
    self._sync_revenue()
    self._checkpoint(account)
    self.collateral[account] -= seized
    self.total_collateral -= seized
    if self.collateral[account] == 0 and self.debt_scaled[account] > 0:
        bad: uint256 = self._debt(account)
        self.total_debt_scaled -= self.debt_scaled[account]
        self.debt_scaled[account] = 0
        self.total_bad_debt += bad
        log BadDebtWrittenOff(account=account, amount=bad)
    assert extcall self.share.transfer(msg.sender, seized, default_return_value=True)
    log Liquidated(account=account, liquidator=msg.sender, repaid=paid, shares_seized=seized)
    return seized


@view
@external
def total_assets() -> uint256:
    """@notice What lenders own together: lendable cash plus outstanding debt (with interest)."""
    return self._total_assets()


@view
@external
def lp_value(lender: address) -> uint256:
    """@notice Stablecoin a lender's shares are worth now (rounded down)."""
    if self.total_lp == 0:
        return 0
    return self.lp_shares[lender] * self._total_assets() // self.total_lp


@external
def supply(amount: uint256) -> uint256:
    """@notice Lend `amount` of stablecoin; returns the lender shares minted.
    @dev Any account, for itself; not while paused."""
    pausable._require_not_paused()
    assert amount > 0, "CreditVault: nothing to supply"
    self._accrue()
    lp: uint256 = amount
    if self.total_lp > 0:
        assets: uint256 = self._total_assets()
        assert assets > 0, "CreditVault: insolvent; nothing to supply into"
        lp = amount * self.total_lp // assets
    assert lp > 0, "CreditVault: supply too small"
    self.lp_shares[msg.sender] += lp
    self.total_lp += lp
    self.cash += amount
    assert extcall self.usd.transferFrom(msg.sender, self, amount, default_return_value=True)
    log Supplied(lender=msg.sender, amount=amount, lp=lp)
    return lp


@external
def redeem(lp: uint256) -> uint256:
    """@notice Burn `lp` lender shares for their part of cash plus debt; returns the stablecoin paid.
    @dev Any lender, its own shares; open while paused; only from cash not lent out."""
    assert lp > 0, "CreditVault: nothing to redeem"
    assert lp <= self.lp_shares[msg.sender], "CreditVault: not enough lender shares"
    self._accrue()
    amount: uint256 = lp * self._total_assets() // self.total_lp
    assert amount <= self.cash, "CreditVault: not enough liquidity"
    self.lp_shares[msg.sender] -= lp
    self.total_lp -= lp
    self.cash -= amount
    if amount > 0:
        assert extcall self.usd.transfer(msg.sender, amount, default_return_value=True)
    log Redeemed(lender=msg.sender, amount=amount, lp=lp)
    return amount


@external
def pause():
    """@notice Stop borrow, deposit, withdraw and supply. PAUSER_ROLE only."""
    assert access_control.hasRole[PAUSER_ROLE][msg.sender], "CreditVault: not pauser"
    pausable._pause()


@external
def unpause():
    """@notice PAUSER_ROLE only."""
    assert access_control.hasRole[PAUSER_ROLE][msg.sender], "CreditVault: not pauser"
    pausable._unpause()
