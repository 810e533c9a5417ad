"""``drakewell backtest`` end to end on small files, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from drakewell.cli import app
from drakewell.core.errors import ConfigError, DispatchError, InputDataError
from drakewell.dispatch.ledger import LEDGER_COLUMNS
from drakewell.dispatch.policies import policy_names
from drakewell.inputs.prices import write_ercot_prices
from drakewell.inputs.synthetic import synthetic_inputs

KEYS = [
    "policy",
    "profit_usd",
    "revenue_usd",
    "energy_cost_usd",
    "energy_mwh",
    "ratio_to_perfect",
    "flex_capture",
    "solve_seconds",
    "intervals",
    "solve_status",
    "renewables_mwh",
]


@pytest.fixture(scope="module")
def price_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("prices")
    syn = synthetic_inputs("2023-08-07", 3, seed=4)
    return write_ercot_prices(syn.rt, folder / "rt.csv"), write_ercot_prices(syn.da, folder / "da.csv")


def test_one_policy_writes_the_json_contract_and_the_ledger(
    price_files: tuple[Path, Path], tmp_path: Path
) -> None:
    rt, da = price_files
    out, ledger = tmp_path / "s.json", tmp_path / "ledger.csv"
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--prices",
            str(rt),
            "--forecast",
            str(da),
            "--zone",
            "LZ_WEST",
            "--hashprice",
            "60",
            "--policy",
            "threshold",
            "--json",
            str(out),
            "--ledger",
            str(ledger),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert list(summary) == KEYS
    assert summary["policy"] == "threshold" and summary["intervals"] == 3 * 96
    assert 0 < summary["ratio_to_perfect"] <= 1
    frame = pd.read_csv(ledger)
    assert tuple(frame.columns) == LEDGER_COLUMNS
    assert len(frame) == 3 * 96
    assert frame["interval_start_utc"].iloc[0] == "2023-08-07T05:00:00+00:00"
    assert frame["profit_usd"].sum() == pytest.approx(summary["profit_usd"], rel=1e-9)


def test_all_policies_print_a_table_and_write_a_list(price_files: tuple[Path, Path], tmp_path: Path) -> None:
    rt, da = price_files
    out = tmp_path / "all.json"
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--prices",
            str(rt),
            "--forecast",
            str(da),
            "--hashprice",
            "60",
            "--policy",
            "all",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summaries = json.loads(out.read_text())
    assert [s["policy"] for s in summaries] == ["perfect", "stochastic", "mpc", "threshold", "always"]
    assert all(list(s) == KEYS for s in summaries)
    assert "flex" in result.output and "mpc" in result.output
    by = {s["policy"]: s for s in summaries}
    assert by["perfect"]["profit_usd"] >= max(s["profit_usd"] for s in summaries) - 1e-6


def test_unknown_policy_is_refused(price_files: tuple[Path, Path]) -> None:
    result = CliRunner().invoke(app, ["backtest", "--prices", str(price_files[0]), "--policy", "greedy"])
    assert isinstance(result.exception, DispatchError)
    assert "unknown dispatch policy 'greedy'" in str(result.exception)


def test_ledger_needs_a_single_policy(price_files: tuple[Path, Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["backtest", "--prices", str(price_files[0]), "--ledger", str(tmp_path / "x")]
    )
    assert isinstance(result.exception, ConfigError)


def test_bad_price_cell_names_file_and_line(price_files: tuple[Path, Path], tmp_path: Path) -> None:
    lines = price_files[0].read_text().splitlines()
    cells = lines[5].split(",")
    cells[2] = "n/a"
    lines[5] = ",".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(
        app, ["backtest", "--prices", str(bad), "--hashprice", "60", "--policy", "always"]
    )
    assert isinstance(result.exception, InputDataError)
    assert "bad.csv:6" in str(result.exception)


def test_bad_hashprice_argument_is_refused(price_files: tuple[Path, Path]) -> None:
    result = CliRunner().invoke(
        app, ["backtest", "--prices", str(price_files[0]), "--hashprice", "lots", "--policy", "always"]
    )
    assert isinstance(result.exception, InputDataError)
    assert "neither a number nor an existing CSV" in str(result.exception)


def test_write_results_puts_summary_and_ledgers_in_a_folder(
    price_files: tuple[Path, Path], tmp_path: Path
) -> None:
    from drakewell.dispatch import load_backtest_inputs, write_results
    from drakewell.dispatch.backtest import backtest_inputs

    inputs = load_backtest_inputs(None, prices=price_files[0], forecast=price_files[1], hashprice=60.0)
    results = backtest_inputs(inputs, ["threshold", "always"])
    paths = write_results(results, tmp_path / "out")
    assert [p.name for p in paths] == ["dispatch_summary.json", "ledger_threshold.csv", "ledger_always.csv"]
    assert [s["policy"] for s in json.loads(paths[0].read_text())] == ["threshold", "always"]
    assert len(pd.read_csv(paths[1])) == inputs.n


def test_solve_status_is_counted_and_the_cli_says_how_many_fell_back_and_why(
    price_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from drakewell.dispatch import model

    real_solve = model.DispatchModel.solve
    calls = {"n": 0}

    def flaky(self: model.DispatchModel, data: model.PeriodData) -> model.DispatchResult:
        calls["n"] += 1
        sol = real_solve(self, data)
        if calls["n"] % 5 == 0:  # every fifth step: out of time
            return replace(sol, status=model.SolveStatus.TIME_LIMIT)
        return sol

    monkeypatch.setattr(model.DispatchModel, "solve", flaky)
    rt, da = price_files
    out = tmp_path / "mpc.json"
    args = ["backtest", "--prices", str(rt), "--forecast", str(da), "--hashprice", "60", "--json", str(out)]
    result = CliRunner().invoke(app, [*args, "--policy", "mpc"])
    assert result.exit_code == 0, result.output
    n = 3 * 96
    assert json.loads(out.read_text())["solve_status"] == {"optimal": n - n // 5, "time_limit": n // 5}
    said = " ".join(result.output.split())
    assert f"mpc: {n // 5} of {n} solves fell back" in said
    assert "time_limit (HiGHS reached its per-solve time or iteration limit)" in said


def test_no_fallback_note_when_every_solve_is_optimal(price_files: tuple[Path, Path], tmp_path: Path) -> None:
    rt, da = price_files
    out = tmp_path / "mpc.json"
    args = ["backtest", "--prices", str(rt), "--forecast", str(da), "--hashprice", "60", "--json", str(out)]
    result = CliRunner().invoke(app, [*args, "--policy", "mpc"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["solve_status"] == {"optimal": 3 * 96}
    assert "fell back" not in result.output


def test_help_lists_every_registered_policy() -> None:
    result = CliRunner().invoke(app, ["backtest", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in [*policy_names(), "all"]:
        assert name in result.output, name
    assert "stochastic" in policy_names()
