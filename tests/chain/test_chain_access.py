"""Who may call each state-changing function the hardening added, and that nobody else can.

Roles are held by the deployer (the default sender); every other account is refused with the
contract's own reason. docs/SECURITY.md lists the roles and what each may do.
"""

from __future__ import annotations

import pytest
from chain_helpers import SHARE, USD, World

from drakewell.chain import ContractReverted
from drakewell.core.merkle import MerkleTree


def test_only_the_pauser_pauses_and_unpauses_each_contract(w: World) -> None:
    m = w.market
    d = w.chain.deploy_distributor(m.usd.address, MerkleTree.of(["uint256"], [[1], [2]]).root)
    contracts = {
        "ComputeShare": m.share,
        "CreditVault": m.vault,
        "LeaseEscrow": m.escrow,
        "MeterRegistry": m.meter,
        "MerkleDistributor": d,
    }
    for name, c in contracts.items():
        for outsider in (w.alice, w.outsider):  # a holder or any other account
            with pytest.raises(ContractReverted, match=f"{name}: not pauser"):
                c.pause(sender=outsider)
        c.pause()
        assert c.paused()
        with pytest.raises(ContractReverted, match=f"{name}: not pauser"):
            c.unpause(sender=w.alice)
        c.unpause()
        assert not c.paused()
    c.grant_role("PAUSER_ROLE", w.alice)  # the role, not the deployer's address, is what counts
    c.pause(sender=w.alice)
    assert c.paused()


def test_only_compliance_adds_a_vault(w: World) -> None:
    m = w.market
    other = w.chain.new_account()
    for caller in (w.alice, w.outsider):
        with pytest.raises(ContractReverted, match="ComputeShare: not compliance"):
            m.share.add_vault(other, sender=caller)
    assert not m.share.is_allowlisted(other)
    with pytest.raises(ContractReverted, match="vault already added"):
        m.share.add_vault(m.vault.address)
    m.share.add_vault(other)
    assert m.share.is_allowlisted(other) and m.share.call("vaults", 1) == other


def test_only_the_escrow_deposit_counts_as_escrow_revenue(w: World) -> None:
    m = w.market
    assert m.share.has_role("REVENUE_ROLE", m.escrow.address)
    assert not m.share.has_role("REVENUE_ROLE", w.alice)
    m.usd.mint(w.alice, 10 * USD)
    m.usd.approve(m.share.address, 10 * USD, sender=w.alice)
    m.share.distribute(10 * USD, sender=w.alice)
    assert m.share.total_distributed() == 10 * USD and m.share.total_escrow_revenue() == 0


def test_lenders_supply_and_redeem_only_for_themselves(w: World) -> None:
    m = w.market
    lender = w.chain.new_account()
    m.usd.mint(lender, 100 * USD)
    m.usd.approve(m.vault.address, 100 * USD, sender=lender)
    lp = m.vault.supply(100 * USD, sender=lender).value
    assert m.vault.lp_shares(lender) == lp > 0  # minted to the payer, nobody else
    for thief in (w.outsider, w.alice):  # holding no lender shares, nobody redeems the lender's
        with pytest.raises(ContractReverted, match="not enough lender shares"):
            m.vault.redeem(lp, sender=thief)
    assert m.vault.redeem(lp, sender=lender).value == 100 * USD
    assert m.usd.balance_of(lender) == 100 * USD and m.vault.lp_shares(lender) == 0


def test_only_the_renter_or_the_operator_closes_a_lease(w: World) -> None:
    m = w.market
    start = (w.chain.timestamp() // 86_400 + 1) * 86_400
    lid = m.escrow.open_lease_for(w.renter, 1, start, start + 3_600, 2 * USD)
    w.chain.warp(m.escrow.close_deadline(lid))  # late enough for the renter
    for caller in (w.alice, w.outsider):
        with pytest.raises(ContractReverted, match="not renter or operator"):
            m.escrow.close(lid, sender=caller)
    m.escrow.close(lid, sender=w.renter)
    assert m.escrow.lease(lid)["closed"]


def test_vault_withdraw_and_borrow_need_an_allowlisted_account(w: World) -> None:
    m = w.market
    m.usd.mint(w.outsider, 1_000 * USD)
    m.usd.approve(m.vault.address, 1_000 * USD, sender=w.outsider)
    m.vault.supply(1_000 * USD, sender=w.outsider)
    m.vault.post_nav(2 * USD)
    with pytest.raises(ContractReverted, match="account not allowlisted"):
        m.vault.borrow(m.spec.min_debt_base, sender=w.outsider)
    with pytest.raises(ContractReverted, match="account not allowlisted"):
        m.vault.withdraw(SHARE, sender=w.outsider)


def test_only_the_operator_anchors_a_capacity_root_once_before_the_epoch_is_final(w: World) -> None:
    m = w.market
    asset, epoch, root = m.asset_id, 9, b"\x07" * 32
    with pytest.raises(ContractReverted, match="epoch not anchored"):
        m.meter.anchor_capacity(asset, epoch, root)
    m.meter.anchor(asset, epoch, b"\x01" * 32, b"\x02" * 32, 1, 1, 1)
    for caller in (w.alice, w.outsider):
        with pytest.raises(ContractReverted, match="MeterRegistry: not operator"):
            m.meter.anchor_capacity(asset, epoch, root, sender=caller)
    m.meter.pause()
    with pytest.raises(ContractReverted, match="pausable: contract is paused"):
        m.meter.anchor_capacity(asset, epoch, root)
    m.meter.unpause()
    with pytest.raises(ContractReverted, match="empty root"):
        m.meter.anchor_capacity(asset, epoch, bytes(32))
    m.meter.anchor_capacity(asset, epoch, root)
    assert m.meter.capacity_root(asset, epoch) == root
    with pytest.raises(ContractReverted, match="capacity root already anchored"):
        m.meter.anchor_capacity(asset, epoch, b"\x08" * 32)  # no swapping the evidence afterwards
    m.meter.void_epoch(asset, epoch)
    with pytest.raises(ContractReverted, match="epoch not anchored"):
        m.meter.anchor_capacity(asset, epoch, root)
    m.meter.anchor(asset, epoch, b"\x03" * 32, b"\x04" * 32, 1, 1, 1)  # anchored again: a fresh slot
    assert m.meter.capacity_root(asset, epoch) == bytes(32)
    w.chain.warp(w.chain.timestamp() + m.spec.challenge_window_s)
    with pytest.raises(ContractReverted, match="epoch is final"):
        m.meter.anchor_capacity(asset, epoch, root)  # too late to be evidence for a challenge
