"""``drakewell demo``: one month of the example hybrid site, end to end, on embedded defaults.

The flow (each step takes plain records from the one before):

1. **Tokenize.** A pool of the site's H100 servers ("West Texas H100 pool A", 2,048 GPUs) is issued
   as ComputeShare tokens on the embedded EVM and sold to allowlisted investors for TestUSD.
2. **Trade.** Buyers trade standardized GPU-time contracts on the exchange; each trade becomes a
   lease, escrowed on chain (the buyer's TestUSD moves into LeaseEscrow).
3. **Dispatch and meter.** The ``mpc`` dispatcher runs the month on synthetic calibrated prices (or
   ``--prices``/``--forecast`` files); the simulated fleet signs hourly EIP-712 readings for the
   pool's servers and the site's ASIC containers; readings are verified and stored; each day is an
   epoch whose readings and per-lease delivery trees are anchored in MeterRegistry.
4. **Settle.** After each epoch's challenge window, every lease is settled against its proven
   delivery (payment = GPU-seconds × price ÷ 3600, floored); the platform fee goes to the treasury,
   the rest is distributed to share holders, who claim it.
5. **Value and lend.** NAV per share comes from the verified trailing cash flow (a stated DCF,
   :mod:`drakewell.finance.valuation`) and is posted to the vault's oracle; an investor borrows against
   shares; a price shock makes the loan unhealthy and a liquidator repays part of it.

It prints a Rich summary and writes ``summary.json``, ``ledger.csv`` and ``report.html``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from drakewell.core.errors import DrakewellError
from drakewell.core.units import USD
from drakewell.demo.capacity import summary_rows
from drakewell.demo.market import run_market
from drakewell.dispatch import backtest_inputs, build_inputs
from drakewell.dispatch.backtest import resolve_site
from drakewell.inputs.prices import load_ercot_prices
from drakewell.inputs.synthetic import HASHPRICE_MEAN_USD_PER_PH_DAY, synthetic_inputs
from drakewell.report import write_report
from drakewell.report.rundir import RunDir

app = typer.Typer()

DEMO_START = "2026-07-01"


class DemoError(DrakewellError):
    """The demo could not run (bad option or input file)."""


@dataclass
class Step:
    name: str
    seconds: float
    detail: str


@dataclass
class DemoLog:
    """Timings of the demo's steps (for the summary and the console)."""

    steps: list[Step] = field(default_factory=list)
    echo: Callable[[str], None] = print

    def run(self, name: str, fn: Callable[[], Any], detail: Callable[[Any], str] | None = None) -> Any:
        t0 = time.perf_counter()
        out = fn()
        step = Step(name, time.perf_counter() - t0, detail(out) if detail else "")
        self.steps.append(step)
        self.echo(f"[{step.seconds:6.1f} s] {name}{': ' + step.detail if step.detail else ''}")
        return out


def month_inputs(
    days: int,
    *,
    prices: Path | None,
    forecast: Path | None,
    zone: str | None,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.Series | float]:
    """The month's real-time and day-ahead prices and hashprice: synthetic unless files are given."""

    if prices is None:
        syn = synthetic_inputs(DEMO_START, days, seed=seed)
        return syn.rt, syn.da, syn.hashprice

    rt = load_ercot_prices(prices)
    n = days * 96
    if len(rt) < n:
        raise DemoError(f"{prices} holds {len(rt)} intervals, fewer than {days} days", hint="pass --days")
    rt = rt.iloc[:n]
    da = load_ercot_prices(forecast) if forecast is not None else None
    if da is not None:
        da = da.loc[(da.index >= rt.index[0]) & (da.index <= rt.index[-1])]
    if zone is not None and zone not in rt.columns:
        raise DemoError(f"zone {zone!r} is not in {prices}", hint=f"use one of {', '.join(rt.columns)}")
    return rt, da, HASHPRICE_MEAN_USD_PER_PH_DAY


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="output folder for summary.json, ledger.csv, report.html")] = Path(
        "out"
    ),
    days: Annotated[int, typer.Option(min=2, max=92, help="days to run")] = 30,
    prices: Annotated[
        Path | None, typer.Option(help="ERCOT real-time price CSV (default: synthetic)")
    ] = None,
    forecast: Annotated[
        Path | None, typer.Option(help="ERCOT day-ahead price CSV used as the forecast")
    ] = None,
    zone: Annotated[str | None, typer.Option(help="load zone column (default: the site's)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the synthetic inputs and the fleet's noise")] = 7,
    site: Annotated[
        Path | None, typer.Option(help="site TOML (default: the example West Texas site)")
    ] = None,
) -> None:
    """Run one month of the example hybrid site end to end and write the report."""

    console = Console()
    result = run_demo(
        out,
        days=days,
        prices=prices,
        forecast=forecast,
        zone=zone,
        seed=seed,
        site=site,
        echo=lambda s: console.print(s, highlight=False),
    )
    print_summary(console, result)


def print_summary(console: Any, summary: dict[str, Any]) -> None:

    table = Table(title=f"Drakewell demo: {summary['site']} — {summary['days']} days", show_lines=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    d = summary["dispatch"]
    rows = [
        ("dispatch policy", d["policy"]),
        ("site profit", f"${d['profit_usd']:,.0f}"),
        ("AI revenue", f"${d['revenue_usd']['ai']:,.0f}"),
        ("mining revenue", f"${d['revenue_usd']['mining']:,.0f}"),
        ("reserves revenue", f"${d['revenue_usd']['reserves']:,.0f}"),
        ("curtailment credits", f"${d['revenue_usd']['curtailment_credits']:,.0f}"),
        ("flexibility capture", f"{d['flex_capture']:.3f}" if d.get("flex_capture") is not None else "n/a"),
    ]
    ren = d.get("renewables_mwh", {})
    if ren.get("generation", 0.0) > 0:
        rows += [
            ("renewable generation", f"{ren['generation']:,.0f} MWh"),
            ("  used on site", f"{ren['self_consumed']:,.0f} MWh"),
            ("  exported", f"{ren['export']:,.0f} MWh (${d['revenue_usd'].get('export', 0.0):,.0f})"),
            ("  curtailed", f"{ren['curtailed']:,.0f} MWh"),
        ]
    m = summary.get("metering", {})
    if m:
        rows += [
            ("signed readings accepted", f"{m['readings']:,}"),
            ("epochs anchored", f"{m['epochs']}"),
        ]

    rows += summary_rows(summary)
    s = summary.get("settlement", {})
    if s:
        rows += [
            ("leases", f"{s['leases']}"),
            ("lease payments", f"${s['payments_base'] / USD:,.2f}"),
            ("distributed to holders", f"${s['distributed_base'] / USD:,.2f}"),
            ("claimed by investors", f"${s['claimed_base'] / USD:,.2f}"),
        ]
    v = summary.get("valuation", {})
    if v:
        rows += [
            ("NAV per share", f"${v['nav_per_share_base'] / USD:,.6f}"),
            ("annual yield", f"{v['annual_yield']:.1%}"),
        ]
    c = summary.get("credit", {})
    if c:
        rows += [
            ("loan", f"${c['borrowed_base'] / USD:,.2f}"),
            ("liquidated (repaid)", f"${c['liquidation_repaid_base'] / USD:,.2f}"),
        ]
    for k, val in rows:
        table.add_row(k, str(val))
    console.print(table)
    console.print(f"wrote {summary['files']['summary']}, {summary['files']['report']}")


def run_demo(
    out: Path,
    *,
    days: int = 30,
    prices: Path | None = None,
    forecast: Path | None = None,
    zone: str | None = None,
    seed: int = 7,
    site: Path | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the whole demo and return its summary (also written to ``out/summary.json``)."""

    log = DemoLog(echo=echo)
    out.mkdir(parents=True, exist_ok=True)
    site_obj = resolve_site(site)
    rt, da, hashprice = log.run(
        "inputs",
        lambda: month_inputs(days, prices=prices, forecast=forecast, zone=zone, seed=seed),
        lambda r: (
            f"{len(r[0])} real-time intervals from {r[0].index[0]:%Y-%m-%d}"
            + (" (synthetic, calibrated)" if prices is None else f" ({prices.name})")
        ),
    )
    inputs = build_inputs(site_obj, rt, da, hashprice, zone)
    results = log.run(
        "dispatch (mpc, with perfect and always as references)",
        lambda: {r.policy: r for r in backtest_inputs(inputs, ["mpc"])},
        lambda r: (
            f"profit ${r['mpc'].summary.profit_usd:,.0f}, flex capture {r['mpc'].summary.flex_capture:.3f}"
        ),
    )
    run = results["mpc"]
    ledger: pd.DataFrame = run.ledger

    hp = float(hashprice.mean()) if isinstance(hashprice, pd.Series) else float(hashprice)
    market = run_market(site_obj, ledger, out=out, seed=seed, log=log, hashprice_usd_per_ph_day=hp)

    summary: dict[str, Any] = {
        "site": site_obj.name,
        "days": days,
        "inputs": "synthetic" if prices is None else str(prices),
        "dispatch": run.summary.to_json(),
        **market,
        "steps": [{"name": s.name, "seconds": round(s.seconds, 3)} for s in log.steps],
    }
    run_dir = RunDir(out)
    ledger.to_csv(run_dir.ledger, index=False)

    log.run(
        "report",
        lambda: write_report(
            run_dir.report,
            ledger=ledger,
            summary=run.summary.to_json(),
            leases=[_lease_view(row) for row in market.get("leases", [])],
            investors=[_investor_view(row) for row in market.get("investors", [])],
            facts=_facts(summary),
            title=f"Drakewell: {site_obj.name}, {days} days",
        ),
    )
    summary["files"] = run_dir.files()
    run_dir.write_summary(summary)
    return summary


def _lease_view(row: dict[str, Any]) -> dict[str, Any]:
    """A lease row for people: dollars, not base units."""
    return {
        "lease": row["lease"],
        "renter": row["renter"],
        "gpus": row["gpus"],
        "price $/GPU-h": row["price_usd_per_gpu_hour"],
        "contracted_gpu_hours": row["contracted_gpu_hours"],
        "delivered_gpu_hours": row["delivered_gpu_hours"],
        "deposit $": row["deposit_base"] / USD,
        "paid $": row["paid_base"] / USD,
    }


def _investor_view(row: dict[str, Any]) -> dict[str, Any]:
    """An investor row for people: the chart shows each holder's realised cash yield."""
    return {
        "investor": row["investor"],
        "shares": row["shares"],
        "value_usd": row["value_usd"],
        "claimed $": row["claimed_usd"],
        "yield": row["cash_yield_annualised"],
    }


def _facts(summary: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {"site": summary["site"], "days": summary["days"], "inputs": summary["inputs"]}
    s = summary.get("settlement", {})
    if s:
        facts["lease payments (USD)"] = s["payments_base"] / USD
        facts["distributed to holders (USD)"] = s["distributed_base"] / USD
    v = summary.get("valuation", {})
    if v:
        facts["NAV per share (USD)"] = v["nav_per_share_base"] / USD
    return facts
