"""Command-line options that several commands share, each written once: its flag, type and help.

A command takes one as the annotation of its parameter and gives the default after ``=``
(``site: SiteOpt = None``), so ``--site`` reads the same in ``backtest`` and in ``demo``. An option
that only one command has stays with that command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# the inputs of a dispatch run: the site and the price files
SiteOpt = Annotated[Path | None, typer.Option(help="site TOML (default: the example West Texas site)")]
PricesOpt = Annotated[
    Path | None,
    typer.Option(help="ERCOT real-time price CSV (default: calibrated synthetic prices from 1 July)"),
]
ForecastOpt = Annotated[Path | None, typer.Option(help="ERCOT day-ahead price CSV used as the forecast")]
ZoneOpt = Annotated[str | None, typer.Option(help="ERCOT price zone, e.g. LZ_WEST (default: the site's)")]

# the meter store and its epochs
MeterDbOpt = Annotated[str, typer.Option("--db", help="Meter store: database URL or SQLite file path.")]
EpochSecondsOpt = Annotated[int, typer.Option("--epoch-seconds", help="Epoch length in seconds.")]

# services that run for a while
DurationOpt = Annotated[float, typer.Option(help="Stop after this many seconds.")]
