"""Marks, the GPU-hour index, the forward curve and the provider floor price.

All prices are integer base units (micro-USD) per GPU-hour.

**Mark** of an instrument: an exponentially weighted mean of its trade prices in trade order,
``m ← m + α (p − m)`` with ``α = 0.25`` (a trade's weight halves about every 2.4 trades), started at
the first trade; then clamped into ``[best bid, best ask]`` when both sides are quoted, so a stale
mark never sits outside the live market. With no trades the mark is the mid ``(bid + ask) / 2``;
with neither it is undefined (``None``). Rounded to the nearest base unit.

**GPU-hour index** of a GPU model: the mean of its instruments' marks across regions and starts,
weighted by traded GPU-hours (GPUs × contract hours); if none of them has traded, the plain mean
of their (mid) marks.

**Forward curve** of a GPU model (optionally one region): by contract start hour, the index formula
over the instruments starting then.

**Provider floor price**: a GPU that draws ``W`` watts of facility power (GPU + its share of the
server, × PUE) uses ``W / 10⁶`` MWh per hour; at a mining value of ``V`` USD per facility MWh
(what that power would earn in bitcoin at the site's hashprice) the GPU-hour's opportunity cost is
``V · W / 10⁶`` USD, i.e. ``⌈V · W⌉`` base units (rounded up so a sale at the floor never earns
less than mining would).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from weakref import WeakKeyDictionary

from drakewell.catalog import load_catalog
from drakewell.core.errors import ExchangeError
from drakewell.exchange.engine import Engine
from drakewell.exchange.instruments import GPU_MODELS, parse_instrument
from drakewell.inputs.bitcoin import mining_revenue_usd_per_mwh

MARK_ALPHA = 0.25


class PricingError(ExchangeError):
    """A pricing input is out of range."""


@dataclass(frozen=True)
class Mark:
    instrument: str
    mark: int | None
    last: int | None
    best_bid: int | None
    best_ask: int | None
    traded_gpus: int
    traded_gpu_hours: int


@dataclass(frozen=True)
class ForwardPoint:
    start: datetime
    price: int
    instruments: int


class _TradeStats:
    """Per-instrument EWMA, last price and volume, folded in incrementally (trades are append-only)."""

    def __init__(self) -> None:
        self.seen = 0
        self.ewma: dict[str, float] = {}
        self.last: dict[str, int] = {}
        self.volume: dict[str, int] = defaultdict(int)

    def update(self, engine: Engine) -> None:
        ewma, last, volume = self.ewma, self.last, self.volume
        for t in engine.trades[self.seen :]:
            prev = ewma.get(t.instrument)
            ewma[t.instrument] = float(t.price) if prev is None else prev + MARK_ALPHA * (t.price - prev)
            last[t.instrument] = t.price
            volume[t.instrument] += t.qty
        self.seen = len(engine.trades)


_stats: WeakKeyDictionary[Engine, _TradeStats] = WeakKeyDictionary()


def marks(engine: Engine) -> dict[str, Mark]:
    """The mark of every instrument the engine has seen."""
    stats = _stats.get(engine)
    if stats is None or stats.seen > len(engine.trades):
        stats = _stats[engine] = _TradeStats()
    stats.update(engine)
    ewma, last, volume = stats.ewma, stats.last, stats.volume
    out = {}
    for iid, inst in engine.instruments.items():
        bid, ask = inst.book.best_bid(), inst.book.best_ask()
        value: float | None = ewma.get(iid)
        if value is None:
            value = (bid + ask) / 2 if bid is not None and ask is not None else None
        elif bid is not None and ask is not None:
            value = min(max(value, bid), ask)
        out[iid] = Mark(
            iid,
            None if value is None else round(value),
            last.get(iid),
            bid,
            ask,
            volume[iid],
            volume[iid] * inst.hours,
        )
    return out


def _weighted(points: list[Mark]) -> int | None:
    priced = [m for m in points if m.mark is not None]
    if not priced:
        return None
    weight = sum(m.traded_gpu_hours for m in priced)
    if weight:
        return round(sum(m.mark * m.traded_gpu_hours for m in priced if m.mark is not None) / weight)
    return round(sum(m.mark for m in priced if m.mark is not None) / len(priced))


def gpu_hour_index(engine: Engine) -> dict[str, int | None]:
    """The index of every tradable GPU model (``None`` where nothing is priced)."""
    by_model: dict[str, list[Mark]] = {model: [] for model in GPU_MODELS}
    for iid, mark in marks(engine).items():
        by_model[parse_instrument(iid).gpu_model].append(mark)
    return {model: _weighted(points) for model, points in by_model.items()}


def forward_curve(engine: Engine, gpu_model: str, region: str | None = None) -> list[ForwardPoint]:
    """Price by contract start for ``gpu_model`` (and ``region``), earliest first."""
    if gpu_model not in GPU_MODELS:
        raise PricingError(f"unknown GPU model {gpu_model!r}", hint=f"use one of {', '.join(GPU_MODELS)}")
    by_start: dict[datetime, list[Mark]] = defaultdict(list)
    for iid, mark in marks(engine).items():
        inst = parse_instrument(iid)
        if inst.gpu_model == gpu_model and (region is None or inst.region == region):
            by_start[inst.start].append(mark)
    out = []
    for start in sorted(by_start):
        price = _weighted(by_start[start])
        if price is not None:
            out.append(ForwardPoint(start, price, len(by_start[start])))
    return out


def floor_price(mining_value_usd_per_mwh: float, facility_power_w_per_gpu: float) -> int:
    """The GPU-hour price (base units) at which selling GPU time earns what mining would."""
    v = Decimal(str(mining_value_usd_per_mwh))
    w = Decimal(str(facility_power_w_per_gpu))
    if not v.is_finite() or v < 0:
        raise PricingError(
            f"mining value {mining_value_usd_per_mwh} USD/MWh is negative or not finite",
            hint="pass the site's mining revenue per facility MWh (0 if it cannot mine)",
        )
    if not w.is_finite() or w <= 0:
        raise PricingError(
            f"facility power {facility_power_w_per_gpu} W per GPU is not positive",
            hint="pass (GPU TDP + server overhead per GPU) × PUE in watts",
        )
    return int((v * w).to_integral_value(rounding=ROUND_CEILING))


def floor_price_for(
    gpu_model: str,
    hashprice_usd_per_ph_day: float,
    asic_efficiency_j_per_th: float,
    *,
    pue: float = 1.0,
    pool_fee: float = 0.0,
) -> int:
    """:func:`floor_price` from the hardware catalogue and the bitcoin economics module.

    Mining value per facility MWh = ``drakewell.inputs.bitcoin.mining_revenue_usd_per_mwh`` of the
    site's ASICs at ``hashprice_usd_per_ph_day``; facility power per GPU = the catalogue's
    (GPU TDP + server overhead) × ``pue``.
    """

    if gpu_model not in GPU_MODELS:
        raise PricingError(f"unknown GPU model {gpu_model!r}", hint=f"use one of {', '.join(GPU_MODELS)}")
    try:
        value = mining_revenue_usd_per_mwh(
            asic_efficiency_j_per_th, hashprice_usd_per_ph_day, pue=pue, pool_fee=pool_fee
        )
    except ValueError as exc:
        raise PricingError(f"cannot value mining: {exc}", hint="check efficiency, PUE and pool fee") from None
    gpu = load_catalog().gpu(GPU_MODELS[gpu_model])
    return floor_price(value, gpu.power_w_per_gpu * pue)
