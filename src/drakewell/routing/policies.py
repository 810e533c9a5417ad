"""Routing policies: a registry behind one narrow seam.

A policy is any object with ``choose(view, request, candidates, rng) -> node index``. It sees a
:class:`FleetView` (nodes, RTTs from each user region, live load) and returns one of
``candidates`` (node indices the caller allows: in the gateway, the healthy ones not yet tried).
The simulator and the HTTP gateway call the same policies through this seam.

**Predicted TTFT** of node ``i`` for a request from user region ``u`` with ``p`` prompt tokens:

``ttft_i = rtt[u][i] + wait_i + p / prefill_i`` (ms), with the queue-wait estimate
``wait_i = max(0, outstanding_i − C_i + 1) · slot_s_i / C_i`` — a request that finds all ``C_i``
slots taken waits, in a FIFO queue served by ``C_i`` slots, about one mean slot time per ``C_i``
requests ahead of it. ``outstanding_i`` counts requests sent and not finished (so requests still in
flight to the node count), and ``slot_s_i`` is a moving average of observed slot times.

Policies (register more with :func:`register_policy`):

- ``nearest`` — least RTT.
- ``least-load`` — least ``outstanding / C`` (ties: least RTT).
- ``p2c`` — power of two choices: two distinct random candidates, drawn with probability
  proportional to their slots (uniform draws would send two thirds of the traffic to small nodes
  in a fleet with one big node), the less loaded (``outstanding / C``) wins.
- ``slo-aware`` — keep nodes whose predicted TTFT, with the queue wait multiplied by
  ``wait_margin`` (default 2: the wait behind a few long requests has a heavy tail), is
  ≤ ``(1 − headroom) · SLA``; score each by
  ``w_load · outstanding/C + w_cost · cost/min_cost + w_ttft · ttft/SLA`` and pick one at random
  with weight ``1/score²``; with probability ``explore`` pick uniformly among the kept nodes (so
  estimates for every node stay fresh, without ever breaking the filter). With no node kept, the
  least predicted TTFT.
- ``cost-aware`` — the cheapest node (energy cost per slot-second) whose predicted TTFT, queue wait
  times ``wait_margin`` (default 2, as above), is ≤ SLA (no headroom); with none, the least
  predicted TTFT.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from drakewell.core.errors import RoutingError
from drakewell.core.registry import Registry
from drakewell.routing.nodes import EdgeNode, check_unique_names

SLOT_S_EWMA_ALPHA = 0.05


class UnknownPolicyError(RoutingError):
    """No routing policy is registered under that name."""


class NoCandidateError(RoutingError):
    """A policy was asked to choose among no nodes."""


@dataclass(frozen=True)
class RouteRequest:
    """What a policy may know about a request before it is served."""

    user_region: str
    prompt_tokens: int
    sla_ttft_ms: float


class FleetView:
    """Nodes, RTTs from each user region, and live load: everything a policy reads.

    ``rtt_ms[user_region][i]`` is the round trip from a user in that region to node ``i``,
    last-mile access included. The owner (simulator or gateway) keeps ``outstanding`` and
    ``slot_s`` current with :meth:`on_dispatch`, :meth:`on_finish` and :meth:`observe_slot_s`.
    """

    __slots__ = (
        "concurrency",
        "cost_per_slot_s",
        "nodes",
        "outstanding",
        "prefill_ms_per_token",
        "rtt_ms",
        "slot_s",
    )

    def __init__(
        self,
        nodes: Sequence[EdgeNode],
        rtt_ms: Mapping[str, Sequence[float]],
        typical_slot_s: Sequence[float],
    ) -> None:
        self.nodes = tuple(nodes)
        check_unique_names(self.nodes)
        n = len(self.nodes)
        for region, row in rtt_ms.items():
            if len(row) != n:
                raise RoutingError(
                    f"RTT row for {region!r} has {len(row)} values for {n} nodes",
                    hint="give one RTT per node, in node order",
                )
        if len(typical_slot_s) != n:
            raise RoutingError("typical_slot_s needs one value per node", hint="pass one per node, in order")
        self.rtt_ms: dict[str, tuple[float, ...]] = {
            r: tuple(float(x) for x in row) for r, row in rtt_ms.items()
        }
        self.concurrency = tuple(node.concurrency for node in self.nodes)
        self.prefill_ms_per_token = tuple(1000.0 / node.prefill_tokens_per_s for node in self.nodes)
        self.cost_per_slot_s = tuple(node.cost_usd_per_slot_s for node in self.nodes)
        self.outstanding = [0] * n
        self.slot_s = [float(s) for s in typical_slot_s]

    def rtt_row(self, user_region: str) -> tuple[float, ...]:
        try:
            return self.rtt_ms[user_region]
        except KeyError:
            raise RoutingError(
                f"no RTTs known from user region {user_region!r}",
                hint=f"route from one of: {', '.join(sorted(self.rtt_ms))}",
            ) from None

    def predicted_wait_ms(self, i: int) -> float:
        ahead = self.outstanding[i] - self.concurrency[i] + 1
        return ahead * 1000.0 * self.slot_s[i] / self.concurrency[i] if ahead > 0 else 0.0

    def predicted_ttft_ms(self, i: int, rtt_row: Sequence[float], prompt_tokens: int) -> float:
        return rtt_row[i] + self.predicted_wait_ms(i) + prompt_tokens * self.prefill_ms_per_token[i]

    def on_dispatch(self, i: int) -> None:
        self.outstanding[i] += 1

    def on_finish(self, i: int) -> None:
        self.outstanding[i] -= 1

    def observe_slot_s(self, i: int, slot_s: float) -> None:
        self.slot_s[i] += SLOT_S_EWMA_ALPHA * (slot_s - self.slot_s[i])


class RoutingPolicy(Protocol):
    """The seam: pick one of ``candidates`` (node indices into ``view.nodes``)."""

    name: str

    def choose(
        self, view: FleetView, request: RouteRequest, candidates: Sequence[int], rng: random.Random
    ) -> int: ...


POLICIES: Registry[RoutingPolicy] = Registry(
    "routing policy", unknown=UnknownPolicyError, refused=RoutingError
)
register_policy = POLICIES.register


def policy_names() -> tuple[str, ...]:
    """Registered policy names, in registration order."""
    return tuple(POLICIES)


def make_policy(name: str, **params: float) -> RoutingPolicy:
    """A fresh policy by name; ``params`` go to its constructor."""
    return POLICIES.make(name, **params)


def _require(candidates: Sequence[int]) -> None:
    if not candidates:
        raise NoCandidateError("no candidate node to route to", hint="bring a node back up or add one")


@register_policy("nearest")
class Nearest:
    name = "nearest"

    def choose(
        self, view: FleetView, request: RouteRequest, candidates: Sequence[int], rng: random.Random
    ) -> int:
        _require(candidates)
        row = view.rtt_row(request.user_region)
        return min(candidates, key=row.__getitem__)


@register_policy("least-load")
class LeastLoad:
    name = "least-load"

    def choose(
        self, view: FleetView, request: RouteRequest, candidates: Sequence[int], rng: random.Random
    ) -> int:
        _require(candidates)
        row = view.rtt_row(request.user_region)
        out, conc = view.outstanding, view.concurrency
        return min(candidates, key=lambda i: (out[i] / conc[i], row[i]))


def _draw_by_slots(candidates: Sequence[int], conc: Sequence[int], rng: random.Random) -> int:
    x = rng.random() * sum(conc[i] for i in candidates)
    for i in candidates:
        x -= conc[i]
        if x < 0:
            return i
    return candidates[-1]


@register_policy("p2c")
class PowerOfTwoChoices:
    name = "p2c"

    def choose(
        self, view: FleetView, request: RouteRequest, candidates: Sequence[int], rng: random.Random
    ) -> int:
        _require(candidates)
        if len(candidates) == 1:
            return candidates[0]
        conc = view.concurrency
        a = _draw_by_slots(candidates, conc, rng)
        b = a
        while b == a:
            b = _draw_by_slots(candidates, conc, rng)
        out = view.outstanding
        return a if out[a] / conc[a] <= out[b] / conc[b] else b


def _best_effort(
    view: FleetView, row: Sequence[float], request: RouteRequest, candidates: Sequence[int]
) -> int:
    return min(candidates, key=lambda i: view.predicted_ttft_ms(i, row, request.prompt_tokens))


@register_policy("slo-aware")
class SloAware:
    name = "slo-aware"

    def __init__(
        self,
        headroom: float = 0.2,
        explore: float = 0.02,
        w_load: float = 1.0,
        w_cost: float = 1.0,
        w_ttft: float = 1.0,
        wait_margin: float = 2.0,
    ) -> None:
        if not 0 <= headroom < 1 or not 0 <= explore <= 1 or min(w_load, w_cost, w_ttft) < 0:
            raise RoutingError(
                "slo-aware needs 0 ≤ headroom < 1, 0 ≤ explore ≤ 1 and non-negative weights",
                hint="e.g. headroom=0.2, explore=0.02",
            )
        self.headroom, self.explore = headroom, explore
        self.w_load, self.w_cost, self.w_ttft = w_load, w_cost, w_ttft
        self.wait_margin = wait_margin

    def choose(
        self, view: FleetView, request: RouteRequest, candidates: Sequence[int], rng: random.Random
    ) -> int:
        _require(candidates)
        row = view.rtt_ms.get(request.user_region) or view.rtt_row(request.user_region)
        sla = request.sla_ttft_ms
        limit = (1.0 - self.headroom) * sla
        p = request.prompt_tokens
        margin_ms = 1000.0 * self.wait_margin
        out, conc, cost, prefill, slot_s = (
            view.outstanding,
            view.concurrency,
            view.cost_per_slot_s,
            view.prefill_ms_per_token,
            view.slot_s,
        )
        kept: list[int] = []
        ttfts: list[float] = []
        for i in candidates:
            ahead = out[i] - conc[i] + 1
            ttft = row[i] + p * prefill[i] + (ahead * margin_ms * slot_s[i] / conc[i] if ahead > 0 else 0.0)
            if ttft <= limit:
                kept.append(i)
                ttfts.append(ttft)
        if not kept:
            return _best_effort(view, row, request, candidates)
        if len(kept) == 1:
            return kept[0]
        if rng.random() < self.explore:
            return kept[rng.randrange(len(kept))]
        min_cost = min(cost[i] for i in kept) or 1.0
        weights = []
        for i, ttft in zip(kept, ttfts, strict=True):
            rho = out[i] / conc[i]
            rho = rho if rho < 0.95 else 0.95
            score = (
                self.w_load * rho / (1.0 - rho) + self.w_cost * cost[i] / min_cost + self.w_ttft * ttft / sla
            )
            weights.append(1.0 / (score * score + 1e-12))
        return rng.choices(kept, weights)[0]


@register_policy("cost-aware")
class CostAware:
    name = "cost-aware"

    def __init__(self, wait_margin: float = 2.0) -> None:
        if not wait_margin >= 0:
            raise RoutingError("cost-aware needs wait_margin ≥ 0", hint="e.g. wait_margin=2.0")
        self.wait_margin = wait_margin

    def choose(
        self, view: FleetView, request: RouteRequest, candidates: Sequence[int], rng: random.Random
    ) -> int:
        _require(candidates)
        row = view.rtt_row(request.user_region)
        sla = request.sla_ttft_ms
        cost = view.cost_per_slot_s
        p = request.prompt_tokens
        best, best_cost = -1, float("inf")
        for i in candidates:
            if cost[i] < best_cost:
                ttft = (
                    row[i] + p * view.prefill_ms_per_token[i] + self.wait_margin * view.predicted_wait_ms(i)
                )
                if ttft <= sla:
                    best, best_cost = i, cost[i]
        return best if best >= 0 else _best_effort(view, row, request, candidates)
