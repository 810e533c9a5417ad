"""Shared builders for the exchange tests (imported by basename; pytest's rootdir import mode)."""

from __future__ import annotations

from drakewell.exchange.engine import Engine, hash_api_key
from drakewell.exchange.instruments import parse_instrument
from drakewell.units import USD

INST = "H100-SXM.us-tx.2026-12-01T00Z.24h"
INST_1H = "H100-SXM.us-tx.2026-12-01T05Z.1h"
START_S = parse_instrument(INST).start_s


def funded_engine(
    buyers: tuple[str, ...] = ("alice", "carol"),
    sellers: tuple[str, ...] = ("bob", "dave"),
    balance: int = 10_000_000 * USD,
    gpus: int = 10_000,
    floor_price: int = 0,
) -> Engine:
    """Buyers with ``balance`` base units; sellers with one H100-SXM us-tx asset of ``gpus`` GPUs.

    Every account can both buy and sell (buyers get capacity too), so random streams rarely hit
    risk limits unless a test asks for them.
    """
    engine = Engine()
    for name in (*buyers, *sellers):
        engine.open_account(name, hash_api_key("key-" + name))
        engine.deposit(name, balance)
        engine.register_asset(name, f"pool-{name}", "H100-SXM", "us-tx", gpus, START_S - 86400,
                              START_S + 30 * 86400, floor_price)
    return engine
