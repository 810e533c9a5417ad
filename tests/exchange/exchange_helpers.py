"""Shared builders for the exchange tests (imported by basename; pytest's rootdir import mode)."""

from __future__ import annotations

import contextlib
import hashlib
import time
from datetime import UTC, datetime

from drakewell.core.units import USD
from drakewell.exchange.engine import Engine
from drakewell.exchange.instruments import parse_instrument

INST = "H100-SXM.us-tx.2026-12-01T00Z.24h"
INST_1H = "H100-SXM.us-tx.2026-12-01T05Z.1h"
START_S = parse_instrument(INST).start_s


def escrow_for(asset_id: str) -> str:
    """A distinct LeaseEscrow address per asset (the engine stores it; the chain tests use real ones)."""
    return "0x" + hashlib.sha256(asset_id.encode()).hexdigest()[:40]


_TODAY_S = int(time.time())
#: Clocks the date-dependent parts run under: today, one year ahead, and 2030-01-01 (Unix seconds).
CLOCK_DATES = {
    "today": _TODAY_S,
    "one-year-ahead": _TODAY_S + 365 * 86400,
    "2030-01-01": int(datetime(2030, 1, 1, tzinfo=UTC).timestamp()),
}


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
        engine.fund(name, balance, api_key="key-" + name)
        engine.register_asset(
            name,
            f"pool-{name}",
            "H100-SXM",
            "us-tx",
            gpus,
            START_S - 86400,
            START_S + 30 * 86400,
            floor_price,
            escrow=escrow_for(f"pool-{name}"),
        )
    return engine


def seed_accounts(engine: Engine) -> None:
    """The accounts and capacity :func:`drive` trades with (journaled like any command)."""
    for name in ("alice", "bob", "carol"):
        engine.fund(name, 1_000_000 * USD, api_key="key-" + name)
        engine.register_asset(
            name,
            f"pool-{name}",
            "H100-SXM",
            "us-tx",
            100_000,
            START_S - 86400,
            START_S + 30 * 86400,
            0,
            escrow=escrow_for(f"pool-{name}"),
        )


def command_stream(n: int, seed: int = 7) -> list[tuple[str, dict[str, object]]]:
    """A deterministic mix of places (all kinds), cancels and amends on two instruments."""
    import random

    rng = random.Random(seed)
    out: list[tuple[str, dict[str, object]]] = []
    for i in range(n):
        r = rng.random()
        account = rng.choice(("alice", "bob", "carol"))
        if r < 0.65 or i < 5:
            kind = rng.choice(("GTC", "GTC", "IOC", "FOK", "POST", "MKT"))
            args: dict[str, object] = {
                "account": account,
                "instrument": rng.choice((INST, INST_1H)),
                "side": rng.choice(("buy", "sell")),
                "qty": rng.randint(1, 9),
                "price": 2_000_000 + rng.randint(-20, 20),
            }
            if kind in ("IOC", "FOK"):
                args["tif"] = kind
            elif kind == "POST":
                args["post_only"] = True
            elif kind == "MKT":
                args["order_type"] = "market"
            out.append(("place", args))
        elif r < 0.85:
            out.append(("cancel", {"account": account, "oid": rng.randint(1, max(1, i // 2 + 1))}))
        else:
            out.append(
                (
                    "amend",
                    {
                        "account": account,
                        "oid": rng.randint(1, max(1, i // 2 + 1)),
                        "price": rng.choice((None, 2_000_000 + rng.randint(-20, 20))),
                        "qty": rng.choice((None, rng.randint(1, 9))),
                    },
                )
            )
    return out


def drive(
    engine: Engine, commands: list[tuple[str, dict[str, object]]], stop_at_seq: int | None = None
) -> None:
    """Apply ``commands`` (refusals are skipped) until the engine reaches ``stop_at_seq``."""
    from drakewell.core.errors import ExchangeError

    for kind, args in commands:
        if stop_at_seq is not None and engine.seq >= stop_at_seq:
            return
        with contextlib.suppress(ExchangeError):
            engine.apply(kind, dict(args))
