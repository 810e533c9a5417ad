"""``drakewell inputs …``: check sites and price files, mining breakeven, synthetic and derived series.

A thin layer over :mod:`drakewell.site` and :mod:`drakewell.inputs`; errors are the library's own
(:class:`~drakewell.core.errors.DrakewellError`), which the top-level CLI prints with their hint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from drakewell.catalog import load_catalog
from drakewell.inputs.bitcoin import (
    breakeven_usd_per_mwh,
    derive_daily_hashprice,
    load_btc_prices,
    write_hashprice_csv,
)
from drakewell.inputs.grid import PROXY_RULE, proxy_4cp_intervals, write_4cp_intervals
from drakewell.inputs.prices import load_ercot_prices, write_ercot_prices
from drakewell.inputs.synthetic import synthetic_inputs
from drakewell.site import load_site

app = typer.Typer(
    name="inputs",
    help="Check site and price files; mining breakeven; synthetic and derived input series.",
    no_args_is_help=True,
)


@app.command("check-site")
def check_site(site: Annotated[Path, typer.Argument(help="site TOML file")]) -> None:
    """Validate a site TOML and print what it holds."""

    s = load_site(site)
    table = Table(title=f"{s.name} ({s.zone}, {s.grid_connection_mw:g} MW connection)")
    for column in ("hall", "PUE", "capacity MW", "model", "units", "facility MW"):
        table.add_column(column)
    for hall in s.halls:
        for fleet in hall.fleets:
            table.add_row(
                hall.name,
                f"{hall.pue:g}",
                f"{hall.capacity_mw:g}",
                fleet.model,
                f"{fleet.count:,}",
                f"{fleet.facility_power_mw:.2f}",
            )
    console = Console()
    console.print(table)
    contract = s.contract
    terms = (
        f"fixed block {contract.block_mw:g} MW at ${contract.block_price_usd_per_mwh:g}/MWh"
        if contract.kind == "fixed_block"
        else f"index + ${contract.adder_usd_per_mwh:g}/MWh"
    )
    m = s.markets
    console.print(
        f"mining {s.mining_capacity_mw:.2f} MW ({s.mining_hashrate_ph_s:,.1f} PH/s), ramp "
        f"{s.mining.ramp_mw_per_interval:g} MW/interval, min off {s.mining.min_off_minutes} min\n"
        f"GPUs {s.gpu_count:,} ({s.gpu_capacity_mw:.2f} MW), "
        f"AI ${s.ai.contract_price_usd_per_gpu_hour:.2f}/GPU-h, "
        f"{len(s.ai.training)} training job spec(s), spot up to {s.ai.spot.max_gpus:,} GPUs\n"
        f"contract: {terms}\n"
        f"4CP {'on' if m.four_cp.enabled else 'off'} ({len(m.four_cp.intervals_utc)} intervals), "
        f"reserves {'on' if m.reserves.enabled else 'off'} ({m.reserves.product}, {m.reserves.max_mw:g} MW), "
        f"emergency {'on' if m.emergency.enabled else 'off'} ({len(m.emergency.events)} event(s))"
    )


@app.command("check-prices")
def check_prices(
    path: Annotated[Path, typer.Argument(help="ERCOT SPP CSV (real-time or day-ahead)")],
) -> None:
    """Load an ERCOT price file (refusing gaps, duplicates, bad cells) and summarise it."""

    frame = load_ercot_prices(path)
    table = Table(
        title=f"{path.name}: {len(frame):,} × {frame.attrs['interval_minutes']} min, "
        f"{frame.index[0].isoformat()} → {frame.index[-1].isoformat()} (UTC)"
    )
    for column in ("zone", "mean $/MWh", "min", "max", "negative intervals"):
        table.add_column(column)
    for zone in frame.columns:
        s = frame[zone]
        table.add_row(
            str(zone), f"{s.mean():.2f}", f"{s.min():.2f}", f"{s.max():.2f}", f"{int((s < 0).sum()):,}"
        )
    Console().print(table)


@app.command()
def breakeven(
    hashprice: Annotated[float, typer.Option(help="USD per PH/s per day")] = 43.0,
    pue: Annotated[list[float] | None, typer.Option(help="PUE values (repeat the option)")] = None,
    pool_fee: Annotated[float, typer.Option(help="pool fee as a fraction")] = 0.0,
) -> None:
    """Mining revenue per MWh = breakeven power price, for each catalogue ASIC and PUE."""

    pues = pue or [1.0, 1.05, 1.1]
    table = Table(title=f"breakeven power price, USD/MWh, at ${hashprice:g}/PH/day")
    table.add_column("model")
    table.add_column("J/TH")
    for p in pues:
        table.add_column(f"PUE {p:g}")
    for asic in load_catalog().asics:
        table.add_row(
            asic.model,
            f"{asic.efficiency_j_per_th:.1f}",
            *(f"{breakeven_usd_per_mwh(asic, hashprice, pue=p, pool_fee=pool_fee):.1f}" for p in pues),
        )
    Console().print(table)


@app.command()
def synthesize(
    out: Annotated[Path, typer.Option(help="folder for rt.csv, da.csv and hashprice.csv")],
    start: Annotated[str, typer.Option(help="first local (Central Time) day")] = "2023-07-01",
    days: Annotated[int, typer.Option(help="number of days")] = 92,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Write seeded synthetic prices (ERCOT CSV format) and a daily hashprice CSV."""

    inputs = synthetic_inputs(start, days, seed=seed)
    for path in (
        write_ercot_prices(inputs.rt, out / "rt.csv"),
        write_ercot_prices(inputs.da, out / "da.csv"),
        write_hashprice_csv(inputs.hashprice, out / "hashprice.csv"),
    ):
        typer.echo(str(path))


@app.command("derive-hashprice")
def derive_hashprice(
    out: Annotated[Path, typer.Option(help="daily hashprice CSV to write")],
    btc: Annotated[Path | None, typer.Option(help="daily BTC price CSV (default: the data folder's)")] = None,
) -> None:
    """Daily hashprice from the daily BTC close and the stated 2023 difficulty levels."""

    series = derive_daily_hashprice(load_btc_prices(btc))
    typer.echo(f"{write_hashprice_csv(series, out)}: {len(series)} days, mean ${series.mean():.2f}/PH/day")


@app.command("proxy-4cp")
def proxy_4cp(
    prices: Annotated[Path, typer.Argument(help="ERCOT real-time SPP CSV")],
    out: Annotated[Path, typer.Option(help="4CP intervals CSV to write")],
    zone: Annotated[str, typer.Option(help="price column of the proxy")] = "LZ_NORTH",
) -> None:
    """Write proxy 4CP intervals (the month's highest weekday 15:00-19:00 CT price) from real-time prices."""

    intervals = proxy_4cp_intervals(load_ercot_prices(prices), zone=zone)
    write_4cp_intervals(intervals, out, rule=PROXY_RULE.replace("LZ_NORTH", zone))
    for ts in intervals:
        typer.echo(ts.tz_convert("America/Chicago").isoformat())
