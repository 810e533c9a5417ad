"""Matching rules, risk and every refusal path of the engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from exchange_helpers import INST, INST_1H, START_S, escrow_for, funded_engine

from drakewell.core.errors import ExchangeError
from drakewell.exchange.engine import (
    AccountError,
    Engine,
    EngineHalted,
    OrderRejected,
    UnknownOrder,
    hash_api_key,
)
from drakewell.exchange.journal import Journal, recover, replay
from drakewell.exchange.risk import BelowFloor, InsufficientBalance, InsufficientCapacity

P = 2_000_000  # 2 USD per GPU-hour


def test_price_time_priority_and_partial_fills() -> None:
    e = funded_engine()
    a = e.place("bob", INST, "sell", price=P + 10, qty=5).order
    b = e.place("dave", INST, "sell", price=P, qty=5).order
    c = e.place("bob", INST, "sell", price=P, qty=5).order  # same price as b, later
    taker = e.place("alice", INST, "buy", price=P + 10, qty=12).order
    assert [(t.sell_oid, t.qty, t.price) for t in e.trades] == [
        (b.oid, 5, P),
        (c.oid, 5, P),
        (a.oid, 2, P + 10),
    ]
    assert taker.status == "filled" and taker.filled == 12
    assert a.qty == 3 and a.filled == 2 and a.status == "open"
    assert e.book(INST).best_ask() == P + 10


def test_buy_collateral_is_reserved_then_settled_at_the_trade_price() -> None:
    e = funded_engine()
    alice = e.accounts["alice"]
    before = alice.balance
    e.place("bob", INST, "sell", price=P, qty=4)
    buy = e.place("alice", INST, "buy", price=P + 500, qty=10).order
    # 4 filled at P (the better price), 6 rest reserved at the limit
    assert alice.balance == before - P * 4 * 24
    assert alice.reserved == (P + 500) * 6 * 24
    assert (
        e.leases[0].amount == P * 4 * 24 and e.leases[0].renter == "alice" and e.leases[0].asset == "pool-bob"
    )
    e.cancel("alice", buy.oid)
    assert alice.reserved == 0
    total = sum(a.balance for a in e.accounts.values()) + sum(lease.amount for lease in e.leases)
    assert total == 4 * 10_000_000 * 1_000_000


def test_ioc_cancels_the_rest_and_fok_is_all_or_nothing() -> None:
    e = funded_engine()
    e.place("bob", INST, "sell", price=P, qty=3)
    ioc = e.place("alice", INST, "buy", price=P, qty=5, tif="IOC").order
    assert (ioc.filled, ioc.cancelled, ioc.status, ioc.reason) == (3, 2, "cancelled", "unfilled_ioc")
    assert e.accounts["alice"].reserved == 0
    e.place("bob", INST, "sell", price=P, qty=3)
    with pytest.raises(OrderRejected, match="fill-or-kill") as info:
        e.place("alice", INST, "buy", price=P, qty=4, tif="FOK")
    assert info.value.code == "fok_not_fillable"
    fok = e.place("alice", INST, "buy", price=P, qty=3, tif="FOK").order
    assert fok.status == "filled"


def test_market_order_stops_at_its_protection_price() -> None:
    e = funded_engine()
    e.place("bob", INST, "sell", price=P, qty=2)
    e.place("bob", INST, "sell", price=P + 100, qty=2)
    e.place("bob", INST, "sell", price=P + 1000, qty=2)
    m = e.place("alice", INST, "buy", price=P + 100, qty=10, order_type="market").order
    assert m.filled == 4 and m.cancelled == 6 and m.status == "cancelled"
    assert e.book(INST).best_ask() == P + 1000
    with pytest.raises(OrderRejected) as info:
        e.place("alice", INST, "buy", price=None, qty=1, order_type="market")
    assert info.value.code == "missing_protection"


def test_post_only_refuses_to_cross_and_rests_otherwise() -> None:
    e = funded_engine()
    e.place("bob", INST, "sell", price=P, qty=2)
    with pytest.raises(OrderRejected) as info:
        e.place("alice", INST, "buy", price=P, qty=1, post_only=True)
    assert info.value.code == "post_only_would_cross"
    o = e.place("alice", INST, "buy", price=P - 1, qty=1, post_only=True).order
    assert o.status == "open" and e.book(INST).best_bid() == P - 1


def test_self_trade_prevention_cancels_the_taker() -> None:
    e = funded_engine()
    e.place("dave", INST, "sell", price=P - 5, qty=1)
    own = e.place("alice", INST, "sell", price=P, qty=3).order
    buy = e.place("alice", INST, "buy", price=P, qty=5).order
    assert buy.filled == 1 and buy.status == "cancelled" and buy.reason == "self_trade_prevented"
    assert own.qty == 3 and own.status == "open"
    assert all(t.buyer != t.seller for t in e.trades)
    # FOK counts only the liquidity ahead of its own resting order
    with pytest.raises(OrderRejected, match="fill-or-kill"):
        e.place("alice", INST, "buy", price=P, qty=1, tif="FOK")


def test_amend_down_keeps_priority_and_up_or_reprice_loses_it() -> None:
    e = funded_engine()
    first = e.place("bob", INST, "sell", price=P, qty=5).order
    second = e.place("dave", INST, "sell", price=P, qty=5).order
    e.amend("bob", first.oid, qty=3)
    assert first.qty == 3 and first.cancelled == 2
    e.place("alice", INST, "buy", price=P, qty=1)
    assert e.trades[-1].sell_oid == first.oid  # kept its place
    grown = e.amend("bob", first.oid, qty=6).order
    e.place("alice", INST, "buy", price=P, qty=1)
    assert e.trades[-1].sell_oid == second.oid  # lost its place
    assert grown.submitted == grown.filled + grown.qty + grown.cancelled
    moved = e.amend("dave", second.oid, price=P - 1).order
    assert e.book(INST).best_ask() == P - 1 and moved.qty == 4
    # a buy amended through the ask trades at once
    bid = e.place("carol", INST, "buy", price=P - 10, qty=2).order
    crossed = e.amend("carol", bid.oid, price=P - 1)
    assert crossed.order.status == "filled" and e.trades[-1].price == P - 1
    assert crossed.fills == tuple(e.trades[-len(crossed.fills) :]) and sum(t.qty for t in crossed.fills) == 2


def test_amend_returns_the_order_and_the_trades_a_reprice_makes() -> None:
    e = funded_engine()
    ask = e.place("bob", INST, "sell", price=P, qty=3).order
    bid = e.place("alice", INST, "buy", price=P - 10, qty=5).order
    shrunk = e.amend("alice", bid.oid, qty=4)
    assert shrunk.order is bid and shrunk.fills == ()  # a size decrease keeps the order and trades nothing
    crossed = e.amend("alice", bid.oid, price=P)
    assert [(t.sell_oid, t.buy_oid, t.price, t.qty, t.taker_side.label) for t in crossed.fills] == [
        (ask.oid, bid.oid, P, 3, "buy")
    ]
    assert crossed.fills == tuple(e.trades) and len(e.leases) == 1
    assert crossed.order is e.orders[bid.oid] and crossed.order.oid == bid.oid
    assert crossed.order.filled == 3 and crossed.order.qty == 1 and crossed.order.status == "open"
    resting = e.amend("alice", bid.oid, price=P - 5)  # reprices below the (now empty) ask side
    assert resting.fills == () and resting.order.price == P - 5


def test_same_gpu_hour_is_never_sold_twice_across_overlapping_contracts() -> None:
    e = Engine()
    e.open_account("prov", hash_api_key("p"))
    e.register_asset(
        "prov", "pool", "H100-SXM", "us-tx", 8, START_S, START_S + 86400, escrow=escrow_for("pool")
    )
    e.place("prov", INST, "sell", price=P, qty=6)  # 24 h from START
    with pytest.raises(InsufficientCapacity, match="fewer than 3 GPUs"):
        e.place("prov", INST_1H, "sell", price=P, qty=3)  # hour 5 overlaps
    e.place("prov", INST_1H, "sell", price=P, qty=2)
    later = "H100-SXM.us-tx.2026-12-02T00Z.1h"  # outside the asset's window
    with pytest.raises(InsufficientCapacity, match="not available"):
        e.place("prov", later, "sell", price=P, qty=1)
    other_region = "H100-SXM.us-va.2026-12-01T00Z.24h"
    with pytest.raises(InsufficientCapacity, match="no registered asset"):
        e.place("prov", other_region, "sell", price=P, qty=1)


def test_cancelled_sell_frees_its_capacity_and_fills_keep_it() -> None:
    e = funded_engine(gpus=10)
    s = e.place("bob", INST, "sell", price=P, qty=10).order
    e.place("alice", INST, "buy", price=P, qty=4)
    e.cancel("bob", s.oid)
    e.place("bob", INST, "sell", price=P, qty=6)  # 4 leased + 6 = 10
    with pytest.raises(InsufficientCapacity):
        e.place("bob", INST, "sell", price=P, qty=1)


def test_floor_price_refuses_cheaper_sells_unless_allowed() -> None:
    e = funded_engine(floor_price=P)
    with pytest.raises(BelowFloor, match="floor"):
        e.place("bob", INST, "sell", price=P - 1, qty=1)
    ok = e.place("bob", INST, "sell", price=P - 1, qty=1, allow_below_floor=True).order
    assert ok.status == "open"
    resting = e.place("dave", INST, "sell", price=P + 5, qty=1).order
    with pytest.raises(BelowFloor):
        e.amend("dave", resting.oid, price=P - 2)


def test_insufficient_balance_and_withdrawals() -> None:
    e = funded_engine(balance=P * 24 * 10)
    e.place("alice", INST, "buy", price=P, qty=10)
    with pytest.raises(InsufficientBalance, match="collateral"):
        e.place("alice", INST, "buy", price=P, qty=1)
    with pytest.raises(InsufficientBalance, match="free balance"):
        e.withdraw("alice", 1)
    assert e.withdraw("carol", 5) == P * 24 * 10 - 5
    o = e.place("carol", INST, "buy", price=P, qty=1).order
    with pytest.raises(InsufficientBalance, match="more base units"):
        e.amend("carol", o.oid, qty=10)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"side": "hold"}, "bad_side"),
        ({"instrument": "A100.us-tx.2026-12-01T00Z.24h"}, "bad_instrument"),
        ({"qty": 0}, "bad_quantity"),
        ({"qty": 1.5}, "bad_quantity"),
        ({"qty": True}, "bad_quantity"),
        ({"price": 0}, "bad_price"),
        ({"price": None}, "bad_price"),
        ({"price": 10**13}, "bad_price"),
        ({"tif": "DAY"}, "bad_tif"),
        ({"tif": "IOC", "post_only": True}, "bad_tif"),
        ({"order_type": "stop"}, "bad_order_type"),
        ({"order_type": "market", "post_only": True}, "bad_order_type"),
        ({"account": "mallory"}, "unknown_account"),
    ],
)
def test_bad_orders_are_refused_without_changing_state(kwargs: dict[str, object], code: str) -> None:
    e = funded_engine()
    before = e.snapshot()
    args: dict[str, object] = {"account": "alice", "instrument": INST, "side": "buy", "qty": 1, "price": P}
    args.update(kwargs)
    with pytest.raises(OrderRejected) as info:
        e.place(**args)  # type: ignore[arg-type]
    assert info.value.code == code and info.value.hint
    assert e.snapshot() == before


def test_cancel_and_amend_refusals() -> None:
    e = funded_engine()
    o = e.place("alice", INST, "buy", price=P, qty=2).order
    with pytest.raises(UnknownOrder):
        e.cancel("carol", o.oid)  # not the owner
    with pytest.raises(UnknownOrder):
        e.cancel("alice", 999)
    with pytest.raises(OrderRejected, match="changes nothing"):
        e.amend("alice", o.oid, price=P)
    with pytest.raises(OrderRejected, match="needs a new price"):
        e.amend("alice", o.oid)
    with pytest.raises(OrderRejected) as info:
        e.amend("alice", o.oid, qty=0)
    assert info.value.code == "bad_quantity"
    post = e.place("carol", INST, "sell", price=P + 10, qty=1, post_only=True).order
    with pytest.raises(OrderRejected, match="post-only"):
        e.amend("carol", post.oid, price=P)
    e.cancel("alice", o.oid)
    with pytest.raises(OrderRejected, match="already cancelled"):
        e.cancel("alice", o.oid)
    with pytest.raises(OrderRejected, match="already cancelled"):
        e.amend("alice", o.oid, qty=1)
    grow = e.place("bob", INST, "sell", price=P + 20, qty=5).order
    with pytest.raises(InsufficientCapacity):
        e.amend("bob", grow.oid, qty=10**6)


def test_account_and_asset_refusals() -> None:
    e = Engine()
    e.open_account("a", hash_api_key("k"))
    with pytest.raises(AccountError, match="already exists"):
        e.open_account("a", hash_api_key("other"))
    with pytest.raises(AccountError, match="already belongs"):
        e.open_account("b", hash_api_key("k"))
    with pytest.raises(AccountError, match="SHA-256"):
        e.open_account("b", "short")
    with pytest.raises(AccountError, match="printable"):
        e.open_account("", hash_api_key("x"))
    with pytest.raises(AccountError, match="no account"):
        e.deposit("zz", 5)
    with pytest.raises(OrderRejected, match="amount"):
        e.deposit("a", 0)
    good = ("a", "pool", "H100-SXM", "us-tx", 8, START_S, START_S + 3600, 0)
    for i, bad in enumerate([("B300",), ("xx-xx",), (0,), (START_S, START_S), (-1,)]):
        args = list(good)
        pos = {0: 2, 1: 3, 2: 4, 3: 5, 4: 7}[i]
        args[pos : pos + len(bad)] = bad
        with pytest.raises(OrderRejected) as info:
            e.register_asset(*args)
        assert info.value.code == "bad_asset"  # type: ignore[arg-type]
    e.register_asset(*good)
    with pytest.raises(AccountError, match="already registered"):
        e.register_asset(*good)
    with pytest.raises(InsufficientCapacity, match="not registered to"):
        e.place("a", INST, "sell", price=P, qty=1, asset="nope")
    assert e.seq == 2  # one account, one asset: refusals take no sequence number


def test_an_asset_names_its_own_escrow_and_without_one_backs_no_sell() -> None:
    from drakewell.exchange.risk import NoEscrow

    e = Engine()
    e.open_account("prov", hash_api_key("p"))
    window = (START_S, START_S + 86400)
    with pytest.raises(AccountError, match="20-byte hex address") as info:
        e.register_asset("prov", "pool", "H100-SXM", "us-tx", 8, *window, escrow="0x1234")
    assert info.value.code == "bad_escrow"
    e.register_asset("prov", "pool", "H100-SXM", "us-tx", 8, *window, escrow=escrow_for("pool"))
    with pytest.raises(AccountError, match="already backs asset 'pool'") as info:
        e.register_asset(
            "prov",
            "twin",
            "H100-SXM",
            "us-tx",
            8,
            *window,
            escrow="0x" + escrow_for("pool")[2:].upper(),
        )
    assert info.value.code == "escrow_registered"
    e.register_asset("prov", "bare", "B200", "us-tx", 8, *window)  # no escrow: registered, never sold
    with pytest.raises(NoEscrow, match="no LeaseEscrow") as refused:
        e.place("prov", "B200.us-tx.2026-12-01T00Z.24h", "sell", price=P, qty=1)
    assert refused.value.code == "asset_without_escrow"
    with pytest.raises(NoEscrow):
        e.place("prov", "B200.us-tx.2026-12-01T00Z.24h", "sell", price=P, qty=1, asset="bare")
    assert e.place("prov", INST, "sell", price=P, qty=1).order.asset == "pool"
    assert e.seq == 4  # account, two assets, one sell: refusals take no sequence number


def test_a_failed_commit_halts_the_engine() -> None:
    e = funded_engine()

    def broken(_batch: object) -> None:
        raise OSError("disk full")

    e.attach(broken)
    e.place("alice", INST, "buy", price=P, qty=1)
    with pytest.raises(OSError):
        e.commit()
    with pytest.raises(EngineHalted, match="restart"):
        e.place("alice", INST, "buy", price=P, qty=1)
    with pytest.raises(ExchangeError):
        e.deposit("alice", 1)


def test_sells_pick_the_first_asset_that_can_back_them() -> None:
    e = Engine()
    e.open_account("prov", hash_api_key("p"))
    e.register_asset("prov", "dear", "H100-SXM", "us-tx", 8, START_S, START_S + 86400, P, escrow_for("dear"))
    e.register_asset(
        "prov", "cheap", "H100-SXM", "us-tx", 2, START_S, START_S + 86400, P // 2, escrow_for("cheap")
    )
    assert e.place("prov", INST, "sell", price=P - 1, qty=2).order.asset == "cheap"  # under "dear"'s floor
    assert e.place("prov", INST, "sell", price=P, qty=3).order.asset == "dear"
    with pytest.raises(BelowFloor, match="floor"):
        e.place("prov", INST, "sell", price=P // 4, qty=1)  # under both floors
    with pytest.raises(InsufficientCapacity, match="fewer than 1 GPUs"):
        e.place("prov", INST, "sell", price=P - 1, qty=1)  # "cheap" is full, "dear" too dear


def test_contracts_stop_trading_at_their_start(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    e, journal = recover(path)
    for name in ("alice", "bob"):
        e.open_account(name, hash_api_key(name))
        e.deposit(name, 10**12)
        e.register_asset(
            name, f"pool-{name}", "H100-SXM", "us-tx", 50, START_S, START_S + 86400, escrow=escrow_for(name)
        )
    later = "H100-SXM.us-tx.2026-12-01T12Z.1h"
    buy = e.place("alice", INST, "buy", price=P, qty=3).order
    sell = e.place("bob", INST_1H, "sell", price=P + 10, qty=4).order
    keep = e.place("bob", later, "sell", price=P + 10, qty=2).order
    assert e.close_started(START_S + 5 * 3600) == 2  # INST (00Z) and INST_1H (05Z) have started
    assert (buy.status, buy.reason, sell.status) == ("cancelled", "expired", "cancelled")
    assert e.accounts["alice"].reserved == 0 and e.assets["pool-bob"].total == 2
    assert keep.status == "open"
    with pytest.raises(OrderRejected) as info:
        e.place("alice", INST, "buy", price=P, qty=1)
    assert info.value.code == "instrument_closed"
    with pytest.raises(OrderRejected, match="already closed"):
        e.close_started(START_S)
    e.commit()
    journal.close()
    assert replay(Journal(path)).snapshot() == e.snapshot()
