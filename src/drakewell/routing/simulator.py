"""Discrete-event simulation of routing policies over one seeded workload.

**Why a heap, not simpy.** The model has exactly two kinds of future event — a request reaching its
node (after half its RTT) and a slot finishing — and no process needs to block on anything else. A
binary heap of ``(time, seq, kind, request)`` tuples does this with one ``heappush``/``heappop`` per
event, about an order of magnitude less work per event than simpy's generator processes, which
matters at hundreds of thousands of requests per policy. ``seq`` breaks time ties in insertion
order, so runs are deterministic.

**What happens to a request** (times in ms are what the user sees):

1. it arrives at the router at ``t`` (the workload's arrival time); the policy picks node ``j``
   from a :class:`~drakewell.routing.policies.FleetView` whose load is exact and instantaneous
   (the router counts what it sent and hears of every finish at once — an idealised gateway);
2. it reaches ``j`` at ``t + rtt/2``; it starts at once if a slot is free, else joins the FIFO queue;
3. it holds its slot for ``prefill + decode`` (see :mod:`drakewell.routing.nodes`);
4. ``TTFT = rtt + wait + prefill`` and ``end-to-end = rtt + wait + prefill + decode``.

**Reported per policy**: p50/p90/p99 TTFT and end-to-end latency, SLA attainment (share of requests
with TTFT ≤ the workload's SLA), output tokens per second and utilisation per node (busy
slot-seconds / (slots · makespan), makespan = the later of the window's end and the last finish), the
share of requests each node served, and energy cost (slot-seconds × each node's USD per
slot-second), also per million output tokens.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from drakewell.core.errors import RoutingError
from drakewell.routing.latency import LatencyMatrix, latency_matrix
from drakewell.routing.nodes import EdgeNode, check_unique_names, emerging_market_nodes
from drakewell.routing.policies import FleetView, RouteRequest, RoutingPolicy, make_policy, policy_names
from drakewell.routing.workload import (
    Workload,
    WorkloadSpec,
    emerging_market_users,
    generate_workload,
    mean_tokens,
    rate_for_load,
)

_ARRIVE, _FINISH = 0, 1
# The default users' summed daily cycle peaks, flat, around 17:45 UTC (evening in Africa and the
# Gulf, late evening in South and South-East Asia): windows start there so "80% load" holds throughout.
BUSY_HOUR_START_UTC_H = 17.25


@dataclass(frozen=True)
class Scenario:
    """A fleet, its users and the RTTs between them."""

    nodes: tuple[EdgeNode, ...]
    spec: WorkloadSpec
    matrix: LatencyMatrix

    def __post_init__(self) -> None:
        check_unique_names(self.nodes)
        for region in {n.region for n in self.nodes} | {u.region for u in self.spec.users}:
            self.matrix.index(region)  # raises with a hint when a region has no RTTs

    def rtt_rows(self) -> dict[str, tuple[float, ...]]:
        """User region → RTT in ms to each node, last-mile access included."""
        return {
            u.region: tuple(self.matrix.rtt(u.region, n.region) + u.access_rtt_ms for n in self.nodes)
            for u in self.spec.users
        }

    def fleet_view(self) -> FleetView:
        """A fresh view with no load; slot-time estimates start at each node's mean."""
        prompt, output = mean_tokens(self.spec)
        return FleetView(self.nodes, self.rtt_rows(), [n.slot_seconds(prompt, output) for n in self.nodes])


def default_scenario(
    *, load: float = 0.8, duration_s: float = 3600.0, sla_ttft_ms: float = 800.0, latency_source: str = "auto"
) -> Scenario:
    """Emerging-market fleet and users at ``load`` of total capacity over ``duration_s`` from 17:15 UTC.

    RTTs are measured (Skyplane) when the data folder is present, else modelled from distance.
    """
    nodes = emerging_market_nodes()
    spec = WorkloadSpec(
        users=emerging_market_users(),
        duration_s=duration_s,
        start_utc_h=BUSY_HOUR_START_UTC_H,
        sla_ttft_ms=sla_ttft_ms,
    )
    spec = WorkloadSpec(**{**spec.__dict__, "base_rate_per_s": rate_for_load(spec, nodes, load)})
    regions = sorted({n.region for n in nodes} | {u.region for u in spec.users})
    return Scenario(nodes, spec, latency_matrix(regions, source=latency_source))


@dataclass(frozen=True, eq=False)
class PolicyResult:
    """One policy's figures on one workload (latencies in ms)."""

    policy: str
    n_requests: int
    ttft_ms_p50: float
    ttft_ms_p90: float
    ttft_ms_p99: float
    e2e_ms_p50: float
    e2e_ms_p90: float
    e2e_ms_p99: float
    sla_attainment: float
    tokens_per_s: float
    utilisation: dict[str, float]
    share: dict[str, float]
    cost_usd: float
    cost_usd_per_mtok: float
    ttft_ms: npt.NDArray[np.float64] = field(repr=False)

    def summary(self) -> dict[str, object]:
        """The figures as plain JSON-ready values (without the raw TTFT array)."""
        return {k: v for k, v in self.__dict__.items() if k != "ttft_ms"}


def _check_drawn_for(workload: Workload, scenario: Scenario) -> None:
    if workload.spec.users != scenario.spec.users:
        raise RoutingError(
            "the workload was drawn for other user regions than the scenario's",
            hint="generate the workload from scenario.spec",
        )


def simulate(scenario: Scenario, workload: Workload, policy: RoutingPolicy, *, seed: int = 0) -> PolicyResult:
    """Run ``workload`` through ``scenario``'s fleet with ``policy`` (see module docstring)."""
    _check_drawn_for(workload, scenario)
    nodes = scenario.nodes
    view = scenario.fleet_view()
    rows = [view.rtt_row(u.region) for u in scenario.spec.users]
    region_of = [u.region for u in scenario.spec.users]
    sla = scenario.spec.sla_ttft_ms
    rng = random.Random(seed)
    candidates = tuple(range(len(nodes)))
    conc = [n.concurrency for n in nodes]
    prefill_s_per_tok = [1.0 / n.prefill_tokens_per_s for n in nodes]
    decode_s_per_tok = [1.0 / n.decode_tokens_per_s for n in nodes]

    arrival = workload.arrival_s.tolist()
    users = workload.user.tolist()
    prompts = workload.prompt_tokens.tolist()
    outputs = workload.output_tokens.tolist()
    n_req = len(arrival)
    node_of = [0] * n_req
    rtt_s = [0.0] * n_req
    ttft = [0.0] * n_req
    e2e = [0.0] * n_req
    busy = [0] * len(nodes)
    busy_s = [0.0] * len(nodes)
    served = [0] * len(nodes)
    queues: list[deque[int]] = [deque() for _ in nodes]
    heap: list[tuple[float, int, int, int]] = []
    seq = 0
    last_finish = 0.0

    def start(k: int, now: float) -> None:
        nonlocal seq
        j = node_of[k]
        busy[j] += 1
        prefill = prompts[k] * prefill_s_per_tok[j]
        slot = prefill + outputs[k] * decode_s_per_tok[j]
        busy_s[j] += slot
        wait = now - (arrival[k] + rtt_s[k] / 2)
        ttft[k] = rtt_s[k] + wait + prefill
        e2e[k] = rtt_s[k] + wait + slot
        seq += 1
        heapq.heappush(heap, (now + slot, seq, _FINISH, k))

    def handle(event: tuple[float, int, int, int]) -> None:
        nonlocal last_finish
        now, _, kind, k = event
        j = node_of[k]
        if kind == _ARRIVE:
            if busy[j] < conc[j]:
                start(k, now)
            else:
                queues[j].append(k)
            return
        busy[j] -= 1
        view.on_finish(j)
        view.observe_slot_s(j, prompts[k] * prefill_s_per_tok[j] + outputs[k] * decode_s_per_tok[j])
        last_finish = now
        if queues[j]:
            start(queues[j].popleft(), now)

    for k in range(n_req):
        t = arrival[k]
        while heap and heap[0][0] <= t:
            handle(heapq.heappop(heap))
        u = users[k]
        j = policy.choose(view, RouteRequest(region_of[u], prompts[k], sla), candidates, rng)
        node_of[k] = j
        served[j] += 1
        view.on_dispatch(j)
        rtt_s[k] = rows[u][j] / 1000.0
        seq += 1
        heapq.heappush(heap, (t + rtt_s[k] / 2, seq, _ARRIVE, k))
    while heap:
        handle(heapq.heappop(heap))

    return _result(policy.name, scenario, workload, ttft, e2e, busy_s, served, last_finish)


def _result(
    name: str,
    scenario: Scenario,
    workload: Workload,
    ttft: list[float],
    e2e: list[float],
    busy_s: list[float],
    served: list[int],
    last_finish: float,
) -> PolicyResult:
    """A run's figures: latency percentiles, SLA attainment, throughput, utilisation, share, cost."""
    nodes, sla, n_req = scenario.nodes, scenario.spec.sla_ttft_ms, len(ttft)
    makespan = max(scenario.spec.duration_s, last_finish)
    ttft_ms = np.asarray(ttft) * 1000.0
    e2e_ms = np.asarray(e2e) * 1000.0
    cost = sum(busy_s[j] * nodes[j].cost_usd_per_slot_s for j in range(len(nodes)))
    total_out = int(workload.output_tokens.sum())

    def pct(a: npt.NDArray[np.float64], q: float) -> float:
        return float(np.percentile(a, q)) if len(a) else float("nan")

    return PolicyResult(
        policy=name,
        n_requests=n_req,
        ttft_ms_p50=pct(ttft_ms, 50),
        ttft_ms_p90=pct(ttft_ms, 90),
        ttft_ms_p99=pct(ttft_ms, 99),
        e2e_ms_p50=pct(e2e_ms, 50),
        e2e_ms_p90=pct(e2e_ms, 90),
        e2e_ms_p99=pct(e2e_ms, 99),
        sla_attainment=float(np.mean(ttft_ms <= sla)) if n_req else float("nan"),
        tokens_per_s=total_out / makespan,
        utilisation={n.name: busy_s[j] / (n.concurrency * makespan) for j, n in enumerate(nodes)},
        share={n.name: served[j] / n_req if n_req else 0.0 for j, n in enumerate(nodes)},
        cost_usd=cost,
        cost_usd_per_mtok=cost / total_out * 1e6 if total_out else float("nan"),
        ttft_ms=ttft_ms,
    )


def compare_policies(
    scenario: Scenario, *, policies: Sequence[str] | None = None, seed: int = 0
) -> list[PolicyResult]:
    """Every named policy (default: all registered) on the same workload drawn with ``seed``."""
    workload = generate_workload(scenario.spec, seed)
    names = tuple(policies) if policies else policy_names()
    return [simulate(scenario, workload, make_policy(name), seed=seed) for name in names]
