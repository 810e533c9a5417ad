"""Stale signals, safe mode, events remembered across a restart, and the signal adapters offline."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from live_helpers import free_port, hand_inputs

from drakewell.core.errors import InputDataError
from drakewell.inputs.prices import frame_from_gridstatus
from drakewell.live.config import LiveConfig, LiveError, OpenAdrConfig, parse_live_config
from drakewell.live.controller import Controller
from drakewell.live.journal import Journal, read_journal
from drakewell.live.signals import (
    DrEvent,
    GridstatusPrices,
    PriceTick,
    ReplayClock,
    ReplayPrices,
    WallClock,
    event_target_mw,
    event_value,
)


def _controller(site, tmp_path: Path, prices: pd.Series, speed: float, config: LiveConfig | None = None):  # type: ignore[no-untyped-def]
    inputs = hand_inputs(site, n=len(prices))
    clock = ReplayClock(inputs.interval_start_utc[0], speed=speed)
    return Controller(
        inputs,
        config or LiveConfig(),
        Journal(tmp_path / "journal.jsonl"),
        prices=ReplayPrices(prices, clock),
        clock=clock,
    )


def _series(site, n: int, missing: tuple[int, ...]) -> pd.Series:  # type: ignore[no-untyped-def]
    inputs = hand_inputs(site, n=n)
    values = inputs.price_usd_per_mwh.copy()
    values[list(missing)] = np.nan
    return pd.Series(values, index=inputs.interval_start_utc)


def test_no_price_for_two_intervals_runs_those_intervals_in_safe_mode(live_site, tmp_path: Path) -> None:
    c = _controller(live_site, tmp_path, _series(live_site, 8, (2, 3, 5)), speed=0)
    asyncio.run(c.run(max_wall_s=20))
    assert c.finished
    records = read_journal(tmp_path / "journal.jsonl")
    safe = [r for r in records if r["kind"] == "safe_mode"]
    assert [(r["on"], r["why"]) for r in safe] == [(True, "price"), (False, "price")]
    steps = {r["step"]["t"]: r for r in records if r["kind"] == "decision"}
    assert sorted(steps) == list(range(8))
    # two missing in a row: safe (miners asleep); a single missing price: the forecast stands in
    for t in (2, 3):
        assert not steps[t]["priced"] and steps[t]["step"]["mining_mw"] == 0.0
    assert not steps[5]["priced"] and steps[5]["step"]["mining_mw"] == pytest.approx(0.68)
    assert steps[4]["step"]["mining_mw"] > 0  # back to normal once prices return


@pytest.mark.slow
def test_prices_stop_in_real_time_and_the_watchdog_commands_safe_mode(live_site, tmp_path: Path) -> None:
    c = _controller(live_site, tmp_path, _series(live_site, 8, (2, 3, 4, 5)), speed=900.0)  # 1 s/interval
    asyncio.run(c.run(max_wall_s=30))
    records = read_journal(tmp_path / "journal.jsonl")
    kinds = [(r["kind"], r.get("on"), r.get("t")) for r in records]
    on = kinds.index(("safe_mode", True, None))
    resumed = next(i for i, r in enumerate(records) if r["kind"] == "decision" and r["step"]["t"] == 6)
    assert on < resumed, "safe mode must begin while prices are missing, not after they return"
    # the watchdog's own command: mining to the safe level (0 MW) while interval 1 is still open
    safe_cmds = [r for r in records[on:resumed] if r["kind"] == "command"]
    assert safe_cmds and safe_cmds[0]["mining_mw"] == 0.0 and safe_cmds[0]["t"] == 1


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning")
def test_an_unreachable_vtn_puts_the_site_in_safe_mode(live_site, tmp_path: Path) -> None:
    pytest.importorskip("openleadr")
    from drakewell.live.ven import Ven

    config = LiveConfig(
        openadr=OpenAdrConfig(
            vtn_url=f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b",
            poll_s=0.5,
            unreachable_after_s=0.5,
        )
    )
    c = _controller(live_site, tmp_path, _series(live_site, 8, ()), speed=96.0, config=config)

    async def scenario() -> None:
        assert config.openadr is not None
        ven = Ven(config.openadr, c.on_event, lambda: 0.0)
        await ven.start()
        try:
            await c.run(max_wall_s=4.0, ven=ven)
        finally:
            await ven.stop()

    asyncio.run(scenario())
    records = read_journal(tmp_path / "journal.jsonl")
    assert any(r["kind"] == "safe_mode" and r["on"] and r["why"] == "vtn" for r in records)
    assert [r for r in records if r["kind"] == "command"][-1]["mining_mw"] == 0.0


def _event(target_mw: float, *, minutes: int = 60, modification: int = 0) -> DrEvent:
    now = datetime.now(UTC)
    return DrEvent(
        "EV-1", modification, "LOAD_DISPATCH", "setpoint", target_mw, now, now + timedelta(minutes=minutes)
    )


def test_an_opted_in_event_survives_a_restart_and_a_resend_is_not_acted_on_twice(
    live_site, tmp_path: Path
) -> None:
    config = LiveConfig(openadr=OpenAdrConfig(vtn_url="http://127.0.0.1:1/x", payment_usd_per_mwh=500.0))
    prices = _series(live_site, 8, ())
    first = _controller(live_site, tmp_path, prices, speed=0, config=config)

    async def before_crash() -> str:
        await first._on_price(PriceTick(prices.index[0], float(prices.iloc[0])))
        opt = await first.on_event(_event(0.3))
        await first._on_event_act("EV-1")
        return opt

    assert asyncio.run(before_crash()) == "optIn"
    capped = first.state.current
    assert capped is not None and capped.mining_mw * 1.05 + first.ai_facility_mw(capped) <= 0.3 + 1e-9
    first.journal.close()  # (the process dies here; the journal is all that is left)

    second = _controller(live_site, tmp_path, prices, speed=0, config=config)
    assert second.events["EV-1"].opt == "optIn"
    assert second.inputs.emergency_cap_mw[0] == pytest.approx(0.3)
    assert second.state.current is not None and second.state.current.mining_mw == capped.mining_mw
    n_records = len(second.journal.records)
    assert asyncio.run(second.on_event(_event(0.3))) == "optIn"  # the VTN re-sends it
    assert len(second.journal.records) == n_records and second._queue.empty()
    # a modified event is a new decision
    assert asyncio.run(second.on_event(_event(0.5, modification=1))) == "optIn"
    assert len(second.journal.records) == n_records + 1


def test_an_event_journalled_but_not_yet_acted_on_is_acted_on_after_a_restart(
    live_site, tmp_path: Path
) -> None:
    config = LiveConfig(openadr=OpenAdrConfig(vtn_url="http://127.0.0.1:1/x", payment_usd_per_mwh=500.0))
    prices = _series(live_site, 8, ())
    first = _controller(live_site, tmp_path, prices, speed=0, config=config)

    async def before_crash() -> str:
        await first._on_price(PriceTick(prices.index[0], float(prices.iloc[0])))
        return await first.on_event(_event(0.3))  # journalled and answered; the process dies here

    assert asyncio.run(before_crash()) == "optIn"
    uncapped = first.state.current
    assert uncapped is not None and uncapped.mining_mw == pytest.approx(0.68)
    first.journal.close()

    second = _controller(live_site, tmp_path, prices, speed=0, config=config)
    assert not second.events["EV-1"].acted
    asyncio.run(second._check())  # the watchdog finds the event over the open interval
    capped = second.state.current
    assert capped is not None and capped.mining_mw * 1.05 + second.ai_facility_mw(capped) <= 0.3 + 1e-9
    records = second.journal.records
    assert [r["reason"] for r in records if r["kind"] == "decision"] == ["interval", "event:EV-1"]
    assert records[-2]["kind"] == "command" and records[-2]["mining_mw"] == capped.mining_mw
    n_records = len(records)
    third = _controller(live_site, tmp_path, prices, speed=0, config=config)  # and once more: acted
    assert third.events["EV-1"].acted
    asyncio.run(third._check())
    assert len(third.journal.records) == n_records


def test_an_event_not_worth_its_margin_is_declined_and_changes_nothing(live_site, tmp_path: Path) -> None:
    config = LiveConfig(openadr=OpenAdrConfig(vtn_url="http://127.0.0.1:1/x", payment_usd_per_mwh=0.0))
    prices = _series(live_site, 8, ())
    c = _controller(live_site, tmp_path, prices, speed=0, config=config)

    async def scenario() -> str:
        await c._on_price(PriceTick(prices.index[0], float(prices.iloc[0])))
        opt = await c.on_event(_event(0.3))
        await c._on_event_act("EV-1")
        return opt

    assert asyncio.run(scenario()) == "optOut"
    assert np.isinf(c.inputs.emergency_cap_mw).all()
    assert c.state.current is not None and c.state.current.mining_mw == pytest.approx(0.68)


def test_event_targets_and_value() -> None:
    cfg = OpenAdrConfig(vtn_url="http://x", simple_level_reduction_mw=(1.0, 2.0, 3.0))
    now = datetime.now(UTC)

    def ev(name: str, kind: str, value: float) -> DrEvent:
        return DrEvent("e", 0, name, kind, value, now, now + timedelta(hours=1))

    assert event_target_mw(ev("LOAD_DISPATCH", "setpoint", 4.0), cfg, 10.0) == 4.0
    assert event_target_mw(ev("LOAD_DISPATCH", "delta", 3.0), cfg, 10.0) == 7.0
    assert event_target_mw(ev("SIMPLE", "level", 2), cfg, 10.0) == 8.0
    assert event_target_mw(ev("SIMPLE", "level", 9), cfg, 10.0) == 7.0  # beyond the table: the deepest
    assert event_target_mw(ev("SIMPLE", "level", 0), cfg, 10.0) is None
    assert event_target_mw(ev("ELECTRICITY_PRICE", "price", 1.0), cfg, 10.0) is None
    common = dict(
        hours=1.0,
        price_usd_per_mwh=30.0,
        mining_facility_mw=5.0,
        ai_facility_mw=5.0,
        mining_revenue_usd_per_mwh=63.0,
        mining_pue=1.05,
        ai_revenue_usd_per_mwh=2000.0,
        ai_penalty_usd_per_mwh=0.0,
        ai_pue=1.25,
    )
    cheap = event_value(target_mw=6.0, payment_usd_per_mwh=40.0, **common)  # 4 MW of mining: $30/MWh margin
    assert cheap.shed_mw == 4.0 and cheap.margin_lost_usd == pytest.approx(120.0) and cheap.opt == "optIn"
    deep = event_value(target_mw=2.0, payment_usd_per_mwh=40.0, **common)  # reaches AI: declined
    assert deep.opt == "optOut"


def test_gridstatus_adapter_on_a_recorded_frame() -> None:
    starts = pd.date_range("2023-07-01T00:00", periods=4, freq="15min", tz="US/Central")
    raw = pd.DataFrame(
        [
            {"Interval Start": ts, "Location": loc, "Location Type": "Load Zone", "SPP": price + i}
            for i, ts in enumerate(starts)
            for loc, price in (("LZ_WEST", 20.0), ("LZ_NORTH", 30.0))
        ]
    )
    frame = frame_from_gridstatus(raw)
    source = GridstatusPrices("LZ_WEST", WallClock(), fetch=lambda a, b: frame)
    last = starts[-1].tz_convert("UTC")
    tick = source.latest(frame, last + pd.Timedelta(minutes=20))
    assert tick == PriceTick(last + pd.Timedelta(minutes=15), 23.0)  # the newest settled price stands in
    assert source.latest(frame, last + pd.Timedelta(minutes=46)) is None  # older than two intervals
    with pytest.raises(InputDataError, match="LZ_SOUTH"):  # a zone the report lacks: a clear error
        GridstatusPrices("LZ_SOUTH", WallClock()).latest(frame, last)


def test_gridstatus_source_yields_ticks_from_its_fetch(live_site) -> None:  # type: ignore[no-untyped-def]
    now = pd.Timestamp.now(tz="UTC").floor("15min")
    frame = pd.DataFrame({"LZ_WEST": [25.0]}, index=pd.DatetimeIndex([now - pd.Timedelta(minutes=15)]))
    source = GridstatusPrices("LZ_WEST", WallClock(), fetch=lambda a, b: frame, poll_s=0.01)

    async def first() -> PriceTick:
        async for tick in source.ticks():
            return tick
        raise AssertionError

    tick = asyncio.run(asyncio.wait_for(first(), 5))
    assert tick.interval_start_utc == now and tick.usd_per_mwh == 25.0


def test_journal_drops_a_torn_last_line_and_refuses_a_corrupt_one(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    j = Journal(path)
    j.append({"kind": "start", "n": 1})
    j.close()
    with path.open("ab") as fh:
        fh.write(b'{"kind": "decis')  # kill -9 mid-write
    assert read_journal(path) == [{"kind": "start", "n": 1}]
    j = Journal(path)
    j.append({"kind": "end"})
    j.close()
    assert [r["kind"] for r in read_journal(path)] == ["start", "end"]
    with path.open("ab") as fh:
        fh.write(b"not json\n")
    with pytest.raises(LiveError, match="not JSON"):
        read_journal(path)


def test_live_config_errors_name_the_key() -> None:
    with pytest.raises(LiveError, match=r"live\.stale_after_intervals"):
        parse_live_config({"stale_after_intervals": 0})
    with pytest.raises(LiveError, match="exactly one of endpoint"):
        parse_live_config({"meter": {"endpoint": "http://x", "store": "sqlite://"}})
    with pytest.raises(LiveError, match=r"live\.bogus"):
        parse_live_config({"bogus": 1})


def test_the_live_page_and_metrics_are_read_only(live_site, tmp_path: Path) -> None:
    import httpx

    pytest.importorskip("prometheus_client")
    from drakewell.live.metrics import LiveMetrics

    c = _controller(live_site, tmp_path, _series(live_site, 4, ()), speed=0)
    metrics = LiveMetrics()
    c.metrics = metrics
    asyncio.run(c.run(max_wall_s=10))
    server, thread = metrics.serve("127.0.0.1", 0, c.live_state)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        base = f"http://127.0.0.1:{port}"
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "Drakewell live site" in page.text
        state = httpx.get(base + "/state.json").json()
        assert [d["t"] for d in state["decisions"]] == [3, 2, 1, 0] and state["safe_mode"] == []
        assert [k["class"] for k in state["classes"]] == ["mining", "inference", "training", "spot"]
        assert all(k["measured_mw"] is None for k in state["classes"])  # a dry run reads nothing back
        text = httpx.get(base + "/metrics").text
        assert "drakewell_live_decision_seconds_count 4.0" in text
        before = len(c.journal.records)
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            for path in ("/", "/metrics", "/state.json", "/anything"):
                answer = httpx.request(method, base + path, content=b'{"mining_mw": 0}')
                assert answer.status_code == 405, (method, path)
                assert answer.headers["allow"] == "GET, HEAD"
        assert len(c.journal.records) == before  # nothing a caller sends changes the controller
        assert httpx.get(base + "/anything").status_code == 404
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_fleet_that_raises_is_journalled_and_the_loop_goes_on(live_site, tmp_path: Path) -> None:
    class BrokenFleet:
        inventory = type("Inv", (), {"gpus": ()})()
        calls = 0

        async def apply(self, setpoint, deadline_s=None):  # type: ignore[no-untyped-def]
            BrokenFleet.calls += 1
            raise RuntimeError("switch unreachable")

        def snapshot(self):  # type: ignore[no-untyped-def]
            return type("Snap", (), {"devices": (), "mining_power_w": 0.0, "hashrate_th_s": 0.0})()

        async def refresh(self):  # type: ignore[no-untyped-def]
            return self.snapshot()

    inputs = hand_inputs(live_site, n=3)
    clock = ReplayClock(inputs.interval_start_utc[0], speed=0)
    c = Controller(
        inputs,
        LiveConfig(),
        Journal(tmp_path / "journal.jsonl"),
        prices=ReplayPrices(pd.Series(inputs.price_usd_per_mwh, index=inputs.interval_start_utc), clock),
        clock=clock,
        fleet=BrokenFleet(),  # type: ignore[arg-type]
        fleet_rated_mining_w=680_000.0,
    )
    asyncio.run(c.run(max_wall_s=10))
    assert c.finished and BrokenFleet.calls == 3
    errors = [r for r in read_journal(tmp_path / "journal.jsonl") if r["kind"] == "result"]
    assert [r["error"] for r in errors] == ["switch unreachable"] * 3
