"""``drakewell backtest``: run dispatch policies over a price history, print and write the results.

A thin layer over :mod:`drakewell.dispatch.backtest`. Without ``--prices`` it backtests the seeded,
calibrated synthetic July–September series, so the command works on a fresh checkout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from drakewell.core.cliopts import ForecastOpt, PricesOpt, SiteOpt, ZoneOpt
from drakewell.core.errors import ConfigError
from drakewell.core.jsontypes import JsonMapping, JsonObject
from drakewell.core.tables import compact_table
from drakewell.dispatch.backtest import (
    BacktestResult,
    backtest_inputs,
    describe_fallbacks,
    load_backtest_inputs,
    write_ledger_csv,
)
from drakewell.dispatch.policies import get_policy, policy_names
from drakewell.dispatch.types import DispatchInputs

app = typer.Typer(help="Dispatch backtests.", no_args_is_help=True)


@app.command()
def backtest(
    site: SiteOpt = None,
    prices: PricesOpt = None,
    forecast: ForecastOpt = None,
    zone: ZoneOpt = None,
    hashprice: Annotated[
        str | None,
        typer.Option(
            help="USD per PH/s per day, or a daily CSV (default: synthetic; with --prices, from BTC prices)"
        ),
    ] = None,
    policy: Annotated[str, typer.Option(help=" | ".join([*policy_names(), "all"]))] = "all",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the summary JSON here ('-': stdout)")
    ] = None,
    ledger: Annotated[Path | None, typer.Option(help="write the per-interval ledger CSV here")] = None,
    seed: Annotated[int, typer.Option(help="seed of the synthetic inputs")] = 0,
    wide: Annotated[
        bool, typer.Option("--wide", help="every revenue line in its own column (needs ~110 columns)")
    ] = False,
) -> None:
    """Backtest dispatch policies; --policy all prints a comparison table."""

    console = Console(stderr=json_out is not None and str(json_out) == "-")
    names = policy_names() if policy == "all" else [policy]
    for name in names:
        get_policy(name)
    if ledger is not None and len(names) > 1:
        raise ConfigError(
            "--ledger writes one policy's ledger", hint="pick one --policy, or write ledgers per policy"
        )
    inputs = load_backtest_inputs(
        site, prices=prices, forecast=forecast, zone=zone, hashprice=hashprice, seed=seed
    )
    results = _run_with_progress(console, inputs, names)
    summaries = [r.summary.to_json() for r in results]
    if len(results) > 1:
        console.print(
            render_table(
                summaries, title=f"{inputs.site.name}, {inputs.zone}, {inputs.n:,} intervals", wide=wide
            )
        )
    else:
        console.print_json(json.dumps(summaries[0]))
    for r in results:
        note = describe_fallbacks(r.summary)
        if note is not None:
            console.print(f"[yellow]warning:[/] {note}", highlight=False)
    if json_out is not None:
        payload: list[JsonObject] | JsonObject = summaries if policy == "all" else summaries[0]
        text = json.dumps(payload, indent=2)
        if str(json_out) == "-":
            print(text)
        else:
            json_out.write_text(text + "\n", encoding="utf-8")
    if ledger is not None:
        write_ledger_csv(results[0].ledger, ledger)


def _run_with_progress(console: Console, inputs: DispatchInputs, names: list[str]) -> list[BacktestResult]:

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("dispatch", total=inputs.n)

        def on_policy(name: str) -> None:
            bar.update(task, description=f"policy {name}", completed=0)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return backtest_inputs(inputs, names, progress=progress, on_policy=on_policy)


def _figure(summary: JsonMapping, *path: str) -> float | None:
    """A number in a summary's JSON by its key path (``"revenue_usd", "ai"``); ``None`` stays None."""
    value: object = summary
    for key in path:
        assert isinstance(value, Mapping), f"{'.'.join(path)}: not a JSON object on the way"
        value = value[key]
    assert value is None or isinstance(value, int | float), f"{'.'.join(path)} = {value!r} is not a number"
    return value


def _usd(summary: JsonMapping, *path: str) -> float:
    value = _figure(summary, *path)
    assert value is not None, f"{'.'.join(path)} is missing"
    return value


def render_table(
    summaries: Sequence[JsonMapping], *, title: str = "dispatch backtest", wide: bool = False
) -> Table:
    """A Rich table of backtest summaries (the ``--json`` objects, one row per policy), money in USD
    millions.

    The default fits 80 columns: reserves and curtailment credits share the ``grid`` column, money
    has two decimals. ``wide`` gives each revenue line its own column and three decimals.
    """

    def fmt(value: float | None, spec: str) -> str:
        return "—" if value is None else format(value, spec)

    if wide:
        table = compact_table(title=f"{title} (USD M)")
        columns = ["profit", "AI", "mining", "reserves", "credits", "energy", "ratio to perfect"]
        columns += ["flex capture", "solve s"]
        money = ".3f"
    else:
        table = compact_table(
            title=f"{title} (USD M)",
            caption="grid = reserves + curtailment credits; ratio = profit ÷ perfect's profit; "
            "flex = share of the flexibility value captured; --wide for every line",
        )
        columns = ["profit", "AI", "mining", "grid", "energy", "ratio", "flex", "solve s"]
        money = ".2f"
    table.add_column("policy", min_width=max((len(str(s["policy"])) for s in summaries), default=6))
    for column in columns:
        table.add_column(column, justify="right")
    for s in summaries:
        reserves, credits = _usd(s, "revenue_usd", "reserves"), _usd(s, "revenue_usd", "curtailment_credits")
        money_usd = [_usd(s, "profit_usd"), _usd(s, "revenue_usd", "ai"), _usd(s, "revenue_usd", "mining")]
        money_usd += [reserves, credits] if wide else [reserves + credits]
        money_usd += [_usd(s, "energy_cost_usd")]
        table.add_row(
            str(s["policy"]),
            *(f"{v / 1e6:,{money}}" for v in money_usd),
            fmt(_figure(s, "ratio_to_perfect"), ".4f" if wide else ".3f"),
            fmt(_figure(s, "flex_capture"), ".3f"),
            f"{_usd(s, 'solve_seconds'):.1f}",
        )
    return table
