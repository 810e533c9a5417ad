"""openleadr's own VTN on loopback, 200 emulated miners driven by real pyasic, and the controller:
the VTN sends LOAD_DISPATCH, measured site power drops below the target, the VTN sees the opt-in and
the powerReal telemetry."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from live_helpers import free_port, hand_inputs

from drakewell.fleet import ControlSettings, Fleet, parse_inventory
from drakewell.fleet.emulator import EmulatedFleet, EmulatorConfig, raise_open_file_limit
from drakewell.live.config import LiveConfig, OpenAdrConfig
from drakewell.live.controller import Controller
from drakewell.live.journal import Journal
from drakewell.live.metrics import LiveMetrics
from drakewell.live.signals import ReplayClock, ReplayPrices
from drakewell.live.ven import Ven

openleadr = pytest.importorskip("openleadr")
pytest.importorskip("pyasic")

pytestmark = pytest.mark.filterwarnings(
    "ignore:unclosed <StreamWriter:ResourceWarning",
    # openleadr 0.5.36 (and its aiohttp, apscheduler) warn about their own APIs; not ours to fix
    "ignore::DeprecationWarning",
    "ignore:It is recommended to use web.AppKey:UserWarning",
)

FIRST_IP = "127.14.1.1"
MINERS = 200
VEN_ID, REG_ID = "VEN-SITE-1", "REG-1"


@pytest.mark.slow
def test_vtn_load_dispatch_curtails_200_emulated_miners_below_target(live_site, tmp_path: Path) -> None:
    port = free_port()
    opts: list[tuple[str, str]] = []
    reports: list[tuple[float, float]] = []  # (monotonic, W)

    async def on_registration(info: dict[str, Any]) -> Any:
        return (VEN_ID, REG_ID) if info["ven_name"] == "emulated-site" else False

    async def on_update_report(data: list[Any], ven_id: str, resource_id: str) -> None:
        reports.extend((time.monotonic(), float(v)) for _, v in data)

    async def on_register_report(  # type: ignore[no-untyped-def]
        ven_id, resource_id, measurement, unit, scale, min_sampling_interval, max_sampling_interval
    ):
        return partial(on_update_report, ven_id=ven_id, resource_id=resource_id), timedelta(seconds=1)

    async def on_opt(ven_id: str, event_id: str, opt_type: str) -> None:
        opts.append((event_id, opt_type))

    async def scenario() -> None:
        raise_open_file_limit(4 * MINERS)
        vtn = openleadr.OpenADRServer(
            vtn_id="VTN-TEST", http_host="127.0.0.1", http_port=port, requested_poll_freq=timedelta(seconds=1)
        )
        vtn.add_handler("on_create_party_registration", on_registration)
        vtn.add_handler("on_register_report", on_register_report)
        await vtn.run()
        emu_config = EmulatorConfig(count=MINERS, first_ip=FIRST_IP, ramp_s=0.5)
        async with EmulatedFleet(emu_config) as emu:
            inventory = parse_inventory(
                {"miner_ranges": [{"first_ip": FIRST_IP, "count": MINERS, "model": "M30S+"}]}
            )
            settings = ControlSettings(first_readback_s=0.4, readback_interval_s=0.3, deadline_s=8.0)
            fleet = await Fleet.connect(inventory, settings=settings)
            assert len(fleet.snapshot().devices) == MINERS
            config = LiveConfig(
                openadr=OpenAdrConfig(
                    vtn_url=f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b",
                    ven_name="emulated-site",
                    poll_s=1.0,
                    payment_usd_per_mwh=500.0,
                )
            )
            inputs = hand_inputs(live_site, n=8, price=20.0)
            clock = ReplayClock(inputs.interval_start_utc[0], speed=96.0)
            prices = ReplayPrices(
                __import__("pandas").Series(inputs.price_usd_per_mwh, index=inputs.interval_start_utc), clock
            )
            metrics = LiveMetrics(fleet)
            controller = Controller(
                inputs,
                config,
                Journal(tmp_path / "journal.jsonl"),
                prices=prices,
                clock=clock,
                fleet=fleet,
                fleet_rated_mining_w=inventory.rated_mining_w,
                metrics=metrics,
            )
            ven = Ven(config.openadr, controller.on_event, lambda: controller.measured_facility_mw() * 1e6)
            await ven.start()
            task = asyncio.create_task(controller.run(max_wall_s=60.0, ven=ven))
            try:
                # registered, first interval decided and the fleet at full power
                for _ in range(200):
                    if controller.state.c >= 0 and ven.client is not None and ven.client.registration_id:
                        break
                    await asyncio.sleep(0.1)
                assert controller.state.current is not None
                assert controller.state.current.mining_mw == pytest.approx(0.68)
                full_w = sum(m.power_w() for m in emu.miners.values())
                assert full_w > 0.9 * MINERS * 3400
                target_mw = 0.3
                vtn.add_event(
                    ven_id=VEN_ID,
                    signal_name="LOAD_DISPATCH",
                    signal_type="setpoint",
                    intervals=[
                        {
                            "dtstart": datetime.now(UTC) + timedelta(seconds=2),
                            "duration": timedelta(seconds=60),
                            "signal_payload": target_mw,
                        }
                    ],
                    callback=on_opt,
                )
                sent = time.monotonic()
                for _ in range(300):
                    if any(r.verified_s is not None for r in controller.events.values()) and opts:
                        break
                    await asyncio.sleep(0.1)
                (rec,) = controller.events.values()
                assert rec.opt == "optIn" and rec.target_mw == pytest.approx(target_mw)
                assert rec.verified_s is not None, controller.journal.records[-5:]
                assert rec.verified_s > sent  # how fast is benchmarks/live.py's figure
                # what the miners really draw, by the emulator's physics, is below the target
                mining_w = sum(m.power_w() for m in emu.miners.values())
                ai_mw = controller.ai_facility_mw(controller.state.current)
                assert mining_w / 1e6 * live_site_pue(live_site) + ai_mw <= target_mw
                assert opts and opts[0][1] == "optIn"
                # the VTN hears powerReal telemetry, and the latest value is below the target
                await asyncio.sleep(2.5)
                assert reports, "no powerReal report reached the VTN"
                assert reports[-1][1] <= target_mw * 1e6
                text = metrics.text()
                assert "drakewell_live_dr_response_seconds_count 1.0" in text
                assert 'drakewell_live_setpoint_mw{class="mining"}' in text
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await ven.stop()
                await fleet.close()
                controller.journal.close()
        await vtn.stop()

    asyncio.run(scenario())


def live_site_pue(site) -> float:  # type: ignore[no-untyped-def]
    return next(h.pue for h in site.halls if h.name == "asic-hall")
