"""Sweep benchmark: the 48-cell hashprice-zones example on Ray against the same cells run serially.

``examples/sweeps/hashprice-zones.toml`` (West Texas hybrid × 3 zones × 4 hashprice levels × 4
policies on July–September 2023 ERCOT prices) runs twice in one process, in the same run:

1. serially (:class:`~drakewell.sweep.SerialExecutor`, the anchor): ``serial_s``;
2. on a local Ray with ``--workers`` CPUs (default 2): ``ray_s``, from the first submission to the
   last result, with Ray already started (its start-up is printed apart; on a cluster it is paid
   once, not per sweep). Worker processes start and import Drakewell inside ``ray_s``.

``speedup = serial_s / ray_s`` (goal ≥ 1.7× on 2 cores). ``overhead_ms_per_task`` is Ray's cost per
task for this task shape, measured directly: as many no-op tasks as cells, each given the shared
price frames by object reference and returning a small dict, timed wall-clock × slots ÷ tasks.
Both runs must give identical results (every column but timings and the worker); the script checks
it. ``worst_mpc_flex_capture`` is the lowest flexibility capture of an ``mpc`` cell.

Usage: ``python benchmarks/sweep.py [--workers N] [--json OUT]``. Exits 2 when the real data
folder is absent (set ``DRAKEWELL_DATA_DIR``), 1 when a target is missed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SPEC = Path(__file__).resolve().parents[1] / "examples" / "sweeps" / "hashprice-zones.toml"
SPEEDUP_GOAL = 1.7
TIMING_COLUMNS = ("worker", "task_seconds", "solve_seconds")


def _noop(frames: Any) -> dict[str, int]:
    return {"rows": len(frames.rt)}


def measure_overhead(frames: Any, tasks: int, slots: int) -> float:
    """Ray's cost per task in ms: no-op tasks that take the price frames by reference."""
    import ray

    remote = ray.remote(num_cpus=1, max_retries=0)(_noop)
    ref = ray.put(frames)
    ray.get([remote.remote(ref) for _ in range(slots)])  # workers up, as in the sweep
    t0 = time.perf_counter()
    ray.get([remote.remote(ref) for _ in range(tasks)])
    return (time.perf_counter() - t0) * slots / tasks * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--workers", type=int, default=2, help="Ray CPUs (default 2)")
    args = parser.parse_args(argv)

    from drakewell.core.config import DATA_DIR_ENV, data_dir
    from drakewell.core.errors import DrakewellError
    from drakewell.sweep import RayExecutor, SerialExecutor, load_spec, run_sweep

    try:
        spec = load_spec(SPEC)
    except DrakewellError as exc:
        where = f"{data_dir()} ({DATA_DIR_ENV})"
        print(f"{exc} — this benchmark runs on the real data under {where}", file=sys.stderr)
        return 2
    print(f"SPEC {SPEC.name}: {spec.n_cells} cells; machine {platform.machine()}, {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        serial = run_sweep(spec, Path(tmp) / "serial", SerialExecutor(), report=False).results
        serial_s = time.perf_counter() - t0
        print(f"serial (anchor): {serial_s:,.1f} s")

        t0 = time.perf_counter()
        executor = RayExecutor(workers=args.workers, object_store_mb=200)
        init_s = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            on_ray = run_sweep(spec, Path(tmp) / "ray", executor, report=False).results
            ray_s = time.perf_counter() - t0
            from drakewell.inputs.prices import load_ercot_prices
            from drakewell.sweep.task import PriceFrames

            source = spec.price_sources()[0]
            frames = PriceFrames(load_ercot_prices(source.rt_path), None)
            overhead_ms = measure_overhead(frames, spec.n_cells, executor.slots)
        finally:
            executor.close()
    print(f"ray ({args.workers} workers): {ray_s:,.1f} s (Ray start-up {init_s:,.1f} s, not included)")

    keep = [c for c in serial.columns if c not in TIMING_COLUMNS]
    identical = serial[keep].equals(on_ray[keep])
    if not identical:
        differ = [c for c in keep if c not in on_ray.columns or not serial[c].equals(on_ray[c])]
        print(f"serial and Ray results differ in: {', '.join(differ)}")
    failed = int((on_ray["status"] != "ok").sum()) + int((serial["status"] != "ok").sum())
    mpc = on_ray[on_ray["policy"] == "mpc"]
    worst = float(mpc["flex_capture"].min())
    worst_row = mpc.loc[mpc["flex_capture"].idxmin()]
    speedup = serial_s / ray_s
    figures = {
        "cells": spec.n_cells,
        "serial_s": round(serial_s, 3),
        "ray_s": round(ray_s, 3),
        "speedup": round(speedup, 3),
        "overhead_ms_per_task": round(overhead_ms, 3),
        "worst_mpc_flex_capture": round(worst, 4),
    }
    print(f"speed-up: {speedup:.2f}× over serial (goal ≥ {SPEEDUP_GOAL}× on 2 cores)")
    print(f"Ray overhead: {overhead_ms:.1f} ms per task")
    print(
        f"worst mpc flexibility capture: {worst:.4f} "
        f"(zone {worst_row['zone']}, hashprice {worst_row['hashprice_usd_per_ph_day']:g} USD/PH/day)"
    )
    checks = {
        f"speedup>={SPEEDUP_GOAL}": speedup >= SPEEDUP_GOAL,
        "serial==ray": identical,
        "no_failed_cells": failed == 0,
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'MISS'} {name}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
