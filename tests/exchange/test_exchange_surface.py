"""The engine's public surface: Placed fills, Side, refusal codes, client order ids, book views, fund."""

from __future__ import annotations

from pathlib import Path

import pytest
from exchange_helpers import INST, INST_1H, START_S, escrow_for, funded_engine

from drakewell.exchange import (
    BelowFloor,
    Engine,
    InsufficientBalance,
    InsufficientCapacity,
    NoEscrow,
    OrderRejected,
    OrderView,
    Placed,
    RejectCode,
    RiskError,
    Side,
    hash_api_key,
)
from drakewell.exchange.journal import recover

P = 2_000_000


def test_place_returns_the_order_and_exactly_its_fills() -> None:
    e = funded_engine()
    e.place("bob", INST, "sell", price=P, qty=2)
    e.place("dave", INST, "sell", price=P + 5, qty=3)
    e.place("carol", INST, "buy", price=P - 50, qty=1)  # an unrelated resting bid
    placed = e.place("alice", INST, Side.BUY, price=P + 5, qty=4)
    assert isinstance(placed, Placed)
    order, fills = placed
    assert order.status == "filled" and order.filled == 4
    assert [(t.seller, t.qty, t.price, t.taker_side) for t in fills] == [
        ("bob", 2, P, Side.BUY),
        ("dave", 2, P + 5, Side.BUY),
    ]
    assert fills == tuple(e.trades[-2:])
    resting = e.place("alice", INST, "buy", price=P - 100, qty=1)
    assert resting.fills == () and resting.order.status == "open"


def test_price_and_quantity_are_keyword_only() -> None:
    e = funded_engine()
    with pytest.raises(TypeError):
        e.place("alice", INST, "buy", 1, P)  # type: ignore[misc]


def test_side_is_one_int_enum_parsed_from_strings() -> None:
    assert Side.BUY == 1 and Side.SELL == -1 and -Side.BUY == Side.SELL
    assert Side.parse("buy") is Side.BUY and Side.parse(Side.SELL) is Side.SELL
    assert str(Side.SELL) == "sell" and Side.BUY.label == "buy" and Side.BUY.opposite is Side.SELL
    for bad in ("BUY", "bid", 1, True, None):
        with pytest.raises(ValueError, match="neither buy nor sell"):
            Side.parse(bad)  # type: ignore[arg-type]
    e = funded_engine()
    sell = e.place("bob", INST, Side.SELL, price=P, qty=1).order
    assert sell.side is Side.SELL
    with pytest.raises(OrderRejected) as info:
        e.place("alice", INST, 1, price=P, qty=1)  # type: ignore[arg-type]
    assert info.value.code is RejectCode.BAD_SIDE


def test_every_risk_refusal_is_an_order_rejected_with_its_own_code() -> None:
    e = funded_engine(balance=P * 24 * 2, gpus=3, floor_price=P)
    cases: list[tuple[type[RiskError], RejectCode, dict[str, object]]] = [
        (InsufficientBalance, RejectCode.INSUFFICIENT_BALANCE, {"side": "buy", "qty": 3, "price": P}),
        (InsufficientCapacity, RejectCode.INSUFFICIENT_CAPACITY, {"side": "sell", "qty": 4, "price": P}),
        (BelowFloor, RejectCode.BELOW_FLOOR, {"side": "sell", "qty": 1, "price": P - 1}),
    ]
    before = e.snapshot()
    for kind, code, args in cases:
        with pytest.raises(kind) as info:
            e.place("alice", INST, **args)  # type: ignore[arg-type]
        assert isinstance(info.value, OrderRejected) and info.value.code is code and info.value.hint
    assert e.snapshot() == before
    e.open_account("bare", hash_api_key("key-bare"))
    e.register_asset("bare", "no-escrow", "H100-SXM", "us-tx", 8, START_S, START_S + 86400)
    with pytest.raises(NoEscrow) as no_escrow:
        e.place("bare", INST, "sell", price=P, qty=1)
    assert no_escrow.value.code is RejectCode.ASSET_WITHOUT_ESCROW
    with pytest.raises(InsufficientBalance) as withdraw:
        e.withdraw("alice", 10**15)
    assert withdraw.value.code is RejectCode.INSUFFICIENT_BALANCE


def test_bad_input_codes_are_the_ones_the_api_answers_400() -> None:
    assert RejectCode.BAD_PRICE.is_bad_input and RejectCode.MISSING_PROTECTION.is_bad_input
    assert not RejectCode.BELOW_FLOOR.is_bad_input and not RejectCode.CLIENT_ORDER_ID_IN_USE.is_bad_input
    assert RejectCode("insufficient_balance") is RejectCode.INSUFFICIENT_BALANCE


def test_client_order_ids_are_unique_among_open_orders_and_echoed() -> None:
    e = funded_engine()
    first = e.place("alice", INST, "buy", price=P - 10, qty=1, client_order_id="hedge-1").order
    assert first.client_order_id == "hedge-1"
    before = e.snapshot()
    with pytest.raises(OrderRejected) as info:
        e.place("alice", INST_1H, "buy", price=P - 10, qty=1, client_order_id="hedge-1")
    assert info.value.code is RejectCode.CLIENT_ORDER_ID_IN_USE and "cancel" in (info.value.hint or "")
    assert e.snapshot() == before
    # another account may use the same id; an amend keeps it (and keeps it taken)
    assert (
        e.place("carol", INST, "buy", price=P - 10, qty=1, client_order_id="hedge-1").order.status == "open"
    )
    amended = e.amend("alice", first.oid, price=P - 20).order
    assert amended.client_order_id == "hedge-1"
    with pytest.raises(OrderRejected):
        e.place("alice", INST, "buy", price=P - 10, qty=1, client_order_id="hedge-1")
    # once the order closes (here: filled as a maker) the id is free again
    sold = e.place("bob", INST, "sell", price=P - 20, qty=2)  # carol's better bid first, then alice's
    assert [t.buyer for t in sold.fills] == ["carol", "alice"] and e.orders[first.oid].status == "filled"
    again = e.place("alice", INST, "buy", price=P - 30, qty=1, client_order_id="hedge-1").order
    assert again.client_order_id == "hedge-1" and again.oid != first.oid
    for bad in ("", "x" * 65, "tab\there", 7):
        with pytest.raises(OrderRejected) as bad_info:
            e.place("alice", INST, "buy", price=P, qty=1, client_order_id=bad)  # type: ignore[arg-type]
        assert bad_info.value.code is RejectCode.BAD_CLIENT_ORDER_ID


def test_client_order_ids_survive_the_journal_replay(tmp_path: Path) -> None:
    engine, journal = recover(tmp_path / "j.sqlite")
    engine.fund("alice", 10**12, api_key="key-alice")
    placed = engine.place("alice", INST, "buy", price=P, qty=2, client_order_id="a1")
    engine.commit()
    journal.close()
    rebuilt, journal2 = recover(tmp_path / "j.sqlite")
    assert rebuilt.snapshot() == engine.snapshot()
    assert rebuilt.orders[placed.order.oid].client_order_id == "a1"
    with pytest.raises(OrderRejected) as info:
        rebuilt.place("alice", INST, "buy", price=P, qty=1, client_order_id="a1")
    assert info.value.code is RejectCode.CLIENT_ORDER_ID_IN_USE
    journal2.close()


def test_a_book_view_taken_before_the_first_order_stays_current() -> None:
    e = funded_engine()
    view = e.book(INST)
    assert view.best_ask() is None and view.level("sell", P) == ()
    assert INST not in e.instruments  # looking does not make the instrument active
    a = e.place("bob", INST, "sell", price=P, qty=2, client_order_id="b").order
    b = e.place("dave", INST, "sell", price=P, qty=3).order
    e.place("dave", INST, "sell", price=P + 1, qty=1)
    assert view.best_ask() == P
    assert view.level(Side.SELL, P) == (
        OrderView(a.oid, "bob", Side.SELL, P, 2, "b"),
        OrderView(b.oid, "dave", Side.SELL, P, 3, None),
    )
    e.place("alice", INST, "buy", price=P, qty=3)  # takes bob's 2 and 1 of dave's
    assert view.level("sell", P) == (OrderView(b.oid, "dave", Side.SELL, P, 2, None),)
    assert [o.price for o in view.orders("sell")] == [P, P + 1]
    assert view.level("buy", P) == () and view.asks.depth() == [(P, 2, 1), (P + 1, 1, 1)]
    with pytest.raises(OrderRejected) as info:
        view.level("ask", P)  # type: ignore[arg-type]
    assert info.value.code is RejectCode.BAD_SIDE
    with pytest.raises(OrderRejected) as bad:
        e.book("H100-SXM.us-tx.2026-02-30T00Z.24h")
    assert bad.value.code is RejectCode.BAD_INSTRUMENT


def test_fund_opens_and_credits_an_account() -> None:
    e = Engine()
    assert e.fund("erin", 500, api_key="erin-key") == 500
    assert e.key_index[hash_api_key("erin-key")] == "erin"
    assert e.fund("erin", 250) == 750  # an existing account needs no key
    seq = e.seq
    with pytest.raises(OrderRejected) as unknown:
        e.fund("frank", 100)
    assert unknown.value.code is RejectCode.UNKNOWN_ACCOUNT
    with pytest.raises(OrderRejected) as bad:
        e.fund("frank", 0, api_key="frank-key")
    assert bad.value.code is RejectCode.BAD_AMOUNT and "frank" not in e.accounts and e.seq == seq
    e.register_asset("erin", "pool", "H100-SXM", "us-tx", 4, START_S, START_S + 86400, 0, escrow_for("pool"))
    assert e.place("erin", INST, "sell", price=P, qty=4).order.asset == "pool"
