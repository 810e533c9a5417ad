"""The compute exchange: standardized GPU-time contracts, order books, leases and prices.

A contract (:class:`Instrument`, ``H100-SXM.us-tx.2026-12-01T00Z.24h``) is GPU model × region ×
start × duration, priced in integer micro-USD per GPU-hour and traded in whole GPUs. The
:class:`Engine` matches orders by price-time priority with pre-trade risk (buys fully
collateralised, sells backed by registered capacity), turns each trade into a :class:`Lease`, and
journals every accepted command (:func:`recover` rebuilds it exactly). ``Engine.place`` takes a
:class:`Side` (or ``"buy"`` / ``"sell"``) and keyword-only ``price`` and ``qty`` and returns
:class:`Placed` (the order and its fills), as ``Engine.amend`` does; every refusal is an
:class:`OrderRejected` with a :class:`RejectCode`; ``Engine.book`` is a :class:`BookView` that stays
current. :mod:`.pricing` marks, indexes and floors prices; :mod:`.api` serves it over REST (the
service behind it in :mod:`.service`); a :class:`LeaseSink` receives leases.
"""

from drakewell.exchange.book import BookView, OrderView, Side
from drakewell.exchange.engine import (
    Engine,
    EngineHalted,
    Lease,
    OrderRejected,
    Placed,
    Trade,
    UnknownOrder,
    hash_api_key,
)
from drakewell.exchange.instruments import GPU_MODELS, REGIONS, Instrument, InstrumentError, parse_instrument
from drakewell.exchange.journal import Journal, recover, replay
from drakewell.exchange.leases import InMemoryLeaseSink, LeaseForwarder, LeaseSink
from drakewell.exchange.pricing import floor_price, floor_price_for, forward_curve, gpu_hour_index, marks
from drakewell.exchange.refusals import RejectCode
from drakewell.exchange.risk import BelowFloor, InsufficientBalance, InsufficientCapacity, NoEscrow, RiskError

__all__ = [
    "GPU_MODELS",
    "REGIONS",
    "BelowFloor",
    "BookView",
    "Engine",
    "EngineHalted",
    "InMemoryLeaseSink",
    "Instrument",
    "InstrumentError",
    "InsufficientBalance",
    "InsufficientCapacity",
    "Journal",
    "Lease",
    "LeaseForwarder",
    "LeaseSink",
    "NoEscrow",
    "OrderRejected",
    "OrderView",
    "Placed",
    "RejectCode",
    "RiskError",
    "Side",
    "Trade",
    "UnknownOrder",
    "floor_price",
    "floor_price_for",
    "forward_curve",
    "gpu_hour_index",
    "hash_api_key",
    "marks",
    "parse_instrument",
    "recover",
    "replay",
]
