"""The exchange's REST API (FastAPI): orders, book, trades, leases, marks, index, accounts.

Authentication: every private route takes the header ``X-API-Key``; the key's SHA-256 names the
account (keys themselves are never stored). An account sees and touches only its own orders,
leases and balance; someone else's order id answers 404 exactly like a missing one. Market data
(instruments, book, public trades, marks, index, forward curve) is public. Registering an asset
and handling dead-lettered leases belong to the operator alone (``X-Operator-Key``, see
:mod:`drakewell.exchange.operator_api`); no account key opens those routes.

Every command route answers only after the command's journal record has committed (see
:class:`~drakewell.exchange.journal.GroupCommitter`): concurrent requests share one commit.
Refusals answer ``{"code", "message", "hint"}``: 400 for input the schema cannot express (an
impossible date such as 2026-02-30, a limit order without a price, an unparsable body), 404 for an
unknown order, 409 for a refusal by the market state (collateral, capacity, floor, post-only,
fill-or-kill, closed order, a client order id in use), 401 for a missing or unknown key, 503 when
the engine halted after a failed commit. ``code`` is the refusal's
:class:`~drakewell.exchange.refusals.RejectCode` (``insufficient_balance``,
``insufficient_capacity``, ``below_floor``, ``fok_not_fillable``, ...). Input that breaks the
published schema (types, ranges, the instrument id pattern) answers FastAPI's 422. Request models
are strict: JSON integers and booleans only, no coercion.

Time comes from the service's clock (``ExchangeService.clock``, the wall clock unless one is
given): it closes contracts at their start and lists the next whole days' contracts of every
registered asset (``GET /instruments``, field ``listed``), so nothing depends on a date written in
the code.

Use :func:`create_app` for a standalone server or include :data:`router` in another app and set
``app.state.exchange`` to an :class:`ExchangeService`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from drakewell.core.errors import ExchangeError
from drakewell.core.httpguard import BodyLimit
from drakewell.core.units import USD
from drakewell.exchange.assets import (
    AssetDirectory,
    DeclaredAsset,
    InMemoryAssetDirectory,
    register_tied_asset,
)
from drakewell.exchange.book import Order
from drakewell.exchange.engine import (
    MAX_PRICE,
    MAX_QTY,
    Engine,
    EngineHalted,
    OrderRejected,
    UnknownOrder,
    hash_api_key,
)
from drakewell.exchange.instruments import (
    GPU_MODELS,
    INSTRUMENT_PATTERN,
    REGIONS,
    day_contracts,
    next_day_starts,
)
from drakewell.exchange.journal import GroupCommitter, Journal
from drakewell.exchange.leases import DeadLetterLog, InMemoryLeaseSink, LeaseForwarder, LeaseSink
from drakewell.exchange.pricing import floor_price_for, forward_curve, gpu_hour_index, marks

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
            raise _HttpRefusal(
                503,
                "engine_halted",
                "the journal commit failed (the server log has the cause); the command was not acknowledged",
                "restart the exchange; the journal replay restores every acknowledged command",
            ) from exc
        self.forwarder.forward()


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


# --- schemas (I/O edge only) -----------------------------------------------------------------------


class ErrorOut(BaseModel):
    code: str
    message: str
    hint: str | None = None


class OrderIn(BaseModel):
    model_config = ConfigDict(strict=True)  # JSON true/false and integers only, no coercion

    instrument: str = Field(
        min_length=1,
        max_length=64,
        pattern=INSTRUMENT_PATTERN,
        description="MODEL.REGION.YYYY-MM-DDTHHZ.Nh; GET /instruments lists the next days' contracts",
    )
    side: Literal["buy", "sell"]
    qty: int = Field(ge=1, le=MAX_QTY, description="whole GPUs")
    price: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PRICE,
        description="limit (or, for market orders, protection) price in micro-USD per GPU-hour",
    )
    order_type: Literal["limit", "market"] = "limit"
    tif: Literal["GTC", "IOC", "FOK"] = "GTC"
    post_only: bool = False
    asset: str | None = Field(default=None, min_length=1, max_length=80)
    allow_below_floor: bool = False
    client_order_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="your name for the order; no two of your open orders share one",
    )


class AmendIn(BaseModel):
    model_config = ConfigDict(strict=True)  # JSON true/false and integers only, no coercion

    price: int | None = Field(default=None, ge=1, le=MAX_PRICE)
    qty: int | None = Field(default=None, ge=1, le=MAX_QTY, description="new open quantity")


class OrderOut(BaseModel):
    oid: int
    instrument: str
    side: Literal["buy", "sell"]
    price: int
    status: Literal["open", "filled", "cancelled"]
    submitted: int
    filled: int
    open: int
    cancelled: int
    tif: str
    post_only: bool
    asset: str | None
    reason: str
    client_order_id: str | None


class LevelOut(BaseModel):
    price: int
    qty: int
    orders: int


class BookOut(BaseModel):
    instrument: str
    bids: list[LevelOut]
    asks: list[LevelOut]


class TradeOut(BaseModel):
    tid: int
    instrument: str
    price: int
    qty: int
    taker_side: Literal["buy", "sell"]


class LeaseOut(BaseModel):
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
    forwarded: bool = Field(description="handed to the lease sink (e.g. opened in the LeaseEscrow)")
    sink_lease_id: int | None = Field(description="the sink's id for it (the escrow's lease id)")


class MarkOut(BaseModel):
    instrument: str
    mark: int | None
    last: int | None
    best_bid: int | None
    best_ask: int | None
    traded_gpus: int
    traded_gpu_hours: int


class ForwardOut(BaseModel):
    start: datetime
    price: int
    instruments: int


class AssetOut(BaseModel):
    asset_id: str
    gpu_model: str
    region: str
    gpus: int
    available_from_s: int
    available_to_s: int
    floor_price: int
    committed_gpus_total: int


class AccountOut(BaseModel):
    account_id: str
    balance: int
    reserved: int
    free: int
    assets: list[AssetOut]


class InstrumentsOut(BaseModel):
    gpu_models: list[str]
    regions: list[str]
    active: list[str] = Field(description="instruments that have had an accepted order")
    listed: list[str] = Field(
        description=f"24-hour contracts on the next {LISTED_DAYS} whole UTC days that a registered asset "
        "can deliver, soonest first"
    )


# --- plumbing --------------------------------------------------------------------------------------

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="the account's API key")


class _HttpRefusal(Exception):
    def __init__(self, status: int, code: str, message: str, hint: str | None) -> None:
        self.status, self.code, self.message, self.hint = status, code, message, hint


def _service(request: Request) -> ExchangeService:
    service: ExchangeService = request.app.state.exchange
    return service


def _account(request: Request, api_key: Annotated[str | None, Depends(_api_key)]) -> str:
    if not api_key:
        raise _HttpRefusal(401, "missing_api_key", "no X-API-Key header", "send your account's API key")
    account = _service(request).account_for_key(api_key)
    if account is None:
        raise _HttpRefusal(401, "bad_api_key", "unknown API key", "check the key, or ask for a new one")
    return account


Service = Annotated[ExchangeService, Depends(_service)]
AccountId = Annotated[str, Depends(_account)]

_ERR = {"model": ErrorOut}
_PRIVATE: dict[int | str, dict[str, Any]] = {401: _ERR}
_COMMAND: dict[int | str, dict[str, Any]] = {400: _ERR, 401: _ERR, 404: _ERR, 409: _ERR, 503: _ERR}


def _refusal(exc: ExchangeError) -> _HttpRefusal:
    """The answer to a refusal: its :class:`RejectCode` and the status its kind maps to."""
    if not isinstance(exc, OrderRejected):
        return _HttpRefusal(409, "refused", exc.message, exc.hint)
    if isinstance(exc, EngineHalted):
        status = 503
    elif isinstance(exc, UnknownOrder):
        status = 404
    elif exc.code.is_bad_input:
        status = 400
    else:
        status = 409
    return _HttpRefusal(status, exc.code.value, exc.message, exc.hint)


def _order_out(o: Order) -> OrderOut:
    return OrderOut(
        oid=o.oid,
        instrument=o.instrument,
        side=o.side.label,  # type: ignore[arg-type]
        price=o.price,
        status=o.status,  # type: ignore[arg-type]
        submitted=o.submitted,
        filled=o.filled,
        open=o.qty,
        cancelled=o.cancelled,
        tif=o.tif,
        post_only=o.post_only,
        asset=o.asset,
        reason=o.reason,
        client_order_id=o.client_order_id,
    )


router = APIRouter()


@router.get("/instruments", response_model=InstrumentsOut, tags=["market data"])
async def get_instruments(service: Service) -> InstrumentsOut:
    """Tradable GPU models and regions, the instruments seen so far, and the next days' contracts."""
    return InstrumentsOut(
        gpu_models=list(GPU_MODELS),
        regions=list(REGIONS),
        active=list(service.engine.instruments),
        listed=service.listed(),
    )


@router.get("/book/{instrument}", response_model=BookOut, responses={400: _ERR}, tags=["market data"])
async def get_book(
    service: Service,
    instrument: Annotated[str, Path(min_length=1, max_length=64, pattern=INSTRUMENT_PATTERN)],
    depth: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> BookOut:
    """Aggregated price levels, best first."""
    try:
        book = service.engine.book(instrument)
    except ExchangeError as exc:
        raise _refusal(exc) from None
    return BookOut(
        instrument=instrument,
        bids=[LevelOut(price=p, qty=q, orders=n) for p, q, n in book.bids.depth()[:depth]],
        asks=[LevelOut(price=p, qty=q, orders=n) for p, q, n in book.asks.depth()[:depth]],
    )


@router.get("/trades", response_model=list[TradeOut], tags=["market data"])
async def get_trades(
    service: Service,
    instrument: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[TradeOut]:
    """The latest public trades (no account names), newest first."""
    out: list[TradeOut] = []
    for t in reversed(service.engine.trades):
        if instrument is None or t.instrument == instrument:
            out.append(
                TradeOut(
                    tid=t.tid,
                    instrument=t.instrument,
                    price=t.price,
                    qty=t.qty,
                    taker_side=t.taker_side.label,  # type: ignore[arg-type]
                )
            )
            if len(out) >= limit:
                break
    return out


@router.get("/marks", response_model=list[MarkOut], tags=["market data"])
async def get_marks(service: Service) -> list[MarkOut]:
    """The mark price of every active instrument (EWMA of trades clamped to the quotes, else mid)."""
    return [
        MarkOut(
            instrument=m.instrument,
            mark=m.mark,
            last=m.last,
            best_bid=m.best_bid,
            best_ask=m.best_ask,
            traded_gpus=m.traded_gpus,
            traded_gpu_hours=m.traded_gpu_hours,
        )
        for m in marks(service.engine).values()
    ]


@router.get("/index", response_model=dict[str, int | None], tags=["market data"])
async def get_index(service: Service) -> dict[str, int | None]:
    """The GPU-hour index of each GPU model (micro-USD per GPU-hour; null where nothing is priced)."""
    return gpu_hour_index(service.engine)


@router.get("/forward/{gpu_model}", response_model=list[ForwardOut], tags=["market data"])
async def get_forward(
    service: Service,
    gpu_model: Literal["H100-SXM", "H100-PCIE", "H200-SXM", "B200"],
    region: Annotated[str | None, Query(max_length=16)] = None,
) -> list[ForwardOut]:
    """The forward curve of a GPU model (optionally one region) by contract start."""
    return [
        ForwardOut(start=p.start, price=p.price, instruments=p.instruments)
        for p in forward_curve(service.engine, gpu_model, region)
    ]


@router.get("/account", response_model=AccountOut, responses=_PRIVATE, tags=["account"])
async def get_account(service: Service, account: AccountId) -> AccountOut:
    """Your balance, collateral reserved by open buys, and registered capacity."""
    acct = service.engine.accounts[account]
    return AccountOut(
        account_id=account,
        balance=acct.balance,
        reserved=acct.reserved,
        free=acct.free,
        assets=[
            AssetOut(
                asset_id=a.asset_id,
                gpu_model=a.gpu_model,
                region=a.region,
                gpus=a.gpus,
                available_from_s=a.available_from_s,
                available_to_s=a.available_to_s,
                floor_price=a.floor_price,
                committed_gpus_total=a.total,
            )
            for a in service.engine.assets_by_owner[account]
        ],
    )


@router.post("/orders", response_model=OrderOut, status_code=201, responses=_COMMAND, tags=["orders"])
async def post_order(service: Service, account: AccountId, body: OrderIn) -> OrderOut:
    """Place a limit or market order; answered after it is journaled (and matched)."""
    try:
        order = service.engine.place(
            account,
            body.instrument,
            body.side,
            price=body.price,
            qty=body.qty,
            tif=body.tif,
            order_type=body.order_type,
            post_only=body.post_only,
            asset=body.asset,
            allow_below_floor=body.allow_below_floor,
            client_order_id=body.client_order_id,
        ).order
    except ExchangeError as exc:
        raise _refusal(exc) from None
    await service.acknowledge()
    return _order_out(order)


@router.get("/orders", response_model=list[OrderOut], responses=_PRIVATE, tags=["orders"])
async def get_orders(
    service: Service,
    account: AccountId,
    status: Literal["open", "filled", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[OrderOut]:
    """Your orders, newest first."""
    engine = service.engine
    out: list[OrderOut] = []
    for oid in reversed(engine.orders_by_account[account]):
        o = engine.orders[oid]
        if status is None or o.status == status:
            out.append(_order_out(o))
            if len(out) >= limit:
                break
    return out


@router.get("/orders/{oid}", response_model=OrderOut, responses={401: _ERR, 404: _ERR}, tags=["orders"])
async def get_order(service: Service, account: AccountId, oid: int) -> OrderOut:
    """One of your orders."""
    o = service.engine.orders.get(oid)
    if o is None or o.account != account:
        raise _HttpRefusal(
            404,
            "unknown_order",
            f"no order {oid} of account {account!r}",
            "list your orders with GET /orders",
        )
    return _order_out(o)


@router.patch("/orders/{oid}", response_model=OrderOut, responses=_COMMAND, tags=["orders"])
async def patch_order(service: Service, account: AccountId, oid: int, body: AmendIn) -> OrderOut:
    """Amend price and/or open quantity (a price change or increase loses priority)."""
    try:
        order = service.engine.amend(account, oid, body.price, body.qty).order
    except ExchangeError as exc:
        raise _refusal(exc) from None
    await service.acknowledge()
    return _order_out(order)


@router.delete("/orders/{oid}", response_model=OrderOut, responses=_COMMAND, tags=["orders"])
async def delete_order(service: Service, account: AccountId, oid: int) -> OrderOut:
    """Cancel the open remainder of one of your orders."""
    try:
        order = service.engine.cancel(account, oid)
    except ExchangeError as exc:
        raise _refusal(exc) from None
    await service.acknowledge()
    return _order_out(order)


@router.get("/leases", response_model=list[LeaseOut], responses=_PRIVATE, tags=["account"])
async def get_leases(
    service: Service, account: AccountId, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[LeaseOut]:
    """Leases you rent or provide, newest first."""
    forwarded = service.forwarder.backend_ids
    out: list[LeaseOut] = []
    for lease in reversed(service.engine.leases):
        if account in (lease.renter, lease.provider):
            out.append(
                LeaseOut(
                    lease_id=lease.lease_id,
                    renter=lease.renter,
                    provider=lease.provider,
                    asset=lease.asset,
                    instrument=lease.instrument,
                    gpus=lease.gpus,
                    start_s=lease.start_s,
                    end_s=lease.end_s,
                    price=lease.price,
                    amount=lease.amount,
                    forwarded=lease.lease_id in forwarded,
                    sink_lease_id=forwarded.get(lease.lease_id),
                )
            )
            if len(out) >= limit:
                break
    return out


async def _refusal_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, _HttpRefusal)
    return JSONResponse(
        status_code=exc.status,
        content=ErrorOut(code=exc.code, message=exc.message, hint=exc.hint).model_dump(),
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """Framework errors in the exchange's own shape: an unparsable body answers an :class:`ErrorOut`,
    and a 405 lists every route's methods in ``Allow`` (Starlette lists only the first route's)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        body = ErrorOut(
            code="bad_request", message=str(exc.detail), hint="send a JSON body matching the schema"
        )
        return JSONResponse(body.model_dump(), status_code=400)
    if exc.status_code != 405:
        return await http_exception_handler(request, exc)
    allowed: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE and isinstance(route, APIRoute) and route.methods:
            allowed |= route.methods
    return JSONResponse(
        {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": ", ".join(sorted(allowed))}
    )


def install(app: FastAPI, service: ExchangeService, prefix: str = "") -> None:
    """Mount the exchange routes on ``app`` under ``prefix``."""
    app.state.exchange = service
    app.add_exception_handler(_HttpRefusal, _refusal_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(router, prefix=prefix)
    from drakewell.exchange.operator_api import router as operator_router

    app.include_router(operator_router, prefix=prefix)


async def close_started_loop(service: ExchangeService, every_s: float) -> None:
    """Every ``every_s`` seconds, stop trading the contracts whose start has passed by the service's
    clock (journaled)."""
    while True:
        now_s = service.now_s()
        if now_s > service.engine.closed_before_s and not service.engine.halted:
            service.engine.close_started(now_s)
            await service.acknowledge()
        await asyncio.sleep(every_s)


def create_app(service: ExchangeService | None = None, *, close_every_s: float | None = 60.0) -> FastAPI:
    """A standalone exchange app (a demo service with fresh keys when none is given).

    While it runs, contracts stop trading at their start (checked every ``close_every_s`` seconds;
    ``None`` turns that off).
    """
    service = service or demo_service()[0]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(close_started_loop(service, close_every_s)) if close_every_s else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        lifespan=lifespan,
        title="Drakewell exchange",
        version="1",
        description="Standardized GPU-time contracts: prices in micro-USD per GPU-hour, quantities in GPUs.",
    )
    install(app, service)

    app.add_middleware(BodyLimit)  # 1 MiB: an order is a few hundred bytes
    return app


__all__ = ["ExchangeService", "create_app", "demo_service", "install", "router"]
