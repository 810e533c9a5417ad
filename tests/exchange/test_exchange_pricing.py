"""Marks, index, forward curve, floor price, and the lease sink seam."""

from __future__ import annotations

import math

import pytest
from exchange_helpers import INST, START_S, escrow_for, funded_engine

from drakewell.exchange.engine import Engine, hash_api_key
from drakewell.exchange.leases import InMemoryLeaseSink, LeaseForwarder, LeaseSink
from drakewell.exchange.pricing import (
    MARK_ALPHA,
    PricingError,
    floor_price,
    floor_price_for,
    forward_curve,
    gpu_hour_index,
    marks,
)

P = 2_000_000


def _trade(e: Engine, inst: str, price: int, qty: int) -> None:
    e.place("bob", inst, "sell", price=price, qty=qty)
    e.place("alice", inst, "buy", price=price, qty=qty)


def test_mark_is_the_stated_ewma_clamped_to_the_quotes() -> None:
    e = funded_engine()
    assert marks(e) == {}
    e.place("bob", INST, "sell", price=P + 1000, qty=1)
    e.place("alice", INST, "buy", price=P - 1000, qty=1)
    assert marks(e)[INST].mark == P  # no trades: the mid
    _trade(e, INST, P + 400, 1)
    _trade(e, INST, P + 800, 1)
    expected = P + 400 + MARK_ALPHA * 400
    assert marks(e)[INST].mark == round(expected)
    assert marks(e)[INST].last == P + 800
    # a new ask below the EWMA pulls the mark down to it
    e.place("dave", INST, "sell", price=P + 200, qty=1)
    assert marks(e)[INST].mark == P + 200


def test_index_weights_by_traded_gpu_hours_and_forward_curve_sorts_by_start() -> None:
    e = funded_engine()
    day1 = INST  # 24 h
    day2 = "H100-SXM.us-tx.2026-12-03T00Z.1h"
    _trade(e, day1, P, 1)  # 24 GPU-hours
    _trade(e, day2, P + 2400, 1)  # 1 GPU-hour
    index = gpu_hour_index(e)
    assert index["H100-SXM"] == round((P * 24 + (P + 2400) * 1) / 25)
    assert index["B200"] is None
    curve = forward_curve(e, "H100-SXM")
    assert [pt.price for pt in curve] == [P, P + 2400]
    assert curve[0].start < curve[1].start
    assert forward_curve(e, "H100-SXM", region="us-va") == []
    with pytest.raises(PricingError):
        forward_curve(e, "A100")


def test_floor_price_is_the_mining_value_of_the_gpus_power_rounded_up() -> None:
    # 60 USD/MWh of mining value, 1,530 W facility power per GPU: 0.0918 USD per GPU-hour
    assert floor_price(60.0, 1530.0) == 91_800
    assert floor_price(60.0, 1530.1) == math.ceil(60.0 * 1530.1)
    assert floor_price(0.0, 1000.0) == 0
    for bad in ((-1.0, 1000.0), (float("nan"), 1000.0), (60.0, 0.0), (60.0, float("inf"))):
        with pytest.raises(PricingError):
            floor_price(*bad)


def test_floor_price_for_uses_the_catalogue_and_bitcoin_economics() -> None:
    from drakewell.catalog import load_catalog
    from drakewell.inputs.bitcoin import mining_revenue_usd_per_mwh

    value = mining_revenue_usd_per_mwh(17.5, 50.0, pue=1.2)
    watts = load_catalog().gpu("H100 SXM").power_w_per_gpu * 1.2
    assert floor_price_for("H100-SXM", 50.0, 17.5, pue=1.2) == floor_price(value, watts)
    assert floor_price_for("B200", 50.0, 17.5) > floor_price_for("H100-PCIE", 50.0, 17.5)
    with pytest.raises(PricingError, match="unknown GPU model"):
        floor_price_for("A100", 50.0, 17.5)
    with pytest.raises(PricingError, match="cannot value mining"):
        floor_price_for("B200", 50.0, 0.0)


def test_a_provider_never_sells_below_its_mining_floor_unless_it_says_so() -> None:
    e = Engine()
    e.open_account("prov", hash_api_key("p"))
    floor = floor_price(60.0, 1530.0)
    e.register_asset(
        "prov", "pool", "H100-SXM", "us-tx", 8, START_S, START_S + 86400, floor, escrow_for("pool")
    )
    with pytest.raises(Exception, match="floor"):
        e.place("prov", INST, "sell", price=floor - 1, qty=1)
    assert e.place("prov", INST, "sell", price=floor, qty=1).order.status == "open"


def test_leases_reach_the_sink_once_and_only_when_durable() -> None:
    e = funded_engine()
    batches: list[int] = []
    e.attach(lambda batch: batches.append(len(batch)))
    sink = InMemoryLeaseSink()
    assert isinstance(sink, LeaseSink)
    fwd = LeaseForwarder(e, sink)
    _trade(e, INST, P, 2)
    assert fwd.forward() == 0 and sink.leases == []  # not committed yet
    e.commit()
    _trade(e, INST, P, 3)  # applied, not yet committed: its lease waits
    assert fwd.forward() == 1 and fwd.forward() == 0
    e.commit()
    assert fwd.forward() == 1 and [lease.gpus for lease in sink.leases] == [2, 3]
    assert fwd.backend_ids == {1: 1, 2: 2}
    with pytest.raises(ValueError, match="already opened"):
        sink.open_lease(sink.leases[0])
