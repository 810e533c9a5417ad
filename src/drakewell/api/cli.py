"""``drakewell serve``: the API and dashboard on one uvicorn server.

Keys: the meter operator key (``--operator-key`` or ``DRAKEWELL_OPERATOR_KEY``; a fresh one is
generated and printed when neither is given) closes epochs and ingests; ``--gateway-key NAME=KEY``
(repeat) lets a gateway ingest; ``--api-key NAME=KEY`` (repeat; a fresh one when none) runs
backtests. ``--live-url`` names the live controller whose state the dashboard's Live section shows
(read-only; loopback or an allowed host). The server answers only to ``--allowed-host`` names
(default: the loopback names), and it refuses a meter domain that binds readings to nothing (the
dev chain id 31337 with the zero registry address) unless ``--dev-domain`` is given.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from drakewell.api.app import AppState, check_live_url, create_app, load_run_dir
from drakewell.core.errors import ConfigError
from drakewell.core.httpguard import parse_named_keys
from drakewell.exchange.api import ExchangeService, demo_service
from drakewell.exchange.journal import recover
from drakewell.metering import MeterDomain, MeterStore
from drakewell.metering.access import MeterAccess
from drakewell.report.rundir import RunDir
from drakewell.store import sqlite_url

DEV_CHAIN_ID = 31337
ZERO_ADDRESS = "0x" + "00" * 20

app = typer.Typer()

# the options of `serve` whose help runs over a line
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB for the exchange and meter store "
        "(default: the run's own, else DATA_DIR/drakewell.sqlite)"
    ),
]
RunDirOption = Annotated[
    Path | None,
    typer.Option(
        help="show a demo run (summary.json, ledger.csv, and its exchange and meter databases); "
        "default: out if present"
    ),
]
OperatorKey = Annotated[
    str | None,
    typer.Option(
        envvar="DRAKEWELL_OPERATOR_KEY",
        help="meter operator key (close epochs, ingest); default: a fresh one, printed",
    ),
]
LiveUrl = Annotated[
    str | None,
    typer.Option(
        help="the live controller's state server (`drakewell site run`'s [live.metrics] address, "
        "e.g. http://127.0.0.1:9109; loopback or an --allowed-host): the dashboard's Live section"
    ),
]
DevDomain = Annotated[
    bool,
    typer.Option(
        "--dev-domain",
        help="accept readings on the dev chain id 31337 with the zero registry (bound to no contract)",
    ),
]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    database_url: DatabaseUrl = None,
    data_dir: Annotated[Path, typer.Option(help="folder for the default SQLite database")] = Path(
        "out/serve"
    ),
    run_dir: RunDirOption = None,
    chain_id: Annotated[
        int, typer.Option(help="EIP-712 chain id of the readings this server accepts")
    ] = 31337,
    meter_registry: Annotated[
        str, typer.Option(help="MeterRegistry address the readings are bound to")
    ] = ZERO_ADDRESS,
    operator_key: OperatorKey = None,
    gateway_key: Annotated[
        list[str] | None,
        typer.Option(help="NAME=KEY of a gateway that may ingest readings of any node (repeat)"),
    ] = None,
    api_key: Annotated[
        list[str] | None, typer.Option(help="NAME=KEY that may run backtests (repeat); default: a fresh one")
    ] = None,
    allowed_host: Annotated[
        list[str] | None, typer.Option(help="host name the server answers to (repeat); default: loopback")
    ] = None,
    live_url: LiveUrl = None,
    dev_domain: DevDomain = False,
) -> None:
    """Serve the API (sites and backtests, exchange, assets, metering) and the dashboard."""
    import uvicorn

    if live_url is not None:
        check_live_url(live_url, allowed_host or [])  # a bad address fails before anything opens
    service, keys, meter_store, state, where = open_services(
        database_url, data_dir, run_dir, chain_id, meter_registry
    )
    check_meter_domain(meter_store.domain, allow_dev=dev_domain)
    operator = operator_key or secrets.token_urlsafe(32)
    gateways = {name: (key, None) for name, key in parse_named_keys(gateway_key or []).items()}
    api_keys = parse_named_keys(api_key or []) or {"api": secrets.token_urlsafe(32)}
    api = create_app(
        state,
        exchange=service,
        meter_store=meter_store,
        meter_access=MeterAccess.of(operator, gateways),
        api_keys=api_keys,
        allowed_hosts=allowed_host or None,
        live_url=live_url,
    )
    announce(
        Console(),
        f"http://{host}:{port}/",
        where,
        demo_keys=keys,
        operator_key=operator if operator_key is None else None,
        api_key=None if api_key else api_keys["api"],
    )
    uvicorn.run(api, host=host, port=port, log_level="warning")


def announce(
    console: Console,
    url: str,
    where: str,
    *,
    demo_keys: dict[str, str],
    operator_key: str | None,
    api_key: str | None,
) -> None:
    """Print where the server answers and the keys made for this start (``None``: given, not printed)."""
    console.print(f"[bold]Drakewell[/] on {url}  (API docs at /docs), {where}")
    for name, key in demo_keys.items():
        console.print(f"  demo account [cyan]{name}[/] API key: {key}")
    if operator_key is not None:
        console.print(f"  meter operator key (Authorization: Bearer): {operator_key}")
    if api_key is not None:
        console.print(f"  API key for POST /api/backtests (Authorization: Bearer): {api_key}")


def check_meter_domain(domain: MeterDomain, *, allow_dev: bool) -> None:
    """Refuse the dev meter domain (chain id 31337 and the zero registry) unless ``allow_dev``.

    Readings signed for it are bound to no deployed contract: any other dev server, test or
    deployment with the same defaults accepts them too."""
    if allow_dev:
        return
    if domain.chain_id == DEV_CHAIN_ID and domain.verifying_contract.lower() == ZERO_ADDRESS:
        raise ConfigError(
            "the meter domain is the dev default (chain id 31337, MeterRegistry 0x000…000): readings "
            "signed for it are bound to no contract and replay on any other dev server",
            hint="pass --chain-id and --meter-registry of your deployment, serve a demo run "
            "(--run-dir), or --dev-domain to accept the dev domain knowingly",
        )


DEFAULT_RUN_DIR = Path("out")


def open_services(
    database_url: str | None,
    data_dir: Path,
    run_dir: Path | None,
    chain_id: int = 31337,
    meter_registry: str = "0x" + "00" * 20,
) -> tuple[ExchangeService, dict[str, str], MeterStore, AppState, str]:
    """The exchange service, fresh demo API keys, the meter store, the app state, and where they live.

    A run folder (``run_dir``, or ``out`` when it holds a demo run) gives the dashboard its dispatch
    and assets. Without ``database_url`` the run's own exchange journal and meter store are opened
    too, so its trades, epochs and proofs show (bound to the chain it anchored them on); with
    ``database_url`` that database holds both.
    """

    run = RunDir(run_dir if run_dir is not None else DEFAULT_RUN_DIR)
    state = AppState()
    if run_dir is not None or run.exists():
        state = load_run_dir(run.root)
    chain = state.summary.chain
    own = database_url is None and bool(state.summary.model_fields_set)
    if database_url is None:
        data_dir.mkdir(parents=True, exist_ok=True)
        database_url = sqlite_url(data_dir / "drakewell.sqlite")
    exchange_url = meter_url = database_url
    domain = MeterDomain(chain_id, meter_registry)
    if own and run.exchange_db.exists():
        exchange_url = sqlite_url(run.exchange_db)
    if own and run.meter_db.exists() and chain is not None:
        meter_url = sqlite_url(run.meter_db)
        domain = MeterDomain(chain.chain_id, chain.meter_registry)
    engine, journal = recover(exchange_url)
    service, keys = demo_service(journal, engine)  # demo accounts only where there are none yet
    meter_store = MeterStore(meter_url, domain)
    where = (
        f"database {database_url}"
        if exchange_url == meter_url == database_url
        else f"exchange {exchange_url}, meter {meter_url}"
    )
    return service, keys, meter_store, state, where
