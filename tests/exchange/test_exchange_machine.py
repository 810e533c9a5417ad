"""A state machine over the whole engine: users trade, deposit, withdraw, and the exchange restarts
from its journal at random moments; invariants are accounting identities."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from exchange_helpers import INST, INST_1H, seed_accounts
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from drakewell.core.errors import ExchangeError
from drakewell.exchange import Side
from drakewell.exchange.engine import Engine
from drakewell.exchange.journal import recover

ACCOUNTS = st.sampled_from(("alice", "bob", "carol"))
PRICES = st.integers(1_999_990, 2_000_010)


class ExchangeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "j.sqlite"
        self.engine, self.journal = recover(self.path)
        seed_accounts(self.engine)
        self.engine.commit()
        self.net_deposits = sum(a.balance for a in self.engine.accounts.values())

    def teardown(self) -> None:
        self.journal.close()
        self.tmp.cleanup()

    def _try(self, fn: object, *args: object, **kwargs: object) -> None:
        with contextlib.suppress(ExchangeError):
            fn(*args, **kwargs)  # type: ignore[operator]

    @rule(
        account=ACCOUNTS,
        inst=st.sampled_from((INST, INST_1H)),
        side=st.sampled_from(("buy", "sell")),
        qty=st.integers(1, 8),
        price=PRICES,
        tif=st.sampled_from(("GTC", "GTC", "IOC", "FOK")),
        post_only=st.booleans(),
    )
    def place(
        self, account: str, inst: str, side: str, qty: int, price: int, tif: str, post_only: bool
    ) -> None:
        self._try(
            self.engine.place,
            account,
            inst,
            side,
            price=price,
            qty=qty,
            tif=tif,
            order_type="limit",
            post_only=post_only and tif == "GTC",
        )

    @rule(account=ACCOUNTS, side=st.sampled_from(("buy", "sell")), qty=st.integers(1, 20), price=PRICES)
    def market(self, account: str, side: str, qty: int, price: int) -> None:
        self._try(self.engine.place, account, INST, side, price=price, qty=qty, order_type="market")

    @rule(account=ACCOUNTS, oid=st.integers(1, 60))
    def cancel(self, account: str, oid: int) -> None:
        self._try(self.engine.cancel, account, oid)

    @rule(
        account=ACCOUNTS, oid=st.integers(1, 60), price=st.none() | PRICES, qty=st.none() | st.integers(1, 9)
    )
    def amend(self, account: str, oid: int, price: int | None, qty: int | None) -> None:
        self._try(self.engine.amend, account, oid, price, qty)

    @rule(account=ACCOUNTS, amount=st.integers(1, 10**9))
    def deposit(self, account: str, amount: int) -> None:
        self.engine.deposit(account, amount)
        self.net_deposits += amount

    @rule(account=ACCOUNTS, amount=st.integers(1, 10**13))
    def withdraw(self, account: str, amount: int) -> None:
        try:
            self.engine.withdraw(account, amount)
        except ExchangeError:
            return
        self.net_deposits -= amount

    @rule()
    def restart(self) -> None:
        self.engine.commit()
        before = self.engine.snapshot()
        self.journal.close()
        self.engine, self.journal = recover(self.path)
        assert self.engine.snapshot() == before

    @invariant()
    def book_not_crossed(self) -> None:
        for inst in self.engine.instruments.values():
            bid, ask = inst.book.best_bid(), inst.book.best_ask()
            assert bid is None or ask is None or bid < ask

    @invariant()
    def money_is_conserved(self) -> None:
        e: Engine = self.engine
        held = sum(a.balance for a in e.accounts.values()) + sum(lease.amount for lease in e.leases)
        assert held == self.net_deposits
        for name, acct in e.accounts.items():
            open_buys = sum(
                o.price * o.qty * e.instruments[o.instrument].hours
                for o in e.orders.values()
                if o.account == name and o.status == "open" and o.side == Side.BUY
            )
            assert acct.reserved == open_buys and acct.free >= 0

    @invariant()
    def no_gpu_hour_sold_twice(self) -> None:
        e = self.engine
        for asset in e.assets.values():
            committed = sum(q for q in asset.windows.values())
            open_sells = sum(
                o.qty
                for o in e.orders.values()
                if o.status == "open" and o.side != Side.BUY and o.asset == asset.asset_id
            )
            leased = sum(lease.gpus for lease in e.leases if lease.asset == asset.asset_id)
            assert committed == asset.total == open_sells + leased
            for start_s, end_s in asset.windows:
                assert asset.peak(start_s, end_s) <= asset.gpus

    @invariant()
    def quantities_are_conserved(self) -> None:
        for o in self.engine.orders.values():
            assert o.submitted == o.filled + o.qty + o.cancelled


ExchangeMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=40, deadline=None, suppress_health_check=list(HealthCheck)
)
TestExchangeMachine = ExchangeMachine.TestCase
