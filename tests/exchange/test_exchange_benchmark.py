"""The benchmark script runs end to end on a small workload and writes every documented key
(its speed targets are checked by the script itself, never here), and its workload is the same
on any date: the contracts come from the clock it is given."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from exchange_helpers import CLOCK_DATES

from drakewell.exchange.instruments import parse_instrument

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_exchange", ROOT / "benchmarks" / "exchange.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_workload_is_the_same_on_any_date() -> None:
    bench = _bench()
    shapes = []
    for now_s in CLOCK_DATES.values():
        instruments = bench.instruments_for(now_s)
        assert len(instruments) == 4
        assert min(parse_instrument(i).start_s for i in instruments) == (now_s // 86400 + 1) * 86400
        events = bench.generate(2000, 11, instruments)  # raises if any command is refused
        engine = bench.setup_engine(instruments)
        engine.close_started(now_s)  # what a server on this clock does first: nothing closes
        assert bench.run_engine(events, engine) > 0
        index = {iid: k for k, iid in enumerate(instruments)}
        shapes.append([(ev[0], ev[1], index.get(ev[2], ev[2]), *ev[3:]) for ev in events])
        assert len(engine.trades) > 0
    assert shapes[0] == shapes[1] == shapes[2]


@pytest.mark.slow
@pytest.mark.parametrize("when", list(CLOCK_DATES), ids=list(CLOCK_DATES))
def test_benchmark_writes_its_figures(tmp_path: Path, when: str) -> None:
    out = tmp_path / "bench.json"
    now = [] if when == "today" else ["--now", datetime.fromtimestamp(CLOCK_DATES[when], UTC).isoformat()]
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "exchange.py"),
            "--events",
            "3000",
            "--rest-orders",
            "40",
            "--json",
            str(out),
            *now,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1 = a target missed on this machine, still a result
    figures = json.loads(out.read_text())
    for key in ("events_per_s", "p99_us", "events_per_s_journal", "rest_orders_per_s"):
        assert figures[key] > 0, key
    assert figures["events"] == 3000
    assert "ratio to anchor 137,000" in proc.stdout
