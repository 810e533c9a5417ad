"""Edge inference routing: send each request to the node that answers fastest within its SLA, cheaply.

- :mod:`~drakewell.routing.latency`: inter-region RTT matrix (Skyplane measurements, or a
  great-circle model when the data is absent), with the stated duplicate and imputation rules;
- :mod:`~drakewell.routing.nodes`: edge nodes (slots, prefill/decode speeds, energy price);
- :mod:`~drakewell.routing.workload`: seeded arrivals per user region (daily cycle, bursts) and
  log-normal token lengths;
- :mod:`~drakewell.routing.policies`: the policy registry (``nearest``, ``least-load``, ``p2c``,
  ``slo-aware``, ``cost-aware``) behind one seam, ``choose(view, request, candidates, rng)``;
- :mod:`~drakewell.routing.simulator`: heap-based discrete-event simulation and policy comparison;
- :mod:`~drakewell.routing.gateway`: the OpenAI-compatible HTTP gateway with failover.

Typical use::

    from drakewell.routing import compare_policies, default_scenario
    for result in compare_policies(default_scenario(duration_s=900.0), seed=0):
        print(result.policy, result.ttft_ms_p99, result.sla_attainment)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drakewell.core.lazy import lazy_exports

if TYPE_CHECKING:
    from drakewell.routing.gateway import Backend, Gateway, GatewayConfig, create_gateway_app
    from drakewell.routing.latency import LatencyMatrix, great_circle_matrix, latency_matrix, load_skyplane
    from drakewell.routing.nodes import EdgeNode, emerging_market_nodes
    from drakewell.routing.policies import (
        FleetView,
        RouteRequest,
        RoutingPolicy,
        make_policy,
        policy_names,
        register_policy,
    )
    from drakewell.routing.simulator import (
        PolicyResult,
        Scenario,
        compare_policies,
        default_scenario,
        simulate,
    )
    from drakewell.routing.workload import UserRegion, Workload, WorkloadSpec, generate_workload

_LAZY = {
    "Backend": "drakewell.routing.gateway",
    "Gateway": "drakewell.routing.gateway",
    "GatewayConfig": "drakewell.routing.gateway",
    "create_gateway_app": "drakewell.routing.gateway",
    "LatencyMatrix": "drakewell.routing.latency",
    "great_circle_matrix": "drakewell.routing.latency",
    "latency_matrix": "drakewell.routing.latency",
    "load_skyplane": "drakewell.routing.latency",
    "EdgeNode": "drakewell.routing.nodes",
    "emerging_market_nodes": "drakewell.routing.nodes",
    "FleetView": "drakewell.routing.policies",
    "RouteRequest": "drakewell.routing.policies",
    "RoutingPolicy": "drakewell.routing.policies",
    "make_policy": "drakewell.routing.policies",
    "policy_names": "drakewell.routing.policies",
    "register_policy": "drakewell.routing.policies",
    "PolicyResult": "drakewell.routing.simulator",
    "Scenario": "drakewell.routing.simulator",
    "compare_policies": "drakewell.routing.simulator",
    "default_scenario": "drakewell.routing.simulator",
    "simulate": "drakewell.routing.simulator",
    "UserRegion": "drakewell.routing.workload",
    "Workload": "drakewell.routing.workload",
    "WorkloadSpec": "drakewell.routing.workload",
    "generate_workload": "drakewell.routing.workload",
}

__all__ = [
    "Backend",
    "EdgeNode",
    "FleetView",
    "Gateway",
    "GatewayConfig",
    "LatencyMatrix",
    "PolicyResult",
    "RouteRequest",
    "RoutingPolicy",
    "Scenario",
    "UserRegion",
    "Workload",
    "WorkloadSpec",
    "compare_policies",
    "create_gateway_app",
    "default_scenario",
    "emerging_market_nodes",
    "generate_workload",
    "great_circle_matrix",
    "latency_matrix",
    "load_skyplane",
    "make_policy",
    "policy_names",
    "register_policy",
    "simulate",
]


# Resolved on first use, so `drakewell --help` does not import numpy, httpx or Starlette.
__getattr__ = lazy_exports(__name__, _LAZY)
