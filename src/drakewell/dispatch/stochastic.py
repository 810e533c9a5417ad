r"""The ``stochastic`` dispatch policy: the receding-horizon LP of ``mpc`` whose reserve commitment
is decided on a learned distribution of real-time prices instead of the day-ahead price.

Two decisions use the quantile forecast of :mod:`drakewell.dispatch.forecast` (scenario
:math:`s` = forecast level :math:`\tau_s`, probability :math:`w_s`, the width of its bin):

1. **Reserve commitment** (each day at 13:00 Central Time, for the next day; at the first interval,
   for the rest of the day) is the first stage of a two-stage stochastic LP solved with HiGHS over
   the intervals :math:`i` to commit, grouped into hourly blocks :math:`b(i)`:

   .. math::

      \min_{r, m, q}\ \sum_i \Big[ -\Delta \rho_i\, r_{b(i)}
          + \sum_s w_s \big( \Delta (\eta_m \pi_{si} - h)\, m_{si} + \lambda_{si} \eta_m m_{si}
          + \Delta \phi \rho_i\, q_{si} \big) \Big]

   subject to :math:`r_{b(i)} \le \eta_m m_{si} + q_{si}` (reserve is carried by running miners, or
   falls short and pays the penalty), :math:`0 \le m_{si} \le \bar m_i`,
   :math:`m_{si} - m_{s,i-1} \le R` (ramp-up within each scenario), :math:`0 \le r_b \le r_{max}`,
   :math:`q \ge 0`. The commitment :math:`r` is shared by every scenario; mining :math:`m_{si}` and
   shortfall :math:`q_{si}` are the recourse. :math:`\pi_{si}` is the level-:math:`\tau_s` forecast
   of interval ``i`` (plus the index adder), :math:`h` the current mining revenue per MWh,
   :math:`\rho_i` the published reserve price, :math:`\phi` the shortfall multiplier and
   :math:`\bar m_i` the mining IT MW the connection leaves beside the AI load ``mpc`` plans for ``i``.
   :math:`\lambda_{si}` is the 4CP charge per facility MW the interval LP will price at ``i`` if
   scenario ``s`` comes true: the 4CP rate × the trigger grade of :math:`\pi_{si}` against the
   month's window peak known at the commitment × the chance that a peak at :math:`\pi_{si}` stands
   (``peak_chance``, judged by the window peaks of the days before the commitment; see ``mpc``), on
   the alert days published by then (an unpublished day counts as an alert); zero outside the 4CP windows. A
   triggered 4CP window shuts the miners that carry the reserve, so the commitment prices that
   shortfall too.
   Scenarios are comonotone (scenario ``s`` is level :math:`\tau_s` in every interval): the ramp is
   the only coupling between intervals, and minimum off time is left to the interval LP.
   A reserve MW pays :math:`\rho` for sure and costs, in each scenario, either the loss of mining
   through a price spike or :math:`\phi\rho`; the LP commits it where the expectation is positive,
   which a day-ahead point forecast cannot see (the day-ahead price is high exactly when the
   real-time median is far below it).
2. **Mining / AI split every interval**: the ``mpc`` look-ahead LP. With ``forecast_hours`` > 0
   each period's price up to that many hours ahead is replaced by the expected real-time price over
   the scenarios, :math:`\sum_s w_s \pi_{s}` (the current interval keeps its known real-time price).
   The default is 0: ``mpc``'s own price path (the day-ahead price plus the current real-time gap,
   decaying). The LP is linear in price, so the expected price gives the expected profit of a
   *fixed* plan; but the plan is re-solved every interval, and a plan on the expected price (spike
   risk spread over every period) shuts miners through their minimum off time and ramps, and moves
   training, as if that spread-out price were certain, where the re-solved plan would answer a
   spike when it comes. On July-September 2023 ERCOT prices the expected-price plan (36 h) captured
   0.0015-0.0033 less of the value of flexibility than ``mpc``'s path with the same commitments
   (three zones at hashprice 45, LZ_WEST at 80); 4 h and 7 days of forecast did no better, nor did
   the forecast median.

Only what is known at each decision enters (the forecast trains on the past of each retrain), so
the no-look-ahead test of ``tests/dispatch`` covers this policy as it covers ``mpc``.
"""

from __future__ import annotations

import highspy
import numpy as np

from drakewell.dispatch.forecast import ForecastConfig, forecast_at, rolling_forecast
from drakewell.dispatch.inputs import four_cp_window
from drakewell.dispatch.model import DispatchResult, map_status, marginal_price, new_highs
from drakewell.dispatch.policies import (
    DEFAULT_GRID,
    MpcPolicy,
    peak_chance,
    record_weight,
    register,
    trigger_grade,
    window_days_left,
)
from drakewell.dispatch.types import DispatchInputs, DispatchSite, FloatArray, IntArray, SolveStatus
from drakewell.inputs.prices import CENTRAL

INF = highspy.kHighsInf


class StochasticPolicy(MpcPolicy):
    """``mpc`` with a learned price distribution (see the module docstring)."""

    name = "stochastic"
    online = True

    def __init__(
        self,
        grid: tuple[tuple[int, int], ...] = DEFAULT_GRID,
        *,
        forecast: ForecastConfig | None = None,
        forecast_hours: float = 0.0,
        block_intervals: int = 4,
        commit_time_limit_s: float = 5.0,
        **mpc: object,
    ) -> None:
        super().__init__(grid, **mpc)  # type: ignore[arg-type]
        self.forecast_config = forecast or ForecastConfig()
        self.forecast_hours = forecast_hours
        self.block_intervals = block_intervals
        self.commit_time_limit_s = commit_time_limit_s
        self.commit_statuses: dict[str, int] = {}

    def _prepare(self, inputs: DispatchInputs, starts: IntArray) -> None:
        self._inputs = inputs
        self._site = inputs.site
        n_k = self.n_k
        mid = starts + (n_k - 1) // 2
        reach = int(self.forecast_hours / inputs.hours)
        self._forecast_periods = np.flatnonzero((np.arange(len(starts)) > 0) & (mid <= reach))
        offsets = mid[self._forecast_periods]
        if len(offsets):
            fc = rolling_forecast(inputs, offsets, self.forecast_config)
            self._period_mean = marginal_price(inputs.site, fc.mean())
        self._commit = _CommitLP(
            inputs,
            self.forecast_config,
            self.block_intervals,
            self.commit_time_limit_s,
            trigger_ratio=self.trigger_ratio,
            gate_with_alerts=self.gate_with_alerts,
        )

    def _period_prices(self, t: int, price_usd_per_mwh: FloatArray) -> FloatArray:
        if not len(self._forecast_periods):
            return price_usd_per_mwh
        out = price_usd_per_mwh.copy()
        out[self._forecast_periods] = self._period_mean[t]
        return out

    def _reserve_plan(
        self, t: int, lo: int, hi: int, sol: DispatchResult, period_of: IntArray, mining_prev_mw: float
    ) -> FloatArray:
        site = self._site
        p = period_of[np.arange(lo, hi) - t]
        ai_mw = sol.inference_mw[p] + sol.spot_mw[p] + sol.training_mw[p]
        plan, status = self._commit.solve(t, lo, hi, ai_mw, mining_prev_mw)
        self.commit_statuses[status.value] = self.commit_statuses.get(status.value, 0) + 1
        if status is not SolveStatus.OPTIMAL:  # fall back to the interval LP's own plan
            return np.asarray(sol.reserve_mw[p], dtype=np.float64)
        return np.clip(plan, 0.0, site.reserve_max_mw)


class _CommitLP:
    """The two-stage reserve-commitment LP of one run: scenarios from the forecast, one HiGHS object."""

    def __init__(
        self,
        inputs: DispatchInputs,
        cfg: ForecastConfig,
        block: int,
        time_limit_s: float,
        *,
        trigger_ratio: float = 0.9,
        gate_with_alerts: bool = True,
    ) -> None:
        self.inputs = inputs
        self.cfg = cfg
        self.block = max(int(block), 1)
        self.time_limit_s = time_limit_s
        self.trigger_ratio = trigger_ratio
        self.gate_with_alerts = gate_with_alerts
        self.h = new_highs()
        self.window = four_cp_window(inputs.interval_start_utc)
        self.record = record_weight(inputs.interval_start_utc)
        self.days_left = window_days_left(inputs.interval_start_utc)
        local = inputs.interval_start_utc.tz_convert(CENTRAL)
        self.month = np.asarray(local.year * 12 + local.month, dtype=np.int64)
        self.local_day = np.asarray(local.normalize().asi8)
        days = self.local_day[self.window]
        self.peak_days = np.unique(days)  # window days in order, and each one's window peak
        self.day_peak = np.asarray(
            [inputs.price_usd_per_mwh[self.window][days == d].max() for d in self.peak_days], dtype=np.float64
        )

    def four_cp_cost(self, t: int, u: IntArray, price_usd_per_mwh: FloatArray) -> FloatArray:
        """Expected 4CP charge (USD per facility MW) of drawing power at each ``u`` in each scenario
        (``price_usd_per_mwh`` is (len(u), S)), as the interval LP will price it: the rate × the
        trigger grade of the scenario's price against the month's window peak known at ``t`` × the
        record weight, on the alert days published by ``t`` (unpublished days count as alerts)."""
        inputs = self.inputs
        out = np.zeros(price_usd_per_mwh.shape)
        rate = inputs.site.four_cp_rate_usd_per_mw
        if rate <= 0:
            return out
        seen = np.flatnonzero(self.window[:t])
        # the window peaks of the days before t's day: what a peak's chance of standing is judged by
        past = np.sort(self.day_peak[self.peak_days < self.local_day[t]])
        for i in np.flatnonzero(self.window[u]):
            ui = int(u[i])
            published = inputs.forecast_known_from[ui] <= t
            if self.gate_with_alerts and published and not inputs.four_cp_forecast[ui]:
                continue
            same = seen[self.month[seen] == self.month[ui]]
            prior = float(inputs.price_usd_per_mwh[same].max()) if len(same) else None
            out[i] = [
                rate
                * trigger_grade(float(p), prior, self.trigger_ratio)
                * peak_chance(float(p), past, int(self.days_left[ui]), float(self.record[ui]))
                for p in price_usd_per_mwh[i]
            ]
        return out

    def solve(
        self, t: int, lo: int, hi: int, ai_mw: FloatArray, mining_prev_mw: float
    ) -> tuple[FloatArray, SolveStatus]:
        inputs, site = self.inputs, self.inputs.site
        u = np.arange(lo, hi, dtype=np.int64)
        q = forecast_at(inputs, np.full(len(u), t, dtype=np.int64), u, self.cfg)
        q[u == t] = inputs.price_usd_per_mwh[t]  # the current interval's price is known
        room = site.connection_mw + inputs.generation_mw[lo:hi] - site.ai_pue * ai_mw
        m_cap = np.clip(room / site.mining_pue, 0.0, site.mining_it_mw)
        four_cp = self.four_cp_cost(t, u, q)
        return solve_commitment(
            site,
            marginal_price(site, q),
            self.cfg.weights,
            inputs.reserve_price_usd_per_mw_h[lo:hi],
            float(inputs.mining_revenue_usd_per_mwh[t]),
            m_cap,
            inputs.hours,
            block=self.block,
            mining_prev_mw=mining_prev_mw if lo == t + 1 else None,
            time_limit_s=self.time_limit_s,
            highs=self.h,
            load_cost_usd_per_mw=four_cp,
        )


def _commitment_rows(
    site: DispatchSite,
    block_of: IntArray,
    col_m: IntArray,
    col_q: IntArray,
    mining_prev_mw: float | None,
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """The commitment LP's rows as (row, column, value) triples and upper bounds: in each scenario
    and interval the block's reserve is covered by mining or shortfall (``r_b − η m_si − q_si ≤ 0``),
    and mining ramps up within the limit (from the current level, when known)."""
    S, n_i = col_m.shape
    eta_m = site.mining_pue
    rid = np.arange(S * n_i).reshape(S, n_i)
    rows = [rid.ravel(), rid.ravel(), rid.ravel()]
    cols = [np.broadcast_to(block_of, (S, n_i)).ravel(), col_m.ravel(), col_q.ravel()]
    vals = [np.ones(S * n_i), np.full(S * n_i, -eta_m), np.full(S * n_i, -1.0)]
    row_hi = [np.zeros(S * n_i)]
    ramp = site.mining_ramp_up_mw_per_interval
    if np.isfinite(ramp) and ramp < site.mining_it_mw:
        base = S * n_i
        rr = base + np.arange(S * (n_i - 1)).reshape(S, n_i - 1)
        rows += [rr.ravel(), rr.ravel()]
        cols += [col_m[:, 1:].ravel(), col_m[:, :-1].ravel()]
        vals += [np.ones(rr.size), -np.ones(rr.size)]
        row_hi.append(np.full(rr.size, ramp))
        if mining_prev_mw is not None:
            rows.append(base + rr.size + np.arange(S))
            cols.append(col_m[:, 0])
            vals.append(np.ones(S))
            row_hi.append(np.full(S, mining_prev_mw + ramp))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), np.concatenate(row_hi)


def solve_commitment(
    site: DispatchSite,
    price_usd_per_mwh: FloatArray,
    weights: FloatArray,
    reserve_price_usd_per_mw_h: FloatArray,
    mining_revenue_usd_per_mwh: float,
    mining_cap_mw: FloatArray,
    hours: float,
    *,
    block: int = 4,
    mining_prev_mw: float | None = None,
    time_limit_s: float = 5.0,
    highs: highspy.Highs | None = None,
    load_cost_usd_per_mw: FloatArray | None = None,
) -> tuple[FloatArray, SolveStatus]:
    """Solve the two-stage commitment LP (module docstring, item 1) for ``n`` intervals.

    ``price_usd_per_mwh`` is (n, S): scenario ``s``'s marginal price per interval; ``weights`` (S)
    their probabilities; ``mining_cap_mw`` (n) the mining IT MW available. ``mining_prev_mw``, when
    given, is the mining level just before the first interval (its ramp applies).
    ``load_cost_usd_per_mw`` (n, S), when given, is a charge per facility MW drawn in each interval
    and scenario (the expected 4CP charge, :math:`\\lambda_{si}`). Returns the
    committed reserve per interval (constant within each block of ``block`` intervals) and the status.
    """
    n_i, S = price_usd_per_mwh.shape
    w = np.asarray(weights, dtype=np.float64)
    if n_i == 0:
        return np.zeros(0), SolveStatus.OPTIMAL
    dur = hours
    eta_m = site.mining_pue
    rho = np.asarray(reserve_price_usd_per_mw_h, dtype=np.float64)
    phi = site.reserve_penalty_multiplier
    block_of = np.arange(n_i) // max(int(block), 1)
    B = int(block_of[-1]) + 1
    # columns: r (B), then per scenario m (n_i) and q (n_i)
    n_cols = B + 2 * S * n_i
    col_m = B + np.arange(S)[:, None] * 2 * n_i + np.arange(n_i)[None, :]
    col_q = col_m + n_i
    cost = np.zeros(n_cols)
    lo_b = np.zeros(n_cols)
    hi_b = np.full(n_cols, INF)
    cost[:B] = -np.bincount(block_of, weights=rho * dur, minlength=B)
    hi_b[:B] = site.reserve_max_mw
    cost[col_m] = (w[:, None] * (eta_m * price_usd_per_mwh.T - mining_revenue_usd_per_mwh)) * dur
    if load_cost_usd_per_mw is not None:
        cost[col_m] += w[:, None] * eta_m * np.asarray(load_cost_usd_per_mw, dtype=np.float64).T
    hi_b[col_m] = np.broadcast_to(mining_cap_mw, (S, n_i))
    cost[col_q] = w[:, None] * phi * rho[None, :] * dur
    r, c, v, ub = _commitment_rows(site, block_of, col_m, col_q, mining_prev_mw)
    n_rows = len(ub)
    order = np.lexsort((c, r))
    r, c, v = r[order], c[order], v[order]
    starts = np.searchsorted(r, np.arange(n_rows)).astype(np.int32)
    h = highs if highs is not None else new_highs()
    h.clearModel()
    h.addCols(n_cols, cost, lo_b, hi_b, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    h.addRows(n_rows, np.full(n_rows, -INF), ub, len(v), starts, c.astype(np.int32), v)
    h.changeObjectiveSense(highspy.ObjSense.kMinimize)
    # HiGHS measures time_limit on a clock that runs across solves: the limit is per solve
    h.setOptionValue("time_limit", h.getRunTime() + time_limit_s)
    h.run()
    status = map_status(h.getModelStatus())
    if status is not SolveStatus.OPTIMAL:
        return np.zeros(n_i), status
    x = np.asarray(h.getSolution().col_value)
    return np.asarray(x[:B][block_of], dtype=np.float64), status


register("stochastic")(StochasticPolicy)
