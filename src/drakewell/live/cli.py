"""``drakewell site run``: the live site controller as a long-running service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from drakewell.core.cliopts import ZoneOpt
from drakewell.fleet.runner import run as run_loop

app = typer.Typer(help="Run a site: live signals in, fleet setpoints out, signed proof of response.")


@app.callback()
def _group() -> None:
    """Run a site: live signals in, fleet setpoints out, signed proof of response."""


@app.command("run")
def run(
    site: Annotated[Path, typer.Argument(help="Site TOML (its live table configures the controller).")],
    inventory: Annotated[
        Path | None, typer.Option(help="Fleet inventory TOML; without it the controller only decides.")
    ] = None,
    prices: Annotated[
        str, typer.Option(help="'gridstatus' (live ERCOT real-time prices) or 'replay:RT.csv'.")
    ] = "gridstatus",
    forecast: Annotated[Path | None, typer.Option(help="Day-ahead CSV for a replay.")] = None,
    speed: Annotated[
        float, typer.Option(help="Replay speed-up (96: a day in 15 minutes; 0: as fast as it decides).")
    ] = 96.0,
    journal: Annotated[Path, typer.Option(help="Append-only journal (resumed when it exists).")] = Path(
        "drakewell-live.jsonl"
    ),
    zone: ZoneOpt = None,
    start: Annotated[str | None, typer.Option(help="Replay from this UTC time (ISO-8601).")] = None,
    intervals: Annotated[int | None, typer.Option(help="Replay this many intervals.")] = None,
    hours: Annotated[float, typer.Option(help="Live horizon in hours (gridstatus).")] = 24.0,
    max_wall_s: Annotated[float | None, typer.Option(help="Stop after this many wall seconds.")] = None,
    summary_json: Annotated[Path | None, typer.Option("--json", help="Write the run summary here.")] = None,
) -> None:
    """Every interval and on every event: decide (the backtest's mpc step), command the fleet, verify
    by read-back, sign the measured energy; journal everything and resume from the journal."""
    # the service pulls in dispatch, metering, the fleet and pandas (about 5 s): not for --help
    from drakewell.live.service import RunOptions, run_site

    options = RunOptions(
        prices=prices,
        forecast=None if forecast is None else str(forecast),
        speed=speed,
        zone=zone,
        start=start,
        intervals=intervals,
        hours=hours,
        max_wall_s=max_wall_s,
    )
    summary = run_loop(run_site(site, journal, options, inventory_path=inventory))  # uvloop, as the fleet
    text = json.dumps(summary, indent=2)
    if summary_json is not None:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)
