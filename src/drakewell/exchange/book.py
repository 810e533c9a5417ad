"""The order book of one instrument: price-time priority on integer prices.

Layout (chosen for pure-Python speed):

- each side is a dict ``key -> deque[Order]`` (one FIFO per price level) plus an ascending list of
  keys kept sorted with :mod:`bisect`; the key is ``price`` for bids and ``-price`` for asks, so the
  best level of either side is always the *last* key (``list.pop()`` is O(1));
- cancels are lazy: a cancelled order is marked dead (``qty == 0``) and left in its deque; a per-level
  count of live orders removes the level (and its key) the moment the last live order leaves, so the
  best price is always a live level and matching skips dead entries as it meets them.

Crossing in key space: an incoming order with limit ``L`` crosses the opposite side's best key ``k``
iff ``k >= opp_sign * L`` (asks: ``-ask >= -L`` ⇔ ``ask <= L``; bids: ``bid >= L``).

Self-trade prevention is *cancel taker*: when an incoming order reaches a resting order of its own
account, the incoming remainder is cancelled (the resting order keeps its place). A FOK order counts
only the liquidity ahead of its own first resting order.

The book knows nothing about money or capacity; :mod:`drakewell.exchange.engine` does the risk.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from drakewell.exchange.refusals import OrderRejected, RejectCode


class Side(enum.IntEnum):
    """The side of an order or a trade's taker: ``BUY = 1``, ``SELL = -1`` (a sign, so arithmetic works).

    Its string form is ``"buy"`` / ``"sell"``, as the journal and the REST API write it;
    :meth:`parse` turns either form into a member, once, at the edge.
    """

    BUY = 1
    SELL = -1

    def __str__(self) -> str:
        return self.name.lower()

    @property
    def label(self) -> str:
        """``"buy"`` or ``"sell"``."""
        return _LABELS[self]

    @property
    def opposite(self) -> Side:
        return Side(-self)

    @classmethod
    def parse(cls, value: Side | str) -> Side:
        """A :class:`Side` from a member or ``"buy"`` / ``"sell"``; raises :class:`ValueError` otherwise."""
        side = _BY_NAME.get(value) if type(value) is str else value if type(value) is Side else None
        if side is None:
            raise ValueError(f"side {value!r} is neither buy nor sell")
        return side


_BY_NAME = {"buy": Side.BUY, "sell": Side.SELL}
_LABELS = {Side.BUY: "buy", Side.SELL: "sell"}
BUY = Side.BUY
SELL = Side.SELL

# order status codes
OPEN = "open"
FILLED = "filled"
CANCELLED = "cancelled"


class Order:
    """A resting or incoming order. ``qty`` is the open remainder (0 once dead); ``side`` a :class:`Side`."""

    __slots__ = (
        "account",
        "asset",
        "cancelled",
        "client_order_id",
        "filled",
        "instrument",
        "oid",
        "post_only",
        "price",
        "qty",
        "reason",
        "side",
        "status",
        "submitted",
        "tif",
    )

    def __init__(
        self,
        oid: int,
        account: str,
        instrument: str,
        side: Side,
        price: int,
        qty: int,
        tif: str,
        post_only: bool = False,
        asset: str | None = None,
        client_order_id: str | None = None,
    ) -> None:
        self.oid = oid
        self.account = account
        self.instrument = instrument
        self.side = side
        self.price = price
        self.qty = qty
        self.submitted = qty
        self.filled = 0
        self.cancelled = 0
        self.tif = tif
        self.post_only = post_only
        self.asset = asset
        self.client_order_id = client_order_id
        self.status = OPEN
        self.reason = ""


class Ladder:
    """One side of a book: levels keyed so the best is the last key."""

    __slots__ = ("keys", "levels", "live", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = int(sign)  # key = sign * price: +1 for bids, -1 for asks
        self.keys: list[int] = []
        self.levels: dict[int, deque[Order]] = {}
        self.live: dict[int, int] = {}

    def add(self, order: Order) -> None:
        key = self.sign * order.price
        level = self.levels.get(key)
        if level is None:
            self.levels[key] = deque((order,))
            self.live[key] = 1
            insort(self.keys, key)
        else:
            level.append(order)
            self.live[key] += 1

    def remove(self, order: Order) -> None:
        """Account for a live order leaving its level (the caller marks it dead)."""
        key = self.sign * order.price
        n = self.live[key] - 1
        if n:
            self.live[key] = n
        else:
            del self.live[key]
            del self.levels[key]
            keys = self.keys
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]

    def best_price(self) -> int | None:
        return self.sign * self.keys[-1] if self.keys else None

    def depth(self) -> list[tuple[int, int, int]]:
        """``(price, open GPUs, orders)`` per level, best first."""
        out = []
        for key in reversed(self.keys):
            live = [o for o in self.levels[key] if o.qty]
            out.append((self.sign * key, sum(o.qty for o in live), len(live)))
        return out

    def orders(self) -> list[Order]:
        """Live orders in priority order (best level first, FIFO within a level)."""
        return [o for key in reversed(self.keys) for o in self.levels[key] if o.qty]


class Book:
    """Bids and asks of one instrument."""

    __slots__ = ("asks", "bids", "instrument")

    def __init__(self, instrument: str) -> None:
        self.instrument = instrument
        self.bids = Ladder(BUY)
        self.asks = Ladder(SELL)

    def best_bid(self) -> int | None:
        return self.bids.best_price()

    def best_ask(self) -> int | None:
        return self.asks.best_price()

    def side(self, side: Side) -> Ladder:
        """The bids (``Side.BUY``) or the asks (``Side.SELL``)."""
        return self.bids if side == BUY else self.asks

    def level(self, side: Side | str, price: int) -> tuple[OrderView, ...]:
        """The live orders resting at ``price`` on ``side``, in time priority (empty if none)."""
        s = Side.parse(side)
        ladder = self.side(s)
        return tuple(
            OrderView(o.oid, o.account, s, o.price, o.qty, o.client_order_id)
            for o in ladder.levels.get(ladder.sign * price, ())
            if o.qty
        )

    def crosses(self, side: int, price: int) -> bool:
        """Would a ``side`` order at ``price`` trade against the resting book?"""
        opp = self.asks if side == BUY else self.bids
        return bool(opp.keys) and opp.keys[-1] >= opp.sign * price

    def fillable(self, order: Order) -> int:
        """GPUs an incoming order could take now (stops at its own account's first resting order)."""
        opp = self.asks if order.side == BUY else self.bids
        limit_key = opp.sign * order.price
        want = order.qty
        got = 0
        account = order.account
        for key in reversed(opp.keys):
            if key < limit_key:
                break
            for resting in opp.levels[key]:
                if not resting.qty:
                    continue
                if resting.account == account:
                    return got
                got += resting.qty
                if got >= want:
                    return got
        return got

    def match(self, order: Order) -> list[tuple[Order, int, int]]:
        """Match ``order`` against the opposite side; returns ``(maker, qty, price)`` per fill.

        Updates the maker orders (qty, filled, status) and removes emptied levels; the taker's
        ``qty``/``filled`` are updated too. Stops at the limit, when filled, or at self-trade
        (then ``order.reason`` is ``"self_trade_prevented"``).
        """
        opp = self.asks if order.side == BUY else self.bids
        keys = opp.keys
        levels = opp.levels
        live = opp.live
        limit_key = opp.sign * order.price
        account = order.account
        fills: list[tuple[Order, int, int]] = []
        remaining = order.qty
        while remaining and keys:
            key = keys[-1]
            if key < limit_key:
                break
            level = levels[key]
            price = opp.sign * key
            while remaining and level:
                maker = level[0]
                mq = maker.qty
                if not mq:
                    level.popleft()
                    continue
                if maker.account == account:
                    order.reason = "self_trade_prevented"
                    order.filled += order.qty - remaining
                    order.qty = remaining
                    return fills
                if mq <= remaining:
                    q = mq
                    maker.qty = 0
                    maker.filled += q
                    maker.status = FILLED
                    level.popleft()
                    n = live[key] - 1
                    live[key] = n
                else:
                    q = remaining
                    maker.qty = mq - q
                    maker.filled += q
                remaining -= q
                fills.append((maker, q, price))
            if not live[key]:
                del live[key]
                del levels[key]
                keys.pop()
            elif not remaining:
                break
        order.filled += order.qty - remaining
        order.qty = remaining
        return fills


class OrderView(NamedTuple):
    """A resting order as the book shows it: ``qty`` is its open remainder."""

    oid: int
    account: str
    side: Side
    price: int
    qty: int
    client_order_id: str | None


class BookView:
    """A view of one instrument's book that always shows its current state.

    The engine creates an instrument's book with its first accepted order; a view taken before
    that shows an empty book and, from then on, the live one (``resolve`` finds it). ``bids`` and
    ``asks`` are the live ladders, for reading only: orders change through the engine's commands.
    """

    __slots__ = ("_empty", "_resolve", "instrument")

    def __init__(self, instrument: str, resolve: Callable[[], Book | None]) -> None:
        self.instrument = instrument
        self._resolve = resolve
        self._empty = Book(instrument)  # never written to

    def _book(self) -> Book:
        book = self._resolve()
        return self._empty if book is None else book

    @property
    def bids(self) -> Ladder:
        return self._book().bids

    @property
    def asks(self) -> Ladder:
        return self._book().asks

    def best_bid(self) -> int | None:
        return self._book().best_bid()

    def best_ask(self) -> int | None:
        return self._book().best_ask()

    def level(self, side: Side | str, price: int) -> tuple[OrderView, ...]:
        """The live orders at ``price`` on ``side`` in time priority (see :meth:`Book.level`)."""
        return self._book().level(_parse_side(side), price)

    def orders(self, side: Side | str) -> tuple[OrderView, ...]:
        """Every live order on ``side``, best level first, time priority within a level."""
        book = self._book()
        s = _parse_side(side)
        return tuple(
            OrderView(o.oid, o.account, s, o.price, o.qty, o.client_order_id) for o in book.side(s).orders()
        )


def _parse_side(side: Side | str) -> Side:
    try:
        return Side.parse(side)
    except ValueError as exc:
        raise OrderRejected(RejectCode.BAD_SIDE, str(exc), hint="use side 'buy' or 'sell'") from None
