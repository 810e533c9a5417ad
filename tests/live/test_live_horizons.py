"""A live run restarted in its second horizon decides exactly as an uninterrupted one: the mining level,
the mining held off (minimum off time), the 4CP peaks and the events of the first horizon survive."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from live_helpers import SITE_FILE

from drakewell.core.jsontypes import JsonObject
from drakewell.dispatch.backtest import resolve_site
from drakewell.dispatch.inputs import build_inputs
from drakewell.dispatch.policies import MpcPlanner, MpcPolicy
from drakewell.inputs.synthetic import synthetic_inputs
from drakewell.live.config import OpenAdrConfig
from drakewell.live.controller import Controller
from drakewell.live.journal import read_journal
from drakewell.live.service import RunOptions, run_site
from drakewell.live.signals import DrEvent, ReplayClock

# a Tuesday in August, 15:00 CDT: every interval is in the 4CP window
START = pd.Timestamp("2024-08-06T20:00", tz="UTC")
STEP = pd.Timedelta(minutes=15)
SPEED = 600.0  # one 15-minute interval per 1.5 wall seconds
SPIKE = START + 2 * STEP  # the first horizon's last interval: mining stops


def _site(tmp_path: Path) -> Path:
    """The emulated site with a slow ramp, 45 minutes minimum off time and a VTN (played by a fake)."""
    text = SITE_FILE.read_text().replace("port = 9109", "port = 0")
    text = text.replace("ramp_mw_per_interval = 0.7", "ramp_mw_per_interval = 0.2")
    text = text.replace("min_off_minutes = 0", "min_off_minutes = 45")
    text = text.replace(
        "[live]\n",
        "[live]\nhashprice_usd_per_ph_day = 55.0\nprice_poll_s = 0.05\n",
    )
    text += (
        '\n[live.openadr]\nvtn_url = "http://127.0.0.1:1/OpenADR2/Simple/2.0b"\npayment_usd_per_mwh = 500.0\n'
    )
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def fetch_rt(a: pd.Timestamp, b: pd.Timestamp) -> pd.DataFrame:
    index = pd.date_range(a.floor("15min"), b, freq="15min", name="interval_start_utc")
    return pd.DataFrame({"LZ_WEST": np.where(index == SPIKE, 500.0, 20.0)}, index=index)


def fetch_da(a: pd.Timestamp, b: pd.Timestamp) -> pd.DataFrame:
    index = pd.date_range(a.floor("h"), b, freq="h", name="interval_start_utc")
    return pd.DataFrame({"LZ_WEST": np.full(len(index), 30.0)}, index=index)


class FakeVen:
    """Stands in for the OpenADR VEN: always reachable; hands over the events queued in ``DELIVER``
    (a LOAD_DISPATCH setpoint 0.3 s after start, lasting about one interval)."""

    DELIVER: ClassVar[list[float]] = []  # target MW of the events to send, one run each

    def __init__(
        self, config: OpenAdrConfig, on_event: Callable[[DrEvent], Awaitable[str]], power: Callable[[], float]
    ) -> None:
        self.on_event = on_event
        self.task: asyncio.Task[None] | None = None
        self.answers: list[str] = []

    def reachable(self, now_s: float | None = None) -> bool:
        return True

    async def start(self) -> None:
        if self.DELIVER:
            self.task = asyncio.create_task(self._send(self.DELIVER.pop(0)))

    async def _send(self, target_mw: float) -> None:
        await asyncio.sleep(0.3)
        now = datetime.now(UTC)
        wall_interval = STEP.total_seconds() / SPEED
        event = DrEvent(
            "EV-H1",
            0,
            "LOAD_DISPATCH",
            "setpoint",
            target_mw,
            now + timedelta(seconds=0.5 * wall_interval),
            now + timedelta(seconds=1.2 * wall_interval),
        )
        self.answers.append(await self.on_event(event))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


def _run(site: Path, journal: Path, start: pd.Timestamp, wall_s: float) -> JsonObject:
    options = RunOptions(prices="gridstatus", hours=0.75, max_wall_s=wall_s)  # three intervals a horizon
    clock = ReplayClock(start, speed=SPEED)
    return asyncio.run(
        run_site(site, journal, options, live_clock=clock, fetch_rt=fetch_rt, fetch_da=fetch_da)
    )


def _horizons(records: list[JsonObject]) -> list[list[JsonObject]]:
    out: list[list[JsonObject]] = []
    for r in records:
        if r["kind"] == "start":
            out.append([])
        if out:
            out[-1].append(r)
    return out


def _decisions(records: list[JsonObject]) -> dict[int, JsonObject]:
    """The committed decision of every interval (the last one journalled for it)."""
    return {r["step"]["t"]: {**r["step"], "price": r["price"]} for r in records if r["kind"] == "decision"}


def _commands(records: list[JsonObject]) -> list[tuple[int, float]]:
    return [(r["t"], r["mining_mw"]) for r in records if r["kind"] == "command"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("horizons")
    site = _site(tmp)
    journal = tmp / "uninterrupted.jsonl"
    mp = pytest.MonkeyPatch()
    mp.setattr("drakewell.live.service.Ven", FakeVen)
    FakeVen.DELIVER[:] = [0.3]
    try:
        summary = _run(site, journal, START, 6 * 1.5 + 1.0)  # two horizons and a bit of the third
    finally:
        mp.undo()
    records = read_journal(journal)
    return {"site": site, "records": records, "summary": summary}


def test_the_uninterrupted_run_carries_its_first_horizon_into_the_second(
    uninterrupted: dict[str, Any],
) -> None:
    h1, h2 = _horizons(uninterrupted["records"])[:2]
    d1, d2 = _decisions(h1), _decisions(h2)
    assert sorted(d1) == sorted(d2) == [0, 1, 2]
    assert [d1[t]["price"] for t in range(3)] == [20.0, 20.0, 500.0]
    assert d1[2]["mining_mw"] == pytest.approx(0.0, abs=1e-6)  # the spike stops mining
    # the first horizon's event was opted into and capped its intervals
    events = [r for r in h1 if r["kind"] == "event"]
    assert len(events) == 1 and events[0]["opt"] == "optIn"
    assert any(r["cap_mw"] == pytest.approx(0.3) for r in h1 if r["kind"] == "decision")
    end = next(r for r in h1 if r["kind"] == "end")
    carry = h2[0]["carry"]
    assert carry == end["carry"] and carry["m_prev"] == pytest.approx(0.0, abs=1e-6)
    assert carry["recent"][0] > 0.1 and carry["best"]  # mining held off; August's 4CP peak so far
    assert max(carry["best"].values()) == 500.0
    # the window peaks a running peak's chance is judged by travel too: today's so far, none before
    assert carry["today_peak"] == 500.0 and carry["peak_day"] is not None and carry["day_peaks"] == []
    # the second horizon ramps back up from zero (0.2 MW an interval at most), not from full power
    mining = [0.0] + [d2[t]["mining_mw"] for t in range(3)]
    assert all(b - a <= 0.2 + 1e-6 for a, b in itertools.pairwise(mining))
    assert mining[-1] > mining[1] > 0.0


@pytest.mark.parametrize("cut", ["between horizons", "after a decision", "after a command"])
def test_a_restart_in_the_second_horizon_decides_as_the_uninterrupted_run(
    uninterrupted: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: str
) -> None:
    records: list[JsonObject] = uninterrupted["records"]
    second = [i for i, r in enumerate(records) if r["kind"] == "start"][1]
    if cut == "between horizons":  # killed after the first horizon's end, before the next started
        keep = second
    else:  # killed in the second horizon's first interval
        kind = "decision" if cut == "after a decision" else "result"
        keep = next(i for i in range(second, len(records)) if records[i]["kind"] == kind) + 1
    journal = tmp_path / "restarted.jsonl"
    journal.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records[:keep]))
    at = next(r["at"] for r in reversed(records[:keep]) if "at" in r)
    monkeypatch.setattr("drakewell.live.service.Ven", FakeVen)
    FakeVen.DELIVER[:] = []  # the VTN sends nothing new
    summary = _run(uninterrupted["site"], journal, pd.Timestamp(at), 3 * 1.5 + 1.0)

    restarted = read_journal(journal)
    assert restarted[:keep] == records[:keep]
    want, got = _horizons(records)[1], _horizons(restarted)[1]
    assert got[0] == want[0]  # the same horizon, started from the same carried state
    assert _decisions(got) == _decisions(want)
    # every interval commanded once, as uninterrupted; nothing re-sent
    assert _commands(got) == _commands(want)
    assert not any("resend_of" in r for r in got if r["kind"] == "command")
    seqs = [r["seq"] for r in restarted if r["kind"] == "command"]
    assert len(seqs) == len(set(seqs))
    # the first horizon's event is still known, settled as it was
    known = {e["event_id"]: e for e in summary["events"]}
    h1_result = next(r for r in records if r["kind"] == "event_result")
    assert known["EV-H1"]["opt"] == "optIn"
    assert known["EV-H1"]["mwh_short"] == pytest.approx(h1_result["mwh_short"])
    assert known["EV-H1"]["obeyed"] == h1_result["obeyed"]


def test_the_carried_state_restores_the_4cp_day_peaks() -> None:
    syn = synthetic_inputs("2023-08-07", 3, seed=2)  # Monday to Wednesday
    inputs = build_inputs(resolve_site(None), syn.rt, syn.da, syn.hashprice, "LZ_WEST")
    planner = MpcPlanner(MpcPolicy(), inputs)
    for t in range(inputs.n):
        planner.commit(planner.decide(t))
    assert len(planner.day_peaks) == 2 and planner.peak_day is not None  # three weekdays of windows
    carry = json.loads(json.dumps(Controller.carried(SimpleNamespace(planner=planner))))  # type: ignore[arg-type]
    fresh = MpcPlanner(MpcPolicy(), inputs)
    Controller._take_carry(SimpleNamespace(planner=fresh), carry)  # type: ignore[arg-type]
    assert (fresh.day_peaks, fresh.peak_day, fresh.today_peak, fresh.best) == (
        planner.day_peaks,
        planner.peak_day,
        planner.today_peak,
        planner.best,
    )
    old = {k: v for k, v in carry.items() if k not in ("day_peaks", "peak_day", "today_peak")}
    older = MpcPlanner(MpcPolicy(), inputs)
    Controller._take_carry(SimpleNamespace(planner=older), old)  # type: ignore[arg-type]
    assert older.day_peaks == [] and older.best == planner.best  # a journal from before peaks travelled
