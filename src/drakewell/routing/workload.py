"""Seeded inference workloads: who asks, when, and how many tokens.

Users sit in regions (:class:`UserRegion`), each with a share of the demand, a UTC offset and a
last-mile access RTT that is added to every request from that region.

**Arrivals** per region are a non-homogeneous Poisson process with rate

``λ_r(t) = base · share_r · (1 + A · cos(2π (h_r(t) − peak_hour) / 24)) · (M if a burst is on else 1)``

where ``h_r(t)`` is the local hour, ``A`` the daily amplitude and ``M`` the burst multiplier.
Bursts start as a Poisson process (``burst_rate_per_hour`` per region) and last an exponential time
(mean ``burst_mean_s``). Arrivals are drawn by thinning (Lewis–Shedler): candidates at the peak rate,
each kept with probability ``λ_r(t) / λ_max``.

**Token lengths** are log-normal (median and log-σ stated in :class:`WorkloadSpec`), rounded and
clipped to ``[1, max]``; prompts and outputs are drawn independently.

**Load**: :func:`rate_for_load` sets ``base`` so that the *expected* offered load over the simulated
window, ``E[arrivals] · E[slot seconds] / Σ slots``, equals the target (E[slot seconds] is the
capacity-weighted mean over nodes, estimated from 200,000 token draws with a fixed seed).

Everything is drawn from one ``numpy.random.Generator(seed)``, so a seed fixes the workload and every
policy sees the same requests.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from drakewell.core.errors import RoutingError
from drakewell.routing.nodes import EdgeNode

SECONDS_PER_DAY = 86_400.0


class WorkloadError(RoutingError):
    """A workload specification is invalid."""


@dataclass(frozen=True)
class UserRegion:
    """Users in one region: their share of demand, their clock and their last-mile RTT."""

    region: str
    share: float
    utc_offset_h: float
    access_rtt_ms: float = 20.0


@dataclass(frozen=True)
class WorkloadSpec:
    """How a workload is drawn (see module docstring); times in seconds from ``start_utc_h``."""

    users: tuple[UserRegion, ...]
    duration_s: float = 3600.0
    start_utc_h: float = 12.0
    base_rate_per_s: float = 10.0  # total over regions when the daily factor and bursts are 1
    daily_amplitude: float = 0.5
    peak_local_h: float = 20.0
    burst_rate_per_hour: float = 2.0
    burst_mean_s: float = 30.0
    burst_multiplier: float = 2.0
    prompt_median_tokens: float = 400.0
    prompt_sigma: float = 0.8
    prompt_max_tokens: int = 4096
    output_median_tokens: float = 150.0
    output_sigma: float = 0.7
    output_max_tokens: int = 1024
    sla_ttft_ms: float = 800.0

    def __post_init__(self) -> None:
        if not self.users:
            raise WorkloadError("the workload has no user regions", hint="add at least one UserRegion")
        regions = [u.region for u in self.users]
        if len(set(regions)) != len(regions):
            raise WorkloadError("a user region is listed twice", hint="list each user region once")
        for u in self.users:
            if not (math.isfinite(u.share) and u.share > 0):
                raise WorkloadError(
                    f"user region {u.region!r}: share must be > 0", hint="use a positive weight"
                )
            if not (math.isfinite(u.access_rtt_ms) and u.access_rtt_ms >= 0):
                raise WorkloadError(
                    f"user region {u.region!r}: access_rtt_ms must be ≥ 0", hint="use the last-mile RTT in ms"
                )
        positive = {
            "duration_s": self.duration_s,
            "base_rate_per_s": self.base_rate_per_s,
            "burst_mean_s": self.burst_mean_s,
            "prompt_median_tokens": self.prompt_median_tokens,
            "output_median_tokens": self.output_median_tokens,
            "sla_ttft_ms": self.sla_ttft_ms,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise WorkloadError(
                    f"{name} must be a positive number, got {value!r}", hint=f"set {name} > 0"
                )
        if not 0 <= self.daily_amplitude < 1:
            raise WorkloadError(
                f"daily_amplitude must be in [0, 1), got {self.daily_amplitude}",
                hint="the rate must stay positive: use e.g. 0.5",
            )
        if self.burst_multiplier < 1 or self.burst_rate_per_hour < 0:
            raise WorkloadError(
                "burst_multiplier must be ≥ 1 and burst_rate_per_hour ≥ 0",
                hint="use burst_rate_per_hour=0 for no bursts",
            )
        if (
            self.prompt_sigma < 0
            or self.output_sigma < 0
            or self.prompt_max_tokens < 1
            or self.output_max_tokens < 1
        ):
            raise WorkloadError(
                "token sigmas must be ≥ 0 and max tokens ≥ 1", hint="check the token distributions"
            )


@dataclass(frozen=True)
class Workload:
    """Requests in arrival order, as columns (``user`` indexes ``spec.users``)."""

    spec: WorkloadSpec
    arrival_s: npt.NDArray[np.float64]
    user: npt.NDArray[np.int64]
    prompt_tokens: npt.NDArray[np.int64]
    output_tokens: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.arrival_s)


def emerging_market_users() -> tuple[UserRegion, ...]:
    """Users for the default fleet: demand in each node's region, shares sized like the nodes."""
    return (
        UserRegion("aws:af-south-1", 1.0, 2.0, 30.0),
        UserRegion("aws:me-south-1", 1.0, 3.0, 25.0),
        UserRegion("aws:ap-south-1", 1.0, 5.5, 30.0),
        UserRegion("aws:sa-east-1", 1.0, -3.0, 25.0),
        UserRegion("aws:ap-southeast-3", 1.0, 7.0, 30.0),
        UserRegion("aws:us-east-1", 1.0, -5.0, 10.0),
    )


def _daily_factor(
    spec: WorkloadSpec, user: UserRegion, t_s: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    local_h = (spec.start_utc_h + user.utc_offset_h + t_s / 3600.0) % 24.0
    return 1.0 + spec.daily_amplitude * np.cos(2 * np.pi * (local_h - spec.peak_local_h) / 24.0)


def _tokens(rng: np.random.Generator, median: float, sigma: float, cap: int, n: int) -> npt.NDArray[np.int64]:
    raw = np.rint(rng.lognormal(math.log(median), sigma, n))
    return np.clip(raw, 1, cap).astype(np.int64)


def mean_tokens(spec: WorkloadSpec) -> tuple[float, float]:
    """Mean (prompt, output) tokens of ``spec``'s clipped distributions (fixed-seed estimate)."""
    return (
        _mean_clipped_lognormal(spec.prompt_median_tokens, spec.prompt_sigma, spec.prompt_max_tokens),
        _mean_clipped_lognormal(spec.output_median_tokens, spec.output_sigma, spec.output_max_tokens),
    )


@functools.lru_cache(maxsize=64)
def _mean_clipped_lognormal(median: float, sigma: float, cap: int) -> float:
    return float(_tokens(np.random.default_rng(0), median, sigma, cap, 200_000).mean())


def mean_slot_seconds(spec: WorkloadSpec, nodes: tuple[EdgeNode, ...]) -> float:
    """Capacity-weighted mean seconds a request holds a slot."""
    prompt, output = mean_tokens(spec)
    slots = sum(n.concurrency for n in nodes)
    capacity_per_s = sum(n.concurrency / n.slot_seconds(prompt, output) for n in nodes)
    return slots / capacity_per_s


def expected_rate_factor(spec: WorkloadSpec) -> float:
    """Mean of ``Σ_r share_r · daily_r(t) · E[burst factor]`` over the window, per unit base rate."""
    t = np.linspace(0.0, spec.duration_s, 2001)
    total_share = sum(u.share for u in spec.users)
    daily = sum(u.share * _daily_factor(spec, u, t).mean() for u in spec.users) / total_share
    on_fraction = _burst_on_fraction(spec)
    return float(daily * (1.0 + on_fraction * (spec.burst_multiplier - 1.0)))


def _burst_on_fraction(spec: WorkloadSpec) -> float:
    # Long-run fraction of time a region is in a burst (overlapping bursts count once):
    # an M/G/∞ busy probability, 1 − exp(−rate · mean duration).
    return 1.0 - math.exp(-spec.burst_rate_per_hour / 3600.0 * spec.burst_mean_s)


def rate_for_load(spec: WorkloadSpec, nodes: tuple[EdgeNode, ...], load: float) -> float:
    """``base_rate_per_s`` that makes the expected offered load over the window equal ``load``."""
    if not (math.isfinite(load) and load > 0):
        raise WorkloadError(f"load must be > 0, got {load!r}", hint="use a fraction of capacity such as 0.8")
    slots = sum(n.concurrency for n in nodes)
    return load * slots / mean_slot_seconds(spec, nodes) / expected_rate_factor(spec)


def _bursts(rng: np.random.Generator, spec: WorkloadSpec) -> list[tuple[float, float]]:
    # Start a little before the window so a burst can already be on at t = 0.
    lead = 5 * spec.burst_mean_s
    span = spec.duration_s + lead
    n = rng.poisson(spec.burst_rate_per_hour / 3600.0 * span)
    starts = rng.uniform(-lead, spec.duration_s, n)
    ends = starts + rng.exponential(spec.burst_mean_s, n)
    return sorted(zip(starts.tolist(), ends.tolist(), strict=True))


def generate_workload(spec: WorkloadSpec, seed: int) -> Workload:
    """Draw the requests of ``spec`` with ``seed`` (same seed, same requests)."""
    rng = np.random.default_rng(seed)
    total_share = sum(u.share for u in spec.users)
    times: list[npt.NDArray[np.float64]] = []
    users: list[npt.NDArray[np.int64]] = []
    for idx, user in enumerate(spec.users):
        base = spec.base_rate_per_s * user.share / total_share
        lam_max = base * (1.0 + spec.daily_amplitude) * spec.burst_multiplier
        n = rng.poisson(lam_max * spec.duration_s)
        t = np.sort(rng.uniform(0.0, spec.duration_s, n))
        factor = base * _daily_factor(spec, user, t)
        in_burst = np.zeros(n, dtype=bool)
        for start, end in _bursts(rng, spec):
            in_burst |= (t >= start) & (t < end)
        rate = factor * np.where(in_burst, spec.burst_multiplier, 1.0)
        keep = rng.uniform(0.0, lam_max, n) < rate
        times.append(t[keep])
        users.append(np.full(int(keep.sum()), idx, dtype=np.int64))
    arrival = np.concatenate(times) if times else np.empty(0)
    user_idx = np.concatenate(users) if users else np.empty(0, dtype=np.int64)
    order = np.argsort(arrival, kind="stable")
    n_total = len(order)
    prompt = _tokens(rng, spec.prompt_median_tokens, spec.prompt_sigma, spec.prompt_max_tokens, n_total)
    output = _tokens(rng, spec.output_median_tokens, spec.output_sigma, spec.output_max_tokens, n_total)
    return Workload(spec, arrival[order], user_idx[order], prompt, output)
