"""A replayed real ERCOT day makes exactly the backtest's mpc decisions (unpaced and at 96×), and a
controller killed with SIGKILL midway resumes from its journal without commanding an interval twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from drakewell.dispatch.backtest import backtest_inputs
from drakewell.live.controller import step_from_json
from drakewell.live.journal import read_journal
from drakewell.live.service import RunOptions, replay_inputs, run_site

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "examples/sites/west-texas-hybrid.toml"
DAY = "2023-08-10T05:00"  # a hot August weekday: 4CP window, high prices


def _files(shared_data: Path) -> tuple[Path, Path]:
    return (
        shared_data / "ercot/ercot_rtm_spp_2023-07_09.csv",
        shared_data / "ercot/ercot_dam_spp_2023-07_09.csv",
    )


def _journal_decisions(path: Path) -> dict[int, dict]:
    last: dict[int, dict] = {}
    for r in read_journal(path):
        if r["kind"] == "decision":
            last[int(r["step"]["t"])] = r["step"]
    return last


def _assert_equal_to_backtest(shared_data: Path, journal: Path, intervals: int) -> None:
    rt, da = _files(shared_data)
    inputs, _ = replay_inputs(SITE, rt, da, zone="LZ_WEST", start=DAY, intervals=intervals)
    expected = backtest_inputs(inputs, ["mpc"])[0].decisions
    got = _journal_decisions(journal)
    assert sorted(got) == list(range(intervals))
    steps = [step_from_json(got[t]) for t in range(intervals)]
    np.testing.assert_array_equal([s.mining_mw for s in steps], expected.mining_mw)
    np.testing.assert_array_equal([s.inference_mw for s in steps], expected.inference_mw)
    np.testing.assert_array_equal([s.spot_mw for s in steps], expected.spot_mw)
    np.testing.assert_array_equal([s.training_mw for s in steps], expected.training_mw)
    np.testing.assert_array_equal([s.reserve_mw for s in steps], expected.reserve_mw)


def test_a_replayed_real_day_makes_exactly_the_backtests_decisions(shared_data: Path, tmp_path: Path) -> None:
    rt, da = _files(shared_data)
    journal = tmp_path / "day.jsonl"
    options = RunOptions(
        prices=f"replay:{rt}", forecast=str(da), speed=0, zone="LZ_WEST", start=DAY, intervals=96
    )
    summary = asyncio.run(run_site(SITE, journal, options))
    assert summary["finished"] and summary["intervals_decided"] == 96
    assert summary["safe_mode_entries"] == 0
    assert summary["decision_p99_ms"] is not None  # its speed goal is benchmarks/live.py's
    _assert_equal_to_backtest(shared_data, journal, 96)
    # every decision was commanded once (a dry run journals the command and its result)
    records = read_journal(journal)
    assert sum(r["kind"] == "command" for r in records) == 96
    assert records[-1]["kind"] == "end"


@pytest.mark.slow
def test_a_replay_at_96x_is_paced_and_decides_like_the_backtest(shared_data: Path, tmp_path: Path) -> None:
    rt, da = _files(shared_data)
    journal = tmp_path / "paced.jsonl"
    options = RunOptions(
        prices=f"replay:{rt}", forecast=str(da), speed=96, zone="LZ_WEST", start=DAY, intervals=3
    )
    t0 = time.monotonic()
    summary = asyncio.run(run_site(SITE, journal, options))
    wall = time.monotonic() - t0
    assert summary["finished"]
    # 3 intervals of 15 min at 96× take 3 × 9.375 s of wall time
    assert 3 * 9.375 - 1.0 <= wall <= 3 * 9.375 + 10.0
    _assert_equal_to_backtest(shared_data, journal, 3)


def _run_cli(journal: Path, rt: Path, da: Path, intervals: int, speed: float) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "drakewell.cli",
        "site",
        "run",
        str(SITE),
        "--prices",
        f"replay:{rt}",
        "--forecast",
        str(da),
        "--speed",
        str(speed),
        "--zone",
        "LZ_WEST",
        "--start",
        DAY,
        "--intervals",
        str(intervals),
        "--journal",
        str(journal),
        "--max-wall-s",
        "120",
    ]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_kill_9_midway_then_resume_from_the_journal(shared_data: Path, tmp_path: Path) -> None:
    rt, da = _files(shared_data)
    journal = tmp_path / "killed.jsonl"
    n = 16
    proc = _run_cli(journal, rt, da, n, speed=1800.0)  # 0.5 s per interval
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(_journal_decisions(journal)) >= 6 if journal.exists() else False:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    before = _journal_decisions(journal)
    assert 6 <= len(before) < n, "the kill did not land midway"
    # resume: the same command line, the same journal
    again = _run_cli(journal, rt, da, n, speed=1800.0)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err.decode()[-2000:]
    records = read_journal(journal)
    assert sum(r["kind"] == "start" for r in records) == 1
    assert records[-1]["kind"] == "end"
    _assert_equal_to_backtest(shared_data, journal, n)
    # intervals decided before the kill were not decided again, and no interval was commanded twice
    decided = [int(r["step"]["t"]) for r in records if r["kind"] == "decision"]
    assert len(decided) == len(set(decided)) == n
    commanded = [int(r["t"]) for r in records if r["kind"] == "command" and "resend_of" not in r]
    assert len(commanded) == len(set(commanded)) == n
    # the decisions from before the kill are the journal's, unchanged
    after = _journal_decisions(journal)
    assert all(after[t] == before[t] for t in before)
