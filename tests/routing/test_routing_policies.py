"""Routing policies behind the one seam: each picks what its rule says, among the allowed nodes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drakewell.core.errors import RoutingError
from drakewell.routing.nodes import EdgeNode
from drakewell.routing.policies import (
    FleetView,
    NoCandidateError,
    RouteRequest,
    UnknownPolicyError,
    make_policy,
    policy_names,
    register_policy,
)

REQ = RouteRequest("u", prompt_tokens=100, sla_ttft_ms=500.0)


def make_view(
    rtts: list[float], concurrency: list[int], prices: list[float] | None = None, slot_s: float = 1.0
) -> FleetView:
    prices = prices or [50.0] * len(rtts)
    nodes = [
        EdgeNode(f"n{k}", "r", 1, "m", 1000.0, 50.0, c, p)
        for k, (c, p) in enumerate(zip(concurrency, prices, strict=True))
    ]
    return FleetView(nodes, {"u": rtts}, [slot_s] * len(rtts))


def test_registry_lists_the_five_policies_and_refuses_unknown_names() -> None:
    assert set(policy_names()) >= {"nearest", "least-load", "p2c", "slo-aware", "cost-aware"}
    with pytest.raises(UnknownPolicyError) as info:
        make_policy("fastest")
    assert "nearest" in (info.value.hint or "")
    with pytest.raises(RoutingError, match="already registered"):
        register_policy("nearest")(lambda: make_policy("nearest"))
    with pytest.raises(RoutingError, match="bad parameters"):
        make_policy("nearest", headroom=0.1)
    with pytest.raises(RoutingError, match="headroom"):
        make_policy("slo-aware", headroom=1.5)
    with pytest.raises(RoutingError, match="wait_margin"):
        make_policy("cost-aware", wait_margin=-1.0)


def test_predicted_wait_and_ttft_follow_the_stated_formula() -> None:
    view = make_view([40.0], [4], slot_s=2.0)
    assert view.predicted_wait_ms(0) == 0.0
    view.outstanding[0] = 3
    assert view.predicted_wait_ms(0) == 0.0  # a slot is still free
    view.outstanding[0] = 6  # 6 - 4 + 1 = 3 ahead, 2 s / 4 slots each
    assert view.predicted_wait_ms(0) == pytest.approx(1500.0)
    # rtt 40 + wait 1500 + 100 tokens at 1000 tok/s
    assert view.predicted_ttft_ms(0, view.rtt_row("u"), 100) == pytest.approx(1640.0)
    view.observe_slot_s(0, 4.0)
    assert 2.0 < view.slot_s[0] < 4.0


def test_fleet_view_refuses_mismatched_rows_and_unknown_regions() -> None:
    nodes = [EdgeNode(f"n{k}", "r", 1, "m", 1000.0, 50.0, 1, 0.0) for k in range(2)]
    with pytest.raises(RoutingError, match="RTT row"):
        FleetView(nodes, {"u": [1.0]}, [1.0, 1.0])
    with pytest.raises(RoutingError, match="typical_slot_s"):
        FleetView(nodes, {"u": [1.0, 1.0]}, [1.0])
    view = make_view([1.0, 2.0], [1, 1])
    with pytest.raises(RoutingError, match="no RTTs known") as info:
        make_policy("nearest").choose(view, RouteRequest("elsewhere", 1, 100.0), [0, 1], random.Random(0))
    assert "u" in (info.value.hint or "")


def test_nearest_picks_least_rtt_among_candidates() -> None:
    view = make_view([30.0, 10.0, 20.0], [1, 1, 1])
    nearest = make_policy("nearest")
    assert nearest.choose(view, REQ, [0, 1, 2], random.Random(0)) == 1
    assert nearest.choose(view, REQ, [0, 2], random.Random(0)) == 2


def test_least_load_normalises_by_slots_and_breaks_ties_by_rtt() -> None:
    view = make_view([10.0, 90.0, 50.0], [2, 10, 10])
    view.outstanding[:] = [1, 4, 4]  # 0.5, 0.4, 0.4
    assert make_policy("least-load").choose(view, REQ, [0, 1, 2], random.Random(0)) == 2


def test_p2c_never_picks_the_more_loaded_of_two() -> None:
    view = make_view([10.0, 10.0], [4, 4])
    view.outstanding[:] = [3, 1]
    p2c = make_policy("p2c")
    rng = random.Random(1)
    assert {p2c.choose(view, REQ, [0, 1], rng) for _ in range(50)} == {1}
    assert p2c.choose(view, REQ, [0], rng) == 0


def test_slo_aware_skips_a_near_node_whose_queue_breaks_the_sla() -> None:
    view = make_view([5.0, 120.0], [2, 2], slot_s=2.0)
    view.outstanding[:] = [6, 0]  # the near node has 5 ahead: ~5 s wait
    slo = make_policy("slo-aware")
    rng = random.Random(0)
    assert {slo.choose(view, REQ, [0, 1], rng) for _ in range(100)} == {1}
    assert make_policy("nearest").choose(view, REQ, [0, 1], rng) == 0


def test_slo_aware_prefers_cheap_idle_nodes_but_explores_only_within_the_filter() -> None:
    view = make_view([20.0, 20.0, 900.0], [4, 4, 4], prices=[20.0, 200.0, 1.0])
    slo = make_policy("slo-aware", explore=0.5)
    rng = random.Random(2)
    picks = [slo.choose(view, REQ, [0, 1, 2], rng) for _ in range(400)]
    assert 2 not in picks  # 900 ms RTT breaks the 500 ms SLA however cheap it is
    assert picks.count(0) > picks.count(1)  # cheaper wins more often at equal load


def test_slo_aware_and_cost_aware_fall_back_to_least_predicted_ttft() -> None:
    view = make_view([900.0, 700.0, 800.0], [1, 1, 1])
    for name in ("slo-aware", "cost-aware"):
        assert make_policy(name).choose(view, REQ, [0, 1, 2], random.Random(0)) == 1


def test_cost_aware_picks_the_cheapest_node_meeting_the_sla() -> None:
    view = make_view([20.0, 50.0, 450.0, 30.0], [1, 1, 1, 1], prices=[90.0, 60.0, 10.0, 40.0])
    view.outstanding[3] = 5  # cheapest near node is queued far past the SLA
    # node 2 is cheapest but 450 + 100 ms prefill > 500 ms
    assert make_policy("cost-aware").choose(view, REQ, [0, 1, 2, 3], random.Random(0)) == 1


@pytest.mark.parametrize("name", ["nearest", "least-load", "p2c", "slo-aware", "cost-aware"])
def test_no_candidates_is_an_error(name: str) -> None:
    with pytest.raises(NoCandidateError):
        make_policy(name).choose(make_view([1.0], [1]), REQ, [], random.Random(0))


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(min_value=1, max_value=8),
    name=st.sampled_from(["nearest", "least-load", "p2c", "slo-aware", "cost-aware"]),
)
def test_every_policy_returns_one_of_its_candidates(data: st.DataObject, n: int, name: str) -> None:
    rtts = data.draw(st.lists(st.floats(0.0, 2000.0), min_size=n, max_size=n))
    conc = data.draw(st.lists(st.integers(1, 64), min_size=n, max_size=n))
    prices = data.draw(st.lists(st.floats(0.0, 500.0), min_size=n, max_size=n))
    view = make_view(rtts, conc, prices)
    view.outstanding[:] = data.draw(st.lists(st.integers(0, 200), min_size=n, max_size=n))
    candidates = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    request = RouteRequest("u", data.draw(st.integers(1, 8000)), data.draw(st.floats(1.0, 5000.0)))
    pick = make_policy(name).choose(view, request, candidates, random.Random(data.draw(st.integers(0, 99))))
    assert pick in candidates
