"""``drakewell fleet …`` and ``drakewell emulate miners`` end to end (emulator on loopback)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drakewell.cli import app
from drakewell.fleet import FleetError
from drakewell.fleet.emulator import EmulatedFleet, EmulatorConfig

pytest.importorskip("pyasic")
runner = CliRunner()


@pytest.fixture
def emulated() -> Iterator[EmulatedFleet]:
    """Four emulated miners served from a background thread's own event loop."""
    fleet = EmulatedFleet(EmulatorConfig(count=4, first_ip="127.13.20.1", ramp_s=0.3))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        async with fleet:
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10)
    yield fleet
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text('[[miner_ranges]]\nfirst_ip = "127.13.20.1"\ncount = 4\nmodel = "M30S+"\n')
    return path


def test_status_reads_every_miner(emulated: EmulatedFleet, inventory: Path, tmp_path: Path) -> None:
    out = tmp_path / "status.json"
    result = runner.invoke(app, ["fleet", "status", "--inventory", str(inventory), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "4/4 reachable" in result.output
    rows = json.loads(out.read_text())
    assert [r["power_w"] for r in rows] == [3400.0] * 4 and all(r["mining"] for r in rows)


def test_set_is_a_dry_run_unless_told_to_apply(
    emulated: EmulatedFleet, inventory: Path, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.json"
    dry = runner.invoke(
        app, ["fleet", "set", "--inventory", str(inventory), "--mining-mw", "0.0034", "--json", str(plan)]
    )
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing sent" in dry.output
    assert not any(c.startswith("priv:") for m in emulated.miners.values() for c in m.commands)
    assert sorted(o["command"] for o in json.loads(plan.read_text())) == ["limit", "sleep", "sleep", "sleep"]

    done = tmp_path / "done.json"
    applied = runner.invoke(
        app,
        [
            "fleet",
            "set",
            "--inventory",
            str(inventory),
            "--mining-mw",
            "0.0034",
            "--apply",
            "--json",
            str(done),
        ],
    )
    assert applied.exit_code == 0, applied.output
    report = json.loads(done.read_text())
    assert report["reached"] and report["outcomes"]["obeyed"] == 4
    assert sum(not m.mining for m in emulated.miners.values()) == 3


def test_set_needs_a_target(inventory: Path) -> None:
    result = runner.invoke(app, ["fleet", "set", "--inventory", str(inventory)])
    assert isinstance(result.exception, FleetError) and "no target" in str(result.exception)


def test_scan_refuses_a_bad_or_huge_subnet() -> None:
    bad = runner.invoke(app, ["fleet", "scan", "10.0.0.0/33"])
    assert isinstance(bad.exception, FleetError) and "not a subnet" in str(bad.exception)
    huge = runner.invoke(app, ["fleet", "scan", "10.0.0.0/16"])
    assert isinstance(huge.exception, FleetError) and "at most 4096" in str(huge.exception)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--first-ip", "10.0.0.1"], "loopback"),
        (["--dead", "0.7", "--slow", "0.7"], "add up to"),
        (["--model", "X9000V10"], "not in the hardware catalogue"),
        (["--count", "0"], "at least 1"),
    ],
)
def test_emulator_rejects_bad_settings(args: list[str], match: str) -> None:
    result = runner.invoke(app, ["emulate", "miners", "--duration-s", "0.1", *args])
    assert isinstance(result.exception, FleetError) and match in str(result.exception)


def test_emulator_runs_for_its_duration_and_stops() -> None:
    result = runner.invoke(
        app,
        [
            "emulate",
            "miners",
            "--count",
            "2",
            "--first-ip",
            "127.13.21.1",
            "--duration-s",
            "0.3",
            "--dead",
            "0.5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ready" in result.output and "dead 1" in result.output
