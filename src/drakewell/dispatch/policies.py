"""Dispatch policies: a registry behind one narrow seam.

A policy is an object with a ``name``, an ``online`` flag and ``run(inputs, progress=None) ->
Decisions``. Online policies may read, when deciding interval ``t``, only what is known at ``t``:
the real-time price and emergency cap of ``t`` and earlier, the day-ahead prices and reserve prices
published by ``t`` (``forecast_known_from``), the current hashprice and the contracted AI profile
and jobs. ``tests/dispatch`` checks this by perturbing everything after ``t``.

- ``perfect``: one LP over the whole horizon with realised prices and the true 4CP intervals
  (:func:`drakewell.dispatch.model.solve`): the upper bound.
- ``mpc``: receding horizon. Every interval it re-solves one reusable :class:`DispatchModel` whose
  look-ahead has a fine head and a coarse tail — 16 × 15 min (4 h), then 20 × 1 h (to 24 h), then
  36 × 4 h (to 7 days, a full weekly training cycle): 72 periods instead of 672, so a step costs a
  few milliseconds. The structure never changes; each step only rewrites costs and bounds and HiGHS
  warm-starts from the previous basis (presolve off). Prices: the current real-time price for the
  current interval, then the published day-ahead price plus the current real-time/day-ahead gap
  decaying by ``blend_decay`` per interval; beyond what is published, the same hour of the last
  published day. Hashprice: persistence. 4CP: a real-time running-peak trigger
  (:func:`four_cp_trigger`) on weekday 15:00-19:00 CT intervals of June-September, graded from 0 at
  ``trigger_ratio`` × the month's earlier window peak to 1 at a new peak; drawing power now then
  costs the 4CP rate × trigger grade × the chance that the running peak stays the month's peak
  (:func:`peak_chance`: ``F(price) ** days_left``, ``F`` the share of the past window days whose
  peak stayed below the price, ``days_left`` the window days left in the month; until
  ``MIN_PEAK_DAYS`` days have passed, the position weight :func:`record_weight`). The trigger only
  counts on the day-ahead 4CP
  alert days of the site's forecast rule (``four_cp_forecast``, published with the day-ahead
  prices; every window is an alert when there is no day-ahead file). The LP weighs shedding load
  now against that expected charge; no 4CP cost is planned for later periods.
  Reserves: at 13:00 Central Time (with the day-ahead results) the plan's reserve for the
  next day is committed and then binds: shortfall pays the penalty. Training jobs use up to
  ``job_slots`` slots (earliest deadlines first); a deadline beyond the look-ahead asks for the
  pro-rata share of the remaining energy within it. Only the first interval is applied.
  Each step is one :meth:`MpcPlanner.decide` and :meth:`MpcPlanner.commit`: the same decision
  function the live site controller (:mod:`drakewell.live`) calls every interval and on events.
- ``threshold``: mine while the real-time price is below the mining breakeven
  (``revenue per MWh / PUE``), within ramp and minimum-off limits; AI flat (inference on demand,
  training at its average rate, spot up to its cap). No reserves, no 4CP awareness.
- ``always``: everything on (the same AI), mining at the highest feasible level.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from drakewell.core.errors import DispatchError
from drakewell.core.registry import Registry
from drakewell.dispatch.inputs import four_cp_window
from drakewell.dispatch.model import (
    DispatchModel,
    DispatchResult,
    JobColumns,
    PeriodData,
    SolveStatus,
    marginal_price,
    solve,
)
from drakewell.dispatch.types import (
    BoolArray,
    Decisions,
    DispatchInputError,
    DispatchInputs,
    FloatArray,
    IntArray,
)
from drakewell.inputs.grid import FOUR_CP_MONTHS
from drakewell.inputs.prices import CENTRAL

Progress = Callable[[int, int], None]  # (intervals done, total)


class Policy(Protocol):
    """The seam: a named strategy that turns inputs into per-interval decisions."""

    name: str
    online: bool

    def run(self, inputs: DispatchInputs, progress: Progress | None = None) -> Decisions: ...


POLICIES: Registry[Policy] = Registry("dispatch policy", unknown=DispatchInputError, choices=" or 'all'")
register = POLICIES.register


def get_policy(name: str) -> Policy:
    """A fresh policy object by name; unknown names raise with the list of known ones."""
    return POLICIES.make(name)


def policy_names() -> list[str]:
    """Registered policy names, best-first for the built-in ones, then any others."""
    order = ["perfect", "stochastic", "mpc", "threshold", "always"]
    return [n for n in order if n in POLICIES] + [n for n in POLICIES if n not in order]


# -- perfect foresight --------------------------------------------------------------------------


class PerfectPolicy:
    name = "perfect"
    online = False

    def run(self, inputs: DispatchInputs, progress: Progress | None = None) -> Decisions:
        t0 = time.perf_counter()
        sol = solve(inputs)
        if sol.status is not SolveStatus.OPTIMAL:
            raise DispatchError(
                f"the full-horizon LP ended with status '{sol.status.value}'",
                hint="check the inputs for extreme values; the model is feasible by construction",
            )
        if progress:
            progress(inputs.n, inputs.n)
        return Decisions(
            mining_mw=np.clip(sol.mining_mw, 0, None),
            inference_mw=np.clip(sol.inference_mw, 0, None),
            training_mw=np.clip(sol.training_mw, 0, None),
            spot_mw=np.clip(sol.spot_mw, 0, None),
            reserve_mw=np.clip(sol.reserve_mw, 0, None),
            training_by_job_mw=tuple(np.clip(x, 0, None) for x in sol.training_by_job_mw),
            solve_seconds=time.perf_counter() - t0,
            statuses={sol.status.value: 1},
        )


register("perfect")(PerfectPolicy)


# -- rule-based policies ------------------------------------------------------------------------


def simulate_rule(inputs: DispatchInputs, mine_on: BoolArray) -> Decisions:
    """Run the fleet interval by interval: AI flat, mining on where ``mine_on`` within its limits.

    Limits applied in order: facility cap (connection and emergency) sheds spot, then training,
    then inference; mining takes what is left, at most ramp-up above the last interval and never
    machines still in their minimum off time.
    """
    site, n, hours = inputs.site, inputs.n, inputs.hours
    eta_m, eta_a = site.mining_pue, site.ai_pue
    W = site.mining_min_off_intervals
    jobs = inputs.jobs
    rate = np.array([min(j.max_mw, j.energy_mwh / ((j.deadline - j.release) * hours)) for j in jobs])
    active = np.zeros((len(jobs), n), dtype=bool)
    for i, j in enumerate(jobs):
        active[i, j.release : j.deadline] = True
    # on-site generation serves the load first, so the grid limits bind only beyond it
    cap = np.minimum(inputs.emergency_cap_mw, site.connection_mw) + inputs.generation_mw
    m_out, a_out, o_out = np.zeros(n), np.zeros(n), np.zeros(n)
    x_out = np.zeros((len(jobs), n))
    m_prev = site.mining_it_mw
    recent = [0.0] * max(W - 1, 0)
    gpu_it, spot_max = site.gpu_it_mw, site.spot_max_gpus * site.gpu_mw
    for t in range(n):
        a = min(inputs.ai_inference_mw[t], gpu_it)
        x = rate * active[:, t]
        room = gpu_it - a
        if x.sum() > room:
            x = x * (room / x.sum()) if x.sum() > 0 else x
        o = min(spot_max, max(gpu_it - a - x.sum(), 0.0))
        budget = cap[t] / eta_a
        for part in ("o", "x", "a"):  # shed AI only if the cap demands it
            total = a + x.sum() + o
            if total <= budget:
                break
            excess = total - budget
            if part == "o":
                o = max(o - excess, 0.0)
            elif part == "x":
                s = x.sum()
                x = x * max(s - excess, 0.0) / s if s > 0 else x
            else:
                a = max(a - excess, 0.0)
        ai_fac = eta_a * (a + x.sum() + o)
        held = sum(recent)
        m = site.mining_it_mw if mine_on[t] else 0.0
        m = min(
            m,
            m_prev + site.mining_ramp_up_mw_per_interval,
            site.mining_it_mw - held,
            max(cap[t] - ai_fac, 0.0) / eta_m,
        )
        m = max(m, 0.0)
        if W > 1:
            recent = [max(m_prev - m, 0.0), *recent[:-1]]
        m_prev = m
        m_out[t], a_out[t], o_out[t] = m, a, o
        x_out[:, t] = x
    return Decisions(
        mining_mw=m_out,
        inference_mw=a_out,
        training_mw=x_out.sum(axis=0),
        spot_mw=o_out,
        reserve_mw=np.zeros(n),
        training_by_job_mw=tuple(x_out),
    )


class ThresholdPolicy:
    name = "threshold"
    online = True

    def run(self, inputs: DispatchInputs, progress: Progress | None = None) -> Decisions:
        t0 = time.perf_counter()
        price = marginal_price(inputs.site, inputs.price_usd_per_mwh)
        mine_on = price * inputs.site.mining_pue < inputs.mining_revenue_usd_per_mwh
        d = simulate_rule(inputs, mine_on)
        if progress:
            progress(inputs.n, inputs.n)
        return _timed(d, time.perf_counter() - t0)


class AlwaysPolicy:
    name = "always"
    online = True

    def run(self, inputs: DispatchInputs, progress: Progress | None = None) -> Decisions:
        t0 = time.perf_counter()
        d = simulate_rule(inputs, np.ones(inputs.n, dtype=bool))
        if progress:
            progress(inputs.n, inputs.n)
        return _timed(d, time.perf_counter() - t0)


def _timed(d: Decisions, seconds: float) -> Decisions:
    return Decisions(
        d.mining_mw,
        d.inference_mw,
        d.training_mw,
        d.spot_mw,
        d.reserve_mw,
        d.training_by_job_mw,
        seconds,
        {"rule": 1},
    )


register("threshold")(ThresholdPolicy)
register("always")(AlwaysPolicy)


# -- receding horizon -----------------------------------------------------------------------------

DEFAULT_GRID: tuple[tuple[int, int], ...] = ((16, 1), (20, 4), (36, 16))  # (count, intervals each)


class MpcPolicy:
    """Receding-horizon LP (see the module docstring for what it knows and when)."""

    name = "mpc"
    online = True

    def __init__(
        self,
        grid: tuple[tuple[int, int], ...] = DEFAULT_GRID,
        *,
        job_slots: int = 3,
        blend_decay: float = 0.8,
        commit_hour_ct: int = 13,
        trigger_ratio: float = 0.9,
        gate_with_alerts: bool = True,
    ) -> None:
        self.gate_with_alerts = gate_with_alerts
        self.n_k = np.concatenate([np.full(c, w, dtype=np.int64) for c, w in grid])
        self.trigger_ratio = trigger_ratio
        self.job_slots = job_slots
        self.blend_decay = blend_decay
        self.commit_hour_ct = commit_hour_ct

    def run(self, inputs: DispatchInputs, progress: Progress | None = None) -> Decisions:
        t_start = time.perf_counter()
        n = inputs.n
        planner = MpcPlanner(self, inputs)
        out_m, out_a, out_o, out_r = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        out_x = np.zeros((len(inputs.jobs), n))
        report_every = max(n // 200, 1)
        for t in range(n):
            step = planner.decide(t)
            planner.commit(step)
            out_m[t], out_a[t], out_o[t] = step.mining_mw, step.inference_mw, step.spot_mw
            out_r[t] = step.reserve_mw
            for i, mw in step.training_by_job_mw.items():
                out_x[i, t] = mw
            if progress and (t % report_every == 0 or t == n - 1):
                progress(t + 1, n)
        return Decisions(
            mining_mw=out_m,
            inference_mw=out_a,
            training_mw=out_x.sum(axis=0),
            spot_mw=out_o,
            reserve_mw=out_r,
            training_by_job_mw=tuple(out_x),
            solve_seconds=time.perf_counter() - t_start,
            statuses=planner.statuses,
        )

    # -- seams for policies that forecast differently (see drakewell.dispatch.stochastic) --------
    def _prepare(self, inputs: DispatchInputs, starts: IntArray) -> None:
        """Called once before the first decision with the look-ahead's period starts (offsets)."""

    def _period_prices(self, t: int, price_usd_per_mwh: FloatArray) -> FloatArray:
        """The price per look-ahead period the decision at ``t`` plans with."""
        return price_usd_per_mwh

    def _reserve_plan(
        self, t: int, lo: int, hi: int, sol: DispatchResult, period_of: IntArray, mining_prev_mw: float
    ) -> FloatArray:
        """Reserve MW to commit for intervals ``lo..hi`` (decided at ``t``): the plan's reserve."""
        return np.asarray(sol.reserve_mw[period_of[np.arange(lo, hi) - t]], dtype=np.float64)


register("mpc")(MpcPolicy)


@dataclass(frozen=True)
class StepDecision:
    """One interval's decision by :meth:`MpcPlanner.decide` (IT MW at the hardware; reserve in
    facility MW). ``reserve_plan`` is the reserve commitment ``(lo, hi, MW per interval)`` this
    decision makes (at the commit hour), written by :meth:`MpcPlanner.commit`."""

    t: int
    mining_mw: float
    inference_mw: float
    spot_mw: float
    training_by_job_mw: dict[int, float]
    reserve_mw: float
    status: str
    reserve_plan: tuple[int, int, FloatArray] | None = None

    @property
    def training_mw(self) -> float:
        return float(sum(self.training_by_job_mw.values()))


class MpcPlanner:
    """The ``mpc`` decision of one interval at a time: the one decision function that the backtest's
    ``mpc`` (and ``stochastic``) policy and the live site controller both call.

    ``decide(t)`` reads only what is known at ``t``: ``inputs.price_usd_per_mwh[t]`` and
    ``inputs.emergency_cap_mw[t]`` are read when ``decide`` runs (a live caller writes the price
    that just arrived, or an event's cap, into those arrays first) and the 4CP running peak holds
    the prices of committed intervals only. ``decide`` changes no state, so an interval may be
    re-decided (on a demand-response event); ``commit(step)`` makes one decision final and advances
    the state (mining held off, training energy done, reserve commitments, the 4CP peak). Calling
    ``decide(t)`` then ``commit`` for ``t = 0..n-1`` is exactly :meth:`MpcPolicy.run`.
    """

    def __init__(self, policy: MpcPolicy, inputs: DispatchInputs) -> None:
        self.policy, self.inputs = policy, inputs
        site, n, hours = inputs.site, inputs.n, inputs.hours
        self.per_day = round(24 / hours)
        n_k = policy.n_k
        self.K = K = len(n_k)
        self.starts = starts = np.concatenate([[0], np.cumsum(n_k)[:-1]]).astype(np.int64)
        L = int(n_k.sum())
        self.period_of = np.repeat(np.arange(K), n_k)  # look-ahead offset -> period
        self.W = W = site.mining_min_off_intervals
        self.S = policy.job_slots
        self.model = DispatchModel(
            site,
            n_k,
            hours,
            [np.arange(K)] * self.S,
            [],
            presolve=False,
            time_limit_s=5.0,
            renewables=inputs.has_renewables,
        )
        self.window = four_cp_window(inputs.interval_start_utc)
        local = inputs.interval_start_utc.tz_convert(CENTRAL)
        self.month = np.asarray(local.year * 12 + local.month, dtype=np.int64)
        self.record = record_weight(inputs.interval_start_utc)
        self.days_left = window_days_left(inputs.interval_start_utc)
        self.fc_m = marginal_price(site, inputs.forecast_usd_per_mwh)
        known = np.maximum.accumulate(inputs.forecast_known_from)
        self.last_known = np.searchsorted(known, np.arange(n), side="right") - 1
        self.local_day = np.asarray(local.normalize().asi8)
        commit_at = np.asarray((local.hour == policy.commit_hour_ct) & (local.minute == 0))
        commit_at[0] = True
        self.commit_at = commit_at
        self.held_matrix = np.array(
            [[1.0 if s + age < W else 0.0 for age in range(1, W)] for s in starts]
        ).reshape(K, max(W - 1, 0))
        jobs = inputs.jobs
        self.rel = np.array([j.release for j in jobs], dtype=np.int64)
        self.dl = np.array([j.deadline for j in jobs], dtype=np.int64)
        self.energy = np.array([j.energy_mwh for j in jobs])
        self.offsets = np.arange(L)
        self.decay = policy.blend_decay**self.offsets
        self.zero_job = JobColumns(np.arange(K), np.zeros(K), 0.0, 0.0, 0.0, 0.0)
        # state, advanced by commit()
        self.done = np.zeros(len(jobs))
        self.committed = np.full(n, np.nan)
        self.m_prev = site.mining_it_mw
        self.recent = np.zeros(max(W - 1, 0))
        self.best: dict[int, float] = {}  # month -> highest 4CP-window price of committed intervals
        self.day_peaks: list[float] = []  # window peaks of the committed window days before peak_day
        self.peak_day: int | None = None  # the last committed window day (local midnight, ns)
        self.today_peak = 0.0  # its window peak so far
        self.statuses: dict[str, int] = {}
        self.next_t = 0
        policy._prepare(inputs, starts)

    def four_cp_cost(self, t: int) -> float:
        """Expected 4CP charge (USD per MW) of drawing power at ``t``: rate × trigger × record weight."""
        inputs, policy = self.inputs, self.policy
        if not self.window[t]:
            trigger = 0.0
        else:
            trigger = trigger_grade(
                float(inputs.price_usd_per_mwh[t]), self.best.get(int(self.month[t])), policy.trigger_ratio
            )
        if policy.gate_with_alerts and not inputs.four_cp_forecast[t]:
            return 0.0
        if trigger == 0.0:
            return 0.0
        chance = peak_chance(
            float(inputs.price_usd_per_mwh[t]),
            self.past_peaks(t),
            int(self.days_left[t]),
            float(self.record[t]),
        )
        return float(inputs.site.four_cp_rate_usd_per_mw * trigger * chance)

    def past_peaks(self, t: int) -> FloatArray:
        """The window peaks of the committed window days before ``t``'s day, sorted."""
        peaks = self.day_peaks
        if self.peak_day is not None and self.peak_day != int(self.local_day[t]):
            peaks = [*peaks, self.today_peak]
        return np.sort(np.asarray(peaks, dtype=np.float64))

    def decide(self, t: int) -> StepDecision:
        """The decision for interval ``t`` (``t`` is the next interval to commit); no state changes."""
        if t != self.next_t:
            raise DispatchError(
                f"the planner is at interval {self.next_t}, asked to decide {t}",
                hint="decide and commit intervals in order",
            )
        inputs, site = self.inputs, self.inputs.site
        cap_t = min(float(inputs.emergency_cap_mw[t]), site.connection_mw)
        open_jobs, slot_cols = self.job_slots(t)
        sol = self.model.solve(self.forecast(t, cap_t, slot_cols))
        training: dict[int, float] = {}
        if sol.status is SolveStatus.OPTIMAL:
            m0 = max(float(sol.mining_mw[0]), 0.0)
            a0 = max(float(sol.inference_mw[0]), 0.0)
            o0 = max(float(sol.spot_mw[0]), 0.0)
            for slot, i in enumerate(open_jobs):
                training[int(i)] = max(float(sol.training_by_job_mw[slot][0]), 0.0)
        else:
            m0, a0, o0 = self.fallback(t, cap_t)
        plan = self.commit_reserves(t, sol)
        if plan is not None and plan[0] <= t < plan[1]:
            r_t = float(plan[2][t - plan[0]])
        else:
            r_t = float(self.committed[t])
        return StepDecision(
            t=t,
            mining_mw=m0,
            inference_mw=a0,
            spot_mw=o0,
            training_by_job_mw=training,
            reserve_mw=0.0 if np.isnan(r_t) else r_t,
            status=sol.status.value,
            reserve_plan=plan,
        )

    def _lookahead(self, t: int) -> tuple[IntArray, IntArray, IntArray]:
        """Intervals ``u`` of the look-ahead from ``t``; ``um``, the interval whose forecast stands
        for each (the latest published day, repeated); ``ud``, the one whose demand does (past the
        data's end, the last day repeated)."""
        n, per_day = self.inputs.n, self.per_day
        u = t + self.offsets
        lk = self.last_known[t]
        um = np.where(u <= lk, u, u - per_day * np.ceil((u - lk) / per_day).astype(np.int64))
        ud = np.where(u < n, u, u - per_day * np.ceil((u - (n - 1)) / per_day).astype(np.int64))
        return u, np.clip(um, 0, n - 1), np.clip(ud, 0, n - 1)

    def forecast(self, t: int, cap_t: float, slot_cols: Sequence[JobColumns]) -> PeriodData:
        """What the window's LP sees at ``t``: the price path (real time now, the day-ahead forecast
        blended in), demand, reserve prices and what is already committed, caps and the 4CP cost."""
        inputs, site, policy = self.inputs, self.inputs.site, self.policy
        K, starts, n_k = self.K, self.starts, policy.n_k
        u, um, ud = self._lookahead(t)
        fc_m = self.fc_m
        rt_t = marginal_price(site, inputs.price_usd_per_mwh[t : t + 1])[0]
        price = fc_m[um] + (rt_t - fc_m[um[0]]) * self.decay
        price[0] = rt_t
        com = np.full(len(u), np.nan)
        inside = u < inputs.n
        com[inside] = self.committed[u[inside]]
        unc = np.isnan(com)
        r_lb = np.add.reduceat(np.where(unc, 0.0, com), starts) / n_k
        lc = np.zeros(K)
        lc[0] = self.four_cp_cost(t)
        cap = np.full(K, site.connection_mw)
        cap[0] = cap_t
        return PeriodData(
            price_usd_per_mwh=policy._period_prices(t, np.add.reduceat(price, starts) / n_k),
            mining_revenue_usd_per_mwh=np.full(K, inputs.mining_revenue_usd_per_mwh[t]),
            ai_inference_mw=np.add.reduceat(inputs.ai_inference_mw[ud], starts) / n_k,
            reserve_price_usd_per_mw_h=np.add.reduceat(inputs.reserve_price_usd_per_mw_h[um], starts) / n_k,
            reserve_lb_mw=r_lb,
            reserve_ub_mw=r_lb + np.add.reduceat(unc.astype(np.float64), starts) * site.reserve_max_mw / n_k,
            cap_mw=cap,
            held_off_mw=self.held_matrix @ self.recent if self.W > 1 else np.zeros(K),
            mining_prev_mw=self.m_prev,
            jobs=tuple(slot_cols),
            peak_row_ub=(),
            peak_lb_mw=np.zeros(0),
            load_cost_usd_per_mw=lc,
            renewable_mw=(
                np.add.reduceat(inputs.generation_mw[ud], starts) / n_k if inputs.has_renewables else None
            ),
        )

    def job_slots(self, t: int) -> tuple[IntArray, list[JobColumns]]:
        """The training jobs still open at ``t`` in the model's ``S`` slots (earliest deadline first),
        each with its power per period, the energy it must do in the window and what is left."""
        K, S, starts, n_k, L = self.K, self.S, self.starts, self.policy.n_k, len(self.offsets)
        jobs, dl, rel, energy, done = self.inputs.jobs, self.dl, self.rel, self.energy, self.done
        open_jobs = np.flatnonzero((dl > t) & (rel < t + L) & (energy - done > 1e-9))
        open_jobs = open_jobs[np.argsort(dl[open_jobs], kind="stable")][:S]
        slot_cols: list[JobColumns] = []
        p_lo, p_hi = t + starts, t + starts + n_k
        for i in open_jobs:
            j = jobs[i]
            overlap = np.clip(np.minimum(p_hi, j.deadline) - np.maximum(p_lo, j.release), 0, None) / n_k
            left = float(energy[i] - done[i])
            begin = max(t, j.release)
            e_min = left if j.deadline <= t + L else left * (t + L - begin) / (j.deadline - begin)
            slot_cols.append(
                JobColumns(
                    np.arange(K),
                    j.max_mw * overlap,
                    e_min,
                    left,
                    j.revenue_usd_per_mwh,
                    j.unmet_penalty_usd_per_mwh,
                )
            )
        return open_jobs, slot_cols + [self.zero_job] * (S - len(slot_cols))

    def fallback(self, t: int, cap_t: float) -> tuple[float, float, float]:
        """Mining, inference and spot MW when the solve failed: keep the fleet safe — mining held
        within its limits and the cap, inference served, nothing else."""
        site, inputs = self.inputs.site, self.inputs
        m0 = min(self.m_prev, site.mining_it_mw - float(self.recent.sum()))
        a0 = min(float(inputs.ai_inference_mw[t]), site.gpu_it_mw)
        m0 = max(min(m0, (cap_t + inputs.generation_mw[t] - site.ai_pue * a0) / site.mining_pue), 0.0)
        return m0, a0, 0.0

    def commit_reserves(self, t: int, sol: DispatchResult) -> tuple[int, int, FloatArray] | None:
        """At a commit hour, the reserve MW offered for the target day (t = 0: the rest of today;
        13:00 CT: tomorrow) as ``(first, end, MW per interval)``; None at other hours."""
        if not self.commit_at[t]:
            return None
        local_day, site, L = self.local_day, self.inputs.site, len(self.offsets)
        later = local_day[local_day > local_day[t]]
        target_day = local_day[t] if t == 0 else (later[0] if len(later) else None)
        if target_day is None:
            return None
        lo = max(int(np.searchsorted(local_day, target_day, side="left")), t)
        hi = min(int(np.searchsorted(local_day, target_day, side="right")), t + L)
        if hi <= lo:
            return None
        if sol.status is not SolveStatus.OPTIMAL:
            return (lo, hi, np.zeros(hi - lo))
        r_plan = self.policy._reserve_plan(t, lo, hi, sol, self.period_of, self.m_prev)
        return (lo, hi, np.clip(r_plan, 0.0, site.reserve_max_mw))

    def commit(self, step: StepDecision) -> None:
        """Make ``step`` the decision of its interval and move on to the next one."""
        t = step.t
        if t != self.next_t:
            raise DispatchError(
                f"the planner is at interval {self.next_t}, asked to commit {t}",
                hint="decide and commit intervals in order",
            )
        self.statuses[step.status] = self.statuses.get(step.status, 0) + 1
        if step.reserve_plan is not None:
            lo, hi, values = step.reserve_plan
            self.committed[lo:hi] = values
        for i, mw in step.training_by_job_mw.items():
            self.done[i] += mw * self.inputs.hours
        if self.W > 1:
            self.recent = np.concatenate([[max(self.m_prev - step.mining_mw, 0.0)], self.recent[:-1]])
        self.m_prev = step.mining_mw
        if self.window[t]:
            price = float(self.inputs.price_usd_per_mwh[t])
            month = int(self.month[t])
            prior = self.best.get(month)
            self.best[month] = price if prior is None else max(prior, price)
            day = int(self.local_day[t])
            if day != self.peak_day:
                if self.peak_day is not None:
                    self.day_peaks.append(self.today_peak)
                self.peak_day, self.today_peak = day, price
            else:
                self.today_peak = max(self.today_peak, price)
        self.next_t = t + 1


def trigger_grade(price: float, prior: float | None, ratio: float) -> float:
    """The 4CP trigger of one window interval priced ``price`` when the month's earlier window peak is
    ``prior`` (``None``: the first window interval of the month)."""
    if prior is None or prior <= 0:
        return 1.0
    if price >= ratio * prior:
        return min((price / prior - ratio) / (1.0 - ratio), 1.0) if ratio < 1 else 1.0
    return 0.0


MIN_PEAK_DAYS = 10  # past window days before peak_chance trusts their peaks over the position weight


def peak_chance(price: float, past_peaks: FloatArray, days_left: int, position: float) -> float:
    """The chance that a running 4CP peak at ``price`` stays its month's peak: that none of the
    ``days_left`` window days left in the month beats it, each day's peak drawn like the past window
    days' peaks (``past_peaks``, sorted): ``F(price) ** days_left`` with ``F`` the share of past
    peaks below ``price``. With fewer than ``MIN_PEAK_DAYS`` past days, ``position`` (the
    :func:`record_weight` of the interval). The rest of the current day is not counted."""
    if len(past_peaks) < MIN_PEAK_DAYS:
        return position
    below = int(np.searchsorted(past_peaks, price, side="left")) / len(past_peaks)
    return float(below**days_left)


def window_days_left(index: pd.DatetimeIndex) -> IntArray:
    """For each interval, the 4CP window days (weekdays of the 4CP months) left in its calendar month
    after its own day, Central Time; 0 outside the 4CP months."""
    local = index.tz_convert(CENTRAL)
    day = local.tz_localize(None).normalize().to_numpy().astype("datetime64[D]")
    next_month = (
        (local.tz_localize(None).to_period("M") + 1).to_timestamp().to_numpy().astype("datetime64[D]")
    )
    left = np.busday_count(day + np.timedelta64(1, "D"), next_month)
    in_season = np.asarray(local.month.isin(list(FOUR_CP_MONTHS)))
    return np.where(in_season, left, 0).astype(np.int64)


def record_weight(index: pd.DatetimeIndex) -> FloatArray:
    """For a 4CP-window interval, ``k / M``: its position ``k`` among the ``M`` window intervals of its
    calendar month (0 outside the window). If the month's window loads were exchangeable, a running
    peak set at position ``k`` would stay the month's peak with probability ``k / M``."""
    out = np.zeros(len(index))
    if len(index) == 0:
        return out
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=15)
    local = index.tz_convert(CENTRAL)
    for year, month in sorted(set(zip(local.year, local.month, strict=True))):
        first = pd.Timestamp(year=int(year), month=int(month), day=1).tz_localize(CENTRAL)
        calendar = pd.date_range(first, first + pd.offsets.MonthBegin(1), freq=step, inclusive="left")
        window = four_cp_window(calendar)
        position = pd.Series(np.cumsum(window) / max(int(window.sum()), 1), index=calendar.tz_convert("UTC"))
        mask = np.asarray((local.year == year) & (local.month == month))
        out[mask] = position.reindex(index[mask]).fillna(0.0).to_numpy() * four_cp_window(index[mask])
    return out


def four_cp_trigger(inputs: DispatchInputs, ratio: float) -> FloatArray:
    """Real-time 4CP trigger: a window interval whose real-time price reaches ``ratio`` × the highest
    window price seen earlier in the same month (the first window interval of a month triggers).

    It reads prices up to the interval itself only — the running-peak rule 4CP watchers apply to
    real-time system load, with the price as the public proxy for load.
    """
    window = four_cp_window(inputs.interval_start_utc)
    local = inputs.interval_start_utc.tz_convert(CENTRAL)
    month = np.asarray(local.year * 12 + local.month, dtype=np.int64)
    price = inputs.price_usd_per_mwh
    out = np.zeros(inputs.n)
    best: dict[int, float] = {}
    for t in np.flatnonzero(window):
        prior = best.get(int(month[t]))
        out[t] = trigger_grade(float(price[t]), prior, ratio)
        best[int(month[t])] = price[t] if prior is None else max(prior, float(price[t]))
    return out


# the stochastic policy registers itself; it builds on MpcPolicy above
from drakewell.dispatch import stochastic as _stochastic  # noqa: E402,F401
