"""The ``drakewell`` command line: a thin Typer layer over the library.

Each package contributes its commands from its own ``cli`` module. The top level loads a package's
module only when one of its commands runs (``drakewell --help`` lists the commands from the table
below without importing them), so a command pays the start-up cost of its own package only.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
import typer.main
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from drakewell import __version__
from drakewell.core.errors import DrakewellError

if TYPE_CHECKING:  # Typer carries its own click; these are its types
    from typer._click import Command, Context, HelpFormatter


@dataclass(frozen=True)
class _Entry:
    """A top-level command (or group) that lives in ``module.attr``; ``merged``: one command of
    that Typer app, else the whole app as a group."""

    module: str
    attr: str
    merged: bool
    help: str


_COMMANDS: dict[str, _Entry] = {
    "backtest": _Entry(
        "drakewell.dispatch.cli",
        "app",
        True,
        "Backtest dispatch policies; --policy all prints a comparison table.",
    ),
    "sweep": _Entry(
        "drakewell.sweep.cli",
        "app",
        True,
        "Backtest every cell of SPEC on Ray; a rerun skips the cells already in DIR/results.parquet.",
    ),
    "inputs": _Entry(
        "drakewell.inputs.cli",
        "app",
        False,
        "Check site and price files; mining breakeven; synthetic and derived input series.",
    ),
    "meter": _Entry(
        "drakewell.metering.cli",
        "app",
        False,
        "Verifiable metering: signed readings, epoch Merkle roots, proofs.",
    ),
    "exchange": _Entry(
        "drakewell.exchange.cli", "app", False, "The GPU-time exchange: order books, leases, marks."
    ),
    "route": _Entry(
        "drakewell.routing.cli",
        "app",
        False,
        "Edge inference routing: simulate policies and run the gateway.",
    ),
    "campaign": _Entry(
        "drakewell.campaigns.cli",
        "app",
        False,
        "Incentive campaigns: exact pools, verifiable draws, claimable on chain.",
    ),
    "chain": _Entry(
        "drakewell.chain.cli", "app", False, "Tokenized compute contracts: deploy a market, export ABIs."
    ),
    "fleet": _Entry(
        "drakewell.fleet.cli", "app", False, "Fleet control: scan, read and command miners and GPUs."
    ),
    "emulate": _Entry(
        "drakewell.fleet.cli",
        "emulate_app",
        False,
        "Emulated devices on loopback, for trying Drakewell without hardware.",
    ),
    "serve": _Entry(
        "drakewell.api.cli",
        "app",
        True,
        "Serve the API (sites and backtests, exchange, assets, metering) and the dashboard.",
    ),
    "demo": _Entry(
        "drakewell.demo",
        "app",
        True,
        "Run one month of the example hybrid site end to end and write the report.",
    ),
    "proofs": _Entry(
        "drakewell.proofs.cli", "app", False, "Proofs of capacity: GPU challenges and verified mining shares."
    ),
    "site": _Entry(
        "drakewell.live.cli",
        "app",
        False,
        "Run a site: live signals in, fleet setpoints out, signed proof of response.",
    ),
}


def load_command(name: str) -> Command | None:
    """The click command behind a top-level name, importing its package's CLI (None if that part
    is not built in this installation)."""
    entry = _COMMANDS[name]
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        if exc.name == entry.module:
            return None
        raise
    typer_app = getattr(module, entry.attr)
    if not entry.merged:  # a group even when the app has one command (drakewell emulate miners)
        group = typer.main.get_group(typer_app)
        group.name = name
        return group
    sub = typer.main.get_command(typer_app)
    if isinstance(sub, TyperGroup):  # a Typer app of several commands: take this one
        return sub.get_command(typer.Context(sub), name)
    return sub


class _LazyGroup(TyperGroup):
    """Lists the table's commands from their stored help; imports one only to run it (or show its
    own help)."""

    _listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in _COMMANDS:
            return super().get_command(ctx, cmd_name)
        if self._listing:  # the top-level help only needs the name and the one-line help
            return TyperCommand(cmd_name, help=_COMMANDS[cmd_name].help)
        return load_command(cmd_name)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="drakewell",
    cls=_LazyGroup,
    help="Drakewell: dispatch, meter, tokenize, trade, route and reward compute.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _top() -> None:
    """Drakewell: dispatch, meter, tokenize, trade, route and reward compute."""


@app.command()
def version() -> None:
    """Print the Drakewell version."""
    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except DrakewellError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()


__all__ = ["app", "load_command", "main"]
