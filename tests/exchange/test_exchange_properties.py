"""Property tests: book invariants after every command, and a differential test against a small,
obviously-correct reference matcher on random command streams."""

from __future__ import annotations

from dataclasses import dataclass, field

from exchange_helpers import INST, funded_engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drakewell.exchange import Engine, OrderRejected, Side

P = 1_000_000
ACCOUNTS = ("alice", "bob", "carol")
BUY = 1  # the reference's own sign for buys; the engine's Side.BUY must equal it
HOURS = 24


# --- the reference: a flat list, sorted afresh for every incoming order ------------------------


@dataclass
class RefOrder:
    oid: int
    account: str
    side: int
    price: int
    qty: int
    stamp: int
    post_only: bool = False


@dataclass
class Reference:
    resting: list[RefOrder] = field(default_factory=list)
    trades: list[tuple[int, int, int, int]] = field(default_factory=list)  # buy oid, sell oid, qty, price
    clock: int = 0

    def _queue(self, side: int) -> list[RefOrder]:
        same = [o for o in self.resting if o.side == side]
        # best price first (highest bid / lowest ask), then arrival
        return sorted(same, key=lambda o: (-o.price if side == BUY else o.price, o.stamp))

    @staticmethod
    def _crosses(side: int, limit: int, price: int) -> bool:
        return price <= limit if side == BUY else price >= limit

    def _fillable(self, account: str, side: int, price: int) -> int:
        total = 0
        for o in self._queue(-side):
            if not self._crosses(side, price, o.price):
                break
            if o.account == account:
                break
            total += o.qty
        return total

    def place(
        self, oid: int, account: str, side: int, price: int, qty: int, tif: str, post_only: bool
    ) -> str:
        opp = self._queue(-side)
        if post_only and opp and self._crosses(side, price, opp[0].price):
            return "post_only_would_cross"
        if tif == "FOK" and self._fillable(account, side, price) < qty:
            return "fok_not_fillable"
        self._take(RefOrder(oid, account, side, price, qty, 0, post_only), tif)
        return "ok"

    def _take(self, order: RefOrder, tif: str) -> None:
        stp = False
        for maker in self._queue(-order.side):
            if not order.qty or not self._crosses(order.side, order.price, maker.price):
                break
            if maker.account == order.account:
                stp = True
                break
            q = min(order.qty, maker.qty)
            buy, sell = (order, maker) if order.side == BUY else (maker, order)
            self.trades.append((buy.oid, sell.oid, q, maker.price))
            order.qty -= q
            maker.qty -= q
            if not maker.qty:
                self.resting.remove(maker)
        if order.qty and tif == "GTC" and not stp:
            self.clock += 1
            order.stamp = self.clock
            self.resting.append(order)

    def _find(self, oid: int, account: str) -> RefOrder | None:
        return next((o for o in self.resting if o.oid == oid and o.account == account), None)

    def cancel(self, oid: int, account: str) -> str:
        o = self._find(oid, account)
        if o is None:
            return "gone"
        self.resting.remove(o)
        return "ok"

    def amend(self, oid: int, account: str, price: int | None, qty: int | None) -> str:
        o = self._find(oid, account)
        if o is None:
            return "gone"
        new_price = o.price if price is None else price
        new_qty = o.qty if qty is None else qty
        if new_price == o.price and new_qty == o.qty:
            return "bad_amend"
        if new_price == o.price and new_qty < o.qty:
            o.qty = new_qty
            return "ok"
        opp = self._queue(-o.side)
        if o.post_only and opp and self._crosses(o.side, new_price, opp[0].price):
            return "post_only_would_cross"
        self.resting.remove(o)
        self._take(RefOrder(oid, account, o.side, new_price, new_qty, 0, o.post_only), "GTC")
        return "ok"

    def book(self, side: int) -> list[tuple[int, int, int]]:
        return [(o.oid, o.price, o.qty) for o in self._queue(side)]


# --- random streams -------------------------------------------------------------------------------

place_cmd = st.tuples(
    st.just("place"),
    st.sampled_from(ACCOUNTS),
    st.sampled_from(("buy", "sell")),
    st.integers(P - 4, P + 4),
    st.integers(1, 6),
    st.sampled_from(("GTC", "GTC", "GTC", "IOC", "FOK", "POST", "MKT")),
)
cancel_cmd = st.tuples(st.just("cancel"), st.sampled_from(ACCOUNTS), st.integers(1, 80))
amend_cmd = st.tuples(
    st.just("amend"),
    st.sampled_from(ACCOUNTS),
    st.integers(1, 80),
    st.one_of(st.none(), st.integers(P - 4, P + 4)),
    st.one_of(st.none(), st.integers(1, 8)),
)
streams = st.lists(st.one_of(place_cmd, place_cmd, cancel_cmd, amend_cmd), min_size=1, max_size=70)


def _engine() -> Engine:
    return funded_engine(buyers=("alice", "carol"), sellers=("bob",))


def _run_engine(engine: Engine, cmd: tuple[object, ...]) -> str:
    try:
        if cmd[0] == "place":
            _, account, side, price, qty, kind = cmd
            tif = kind if kind in ("GTC", "IOC", "FOK") else ("IOC" if kind == "MKT" else "GTC")
            engine.place(
                str(account),
                INST,
                str(side),
                price=int(price),
                qty=int(qty),
                tif=tif,
                order_type="market" if kind == "MKT" else "limit",
                post_only=kind == "POST",
            )
        elif cmd[0] == "cancel":
            engine.cancel(str(cmd[1]), int(cmd[2]))  # type: ignore[call-overload]
        else:
            engine.amend(str(cmd[1]), int(cmd[2]), cmd[3], cmd[4])  # type: ignore[call-overload, arg-type]
    except OrderRejected as exc:
        return "gone" if exc.code in ("unknown_order", "order_closed") else exc.code
    return "ok"


def _run_reference(ref: Reference, cmd: tuple[object, ...], next_oid: int) -> str:
    if cmd[0] == "place":
        _, account, side, price, qty, kind = cmd
        tif = kind if kind in ("GTC", "IOC", "FOK") else ("IOC" if kind == "MKT" else "GTC")
        return ref.place(
            next_oid,
            str(account),
            BUY if side == "buy" else -BUY,
            int(price),
            int(qty),  # type: ignore[call-overload]
            str(tif),
            kind == "POST",
        )
    if cmd[0] == "cancel":
        return ref.cancel(int(cmd[2]), str(cmd[1]))  # type: ignore[call-overload]
    return ref.amend(int(cmd[2]), str(cmd[1]), cmd[3], cmd[4])  # type: ignore[call-overload, arg-type]


def _check_invariants(engine: Engine, deposits: int, queued_at: dict[int, int]) -> None:
    book = engine.book(INST)
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is None or ask is None or bid < ask, "book is crossed"
    reserved: dict[str, int] = dict.fromkeys(engine.accounts, 0)
    committed = 0
    for o in engine.orders.values():
        assert o.submitted == o.filled + o.qty + o.cancelled, f"order {o.oid} does not conserve quantity"
        if o.status == "open":
            if o.side == Side.BUY:
                reserved[o.account] += o.price * o.qty * HOURS
            else:
                committed += o.qty
        else:
            assert o.qty == 0
    for side in (book.bids, book.asks):
        for key in side.keys:
            live = [o for o in side.levels[key] if o.qty]
            assert live, "an empty level is listed"
            stamps = [queued_at[o.oid] for o in live]
            assert stamps == sorted(stamps), "FIFO broken within a level"
    for name, acct in engine.accounts.items():
        assert acct.reserved == reserved[name], f"{name}'s collateral does not match its open buys"
    money = sum(a.balance for a in engine.accounts.values()) + sum(lease.amount for lease in engine.leases)
    assert money == deposits, "money created or destroyed"
    leased = sum(lease.gpus for lease in engine.leases)
    assert sum(a.total for a in engine.assets.values()) == committed + leased, "capacity not conserved"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_engine_matches_reference_and_keeps_invariants(stream: list[tuple[object, ...]]) -> None:
    engine = _engine()
    deposits = sum(a.balance for a in engine.accounts.values())
    ref = Reference()
    queued_at: dict[int, int] = {}
    last_seen: dict[int, tuple[int, int]] = {}
    for step, cmd in enumerate(stream):
        oid = engine.next_oid
        got = _run_engine(engine, cmd)
        want = _run_reference(ref, cmd, oid)
        assert got == want, f"step {step} {cmd}: engine {got}, reference {want}"
        if got == "ok":
            _stamp(engine, cmd, oid, step, queued_at, last_seen)
        engine_trades = [(t.buy_oid, t.sell_oid, t.qty, t.price) for t in engine.trades]
        assert engine_trades == ref.trades, f"step {step} {cmd}: trades differ"
        assert [(o.oid, o.price, o.qty) for o in engine.book(INST).bids.orders()] == ref.book(Side.BUY)
        assert [(o.oid, o.price, o.qty) for o in engine.book(INST).asks.orders()] == ref.book(Side.SELL)
        _check_invariants(engine, deposits, queued_at)


def _stamp(
    engine: Engine,
    cmd: tuple[object, ...],
    oid: int,
    step: int,
    queued_at: dict[int, int],
    last_seen: dict[int, tuple[int, int]],
) -> None:
    """Record when an order joined the back of its level: on entry, or on an amend that loses priority."""
    if cmd[0] == "place":
        queued_at[oid] = step
    elif cmd[0] == "amend":
        target = int(cmd[2])  # type: ignore[call-overload]
        before_price, before_open = last_seen[target]
        price, qty = cmd[3], cmd[4]
        keeps = (price is None or price == before_price) and qty is not None and qty < before_open
        if not keeps:
            queued_at[target] = step
    for o in engine.orders.values():
        if o.status == "open":
            last_seen[o.oid] = (o.price, o.qty)
