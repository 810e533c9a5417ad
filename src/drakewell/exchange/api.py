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

Use :func:`create_app` for a standalone server, or :func:`install` the routes (these and the
operator's) on another app with an :class:`~drakewell.exchange.service.ExchangeService`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from itertools import islice
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from drakewell.core.errors import ExchangeError
from drakewell.core.httpguard import BodyLimit
from drakewell.exchange.book import Order
from drakewell.exchange.engine import MAX_PRICE, MAX_QTY, Lease
from drakewell.exchange.instruments import GPU_MODELS, INSTRUMENT_PATTERN, REGIONS
from drakewell.exchange.operator_api import router as operator_router
from drakewell.exchange.pricing import Mark, forward_curve, gpu_hour_index, marks
from drakewell.exchange.service import (
    LISTED_DAYS,
    AssetOut,
    ErrorOut,
    ExchangeService,
    HttpRefusal,
    demo_service,
    error_responses,
    refusal,
    service_of,
)

T = TypeVar("T")

# --- schemas (I/O edge only) -----------------------------------------------------------------------


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


@pydantic_dataclass
class LeaseOut(Lease):
    # the engine's lease record as it is answered, plus where it was forwarded
    forwarded: bool = Field(description="handed to the lease sink (e.g. opened in the LeaseEscrow)")
    sink_lease_id: int | None = Field(description="the sink's id for it (the escrow's lease id)")


@pydantic_dataclass(frozen=True)
class MarkOut(Mark):
    # the mark record as it is answered (a class of its own: the schema keeps the name MarkOut)
    pass


class ForwardOut(BaseModel):
    start: datetime
    price: int
    instruments: int


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


def _account(request: Request, api_key: Annotated[str | None, Depends(_api_key)]) -> str:
    if not api_key:
        raise HttpRefusal(401, "missing_api_key", "no X-API-Key header", "send your account's API key")
    account = service_of(request).account_for_key(api_key)
    if account is None:
        raise HttpRefusal(401, "bad_api_key", "unknown API key", "check the key, or ask for a new one")
    return account


Service = Annotated[ExchangeService, Depends(service_of)]
AccountId = Annotated[str, Depends(_account)]

_PRIVATE = error_responses(401)
_COMMAND = error_responses(400, 401, 404, 409, 503)


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


@router.get(
    "/book/{instrument}", response_model=BookOut, responses=error_responses(400), tags=["market data"]
)
async def get_book(
    service: Service,
    instrument: Annotated[str, Path(min_length=1, max_length=64, pattern=INSTRUMENT_PATTERN)],
    depth: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> BookOut:
    """Aggregated price levels, best first."""
    try:
        book = service.engine.book(instrument)
    except ExchangeError as exc:
        raise refusal(exc) from None
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
    latest = reversed(service.engine.trades)
    return [
        TradeOut(
            tid=t.tid,
            instrument=t.instrument,
            price=t.price,
            qty=t.qty,
            taker_side=t.taker_side.label,  # type: ignore[arg-type]
        )
        for t in _first(latest, lambda t: instrument is None or t.instrument == instrument, limit)
    ]


@router.get("/marks", response_model=list[MarkOut], tags=["market data"])
async def get_marks(service: Service) -> list[MarkOut]:
    """The mark price of every active instrument (EWMA of trades clamped to the quotes, else mid)."""
    return [MarkOut(**asdict(m)) for m in marks(service.engine).values()]


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
        assets=[AssetOut.of(a) for a in service.engine.assets_by_owner[account]],
    )


@router.post("/orders", response_model=OrderOut, status_code=201, responses=_COMMAND, tags=["orders"])
async def post_order(service: Service, account: AccountId, body: OrderIn) -> OrderOut:
    """Place a limit or market order; answered after it is journaled (and matched)."""
    placed = await service.command(
        lambda: service.engine.place(
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
        )
    )
    return _order_out(placed.order)


@router.get("/orders", response_model=list[OrderOut], responses=_PRIVATE, tags=["orders"])
async def get_orders(
    service: Service,
    account: AccountId,
    status: Literal["open", "filled", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[OrderOut]:
    """Your orders, newest first."""
    engine = service.engine
    latest = (engine.orders[oid] for oid in reversed(engine.orders_by_account[account]))
    return [_order_out(o) for o in _first(latest, lambda o: status is None or o.status == status, limit)]


@router.get("/orders/{oid}", response_model=OrderOut, responses=error_responses(401, 404), tags=["orders"])
async def get_order(service: Service, account: AccountId, oid: int) -> OrderOut:
    """One of your orders."""
    o = service.engine.orders.get(oid)
    if o is None or o.account != account:
        raise HttpRefusal(
            404,
            "unknown_order",
            f"no order {oid} of account {account!r}",
            "list your orders with GET /orders",
        )
    return _order_out(o)


@router.patch("/orders/{oid}", response_model=OrderOut, responses=_COMMAND, tags=["orders"])
async def patch_order(service: Service, account: AccountId, oid: int, body: AmendIn) -> OrderOut:
    """Amend price and/or open quantity (a price change or increase loses priority)."""
    placed = await service.command(lambda: service.engine.amend(account, oid, body.price, body.qty))
    return _order_out(placed.order)


@router.delete("/orders/{oid}", response_model=OrderOut, responses=_COMMAND, tags=["orders"])
async def delete_order(service: Service, account: AccountId, oid: int) -> OrderOut:
    """Cancel the open remainder of one of your orders."""
    return _order_out(await service.command(lambda: service.engine.cancel(account, oid)))


@router.get("/leases", response_model=list[LeaseOut], responses=_PRIVATE, tags=["account"])
async def get_leases(
    service: Service, account: AccountId, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[LeaseOut]:
    """Leases you rent or provide, newest first."""
    forwarded = service.forwarder.backend_ids
    latest = reversed(service.engine.leases)
    return [
        LeaseOut(
            **asdict(lease),
            forwarded=lease.lease_id in forwarded,
            sink_lease_id=forwarded.get(lease.lease_id),
        )
        for lease in _first(latest, lambda lease: account in (lease.renter, lease.provider), limit)
    ]


def _first(rows: Iterable[T], keep: Callable[[T], bool], limit: int) -> list[T]:
    """The first ``limit`` of ``rows`` that ``keep`` accepts, in order."""
    return list(islice(filter(keep, rows), limit))


async def _refusal_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HttpRefusal)
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
    app.add_exception_handler(HttpRefusal, _refusal_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(router, prefix=prefix)
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


__all__ = [
    "LISTED_DAYS",
    "ExchangeService",
    "close_started_loop",
    "create_app",
    "demo_service",
    "install",
    "router",
]
