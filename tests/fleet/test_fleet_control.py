"""Fleet.apply with in-memory doubles: ramp limit, minimum off time, GPUs over fake NVML, jobs, telemetry."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from drakewell.fleet import (
    ControlSettings,
    Fleet,
    FleetError,
    GpuLibraryError,
    Inventory,
    Outcome,
    Setpoint,
    fake_nvml,
    parse_inventory,
)
from drakewell.fleet.devices import Command
from drakewell.fleet.gpus import open_gpus
from drakewell.fleet.jobs import MemoryJobHook
from drakewell.fleet.metrics import metrics_text, serve_metrics
from drakewell.fleet.miners import MemoryMinerDriver

FAST = ControlSettings(
    first_readback_s=0.0, readback_interval_s=0.01, retry_backoff_s=0.01, deadline_s=2.0, call_timeout_s=0.2
)


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def miner_fleet(n: int, limits: dict[str, Any] | None = None, **driver_kw: Any) -> tuple[Fleet, dict, Clock]:
    inv = parse_inventory(
        {"miner_ranges": [{"first_ip": "10.9.0.1", "count": n, "model": "M30S+"}], "limits": limits or {}}
    )
    drivers = {m.ip: MemoryMinerDriver(**driver_kw) for m in inv.miners}
    clock = Clock()
    return Fleet(inv, miners=drivers, settings=FAST, clock=clock), drivers, clock


def test_ramp_limit_moves_the_mining_target_at_most_the_bucket_and_refills_over_time() -> None:
    async def scenario() -> None:
        # 10 kW per 15-minute interval (IT)
        fleet, _drivers, clock = miner_fleet(10, {"ramp_mw_per_interval": 0.01, "interval_minutes": 15})
        await fleet.refresh()
        first = await fleet.apply(Setpoint(mining_mw=0.0))
        assert first.mining_target_w == pytest.approx(34_000 - 10_000)
        assert first.reached and first.mining_power_w <= 24_000 + 1000
        second = await fleet.apply(Setpoint(mining_mw=0.0))  # bucket empty: no move
        assert second.accounts == () and second.mining_target_w == pytest.approx(first.mining_power_w)
        clock.t += 450  # half an interval refills 5 kW
        third = await fleet.apply(Setpoint(mining_mw=0.0))
        assert third.mining_target_w == pytest.approx(first.mining_power_w - 5000)

    asyncio.run(scenario())


def test_minimum_off_time_keeps_a_slept_miner_asleep() -> None:
    async def scenario() -> None:
        fleet, _drivers, clock = miner_fleet(2, {"min_off_minutes": 30})
        await fleet.refresh()
        down = await fleet.apply(Setpoint(mining_mw=0.003412))  # one miner plus a sleeping board
        assert [(a.command, a.outcome) for a in down.accounts] == [(Command.SLEEP, Outcome.OBEYED)]
        clock.t += 29 * 60
        early = await fleet.apply(Setpoint(mining_mw=0.0068))
        assert early.accounts == () and not early.reached
        clock.t += 2 * 60
        late = await fleet.apply(Setpoint(mining_mw=0.0068))
        assert [(a.command, a.outcome) for a in late.accounts] == [(Command.WAKE, Outcome.OBEYED)]
        assert late.reached

    asyncio.run(scenario())


def test_refusing_and_unreachable_doubles_are_accounted_and_retried_a_bounded_number_of_times() -> None:
    async def scenario() -> None:
        fleet, drivers, _ = miner_fleet(4)
        await fleet.refresh()
        ips = sorted(drivers)
        drivers["10.9.0.4"].refuses = True
        drivers["10.9.0.3"].reachable = False
        result = await fleet.apply(Setpoint(mining_mw=0.0))
        outcome = {a.device: a.outcome for a in result.accounts}
        assert outcome == {
            ips[0]: Outcome.OBEYED,
            ips[1]: Outcome.OBEYED,
            "10.9.0.3": Outcome.UNREACHABLE,
            "10.9.0.4": Outcome.REFUSED,
        }
        assert drivers["10.9.0.4"].calls.count("sleep") == FAST.max_attempts
        assert drivers["10.9.0.3"].calls.count("sleep") == FAST.max_attempts
        # neither is believed asleep: 2 × 3,400 W still counted, so the target of 0 is not reached
        assert result.mining_power_w == pytest.approx(2 * 3400 + 2 * 12)
        assert not result.reached

    asyncio.run(scenario())


def test_a_slow_double_is_late_and_its_late_answer_is_discarded() -> None:
    async def scenario() -> None:
        fleet, drivers, _ = miner_fleet(1)
        await fleet.refresh()
        drivers["10.9.0.1"].delay_s = 0.5  # every call outlasts the 0.2 s call deadline
        result = await fleet.apply(Setpoint(mining_mw=0.0), deadline_s=1.0)
        assert [a.outcome for a in result.accounts] == [Outcome.LATE]
        assert fleet.snapshot().devices[0].reading.mining is True  # type: ignore[union-attr]

    asyncio.run(scenario())


@pytest.fixture
def two_gpus() -> list[fake_nvml.FakeGpu]:
    gpus = [fake_nvml.FakeGpu(), fake_nvml.FakeGpu()]
    fake_nvml.configure(gpus)
    return gpus


def gpu_inventory(jobs: bool = False) -> Inventory:
    data: dict[str, Any] = {
        "gpus": [
            {"id": "g0", "index": 0, "model": "H100 SXM", "role": "training", "job": "ft" if jobs else None},
            {"id": "g1", "index": 1, "model": "H100 SXM", "role": "training", "job": "ft" if jobs else None},
        ]
    }
    if jobs:
        data["jobs"] = [{"name": "ft", "hook": "slurm", "slurm_job_id": "42"}]
    else:
        for g in data["gpus"]:
            del g["job"]
    return parse_inventory(data)


def test_gpu_caps_are_set_through_nvml_and_verified(two_gpus: list[fake_nvml.FakeGpu]) -> None:
    async def scenario() -> None:
        inv = gpu_inventory()
        fleet = Fleet(inv, gpus=dict(open_gpus(inv.gpus, nvml=fake_nvml)), settings=FAST)
        await fleet.refresh()
        result = await fleet.apply(Setpoint(training_mw=0.0008))
        assert {(a.device, a.command, a.value_w, a.outcome) for a in result.accounts} == {
            ("g0", Command.CAP, 400, Outcome.OBEYED),
            ("g1", Command.CAP, 400, Outcome.OBEYED),
        }
        assert [g.limit_mw for g in two_gpus] == [400_000, 400_000]  # NVML units: mW
        assert result.gpu_power_w == pytest.approx(800.0)
        await fleet.close()

    asyncio.run(scenario())


def test_without_root_a_cap_is_refused_and_says_why(two_gpus: list[fake_nvml.FakeGpu]) -> None:
    fake_nvml.configure(two_gpus, root=False)

    async def scenario() -> None:
        inv = gpu_inventory()
        fleet = Fleet(inv, gpus=dict(open_gpus(inv.gpus, nvml=fake_nvml)), settings=FAST)
        await fleet.refresh()
        result = await fleet.apply(Setpoint(training_mw=0.0008))
        assert {a.outcome for a in result.accounts} == {Outcome.REFUSED}
        assert all("root" in a.detail for a in result.accounts)

    asyncio.run(scenario())


def test_no_nvidia_driver_is_a_clear_error() -> None:
    fake_nvml.configure([], library_found=False)
    with pytest.raises(GpuLibraryError, match="no NVIDIA driver") as err:
        open_gpus(gpu_inventory().gpus, nvml=fake_nvml)
    assert err.value.hint and "[[gpus]]" in err.value.hint


def test_an_inventory_gpu_index_the_machine_lacks_is_a_clear_error(two_gpus: list[fake_nvml.FakeGpu]) -> None:
    inv = parse_inventory({"gpus": [{"id": "g5", "index": 5, "model": "H100 SXM", "role": "spot"}]})
    with pytest.raises(GpuLibraryError, match="index 5"):
        open_gpus(inv.gpus, nvml=fake_nvml)


def test_jobs_pause_only_when_caps_cannot_reach_the_target(two_gpus: list[fake_nvml.FakeGpu]) -> None:
    async def scenario() -> None:
        inv = gpu_inventory(jobs=True)
        hook = MemoryJobHook()
        fleet = Fleet(inv, gpus=dict(open_gpus(inv.gpus, nvml=fake_nvml)), jobs={"ft": hook}, settings=FAST)
        await fleet.refresh()
        capped = await fleet.apply(Setpoint(training_mw=0.0005))
        assert hook.calls == [] and {a.command for a in capped.accounts} == {Command.CAP}
        paused = await fleet.apply(Setpoint(training_mw=0.0002))
        assert [(j, action) for j, action, _ in hook.calls] == [("ft", "pause")]
        assert [a.outcome for a in paused.accounts if a.kind == "job"] == [Outcome.OBEYED]
        await fleet.apply(Setpoint(training_mw=0.0014))
        assert [action for _, action, _ in hook.calls] == ["pause", "resume"]

    asyncio.run(scenario())


def test_telemetry_and_prometheus_metrics(two_gpus: list[fake_nvml.FakeGpu]) -> None:
    clock = Clock()
    fake_nvml.configure(two_gpus, clock=clock)

    async def scenario() -> Fleet:
        inv = parse_inventory(
            {
                "miners": [{"ip": "10.9.1.1", "model": "M30S+"}],
                "gpus": [{"id": "g0", "index": 0, "model": "H100 SXM", "role": "inference"}],
            }
        )
        fleet = Fleet(
            inv,
            miners={"10.9.1.1": MemoryMinerDriver()},
            gpus=dict(open_gpus(inv.gpus, nvml=fake_nvml)),
            settings=FAST,
            clock=clock,
        )
        await fleet.refresh()
        clock.t += 3600
        await fleet.refresh()
        return fleet

    fleet = asyncio.run(scenario())
    # 650 W for one hour, by the NVML energy counter
    assert fleet.telemetry.energy_wh("g0") == pytest.approx(650.0)
    assert fleet.telemetry.energy_wh("10.9.1.1") == pytest.approx(3400.0)  # trapezoids over the samples
    frame = fleet.telemetry.frame()
    assert len(frame) == 4 and str(frame["time"].dt.tz) == "UTC"
    text = metrics_text(fleet)
    assert 'drakewell_device_power_watts{device="10.9.1.1",kind="miner",model="M30S+"} 3400.0' in text
    assert 'drakewell_miner_hashrate_terahashes_per_second{device="10.9.1.1"' in text
    assert 'drakewell_gpu_energy_joules_total{device="g0",kind="gpu",model="H100 SXM"} 2.34e+06' in text
    assert "drakewell_fleet_mining_power_watts 3400.0" in text
    server, thread = serve_metrics(fleet, host="127.0.0.1", port=0)
    try:
        reply = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5)
        assert reply.status_code == 200 and "drakewell_fleet_gpu_power_watts 650.0" in reply.text
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_bad_setpoints_are_refused() -> None:
    with pytest.raises(FleetError, match="mining_mw"):
        Setpoint(mining_mw=-1.0)
    with pytest.raises(FleetError, match="finite"):
        Setpoint(spot_mw=float("nan"))


def test_polling_is_bounded_and_feeds_the_series() -> None:
    from drakewell.fleet.telemetry import poll

    async def scenario() -> tuple[int, int]:
        fleet, _drivers, _clock = miner_fleet(3)
        rounds = await poll(fleet, interval_s=0.05, duration_s=0.2)
        return rounds, len(fleet.telemetry.samples("10.9.0.2"))

    rounds, samples = asyncio.run(scenario())
    assert 2 <= rounds <= 6 and samples == rounds


def test_concurrent_applies_run_one_after_the_other() -> None:
    async def scenario() -> list[float]:
        fleet, _drivers, _clock = miner_fleet(4)
        await fleet.refresh()
        results = await asyncio.gather(
            fleet.apply(Setpoint(mining_mw=0.0)), fleet.apply(Setpoint(mining_mw=0.0))
        )
        return [len(r.accounts) for r in results]

    assert asyncio.run(scenario()) == [4, 0]  # the second sees the first's read-backs: nothing left to do
