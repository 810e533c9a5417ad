"""Running a sweep (serial executor): one row per cell with the backtest summary, resume, retry once
then record the error, invalid combinations recorded, the report, and Ray's absence explained."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from drakewell.core.errors import DrakewellError, SweepError
from drakewell.dispatch.backtest import backtest_inputs
from drakewell.dispatch.inputs import build_inputs
from drakewell.dispatch.policies import POLICIES, ThresholdPolicy
from drakewell.inputs.prices import load_ercot_prices
from drakewell.site import load_site
from drakewell.sweep import SerialExecutor, read_results, run_sweep
from drakewell.sweep.runner import RESULTS_FILE, RUN_COLUMNS
from drakewell.sweep.task import flatten_summary

SMALL_SITE = Path(__file__).resolve().parents[2] / "examples" / "sites" / "small-index.toml"


def test_each_cell_is_one_backtest_row_axes_then_summary(make_spec, prices_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(axes={"hashprice_usd_per_ph_day": [30, 60], "policy": ["mpc", "threshold"]})
    outcome = run_sweep(spec, tmp_path, SerialExecutor())
    frame = outcome.results
    assert (outcome.cells, outcome.ran, outcome.skipped, outcome.failed) == (4, 4, 0, 0)
    assert list(frame.columns[:2]) == ["hashprice_usd_per_ph_day", "policy"]
    assert tuple(frame.columns[-len(RUN_COLUMNS) :]) == RUN_COLUMNS
    assert {
        "profit_usd",
        "revenue_usd.ai",
        "revenue_usd.mining",
        "energy_mwh.curtailed",
        "flex_capture",
    } <= set(frame.columns)
    assert list(frame["status"]) == ["ok"] * 4 and list(frame["attempts"]) == [1] * 4
    assert frame["cell"].is_unique
    # the file holds the same rows
    pd.testing.assert_frame_equal(read_results(tmp_path / RESULTS_FILE), frame)

    # a cell's row is exactly the backtest's summary
    inputs = build_inputs(
        load_site(SMALL_SITE),
        load_ercot_prices(prices_dir / "rt.csv"),
        load_ercot_prices(prices_dir / "da.csv"),
        60.0,
    )
    summary = flatten_summary(backtest_inputs(inputs, ["mpc"])[0].summary.to_json())
    row = frame[(frame["hashprice_usd_per_ph_day"] == 60.0) & (frame["policy"] == "mpc")].iloc[0]
    for key, value in summary.items():
        if key != "solve_seconds":
            assert row[key] == value, key


def test_flatten_summary_joins_nested_keys_and_keeps_unknown_ones() -> None:
    from drakewell.dispatch.types import SolveStatus

    flat = flatten_summary({"a": 1, "b": {"c": 2.5, "d": {"e": None}}, "f": [1, 2], "g": SolveStatus.OPTIMAL})
    assert flat == {"a": 1, "b.c": 2.5, "b.d.e": None, "f": "[1, 2]", "g": SolveStatus.OPTIMAL.value}


def test_a_rerun_skips_the_cells_already_in_the_results(make_spec, comparable, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(axes={"hashprice_usd_per_ph_day": [30, 60]}, sweep={"policy": "threshold"})
    first = run_sweep(spec, tmp_path, SerialExecutor()).results
    again = run_sweep(spec, tmp_path, SerialExecutor())
    assert (again.skipped, again.ran) == (2, 0)
    pd.testing.assert_frame_equal(again.results, first)

    # a lost row is run again, and only that one
    path = tmp_path / RESULTS_FILE
    read_results(path).iloc[[1]].to_parquet(path, index=False)
    third = run_sweep(spec, tmp_path, SerialExecutor())
    assert (third.skipped, third.ran) == (1, 1)
    pd.testing.assert_frame_equal(comparable(third.results), comparable(first))

    # a new axis value adds its cells; the others are kept
    wider = make_spec(axes={"hashprice_usd_per_ph_day": [30, 60, 90]}, sweep={"policy": "threshold"})
    fourth = run_sweep(wider, tmp_path, SerialExecutor())
    assert (fourth.skipped, fourth.ran, len(fourth.results)) == (2, 1, 3)


class _Flaky:
    """A threshold policy whose every odd-numbered run raises."""

    name = "flaky"
    online = True
    calls = 0

    def run(self, inputs: Any, progress: Any = None) -> Any:
        type(self).calls += 1
        if type(self).calls % 2 == 1:
            raise RuntimeError(f"transient failure #{type(self).calls}")
        return ThresholdPolicy().run(inputs, progress)


class _Broken:
    name = "broken"
    online = True
    calls = 0

    def run(self, inputs: Any, progress: Any = None) -> Any:
        type(self).calls += 1
        raise RuntimeError("this policy always fails")


def test_a_failed_task_is_retried_once_then_recorded_with_its_error(
    make_spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(POLICIES, "flaky", _Flaky)
    monkeypatch.setitem(POLICIES, "broken", _Broken)
    monkeypatch.setattr(_Flaky, "calls", 0)
    monkeypatch.setattr(_Broken, "calls", 0)
    spec = make_spec(axes={"hashprice_usd_per_ph_day": [30, 60], "policy": ["flaky", "broken", "threshold"]})
    outcome = run_sweep(spec, tmp_path, SerialExecutor())
    frame = outcome.results.set_index(["hashprice_usd_per_ph_day", "policy"])
    assert len(frame) == 6  # no cell dropped
    assert list(frame.xs("flaky", level="policy")["attempts"]) == [2, 2]
    assert set(frame.xs("flaky", level="policy")["status"]) == {"ok"}
    broken = frame.xs("broken", level="policy")
    assert list(broken["status"]) == ["failed", "failed"] and list(broken["attempts"]) == [2, 2]
    assert set(broken["error"]) == {"RuntimeError: this policy always fails"}
    assert broken["profit_usd"].isna().all()
    assert _Broken.calls == 4 and _Flaky.calls == 4
    assert outcome.failed == 2
    # a rerun retries the failed cells only
    again = run_sweep(spec, tmp_path, SerialExecutor())
    assert (again.skipped, again.ran) == (4, 2)
    assert _Broken.calls == 8


def test_a_combination_that_is_no_valid_site_is_recorded_and_the_rest_run(make_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # each value is valid with the other axis at its base value; 1,500 S21 in a 5.5 MW hall is not
    spec = make_spec(
        axes={"halls.main.fleets[0].count": [1000, 1500], "halls.main.capacity_mw": [6.0, 5.5]},
        sweep={"policy": "threshold"},
    )
    frame = run_sweep(spec, tmp_path, SerialExecutor()).results
    assert list(frame["status"]) == ["ok", "ok", "ok", "failed"]
    bad = frame.iloc[3]
    assert bad["attempts"] == 0
    assert "halls.main.fleets[0].count = 1500" in bad["error"] and "capacity_mw = 5.5" in bad["error"]


def test_a_zone_missing_from_the_prices_is_refused_before_any_cell_runs(make_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(axes={"zone": ["LZ_WEST", "LZ_AEN"]})
    with pytest.raises(SweepError, match=r"zone 'LZ_AEN' is not a column of the real-time prices rt\.csv"):
        run_sweep(spec, tmp_path, SerialExecutor())
    assert not (tmp_path / RESULTS_FILE).exists()


def test_a_results_file_from_elsewhere_is_refused_and_kept(make_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / RESULTS_FILE
    pd.DataFrame({"x": [1]}).to_parquet(path)
    before = path.read_bytes()
    with pytest.raises(SweepError, match="was not written by a sweep"):
        run_sweep(make_spec(sweep={"policy": "threshold"}), tmp_path, SerialExecutor())
    assert path.read_bytes() == before


def test_the_report_shows_heatmaps_revenue_mix_and_mpc_below_the_bar(make_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from drakewell.sweep.report import below_bar

    axes = {
        "zone": ["LZ_WEST", "LZ_NORTH"],
        "hashprice_usd_per_ph_day": [30, 60],
        "policy": ["perfect", "mpc", "threshold", "always"],
    }
    spec = make_spec(axes=axes, report={"mpc_flex_capture_bar": 1.5})
    outcome = run_sweep(spec, tmp_path, SerialExecutor())
    assert outcome.report_path == tmp_path / "report.html"
    text = outcome.report_path.read_text()
    for fid in ("fig-flex", "fig-profit", "fig-revenue"):
        assert f'id="{fid}"' in text
    assert "Flexibility capture over zone" in text and "Profit (USD million) over zone" in text
    below = below_bar(outcome.results, spec)
    assert len(below) == 4  # every mpc cell is below a bar of 1.5
    assert list(below.columns[:2]) == ["zone", "hashprice_usd_per_ph_day"]
    assert "threshold_flex_capture" in below.columns
    assert below["flex_capture"].is_monotonic_increasing
    strict = make_spec(axes=axes, report={"mpc_flex_capture_bar": -1.0})
    assert below_bar(outcome.results, strict).empty


def test_sweep_without_ray_says_how_to_install_it(
    prices_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from drakewell.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    spec = prices_dir / "spec.toml"
    spec.write_text(f'[sweep]\nsite = "{SMALL_SITE}"\nprices = "rt.csv"\n')
    monkeypatch.setattr(sys, "argv", ["drakewell", "sweep", str(spec), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Ray is not installed" in err and "pip install 'drakewell[sweep]'" in err
    assert not (tmp_path / "out").exists()


def test_the_ray_executor_without_ray_raises_the_same_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from drakewell.sweep import RayExecutor

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(DrakewellError, match="Ray is not installed") as info:
        RayExecutor()
    assert info.value.hint == "install the sweep extra: pip install 'drakewell[sweep]'"
