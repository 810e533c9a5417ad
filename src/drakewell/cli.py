"""The ``drakewell`` command line: a thin Typer layer over the library.

Each package contributes a sub-app from its own ``cli`` module; heavy imports happen inside the
commands so ``drakewell --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="drakewell",
    help="Drakewell: dispatch, meter, tokenize, trade, route and reward compute.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# (module, attribute, sub-command name or None to merge its commands at top level)
_SUBAPPS: list[tuple[str, str, str | None]] = [
    ("drakewell.dispatch.cli", "app", None),  # backtest
    ("drakewell.sweep.cli", "app", None),  # sweep
    ("drakewell.inputs.cli", "app", "inputs"),
    ("drakewell.metering.cli", "app", "meter"),
    ("drakewell.exchange.cli", "app", "exchange"),
    ("drakewell.routing.cli", "app", "route"),
    ("drakewell.campaigns.cli", "app", "campaign"),
    ("drakewell.chain.cli", "app", "chain"),
    ("drakewell.fleet.cli", "app", "fleet"),
    ("drakewell.fleet.cli", "emulate_app", "emulate"),
    ("drakewell.api.cli", "app", None),  # serve
    ("drakewell.demo", "app", None),  # demo
    ("drakewell.proofs.cli", "app", "proofs"),
    ("drakewell.live.cli", "app", "site"),
]


def _register() -> None:
    for module_name, attr, name in _SUBAPPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # that part is not built in this installation
            raise
        sub = getattr(module, attr)
        if name is None:
            app.registered_commands.extend(sub.registered_commands)
            app.registered_groups.extend(sub.registered_groups)
        else:
            app.add_typer(sub, name=name)


@app.command()
def version() -> None:
    """Print the Drakewell version."""
    from drakewell import __version__

    typer.echo(__version__)


_register()


def main() -> None:
    from drakewell.errors import DrakewellError

    try:
        app()
    except DrakewellError as exc:
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
