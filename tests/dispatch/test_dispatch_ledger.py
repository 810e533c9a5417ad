"""Settlement of decisions: contract (b) credits on a hand-made series, the summary contract."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from drakewell.dispatch.ledger import (
    LEDGER_COLUMNS,
    BacktestSummary,
    build_ledger,
    limit_violations,
    summarize,
)
from drakewell.dispatch.types import Decisions, DispatchInputError, DispatchInputs

Make = Callable[..., DispatchInputs]


def fixed(mining: list[float], n_jobs: int = 0) -> Decisions:
    m = np.asarray(mining, dtype=np.float64)
    z = np.zeros(len(m))
    return Decisions(m, z.copy(), z.copy(), z.copy(), z.copy(), tuple(z.copy() for _ in range(n_jobs)))


def test_fixed_block_pays_the_block_and_credits_unused_energy_at_real_time(tiny_inputs: Make) -> None:
    # block 10 MW at $40; the site draws 5, 12 and 10 MW at real-time $20, $100 and -$10
    inputs = tiny_inputs(
        [20.0, 100.0, -10.0],
        contract="fixed_block",
        block_mw=10.0,
        block_price_usd_per_mwh=40.0,
        mining_it_mw=12.0,
    )
    ledger = build_ledger(inputs, fixed([5.0, 12.0, 10.0]))
    block = 10 * 40 * 0.25  # $100 per interval
    np.testing.assert_allclose(ledger["energy_cost_usd"], [block, block + 2 * 100 * 0.25, block])
    np.testing.assert_allclose(ledger["curtailment_credits_usd"], [5 * 20 * 0.25, 0.0, 0.0])
    rev = ledger["revenue_mining_usd"].to_numpy()
    np.testing.assert_allclose(ledger["profit_usd"], rev + np.array([25.0, 0.0, 0.0]) - [100.0, 150.0, 100.0])


def test_fully_curtailed_block_earns_credits_equal_to_real_time_value(tiny_inputs: Make) -> None:
    inputs = tiny_inputs([300.0, 80.0], contract="fixed_block", block_mw=10.0, block_price_usd_per_mwh=40.0)
    ledger = build_ledger(inputs, fixed([0.0, 0.0]))
    np.testing.assert_allclose(ledger["curtailment_credits_usd"], [750.0, 200.0])
    np.testing.assert_allclose(ledger["profit_usd"], [750.0 - 100.0, 200.0 - 100.0])


def test_index_contract_pays_real_time_plus_adder(tiny_inputs: Make) -> None:
    inputs = tiny_inputs([30.0, -5.0], index_adder_usd_per_mwh=2.0)
    ledger = build_ledger(inputs, fixed([4.0, 4.0]))
    np.testing.assert_allclose(ledger["energy_cost_usd"], [4 * 32 * 0.25, 4 * -3 * 0.25])
    assert (ledger["curtailment_credits_usd"] == 0).all()


def test_reserve_shortfall_and_four_cp_are_charged(tiny_inputs: Make) -> None:
    inputs = tiny_inputs(
        [50.0, 50.0],
        reserve_price=10.0,
        reserve_max_mw=5.0,
        reserve_penalty_multiplier=3.0,
        four_cp=[1],
        four_cp_rate_usd_per_mw=100.0,
    )
    z = np.zeros(2)
    d = Decisions(np.array([5.0, 2.0]), z, z, z, np.array([5.0, 5.0]))
    ledger = build_ledger(inputs, d)
    np.testing.assert_allclose(ledger["reserve_shortfall_mw"], [0.0, 3.0])
    np.testing.assert_allclose(ledger["penalty_usd"], [0.0, 3.0 * 0.25 * 3 * 10.0])
    np.testing.assert_allclose(ledger["four_cp_cost_usd"], [0.0, 200.0])
    np.testing.assert_allclose(ledger["revenue_reserves_usd"], [12.5, 12.5])


def test_ledger_has_the_columns_the_fleet_simulator_reads(tiny_inputs: Make) -> None:
    ledger = build_ledger(tiny_inputs([10.0] * 3, demand=0.5), fixed([1.0, 2.0, 3.0]))
    assert tuple(ledger.columns) == LEDGER_COLUMNS
    assert str(ledger["interval_start_utc"].dt.tz) == "UTC"
    np.testing.assert_allclose(ledger["curtailed_mw"], [9.0, 8.0, 7.0])
    assert ledger["gpus_busy"].tolist() == [0, 0, 0]


def test_decisions_must_split_training_per_job(tiny_inputs: Make) -> None:
    from drakewell.dispatch.types import TrainingLoad

    job = TrainingLoad("j", 1.0, 0, 2, 1.0, 10.0, 10.0)
    with pytest.raises(DispatchInputError, match="one training series per job"):
        build_ledger(tiny_inputs([10.0, 10.0], jobs=[job]), fixed([0.0, 0.0]))


def test_summary_keys_ratio_and_flex_capture(tiny_inputs: Make) -> None:
    ledger = build_ledger(tiny_inputs([100.0, 100.0]), fixed([10.0, 10.0]))
    profit = float(ledger["profit_usd"].sum())
    record = summarize(
        ledger, "x", solve_seconds=0.5, perfect_profit_usd=2 * profit, always_profit_usd=0.5 * profit
    )
    s = record.to_json()  # the JSON contract: these keys, in this order
    assert BacktestSummary.from_json(json.loads(json.dumps(s))) == record
    assert list(s) == [
        "policy",
        "profit_usd",
        "revenue_usd",
        "energy_cost_usd",
        "energy_mwh",
        "ratio_to_perfect",
        "flex_capture",
        "solve_seconds",
        "intervals",
        "solve_status",
        "renewables_mwh",
    ]
    assert s["solve_status"] == {}
    assert list(s["revenue_usd"]) == ["ai", "mining", "reserves", "curtailment_credits", "export"]
    assert s["renewables_mwh"] == {"generation": 0.0, "self_consumed": 0.0, "export": 0.0, "curtailed": 0.0}
    assert list(s["energy_mwh"]) == ["ai", "mining", "curtailed"]
    assert s["ratio_to_perfect"] == pytest.approx(0.5)
    assert s["flex_capture"] == pytest.approx((1 - 0.5) / (2 - 0.5))
    assert s["energy_mwh"]["mining"] == pytest.approx(5.0)
    assert s["intervals"] == 2
    no_flex = summarize(ledger, "x", solve_seconds=0, perfect_profit_usd=profit, always_profit_usd=profit)
    assert no_flex.flex_capture is None


def test_limit_violations_names_each_broken_limit(tiny_inputs: Make) -> None:
    inputs = tiny_inputs(
        [10.0] * 4, caps={2: 1.0}, mining_ramp_up_mw_per_interval=2.0, mining_min_off_intervals=3
    )
    assert limit_violations(inputs, fixed([10.0, 10.0, 0.0, 0.0])) == []
    found = limit_violations(inputs, fixed([10.0, 0.0, 2.0, 4.0]))
    assert any("minimum off time" in v for v in found)
    found = limit_violations(inputs, fixed([10.0, 10.0, 5.0, 0.0]))
    assert any("emergency cap" in v for v in found)
    found = limit_violations(inputs, fixed([0.0, 5.0, 0.0, 0.0]))
    assert any("ramp-up" in v for v in found)
