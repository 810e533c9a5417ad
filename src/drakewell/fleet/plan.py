"""Allocation rules: a power target per class → one order per device that has to change.

Pure functions over frozen views of the devices' last known state; no I/O.

**Miners** (IT watts). Let ``F`` be the power of unreachable miners, counted at their last known
draw because nothing can be proven about them, and ``T`` the target. Reachable miners are ranked by
efficiency ``e_i`` (J/TH, from the catalogue), best first.

* *Curtail* (``T`` below the present draw): no miner is raised. Every awake miner is first assumed
  asleep (drawing its board power ``b_i``); the headroom ``A = T − F − Σ asleep draw − Σ b_i`` is then
  handed out best first: a miner keeps its present level ``p_i`` if ``p_i − b_i ≤ A``; otherwise it is
  trimmed to the power limit ``b_i + A`` if its firmware has limits and that is at least its minimum
  limit; otherwise it sleeps. So the least efficient miners (highest J/TH) sleep first and one power
  limit trims the margin.
* *Raise* (``T`` above the present draw): no miner is lowered. Limits of awake trimmed miners are
  raised first (best first), then sleeping miners wake best first — only those asleep for at least
  the site's minimum off time — each at full power, or under a power limit if only part of it fits.

**GPUs** (per class: inference, training, spot). ``n`` reachable GPUs of the class, each with NVML
cap bounds ``[c_min, c_max]``. Caps come before pausing jobs: the uniform cap is
``clamp((T − F − P) / n, c_min, c_max)`` with ``P`` the idle draw of GPUs whose job is paused. Only
when even ``n · c_min`` does not fit are training jobs paused (last listed first) until it does;
when the target rises, paused jobs resume (first listed first) while their GPUs fit at ``c_min``.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from drakewell.fleet.devices import Command

__all__ = ["GpuView", "JobView", "MinerView", "Order", "plan_gpus", "plan_mining"]

_CAP_STEP_W = 1.0  # caps closer than this to the present one are left alone


@dataclass(frozen=True)
class MinerView:
    id: str
    efficiency_j_per_th: float
    rated_power_w: float
    board_power_w: float
    min_power_limit_w: float
    supports_power_limit: bool
    power_w: float  # last known draw (rated power if never read)
    mining: bool
    power_limit_w: float | None
    reachable: bool
    asleep_since_s: float | None  # wall-clock seconds when it was seen asleep first


@dataclass(frozen=True)
class GpuView:
    id: str
    role: str  # inference | training | spot
    job: str | None
    power_w: float
    cap_w: float
    min_cap_w: float
    max_cap_w: float
    idle_w: float
    reachable: bool


@dataclass(frozen=True)
class JobView:
    name: str
    gpus: tuple[str, ...]
    paused: bool


@dataclass(frozen=True)
class Order:
    """One command to one device, with the draw it should settle at."""

    device: str
    command: Command
    value_w: int | None  # power limit or cap (W); for WAKE an optional limit to set first
    expected_power_w: float


def _level(m: MinerView) -> float:
    """What an awake miner draws at its present limit."""
    limit = m.power_limit_w if m.power_limit_w is not None else m.rated_power_w
    return min(m.rated_power_w, limit)


def _id_key(device: str) -> tuple[int, str]:
    """IP addresses in numeric order (127.0.1.2 before 127.0.1.10), other ids after them."""
    try:
        return int(ipaddress.ip_address(device)), ""
    except ValueError:
        return 1 << 128, device


def _rank(miners: Iterable[MinerView]) -> list[MinerView]:
    return sorted(miners, key=lambda m: (m.efficiency_j_per_th, _id_key(m.id)))


def plan_mining(
    miners: Sequence[MinerView], target_w: float, *, now_s: float, min_off_s: float
) -> tuple[Order, ...]:
    """Orders that bring the miners' total draw to at most ``target_w`` (curtail) or toward it."""
    present = sum(m.power_w for m in miners)
    if math.isclose(present, target_w, rel_tol=0.0, abs_tol=1.0):
        return ()
    if target_w < present:
        return _curtail(miners, target_w)
    return _raise(miners, target_w, now_s=now_s, min_off_s=min_off_s)


def _curtail(miners: Sequence[MinerView], target_w: float) -> tuple[Order, ...]:
    fixed = sum(m.power_w for m in miners if not m.reachable or not m.mining)
    awake = _rank(m for m in miners if m.reachable and m.mining)
    headroom = target_w - fixed - sum(m.board_power_w for m in awake)
    orders: list[Order] = []
    for m in awake:
        level = _level(m)
        if level - m.board_power_w <= headroom:
            headroom -= level - m.board_power_w
            continue
        trimmed = math.floor(m.board_power_w + max(0.0, headroom))
        if m.supports_power_limit and trimmed >= m.min_power_limit_w:
            orders.append(Order(m.id, Command.LIMIT, trimmed, float(trimmed)))
            headroom -= trimmed - m.board_power_w
        else:
            orders.append(Order(m.id, Command.SLEEP, None, m.board_power_w))
    return tuple(orders)


def _raise(
    miners: Sequence[MinerView], target_w: float, *, now_s: float, min_off_s: float
) -> tuple[Order, ...]:
    extra = target_w - sum(m.power_w for m in miners)
    orders: list[Order] = []
    for m in _rank(m for m in miners if m.reachable and m.mining and m.supports_power_limit):
        level = _level(m)
        if extra <= 0 or level >= m.rated_power_w:
            continue
        new = math.floor(min(m.rated_power_w, level + extra))
        if new > level:
            orders.append(Order(m.id, Command.LIMIT, new, float(new)))
            extra -= new - level
    for m in _rank(m for m in miners if m.reachable and not m.mining):
        if extra <= 0:
            break
        if m.asleep_since_s is not None and now_s - m.asleep_since_s < min_off_s:
            continue  # the minimum off time holds
        full = _level(m)
        if full - m.board_power_w <= extra:
            limit = None
            settle = full
        elif m.supports_power_limit and m.board_power_w + extra >= m.min_power_limit_w:
            limit = math.floor(m.board_power_w + extra)
            settle = float(limit)
        else:
            continue
        orders.append(Order(m.id, Command.WAKE, limit, settle))
        extra -= settle - m.board_power_w
    return tuple(orders)


def plan_gpus(
    gpus: Sequence[GpuView], jobs: Sequence[JobView], targets_w: Mapping[str, float]
) -> tuple[Order, ...]:
    """Cap and job orders that bring each GPU class to its target (classes absent: untouched)."""
    orders: list[Order] = []
    for role, target in targets_w.items():
        members = [g for g in gpus if g.role == role]
        if not members:
            continue
        role_jobs = [j for j in jobs if any(g.job == j.name for g in members)]
        paused = {j.name for j in role_jobs if j.paused}
        job_orders, paused = _pause_or_resume(members, role_jobs, paused, target)
        orders.extend(job_orders)
        active = [g for g in members if g.reachable and g.job not in paused]
        if not active:
            continue
        fixed = sum(g.power_w for g in members if not g.reachable)
        idle = sum(g.idle_w for g in members if g.reachable and g.job in paused)
        for g in active:
            cap = min(g.max_cap_w, max(g.min_cap_w, (target - fixed - idle) / len(active)))
            cap_w = math.floor(cap)
            if abs(cap_w - g.cap_w) >= _CAP_STEP_W:
                orders.append(Order(g.id, Command.CAP, cap_w, min(g.power_w, float(cap_w))))
    return tuple(orders)


def _pause_or_resume(
    members: Sequence[GpuView], jobs: Sequence[JobView], paused: set[str], target: float
) -> tuple[list[Order], set[str]]:
    def floor_w(paused_now: set[str]) -> float:
        """The least the class can draw with these jobs paused (active GPUs at their minimum cap)."""
        return sum(
            g.power_w if not g.reachable else (g.idle_w if g.job in paused_now else g.min_cap_w)
            for g in members
        )

    def job_power(job: JobView) -> float:
        return sum(g.max_cap_w for g in members if g.job == job.name)

    orders: list[Order] = []
    now_paused = set(paused)
    if floor_w(now_paused) > target:
        for job in reversed(jobs):
            if job.name in now_paused:
                continue
            now_paused.add(job.name)
            orders.append(Order(job.name, Command.PAUSE, None, job_power(job)))
            if floor_w(now_paused) <= target:
                break
    else:
        for job in jobs:
            if job.name not in now_paused:
                continue
            trial = now_paused - {job.name}
            if floor_w(trial) > target:
                break
            now_paused = trial
            orders.append(Order(job.name, Command.RESUME, None, job_power(job)))
    return orders, now_paused
