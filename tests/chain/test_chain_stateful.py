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
from drakewell.core.merkle import MerkleTree, leaf_hash
from drakewell.metering.readings import DELIVERY_LEAF_TYPES

PRICE = 2 * USD
DAY = 86_400


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
        self.lender = w.outsider  # lending needs no allowlisting
        self.m.usd.mint(self.lender, 2 * 10**12)
        self.m.usd.approve(self.m.vault.address, 2 * 10**12, sender=self.lender)
        self.m.vault.supply(10**12, sender=self.lender)
        self.m.vault.post_nav(2 * USD)
        for h in self.holders:
            self.m.share.approve(self.m.vault.address, 10**30, sender=h)
            self.m.usd.approve(self.m.vault.address, 10**15, sender=h)
            self.m.usd.mint(h, 10**9)
        for h in self.holders[:2]:  # the vault starts with collateral earning revenue
            self.m.vault.deposit(50 * SHARE, sender=h)
        self.leases: list[int] = []
        self.anchored: dict[int, tuple[dict[int, list], MerkleTree]] = {}  # epoch -> rows by lease, tree

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
    @rule(pick=st.integers(0, 10**6), which=st.integers(0, 10**6), gpu_seconds=st.integers(0, 10**7))
    def settle(self, pick: int, which: int, gpu_seconds: int) -> None:
        """Settle one of a lease's epochs; an epoch is anchored once, with a row for every lease then open."""
        lid = self.leases[pick % len(self.leases)]
        lease = self.m.escrow.lease(lid)
        first, last = lease["start"] // DAY, (lease["end"] - 1) // DAY
        epoch = first + which % (last - first + 1)
        if epoch not in self.anchored:
            rows = {x: [x, self.m.asset_id, epoch, gpu_seconds, 1] for x in self.leases}
            tree = MerkleTree.of(DELIVERY_LEAF_TYPES, list(rows.values()))
            self.m.meter.anchor(self.m.asset_id, epoch, b"\x01" * 32, tree.root, len(rows), 1, 1)
            self.world.chain.warp(self.world.chain.timestamp() + 3_600)
            self.anchored[epoch] = (rows, tree)
        rows, tree = self.anchored[epoch]
        if lid not in rows:
            return  # opened after its epoch was anchored: nothing delivered to prove
        row = rows[lid]
        cap = self.m.escrow.deliverable_gpu_seconds(lid, epoch)
        try:
            payment = self.m.escrow.settle(
                lid, epoch, row[3], 1, tree.proof(leaf_hash(DELIVERY_LEAF_TYPES, row))
            ).value
        except ContractReverted as exc:
            assert "lease closed" in exc.reason or "already settled" in exc.reason, exc.reason
            return
        assert cap > 0 and payment <= cap * PRICE // 3_600  # never more than the leased GPUs could deliver
        self.distributions += 1  # at most one revenue deposit per settlement

    @precondition(lambda self: bool(self.leases))
    @rule(pick=st.integers(0, 10**6), late=st.booleans())
    def renter_close(self, pick: int, late: bool) -> None:
        """The renter closes only once every overlapping epoch is settled or the deadline passed."""
        lid = self.leases[pick % len(self.leases)]
        lease = self.m.escrow.lease(lid)
        chain = self.world.chain
        deadline = self.m.escrow.close_deadline(lid)
        if chain.timestamp() < lease["end"]:
            chain.warp(lease["end"])
        if late and chain.timestamp() < deadline:
            chain.warp(deadline)
        overlapping = (lease["end"] - 1) // DAY - lease["start"] // DAY + 1
        allowed = lease["settled_epochs"] == overlapping or chain.timestamp() >= deadline
        try:
            self.m.escrow.close(lid, sender=self.world.renter)
        except ContractReverted as exc:
            if lease["closed"]:
                assert "lease closed" in exc.reason, exc.reason
            else:
                assert not allowed and "epochs not settled" in exc.reason, exc.reason
            return
        assert allowed and not lease["closed"]
        self.distributions += 1  # the released holdback is at most one revenue deposit

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
            dust = "below minimum debt" in exc.reason and debt + amount < self.m.spec.min_debt_base
            assert dust or "over LTV" in exc.reason or "stale price" in exc.reason, exc.reason
            return
        assert debt + amount <= limit  # borrowing never exceeds LTV
        assert debt + amount >= self.m.spec.min_debt_base  # nor leaves a dust position

    @rule(down=st.booleans(), pct=st.integers(1, 40))
    def move_price(self, down: bool, pct: int) -> None:
        v = self.m.vault
        nav = v.call("nav")
        new = max(nav * (100 - pct) // 100 if down else nav * (100 + pct) // 100, 1)
        ref = v.call("ref_nav")
        if self.world.chain.timestamp() >= v.call("ref_at") + self.m.spec.nav_move_period_s:
            ref = nav  # a new period starts from the last price
        within = abs(new - ref) * 10_000 <= ref * self.m.spec.nav_max_move_bps
        try:
            v.post_nav(new)
        except ContractReverted as exc:
            assert not within and "moved too far" in exc.reason, exc.reason
            return
        assert within  # however many posts, the price stays within the period's bound

    @rule(amount=st.integers(1, 10**12))
    def supply(self, amount: int) -> None:
        v = self.m.vault
        self.m.usd.mint(self.lender, amount)  # each supply brings its own funds and allowance
        self.m.usd.approve(v.address, amount, sender=self.lender)
        value_before = v.lp_value(self.lender)
        v.supply(amount, sender=self.lender)
        assert v.lp_value(self.lender) <= value_before + amount  # rounding favours the pool

    @rule(pct=st.integers(1, 100))
    def redeem(self, pct: int) -> None:
        v = self.m.vault
        lp = v.lp_shares(self.lender) * pct // 100
        if lp == 0:
            return
        before = self.m.usd.balance_of(self.lender)
        try:
            paid = v.redeem(lp, sender=self.lender).value
        except ContractReverted as exc:
            assert "not enough liquidity" in exc.reason, exc.reason
            return
        assert self.m.usd.balance_of(self.lender) - before == paid

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
    def vault_holds_what_it_owes_lenders_and_depositors(self) -> None:
        if not hasattr(self, "m"):
            return
        v = self.m.vault
        assert self.m.usd.balance_of(v.address) >= v.call("cash") + v.call("revenue_reserved")
        assert v.lp_value(self.lender) <= v.total_assets()

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
