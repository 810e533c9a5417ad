import pytest
from chain_helpers import SHARE, USD, World

from drakewell.chain import ChainError, ContractReverted

NAV = 2 * USD  # per whole share


def _lend(w: World, amount: int = 10_000_000 * USD) -> str:
    m = w.market
    lender = w.chain.new_account()
    m.usd.mint(lender, amount)
    m.usd.approve(m.vault.address, amount, sender=lender)
    m.vault.supply(amount, sender=lender)
    return lender


def _position(w: World, shares: int = 100 * SHARE) -> None:
    m = w.market
    _lend(w)
    m.vault.post_nav(NAV)
    m.share.approve(m.vault.address, shares, sender=w.bob)
    m.vault.deposit(shares, sender=w.bob)


def test_borrow_up_to_ltv_and_not_beyond(w: World) -> None:
    m = w.market
    _position(w)
    m.vault.borrow(100 * USD, sender=w.bob)  # 50% of 200 USD
    with pytest.raises(ContractReverted, match="over LTV"):
        m.vault.borrow(1, sender=w.bob)
    with pytest.raises(ContractReverted, match="would exceed LTV"):
        m.vault.withdraw(1 * SHARE, sender=w.bob)


def test_oracle_rules(w: World) -> None:
    m = w.market
    with pytest.raises(ContractReverted, match="not oracle"):
        m.vault.post_nav(NAV, sender=w.alice)
    _position(w)
    with pytest.raises(ContractReverted, match="price moved too far this period"):
        m.vault.post_nav(NAV // 3)
    w.chain.warp(w.chain.timestamp() + m.spec.nav_max_age_s + 1)
    with pytest.raises(ContractReverted, match="stale price"):
        m.vault.borrow(m.spec.min_debt_base, sender=w.bob)


def test_liquidation_only_when_unhealthy_within_close_factor(w: World) -> None:
    m = w.market
    _position(w)
    m.vault.borrow(100 * USD, sender=w.bob)
    m.usd.mint(w.liquidator, 1_000 * USD)
    m.usd.approve(m.vault.address, 1_000 * USD, sender=w.liquidator)
    with pytest.raises(ContractReverted, match="position is healthy"):
        m.vault.liquidate(w.bob, 10 * USD, sender=w.liquidator)
    m.vault.post_nav(int(1.4 * USD))  # a 30% shock
    assert m.vault.health_factor(w.bob) < 1
    debt = m.vault.debt_of(w.bob)
    with pytest.raises(ContractReverted, match="above close factor"):
        m.vault.liquidate(w.bob, debt, sender=w.liquidator)
    seized = m.vault.liquidate(w.bob, 50 * USD, sender=w.liquidator).value
    assert seized == 50 * USD * 10_500 * SHARE // (10_000 * int(1.4 * USD))
    assert m.share.balance_of(w.liquidator) == seized
    assert m.vault.debt_of(w.bob) < debt


def test_interest_accrues_per_second(w: World) -> None:
    m = w.market
    _position(w)
    m.vault.borrow(50 * USD, sender=w.bob)
    w.chain.warp(w.chain.timestamp() + 365 * 86_400 // 12)
    m.vault.post_nav(NAV)  # keep the price fresh
    assert 50.3 * USD < m.vault.debt_of(w.bob) < 50.5 * USD  # ~10%/year for a month
    m.usd.mint(w.bob, 10 * USD)
    m.usd.approve(m.vault.address, 100 * USD, sender=w.bob)
    m.vault.repay(100 * USD, sender=w.bob)
    assert m.vault.debt_of(w.bob) == 0
    m.vault.withdraw(100 * SHARE, sender=w.bob)


def test_non_allowlisted_liquidator_cannot_receive_shares(w: World) -> None:
    m = w.market
    _position(w)
    m.vault.borrow(100 * USD, sender=w.bob)
    m.vault.post_nav(int(1.4 * USD))
    m.usd.mint(w.outsider, 100 * USD)
    m.usd.approve(m.vault.address, 100 * USD, sender=w.outsider)
    with pytest.raises(ContractReverted, match="receiver not allowlisted"):
        m.vault.liquidate(w.bob, 10 * USD, sender=w.outsider)


def test_collateral_keeps_earning_revenue_and_it_cannot_be_borrowed(w: World) -> None:
    m = w.market
    m.vault.post_nav(NAV)
    m.share.approve(m.vault.address, 400 * SHARE, sender=w.bob)
    m.vault.deposit(100 * SHARE, sender=w.bob)
    m.usd.approve(m.share.address, 10**12, sender=w.renter)
    m.share.distribute(1_000 * USD, sender=w.renter)  # alice 600 + vault 100 (bob's) + bob 300
    assert m.vault.call("revenue_claimable", w.bob) == 100 * USD
    assert m.share.claimable(w.bob) == 300 * USD
    m.vault.deposit(300 * SHARE, sender=w.bob)  # pulls the vault's revenue in, checkpoints bob
    m.share.distribute(1_000 * USD, sender=w.renter)
    assert m.vault.call("revenue_claimable", w.bob) == 500 * USD
    with pytest.raises(ContractReverted, match="not enough liquidity"):
        m.vault.borrow(m.spec.min_debt_base, sender=w.bob)  # the vault holds only reserved revenue
    assert m.vault.claim_revenue(sender=w.bob).value == 500 * USD
    assert m.usd.balance_of(w.bob) == 500 * USD and m.vault.revenue_claimable(w.bob) == 0
    assert m.vault.send("claim_revenue", sender=w.bob).value == 0  # nothing twice
    assert m.vault.send("claim_revenue", sender=w.bob).amount == 0
    with pytest.raises(ChainError, match="no integer answer"):
        _ = m.share.set_allowlisted(w.bob).amount  # a function without an answer
    assert m.vault.call("revenue_reserved") == 0


def test_revenue_is_split_between_depositors_and_follows_liquidation(w: World) -> None:
    m = w.market
    _position(w, 100 * SHARE)  # bob: 100 shares in the vault
    m.share.approve(m.vault.address, 100 * SHARE, sender=w.alice)
    m.vault.deposit(100 * SHARE, sender=w.alice)
    m.usd.approve(m.share.address, 10**12, sender=w.renter)
    m.share.distribute(1_000 * USD, sender=w.renter)  # the vault's 200 shares earn 200 USD
    m.vault.borrow(100 * USD, sender=w.bob)
    m.vault.post_nav(int(1.4 * USD))
    m.usd.mint(w.liquidator, 100 * USD)
    m.usd.approve(m.vault.address, 100 * USD, sender=w.liquidator)
    m.vault.liquidate(w.bob, 50 * USD, sender=w.liquidator)  # bob's earned revenue stays his
    m.share.distribute(1_000 * USD, sender=w.renter)
    bob, alice = m.vault.call("revenue_claimable", w.bob), m.vault.call("revenue_claimable", w.alice)
    assert alice == 200 * USD  # 100 + 100: unaffected by bob's liquidation
    assert 100 * USD < bob < 200 * USD  # 100 + what his remaining collateral earned
    assert bob + alice <= m.vault.call("revenue_reserved") + m.share.claimable(m.vault.address)
