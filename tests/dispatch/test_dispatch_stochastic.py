"""The stochastic policy: its commitment LP weighs the shortfall a triggered 4CP window causes, and the
policy reads no future with the expected-price plan switched on too."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from drakewell.dispatch.backtest import resolve_site
from drakewell.dispatch.forecast import ForecastConfig
from drakewell.dispatch.inputs import build_inputs, four_cp_window
from drakewell.dispatch.stochastic import StochasticPolicy, _CommitLP, solve_commitment
from drakewell.dispatch.types import DispatchInputs, SolveStatus
from drakewell.inputs.synthetic import synthetic_inputs

FAST = ForecastConfig(levels=(0.1, 0.5, 0.9), min_history_days=1.0, n_estimators=15, sample_every=8)


@pytest.fixture(scope="module")
def days() -> DispatchInputs:
    syn = synthetic_inputs("2023-08-07", 4, seed=5)
    return build_inputs(resolve_site(None), syn.rt, syn.da, syn.hashprice, "LZ_WEST")


def test_commitment_holds_back_where_a_scenario_would_shut_the_miners(days: DispatchInputs) -> None:
    site = days.site
    n, weights = 4, np.array([0.5, 0.5])
    price = np.full((n, 2), 20.0)  # mining pays in both scenarios: the reserve costs nothing
    args = (site, price, weights, np.full(n, 50.0), 140.0, np.full(n, site.mining_it_mw), 0.25)
    plan, status = solve_commitment(*args, block=4)
    assert status is SolveStatus.OPTIMAL
    assert plan == pytest.approx(np.full(n, site.reserve_max_mw))
    # a charge per MW drawn in the second scenario (a 4CP trigger) shuts its miners: half the time
    # the reserve falls short at 3 x its price, more than it earns
    charge = np.zeros((n, 2))
    charge[:, 1] = 1e5
    plan, status = solve_commitment(*args, block=4, load_cost_usd_per_mw=charge)
    assert status is SolveStatus.OPTIMAL
    assert plan == pytest.approx(np.zeros(n))


def test_commitment_prices_the_4cp_trigger_only_in_alert_windows(days: DispatchInputs) -> None:
    window = four_cp_window(days.interval_start_utc)
    t = int(np.flatnonzero(window)[0]) + 40  # after the first window of the horizon
    u = np.arange(t + 1, t + 1 + 96, dtype=np.int64)
    spike = np.full((len(u), 2), 1e4)  # a new window peak in every scenario
    alerts = replace(days, four_cp_forecast=np.ones(days.n, dtype=bool))
    cost = _CommitLP(alerts, FAST, 4, 5.0).four_cp_cost(t, u, spike)
    assert (cost[~window[u]] == 0).all()
    assert (cost[window[u]] > 0).all()
    assert cost.max() <= days.site.four_cp_rate_usd_per_mw
    # a day published without an alert carries no 4CP charge; an unpublished one counts as an alert
    quiet = replace(days, four_cp_forecast=np.zeros(days.n, dtype=bool))
    cost = _CommitLP(quiet, FAST, 4, 5.0).four_cp_cost(t, u, spike)
    published = days.forecast_known_from[u] <= t
    assert (cost[published] == 0).all()
    assert (cost[~published & window[u]] > 0).all()
    # prices well below the month's window peak do not trigger
    calm = np.full((len(u), 2), -50.0)
    assert (_CommitLP(alerts, FAST, 4, 5.0).four_cp_cost(t, u, calm) == 0).all()


def test_the_expected_price_plan_reads_no_future_either(days: DispatchInputs) -> None:
    from test_dispatch_policies import lookahead_at  # type: ignore[import-not-found]

    policy = StochasticPolicy(forecast=FAST, forecast_hours=12.0)
    assert lookahead_at(policy, days, [0, 150, 300]) == []


def test_stochastic_is_deterministic(days: DispatchInputs) -> None:
    from drakewell.dispatch.forecast import clear_forecast_cache

    first = StochasticPolicy(forecast=FAST).run(days)
    clear_forecast_cache()
    second = StochasticPolicy(forecast=FAST).run(days)
    for name in ("mining_mw", "inference_mw", "spot_mw", "reserve_mw"):
        assert np.array_equal(getattr(first, name), getattr(second, name))
