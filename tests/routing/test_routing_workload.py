"""Edge nodes and seeded workloads: validation, determinism, and the stated distributions."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from drakewell.routing.nodes import EdgeNode, NodeConfigError, check_unique_names, emerging_market_nodes
from drakewell.routing.workload import (
    UserRegion,
    WorkloadError,
    WorkloadSpec,
    emerging_market_users,
    generate_workload,
    mean_slot_seconds,
    rate_for_load,
)


def node(**changes: Any) -> EdgeNode:
    base = EdgeNode("n", "aws:af-south-1", 2, "m", 1000.0, 50.0, 4, 80.0, 500.0)
    return dataclasses.replace(base, **changes)


def test_slot_time_and_energy_cost_follow_the_stated_model() -> None:
    n = node()
    assert n.slot_seconds(500, 100) == pytest.approx(0.5 + 2.0)
    # 2 GPUs x 500 W over 4 slots = 250 W per slot; 250 Wh per hour at $80/MWh = $0.02 per hour
    assert n.cost_usd_per_slot_s * 3600 == pytest.approx(0.02)


@pytest.mark.parametrize(
    "changes",
    [
        {"name": ""},
        {"gpus": 0},
        {"concurrency": 0},
        {"concurrency": 2.5},
        {"prefill_tokens_per_s": 0.0},
        {"decode_tokens_per_s": math.nan},
        {"gpu_power_w": -1.0},
        {"energy_price_usd_per_mwh": -5.0},
        {"energy_price_usd_per_mwh": math.inf},
    ],
)
def test_bad_node_configuration_is_refused_with_a_hint(changes: dict[str, object]) -> None:
    with pytest.raises(NodeConfigError) as info:
        node(**changes)
    assert info.value.hint


def test_fleet_needs_nodes_with_unique_names() -> None:
    with pytest.raises(NodeConfigError, match="no nodes"):
        check_unique_names(())
    with pytest.raises(NodeConfigError, match="two nodes"):
        check_unique_names((node(), node()))
    check_unique_names(emerging_market_nodes())


def spec(**changes: Any) -> WorkloadSpec:
    base = WorkloadSpec(
        users=(UserRegion("aws:af-south-1", 1.0, 2.0),), duration_s=600.0, base_rate_per_s=5.0
    )
    return dataclasses.replace(base, **changes)


def test_same_seed_same_requests_other_seed_other_requests() -> None:
    s = dataclasses.replace(spec(), users=emerging_market_users())
    a, b, c = generate_workload(s, 7), generate_workload(s, 7), generate_workload(s, 8)
    assert np.array_equal(a.arrival_s, b.arrival_s)
    assert np.array_equal(a.prompt_tokens, b.prompt_tokens)
    assert np.array_equal(a.user, b.user)
    assert not np.array_equal(a.arrival_s[:50], c.arrival_s[:50])
    assert np.all(np.diff(a.arrival_s) >= 0)
    assert set(np.unique(a.user)) == set(range(len(s.users)))


def test_flat_poisson_count_matches_the_rate() -> None:
    s = spec(daily_amplitude=0.0, burst_rate_per_hour=0.0, duration_s=3600.0)
    w = generate_workload(s, 1)
    expected = 5.0 * 3600.0
    assert abs(len(w) - expected) < 4 * math.sqrt(expected)
    assert np.all((w.arrival_s >= 0) & (w.arrival_s < 3600.0))


def test_daily_cycle_peaks_at_the_stated_local_hour() -> None:
    # UTC+2 users, window starts 00:00 UTC: local 20:00 (peak) is hour 18, local 08:00 (trough) is hour 6
    s = spec(
        daily_amplitude=0.8,
        burst_rate_per_hour=0.0,
        start_utc_h=0.0,
        duration_s=86_400.0,
        base_rate_per_s=1.0,
    )
    w = generate_workload(s, 3)
    per_hour = np.bincount((w.arrival_s // 3600).astype(int), minlength=24)
    assert int(np.argmax(per_hour)) in (17, 18, 19)
    assert int(np.argmin(per_hour)) in (5, 6, 7)
    assert per_hour[18] > 4 * per_hour[6]


def test_bursts_raise_the_arrival_count() -> None:
    calm = spec(daily_amplitude=0.0, burst_rate_per_hour=0.0, duration_s=7200.0)
    bursty = dataclasses.replace(calm, burst_rate_per_hour=6.0, burst_mean_s=300.0, burst_multiplier=4.0)
    assert len(generate_workload(bursty, 2)) > 1.3 * len(generate_workload(calm, 2))


def test_token_lengths_follow_the_stated_log_normal_and_clip() -> None:
    s = spec(duration_s=3600.0, prompt_median_tokens=300.0, prompt_max_tokens=2000)
    w = generate_workload(s, 4)
    assert w.prompt_tokens.min() >= 1 and w.prompt_tokens.max() <= 2000
    assert w.output_tokens.min() >= 1 and w.output_tokens.max() <= s.output_max_tokens
    assert np.median(w.prompt_tokens) == pytest.approx(300.0, rel=0.05)
    assert np.median(w.output_tokens) == pytest.approx(s.output_median_tokens, rel=0.05)


def test_rate_for_load_gives_the_offered_load_asked_for() -> None:
    nodes = emerging_market_nodes()
    # without bursts, so one draw's few long bursts do not swamp the check
    s = WorkloadSpec(users=emerging_market_users(), duration_s=1800.0, burst_rate_per_hour=0.0)
    s = dataclasses.replace(s, base_rate_per_s=rate_for_load(s, nodes, 0.8))
    w = generate_workload(s, 5)
    # offered load = work arriving / capacity, with work at the capacity-weighted mean slot time
    slots = sum(n.concurrency for n in nodes)
    prompt, output = w.prompt_tokens.mean(), w.output_tokens.mean()
    capacity_per_s = sum(n.concurrency / n.slot_seconds(prompt, output) for n in nodes)
    offered = len(w) / s.duration_s / capacity_per_s
    assert offered == pytest.approx(0.8, rel=0.03)
    assert mean_slot_seconds(s, nodes) == pytest.approx(slots / capacity_per_s, rel=0.03)
    with pytest.raises(WorkloadError, match="load"):
        rate_for_load(s, nodes, 0.0)


@pytest.mark.parametrize(
    "changes",
    [
        {"users": ()},
        {"users": (UserRegion("a", 1.0, 0.0), UserRegion("a", 1.0, 0.0))},
        {"users": (UserRegion("a", 0.0, 0.0),)},
        {"users": (UserRegion("a", 1.0, 0.0, access_rtt_ms=-1.0),)},
        {"duration_s": 0.0},
        {"base_rate_per_s": math.nan},
        {"sla_ttft_ms": -1.0},
        {"daily_amplitude": 1.0},
        {"burst_multiplier": 0.5},
        {"burst_rate_per_hour": -1.0},
        {"prompt_sigma": -0.1},
        {"output_max_tokens": 0},
    ],
)
def test_bad_workload_specs_are_refused_with_a_hint(changes: dict[str, object]) -> None:
    with pytest.raises(WorkloadError) as info:
        spec(**changes)
    assert info.value.hint
