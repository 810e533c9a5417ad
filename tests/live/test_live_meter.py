"""Readings signed from measured telemetry: into a local meter store, or POSTed with a Bearer key."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest
from live_helpers import hand_inputs

from drakewell.core.jsontypes import JsonObject
from drakewell.fleet import ControlSettings, Fleet, parse_inventory
from drakewell.fleet.emulator import EmulatedFleet, EmulatorConfig
from drakewell.live.config import LiveConfig, LiveError, MeterConfig
from drakewell.live.controller import Controller
from drakewell.live.journal import Journal, read_journal
from drakewell.live.meter import IntervalMeter
from drakewell.live.signals import ReplayClock, ReplayPrices
from drakewell.metering.readings import SignedReading
from drakewell.metering.signing import NodeKey

KEY = NodeKey.from_hex("0x" + "11" * 32)


def test_each_interval_is_signed_from_the_read_back_power_and_ingested(
    live_site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyasic")
    monkeypatch.setenv("DRAKEWELL_NODE_KEY", KEY.hex)
    meter_cfg = MeterConfig(store=f"sqlite:///{tmp_path / 'meter.sqlite'}")
    first_ip, count = "127.14.2.1", 4

    async def scenario() -> tuple[Controller, IntervalMeter]:
        async with EmulatedFleet(EmulatorConfig(count=count, first_ip=first_ip, ramp_s=0.2)):
            inventory = parse_inventory(
                {"miner_ranges": [{"first_ip": first_ip, "count": count, "model": "M30S+"}]}
            )
            fleet = await Fleet.connect(inventory, settings=ControlSettings(first_readback_s=0.2))
            meter = IntervalMeter.from_config(meter_cfg, miners=count, miner_w=3400.0, miner_th_s=100.0)
            inputs = hand_inputs(live_site, n=3)
            clock = ReplayClock(inputs.interval_start_utc[0], speed=0)
            series = pd.Series(inputs.price_usd_per_mwh, index=inputs.interval_start_utc)
            c = Controller(
                inputs,
                LiveConfig(meter=meter_cfg),
                Journal(tmp_path / "j.jsonl"),
                prices=ReplayPrices(series, clock),
                clock=clock,
                fleet=fleet,
                fleet_rated_mining_w=inventory.rated_mining_w,
                meter=meter,
            )
            try:
                await c.run(max_wall_s=30)
            finally:
                await fleet.close()
            return c, meter

    c, meter = asyncio.run(scenario())
    meter.close()
    assert c.finished
    readings = [r for r in read_journal(tmp_path / "j.jsonl") if r["kind"] == "reading"]
    assert len(readings) == 3
    for r in readings:
        assert r["answer"]["accepted"] == 1, r["answer"]
        signed = SignedReading.from_json(r["reading"])
        assert signed.reading.node == KEY.address
        # full power all along: 4 × 3,400 W for 15 minutes = 3,400 Wh
        assert signed.reading.energy_wh == pytest.approx(3400, rel=0.02)
        assert signed.reading.window_end - signed.reading.window_start == 900


def test_readings_post_to_the_meter_api_with_a_bearer_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAKEWELL_NODE_KEY", KEY.hex)
    sent: dict[str, object] = {}

    class Answer:
        status_code = 200

        def json(self) -> JsonObject:
            return {"accepted": 1, "rejected": []}

    def fake_post(url: str, *, json: object, headers: dict[str, str], timeout: float) -> Answer:
        sent.update(url=url, json=json, headers=headers)
        return Answer()

    import httpx

    monkeypatch.setattr(httpx, "post", fake_post)
    cfg = MeterConfig(endpoint="http://127.0.0.1:8000/meter/readings")
    meter = IntervalMeter.from_config(cfg, miners=2, miner_w=3400.0, miner_th_s=100.0)
    signed = meter.reading(1_700_000_100, 1_700_001_000, [(6800.0, 200.0), (6000.0, 180.0)])
    assert signed is not None and signed.reading.energy_wh == round(6400 * 900 / 3600)
    monkeypatch.delenv("DRAKEWELL_METER_KEY", raising=False)
    with pytest.raises(LiveError, match="DRAKEWELL_METER_KEY"):
        meter.submit(signed)
    monkeypatch.setenv("DRAKEWELL_METER_KEY", "k-123")
    assert meter.submit(signed) == {"accepted": 1, "rejected": []}
    assert sent["headers"] == {"Authorization": "Bearer k-123"}
    assert sent["json"][0]["signature"].startswith("0x")


def test_no_node_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRAKEWELL_NODE_KEY", raising=False)
    with pytest.raises(LiveError, match="DRAKEWELL_NODE_KEY"):
        IntervalMeter.from_config(MeterConfig(store="sqlite://"), miners=1, miner_w=1.0, miner_th_s=1.0)


def test_gpu_roles_in_the_inventory_get_their_class_setpoints_and_are_measured(
    live_site, tmp_path: Path
) -> None:
    pytest.importorskip("prometheus_client")
    from drakewell.fleet import fake_nvml
    from drakewell.fleet.gpus import open_gpus
    from drakewell.live.metrics import LiveMetrics

    fake_nvml.configure([fake_nvml.FakeGpu(), fake_nvml.FakeGpu()])
    inventory = parse_inventory(
        {
            "gpus": [
                {"id": "g0", "index": 0, "model": "H100 PCIe", "role": "inference"},
                {"id": "g1", "index": 1, "model": "H100 PCIe", "role": "inference"},
            ]
        }
    )
    fast = ControlSettings(first_readback_s=0.0, readback_interval_s=0.01, deadline_s=2.0, call_timeout_s=0.2)

    async def scenario() -> tuple[Controller, LiveMetrics]:
        fleet = Fleet(inventory, gpus=dict(open_gpus(inventory.gpus, nvml=fake_nvml)), settings=fast)
        await fleet.refresh()
        inputs = hand_inputs(live_site, n=3)
        clock = ReplayClock(inputs.interval_start_utc[0], speed=0)
        metrics = LiveMetrics(fleet)
        c = Controller(
            inputs,
            LiveConfig(),
            Journal(tmp_path / "j.jsonl"),
            prices=ReplayPrices(pd.Series(inputs.price_usd_per_mwh, index=inputs.interval_start_utc), clock),
            clock=clock,
            fleet=fleet,
            fleet_rated_mining_w=inventory.rated_mining_w,
            metrics=metrics,
        )
        await c.run(max_wall_s=20)
        await fleet.close()
        return c, metrics

    c, metrics = asyncio.run(scenario())
    assert c.finished
    step = c.decisions()[0]
    # the inventory's two GPUs stand for the site's GPU hall: its inference MW scaled by rated power
    commands = [r for r in read_journal(tmp_path / "j.jsonl") if r["kind"] == "command"]
    assert commands[0]["ai_fleet_mw"]["inference"] == pytest.approx(step.inference_mw * c.gpu_scale)
    assert set(commands[0]["ai_fleet_mw"]) == {"inference"}  # no training or spot GPUs to command
    measured = c.measured_ai_mw()["inference"]
    assert measured == pytest.approx(step.inference_mw, rel=0.02)
    assert f'drakewell_live_measured_mw{{class="inference"}} {measured}' in metrics.text()
