"""Sweeps on a local Ray: the same cells give the same results as the serial run, a worker killed in
the middle of a task loses no cell, and the ``drakewell sweep`` command runs end to end."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from drakewell.sweep import RayExecutor, SerialExecutor, run_sweep

pytestmark = pytest.mark.slow  # a local Ray takes seconds to start on a shared 2-core machine


def _descendants(root: int) -> list[int]:
    """Process ids below ``root`` (Linux /proc): the raylet and the workers this test started."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _running_cell_worker() -> int | None:
    """A worker process of this test executing a sweep cell now (its title is the task's name)."""
    for pid in _descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                title = handle.read().replace(b"\0", b" ")
        except OSError:
            continue
        if title.startswith(b"ray::_run_on_worker"):
            return pid
    return None


def test_ray_and_serial_runs_give_identical_results(local_ray, make_spec, comparable, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(
        axes={
            "zone": ["LZ_WEST", "LZ_NORTH"],
            "hashprice_usd_per_ph_day": [30, 60],
            "policy": ["mpc", "threshold"],
        }
    )
    serial = run_sweep(spec, tmp_path / "serial", SerialExecutor(), report=False).results
    executor = RayExecutor()
    on_ray = run_sweep(spec, tmp_path / "ray", executor, report=False).results
    executor.close()
    assert local_ray.is_initialized()  # the executor leaves a Ray it did not start running
    assert set(on_ray["worker"]) == {local_ray.get_runtime_context().get_node_id()}
    pd.testing.assert_frame_equal(comparable(on_ray), comparable(serial), check_exact=True)


def test_a_worker_killed_mid_sweep_loses_no_cell(local_ray, make_spec, comparable, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(axes={"hashprice_usd_per_ph_day": [30, 45, 60, 80]}, sweep={"policy": "mpc"})
    killed: list[int] = []
    done = threading.Event()

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline:
            pid = _running_cell_worker()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    executor = RayExecutor()
    try:
        outcome = run_sweep(spec, tmp_path, executor, report=False)
    finally:
        done.set()
        killer.join(timeout=5)
        executor.close()
    assert len(killed) == 1, "no worker was caught running a cell"
    frame = outcome.results
    assert len(frame) == 4 and set(frame["status"]) == {"ok"}
    assert sorted(frame["attempts"]) == [1, 1, 1, 2]  # the killed cell ran again
    serial = run_sweep(spec, tmp_path / "serial", SerialExecutor(), report=False).results
    pd.testing.assert_frame_equal(
        comparable(frame).drop(columns="attempts"),
        comparable(serial).drop(columns="attempts"),
        check_exact=True,
    )


def test_the_sweep_command_runs_on_ray_and_resumes(local_ray, prices_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from drakewell.cli import app

    site = Path(__file__).resolve().parents[2] / "examples" / "sites" / "small-index.toml"
    spec = tmp_path / "spec.toml"
    rt, da = prices_dir / "rt.csv", prices_dir / "da.csv"
    spec.write_text(
        f'[sweep]\nsite = "{site}"\nprices = "{rt}"\nforecast = "{da}"\n'
        '[axes]\nhashprice_usd_per_ph_day = [30, 60]\npolicy = ["mpc", "threshold"]\n'
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "worst mpc flexibility capture" in result.output
    assert (out / "results.parquet").is_file() and (out / "report.html").is_file()
    assert len(pd.read_parquet(out / "results.parquet")) == 4
    again = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert re.search(r"already in the results\W+4\b", again.output), again.output
