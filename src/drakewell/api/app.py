"""One FastAPI app for the whole product (``drakewell serve``) and the dashboard page.

Routes:

- ``/`` — the dashboard (static HTML + JS; plotly.js is served from the installed plotly package,
  so the page works without internet).
- ``/api/sites``, ``/api/site`` (power split and prices of the loaded run), ``POST /api/backtests``
  (a backtest of the example site on synthetic inputs; needs an API key), ``/api/assets``
  (tokenized assets, NAV, yields, holders), ``/api/summary``.
- ``/api/live`` — the live site controller's state (fleet, setpoint vs measured MW per class, recent
  decisions, events), fetched read-only from its ``/state.json`` (``live_url``: ``drakewell serve
  --live-url``, a loopback or allowed host); ``503`` with a hint when none is configured or it does
  not answer. The dashboard's Live section polls it.
- ``/exchange/...`` — the exchange's REST API (``X-API-Key`` per account).
- ``/meter/...`` — metering epochs, roots, proofs and KPIs, and the proofs of capacity (each
  epoch's capacity root, verified beside declared KPIs, flagged nodes: ``GET /meter/capacity``);
  ingest and close need a meter key (:mod:`drakewell.metering.api`).

Who may call the writes: ``POST /api/backtests`` any key of ``api_keys`` (it replaces the run the
dashboard shows and costs a solver run; none configured: ``503``); the exchange and meter routes
as their modules say. Every request passes a body cap (1 MiB; 64 MiB for ``POST
/meter/readings``, ``413`` beyond) and a trusted-host check (``Host`` must be one of
``allowed_hosts``, by default the loopback names); an unexpected error answers ``500`` with a
fixed message and is logged, so no database error reaches a client
(:mod:`drakewell.core.httpguard`).

State is explicit: :class:`AppState` holds the run being shown (a dispatch ledger and summary,
the asset list) plus the exchange service and the meter store. :func:`load_run_dir` reads what
``drakewell demo`` wrote (``summary.json`` and ``ledger.csv``). The JSON answers are records
(:mod:`drakewell.report.summary`, the dispatch's :class:`~drakewell.dispatch.ledger.BacktestSummary`
and :class:`SiteView` here), named as each route's ``response_model`` so ``/openapi.json`` documents
them.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import httpx
import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, JsonValue, ValidationError
from starlette.middleware.trustedhost import TrustedHostMiddleware

from drakewell import __version__
from drakewell.core.errors import ConfigError, DrakewellError
from drakewell.core.httpguard import (
    DEFAULT_MAX_BODY_BYTES,
    LOOPBACK_HOSTS,
    METER_MAX_BODY_BYTES,
    BodyLimit,
    KeyRing,
    key_holder,
)
from drakewell.dispatch import backtest_inputs, build_inputs
from drakewell.dispatch.backtest import resolve_site
from drakewell.dispatch.ledger import BacktestSummary
from drakewell.exchange.api import ExchangeService, demo_service
from drakewell.exchange.api import install as install_exchange
from drakewell.inputs.synthetic import synthetic_inputs
from drakewell.metering.access import MeterAccess
from drakewell.metering.api import router as meter_router
from drakewell.metering.ingest import MeterStore
from drakewell.report.rundir import RunDir
from drakewell.report.summary import AssetRow, Record, RunSummary

STATIC_DIR = Path(__file__).parent / "static"
log = logging.getLogger("drakewell.api")

ShownSummary = RunSummary[BacktestSummary]
"""The summary of the run shown: a demo's ``summary.json``, or only a posted backtest's dispatch."""
SiteSeries = dict[str, list[str] | list[float | None]]
"""Hourly series by column: ``t`` (ISO-8601 UTC hours), then each power and price column."""


@dataclass
class AppState:
    """What the app serves; every part is optional. ``POST /api/backtests`` replaces the shown run
    while other threads read it, so the ledger, the site name and the summary change together under
    ``lock`` (:meth:`show_run`) and are read together (:meth:`shown`)."""

    ledger: pd.DataFrame | None = None
    summary: ShownSummary = field(default_factory=ShownSummary)
    assets: list[AssetRow] = field(default_factory=list)
    site_name: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def show_run(self, ledger: pd.DataFrame, site_name: str, dispatch: BacktestSummary) -> None:
        with self.lock:
            self.ledger, self.site_name = ledger, site_name
            self.summary = self.summary.model_copy(update={"dispatch": dispatch})

    def shown(self) -> tuple[pd.DataFrame | None, str, ShownSummary]:
        """The ledger, site name and summary of the run shown now, as one consistent view."""
        with self.lock:
            return self.ledger, self.site_name, self.summary


class BacktestIn(BaseModel):
    policy: str = Field(default="threshold", pattern="^(perfect|mpc|threshold|always)$")
    days: int = Field(default=7, ge=1, le=31)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class SiteInfo(Record):
    """A site the API knows: its price zone, grid connection, GPUs and mining capacity."""

    name: str
    zone: str
    grid_connection_mw: float
    gpus: int
    mining_capacity_mw: float


class SiteView(Record):
    """The shown run: its site, hourly power split and price, and its dispatch summary (``{}`` when
    the run has none)."""

    site: str
    series: SiteSeries
    summary: BacktestSummary | dict[str, JsonValue]


def load_run_dir(run_dir: str | Path) -> AppState:
    """Read a demo's output folder (``summary.json``, ``ledger.csv``) into an :class:`AppState`."""
    run = RunDir(Path(run_dir))
    try:
        summary = ShownSummary.model_validate(run.read_summary())
    except ValidationError as exc:
        raise DrakewellError(f"{run.summary} is not a run summary: {exc}", hint="re-run the demo") from None
    ledger = run.read_ledger()
    return AppState(
        ledger=ledger,
        summary=summary,
        assets=list(summary.assets or []),
        site_name=summary.site or "",
    )


def site_series(ledger: pd.DataFrame, *, resample: str = "1h") -> SiteSeries:
    """Hourly power split and price from a dispatch ledger, as JSON-ready lists."""
    frame = ledger.set_index(pd.DatetimeIndex(pd.to_datetime(ledger["interval_start_utc"], utc=True)))
    cols = [
        "ai_inference_mw",
        "ai_training_mw",
        "ai_spot_mw",
        "mining_mw",
        "curtailed_mw",
        "price_usd_per_mwh",
    ]
    agg = frame[[c for c in cols if c in frame.columns]].resample(resample).mean().round(3)
    out: SiteSeries = {"t": [ts.isoformat() for ts in agg.index]}
    for col in agg.columns:
        out[col] = [None if pd.isna(v) else float(v) for v in agg[col]]
    return out


LIVE_TIMEOUT_S = 2.0
LIVE_MAX_BYTES = 2 * 1024 * 1024


def check_live_url(url: str, allowed_hosts: Sequence[str] = ()) -> str:
    """The live controller's base URL (``http(s)://HOST:PORT``), its host a loopback address or name or
    one of ``allowed_hosts``; returned without a trailing slash. Anything else is a ConfigError."""

    hint = "pass the controller's [live.metrics] address, e.g. --live-url http://127.0.0.1:9109"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"live URL {url!r} is not a URL: {exc}", hint=hint) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"live URL {url!r} must be http:// or https:// with a host", hint=hint)
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ConfigError(f"live URL {url!r} must not carry credentials, a query or a fragment", hint=hint)
    if parts.path not in ("", "/"):
        raise ConfigError(
            f"live URL {url!r} must be the controller's base address (it serves /state.json)", hint=hint
        )
    host = parts.hostname.lower()
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    allowed = {h.lower().strip("[]") for h in allowed_hosts}
    if not loopback and host not in allowed:
        raise ConfigError(
            f"live URL host {host!r} is neither loopback nor an allowed host",
            hint="serve the controller state on loopback, or name its host with --allowed-host",
        )
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}" + (f":{port}" if port is not None else "")


def fetch_live_state(base_url: str | None, *, timeout_s: float = LIVE_TIMEOUT_S) -> dict[str, JsonValue]:
    """GET ``base_url``/state.json (no redirects, ``timeout_s``); an HTTPException (503, 502) when
    no controller is configured, it does not answer, or its answer is not a state object."""

    if base_url is None:
        raise HTTPException(
            503,
            "no live controller configured: start `drakewell serve --live-url http://127.0.0.1:PORT` "
            "with the [live.metrics] port of `drakewell site run`",
        )
    try:
        with (
            httpx.Client(timeout=timeout_s, follow_redirects=False) as client,
            client.stream("GET", f"{base_url}/state.json") as answer,
        ):
            body = b""
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) > LIVE_MAX_BYTES:
                    raise HTTPException(502, f"the live controller at {base_url} answered too much")
            status = answer.status_code
    except httpx.HTTPError as exc:
        raise HTTPException(
            503,
            f"the live controller at {base_url} is unreachable ({type(exc).__name__}): "
            "is `drakewell site run` running with [live.metrics] on that port?",
        ) from None
    if status != 200:
        raise HTTPException(502, f"the live controller at {base_url} answered {status} for /state.json")
    try:
        state = json.loads(body)
    except ValueError:
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("decisions"), list):
        raise HTTPException(502, f"the live controller at {base_url} sent no state object")
    return {"controller": base_url, **state}


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    """An unexpected error: logged with its cause, answered with a fixed message (no SQL, no paths)."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error; the server log has the details"}, status_code=500)


def api_key_holder(request: Request) -> str:
    """The name of the API key presented (``POST /api/backtests`` needs one)."""
    ring: KeyRing = request.app.state.api_keys
    if not ring:
        raise HTTPException(503, "this server has no API keys configured (serve --api-key), so no backtests")
    return key_holder(
        request.headers, ring.name_of, "an API key is required: send 'Authorization: Bearer KEY'"
    )


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.drakewell
    return state


StateDep = Annotated[AppState, Depends(_state)]
router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    return HTMLResponse((STATIC_DIR / "index.html").read_text(encoding="utf-8"))


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> FileResponse:
    if name == "plotly.min.js":
        import plotly  # about 2 s to import: only when the dashboard asks for plotly.js

        return FileResponse(Path(plotly.__file__).parent / "package_data" / "plotly.min.js")
    path = (STATIC_DIR / name).resolve()
    if path.parent != STATIC_DIR.resolve() or not path.is_file():
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(path)


@router.get("/api/health", tags=["meta"])
def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/api/summary", tags=["sites"], response_model_exclude_unset=True)
def summary(st: StateDep) -> ShownSummary:
    """The shown run's summary: only the entries it has."""
    return st.shown()[2]


@router.get("/api/sites", tags=["sites"])
def sites() -> list[SiteInfo]:
    site = resolve_site(None)
    return [
        SiteInfo(
            name=site.name,
            zone=site.zone,
            grid_connection_mw=site.grid_connection_mw,
            gpus=site.gpu_count,
            mining_capacity_mw=site.mining_capacity_mw,
        )
    ]


@router.get("/api/site", tags=["sites"])
def site(st: StateDep) -> SiteView:
    ledger, name, shown = st.shown()
    if ledger is None:
        raise HTTPException(404, "no dispatch run loaded: POST /api/backtests or serve --run-dir DIR")
    dispatch = shown.dispatch
    return SiteView(site=name, series=site_series(ledger), summary=dispatch if dispatch is not None else {})


@router.post("/api/backtests", tags=["sites"], dependencies=[Depends(api_key_holder)])
def backtest(body: BacktestIn, st: StateDep) -> BacktestSummary:
    """Backtest the example site on ``days`` of seeded synthetic prices and show it (API key)."""
    site_obj = resolve_site(None)
    syn = synthetic_inputs("2026-07-01", body.days, seed=body.seed)
    inputs = build_inputs(site_obj, syn.rt, syn.da, syn.hashprice)
    result = next(r for r in backtest_inputs(inputs, [body.policy]) if r.policy == body.policy)
    st.show_run(result.ledger, site_obj.name, result.summary)
    return result.summary


@router.get("/api/live", tags=["sites"])
def live(request: Request) -> dict[str, JsonValue]:
    """The live controller's state, read-only (``serve --live-url``; 503 when none answers)."""
    return fetch_live_state(request.app.state.live_base)


@router.get("/api/assets", tags=["assets"])
def assets(st: StateDep) -> list[AssetRow]:
    return list(st.assets)


def create_app(
    state: AppState | None = None,
    *,
    exchange: ExchangeService | None = None,
    meter_store: MeterStore | None = None,
    meter_access: MeterAccess | None = None,
    api_keys: Mapping[str, str] | None = None,
    allowed_hosts: Sequence[str] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    live_url: str | None = None,
) -> FastAPI:
    """Compose the app. ``exchange`` is an ``ExchangeService``; ``meter_store`` a ``MeterStore``;
    ``meter_access`` its :class:`~drakewell.metering.access.MeterAccess` (none: no meter writes);
    ``api_keys`` name -> key for ``POST /api/backtests``; ``allowed_hosts`` the names the server
    answers to (default: the loopback names); ``live_url`` the live controller's state server
    (:func:`check_live_url`; none: ``/api/live`` answers 503)."""

    app = FastAPI(
        title="Drakewell",
        version=__version__,
        description="Dispatch, metering, tokenized compute, the GPU-time exchange and the dashboard.",
    )
    app.state.drakewell = state or AppState()
    app.state.api_keys = KeyRing(dict(api_keys or {}))
    app.add_middleware(
        BodyLimit, max_body_bytes=max_body_bytes, path_caps={"/meter/readings": METER_MAX_BODY_BYTES}
    )
    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    # the controller's host: loopback, or a name the operator allowed explicitly
    live_base = None if live_url is None else check_live_url(live_url, list(allowed_hosts or ()))
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    app.add_exception_handler(Exception, _internal_error)

    if exchange is None:
        exchange, _keys = demo_service()

    install_exchange(app, exchange, prefix="/exchange")

    app.state.meter_store = meter_store
    app.state.meter_access = meter_access
    app.include_router(meter_router)

    app.state.live_base = live_base
    app.include_router(router)
    return app
