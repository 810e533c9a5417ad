"""Invariants on random small cases: perfect foresight is feasible, bounds every policy, and its LP
objective is the ledger's profit up to the stated constants."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drakewell.dispatch.ledger import build_ledger, limit_violations
from drakewell.dispatch.model import solve
from drakewell.dispatch.policies import get_policy
from drakewell.dispatch.types import DispatchInputs, TrainingLoad

Make = Callable[..., DispatchInputs]

prices = st.lists(st.floats(-50, 3000, allow_nan=False), min_size=4, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    price=prices,
    demand=st.floats(0, 1),
    reserve_price=st.floats(0, 80),
    ramp=st.floats(0.5, 20),
    min_off=st.integers(0, 4),
    block=st.booleans(),
    cap_at=st.integers(0, 3),
    cap=st.floats(0, 15),
)
def test_perfect_is_feasible_bounds_the_others_and_matches_its_objective(
    tiny_inputs: Make,
    price: list[float],
    demand: float,
    reserve_price: float,
    ramp: float,
    min_off: int,
    block: bool,
    cap_at: int,
    cap: float,
) -> None:
    n = len(price)
    job = TrainingLoad("j", 0.2, 0, n, 0.5, 1500.0, 3000.0)
    inputs = tiny_inputs(
        price,
        demand=demand,
        reserve_price=reserve_price,
        jobs=[job],
        caps={cap_at: cap},
        four_cp=[n - 1],
        four_cp_rate_usd_per_mw=200.0,
        reserve_max_mw=4.0,
        reserve_penalty_multiplier=2.0,
        mining_ramp_up_mw_per_interval=ramp,
        mining_min_off_intervals=min_off,
        inference_shed_penalty_usd_per_gpu_hour=3.0,
        contract="fixed_block" if block else "index",
        block_mw=5.0 if block else 0.0,
        block_price_usd_per_mwh=40.0 if block else 0.0,
    )
    perfect = get_policy("perfect").run(inputs)
    assert limit_violations(inputs, perfect) == []
    best = build_ledger(inputs, perfect)["profit_usd"].sum()
    for name in ("threshold", "always"):
        other = get_policy(name).run(inputs)
        assert limit_violations(inputs, other) == []
        assert build_ledger(inputs, other)["profit_usd"].sum() <= best + 1e-6 * max(1.0, abs(best))
    site, h = inputs.site, inputs.hours
    constant = site.shed_penalty_usd_per_mwh * inputs.ai_inference_mw.sum() * h
    constant += (site.block_mw * (site.block_price_usd_per_mwh - np.asarray(price)) * h).sum()
    objective = solve(inputs).objective_usd
    assert np.isclose(best, -objective - constant, rtol=1e-6, atol=1e-4)
