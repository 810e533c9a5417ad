"""The LP on cases small enough to solve by hand."""

from __future__ import annotations

from collections.abc import Callable

import highspy
import numpy as np
import pytest

from drakewell.dispatch.ledger import build_ledger
from drakewell.dispatch.model import DispatchModel, FleetState, PeriodData, map_status, solve
from drakewell.dispatch.policies import get_policy
from drakewell.dispatch.types import DispatchInputs, SolveStatus, TrainingLoad

Make = Callable[..., DispatchInputs]
REV = 43 * 1000 / 13.5 / 24  # mining revenue per MWh at $43/PH/day, 13.5 J/TH: $132.72


def test_mining_revenue_matches_the_hand_computed_breakeven(tiny_inputs: Make) -> None:
    inputs = tiny_inputs([100.0])
    assert inputs.mining_revenue_usd_per_mwh[0] == pytest.approx(132.716, abs=1e-3)


def test_mines_below_breakeven_only_and_profit_is_hand_computed(tiny_inputs: Make) -> None:
    inputs = tiny_inputs([100.0, 150.0, 132.0])
    sol = solve(inputs)
    assert sol.status is SolveStatus.OPTIMAL
    np.testing.assert_allclose(sol.mining_mw, [10.0, 0.0, 10.0], atol=1e-6)
    ledger = build_ledger(inputs, get_policy("perfect").run(inputs))
    expected = 10 * 0.25 * (REV - 100.0) + 10 * 0.25 * (REV - 132.0)
    assert ledger["profit_usd"].sum() == pytest.approx(expected, rel=1e-9)


def test_ramp_up_limit_spreads_the_restart(tiny_inputs: Make) -> None:
    inputs = tiny_inputs([1000.0, 50.0, 50.0, 50.0], mining_ramp_up_mw_per_interval=3.0)
    sol = solve(inputs)
    # off during the spike (no ramp-down limit), then at most 3 MW more per interval
    np.testing.assert_allclose(sol.mining_mw, [0.0, 3.0, 6.0, 9.0], atol=1e-6)


@pytest.mark.parametrize(
    ("spike", "min_off", "expected"),
    [
        # staying on loses (250 - 132.72) * 2.5 = $293; switching off loses the margin of the two
        # forced-off intervals after it, 2 * (132.72 - 50) * 2.5 = $414 → stay on
        (250.0, 3, [10, 10, 10, 10, 10]),
        # at $400 staying on loses $668 > $414 → switch off for the minimum three intervals
        (400.0, 3, [10, 0, 0, 0, 10]),
        # without a minimum off time, any price above breakeven switches off for that interval only
        (250.0, 0, [10, 0, 10, 10, 10]),
    ],
)
def test_minimum_off_time_weighs_the_forced_outage(
    tiny_inputs: Make, spike: float, min_off: int, expected: list[float]
) -> None:
    # interval 0 is the cheapest, so switching off before the spike instead would cost more
    inputs = tiny_inputs([20.0, spike, 50.0, 50.0, 50.0], mining_min_off_intervals=min_off)
    np.testing.assert_allclose(solve(inputs).mining_mw, expected, atol=1e-6)


def test_training_runs_in_the_cheapest_interval_of_its_window(tiny_inputs: Make) -> None:
    job = TrainingLoad(
        "j",
        energy_mwh=0.25,
        release=0,
        deadline=4,
        max_mw=1.0,
        revenue_usd_per_mwh=2000.0,
        unmet_penalty_usd_per_mwh=5000.0,
    )
    inputs = tiny_inputs([80.0, 20.0, 60.0, 90.0, 10.0], jobs=[job], mining_it_mw=0.0)
    sol = solve(inputs)
    # interval 4 is cheaper still but after the deadline
    np.testing.assert_allclose(sol.training_mw, [0.0, 1.0, 0.0, 0.0, 0.0], atol=1e-6)


def test_unmet_training_is_left_when_the_penalty_is_below_the_power_cost(tiny_inputs: Make) -> None:
    job = TrainingLoad(
        "j",
        energy_mwh=0.25,
        release=0,
        deadline=1,
        max_mw=1.0,
        revenue_usd_per_mwh=0.0,
        unmet_penalty_usd_per_mwh=100.0,
    )
    inputs = tiny_inputs([500.0], jobs=[job], mining_it_mw=0.0)
    assert solve(inputs).training_mw[0] == pytest.approx(0.0, abs=1e-9)
    ledger = build_ledger(inputs, get_policy("perfect").run(inputs))
    assert ledger["training_unmet_mwh"].sum() == pytest.approx(0.25)
    assert ledger["penalty_usd"].sum() == pytest.approx(25.0)


def test_reserve_keeps_miners_on_when_it_pays_for_the_loss(tiny_inputs: Make) -> None:
    # mining at $150 loses $17.28/MWh; a $30/MW-h reserve on 5 MW of running miners pays more
    inputs = tiny_inputs([150.0], reserve_price=30.0, reserve_max_mw=5.0)
    sol = solve(inputs)
    assert sol.mining_mw[0] == pytest.approx(5.0)
    assert sol.reserve_mw[0] == pytest.approx(5.0)
    ledger = build_ledger(inputs, get_policy("perfect").run(inputs))
    assert ledger["profit_usd"].sum() == pytest.approx(5 * 0.25 * (REV - 150.0 + 30.0))


def test_four_cp_interval_sheds_load_when_the_charge_exceeds_its_margin(tiny_inputs: Make) -> None:
    # $1,000 per MW at the 4CP interval beats mining's $20.7/MW and AI's $500/MW for 15 minutes
    inputs = tiny_inputs([50.0, 50.0], demand=1.0, four_cp=[1], four_cp_rate_usd_per_mw=1000.0)
    sol = solve(inputs)
    np.testing.assert_allclose(sol.mining_mw, [10.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(sol.inference_mw, [1.0, 0.0], atol=1e-6)
    assert sol.peak_mw[0] == pytest.approx(0.0, abs=1e-6)


def test_emergency_cap_curtails_mining_before_ai(tiny_inputs: Make) -> None:
    inputs = tiny_inputs([50.0, 50.0], demand=1.0, caps={0: 4.0})
    sol = solve(inputs)
    np.testing.assert_allclose(sol.inference_mw, [1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(sol.mining_mw, [3.0, 10.0], atol=1e-6)


def test_connection_limit_counts_pue(tiny_inputs: Make) -> None:
    inputs = tiny_inputs([50.0], connection_mw=8.4, mining_pue=1.05)
    assert solve(inputs).mining_mw[0] == pytest.approx(8.0)


def test_state_carries_mining_level_and_recent_shutdowns(tiny_inputs: Make) -> None:
    inputs = tiny_inputs([50.0, 50.0], mining_ramp_up_mw_per_interval=2.0, mining_min_off_intervals=3)
    # 4 MW running, 6 MW switched off one interval ago: those 6 MW stay off for two more intervals
    state = FleetState(mining_mw=4.0, recent_shutdowns_mw=(6.0, 0.0))
    np.testing.assert_allclose(solve(inputs, state=state).mining_mw, [4.0, 4.0], atol=1e-6)
    free = FleetState(mining_mw=4.0)
    np.testing.assert_allclose(solve(inputs, state=free).mining_mw, [6.0, 8.0], atol=1e-6)


def test_lp_objective_equals_ledger_profit_up_to_the_stated_constants(tiny_inputs: Make) -> None:
    rng = np.random.default_rng(3)
    prices = rng.normal(80, 60, 96)
    job = TrainingLoad("j", 3.0, 10, 90, 0.5, 2000.0, 4000.0)
    inputs = tiny_inputs(
        prices,
        demand=0.4,
        reserve_price=12.0,
        four_cp=[40],
        jobs=[job],
        contract="fixed_block",
        block_mw=6.0,
        block_price_usd_per_mwh=45.0,
        four_cp_rate_usd_per_mw=300.0,
        reserve_max_mw=3.0,
        inference_shed_penalty_usd_per_gpu_hour=1.0,
        mining_min_off_intervals=2,
        mining_ramp_up_mw_per_interval=4.0,
    )
    sol = solve(inputs)
    ledger = build_ledger(inputs, get_policy("perfect").run(inputs))
    site, h = inputs.site, inputs.hours
    shed_constant = site.shed_penalty_usd_per_mwh * inputs.ai_inference_mw.sum() * h
    block_constant = (site.block_mw * (site.block_price_usd_per_mwh - prices) * h).sum()
    assert ledger["profit_usd"].sum() == pytest.approx(
        -sol.objective_usd - shed_constant - block_constant, rel=1e-7
    )


def test_solver_statuses_map_to_our_enum_and_unknown_never_crashes() -> None:
    assert map_status(highspy.HighsModelStatus.kOptimal) is SolveStatus.OPTIMAL
    assert map_status(highspy.HighsModelStatus.kInfeasible) is SolveStatus.INFEASIBLE
    assert map_status(highspy.HighsModelStatus.kTimeLimit) is SolveStatus.TIME_LIMIT
    assert map_status(highspy.HighsModelStatus.kNotset) is SolveStatus.UNKNOWN
    assert map_status("something new") is SolveStatus.UNKNOWN
    assert map_status([]) is SolveStatus.UNKNOWN


def test_the_time_limit_applies_to_each_solve_not_to_their_sum(tiny_inputs: Make) -> None:
    """HiGHS's run clock keeps counting across runs of one model; once the solves together pass the
    per-solve limit, every later solve must still get its own budget and end optimal."""
    n, limit_s = 96, 0.1
    inputs = tiny_inputs(list(np.linspace(20.0, 300.0, n)))
    site = inputs.site
    model = DispatchModel(site, np.ones(n, dtype=np.int64), inputs.hours, [], [], time_limit_s=limit_s)
    rng = np.random.default_rng(5)
    statuses: dict[SolveStatus, int] = {}
    for _ in range(20_000):  # bounded; stops once the run clock is 4 limits in
        data = PeriodData(
            price_usd_per_mwh=rng.uniform(-20.0, 400.0, n),
            mining_revenue_usd_per_mwh=inputs.mining_revenue_usd_per_mwh,
            ai_inference_mw=rng.uniform(0.0, 1.0, n),
            reserve_price_usd_per_mw_h=np.zeros(n),
            reserve_lb_mw=np.zeros(n),
            reserve_ub_mw=np.zeros(n),
            cap_mw=np.full(n, site.connection_mw),
            held_off_mw=np.zeros(n),
            mining_prev_mw=float(rng.uniform(0.0, site.mining_it_mw)),
            jobs=(),
            peak_row_ub=(),
            peak_lb_mw=np.zeros(0),
        )
        sol = model.solve(data)
        statuses[sol.status] = statuses.get(sol.status, 0) + 1
        if model._h.getRunTime() > 4 * limit_s:
            break
    assert model._h.getRunTime() > 4 * limit_s, "the solves never added up to the limit"
    assert statuses == {SolveStatus.OPTIMAL: sum(statuses.values())}
