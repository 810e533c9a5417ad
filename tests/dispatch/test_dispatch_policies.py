"""Policies: no online policy reads the future; all respect the fleet's limits; perfect bounds them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from drakewell.dispatch.backtest import backtest_inputs, resolve_site
from drakewell.dispatch.inputs import build_inputs
from drakewell.dispatch.ledger import build_ledger, limit_violations
from drakewell.dispatch.policies import (
    MIN_PEAK_DAYS,
    POLICIES,
    Policy,
    ThresholdPolicy,
    four_cp_trigger,
    get_policy,
    peak_chance,
    policy_names,
    record_weight,
    register,
    simulate_rule,
    window_days_left,
)
from drakewell.dispatch.types import Decisions, DispatchInputError, DispatchInputs, TrainingLoad
from drakewell.inputs.synthetic import synthetic_inputs

Make = Callable[..., DispatchInputs]

ONLINE = [name for name in POLICIES if get_policy(name).online]


@pytest.fixture(scope="module")
def week() -> DispatchInputs:
    """The example site on four synthetic days from a Monday (4CP windows, reserves, emergency-free),
    with two training jobs whose deadlines fall inside the horizon."""
    syn = synthetic_inputs("2023-08-07", 4, seed=7)
    inputs = build_inputs(resolve_site(None), syn.rt, syn.da, syn.hashprice, "LZ_WEST")
    gpu = inputs.site.gpu_mw
    jobs = (
        TrainingLoad("a", 2000 * 30 * gpu, 10, 200, 4000 * gpu, 2.0 / gpu, 4.0 / gpu),
        TrainingLoad("b", 3000 * 40 * gpu, 96, 380, 5000 * gpu, 2.0 / gpu, 4.0 / gpu),
    )
    return replace(inputs, jobs=jobs)


def perturb_after(inputs: DispatchInputs, t: int, rng: np.random.Generator) -> DispatchInputs:
    """Everything an operator could not know at ``t`` replaced by something else."""
    n = inputs.n
    later = np.arange(n) > t
    unpublished = inputs.forecast_known_from > t
    price = inputs.price_usd_per_mwh.copy()
    price[later] = rng.choice([-20.0, 15.0, 90.0, 400.0, 3000.0], size=int(later.sum()))
    forecast = inputs.forecast_usd_per_mwh.copy()
    forecast[unpublished] = rng.uniform(-10, 900, size=int(unpublished.sum()))
    reserve = inputs.reserve_price_usd_per_mw_h.copy()
    reserve[unpublished] = rng.uniform(0, 200, size=int(unpublished.sum()))
    hashprice = inputs.hashprice_usd_per_ph_day.copy()
    hashprice[later] = rng.uniform(20, 120, size=int(later.sum()))
    caps = inputs.emergency_cap_mw.copy()
    caps[later] = rng.choice([np.inf, 5.0, 40.0], size=int(later.sum()))
    alerts = inputs.four_cp_forecast.copy()
    alerts[unpublished] = rng.random(int(unpublished.sum())) < 0.3
    return replace(
        inputs,
        price_usd_per_mwh=price,
        forecast_usd_per_mwh=forecast,
        reserve_price_usd_per_mw_h=reserve,
        hashprice_usd_per_ph_day=hashprice,
        emergency_cap_mw=caps,
        four_cp=rng.random(n) < 0.01,  # the realised 4CP list is only known after the season
        four_cp_forecast=alerts,
    )


def first_difference(a: Decisions, b: Decisions, upto: int) -> str | None:
    for name in ("mining_mw", "inference_mw", "training_mw", "spot_mw", "reserve_mw"):
        x, y = getattr(a, name)[: upto + 1], getattr(b, name)[: upto + 1]
        if not np.array_equal(x, y):
            return f"{name} differs at interval {int(np.flatnonzero(x != y)[0])}"
    return None


def lookahead_at(policy: Policy, inputs: DispatchInputs, times: list[int], seed: int = 0) -> list[str]:
    base = policy.run(inputs)
    rng = np.random.default_rng(seed)
    found = []
    for t in times:
        diff = first_difference(base, policy.run(perturb_after(inputs, t, rng)), t)
        if diff:
            found.append(f"t={t}: {diff}")
    return found


@pytest.mark.parametrize("name", ONLINE)
def test_online_policy_never_reads_the_future(week: DispatchInputs, name: str) -> None:
    # 0: start; 70: mid-afternoon CT of day 1 (4CP window); 150: after a commitment; 383: last
    assert lookahead_at(get_policy(name), week, [0, 70, 150, 383]) == []


def test_the_lookahead_check_catches_a_policy_that_peeks(week: DispatchInputs) -> None:
    class Peeking:
        name = "peeking"
        online = True

        def run(self, inputs: DispatchInputs, progress: object = None) -> Decisions:
            nxt = np.concatenate([inputs.price_usd_per_mwh[1:], [0.0]])
            return simulate_rule(inputs, nxt < 100.0)

    assert lookahead_at(Peeking(), week, [70, 150]) != []


def test_registry_lists_policies_and_refuses_unknown_names() -> None:
    assert {"perfect", "mpc", "threshold", "always"} <= set(policy_names())
    with pytest.raises(DispatchInputError, match="unknown dispatch policy 'greedy'") as err:
        get_policy("greedy")
    assert "mpc" in (err.value.hint or "")


def test_registry_refuses_to_replace_a_registered_policy() -> None:
    # a second registration under a built-in name once replaced the built-in without a word
    mpc = POLICIES["mpc"]
    with pytest.raises(DispatchInputError, match="a dispatch policy named 'mpc' is already registered"):
        register("mpc")(ThresholdPolicy)
    assert POLICIES["mpc"] is mpc and get_policy("mpc").name == "mpc"


def test_every_policy_respects_the_limits_and_perfect_bounds_them(week: DispatchInputs) -> None:
    results = {r.policy: r for r in backtest_inputs(week)}
    for name, result in results.items():
        assert limit_violations(week, result.decisions) == [], name
    best = results["perfect"].summary.profit_usd
    for name, result in results.items():
        assert result.summary.profit_usd <= best + 1e-6 * abs(best), name
    assert results["perfect"].summary.flex_capture == pytest.approx(1.0)
    assert results["always"].summary.flex_capture == pytest.approx(0.0)


def test_mpc_commits_reserves_a_day_ahead_and_they_bind(week: DispatchInputs) -> None:
    d = get_policy("mpc").run(week)
    assert d.reserve_mw.max() > 0
    ledger = build_ledger(week, d)
    # a committed interval either carries its reserve on running miners or pays the shortfall
    carried = week.site.mining_pue * d.mining_mw + ledger["reserve_shortfall_mw"].to_numpy()
    assert (carried >= d.reserve_mw - 1e-6).all()


def test_threshold_mines_where_price_is_below_breakeven_when_unconstrained(week: DispatchInputs) -> None:
    free = replace(
        week, site=replace(week.site, mining_ramp_up_mw_per_interval=1e3, mining_min_off_intervals=0)
    )
    d = get_policy("threshold").run(free)
    below = free.price_usd_per_mwh * free.site.mining_pue < free.mining_revenue_usd_per_mwh
    capped = np.isfinite(free.emergency_cap_mw)
    np.testing.assert_allclose(d.mining_mw[below & ~capped], free.site.mining_it_mw)
    assert (d.mining_mw[~below] == 0).all()


def test_record_weight_counts_window_intervals_of_the_calendar_month() -> None:
    index = pd.date_range("2023-07-01T05:00Z", periods=31 * 96, freq="15min")  # July 2023 in CDT
    w = pd.Series(record_weight(index), index=index)
    m = 21 * 16  # 21 weekdays × sixteen 15-minute intervals from 15:00 to 19:00 CT
    assert w[pd.Timestamp("2023-07-03T15:00-05:00")] == pytest.approx(1 / m)  # first weekday window
    assert w[pd.Timestamp("2023-07-03T14:45-05:00")] == 0.0
    assert w[pd.Timestamp("2023-07-08T16:00-05:00")] == 0.0  # Saturday
    assert w[pd.Timestamp("2023-07-31T18:45-05:00")] == pytest.approx(1.0)
    assert (w > 0).sum() == m


def test_four_cp_trigger_grades_prices_against_the_months_running_window_peak(tiny_inputs: Make) -> None:
    # Monday 2023-07-03 from 15:00 CT: 100 (first: 1), 95 (0.95 of peak → 0.5), 80 (→ 0), 120 (record)
    inputs = tiny_inputs([100.0, 95.0, 80.0, 120.0], start="2023-07-03T20:00:00Z")
    np.testing.assert_allclose(four_cp_trigger(inputs, 0.9), [1.0, 0.5, 0.0, 1.0])
    outside = tiny_inputs([100.0, 500.0], start="2023-07-03T12:00:00Z")  # 07:00 CT
    np.testing.assert_allclose(four_cp_trigger(outside, 0.9), [0.0, 0.0])


def test_mpc_falls_back_safely_when_a_step_is_not_solved(
    week: DispatchInputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drakewell.dispatch import model

    real_solve = model.DispatchModel.solve
    calls = {"n": 0}

    def flaky(self: model.DispatchModel, data: model.PeriodData) -> model.DispatchResult:
        calls["n"] += 1
        sol = real_solve(self, data)
        if calls["n"] % 7 == 0:  # every seventh step: the solver gives up
            return replace(sol, status=model.SolveStatus.UNKNOWN)
        return sol

    monkeypatch.setattr(model.DispatchModel, "solve", flaky)
    d = get_policy("mpc").run(week.slice(0, 120))
    assert d.statuses == {"optimal": 120 - 120 // 7, "unknown": 120 // 7}
    assert limit_violations(week.slice(0, 120), d) == []


def test_perfect_refuses_a_non_optimal_solve(week: DispatchInputs, monkeypatch: pytest.MonkeyPatch) -> None:
    from drakewell.core.errors import DispatchError
    from drakewell.dispatch import model, policies

    real = model.solve

    def failing(inputs: DispatchInputs) -> model.DispatchResult:
        return replace(real(inputs), status=model.SolveStatus.TIME_LIMIT)

    monkeypatch.setattr(policies, "solve", failing)
    with pytest.raises(DispatchError, match="time_limit"):
        get_policy("perfect").run(week.slice(0, 10))


def test_a_running_peaks_chance_comes_from_past_days_peaks_once_there_are_enough() -> None:
    few = np.sort(np.arange(MIN_PEAK_DAYS - 1, dtype=float))
    assert peak_chance(5.0, few, 3, position=0.4) == 0.4  # too few days: the position weight
    past = np.sort(np.arange(100.0, 100.0 + 10 * MIN_PEAK_DAYS, 10.0))  # 100, 110, ... peaks
    assert peak_chance(10_000.0, past, 12, position=0.1) == 1.0  # above every past peak: it stands
    assert peak_chance(50.0, past, 12, position=0.9) == 0.0  # below all: some later day beats it
    half = float(past[len(past) // 2])
    assert peak_chance(half, past, 1, position=0.0) == pytest.approx(0.5)
    assert peak_chance(half, past, 3, position=0.0) == pytest.approx(0.125)  # three days to survive
    assert peak_chance(half, past, 0, position=0.0) == 1.0  # the month's last window day


def test_window_days_left_counts_the_weekdays_after_each_day_in_the_4cp_months() -> None:
    index = pd.DatetimeIndex(
        [
            "2023-08-30T20:00Z",
            "2023-08-31T20:00Z",
            "2023-09-01T20:00Z",
            "2023-10-02T20:00Z",
            "2023-09-29T20:00Z",
        ]
    )
    # Wed 30 Aug: Thu 31 is left; Thu 31 Aug: none; Fri 1 Sep: 20 weekdays follow; October: out of season
    assert window_days_left(index).tolist() == [1, 0, 20, 0, 0]
