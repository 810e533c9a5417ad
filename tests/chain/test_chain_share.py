import pytest
from chain_helpers import SHARE, USD, World

from drakewell.chain import ContractReverted


def test_transfers_only_between_allowlisted_unfrozen_holders(w: World) -> None:
    s = w.market.share
    s.transfer(w.bob, 10 * SHARE, sender=w.alice)
    assert s.balance_of(w.bob) == 410 * SHARE
    with pytest.raises(ContractReverted, match="receiver not allowlisted"):
        s.transfer(w.outsider, 1, sender=w.alice)
    with pytest.raises(ContractReverted, match="sender not allowlisted"):
        s.transfer(w.alice, 0, sender=w.outsider)
    s.set_frozen(w.bob)
    with pytest.raises(ContractReverted, match="receiver frozen"):
        s.transfer(w.bob, 1, sender=w.alice)
    with pytest.raises(ContractReverted, match="sender frozen"):
        s.transfer(w.alice, 1, sender=w.bob)


def test_mint_and_compliance_need_their_roles(w: World) -> None:
    s = w.market.share
    with pytest.raises(ContractReverted, match="not issuer"):
        s.mint(w.alice, 1, sender=w.alice)
    with pytest.raises(ContractReverted, match="not compliance"):
        s.set_allowlisted(w.outsider, sender=w.alice)
    with pytest.raises(ContractReverted, match="receiver not allowlisted"):
        s.mint(w.outsider, 1)
    with pytest.raises(ContractReverted, match="still has shares"):
        s.set_allowlisted(w.alice, False)


def test_pause_stops_transfers(w: World) -> None:
    s = w.market.share
    with pytest.raises(ContractReverted, match="not pauser"):
        s.send("pause", sender=w.alice)
    s.send("pause")
    with pytest.raises(ContractReverted, match="paused"):
        s.transfer(w.bob, 1, sender=w.alice)
    s.send("unpause")
    s.transfer(w.bob, 1, sender=w.alice)


def test_transfer_from_needs_allowance_and_allowlisted_spender(w: World) -> None:
    s = w.market.share
    s.approve(w.bob, 5 * SHARE, sender=w.alice)
    s.send("transferFrom", w.alice, w.bob, 5 * SHARE, sender=w.bob)
    with pytest.raises(ContractReverted, match="insufficient allowance"):
        s.send("transferFrom", w.alice, w.bob, 1, sender=w.bob)
    s.approve(w.outsider, SHARE, sender=w.alice)
    with pytest.raises(ContractReverted, match="spender not allowlisted"):
        s.send("transferFrom", w.alice, w.bob, 1, sender=w.outsider)


def test_revenue_is_pro_rata_and_follows_transfers(w: World) -> None:
    s, usd = w.market.share, w.market.usd
    usd.mint(w.renter, 0)
    usd.approve(s.address, 10**12, sender=w.renter)
    s.distribute(1_000 * USD, sender=w.renter)
    assert s.claimable(w.alice) == 600 * USD and s.claimable(w.bob) == 400 * USD
    s.transfer(w.bob, 600 * SHARE, sender=w.alice)  # revenue earned stays with the seller
    s.distribute(1_000 * USD, sender=w.renter)
    assert s.claimable(w.alice) == 600 * USD and s.claimable(w.bob) == 1_400 * USD
    s.claim(sender=w.bob)
    assert usd.balance_of(w.bob) == 1_400 * USD and s.claimable(w.bob) == 0
    assert s.claim(sender=w.bob).value == 0  # nothing twice
    assert s.total_claimed() == 1_400 * USD and s.total_distributed() == 2_000 * USD


def test_rounding_never_pays_more_than_deposited(w: World) -> None:
    s, usd = w.market.share, w.market.usd
    s.mint(w.liquidator, 1)  # an awkward supply: 1000e18 + 1
    usd.approve(s.address, 10**12, sender=w.renter)
    for amount in (7, 1, 333, 10**6 + 1):
        s.distribute(amount, sender=w.renter)
    total = sum(s.claimable(a) for a in (w.alice, w.bob, w.liquidator))
    assert total <= s.total_distributed()
    assert s.total_distributed() - total < 3 + 4  # below one unit per holder plus one per distribution


def test_distribute_refuses_nothing_and_frozen_cannot_claim(w: World) -> None:
    s = w.market.share
    with pytest.raises(ContractReverted, match="nothing to distribute"):
        s.distribute(0, sender=w.renter)
    s.set_frozen(w.alice)
    with pytest.raises(ContractReverted, match="sender frozen"):
        s.claim(sender=w.alice)


def test_new_shares_earn_only_later_revenue_and_self_transfer_changes_nothing(w: World) -> None:
    s, usd = w.market.share, w.market.usd
    usd.approve(s.address, 10**12, sender=w.renter)
    s.distribute(1_000 * USD, sender=w.renter)
    s.mint(w.liquidator, 1_000 * SHARE)  # supply doubles after the first deposit
    assert s.claimable(w.liquidator) == 0
    s.transfer(w.alice, 100 * SHARE, sender=w.alice)
    assert s.claimable(w.alice) == 600 * USD and s.balance_of(w.alice) == 600 * SHARE
    s.distribute(2_000 * USD, sender=w.renter)
    assert s.claimable(w.liquidator) == 1_000 * USD
    assert s.claimable(w.alice) == 1_200 * USD and s.claimable(w.bob) == 800 * USD
    s.transfer(w.alice, 1_000 * SHARE, sender=w.liquidator)  # the buyer does not take earned revenue
    assert s.claimable(w.liquidator) == 1_000 * USD and s.claimable(w.alice) == 1_200 * USD


def test_compliance_flags_are_independent_and_keep_revenue(w: World) -> None:
    s, usd = w.market.share, w.market.usd
    usd.approve(s.address, 10**12, sender=w.renter)
    s.transfer(w.bob, 100 * SHARE, sender=w.alice)
    s.distribute(1_000 * USD, sender=w.renter)
    s.set_frozen(w.bob)
    assert s.call("frozen", w.bob) and s.call("allowlisted", w.bob)
    assert s.claimable(w.bob) == 500 * USD  # flags share a word with the revenue record
    s.set_frozen(w.bob, False)
    assert not s.call("frozen", w.bob) and s.call("allowlisted", w.bob)
    s.transfer(w.alice, 500 * SHARE, sender=w.bob)
    s.set_allowlisted(w.bob, False)  # no shares left: removable
    assert not s.call("allowlisted", w.bob) and s.claimable(w.bob) == 500 * USD
    s.claim(sender=w.bob)  # earned revenue stays claimable after leaving the allowlist
    assert usd.balance_of(w.bob) == 500 * USD


def test_client_helpers_for_flags_and_pause(w: World) -> None:
    s = w.market.share
    assert s.is_allowlisted(w.alice) and not s.is_allowlisted(w.outsider) and not s.is_frozen(w.alice)
    s.pause()
    with pytest.raises(ContractReverted, match="paused"):
        s.mint(w.alice, 1)
    s.unpause()
    s.mint(w.alice, 1)
