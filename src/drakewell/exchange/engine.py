"""The matching engine: accounts, capacity, books, trades and leases, driven by journaled commands.

Commands are the engine's public methods: :meth:`Engine.open_account`, :meth:`Engine.deposit`
(:meth:`Engine.fund` opens and deposits in one call), :meth:`Engine.withdraw`,
:meth:`Engine.register_asset`, :meth:`Engine.place`, :meth:`Engine.cancel`, :meth:`Engine.amend`
and :meth:`Engine.close_started` (contracts stop trading at their start). Each one validates
everything *before* it changes anything, so a refusal (an
:class:`~drakewell.exchange.refusals.OrderRejected` with a
:class:`~drakewell.exchange.refusals.RejectCode` ``code`` and a hint) leaves the state untouched
and is not journaled. An accepted command gets the next sequence number and, when a
journal is attached, is queued as ``(seq, kind, args)``.

**Determinism.** The state is a pure function of the accepted command sequence: ids are counters,
there is no wall clock inside, and iteration orders are insertion orders. Replaying the journal
therefore rebuilds exactly the same books, balances, capacity and leases
(:meth:`Engine.snapshot` compares them).

**Durability rule.** A command is acknowledged only after its journal record has committed:
:meth:`Engine.commit` writes every queued record in one transaction (a group commit of N commands
acknowledges all N at once) and returns the last durable sequence number. In-memory effects of an
unacknowledged command may be visible before it commits; if the process dies first they are lost
with it, and nobody was told they happened. If a commit fails the engine halts (every later command
is refused) because memory is then ahead of the journal: restart and replay.

Orders: limit (GTC, IOC, FOK, post-only) and market orders with a protection price (a market order
is an IOC limited at its protection price). :meth:`Engine.place` returns :class:`Placed`: the order
and the trades it made. An order may carry a ``client_order_id``, unique among its account's open
orders. Amend: a price change or a size increase loses priority
(the order re-enters at the back of its new level and may trade), a size decrease keeps it;
:meth:`Engine.amend` returns :class:`Placed` too (no fills unless the amended order traded).
Each fill is one trade and one lease (renter = buyer, provider's asset = the sell order's asset).
"""

from __future__ import annotations

import gc
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import NamedTuple, TypeAlias

from drakewell.core.errors import ExchangeError
from drakewell.core.jsontypes import JsonMapping, JsonObject
from drakewell.core.units import USD
from drakewell.exchange.book import BUY, CANCELLED, FILLED, OPEN, Book, BookView, Order, Side
from drakewell.exchange.instruments import GPU_MODELS, REGIONS, InstrumentError, parse_instrument
from drakewell.exchange.refusals import FixedCodeRejection, OrderRejected, RejectCode
from drakewell.exchange.risk import (
    Account,
    Asset,
    BelowFloor,
    InsufficientBalance,
    InsufficientCapacity,
    NoEscrow,
    RiskError,
)

MAX_PRICE = 10_000 * USD  # base units per GPU-hour
MAX_QTY = 1_000_000  # GPUs per order
TIFS = ("GTC", "IOC", "FOK")
_SIDE_BY_NAME = {"buy": Side.BUY, "sell": Side.SELL}
_LABELS = {Side.BUY: "buy", Side.SELL: "sell"}
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class UnknownOrder(OrderRejected):
    """No order with that id belongs to the account."""


class AccountError(OrderRejected):
    """An account is unknown, already exists, or an amount is invalid."""


class EngineHalted(FixedCodeRejection):
    """A journal commit failed; memory may be ahead of the journal."""

    code = RejectCode.ENGINE_HALTED


def tune_gc() -> None:
    """Garbage-collector settings for a process that serves an engine (call after recovery).

    The engine's records (orders, trades, leases, deques) hold no reference cycles, so reference
    counting frees them; the cyclic collector only re-scans them. With millions of live records its
    full passes dominate (a 1M-event replay runs ~1.9x slower under the default thresholds), so
    the recovered state is frozen out of collection and generation 0 runs every 100,000
    allocations instead of every 700.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


def hash_api_key(api_key: str) -> str:
    """The stored form of an API key (SHA-256 hex); keys themselves are never kept."""
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(slots=True, eq=False)
class Trade:
    """One fill: ``qty`` GPUs at ``price`` base units per GPU-hour; ``taker_side`` is a :class:`Side`."""

    tid: int
    instrument: str
    price: int
    qty: int
    buy_oid: int
    sell_oid: int
    buyer: str
    seller: str
    taker_side: Side

    def as_tuple(self) -> tuple[object, ...]:
        """The fields in name order (how :meth:`Engine.snapshot` lists a trade)."""
        return _TRADE_ROW(self)


class Placed(NamedTuple):
    """What :meth:`Engine.place` or :meth:`Engine.amend` did: the order (its state after matching)
    and its trades, in order."""

    order: Order
    fills: tuple[Trade, ...]


_new_placed = tuple.__new__  # Placed(order, fills) without NamedTuple's slower keyword-aware constructor


@dataclass(slots=True, eq=False)
class Lease:
    """A lease from a trade: ``gpus`` of ``asset`` for ``[start_s, end_s)`` at ``price`` per GPU-hour.

    ``amount`` (= price × gpus × hours, base units) left the renter's balance into escrow.
    """

    lease_id: int
    renter: str
    provider: str
    asset: str
    instrument: str
    gpus: int
    start_s: int
    end_s: int
    price: int
    amount: int

    def as_tuple(self) -> tuple[object, ...]:
        """The fields in name order (how :meth:`Engine.snapshot` lists a lease)."""
        return _LEASE_ROW(self)


def _fields_by_name(cls: type[Trade] | type[Lease]) -> Callable[[Trade | Lease], tuple[object, ...]]:
    """A getter of a record's fields in name order (the order snapshots and their digests use)."""
    return attrgetter(*sorted(f.name for f in fields(cls)))


_TRADE_ROW = _fields_by_name(Trade)
_LEASE_ROW = _fields_by_name(Lease)


class _Inst:
    """Per-instrument cache: its book and window."""

    __slots__ = ("book", "end_s", "gpu_model", "hours", "region", "start_s")

    def __init__(self, instrument_id: str) -> None:
        inst = parse_instrument(instrument_id)
        self.book = Book(instrument_id)
        self.start_s = inst.start_s
        self.end_s = inst.end_s
        self.hours = inst.duration_h
        self.gpu_model = inst.gpu_model
        self.region = inst.region


Record: TypeAlias = tuple[int, str, JsonObject]
"""A journal record: the command's sequence number, its kind (the method) and its arguments."""


def _bad(code: RejectCode, message: str, hint: str) -> OrderRejected:
    return OrderRejected(code, message, hint=hint)


def _check_int(name: str, value: object, lo: int, hi: int, code: RejectCode) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise _bad(
            code, f"{name} {value!r} is not a whole number in {lo}..{hi}", f"give {name} as an integer"
        )
    return value


class Engine:
    """All books and accounts of one exchange; see the module docstring for the rules."""

    def __init__(self) -> None:
        self.seq = 0
        self.committed_seq = 0
        self.halted = False
        self.accounts: dict[str, Account] = {}
        self.assets: dict[str, Asset] = {}
        self.assets_by_owner: dict[str, list[Asset]] = {}
        self.instruments: dict[str, _Inst] = {}
        self.orders: dict[int, Order] = {}
        self.orders_by_account: dict[str, list[int]] = {}
        # client order id -> oid, per account (the oid's order may have closed since)
        self.client_order_ids: dict[str, dict[str, int]] = {}
        self.trades: list[Trade] = []
        self.leases: list[Lease] = []
        self.lease_seqs: list[int] = []  # the command sequence number that created each lease
        self.key_index: dict[str, str] = {}  # API key hash -> account id
        self.next_oid = 1
        self.closed_before_s = 0  # contracts starting at or before this time no longer trade
        self.pending: list[Record] | None = None  # set when a journal is attached
        self.journal_write: Callable[[list[Record]], None] | None = None

    # --- journal ------------------------------------------------------------------------------

    def attach(self, write: Callable[[list[Record]], None]) -> None:
        """Queue every accepted command from now on; ``write`` makes a batch durable (one commit)."""
        self.pending = []
        self.journal_write = write
        self.committed_seq = self.seq

    def _accept(self, kind: str, args: JsonObject) -> None:
        self.seq += 1
        if self.pending is not None:
            self.pending.append((self.seq, kind, args))

    def take_pending(self) -> list[Record]:
        """Hand the queued records to a committer (which must call :meth:`mark_durable` or halt)."""
        batch = self.pending or []
        if self.pending is not None:
            self.pending = []
        return batch

    def mark_durable(self, seq: int) -> None:
        if seq > self.committed_seq:
            self.committed_seq = seq

    def halt(self) -> None:
        self.halted = True

    def commit(self) -> int:
        """Group-commit every queued record; returns the last durable (acknowledgeable) sequence."""
        if self.journal_write is None:
            self.committed_seq = self.seq
            return self.seq
        batch = self.take_pending()
        if batch:
            try:
                self.journal_write(batch)
            except Exception:
                self.halted = True
                raise
            self.committed_seq = batch[-1][0]
        return self.committed_seq

    def apply(self, kind: str, args: JsonMapping) -> object:
        """Apply one journaled command (replay); returns what the command returns."""
        method = _COMMANDS.get(kind)
        if method is None:
            raise ExchangeError(
                f"journal holds an unknown command {kind!r}", hint="replay with a matching version"
            )
        return method(self, **args)

    def _check_live(self) -> None:
        if self.halted:
            raise EngineHalted(
                "the exchange halted after a failed journal commit",
                hint="restart it; the journal replay restores every acknowledged command",
            )

    # --- accounts and capacity ----------------------------------------------------------------

    def open_account(self, account_id: str, key_hash: str) -> Account:
        """Open an account; ``key_hash`` is :func:`hash_api_key` of its API key."""
        self._check_live()
        if not _short_printable(account_id, 64):
            raise AccountError(
                RejectCode.BAD_ACCOUNT,
                f"account id {account_id!r} is not 1..64 printable characters",
                hint="choose a short printable name",
            )
        if account_id in self.accounts:
            raise AccountError(
                RejectCode.ACCOUNT_EXISTS, f"account {account_id!r} already exists", hint="pick another id"
            )
        if not isinstance(key_hash, str) or len(key_hash) != 64:
            raise AccountError(
                RejectCode.BAD_KEY_HASH,
                "key_hash is not a SHA-256 hex digest",
                hint="pass hash_api_key(api_key)",
            )
        if key_hash in self.key_index:
            raise AccountError(
                RejectCode.KEY_IN_USE,
                "that API key already belongs to another account",
                hint="generate a fresh API key for each account",
            )
        acct = Account(account_id, key_hash)
        self.accounts[account_id] = acct
        self.key_index[key_hash] = account_id
        self.orders_by_account[account_id] = []
        self.client_order_ids[account_id] = {}
        self.assets_by_owner[account_id] = []
        self._accept("open_account", {"account_id": account_id, "key_hash": key_hash})
        return acct

    def _account(self, account_id: str) -> Account:
        acct = self.accounts.get(account_id)
        if acct is None:
            raise AccountError(
                RejectCode.UNKNOWN_ACCOUNT, f"no account {account_id!r}", hint="open the account first"
            )
        return acct

    def deposit(self, account_id: str, amount: int) -> int:
        """Credit ``amount`` base units (e.g. a stablecoin deposit seen on chain); returns the balance."""
        self._check_live()
        acct = self._account(account_id)
        _check_int("amount", amount, 1, 10**18, RejectCode.BAD_AMOUNT)
        acct.balance += amount
        self._accept("deposit", {"account_id": account_id, "amount": amount})
        return acct.balance

    def fund(self, account_id: str, amount: int, *, api_key: str | None = None) -> int:
        """Deposit ``amount`` base units into ``account_id``, opening it first when it is new.

        A new account needs ``api_key`` (its hash becomes the account's key, as with
        :meth:`open_account`); the amount is checked before anything happens. Both commands are
        journaled as usual. Returns the balance.
        """
        self._check_live()
        _check_int("amount", amount, 1, 10**18, RejectCode.BAD_AMOUNT)
        if account_id not in self.accounts:
            if api_key is None:
                raise AccountError(
                    RejectCode.UNKNOWN_ACCOUNT,
                    f"no account {account_id!r} to fund",
                    hint="give api_key to open it, or open it with open_account",
                )
            self.open_account(account_id, hash_api_key(api_key))
        return self.deposit(account_id, amount)

    def withdraw(self, account_id: str, amount: int) -> int:
        """Debit ``amount`` base units of free balance; returns the balance."""
        self._check_live()
        acct = self._account(account_id)
        _check_int("amount", amount, 1, 10**18, RejectCode.BAD_AMOUNT)
        if amount > acct.free:
            raise InsufficientBalance(
                f"withdrawal of {amount} exceeds the free balance {acct.free} of {account_id!r}",
                hint="cancel open buy orders to release their collateral, or withdraw less",
            )
        acct.balance -= amount
        self._accept("withdraw", {"account_id": account_id, "amount": amount})
        return acct.balance

    def register_asset(
        self,
        account_id: str,
        asset_id: str,
        gpu_model: str,
        region: str,
        gpus: int,
        available_from_s: int,
        available_to_s: int,
        floor_price: int = 0,
        escrow: str | None = None,
    ) -> Asset:
        """Register ``gpus`` GPUs of a tokenized asset that ``account_id`` may sell in a window.

        ``floor_price`` (base units per GPU-hour) is the lowest price its sells may take unless an
        order says ``allow_below_floor`` (see :func:`drakewell.exchange.pricing.floor_price`).
        ``escrow`` is the address of the asset's LeaseEscrow, where its leases are opened (one
        asset per escrow); an asset without one backs no sell. The operator calls this, after
        checking the asset on chain (:func:`drakewell.exchange.assets.register_tied_asset`).
        """
        self._check_live()
        self._account(account_id)
        asset = Asset(
            asset_id,
            account_id,
            gpu_model,
            region,
            gpus,
            available_from_s,
            available_to_s,
            floor_price,
            escrow,
        )
        self._check_asset(asset)
        if escrow is not None:
            self._check_escrow(escrow)
        self.assets[asset_id] = asset
        self.assets_by_owner[account_id].append(asset)
        self._accept(
            "register_asset",
            {
                "account_id": account_id,
                "asset_id": asset_id,
                "gpu_model": gpu_model,
                "region": region,
                "gpus": gpus,
                "available_from_s": available_from_s,
                "available_to_s": available_to_s,
                "floor_price": floor_price,
                **({"escrow": escrow} if escrow is not None else {}),
            },
        )
        return asset

    def _check_asset(self, asset: Asset) -> None:
        """Refuse an asset to be registered (not yet in the engine) unless its terms are valid and new."""
        asset_id, gpu_model, region = asset.asset_id, asset.gpu_model, asset.region
        if not _short_printable(asset_id, 80):
            raise AccountError(
                RejectCode.BAD_ASSET,
                f"asset id {asset_id!r} is not 1..80 printable characters",
                hint="use the token's id, e.g. its contract address or pool name",
            )
        if asset_id in self.assets:
            raise AccountError(
                RejectCode.ASSET_EXISTS,
                f"asset {asset_id!r} is already registered",
                hint="raise capacity by registering a new asset id",
            )
        if gpu_model not in GPU_MODELS:
            raise AccountError(
                RejectCode.BAD_ASSET,
                f"unknown GPU model {gpu_model!r}",
                hint=f"use one of {', '.join(GPU_MODELS)}",
            )
        if region not in REGIONS:
            raise AccountError(
                RejectCode.BAD_ASSET, f"unknown region {region!r}", hint=f"use one of {', '.join(REGIONS)}"
            )
        _check_int("gpus", asset.gpus, 1, MAX_QTY, RejectCode.BAD_ASSET)
        _check_int("available_from_s", asset.available_from_s, 0, 2**40, RejectCode.BAD_ASSET)
        _check_int("available_to_s", asset.available_to_s, 0, 2**40, RejectCode.BAD_ASSET)
        _check_int("floor_price", asset.floor_price, 0, MAX_PRICE, RejectCode.BAD_ASSET)
        if asset.available_to_s <= asset.available_from_s:
            raise AccountError(
                RejectCode.BAD_ASSET,
                "the availability window is empty",
                hint="available_to_s must be after available_from_s",
            )

    def _check_escrow(self, escrow: str) -> None:
        if not isinstance(escrow, str) or not _ADDRESS.match(escrow):
            raise AccountError(
                RejectCode.BAD_ESCROW,
                f"escrow {escrow!r} is not a 0x-prefixed 20-byte hex address",
                hint="give the address of the asset's LeaseEscrow",
            )
        key = escrow.lower()
        taken = next((a for a in self.assets.values() if (a.escrow or "").lower() == key), None)
        if taken is not None:
            raise AccountError(
                RejectCode.ESCROW_REGISTERED,
                f"escrow {escrow} already backs asset {taken.asset_id!r}",
                hint="one exchange asset per on-chain asset: its capacity is registered once",
            )

    # --- orders ---------------------------------------------------------------------------------

    def _new_inst(self, instrument: str) -> _Inst:
        """A fresh instrument entry; it joins ``self.instruments`` only when an order is accepted."""
        try:
            return _Inst(instrument)
        except InstrumentError as exc:
            raise _bad(RejectCode.BAD_INSTRUMENT, exc.message, exc.hint or "") from None

    def _pick_asset(
        self, account: str, inst: _Inst, qty: int, price: int, asset_id: str | None, allow_below_floor: bool
    ) -> Asset:
        start_s, end_s = inst.start_s, inst.end_s
        if asset_id is not None:
            asset = self.assets.get(asset_id)
            if asset is None or asset.owner != account:
                raise InsufficientCapacity(
                    f"asset {asset_id!r} is not registered to {account!r}",
                    hint="register the asset's capacity first, or omit asset to use any of yours",
                )
            candidates = [asset]
        else:
            candidates = self.assets_by_owner.get(account, [])
        # the refusal of the last candidate that came closest, by kind (no string matching)
        refusal: type[RiskError] = InsufficientCapacity
        why = "no registered asset of this GPU model and region"
        for asset in candidates:
            if asset.gpu_model != inst.gpu_model or asset.region != inst.region:
                continue
            if asset.escrow is None:
                refusal, why = NoEscrow, f"asset {asset.asset_id!r} has no LeaseEscrow"
                continue
            if not asset.covers(start_s, end_s):
                refusal = InsufficientCapacity
                why = f"asset {asset.asset_id!r} is not available for the whole contract window"
                continue
            if price < asset.floor_price and not allow_below_floor:
                refusal = BelowFloor
                why = f"sell price {price} is below the floor {asset.floor_price} of asset {asset.asset_id!r}"
                continue
            if not asset.can_commit(start_s, end_s, qty):
                refusal = InsufficientCapacity
                why = f"asset {asset.asset_id!r} has fewer than {qty} GPUs free in that window"
                continue
            return asset
        if refusal is BelowFloor:
            raise BelowFloor(
                f"{why} (the mining value of its power)",
                hint="raise the price, or set allow_below_floor to sell under the mining alternative",
            )
        if refusal is NoEscrow:
            raise NoEscrow(
                f"cannot sell {inst.book.instrument}: {why}, so its leases could never be escrowed",
                hint="the operator registers assets against their on-chain LeaseEscrow",
            )
        raise InsufficientCapacity(
            f"cannot back a sell of {qty} GPUs of {inst.book.instrument}: {why}",
            hint="register capacity for that model, region and window, or sell fewer GPUs",
        )

    def place(
        self,
        account: str,
        instrument: str,
        side: Side | str,
        *,
        price: int | None,
        qty: int,
        tif: str = "GTC",
        order_type: str = "limit",
        post_only: bool = False,
        asset: str | None = None,
        allow_below_floor: bool = False,
        client_order_id: str | None = None,
    ) -> Placed:
        """Place an order; returns it with the trades it made (:class:`Placed`).

        ``price`` is the limit (base units per GPU-hour) or, for ``order_type="market"``, the
        protection price: the worst price the order may trade at (a market order is IOC).
        ``side`` is a :class:`Side` or ``"buy"`` / ``"sell"``. ``client_order_id`` (optional,
        1..64 printable characters) names the order for its account: no two open orders of an
        account share one. Steps: validate the order; reserve (pre-trade risk and the fill-or-kill
        check, then its collateral or capacity is taken); journal; execute. Refusals come only
        before the reservation takes anything, so a refused order changes nothing.
        """
        if self.halted:
            self._check_live()
        acct = self.accounts.get(account)
        if acct is None:
            raise AccountError(
                RejectCode.UNKNOWN_ACCOUNT, f"no account {account!r}", hint="open the account first"
            )
        s = _SIDE_BY_NAME.get(side) if type(side) is str else side if type(side) is Side else None
        if s is None:
            raise _bad(
                RejectCode.BAD_SIDE, f"side {side!r} is neither buy nor sell", "use side='buy' or side='sell'"
            )
        inst = self.instruments.get(instrument) or self._new_inst(instrument)
        tif = self._validate_order(inst, s, price, qty, tif, order_type, post_only)
        if client_order_id is not None:
            self._check_client_order_id(account, client_order_id)
        assert price is not None  # _validate_order refused a missing price
        order = self._reserve(
            acct, inst, s, price, qty, tif, post_only, asset, allow_below_floor, client_order_id
        )
        if self.pending is not None:
            self._journal_place(order, order_type, asset, allow_below_floor)
        else:
            self.seq += 1
        return _new_placed(Placed, (order, self._execute(order, inst)))

    def _validate_order(
        self,
        inst: _Inst,
        side: Side,
        price: int | None,
        qty: int,
        tif: str,
        order_type: str,
        post_only: bool,
    ) -> str:
        """Refuse an order that is malformed or cannot trade now; returns its time in force."""
        if inst.start_s <= self.closed_before_s:
            raise _bad(
                RejectCode.INSTRUMENT_CLOSED,
                f"{inst.book.instrument} has started and no longer trades",
                "trade a contract that starts later",
            )
        if type(qty) is not int or not 0 < qty <= MAX_QTY:
            _check_int("qty", qty, 1, MAX_QTY, RejectCode.BAD_QUANTITY)
        if order_type == "limit":
            if price is None:
                raise _bad(
                    RejectCode.BAD_PRICE,
                    "a limit order needs a price",
                    "give price in base units per GPU-hour",
                )
            if tif not in TIFS:
                raise _bad(
                    RejectCode.BAD_TIF, f"time in force {tif!r} is not one of {TIFS}", "use GTC, IOC or FOK"
                )
        elif order_type == "market":
            if price is None:
                raise _bad(
                    RejectCode.MISSING_PROTECTION,
                    "a market order needs a protection price",
                    "give price = the worst price per GPU-hour you accept",
                )
            if post_only:
                raise _bad(
                    RejectCode.BAD_ORDER_TYPE, "a market order cannot be post-only", "use a limit order"
                )
            tif = "IOC"
        else:
            raise _bad(
                RejectCode.BAD_ORDER_TYPE,
                f"order type {order_type!r} is not limit or market",
                "use limit or market",
            )
        if type(price) is not int or not 0 < price <= MAX_PRICE:
            _check_int("price", price, 1, MAX_PRICE, RejectCode.BAD_PRICE)
        if post_only:
            if tif != "GTC":
                raise _bad(
                    RejectCode.BAD_TIF, "a post-only order must be GTC", "drop post_only or use tif GTC"
                )
            if inst.book.crosses(side, price):
                raise _bad(
                    RejectCode.POST_ONLY_WOULD_CROSS,
                    f"post-only {side.label} at {price} would trade against the book",
                    "lower a buy / raise a sell below/above the opposite best price",
                )
        return tif

    def _check_client_order_id(self, account: str, client_order_id: str) -> None:
        if type(client_order_id) is not str or not _short_printable(client_order_id, 64):
            raise _bad(
                RejectCode.BAD_CLIENT_ORDER_ID,
                f"client order id {client_order_id!r} is not 1..64 printable characters",
                "give a short printable name, or none",
            )
        oid = self.client_order_ids[account].get(client_order_id)
        if oid is not None and self.orders[oid].status == OPEN:
            raise _bad(
                RejectCode.CLIENT_ORDER_ID_IN_USE,
                f"client order id {client_order_id!r} already names open order {oid} of {account!r}",
                "use a fresh client order id, or cancel that order first",
            )

    def _reserve(
        self,
        acct: Account,
        inst: _Inst,
        side: Side,
        price: int,
        qty: int,
        tif: str,
        post_only: bool,
        asset: str | None,
        allow_below_floor: bool,
        client_order_id: str | None,
    ) -> Order:
        """Pre-trade risk, then the reservation: returns the accepted order, registered.

        A buy's collateral must be free, a sell needs a backing asset, and a fill-or-kill order must
        be fillable now; any refusal comes before anything changes. Then the collateral or the
        capacity is taken and the order gets its id.
        """
        collateral = 0
        backing: Asset | None = None
        if side == BUY:
            collateral = price * qty * inst.hours
            if collateral > acct.balance - acct.reserved:
                raise InsufficientBalance(
                    f"buy needs {collateral} base units of collateral, "
                    f"{acct.account_id!r} has {acct.free} free",
                    hint="deposit more, cancel other buys, or buy fewer GPUs / at a lower price",
                )
        else:
            backing = self._pick_asset(acct.account_id, inst, qty, price, asset, allow_below_floor)
        account, oid = acct.account_id, self.next_oid
        order = Order(
            oid,
            account,
            inst.book.instrument,
            side,
            price,
            qty,
            tif,
            post_only,
            backing.asset_id if backing else None,
            client_order_id,
        )
        if tif == "FOK" and inst.book.fillable(order) < qty:
            raise _bad(
                RejectCode.FOK_NOT_FILLABLE,
                f"fill-or-kill {side.label} of {qty} cannot fill completely at {price} or better",
                "use IOC for a partial fill, or GTC to rest",
            )
        # accepted: from here on nothing refuses
        self.next_oid = oid + 1
        if backing is None:
            acct.reserved += collateral
        else:
            backing.commit(inst.start_s, inst.end_s, qty)
        self.orders[oid] = order
        self.orders_by_account[account].append(oid)
        if client_order_id is not None:
            self.client_order_ids[account][client_order_id] = oid
        if inst.book.instrument not in self.instruments:
            self.instruments[inst.book.instrument] = inst
        return order

    def _journal_place(
        self, order: Order, order_type: str, asset: str | None, allow_below_floor: bool
    ) -> None:
        """Queue the accepted order's command, with only the arguments that differ from the defaults."""
        args: JsonObject = {
            "account": order.account,
            "instrument": order.instrument,
            "side": _LABELS[order.side],
            "qty": order.qty,
            "price": order.price,
        }
        if order.tif != "GTC":
            args["tif"] = order.tif
        if order_type != "limit":
            args["order_type"] = order_type
        if order.post_only:
            args["post_only"] = True
        if asset is not None:
            args["asset"] = asset
        if allow_below_floor:
            args["allow_below_floor"] = True
        if order.client_order_id is not None:
            args["client_order_id"] = order.client_order_id
        self._accept("place", args)

    def _execute(self, order: Order, inst: _Inst) -> tuple[Trade, ...]:
        """Match an accepted order, settle its fills, then rest or cancel the remainder.

        Returns the trades it made, in order.
        """
        book = inst.book
        opp = book.asks if order.side == BUY else book.bids
        made: tuple[Trade, ...] = ()
        if opp.keys and opp.keys[-1] >= opp.sign * order.price:
            fills = book.match(order)
            if fills:
                self._settle(order, fills, inst)
                made = tuple(self.trades[-len(fills) :])
        if order.qty:
            if order.reason or order.tif != "GTC":
                self._cancel_remainder(order, inst, order.reason or "unfilled_ioc")
            else:
                (book.bids if order.side == BUY else book.asks).add(order)
        else:
            order.status = FILLED
        return made

    def _settle(self, taker: Order, fills: list[tuple[Order, int, int]], inst: _Inst) -> None:
        hours = inst.hours
        start_s, end_s = inst.start_s, inst.end_s
        accounts = self.accounts
        trades = self.trades
        leases = self.leases
        instrument = inst.book.instrument
        tside = taker.side
        seq = self.seq
        self.lease_seqs.extend([seq] * len(fills))
        for maker, q, p in fills:
            if tside == BUY:
                buy, sell = taker, maker
            else:
                buy, sell = maker, taker
            buyer = accounts[buy.account]
            amount = p * q * hours
            buyer.reserved -= buy.price * q * hours
            buyer.balance -= amount
            tid = len(trades) + 1
            trades.append(Trade(tid, instrument, p, q, buy.oid, sell.oid, buy.account, sell.account, tside))
            leases.append(
                Lease(
                    tid, buy.account, sell.account, sell.asset or "", instrument, q, start_s, end_s, p, amount
                )
            )

    def _release(self, order: Order, inst: _Inst, qty: int) -> None:
        if order.side == BUY:
            self.accounts[order.account].reserved -= order.price * qty * inst.hours
        else:
            self.assets[order.asset or ""].release(inst.start_s, inst.end_s, qty)

    def _cancel_remainder(self, order: Order, inst: _Inst, reason: str) -> None:
        """Cancel an order's open remainder (already off the book): release it and close the order."""
        self._release(order, inst, order.qty)
        order.cancelled += order.qty
        order.qty = 0
        order.status = CANCELLED
        order.reason = reason

    def _own_open(self, account: str, oid: int) -> Order:
        order = self.orders.get(oid) if type(oid) is int else None
        if order is None or order.account != account:
            raise UnknownOrder(
                RejectCode.UNKNOWN_ORDER,
                f"no order {oid!r} of account {account!r}",
                hint="list your orders with GET /orders",
            )
        if order.status != OPEN:
            raise OrderRejected(
                RejectCode.ORDER_CLOSED,
                f"order {oid} is already {order.status}",
                hint="only open orders can be cancelled or amended",
            )
        return order

    def close_started(self, now_s: int) -> int:
        """Stop trading every contract that starts at or before ``now_s`` (Unix seconds, UTC).

        Their open orders are cancelled (reason ``"expired"``), releasing collateral and capacity;
        later orders on them are refused. The time is an argument, not a clock read, so a replay
        closes exactly what the live run closed. Returns the number of orders cancelled.
        """
        self._check_live()
        _check_int("now_s", now_s, 0, 2**40, RejectCode.BAD_TIME)
        if now_s <= self.closed_before_s:
            raise _bad(
                RejectCode.BAD_TIME,
                f"contracts up to {self.closed_before_s} are already closed",
                "pass a later time",
            )
        self.closed_before_s = now_s
        self._accept("close_started", {"now_s": now_s})
        cancelled = 0
        for inst in self.instruments.values():
            if inst.start_s > now_s:
                continue
            for side in (inst.book.bids, inst.book.asks):
                for order in side.orders():
                    side.remove(order)
                    self._cancel_remainder(order, inst, "expired")
                    cancelled += 1
        return cancelled

    def cancel(self, account: str, oid: int) -> Order:
        """Cancel the open remainder of an own order."""
        if self.halted:
            self._check_live()
        order = self._own_open(account, oid)
        inst = self.instruments[order.instrument]
        book = inst.book
        (book.bids if order.side == BUY else book.asks).remove(order)
        self._cancel_remainder(order, inst, "cancelled")
        if self.pending is not None:
            self._accept("cancel", {"account": account, "oid": oid})
        else:
            self.seq += 1
        return order

    def amend(self, account: str, oid: int, price: int | None = None, qty: int | None = None) -> Placed:
        """Change an own resting order's price and/or open quantity (see the module docstring).

        Returns :class:`Placed`: the order as amended and the trades it made. A size decrease keeps
        the order and its priority and trades nothing; a change that loses priority re-enters as a
        fresh order under the same id, which trades at once when its new price crosses the book.
        """
        self._check_live()
        order = self._own_open(account, oid)
        if price is None and qty is None:
            raise _bad(
                RejectCode.BAD_AMEND, "an amend needs a new price or quantity", "give price, qty or both"
            )
        new_price = (
            order.price if price is None else _check_int("price", price, 1, MAX_PRICE, RejectCode.BAD_PRICE)
        )
        new_qty = order.qty if qty is None else _check_int("qty", qty, 1, MAX_QTY, RejectCode.BAD_QUANTITY)
        inst = self.instruments[order.instrument]
        book = inst.book
        side = book.bids if order.side == BUY else book.asks
        hours = inst.hours
        acct = self.accounts[account]
        if new_price == order.price and new_qty == order.qty:
            raise _bad(
                RejectCode.BAD_AMEND, "the amend changes nothing", "give a different price or quantity"
            )
        if new_price == order.price and new_qty < order.qty:
            # size decrease keeps priority
            diff = order.qty - new_qty
            self._release(order, inst, diff)
            order.qty = new_qty
            order.cancelled += diff
            self._accept("amend", {"account": account, "oid": oid, "price": price, "qty": qty})
            return _new_placed(Placed, (order, ()))
        # loses priority: check the new state's risk first
        asset = self._check_amend_risk(order, inst, new_price, new_qty)
        side.remove(order)
        if order.side == BUY:
            acct.reserved += new_price * new_qty * hours - order.price * order.qty * hours
        else:
            assert asset is not None
            if new_qty > order.qty:
                asset.commit(inst.start_s, inst.end_s, new_qty - order.qty)
            elif new_qty < order.qty:
                asset.release(inst.start_s, inst.end_s, order.qty - new_qty)
        fresh = Order(
            oid,
            account,
            order.instrument,
            order.side,
            new_price,
            new_qty,
            "GTC",
            order.post_only,
            order.asset,
            order.client_order_id,
        )
        fresh.submitted = order.submitted + max(0, new_qty - order.qty)
        fresh.filled = order.filled
        fresh.cancelled = order.cancelled + max(0, order.qty - new_qty)
        order.qty = 0  # the old entry is dead in its deque
        order.status = CANCELLED
        order.reason = "replaced"
        self.orders[oid] = fresh
        self._accept("amend", {"account": account, "oid": oid, "price": price, "qty": qty})
        return _new_placed(Placed, (fresh, self._execute(fresh, inst)))

    def _check_amend_risk(self, order: Order, inst: _Inst, new_price: int, new_qty: int) -> Asset | None:
        """Refuse an amend that loses priority unless the new order passes risk; returns a sell's asset."""
        if order.post_only and inst.book.crosses(order.side, new_price):
            raise _bad(
                RejectCode.POST_ONLY_WOULD_CROSS,
                f"post-only order {order.oid} at {new_price} would trade",
                "choose a price that does not cross, or cancel and place a taker order",
            )
        asset: Asset | None = None
        if order.side == BUY:
            free = self.accounts[order.account].free
            extra = new_price * new_qty * inst.hours - order.price * order.qty * inst.hours
            if extra > free:
                raise InsufficientBalance(
                    f"amend needs {extra} more base units of collateral, {order.account!r} has {free} free",
                    hint="deposit more or amend to a smaller size / lower price",
                )
        else:
            asset = self.assets[order.asset or ""]
            if new_price < asset.floor_price and new_price < order.price:
                raise BelowFloor(
                    f"amended price {new_price} is below the floor {asset.floor_price} of {asset.asset_id!r}",
                    hint="keep the price at or above the floor (cancel and re-place with allow_below_floor)",
                )
            if new_qty > order.qty and not asset.can_commit(inst.start_s, inst.end_s, new_qty - order.qty):
                raise InsufficientCapacity(
                    f"asset {asset.asset_id!r} has fewer than {new_qty - order.qty} more GPUs free",
                    hint="amend to a smaller size or register more capacity",
                )
        return asset

    # --- views --------------------------------------------------------------------------------

    def book(self, instrument: str) -> BookView:
        """A read-only view of the book of ``instrument`` that stays current.

        Before the instrument's first accepted order it shows an empty book, and the live one from
        then on; the instrument becomes active (listed, snapshotted) only with that order.
        """
        inst = self.instruments.get(instrument)
        if inst is None:
            self._new_inst(instrument)  # refuses an invalid instrument id
        instruments = self.instruments

        def resolve() -> Book | None:
            found = instruments.get(instrument)
            return None if found is None else found.book

        return BookView(instrument, resolve)

    def snapshot(self) -> dict[str, object]:
        """Everything the journal must reproduce, as plain comparable data."""
        books = {}
        for iid, inst in self.instruments.items():
            books[iid] = {
                "bids": [(o.oid, o.account, o.price, o.qty) for o in inst.book.bids.orders()],
                "asks": [(o.oid, o.account, o.price, o.qty) for o in inst.book.asks.orders()],
            }
        return {
            "seq": self.seq,
            "next_oid": self.next_oid,
            "closed_before_s": self.closed_before_s,
            "accounts": {a.account_id: (a.balance, a.reserved, a.key_hash) for a in self.accounts.values()},
            "assets": {
                a.asset_id: (
                    a.owner,
                    a.gpu_model,
                    a.region,
                    a.gpus,
                    a.available_from_s,
                    a.available_to_s,
                    a.floor_price,
                    a.escrow,
                    a.total,
                    sorted(a.windows.items()),
                )
                for a in self.assets.values()
            },
            "books": books,
            "orders": {
                oid: (
                    o.status,
                    o.price,
                    o.submitted,
                    o.filled,
                    o.cancelled,
                    o.qty,
                    o.reason,
                    o.client_order_id,
                )
                for oid, o in self.orders.items()
            },
            "trades": [t.as_tuple() for t in self.trades],
            "leases": [lease.as_tuple() for lease in self.leases],
            "lease_seqs": list(self.lease_seqs),
        }


_COMMANDS: dict[str, Callable[..., object]] = {
    "open_account": Engine.open_account,
    "deposit": Engine.deposit,
    "withdraw": Engine.withdraw,
    "register_asset": Engine.register_asset,
    "place": Engine.place,
    "cancel": Engine.cancel,
    "close_started": Engine.close_started,
    "amend": Engine.amend,
}

__all__ = [
    "MAX_PRICE",
    "MAX_QTY",
    "AccountError",
    "Engine",
    "EngineHalted",
    "Lease",
    "Placed",
    "Record",
    "Trade",
    "UnknownOrder",
    "hash_api_key",
    "tune_gc",
]


def _short_printable(value: object, limit: int) -> bool:
    """An id the engine accepts: text of 1 to ``limit`` printable characters."""
    return isinstance(value, str) and 1 <= len(value) <= limit and value.isprintable()
