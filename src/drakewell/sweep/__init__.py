"""Scenario sweeps: many backtests of one site across zones, hashprice, contracts, fleets and policies.

- :mod:`~drakewell.sweep.spec`: the SPEC TOML (base site, fixed inputs, axes) validated at the edge,
  and its cells — the cartesian product of the axes;
- :mod:`~drakewell.sweep.task`: one cell's backtest (the existing dispatch backtest) and the
  flattening of its summary into a row;
- :mod:`~drakewell.sweep.executors`: where cells run — serially in this process, or as Ray tasks
  with the price frames in the object store once;
- :mod:`~drakewell.sweep.runner`: resume, retry once, ``results.parquet``;
- :mod:`~drakewell.sweep.report`: ``report.html`` (heatmaps, revenue mix, mpc below the bar).

Typical use::

    from drakewell.sweep import RayExecutor, SerialExecutor, load_spec, run_sweep
    outcome = run_sweep(load_spec("examples/sweeps/hashprice-zones.toml"), "out/sweep", SerialExecutor())
    outcome.results  # one row per cell

Ray is the optional extra ``drakewell[sweep]``; nothing here imports it until a
:class:`RayExecutor` is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drakewell.core.lazy import lazy_exports

if TYPE_CHECKING:
    from drakewell.sweep.executors import Executor, Outcome, RayExecutor, SerialExecutor, require_ray
    from drakewell.sweep.runner import RESULTS_FILE, SweepOutcome, read_results, run_sweep
    from drakewell.sweep.spec import Cell, SweepSpec, expand_cells, load_spec, parse_spec
    from drakewell.sweep.task import CellTask, PriceFrames, flatten_summary, run_cell

_LAZY = {
    "Executor": "drakewell.sweep.executors",
    "Outcome": "drakewell.sweep.executors",
    "RayExecutor": "drakewell.sweep.executors",
    "SerialExecutor": "drakewell.sweep.executors",
    "require_ray": "drakewell.sweep.executors",
    "RESULTS_FILE": "drakewell.sweep.runner",
    "SweepOutcome": "drakewell.sweep.runner",
    "read_results": "drakewell.sweep.runner",
    "run_sweep": "drakewell.sweep.runner",
    "Cell": "drakewell.sweep.spec",
    "SweepSpec": "drakewell.sweep.spec",
    "expand_cells": "drakewell.sweep.spec",
    "load_spec": "drakewell.sweep.spec",
    "parse_spec": "drakewell.sweep.spec",
    "CellTask": "drakewell.sweep.task",
    "PriceFrames": "drakewell.sweep.task",
    "flatten_summary": "drakewell.sweep.task",
    "run_cell": "drakewell.sweep.task",
}

__all__ = [
    "RESULTS_FILE",
    "Cell",
    "CellTask",
    "Executor",
    "Outcome",
    "PriceFrames",
    "RayExecutor",
    "SerialExecutor",
    "SweepOutcome",
    "SweepSpec",
    "expand_cells",
    "flatten_summary",
    "load_spec",
    "parse_spec",
    "read_results",
    "require_ray",
    "run_cell",
    "run_sweep",
]


__getattr__ = lazy_exports(__name__, _LAZY)
