"""Allocation rules: pure planning over device views."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from drakewell.fleet.devices import Command
from drakewell.fleet.plan import GpuView, JobView, MinerView, plan_gpus, plan_mining


def miner(ip: str, j_per_th: float = 34.0, **kw: object) -> MinerView:
    base = MinerView(
        id=ip,
        efficiency_j_per_th=j_per_th,
        rated_power_w=3400.0,
        board_power_w=12.0,
        min_power_limit_w=1020.0,
        supports_power_limit=True,
        power_w=3400.0,
        mining=True,
        power_limit_w=3400.0,
        reachable=True,
        asleep_since_s=None,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_least_efficient_miners_sleep_first_and_one_limit_trims_the_margin() -> None:
    fleet = [
        miner("10.0.0.1", 18.5),
        miner("10.0.0.2", 34.0),
        miner("10.0.0.3", 26.0),
        miner("10.0.0.4", 34.0),
    ]
    orders = {o.device: o for o in plan_mining(fleet, 5000.0, now_s=0.0, min_off_s=0.0)}
    # best first: .1 (18.5) keeps its 3,400 W, .3 (26) is trimmed to what is left, the 34 J/TH pair sleeps
    assert "10.0.0.1" not in orders
    assert orders["10.0.0.3"].command is Command.LIMIT
    assert orders["10.0.0.3"].value_w == 5000 - 3400 - 2 * 12  # what is left beside two sleeping boards
    assert orders["10.0.0.2"].command is Command.SLEEP and orders["10.0.0.4"].command is Command.SLEEP


def test_a_margin_below_the_minimum_limit_sleeps_the_miner_instead() -> None:
    orders = plan_mining([miner("10.0.0.1"), miner("10.0.0.2")], 3400 + 500, now_s=0.0, min_off_s=0.0)
    assert [(o.device, o.command) for o in orders] == [("10.0.0.2", Command.SLEEP)]


def test_unreachable_miners_count_at_their_last_known_draw() -> None:
    fleet = [miner("10.0.0.1", reachable=False), miner("10.0.0.2"), miner("10.0.0.3")]
    orders = plan_mining(fleet, 3500.0, now_s=0.0, min_off_s=0.0)
    assert {o.device for o in orders} == {"10.0.0.2", "10.0.0.3"}
    assert all(o.command is Command.SLEEP for o in orders)


def test_raising_restores_limits_then_wakes_the_most_efficient_after_the_minimum_off_time() -> None:
    fleet = [
        miner("10.0.0.1", 34.0, power_w=2000.0, power_limit_w=2000.0),
        miner("10.0.0.2", 18.5, mining=False, power_w=12.0, asleep_since_s=900.0),  # asleep 100 s: too soon
        miner("10.0.0.3", 26.0, mining=False, power_w=12.0, asleep_since_s=0.0),
        miner("10.0.0.4", 34.0, mining=False, power_w=12.0, asleep_since_s=0.0),
    ]
    orders = plan_mining(fleet, 2000 + 1400 + 3400 + 24 + 1500, now_s=1000.0, min_off_s=600.0)
    got = [(o.device, o.command, o.value_w) for o in orders]
    assert got[0] == ("10.0.0.1", Command.LIMIT, 3400)
    assert ("10.0.0.3", Command.WAKE, None) in got
    assert all(d != "10.0.0.2" for d, _, _ in got)  # the minimum off time holds
    assert got[-1][0] == "10.0.0.4" and got[-1][1] is Command.WAKE and got[-1][2] is not None  # partly


@settings(max_examples=60, deadline=None)
@given(
    effs=st.lists(st.sampled_from([18.5, 26.0, 34.0]), min_size=1, max_size=12),
    share=st.floats(0.0, 1.0),
)
def test_a_curtailment_plan_never_exceeds_a_feasible_target(effs: list[float], share: float) -> None:
    fleet = [miner(f"10.0.1.{i + 1}", e) for i, e in enumerate(effs)]
    floor = 12.0 * len(fleet)
    target = floor + share * (3400.0 * len(fleet) - floor)
    orders = {o.device: o for o in plan_mining(fleet, target, now_s=0.0, min_off_s=0.0)}
    planned = sum(orders[m.id].expected_power_w if m.id in orders else m.power_w for m in fleet)
    assert planned <= target + 1e-6
    slept = [m for m in fleet if m.id in orders and orders[m.id].command is Command.SLEEP]
    kept = [m for m in fleet if m.id not in orders]
    # nobody sleeps while a less efficient miner keeps full power
    assert all(s.efficiency_j_per_th >= k.efficiency_j_per_th for s in slept for k in kept)


def gpu(i: int, role: str = "training", job: str | None = "ft", **kw: object) -> GpuView:
    base = GpuView(
        id=f"gpu{i}",
        role=role,
        job=job,
        power_w=700.0,
        cap_w=700.0,
        min_cap_w=200.0,
        max_cap_w=700.0,
        idle_w=75.0,
        reachable=True,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_gpu_caps_come_before_pausing_jobs() -> None:
    gpus = [gpu(0, job="a"), gpu(1, job="a"), gpu(2, job="b"), gpu(3, job="b")]
    jobs = [JobView("a", ("gpu0", "gpu1"), False), JobView("b", ("gpu2", "gpu3"), False)]
    caps = plan_gpus(gpus, jobs, {"training": 2000.0})
    assert {o.command for o in caps} == {Command.CAP} and {o.value_w for o in caps} == {500}
    # below 4 × 200 W: the last job pauses, the others' GPUs take what is left
    pause = plan_gpus(gpus, jobs, {"training": 700.0})
    assert [(o.device, o.command) for o in pause if o.command is not Command.CAP] == [("b", Command.PAUSE)]
    assert {o.value_w for o in pause if o.command is Command.CAP} == {(700 - 150) // 2}


def test_paused_jobs_resume_when_the_target_rises() -> None:
    gpus = [gpu(0, job="a"), gpu(1, job="b", power_w=75.0)]
    jobs = [JobView("a", ("gpu0",), False), JobView("b", ("gpu1",), True)]
    orders = plan_gpus(gpus, jobs, {"training": 1400.0})
    assert ("b", Command.RESUME) in [(o.device, o.command) for o in orders]
    assert plan_gpus(gpus, jobs, {"inference": 1.0}) == ()  # no GPU of that class: nothing to do
