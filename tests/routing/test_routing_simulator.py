"""The discrete-event simulator: hand-checked timings, conservation, determinism, policy ordering."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drakewell.core.errors import RoutingError
from drakewell.routing.latency import great_circle_matrix
from drakewell.routing.nodes import EdgeNode
from drakewell.routing.policies import make_policy, policy_names
from drakewell.routing.simulator import PolicyResult, Scenario, compare_policies, default_scenario, simulate
from drakewell.routing.workload import UserRegion, Workload, WorkloadSpec, generate_workload

REGIONS = ("aws:af-south-1", "aws:us-east-1")


def tiny_scenario(concurrency: int = 1) -> Scenario:
    # prefill 1000 tok/s, decode 10 tok/s; 100 prompt + 10 output tokens = 0.1 s + 1.0 s per slot
    node = EdgeNode("cpt", REGIONS[0], 1, "m", 1000.0, 10.0, concurrency, 100.0, 1000.0)
    spec = WorkloadSpec(users=(UserRegion(REGIONS[0], 1.0, 2.0, access_rtt_ms=99.0),), sla_ttft_ms=500.0)
    return Scenario((node,), spec, great_circle_matrix([REGIONS[0]]))


def workload(spec: WorkloadSpec, arrivals: list[float]) -> Workload:
    n = len(arrivals)
    return Workload(
        spec,
        np.asarray(arrivals, dtype=float),
        np.zeros(n, dtype=np.int64),
        np.full(n, 100, dtype=np.int64),
        np.full(n, 10, dtype=np.int64),
    )


def test_single_slot_queue_matches_hand_computation() -> None:
    sc = tiny_scenario()
    # rtt = 1 ms intra-region + 99 ms access = 100 ms; each request holds the slot 1.1 s
    r = simulate(sc, workload(sc.spec, [0.0, 0.1]), make_policy("nearest"))
    # first: 100 rtt + 0 wait + 100 prefill = 200 ms
    # second: reaches the node at 0.15 s, starts at 0.05 + 1.1 = 1.15 s, waits 1.0 s -> 1200 ms
    assert sorted(r.ttft_ms.tolist()) == pytest.approx([200.0, 1200.0])
    assert r.sla_attainment == pytest.approx(0.5)
    # end-to-end adds the 1 s decode: 1200 ms and 2200 ms; numpy's linear percentiles of the two
    assert r.e2e_ms_p50 == pytest.approx(1700.0)
    assert r.e2e_ms_p99 == pytest.approx(1200.0 + 0.99 * 1000.0)
    # busy 2.2 slot-seconds over a makespan ending at 1.15 + 1.1 = 2.25 s
    assert r.utilisation["cpt"] == pytest.approx(2.2 / 3600.0)  # window (1 h) is longer than the work
    assert r.tokens_per_s == pytest.approx(20 / 3600.0)
    # 1000 W for 2.2 s at $100/MWh
    assert r.cost_usd == pytest.approx(1000.0 * 2.2 / 3600.0 * 100.0 / 1e6)


def test_two_slots_serve_both_at_once() -> None:
    sc = tiny_scenario(concurrency=2)
    r = simulate(sc, workload(sc.spec, [0.0, 0.1]), make_policy("nearest"))
    assert r.ttft_ms.tolist() == pytest.approx([200.0, 200.0])
    assert r.sla_attainment == 1.0


def test_empty_workload_reports_no_requests() -> None:
    sc = tiny_scenario()
    r = simulate(sc, workload(sc.spec, []), make_policy("nearest"))
    assert r.n_requests == 0
    assert np.isnan(r.ttft_ms_p99)


def test_workload_from_other_users_is_refused() -> None:
    sc = tiny_scenario()
    other = WorkloadSpec(users=(UserRegion(REGIONS[1], 1.0, -5.0),))
    with pytest.raises(RoutingError, match="other user regions"):
        simulate(sc, workload(other, [0.0]), make_policy("nearest"))


def test_scenario_refuses_regions_without_rtts() -> None:
    node = EdgeNode("x", "aws:us-east-1", 1, "m", 1.0, 1.0, 1, 1.0)
    spec = WorkloadSpec(users=(UserRegion(REGIONS[0], 1.0, 2.0),))
    with pytest.raises(RoutingError, match="not in the latency matrix"):
        Scenario((node,), spec, great_circle_matrix([REGIONS[0]]))


@pytest.fixture(scope="module")
def short_runs() -> tuple[Scenario, list[PolicyResult]]:
    sc = default_scenario(duration_s=300.0, latency_source="model")
    return sc, compare_policies(sc, seed=3)


def test_every_policy_sees_the_same_requests_and_serves_all_of_them(
    short_runs: tuple[Scenario, list[PolicyResult]],
) -> None:
    sc, results = short_runs
    n = len(generate_workload(sc.spec, 3))
    assert [r.policy for r in results] == list(policy_names())
    for r in results:
        assert r.n_requests == n
        assert len(r.ttft_ms) == n
        assert sum(r.share.values()) == pytest.approx(1.0)
        assert all(0.0 <= u <= 1.0 for u in r.utilisation.values())
        assert r.ttft_ms_p50 <= r.ttft_ms_p90 <= r.ttft_ms_p99
        assert r.e2e_ms_p99 >= r.ttft_ms_p99
        assert 0.0 <= r.sla_attainment <= 1.0
        assert r.cost_usd > 0


def test_slo_aware_beats_nearest_when_local_capacity_is_thin(
    short_runs: tuple[Scenario, list[PolicyResult]],
) -> None:
    _, results = short_runs
    by = {r.policy: r for r in results}
    assert by["slo-aware"].ttft_ms_p99 <= 0.5 * by["nearest"].ttft_ms_p99
    assert by["slo-aware"].sla_attainment > by["nearest"].sla_attainment
    # nearest leaves the hyperscaler almost idle while edge nodes queue
    assert by["nearest"].utilisation["iad-hyperscale"] < by["slo-aware"].utilisation["iad-hyperscale"]


def test_runs_are_deterministic_for_a_seed() -> None:
    sc = default_scenario(duration_s=60.0, latency_source="model")
    a = compare_policies(sc, policies=["p2c", "slo-aware"], seed=9)
    b = compare_policies(sc, policies=["p2c", "slo-aware"], seed=9)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.ttft_ms, y.ttft_ms)
        assert x.summary() == y.summary()


@settings(max_examples=40, deadline=None)
@given(
    arrivals=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=60),
    prompts=st.lists(st.integers(1, 4000), min_size=60, max_size=60),
    outputs=st.lists(st.integers(1, 400), min_size=60, max_size=60),
    name=st.sampled_from(["nearest", "least-load", "p2c", "slo-aware", "cost-aware"]),
    concurrency=st.integers(1, 3),
)
def test_simulation_invariants_hold_for_any_workload(
    arrivals: list[float], prompts: list[int], outputs: list[int], name: str, concurrency: int
) -> None:
    nodes = (
        EdgeNode("cpt", REGIONS[0], 1, "m", 2000.0, 40.0, concurrency, 70.0),
        EdgeNode("iad", REGIONS[1], 2, "m", 4000.0, 40.0, 2 * concurrency, 110.0),
    )
    spec = WorkloadSpec(users=(UserRegion(REGIONS[0], 1.0, 2.0, 20.0),), duration_s=30.0, sla_ttft_ms=700.0)
    sc = Scenario(nodes, spec, great_circle_matrix(REGIONS))
    n = len(arrivals)
    w = Workload(
        spec,
        np.sort(np.asarray(arrivals)),
        np.zeros(n, dtype=np.int64),
        np.asarray(prompts[:n], dtype=np.int64),
        np.asarray(outputs[:n], dtype=np.int64),
    )
    r = simulate(sc, w, make_policy(name), seed=1)
    rows = sc.rtt_rows()[REGIONS[0]]
    # no request is faster than the best node's round trip plus its own prefill there
    floor = np.minimum(
        rows[0] + w.prompt_tokens * 1000.0 / 2000.0,
        rows[1] + w.prompt_tokens * 1000.0 / 4000.0,
    )
    assert np.all(r.ttft_ms >= floor - 1e-6)
    assert r.n_requests == n
    assert sum(r.share.values()) == pytest.approx(1.0)
    assert all(0.0 <= u <= 1.0 + 1e-9 for u in r.utilisation.values())
    # busy slot-seconds lie between every request on its fastest node and on its slowest node
    makespan = int(w.output_tokens.sum()) / r.tokens_per_s
    assert makespan >= spec.duration_s * (1 - 1e-9)
    busy = {nd.name: r.utilisation[nd.name] * nd.concurrency * makespan for nd in nodes}
    per_node = np.stack(
        [
            [nd.slot_seconds(p, o) for p, o in zip(w.prompt_tokens, w.output_tokens, strict=True)]
            for nd in nodes
        ]
    )
    assert per_node.min(axis=0).sum() - 1e-6 <= sum(busy.values()) <= per_node.max(axis=0).sum() + 1e-6
    # and the energy cost is those slot-seconds priced per node
    assert r.cost_usd == pytest.approx(sum(busy[nd.name] * nd.cost_usd_per_slot_s for nd in nodes))
