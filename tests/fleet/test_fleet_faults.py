"""Fleet.apply against emulated miners driven by real pyasic, with dead, slow, refusing and stale ones."""

from __future__ import annotations

import asyncio

import pytest

from drakewell.fleet import ControlSettings, Fleet, Outcome, Setpoint, parse_inventory
from drakewell.fleet.devices import Command
from drakewell.fleet.emulator import EmulatedFleet, EmulatorConfig, Fault

pytest.importorskip("pyasic")

# pyasic does not close its connection when a deadline cancels a call to a slow miner; the socket is
# closed when collected, with a ResourceWarning that is pyasic's to fix, not a leak of the fleet's
pytestmark = pytest.mark.filterwarnings("ignore:unclosed <StreamWriter:ResourceWarning")

N = 20
RATED_W = 3400.0


def _inventory(first_ip: str, count: int = N):
    return parse_inventory({"miner_ranges": [{"first_ip": first_ip, "count": count, "model": "M30S+"}]})


@pytest.mark.slow
def test_curtailment_reaches_the_setpoint_around_dead_slow_refusing_and_stale_miners() -> None:
    config = EmulatorConfig(count=N, first_ip="127.13.10.1", ramp_s=0.5, slow_delay_s=2.5)
    # the deadline leaves room for a loaded machine (apply returns as soon as read-backs confirm)
    settings = ControlSettings(
        call_timeout_s=0.8,
        deadline_s=20.0,
        first_readback_s=0.3,
        readback_interval_s=0.3,
        confirm_grace_s=1.0,
    )

    async def scenario() -> None:
        async with EmulatedFleet(config) as emu:
            fleet = await Fleet.connect(_inventory("127.13.10.1"), settings=settings)
            assert fleet.snapshot().mining_power_w == N * RATED_W  # all healthy at first
            # 20 % of the fleet turns bad (10 % dead or slow, 10 % refusing or stale), among the miners
            # the plan will put to sleep (equal efficiency: the highest addresses sleep first)
            faulty = {
                "127.13.10.17": Fault.DEAD,
                "127.13.10.18": Fault.SLOW,
                "127.13.10.19": Fault.REFUSING,
                "127.13.10.20": Fault.STALE,
            }
            for ip, fault in faulty.items():
                emu.miners[ip].fault = fault
            await emu.activate_faults()
            target_w = 0.3 * N * RATED_W  # 20,400 W: the four faulty miners alone could draw 13,600 W

            result = await fleet.apply(Setpoint(mining_mw=target_w / 1e6))

            assert result.elapsed_s <= settings.deadline_s + 0.5
            assert result.curtailing and result.reached, [
                (a.device, a.command, a.outcome, a.detail) for a in result.failed
            ]
            assert result.mining_power_w <= target_w + 1000
            by_device = {a.device: a for a in result.accounts}
            expected = {
                Fault.DEAD: Outcome.UNREACHABLE,
                Fault.SLOW: Outcome.LATE,
                Fault.REFUSING: Outcome.REFUSED,
                Fault.STALE: Outcome.LATE,
            }
            for ip, fault in faulty.items():
                assert by_device[ip].outcome is expected[fault], (ip, fault, by_device[ip])
                # an unproven miner is counted at its last known draw: full power
                state = next(d for d in fleet.snapshot().devices if d.device == ip)
                assert state.power_w == RATED_W
            assert {a.device for a in result.failed} == set(faulty)
            # no retry storm: each faulty miner got one order and at most max_attempts tries of it
            for ip in faulty:
                assert by_device[ip].attempts <= settings.max_attempts
                privileged = [c for c in emu.miners[ip].commands if c.startswith("priv:")]
                assert len(privileged) <= settings.max_attempts
            assert all(a.outcome is Outcome.OBEYED for a in result.accounts if a.device not in faulty)

            # the slow miner carries out its commands after the deadline; the fleet's record stays put
            slow_ip = next(ip for ip, f in faulty.items() if f is Fault.SLOW)
            await asyncio.sleep(config.slow_delay_s + 0.7)
            assert emu.miners[slow_ip].mining is False  # it did obey, late
            state = next(d for d in fleet.snapshot().devices if d.device == slow_ip)
            assert state.reading is not None and state.reading.mining is True and state.power_w == RATED_W

    asyncio.run(scenario())


def test_raising_wakes_the_sleeping_miners_and_verifies_them() -> None:
    async def scenario() -> None:
        async with EmulatedFleet(EmulatorConfig(count=6, first_ip="127.13.11.1", ramp_s=0.4)) as emu:
            settings = ControlSettings(first_readback_s=0.2, readback_interval_s=0.2)
            fleet = await Fleet.connect(_inventory("127.13.11.1", 6), settings=settings)
            down = await fleet.apply(Setpoint(mining_mw=0.0))
            assert down.reached and all(a.command is Command.SLEEP for a in down.accounts)
            assert not any(m.mining for m in emu.miners.values())
            up = await fleet.apply(Setpoint(mining_mw=6 * RATED_W / 1e6))
            assert up.reached and not up.curtailing
            # every sleeper wakes (a miner read mid-ramp may be woken under a limit, then raised)
            assert Command.WAKE in {a.command for a in up.accounts}
            assert {a.command for a in up.accounts} <= {Command.WAKE, Command.LIMIT}
            assert all(a.outcome is Outcome.OBEYED for a in up.accounts)
            assert all(m.mining for m in emu.miners.values())

    asyncio.run(scenario())
