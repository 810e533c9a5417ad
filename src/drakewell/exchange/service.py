"""The exchange service behind the REST routes, and what its account and operator routes share.

:class:`ExchangeService` holds an engine, its journal (optional), the group committer, the lease
forwarder and a clock; :func:`demo_service` builds one with two funded demo accounts. The account
routes (:mod:`drakewell.exchange.api`) and the operator routes
(:mod:`drakewell.exchange.operator_api`) both run their commands through
:meth:`ExchangeService.command`, answer a refusal as an :class:`HttpRefusal` (an :class:`ErrorOut`
body with the refusal's code and the status its kind maps to, see :func:`refusal`), and describe a
registered asset as an :class:`AssetOut`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable
from typing import Self, TypeVar

from fastapi import Request
from pydantic import BaseModel

from drakewell.core.errors import ExchangeError
from drakewell.core.units import USD
from drakewell.exchange.assets import (
    AssetDirectory,
    DeclaredAsset,
    InMemoryAssetDirectory,
    register_tied_asset,
)
from drakewell.exchange.engine import Engine, EngineHalted, UnknownOrder, hash_api_key
from drakewell.exchange.instruments import day_contracts, next_day_starts
from drakewell.exchange.journal import GroupCommitter, Journal
from drakewell.exchange.leases import DeadLetterLog, InMemoryLeaseSink, LeaseForwarder, LeaseSink
from drakewell.exchange.pricing import floor_price_for
from drakewell.exchange.refusals import OrderRejected
from drakewell.exchange.risk import Asset

T = TypeVar("T")

# --- refusals over HTTP ---------------------------------------------------------------------------


class ErrorOut(BaseModel):
    code: str
    message: str
    hint: str | None = None


class HttpRefusal(Exception):
    """A request refused: answered with ``status`` and an :class:`ErrorOut` body."""

    def __init__(self, status: int, code: str, message: str, hint: str | None) -> None:
        self.status, self.code, self.message, self.hint = status, code, message, hint


def refusal(exc: ExchangeError) -> HttpRefusal:
    """The answer to a refusal: its :class:`RejectCode` and the status its kind maps to."""
    if not isinstance(exc, OrderRejected):
        return HttpRefusal(409, "refused", exc.message, exc.hint)
    if isinstance(exc, EngineHalted):
        status = 503
    elif isinstance(exc, UnknownOrder):
        status = 404
    elif exc.code.is_bad_input:
        status = 400
    else:
        status = 409
    return HttpRefusal(status, exc.code.value, exc.message, exc.hint)


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """A route's documented refusals: an :class:`ErrorOut` for each status."""
    return {status: {"model": ErrorOut} for status in statuses}


# --- the service ----------------------------------------------------------------------------------

#: How many whole UTC days ahead ``GET /instruments`` lists each asset's 24-hour contracts.
LISTED_DAYS = 7
#: A clock: Unix seconds (UTC) now.
Clock = Callable[[], float]


class ExchangeService:
    """An engine, its journal (optional), the group committer, the lease forwarder and a clock.

    ``clock`` (Unix seconds, default the wall clock) is the one place the service reads the time:
    the closer and the listing use it, so a test or a replay can run the service at any date.
    ``operator_key`` opens the operator routes (none: they answer 403); ``assets`` is where the
    operator's asset registrations are checked against the chain. Dead-lettered leases are kept
    in the journal's database (in memory without a journal).
    """

    def __init__(
        self,
        engine: Engine,
        journal: Journal | None = None,
        sink: LeaseSink | None = None,
        clock: Clock = time.time,
        *,
        operator_key: str | None = None,
        assets: AssetDirectory | None = None,
    ) -> None:
        self.engine = engine
        self.journal = journal
        self.committer = GroupCommitter(engine)
        dead_letters = DeadLetterLog(journal.url if journal is not None else None)
        self.forwarder = LeaseForwarder(engine, sink or InMemoryLeaseSink(), dead_letters=dead_letters)
        self.clock = clock
        self.operator_key_hash = hash_api_key(operator_key) if operator_key else None
        self.assets = assets

    def close(self) -> None:
        """Release the dead-letter table's connections (the journal is the caller's to close)."""
        self.forwarder.dead_letters.close()

    def is_operator(self, key: str) -> bool:
        """Whether ``key`` is the operator key (compared in constant time)."""
        return self.operator_key_hash is not None and hmac.compare_digest(
            hash_api_key(key), self.operator_key_hash
        )

    def now_s(self) -> int:
        """The service clock's time in whole Unix seconds."""
        return int(self.clock())

    def listed(self, days: int = LISTED_DAYS) -> list[str]:
        """The 24-hour contracts on the ``days`` whole UTC days after now that a registered asset can
        deliver (inside its availability window), soonest first."""
        now_s = self.now_s()
        out: set[str] = set()
        for asset in self.engine.assets.values():
            for inst in day_contracts(asset.gpu_model, asset.region, now_s, days):
                if asset.available_from_s <= inst.start_s and inst.end_s <= asset.available_to_s:
                    out.add(inst.id)
        return sorted(out, key=lambda iid: (iid.rsplit(".", 2)[1], iid))

    def account_for_key(self, api_key: str) -> str | None:
        # a dict lookup on the key's SHA-256: timing reveals nothing about the key itself
        return self.engine.key_index.get(hash_api_key(api_key))

    async def acknowledge(self) -> None:
        """Wait until every command applied so far is durable, then forward new leases.

        A failed commit halts the engine and answers 503: the command is not acknowledged.
        """
        try:
            await self.committer.durable(self.engine.seq)
        except Exception as exc:
            # the cause (SQL, paths) goes to the server log, never into the answer
            logging.getLogger("drakewell.exchange").error("journal commit failed", exc_info=exc)
            raise HttpRefusal(
                503,
                "engine_halted",
                "the journal commit failed (the server log has the cause); the command was not acknowledged",
                "restart the exchange; the journal replay restores every acknowledged command",
            ) from exc
        self.forwarder.forward()

    async def command(self, run: Callable[[], T]) -> T:
        """Run one engine command for a request; returns its result once the command is durable.

        A refusal raises its :class:`HttpRefusal` (the refused command changed nothing, so there is
        nothing to acknowledge).
        """
        try:
            result = run()
        except ExchangeError as exc:
            raise refusal(exc) from None
        await self.acknowledge()
        return result


def demo_service(
    journal: Journal | None = None, engine: Engine | None = None, clock: Clock = time.time
) -> tuple[ExchangeService, dict[str, str]]:
    """A service with two funded accounts (a buyer, and a provider with 512 H100-SXM GPUs in us-tx
    from the first whole UTC day after ``clock()`` for 90 days, floored at their mining value) and
    their fresh API keys (none when ``engine`` already holds the demo accounts).

    Without a chain, the demo pool is declared in an :class:`InMemoryAssetDirectory` (the double of
    the on-chain asset) and its leases go to an in-memory sink."""

    engine = engine or Engine()
    directory = InMemoryAssetDirectory()
    pool = directory.declare(DeclaredAsset(DEMO_ESCROW, DEMO_SHARE, "0x" + "00" * 31 + "01", 512))
    keys = {}
    if "demo-buyer" not in engine.accounts:
        keys = {"demo-buyer": secrets.token_urlsafe(24), "demo-provider": secrets.token_urlsafe(24)}
        for name, key in keys.items():
            engine.open_account(name, hash_api_key(key))
        engine.deposit("demo-buyer", 1_000_000 * USD)
        start = int(next_day_starts(int(clock()), 1)[0].timestamp())
        # floor: what the GPUs' power would earn in S21 miners (17.5 J/TH) at 50 USD/PH/day, PUE 1.2
        floor = floor_price_for("H100-SXM", 50.0, 17.5, pue=1.2)
        register_tied_asset(
            engine,
            directory,
            owner="demo-provider",
            asset_id="demo-pool-h100",
            gpu_model="H100-SXM",
            region="us-tx",
            gpus=pool.gpus,
            available_from_s=start,
            available_to_s=start + 90 * 86400,
            floor_price=floor,
            escrow=pool.escrow,
            share=pool.share,
        )
        engine.commit()
    return ExchangeService(engine, journal, clock=clock, assets=directory), keys


#: The demo pool's escrow and share in the in-memory asset directory (no chain behind them).
DEMO_ESCROW = "0x" + "de" * 19 + "01"
DEMO_SHARE = "0x" + "de" * 19 + "02"


def service_of(request: Request) -> ExchangeService:
    """The service of the app serving ``request`` (``app.state.exchange``)."""
    service: ExchangeService = request.app.state.exchange
    return service


class AssetOut(BaseModel):
    asset_id: str
    gpu_model: str
    region: str
    gpus: int
    available_from_s: int
    available_to_s: int
    floor_price: int
    committed_gpus_total: int

    @classmethod
    def of(cls, a: Asset, **more: str) -> Self:
        """The answer describing asset ``a`` (``more``: the fields a subclass adds)."""
        return cls(
            asset_id=a.asset_id,
            gpu_model=a.gpu_model,
            region=a.region,
            gpus=a.gpus,
            available_from_s=a.available_from_s,
            available_to_s=a.available_to_s,
            floor_price=a.floor_price,
            committed_gpus_total=a.total,
            **more,
        )


__all__ = [
    "DEMO_ESCROW",
    "DEMO_SHARE",
    "LISTED_DAYS",
    "AssetOut",
    "Clock",
    "ErrorOut",
    "ExchangeService",
    "HttpRefusal",
    "demo_service",
    "error_responses",
    "refusal",
    "service_of",
]
