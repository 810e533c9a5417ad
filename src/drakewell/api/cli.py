"""``drakewell serve``: the API and dashboard on one uvicorn server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="sqlite:///PATH (default: DATA_DIR/drakewell.sqlite) or postgresql://USER@HOST:PORT/DB"
        ),
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="folder for the default SQLite database")] = Path(
        "out/serve"
    ),
    run_dir: Annotated[
        Path | None,
        typer.Option(help="show a demo run (its summary.json and ledger.csv); default: out if present"),
    ] = None,
    chain_id: Annotated[
        int, typer.Option(help="EIP-712 chain id of the readings this server accepts")
    ] = 31337,
    meter_registry: Annotated[
        str, typer.Option(help="MeterRegistry address the readings are bound to")
    ] = "0x" + "00" * 20,
) -> None:
    """Serve the API (sites and backtests, exchange, assets, metering) and the dashboard."""
    import uvicorn
    from rich.console import Console

    from drakewell.api.app import AppState, create_app, load_run_dir
    from drakewell.exchange.api import demo_service
    from drakewell.exchange.journal import recover
    from drakewell.metering import MeterDomain, MeterStore

    console = Console()
    if database_url is None:
        data_dir.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{data_dir / 'drakewell.sqlite'}"
    engine, journal = recover(database_url)
    service, keys = demo_service(journal, engine)  # demo accounts only on a fresh database
    meter_store = MeterStore(database_url, MeterDomain(chain_id, meter_registry))
    default_run = Path("out")
    state = AppState()
    if run_dir is not None or (default_run / "summary.json").exists():
        run = run_dir or default_run
        state = load_run_dir(run)
        chain = state.summary.get("chain", {})
        if (run / "meter.sqlite").exists() and "meter_registry" in chain:
            # show the run's own epochs and proofs, bound to the chain it anchored them on
            domain = MeterDomain(int(chain["chain_id"]), str(chain["meter_registry"]))
            meter_store = MeterStore(f"sqlite:///{run / 'meter.sqlite'}", domain)
    api = create_app(state, exchange=service, meter_store=meter_store)
    console.print(
        f"[bold]Drakewell[/] on http://{host}:{port}/  (API docs at /docs), database {database_url}"
    )
    for name, key in keys.items():
        console.print(f"  demo account [cyan]{name}[/] API key: {key}")
    uvicorn.run(api, host=host, port=port, log_level="warning")
