"""Stateful property tests: rules are user actions, invariants are accounting identities."""

from __future__ import annotations

from chain_helpers import SHARE, USD, World
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from drakewell.chain import ContractReverted
from drakewell.merkle import MerkleTree, leaf_hash
from drakewell.metering.readings import DELIVERY_LEAF_TYPES

PRICE = 2 * USD


class ShareEscrowVaultMachine(RuleBasedStateMachine):
    world: World

    @initialize()
    def setup(self) -> None:
        self._anchor = self.world.chain.backend.env.anchor()  # type: ignore[attr-defined]
        self._anchor.__enter__()
        w = self.world
        self.m = w.market
        self.holders = [w.alice, w.bob, w.liquidator]
        self.everyone = [*self.holders, w.outsider, w.renter]
        self.distributions = 0
        self.m.usd.mint(w.renter, 10**12)
        self.m.usd.approve(self.m.share.address, 10**15, sender=w.renter)
        self.m.usd.mint(self.m.vault.address, 10**12)
        self.m.vault.post_nav(2 * USD)
        for h in self.holders:
            self.m.share.approve(self.m.vault.address, 10**30, sender=h)
            self.m.usd.approve(self.m.vault.address, 10**15, sender=h)
            self.m.usd.mint(h, 10**9)
        for h in self.holders[:2]:  # the vault starts with collateral earning revenue
            self.m.vault.deposit(50 * SHARE, sender=h)
        self.leases: list[int] = []
        self.epoch = 100

    def teardown(self) -> None:
        self._anchor.__exit__(None, None, None)

    @rule(src=st.integers(0, 4), dst=st.integers(0, 4), amount=st.integers(0, 700 * SHARE))
    def transfer(self, src: int, dst: int, amount: int) -> None:
        a, b = self.everyone[src], self.everyone[dst]
        try:
            self.m.share.transfer(b, amount, sender=a)
        except ContractReverted as exc:
            allowed = a in self.holders and b in self.holders
            assert not allowed or "exceeds balance" in exc.reason, exc.reason

    @rule(amount=st.integers(1, 10**9))
    def distribute(self, amount: int) -> None:
        self.m.share.distribute(amount, sender=self.world.renter)
        self.distributions += 1

    @rule(i=st.integers(0, 2))
    def claim(self, i: int) -> None:
        h = self.holders[i]
        expected = self.m.share.claimable(h)
        before = self.m.usd.balance_of(h)
        self.m.share.claim(sender=h)
        assert self.m.usd.balance_of(h) - before == expected

    @rule(i=st.integers(0, 2))
    def claim_vault_revenue(self, i: int) -> None:
        h = self.holders[i]
        expected = self.m.vault.call("revenue_claimable", h)
        before = self.m.usd.balance_of(h)
        self.m.vault.send("claim_revenue", sender=h)
        assert self.m.usd.balance_of(h) - before == expected

    @rule(gpus=st.integers(1, 64), hours=st.integers(1, 72))
    def open_lease(self, gpus: int, hours: int) -> None:
        now = self.world.chain.timestamp()
        self.leases.append(
            self.m.escrow.open_lease_for(self.world.renter, gpus, now, now + hours * 3_600, PRICE)
        )

    @precondition(lambda self: bool(self.leases))
    @rule(pick=st.integers(0, 10**6), gpu_seconds=st.integers(0, 10**7))
    def settle(self, pick: int, gpu_seconds: int) -> None:
        lid = self.leases[pick % len(self.leases)]
        self.epoch += 1
        row = [lid, self.m.asset_id, self.epoch, gpu_seconds, 1]
        tree = MerkleTree.of(DELIVERY_LEAF_TYPES, [row])
        self.m.meter.anchor(self.m.asset_id, self.epoch, b"\x01" * 32, tree.root, 1, 1, gpu_seconds)
        self.world.chain.warp(self.world.chain.timestamp() + 3_600)
        try:
            self.m.escrow.settle(
                lid, self.epoch, gpu_seconds, 1, tree.proof(leaf_hash(DELIVERY_LEAF_TYPES, row))
            )
        except ContractReverted as exc:
            assert "lease closed" in exc.reason
            return
        self.distributions += 1  # at most one revenue deposit per settlement

    @precondition(lambda self: bool(self.leases))
    @rule(pick=st.integers(0, 10**6))
    def close(self, pick: int) -> None:
        lid = self.leases[pick % len(self.leases)]
        lease = self.m.escrow.lease(lid)
        if self.world.chain.timestamp() < lease["end"]:
            self.world.chain.warp(lease["end"])
        try:
            self.m.escrow.close(lid)
        except ContractReverted as exc:
            assert "lease closed" in exc.reason
            return
        self.distributions += 1  # the released holdback is at most one revenue deposit

    @rule(i=st.integers(0, 2), shares=st.integers(1, 300 * SHARE))
    def deposit(self, i: int, shares: int) -> None:
        try:
            self.m.vault.deposit(shares, sender=self.holders[i])
        except ContractReverted as exc:
            assert "exceeds balance" in exc.reason or "allowance" in exc.reason

    @rule(i=st.integers(0, 2), amount=st.integers(1, 500 * USD))
    def borrow(self, i: int, amount: int) -> None:
        h = self.holders[i]
        limit = self.m.vault.collateral(h) * self.m.vault.call("nav") // SHARE * 5_000 // 10_000
        debt = self.m.vault.debt_of(h)
        try:
            self.m.vault.borrow(amount, sender=h)
        except ContractReverted as exc:
            assert "over LTV" in exc.reason or "stale price" in exc.reason, exc.reason
            return
        assert debt + amount <= limit  # borrowing never exceeds LTV

    @rule(down=st.booleans(), pct=st.integers(1, 40))
    def move_price(self, down: bool, pct: int) -> None:
        nav = self.m.vault.call("nav")
        new = nav * (100 - pct) // 100 if down else nav * (100 + pct) // 100
        self.m.vault.post_nav(max(new, 1))

    @rule(i=st.integers(0, 2), j=st.integers(0, 2), frac=st.integers(1, 50))
    def liquidate(self, i: int, j: int, frac: int) -> None:
        borrower, liq = self.holders[i], self.holders[j]
        debt = self.m.vault.debt_of(borrower)
        if debt == 0 or borrower == liq:
            return
        unhealthy = self.m.vault.health_factor(borrower) < 1
        try:
            self.m.vault.liquidate(borrower, max(1, debt * frac // 100), sender=liq)
        except ContractReverted as exc:
            assert not unhealthy or any(
                r in exc.reason for r in ("exceeds balance", "no debt", "stale price")
            ), exc.reason
            return
        assert unhealthy  # liquidation only when unhealthy

    @invariant()
    def revenue_never_overpaid(self) -> None:
        if not hasattr(self, "m"):
            return
        s = self.m.share
        owed = sum(s.claimable(a) for a in (*self.holders, self.m.vault.address))
        total = s.total_claimed() + owed
        assert total <= s.total_distributed()
        # dust: below one base unit per holder (the vault holds shares too) plus one per deposit
        assert s.total_distributed() - total <= len(self.holders) + 1 + self.distributions

    @invariant()
    def vault_passes_on_no_more_revenue_than_its_collateral_earned(self) -> None:
        if not hasattr(self, "m"):
            return
        v = self.m.vault
        owed = sum(v.call("revenue_claimable", h) for h in self.holders)
        assert owed <= v.call("revenue_reserved") + self.m.share.claimable(v.address)
        assert self.m.usd.balance_of(v.address) >= v.call("revenue_reserved")

    @invariant()
    def escrow_never_pays_more_than_deposited(self) -> None:
        if not hasattr(self, "m"):
            return
        t = self.m.escrow.totals()
        assert t["total_released"] + t["total_refunded"] <= t["total_deposited"]
        held = self.m.usd.balance_of(self.m.escrow.address)
        assert held == t["total_deposited"] - t["total_released"] - t["total_refunded"]

    @invariant()
    def shares_only_with_allowlisted_and_supply_conserved(self) -> None:
        if not hasattr(self, "m"):
            return
        s = self.m.share
        assert s.balance_of(self.world.outsider) == 0 and s.balance_of(self.world.renter) == 0
        held = sum(s.balance_of(a) for a in (*self.holders, self.m.vault.address))
        assert held == s.total_supply() == 1_000 * SHARE


def test_share_escrow_vault_state_machine(world: World) -> None:
    ShareEscrowVaultMachine.world = world
    run_state_machine_as_test(
        ShareEscrowVaultMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
