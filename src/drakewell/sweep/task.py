"""One cell's backtest: the task a worker runs, and the flattening of its summary into a row.

The task is a pure function of its arguments — the validated site, the shared price frames, the
hashprice, zone and policy — so its result does not depend on where or beside what it runs. It
calls :func:`drakewell.dispatch.backtest.backtest_inputs` (the same code as ``drakewell
backtest``); the references ``perfect`` and ``always`` run inside the task so ``flex_capture``
and ``ratio_to_perfect`` are computed exactly as a single backtest computes them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from drakewell.dispatch.backtest import backtest_inputs
from drakewell.dispatch.inputs import build_inputs
from drakewell.site import Site

__all__ = ["CellResult", "CellTask", "PriceFrames", "flatten_summary", "run_cell"]


@dataclass(frozen=True)
class PriceFrames:
    """A price source loaded once: real-time frame and optional day-ahead frame (UTC)."""

    rt: pd.DataFrame
    da: pd.DataFrame | None


@dataclass(frozen=True)
class CellTask:
    """What travels to a worker for one cell (heavy inputs travel apart, by key)."""

    key: str  # the cell's identity
    site: Site
    zone: str | None
    policy: str
    prices_key: str  # key of the shared PriceFrames
    hashprice: float | None  # a constant, or None when hashprice_key names a shared daily series
    hashprice_key: str | None


@dataclass(frozen=True)
class CellResult:
    """What a worker hands back for one cell: the flat summary, the wall time and where it ran."""

    summary: dict[str, object]  # column -> value (see flatten_summary)
    task_seconds: float
    worker: str = ""  # the Ray node id; set by the executor that knows it


def flatten_summary(summary: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """Nested summary → flat columns joined by dots (``revenue_usd.ai``); lists become JSON text."""
    out: dict[str, object] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_summary(value, prefix=f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = json.dumps(value, default=str)
        elif hasattr(value, "value") and not isinstance(value, int | float | str | bool):
            out[name] = value.value  # an enum (e.g. a solver status)
        else:
            out[name] = value
    return out


def run_cell(task: CellTask, prices: PriceFrames, hashprice_series: pd.Series | None) -> CellResult:
    """Backtest one cell: its flat summary and wall time."""

    t0 = time.perf_counter()
    hp: float | pd.Series
    if task.hashprice is not None:
        hp = task.hashprice
    else:
        assert hashprice_series is not None, "a cell without a constant hashprice needs the shared series"
        hp = hashprice_series
    inputs = build_inputs(task.site, prices.rt, prices.da, hp, task.zone)
    result = backtest_inputs(inputs, [task.policy])[0]
    return CellResult(flatten_summary(result.summary.to_json()), time.perf_counter() - t0)
