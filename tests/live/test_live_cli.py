"""``drakewell site run`` on a hand-made price file, the live (gridstatus) horizon offline, and the
restart path that finds a command without its result."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from live_helpers import SITE_FILE, hand_inputs, hand_prices
from typer.testing import CliRunner

from drakewell.cli import app
from drakewell.fleet import ControlSettings, Fleet, parse_inventory
from drakewell.fleet.emulator import EmulatedFleet, EmulatorConfig
from drakewell.inputs.prices import write_ercot_prices
from drakewell.live.config import LiveConfig, LiveError
from drakewell.live.controller import Controller
from drakewell.live.journal import Journal, read_journal
from drakewell.live.service import live_inputs
from drakewell.live.signals import PriceTick, ReplayClock, ReplayPrices


def _site(tmp_path: Path) -> Path:
    """The example site without a fixed /metrics port (tests may run side by side)."""
    path = tmp_path / "site.toml"
    path.write_text(SITE_FILE.read_text().replace("port = 9109", "port = 0"))
    return path


def _price_csv(tmp_path: Path, n: int = 6) -> Path:
    frame = hand_prices(n, 25.0)
    frame.iloc[3, 0] = 200.0  # one expensive interval: mining stops
    return write_ercot_prices(frame, tmp_path / "rt.csv")


def test_site_run_replays_a_price_file_and_resumes_a_finished_journal(tmp_path: Path) -> None:
    csv = _price_csv(tmp_path)
    journal = tmp_path / "run.jsonl"
    args = [
        "site",
        "run",
        str(_site(tmp_path)),
        "--prices",
        f"replay:{csv}",
        "--speed",
        "0",
        "--journal",
        str(journal),
    ]
    out = CliRunner().invoke(app, [*args, "--json", str(tmp_path / "s.json")])
    assert out.exit_code == 0, out.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["finished"] and summary["intervals_decided"] == 6 and summary["commands"] == 6
    decisions = [r for r in read_journal(journal) if r["kind"] == "decision"]
    assert [d["price"] for d in decisions] == [25.0, 25.0, 25.0, 200.0, 25.0, 25.0]
    assert decisions[3]["step"]["mining_mw"] == 0.0
    # running it again on the finished journal does nothing
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert sum(r["kind"] == "decision" for r in read_journal(journal)) == 6


def test_a_journal_of_another_horizon_is_refused(tmp_path: Path) -> None:
    csv = _price_csv(tmp_path)
    journal = tmp_path / "run.jsonl"
    Journal(journal).append({"kind": "start", "first": "2020-01-01T00:00:00+00:00", "n": 6, "hours": 0.25})
    out = CliRunner().invoke(
        app,
        [
            "site",
            "run",
            str(_site(tmp_path)),
            "--prices",
            f"replay:{csv}",
            "--speed",
            "0",
            "--journal",
            str(journal),
        ],
    )
    assert out.exit_code != 0 and isinstance(out.exception, LiveError)
    assert "another horizon" in str(out.exception)


def test_live_horizon_uses_day_ahead_prices_until_real_time_ones_arrive(live_site) -> None:  # type: ignore[no-untyped-def]
    now = pd.Timestamp("2024-05-02T17:07:00", tz="UTC")
    hours = pd.date_range("2024-05-01T00:00", periods=96, freq="h", tz="UTC", name="interval_start_utc")
    da = pd.DataFrame({"LZ_WEST": np.arange(96, dtype=float)}, index=hours)
    inputs = live_inputs(live_site, now=now, hours=6, hashprice_usd_per_ph_day=55.0, fetch_da=lambda a, b: da)
    assert inputs.n == 24 and inputs.interval_start_utc[0] == pd.Timestamp("2024-05-02T17:00", tz="UTC")
    hour_index = (inputs.interval_start_utc - hours[0]) // pd.Timedelta(hours=1)
    np.testing.assert_array_equal(inputs.forecast_usd_per_mwh, np.asarray(hour_index, dtype=float))


@pytest.mark.slow
def test_a_command_without_its_result_is_verified_by_read_back_not_resent(live_site, tmp_path: Path) -> None:
    pytest.importorskip("pyasic")
    first_ip, count = "127.14.4.1", 4
    inventory = parse_inventory({"miner_ranges": [{"first_ip": first_ip, "count": count, "model": "M30S+"}]})
    path = tmp_path / "j.jsonl"

    def controller(fleet: Fleet) -> Controller:
        inputs = hand_inputs(live_site, n=4)
        clock = ReplayClock(inputs.interval_start_utc[0], speed=0)
        series = pd.Series(inputs.price_usd_per_mwh, index=inputs.interval_start_utc)
        series.iloc[1:] = np.nan  # only the first price: the run stops after one interval
        return Controller(
            inputs,
            LiveConfig(),
            Journal(path),
            prices=ReplayPrices(series, clock),
            clock=clock,
            fleet=fleet,
            fleet_rated_mining_w=inventory.rated_mining_w,
        )

    async def scenario() -> list[dict]:
        async with EmulatedFleet(EmulatorConfig(count=count, first_ip=first_ip, ramp_s=0.2)) as emu:
            fleet = await Fleet.connect(inventory, settings=ControlSettings(first_readback_s=0.2))
            c = controller(fleet)
            await c._on_price(PriceTick(c.index[0], 20.0))
            # a crash after the command was journalled, before its result: the fleet is at target
            c.journal.close()  # (simulated: the file loses its last record, the result)
            lines = path.read_text().splitlines()
            path.write_text("\n".join(lines[:-1]) + "\n")
            sent_before = sum(len(m.commands) for m in emu.miners.values())
            again = controller(fleet)
            await again._finish_interrupted_command()
            # the same, but the fleet is no longer at the target: the command is sent once more
            again.journal.append(
                {"kind": "command", "seq": 99, "t": 0, "mining_mw": 0.34, "fleet_mw": 0.34 * again.scale}
            )
            await again._finish_interrupted_command()
            again.journal.close()
            await fleet.close()
            assert sum(len(m.commands) for m in emu.miners.values()) > sent_before
            return read_journal(path)

    records = asyncio.run(scenario())
    verified = [r for r in records if r["kind"] == "result" and r.get("after_restart")]
    assert len(verified) == 1 and verified[0]["seq"] == 1
    resent = [r for r in records if r["kind"] == "command" and r.get("resend_of") == 99]
    assert len(resent) == 1


def test_a_live_run_rolls_from_one_horizon_to_the_next(tmp_path: Path) -> None:
    from drakewell.live.service import RunOptions, run_site

    site = tmp_path / "site.toml"
    text = SITE_FILE.read_text().replace("port = 9109", "port = 0")
    site.write_text(
        text.replace("[live]\n", "[live]\nhashprice_usd_per_ph_day = 55.0\nprice_poll_s = 0.05\n")
    )
    start = pd.Timestamp("2024-05-02T17:00", tz="UTC")
    clock = ReplayClock(start, speed=900.0)  # an interval per wall second

    def fetch_rt(a: pd.Timestamp, b: pd.Timestamp) -> pd.DataFrame:
        index = pd.date_range(a.floor("15min"), b, freq="15min", name="interval_start_utc")
        return pd.DataFrame({"LZ_WEST": np.full(len(index), 20.0)}, index=index)

    def fetch_da(a: pd.Timestamp, b: pd.Timestamp) -> pd.DataFrame:
        index = pd.date_range(a.floor("h"), b, freq="h", name="interval_start_utc")
        return pd.DataFrame({"LZ_WEST": np.full(len(index), 30.0)}, index=index)

    options = RunOptions(prices="gridstatus", hours=0.5, max_wall_s=5.0)
    summary = asyncio.run(
        run_site(
            site, tmp_path / "live.jsonl", options, live_clock=clock, fetch_rt=fetch_rt, fetch_da=fetch_da
        )
    )
    assert summary["horizons"] >= 2
    records = read_journal(tmp_path / "live.jsonl")
    starts = [r for r in records if r["kind"] == "start"]
    assert len(starts) == summary["horizons"] and starts[0]["n"] == 2
    assert pd.Timestamp(starts[1]["first"]) >= start + pd.Timedelta(minutes=30)
    # the first horizon decided both its intervals on real-time prices ($20), not the forecast ($30)
    first = records[: records.index(starts[1])]
    assert [r["price"] for r in first if r["kind"] == "decision"] == [20.0, 20.0]
    assert sum(r["kind"] == "end" for r in first) == 1


def test_a_live_run_restarted_mid_horizon_resumes_that_horizon(tmp_path: Path) -> None:
    from drakewell.live.service import RunOptions, run_site

    site = tmp_path / "site.toml"
    text = SITE_FILE.read_text().replace("port = 9109", "port = 0")
    site.write_text(
        text.replace("[live]\n", "[live]\nhashprice_usd_per_ph_day = 55.0\nprice_poll_s = 0.05\n")
    )

    def fetch_rt(a: pd.Timestamp, b: pd.Timestamp) -> pd.DataFrame:
        index = pd.date_range(a.floor("15min"), b, freq="15min", name="interval_start_utc")
        return pd.DataFrame({"LZ_WEST": np.full(len(index), 20.0)}, index=index)

    def fetch_da(a: pd.Timestamp, b: pd.Timestamp) -> pd.DataFrame:
        index = pd.date_range(a.floor("h"), b, freq="h", name="interval_start_utc")
        return pd.DataFrame({"LZ_WEST": np.full(len(index), 30.0)}, index=index)

    journal = tmp_path / "live.jsonl"
    start = pd.Timestamp("2024-05-02T17:00", tz="UTC")

    def run(clock: ReplayClock, wall_s: float) -> dict:
        options = RunOptions(prices="gridstatus", hours=2.0, max_wall_s=wall_s)
        return asyncio.run(
            run_site(site, journal, options, live_clock=clock, fetch_rt=fetch_rt, fetch_da=fetch_da)
        )

    run(ReplayClock(start, speed=900.0), 2.5)  # stopped (as if killed) inside its 8-interval horizon
    decided = [r["step"]["t"] for r in read_journal(journal) if r["kind"] == "decision"]
    assert 1 <= len(decided) < 8
    # restarted 20 minutes of site time later: the open horizon goes on, it is not replaced
    run(ReplayClock(start + pd.Timedelta(minutes=20 + 15 * len(decided)), speed=900.0), 2.5)
    records = read_journal(journal)
    assert sum(r["kind"] == "start" for r in records) == 1
    ts = [r["step"]["t"] for r in records if r["kind"] == "decision"]
    assert ts == sorted(ts) and len(ts) == len(set(ts)) > len(decided)
