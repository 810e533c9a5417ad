"""Every table the CLI prints is readable in an 80-column terminal: rendered at width 80, no cell
or header word is cut (no ``…``), on the widest figures the commands produce."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from drakewell.cli import app
from drakewell.core.tables import TERMINAL_COLUMNS, compact_table, cut_cells, render_text

ROOT = Path(__file__).resolve().parents[1]
NARROW = {"COLUMNS": str(TERMINAL_COLUMNS)}


def _summary(policy: str, profit_musd: float, solve_s: float) -> dict[str, Any]:
    # a year of a site four times the example's: hundreds of USD M per line
    return {
        "policy": policy,
        "profit_usd": profit_musd * 1e6,
        "revenue_usd": {
            "ai": 654.321e6,
            "mining": 321.987e6,
            "reserves": 98.765e6,
            "curtailment_credits": 87.6e6,
        },
        "energy_cost_usd": 543.21e6,
        "ratio_to_perfect": -0.1234,
        "flex_capture": -12.345,
        "solve_seconds": solve_s,
    }


def _assert_fits(table: Table, width: int = TERMINAL_COLUMNS) -> None:
    assert cut_cells(table, width) == [], render_text(table, width)


def test_the_check_itself_sees_a_cut_cell() -> None:
    table = Table("policy", "a figure with a long header")
    table.add_row("perfect-foresight-reference", "54,400,000.123456")
    assert "54,400,000.123456" in cut_cells(table, 30)
    assert cut_cells(table, 120) == []


def test_the_backtest_table_fits_80_columns_and_wide_shows_every_line() -> None:
    from drakewell.dispatch.cli import render_table

    summaries = [
        _summary(name, profit, solve)
        for name, profit, solve in [
            ("perfect", 9999.999, 9.9),
            ("stochastic", -9999.999, 99999.9),
            ("mpc", 72.6, 61.7),
            ("threshold", 0.0, 0.0),
            ("always", -0.5, 0.1),
        ]
    ]
    narrow = render_table(summaries, title="West Texas hybrid, LZ_WEST, 8,832 intervals")
    _assert_fits(narrow)
    assert "-10,000.00" in render_text(narrow)  # rounded, never cut
    wide = render_table(summaries, title="West Texas hybrid, LZ_WEST, 8,832 intervals", wide=True)
    assert [c.header for c in wide.columns][4:6] == ["reserves", "credits"]
    _assert_fits(wide, 120)


def test_the_routing_tables_fit_80_columns() -> None:
    from drakewell.routing.cli import latency_tables, results_table, utilisation_table
    from drakewell.routing.nodes import emerging_market_nodes
    from drakewell.routing.simulator import PolicyResult

    nodes = [n.name for n in emerging_market_nodes()]
    names = ["nearest", "least-load", "p2c", "slo-aware", "cost-aware"]
    fields = {f: 0 for f in PolicyResult.__dataclass_fields__}
    results = [
        PolicyResult(
            **{
                **fields,
                "policy": name,
                "ttft_ms_p50": 60_667.0,
                "ttft_ms_p90": 156_000.0,
                "ttft_ms_p99": 999_999.0,
                "e2e_ms_p50": 63_603.0,
                "e2e_ms_p90": 159_000.0,
                "e2e_ms_p99": 999_999.0,
                "sla_attainment": 1.0,
                "tokens_per_s": 999_999.0,
                "cost_usd_per_mtok": 12.3456,
                "utilisation": dict.fromkeys(nodes, 1.0),
            }
        )
        for name in names
    ]
    _assert_fits(results_table(results))
    _assert_fits(results_table(results, wide=True), 100)
    _assert_fits(utilisation_table(results, nodes))
    regions = [f"aws:ap-southeast-{i}" for i in range(1, 13)]
    rtt = np.full((12, 12), 1234.0)
    tables = latency_tables(regions, rtt)
    assert len(tables) > 1
    for table in tables:
        _assert_fits(table)
    shown = [c.header for t in tables for c in t.columns[1:]]
    assert shown == [str(j) for j in range(1, 13)]  # every column once, in order


def test_the_demo_summary_fits_80_columns() -> None:
    from drakewell.demo import DemoSummary, print_summary

    dispatch = _summary("mpc", 72.6, 61.7)
    summary = DemoSummary.model_validate(
        {
            "site": "West Texas hybrid",
            "days": 31,
            "dispatch": dispatch
            | {
                "revenue_usd": dispatch["revenue_usd"] | {"export": 12.345e6},
                "flex_capture": 0.939,
                "energy_mwh": {"ai": 987_654.0, "mining": 876_543.0, "curtailed": 12_345.0},
                "intervals": 31 * 96,
                "solve_status": {"optimal": 31 * 96},
                "renewables_mwh": {
                    "generation": 123_456.0,
                    "self_consumed": 98_765.0,
                    "export": 12_345.0,
                    "curtailed": 12_346.0,
                },
            },
            "metering": {"readings": 1_234_567, "rejected": 0, "epochs": 31},
            "settlement": {
                "leases": 5,
                "settlements": 155,
                "payments_base": 9_876_543_210_000,
                "deposited_base": 18_000_000_000_000,
                "released_base": 9_876_543_210_000,
                "fees_base": 876_543_210_000,
                "refunded_base": 8_123_456_790_000,
                "distributed_base": 9_000_000_000_000,
                "claimed_base": 8_000_000_000_000,
                "unclaimed_base": 1_000_000_000_000,
                "fee_bps": 250,
            },
            "valuation": {
                "nav_base": 51_200_000_000_000,
                "nav_per_share_base": 1_234_567,
                "monthly_cash_base": 600_000_000_000,
                "annual_yield": 0.142,
                "total_shares": 51_200_000.0,
                "utilisation_measured": 0.8,
                "assumptions": {"life_months": 48},
            },
            "credit": {
                "shocked_nav_base": 864_197,
                "pledged_shares": 1_792_000 * 10**18,
                "borrowed_base": 1_000_000_000_000,
                "health_factor_before_shock": 1.33,
                "health_factor_after_shock": 0.93,
                "liquidation_repaid_base": 500_000_000_000,
                "shares_seized": 600_000 * 10**18,
                "debt_after_base": 500_000_000_000,
                "health_factor_after_liquidation": 1.1,
            },
            "files": {"summary": "out/summary.json", "report": "out/report.html"},
        }
    )
    console = Console(width=TERMINAL_COLUMNS, record=True, file=None, color_system=None)
    with console.capture() as captured:
        print_summary(console, summary)
    text = captured.get()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= TERMINAL_COLUMNS
    assert "renewable generation" in text and "NAV per share" in text


def _run(args: list[str]) -> str:
    result = CliRunner().invoke(app, args, env=NARROW)
    assert result.exit_code == 0, result.output
    assert "…" not in result.output, result.output
    assert max(len(line) for line in result.output.splitlines()) <= TERMINAL_COLUMNS, result.output
    return result.output


def test_the_inputs_tables_fit_80_columns(tmp_path: Path) -> None:
    from drakewell.inputs.prices import write_ercot_prices
    from drakewell.inputs.synthetic import synthetic_inputs

    _run(["inputs", "check-site", str(ROOT / "examples" / "sites" / "west-texas-hybrid.toml")])
    _run(["inputs", "breakeven", "--pue", "1.0", "--pue", "1.05", "--pue", "1.1", "--pue", "1.2"])
    prices = write_ercot_prices(synthetic_inputs("2023-08-07", 2, seed=1).rt, tmp_path / "rt.csv")
    _run(["inputs", "check-prices", str(prices)])


def test_the_order_book_fits_80_columns(tmp_path: Path) -> None:
    from drakewell.exchange.engine import MAX_PRICE, MAX_QTY, hash_api_key
    from drakewell.exchange.journal import recover

    engine, journal = recover(tmp_path / "j.sqlite")
    engine.open_account("a", hash_api_key("k"))
    engine.deposit("a", 10**18)
    instrument = "H100-PCIE.us-tx.2030-01-02T00Z.24h"
    for price in (MAX_PRICE, MAX_PRICE - 1):
        engine.place("a", instrument, "buy", price=price, qty=MAX_QTY)
    engine.commit()
    journal.close()
    out = _run(["exchange", "book", instrument, "--journal", str(tmp_path / "j.sqlite")])
    assert str(MAX_PRICE) in out


@pytest.mark.slow
def test_the_backtest_command_prints_a_table_that_fits_80_columns(tmp_path: Path) -> None:
    from drakewell.inputs.prices import write_ercot_prices
    from drakewell.inputs.synthetic import synthetic_inputs

    syn = synthetic_inputs("2023-08-07", 2, seed=4)
    rt, da = write_ercot_prices(syn.rt, tmp_path / "rt.csv"), write_ercot_prices(syn.da, tmp_path / "da.csv")
    args = ["backtest", "--prices", str(rt), "--forecast", str(da), "--hashprice", "60"]
    out = _run([*args, "--policy", "all"])
    assert re.search(r"^mpc\s+-?[\d,]+\.\d\d\s", out, re.MULTILINE), out


def test_compact_tables_put_two_spaces_between_columns() -> None:
    table = compact_table()
    for k in range(10):
        table.add_column(f"c{k}")
    table.add_row(*(f"{k:05d}" for k in range(10)))
    assert max(len(line) for line in render_text(table, 200).splitlines()) == 10 * 5 + 9 * 2


def test_a_folded_last_column_is_not_cut_but_an_ellipsis_is() -> None:
    path = "/home/operator/projects/drakewell/out/sweeps/hashprice-zones/results.parquet"
    folded = Table(show_header=False)
    folded.add_column("what")
    folded.add_column("value", overflow="fold")
    folded.add_row("worst mpc flexibility capture", path)
    assert cut_cells(folded) == []
    ellipsis = Table(show_header=False)
    ellipsis.add_row("worst mpc flexibility capture", path)
    assert path in cut_cells(ellipsis)


def test_the_sweep_summary_fits_80_columns(tmp_path: Path) -> None:
    import pandas as pd

    from drakewell.sweep.cli import render_outcome
    from drakewell.sweep.runner import SweepOutcome

    deep = tmp_path.joinpath(*["a-long-folder-name"] * 4)
    frame = pd.DataFrame({"policy": ["mpc", "mpc"], "flex_capture": [0.912, -0.25]})
    outcome = SweepOutcome(frame, deep / "results.parquet", deep / "report.html", 1_234, 12, 1_222, 0, 1234.5)
    _assert_fits(render_outcome(outcome))


@pytest.mark.integration
def test_the_fleet_tables_fit_80_columns(tmp_path: Path) -> None:
    """Status, plan and apply on emulated miners at the longest IPv4 addresses (loopback)."""
    import asyncio
    import threading

    pytest.importorskip("pyasic")
    from drakewell.fleet.emulator import EmulatedFleet, EmulatorConfig

    fleet = EmulatedFleet(EmulatorConfig(count=2, first_ip="127.254.254.201", ramp_s=0.3))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        async with fleet:
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        assert started.wait(10)
        inventory = tmp_path / "fleet.toml"
        inventory.write_text('[[miner_ranges]]\nfirst_ip = "127.254.254.201"\ncount = 2\nmodel = "M30S+"\n')
        for args in (
            ["status"],
            ["set", "--mining-mw", "0.0034"],
            ["set", "--mining-mw", "0.0034", "--apply"],
        ):
            out = _run(["fleet", args[0], "--inventory", str(inventory), *args[1:]])
            assert "127.254.254.202" in out
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
