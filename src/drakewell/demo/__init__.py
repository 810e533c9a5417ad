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

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from drakewell.core.cliopts import ForecastOpt, PricesOpt, SiteOpt, ZoneOpt
from drakewell.core.errors import DrakewellError
from drakewell.core.units import USD
from drakewell.demo.capacity import summary_rows
from drakewell.demo.market import DemoSummary, run_market
from drakewell.demo.steps import DemoLog, Step
from drakewell.dispatch import backtest_inputs, build_inputs
from drakewell.dispatch.backtest import resolve_site
from drakewell.dispatch.ledger import BacktestSummary
from drakewell.inputs.prices import load_ercot_prices
from drakewell.inputs.synthetic import HASHPRICE_MEAN_USD_PER_PH_DAY, synthetic_inputs
from drakewell.report import write_report
from drakewell.report.rundir import RunDir
from drakewell.report.summary import (
    Loan,
    MeteringCounts,
    Record,
    SettlementTotals,
    StepTime,
    ValuationSummary,
)

__all__ = ["DemoError", "DemoLog", "DemoSummary", "Step", "app", "month_inputs", "print_summary", "run_demo"]

app = typer.Typer()

DEMO_START = "2026-07-01"


class DemoError(DrakewellError):
    """The demo could not run (bad option or input file)."""


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
    prices: PricesOpt = None,
    forecast: ForecastOpt = None,
    zone: ZoneOpt = None,
    seed: Annotated[int, typer.Option(help="seed of the synthetic inputs and the fleet's noise")] = 7,
    site: SiteOpt = None,
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


Rows = list[tuple[str, str]]
Columns = tuple[tuple[str, str, int | None], ...]
T = TypeVar("T")


def print_summary(console: Console, summary: DemoSummary) -> None:
    """The demo's summary as a two-column table, then where its files are."""
    table = Table(title=f"Drakewell demo: {summary.site} — {summary.days} days", show_lines=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        *_rows_of(summary.dispatch, _dispatch_rows),
        *_rows_of(summary.metering, _metering_rows),
        *summary_rows(summary.capacity),
        *_rows_of(summary.settlement, _settlement_rows),
        *_rows_of(summary.valuation, _valuation_rows),
        *_rows_of(summary.credit, _credit_rows),
    ]
    for k, val in rows:
        table.add_row(k, val)
    console.print(table)
    files = summary.files or {}
    console.print(f"wrote {files.get('summary')}, {files.get('report')}")


def _rows_of(part: T | None, rows: Callable[[T], Rows]) -> Rows:
    return [] if part is None else rows(part)


def _usd(base: int, places: int = 2) -> str:
    """Stablecoin base units as dollars."""
    return f"${base / USD:,.{places}f}"


def _dispatch_rows(d: BacktestSummary) -> Rows:
    revenue, ren = d.revenue_usd, d.renewables_mwh
    rows = [
        ("dispatch policy", d.policy),
        ("site profit", f"${d.profit_usd:,.0f}"),
        ("AI revenue", f"${revenue.ai:,.0f}"),
        ("mining revenue", f"${revenue.mining:,.0f}"),
        ("reserves revenue", f"${revenue.reserves:,.0f}"),
        ("curtailment credits", f"${revenue.curtailment_credits:,.0f}"),
        ("flexibility capture", f"{d.flex_capture:.3f}" if d.flex_capture is not None else "n/a"),
    ]
    if ren.generation > 0:
        rows += [
            ("renewable generation", f"{ren.generation:,.0f} MWh"),
            ("  used on site", f"{ren.self_consumed:,.0f} MWh"),
            ("  exported", f"{ren.export:,.0f} MWh (${revenue.export:,.0f})"),
            ("  curtailed", f"{ren.curtailed:,.0f} MWh"),
        ]
    return rows


def _metering_rows(m: MeteringCounts) -> Rows:
    return [("signed readings accepted", f"{m.readings:,}"), ("epochs anchored", f"{m.epochs}")]


def _settlement_rows(s: SettlementTotals) -> Rows:
    return [
        ("leases", f"{s.leases}"),
        ("lease payments", _usd(s.payments_base)),
        ("distributed to holders", _usd(s.distributed_base)),
        ("claimed by investors", _usd(s.claimed_base)),
    ]


def _valuation_rows(v: ValuationSummary) -> Rows:
    return [("NAV per share", _usd(v.nav_per_share_base, 6)), ("annual yield", f"{v.annual_yield:.1%}")]


def _credit_rows(c: Loan) -> Rows:
    return [("loan", _usd(c.borrowed_base)), ("liquidated (repaid)", _usd(c.liquidation_repaid_base))]


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
) -> DemoSummary:
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

    summary = market.model_copy(
        update={
            "site": site_obj.name,
            "days": days,
            "inputs": "synthetic" if prices is None else str(prices),
            "dispatch": run.summary,
            "steps": [StepTime(name=s.name, seconds=round(s.seconds, 3)) for s in log.steps],
        }
    )
    run_dir = RunDir(out)
    ledger.to_csv(run_dir.ledger, index=False)

    log.run(
        "report",
        lambda: write_report(
            run_dir.report,
            ledger=ledger,
            summary=run.summary.to_json(),
            leases=_table_rows(market.leases, LEASE_COLUMNS),
            investors=_table_rows(market.investors, INVESTOR_COLUMNS),
            facts=_facts(summary),
            title=f"Drakewell: {site_obj.name}, {days} days",
        ),
    )
    summary = summary.model_copy(update={"files": run_dir.files()})
    run_dir.write_summary(summary.to_json())
    return summary


# the report's lease and investor tables: (heading, the row's field, divided by), so dollars, not
# base units; the investors' chart shows each holder's realised cash yield
LEASE_COLUMNS: Columns = (
    ("lease", "lease", None),
    ("renter", "renter", None),
    ("gpus", "gpus", None),
    ("price $/GPU-h", "price_usd_per_gpu_hour", None),
    ("contracted_gpu_hours", "contracted_gpu_hours", None),
    ("delivered_gpu_hours", "delivered_gpu_hours", None),
    ("deposit $", "deposit_base", USD),
    ("paid $", "paid_base", USD),
)
INVESTOR_COLUMNS: Columns = (
    ("investor", "investor", None),
    ("shares", "shares", None),
    ("value_usd", "value_usd", None),
    ("claimed $", "claimed_usd", None),
    ("yield", "cash_yield_annualised", None),
)


def _table_rows(rows: Sequence[Record] | None, columns: Columns) -> list[dict[str, object]]:
    """``rows`` as the report's table shows them: ``columns`` picked, renamed and scaled."""
    return [{heading: _cell(row, name, unit) for heading, name, unit in columns} for row in rows or []]


def _cell(row: Record, name: str, unit: int | None) -> object:
    value = getattr(row, name)
    return value if unit is None else value / unit


def _facts(summary: DemoSummary) -> dict[str, object]:
    facts: dict[str, object] = {"site": summary.site, "days": summary.days, "inputs": summary.inputs}
    if (s := summary.settlement) is not None:
        facts["lease payments (USD)"] = s.payments_base / USD
        facts["distributed to holders (USD)"] = s.distributed_base / USD
    if (v := summary.valuation) is not None:
        facts["NAV per share (USD)"] = v.nav_per_share_base / USD
    return facts
