r"""The dispatch LP, built directly on HiGHS (highspy) from CSR arrays.

Sets
----
- periods :math:`k = 0..K-1`, period ``k`` lasting :math:`n_k` intervals of ``hours`` h,
  :math:`\Delta_k = n_k \cdot hours` (the full-horizon model has :math:`n_k = 1`; the receding-horizon
  model has a fine head and a coarse tail, see :mod:`drakewell.dispatch.policies`);
- training jobs :math:`j \in J`, each with the periods :math:`K_j` of its release..deadline window;
- 4CP peak groups :math:`g \in G` (one per month), each with candidate periods :math:`K_g`.

Variables (MW unless stated; IT power is at the hardware, before PUE)
-------------------------------------------------------------------------
- :math:`m_k` mining, :math:`s_k` mining shut down at ``k`` (MW of machines switched off),
- :math:`a_k` AI inference, :math:`o_k` spot AI rentals, :math:`x_{jk}` training job ``j``,
- :math:`r_k` reserve offered (facility MW of curtailable load), :math:`q_k` reserve shortfall,
- :math:`u_j` training energy left unmet at the deadline (MWh), :math:`p_g` 4CP peak (facility MW).

Grid import is the expression :math:`g_k = \eta_m m_k + \eta_a (a_k + o_k + \sum_j x_{jk})` with
the halls' PUEs :math:`\eta`; it is substituted rather than carried as a variable.

Objective (minimise the negative of profit, USD)
------------------------------------------------
.. math::

   \min \sum_k \Delta_k \Big[ (\eta_m \pi_k - h_k) m_k + (\eta_a \pi_k - v - \sigma) a_k
        + (\eta_a \pi_k - v_o) o_k + \sum_j (\eta_a \pi_k - v_j) x_{jk} - \rho_k r_k
        + \phi \rho_k q_k \Big] + \sum_k \lambda_k g_k + \sum_j \psi_j u_j + \sum_g c_{4CP}\, p_g

with price :math:`\pi_k` (real-time, or forecast; plus the adder under an index contract), mining
revenue per MWh :math:`h_k` (hashprice × 1000 / (J/TH) / 24), AI contract revenue :math:`v`, job
revenue :math:`v_j` and spot revenue :math:`v_o` per MWh of IT energy (price per GPU-hour ÷ MW per
GPU), inference shed penalty :math:`\sigma` (serving inference avoids it; the constant
:math:`-\sigma \sum_k \Delta_k d_k` is dropped), reserve price :math:`\rho_k` and shortfall multiplier
:math:`\phi`, unmet-training penalty :math:`\psi_j` per MWh, 4CP rate :math:`c_{4CP}` (USD per
facility MW at a peak interval) and :math:`\lambda_k`, an extra charge per facility MW drawn in
period ``k`` (the receding-horizon policy prices its expected 4CP charge this way; zero otherwise).

Behind-the-meter renewables (a site with on-site generation :math:`G_k`, MW): the model gains a
grid-exchange variable :math:`y_k` (import > 0, export < 0) with
:math:`g_k - G_k \le y_k \le g_k` (on-site generation serves the load first; what is neither used
nor exported is curtailed, at most :math:`G_k`), :math:`y_k \le \min(C, E_k)` and
:math:`y_k \ge -C` when surplus may be exported at the real-time price (``export``) or
:math:`y_k \ge 0` (``curtail``). At a negative price the LP imports up to the load and curtails
its own generation (it is paid to import). The energy price and :math:`\lambda_k` then apply to :math:`y_k`
instead of :math:`g_k` (term :math:`\Delta_k \pi_k y_k`), the connection row becomes
:math:`g_k \le \min(C, E_k) + G_k` and a 4CP row :math:`g_k - G_k \le p_g`. Without plants none of
this is built.

Power contracts change the accounting, not the decision: under a fixed-price block of :math:`B` MW
at price :math:`P` with sell-back at real time, the energy bill is
:math:`\Delta(BP + \pi (g - B)^+) - \Delta \pi (B - g)^+ = \Delta BP + \Delta\pi (g - B)`, i.e. a
constant plus the index cost, so the marginal price of power is the real-time price in both cases.
The ledger splits it into energy cost and curtailment credits.

Constraints
-----------
- connection and emergency cap: :math:`g_k \le \min(C, E_k)`;
- GPUs: :math:`a_k + o_k + \sum_j x_{jk} \le G_{IT}`; inference :math:`a_k \le d_k`;
  spot :math:`o_k \le O`; hall limit :math:`m_k \le M`;
- ASIC ramp-up: :math:`m_k - m_{k-1} \le R \cdot (n_k + n_{k-1})/2` (:math:`m_{-1}` is the state);
  switching off is immediate (demand response), so there is no ramp-down limit;
- ASIC minimum off time of :math:`W` intervals: :math:`s_k \ge m_{k-1} - m_k` and
  :math:`m_k + \sum_{i \le k,\ start_k - start_i < W} s_i \le M - H_k`, where :math:`H_k` is the
  capacity still held off by shutdowns before the window (state). Machines switched off at ``i``
  cannot run again before ``i + W``;
- reserve is carried by running miners: :math:`r_k \le \eta_m m_k + q_k`, :math:`r_k \in
  [\underline r_k, \overline r_k]` (a day-ahead commitment fixes both bounds);
- training: :math:`\underline E_j \le \sum_{k \in K_j} \Delta_k x_{jk} + u_j`,
  :math:`\sum_{k \in K_j} \Delta_k x_{jk} \le \overline E_j`, :math:`0 \le x_{jk} \le X_{jk}`;
- 4CP: :math:`g_k - p_g \le 0` for flagged :math:`k \in K_g` (rows of unflagged candidates are
  relaxed to :math:`+\infty`), :math:`p_g \ge \underline p_g` (peak already set this month).

Every variable has a finite upper bound or a positive cost and every slack (:math:`q, u, p`) is free
upward, so the model is always feasible and bounded; all-zero dispatch is feasible.

Integrality
-----------
None. The example ASIC fleet is 15,680 machines of 3.6 kW, so on/off states aggregate into MW of a
divisible fleet; the minimum off time is the cohort formulation above, exact for a divisible
fleet, and rounding to whole machines changes power by less than one machine (0.004 MW). GPU counts
are reported as ``round(MW / MW per GPU)``. A MILP would add solve time and no accuracy.

Solver statuses map to :class:`~drakewell.dispatch.types.SolveStatus`; anything unrecognised is
``UNKNOWN`` and the caller decides the fallback (it never crashes).

Time limit
----------
``time_limit_s`` bounds each :meth:`DispatchModel.solve`. HiGHS compares its ``time_limit`` option
with a run clock that keeps counting across ``run()`` calls of one ``Highs`` object (highspy has no
way to zero it), so before every run the option is set to the clock's reading plus the per-solve
limit: a model solved thousands of times gets the same budget on its last solve as on its first.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import highspy
import numpy as np

from drakewell.dispatch.types import (
    DispatchInputs,
    DispatchSite,
    FloatArray,
    IntArray,
    SolveStatus,
)

INF = highspy.kHighsInf

_STATUS = {
    highspy.HighsModelStatus.kOptimal: SolveStatus.OPTIMAL,
    highspy.HighsModelStatus.kInfeasible: SolveStatus.INFEASIBLE,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: SolveStatus.INFEASIBLE,
    highspy.HighsModelStatus.kUnbounded: SolveStatus.UNBOUNDED,
    highspy.HighsModelStatus.kTimeLimit: SolveStatus.TIME_LIMIT,
    highspy.HighsModelStatus.kIterationLimit: SolveStatus.TIME_LIMIT,
    highspy.HighsModelStatus.kModelEmpty: SolveStatus.OPTIMAL,
    highspy.HighsModelStatus.kLoadError: SolveStatus.ERROR,
    highspy.HighsModelStatus.kModelError: SolveStatus.ERROR,
    highspy.HighsModelStatus.kPresolveError: SolveStatus.ERROR,
    highspy.HighsModelStatus.kSolveError: SolveStatus.ERROR,
    highspy.HighsModelStatus.kPostsolveError: SolveStatus.ERROR,
}


_banner_shown = False


def new_highs() -> highspy.Highs:
    """A silent HiGHS instance. HiGHS prints a banner to fd 1 on its first construction in a process;
    it would corrupt JSON written to stdout, so the first construction runs with fd 1 on /dev/null."""
    global _banner_shown
    if _banner_shown:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _banner_shown = True
    h.setOptionValue("output_flag", False)
    return h


def map_status(status: object) -> SolveStatus:
    """HiGHS model status → :class:`SolveStatus` (unknown values → ``UNKNOWN``)."""
    try:
        return _STATUS.get(status, SolveStatus.UNKNOWN)  # type: ignore[call-overload]
    except TypeError:  # unhashable or foreign object
        return SolveStatus.UNKNOWN


@dataclass(frozen=True)
class FleetState:
    """What carries over between decisions.

    ``mining_mw``: mining IT power in the last interval; ``recent_shutdowns_mw[i]``: MW switched off
    ``i + 1`` intervals ago (only the last ``W - 1`` matter); ``job_done_mwh``: energy already
    delivered per job name; ``peak_mw``: facility MW already set at a 4CP-risk interval per month key.
    """

    mining_mw: float = 0.0
    recent_shutdowns_mw: tuple[float, ...] = ()
    job_done_mwh: dict[str, float] = field(default_factory=dict)
    peak_mw: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class JobColumns:
    """One training job's columns in a model: the periods it may run in, their bounds and energy."""

    periods: IntArray
    max_mw: FloatArray  # per entry of ``periods``
    energy_min_mwh: float
    energy_max_mwh: float
    revenue_usd_per_mwh: float
    unmet_penalty_usd_per_mwh: float


@dataclass(frozen=True)
class PeriodData:
    """The numbers of one solve, per period (length K) — everything that is not structure."""

    price_usd_per_mwh: FloatArray
    mining_revenue_usd_per_mwh: FloatArray
    ai_inference_mw: FloatArray
    reserve_price_usd_per_mw_h: FloatArray
    reserve_lb_mw: FloatArray
    reserve_ub_mw: FloatArray
    cap_mw: FloatArray  # facility limit: min(connection, emergency cap)
    held_off_mw: FloatArray  # H_k: capacity still off from shutdowns before the window
    mining_prev_mw: float
    jobs: tuple[JobColumns, ...]
    peak_row_ub: tuple[FloatArray, ...]  # per group: 0 where the candidate is flagged, inf otherwise
    peak_lb_mw: FloatArray  # per group
    load_cost_usd_per_mw: FloatArray | None = None  # extra cost per facility MW drawn in period k
    renewable_mw: FloatArray | None = None  # on-site generation per period (models with renewables)


@dataclass(frozen=True)
class DispatchResult:
    """Per-period optimal values and the solve outcome."""

    status: SolveStatus
    objective_usd: float
    mining_mw: FloatArray
    shutdown_mw: FloatArray
    inference_mw: FloatArray
    spot_mw: FloatArray
    training_mw: FloatArray  # summed over jobs
    training_by_job_mw: tuple[FloatArray, ...]  # per job, per period (zero outside its window)
    reserve_mw: FloatArray
    shortfall_mw: FloatArray
    peak_mw: FloatArray
    seconds: float
    grid_mw: FloatArray | None = None  # grid exchange y (import > 0), models with renewables only


class _RowBlocks:
    """Hands out consecutive row numbers, one block per constraint family."""

    def __init__(self) -> None:
        self.count = 0

    def block(self, n: int) -> IntArray:
        out = np.arange(self.count, self.count + n, dtype=np.int64)
        self.count += n
        return out


class _Coefficients:
    """The constraint matrix as (row, column, value) triples, gathered block by block."""

    def __init__(self, model: DispatchModel) -> None:
        self.K, self.M, self.A, self.O = model.K, model.M, model.A, model.O
        self.rows: list[IntArray] = []
        self.cols: list[IntArray] = []
        self.vals: list[FloatArray] = []
        # the IT power of every job column lands in the same per-period rows as inference
        jobs = model.job_periods
        self.job_k = np.concatenate(jobs) if jobs else np.zeros(0, np.int64)
        self.job_c = np.concatenate(model.X) if model.X else np.zeros(0, np.int64)

    def add(self, r: IntArray, c: IntArray, v: float | FloatArray) -> None:
        self.rows.append(np.asarray(r, dtype=np.int64))
        self.cols.append(np.asarray(c, dtype=np.int64))
        self.vals.append(np.broadcast_to(np.asarray(v, dtype=np.float64), np.shape(r)).copy())

    def add_load(self, row_of_k: IntArray, sel: IntArray, scale_m: float, scale_a: float) -> None:
        """Add ``scale_m*m + scale_a*(a + o + sum x)`` for periods ``sel`` into rows ``row_of_k``."""
        if scale_m:
            self.add(row_of_k, self.M[sel], scale_m)
        self.add(row_of_k, self.A[sel], scale_a)
        self.add(row_of_k, self.O[sel], scale_a)
        if len(self.job_k):
            pos = np.full(self.K, -1, dtype=np.int64)
            pos[sel] = row_of_k
            mask = pos[self.job_k] >= 0
            self.add(pos[self.job_k[mask]], self.job_c[mask], scale_a)

    def sorted_by_row(self) -> tuple[IntArray, IntArray, FloatArray]:
        r, c, v = np.concatenate(self.rows), np.concatenate(self.cols), np.concatenate(self.vals)
        order = np.lexsort((c, r))
        return r[order], c[order], v[order]


class DispatchModel:
    """An LP whose structure (periods, job windows, 4CP candidates) is fixed at construction.

    :meth:`solve` sets costs and bounds from a :class:`PeriodData` and runs HiGHS; a receding-horizon
    policy calls it every interval on the same object, so HiGHS warm-starts from the last basis.
    """

    def __init__(
        self,
        site: DispatchSite,
        period_intervals: IntArray,
        hours: float,
        job_periods: list[IntArray],
        peak_periods: list[IntArray],
        *,
        presolve: bool = True,
        time_limit_s: float = 60.0,
        renewables: bool = False,
    ) -> None:
        self.site = site
        self.n_k = np.asarray(period_intervals, dtype=np.int64)
        self.K = len(self.n_k)
        self.hours = hours
        self.dur_h = self.n_k * hours
        self.job_periods = [np.asarray(p, dtype=np.int64) for p in job_periods]
        self.peak_periods = [np.asarray(p, dtype=np.int64) for p in peak_periods]
        K = self.K
        self.M, self.S, self.A, self.O, self.R, self.Q = (np.arange(K) + i * K for i in range(6))
        offset = 6 * K
        self.X: list[IntArray] = []
        for p in self.job_periods:
            self.X.append(np.arange(offset, offset + len(p)))
            offset += len(p)
        self.U = np.arange(offset, offset + len(self.job_periods))
        offset += len(self.job_periods)
        self.P = np.arange(offset, offset + len(self.peak_periods))
        offset += len(self.peak_periods)
        self.renewables = renewables
        self.Y = np.arange(offset, offset + (K if renewables else 0))  # grid exchange, with renewables
        self.n_cols = offset + len(self.Y)
        self._h = new_highs()
        self._h.setOptionValue("output_flag", False)
        self._h.setOptionValue("presolve", "on" if presolve else "off")
        self.time_limit_s = float(time_limit_s)
        self._build()

    # -- structure -------------------------------------------------------------------------------
    def _build(self) -> None:
        """Rows in blocks (each constraint family one block of consecutive rows), then HiGHS."""
        site, K = self.site, self.K
        eta_m, eta_a = site.mining_pue, site.ai_pue
        a = _Coefficients(self)
        rows = _RowBlocks()
        ks = np.arange(K)
        self.row_conn = rows.block(K)  # facility load within the connection
        a.add_load(self.row_conn, ks, eta_m, eta_a)
        self.row_gpu = rows.block(K)  # GPU IT power within the GPUs
        a.add_load(self.row_gpu, ks, 0.0, 1.0)
        self.row_rup = rows.block(K)  # mining ramps up within the limit
        a.add(self.row_rup, self.M, 1.0)
        a.add(self.row_rup[1:], self.M[:-1], -1.0)
        self.row_shut = rows.block(K)  # shutdowns s_k >= m_{k-1} - m_k, within the ramp limit
        a.add(self.row_shut, self.M, -1.0)
        a.add(self.row_shut, self.S, -1.0)
        a.add(self.row_shut[1:], self.M[:-1], 1.0)
        self.row_minoff = rows.block(K)  # what was shut stays off for the minimum off time
        a.add(self.row_minoff, self.M, 1.0)
        self.starts = self._min_off_terms(a)
        self.row_res = rows.block(K)  # reserves within the mining load (or paid as shortfall)
        a.add(self.row_res, self.R, 1.0)
        a.add(self.row_res, self.M, -eta_m)
        a.add(self.row_res, self.Q, -1.0)
        self.row_job = rows.block(len(self.job_periods))  # each job's energy (u: the part undone)
        for j, (p, xc) in enumerate(zip(self.job_periods, self.X, strict=True)):
            a.add(np.full(len(p), self.row_job[j]), xc, np.asarray(self.dur_h[p], dtype=np.float64))
        a.add(self.row_job, self.U, 1.0)
        self.row_peak: list[IntArray] = []  # each 4CP group's candidate loads within its peak
        for g, p in enumerate(self.peak_periods):
            rg = rows.block(len(p))
            self.row_peak.append(rg)
            a.add_load(rg, p, eta_m, eta_a)
            a.add(rg, np.full(len(p), self.P[g]), -1.0)
        self.row_ylo = np.zeros(0, dtype=np.int64)
        self.row_yhi = np.zeros(0, dtype=np.int64)
        if self.renewables:
            # g_k - y_k <= G_k (generation serves the load first) and y_k - g_k <= 0 (curtail <= G_k)
            self.row_ylo = rows.block(K)
            a.add_load(self.row_ylo, ks, eta_m, eta_a)
            a.add(self.row_ylo, self.Y, -1.0)
            self.row_yhi = rows.block(K)
            a.add_load(self.row_yhi, ks, -eta_m, -eta_a)
            a.add(self.row_yhi, self.Y, 1.0)
        self.n_rows = rows.count
        self._load(*a.sorted_by_row())

    def _min_off_terms(self, a: _Coefficients) -> IntArray:
        """Shutdowns within the minimum off time before each period count against its mining;
        returns each period's first interval."""
        K, ks = self.K, np.arange(self.K)
        starts = np.concatenate([[0], np.cumsum(self.n_k)[:-1]])
        W = self.site.mining_min_off_intervals
        if W > 0:
            for lag in range(K):
                sel = ks[lag:]
                inside = (starts[sel] - starts[sel - lag]) < W
                if not inside.any():
                    break
                a.add(self.row_minoff[sel[inside]], self.S[sel[inside] - lag], 1.0)
        return starts

    def _load(self, r: IntArray, c: IntArray, v: FloatArray) -> None:
        """Columns and rows (CSR, sorted by row then column) into HiGHS, all bounds open."""
        row_starts = np.searchsorted(r, np.arange(self.n_rows)).astype(np.int32)
        h = self._h
        zeros = np.zeros(self.n_cols)
        h.addCols(
            self.n_cols,
            zeros,
            zeros,
            np.full(self.n_cols, INF),
            0,
            np.zeros(0, np.int32),
            np.zeros(0, np.int32),
            np.zeros(0),
        )
        h.addRows(
            self.n_rows,
            np.full(self.n_rows, -INF),
            np.full(self.n_rows, INF),
            len(v),
            row_starts,
            c.astype(np.int32),
            v,
        )
        h.changeObjectiveSense(highspy.ObjSense.kMinimize)
        self._all_cols = np.arange(self.n_cols, dtype=np.int32)
        self._all_rows = np.arange(self.n_rows, dtype=np.int32)

    # -- numbers ---------------------------------------------------------------------------------
    def _costs_and_bounds(
        self, d: PeriodData
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        site, K, dur = self.site, self.K, self.dur_h
        eta_m, eta_a = site.mining_pue, site.ai_pue
        pi = d.price_usd_per_mwh
        cost = np.zeros(self.n_cols)
        lo = np.zeros(self.n_cols)
        hi = np.full(self.n_cols, INF)
        v = site.ai_revenue_usd_per_mwh
        cost[self.M] = (eta_m * pi - d.mining_revenue_usd_per_mwh) * dur
        cost[self.A] = (eta_a * pi - v - site.shed_penalty_usd_per_mwh) * dur
        cost[self.O] = (eta_a * pi - site.spot_revenue_usd_per_mwh) * dur
        cost[self.R] = -d.reserve_price_usd_per_mw_h * dur
        cost[self.Q] = site.reserve_penalty_multiplier * d.reserve_price_usd_per_mw_h * dur
        hi[self.M] = site.mining_it_mw
        hi[self.S] = site.mining_it_mw
        hi[self.A] = np.minimum(d.ai_inference_mw, site.gpu_it_mw)
        hi[self.O] = site.spot_max_gpus * site.gpu_mw
        lo[self.R] = d.reserve_lb_mw
        hi[self.R] = np.maximum(d.reserve_ub_mw, d.reserve_lb_mw)
        for xc, p, job in zip(self.X, self.job_periods, d.jobs, strict=True):
            cost[xc] = (eta_a * pi[p] - job.revenue_usd_per_mwh) * dur[p]
            hi[xc] = job.max_mw
        cost[self.U] = [job.unmet_penalty_usd_per_mwh for job in d.jobs]
        if d.load_cost_usd_per_mw is not None:
            lc = d.load_cost_usd_per_mw
            cost[self.M] += eta_m * lc
            cost[self.A] += eta_a * lc
            cost[self.O] += eta_a * lc
            for xc, p in zip(self.X, self.job_periods, strict=True):
                cost[xc] += eta_a * lc[p]
        cost[self.P] = site.four_cp_rate_usd_per_mw
        lo[self.P] = d.peak_lb_mw
        gen = np.zeros(K)
        if self.renewables:
            gen = d.renewable_mw if d.renewable_mw is not None else np.zeros(K)
            # the energy price (and the load cost) move from the load to the grid exchange y
            per_mw = pi * dur + (d.load_cost_usd_per_mw if d.load_cost_usd_per_mw is not None else 0.0)
            cost[self.M] -= eta_m * per_mw
            cost[self.A] -= eta_a * per_mw
            cost[self.O] -= eta_a * per_mw
            for xc, p in zip(self.X, self.job_periods, strict=True):
                cost[xc] -= eta_a * per_mw[p]
            cost[self.Y] = per_mw
            hi[self.Y] = d.cap_mw
            lo[self.Y] = -site.connection_mw if site.renewable_surplus == "export" else 0.0

        row_lo = np.full(self.n_rows, -INF)
        row_hi = np.full(self.n_rows, INF)
        row_hi[self.row_conn] = d.cap_mw + gen
        row_hi[self.row_gpu] = site.gpu_it_mw
        ramp = site.mining_ramp_up_mw_per_interval
        rup = ramp * (self.n_k + np.concatenate([[1], self.n_k[:-1]])) / 2.0
        rup[0] += d.mining_prev_mw
        row_hi[self.row_rup] = rup
        shut = np.zeros(K)
        shut[0] = -d.mining_prev_mw
        row_hi[self.row_shut] = shut
        row_hi[self.row_minoff] = np.maximum(site.mining_it_mw - d.held_off_mw, 0.0)
        row_hi[self.row_res] = 0.0
        for j, job in enumerate(d.jobs):
            row_lo[self.row_job[j]] = job.energy_min_mwh
            row_hi[self.row_job[j]] = job.energy_max_mwh
        for rg, ub, p in zip(self.row_peak, d.peak_row_ub, self.peak_periods, strict=True):
            row_hi[rg] = ub + gen[p]
        if self.renewables:
            row_hi[self.row_ylo] = gen
            row_hi[self.row_yhi] = 0.0
        return cost, lo, hi, row_lo, row_hi

    def solve(self, d: PeriodData) -> DispatchResult:
        """Set this solve's numbers and run HiGHS (warm-started if the model was solved before)."""
        t0 = time.perf_counter()
        cost, lo, hi, row_lo, row_hi = self._costs_and_bounds(d)
        h = self._h
        h.changeColsCost(self.n_cols, self._all_cols, cost)
        h.changeColsBounds(self.n_cols, self._all_cols, lo, hi)
        h.changeRowsBounds(self.n_rows, self._all_rows, row_lo, row_hi)  # type: ignore[attr-defined]
        # the run clock keeps counting across runs of this object: the limit starts from its reading now
        h.setOptionValue("time_limit", h.getRunTime() + self.time_limit_s)
        h.run()
        status = map_status(h.getModelStatus())
        if status is SolveStatus.OPTIMAL:
            x = np.asarray(h.getSolution().col_value)
            obj = float(h.getInfo().objective_function_value)
        else:
            x = np.zeros(self.n_cols)
            obj = float("nan")
        K = self.K
        by_job = []
        training = np.zeros(K)
        for xc, p in zip(self.X, self.job_periods, strict=True):
            per = np.zeros(K)
            np.add.at(per, p, x[xc])
            by_job.append(per)
            training += per
        return DispatchResult(
            status=status,
            objective_usd=obj,
            mining_mw=x[self.M],
            shutdown_mw=x[self.S],
            inference_mw=x[self.A],
            spot_mw=x[self.O],
            training_mw=training,
            training_by_job_mw=tuple(by_job),
            reserve_mw=x[self.R],
            shortfall_mw=x[self.Q],
            peak_mw=x[self.P],
            seconds=time.perf_counter() - t0,
            grid_mw=x[self.Y] if self.renewables else None,
        )


def marginal_price(site: DispatchSite, price_usd_per_mwh: FloatArray) -> FloatArray:
    """The price of one more MWh at the meter: real time (+ the adder under an index contract)."""
    return price_usd_per_mwh + (site.index_adder_usd_per_mwh if site.contract == "index" else 0.0)


def month_keys(inputs: DispatchInputs) -> list[str]:
    """Calendar month (UTC) of every interval, as ``YYYY-MM``; 4CP peaks are monthly."""
    idx = inputs.interval_start_utc
    return [f"{y:04d}-{m:02d}" for y, m in zip(idx.year, idx.month, strict=True)]


def held_off_mw(state: FleetState, starts: IntArray, min_off: int) -> FloatArray:
    """H_k: MW still held off at each period start by shutdowns before the window."""
    held = np.zeros(len(starts))
    for age, mw in enumerate(state.recent_shutdowns_mw, start=1):  # switched off `age` intervals ago
        if mw > 0:
            held += np.where(starts + age < min_off, mw, 0.0)
    return held


def solve(
    inputs: DispatchInputs, window: slice | None = None, state: FleetState | None = None
) -> DispatchResult:
    """Solve the window of ``inputs`` at full resolution with every price realised (hindsight).

    The realised 4CP intervals carry the peak charge (one group per month, the peak already set in
    ``state.peak_mw`` as its floor) and reserve is free in ``[0, reserve_max_mw]``. A job whose
    window is cut by ``window`` is left out; ``state`` says how far jobs have progressed.
    """
    window = window or slice(0, inputs.n)
    start, stop, _ = window.indices(inputs.n)
    sub = inputs.slice(start, stop) if (start, stop) != (0, inputs.n) else inputs
    site = sub.site
    state = state or FleetState(mining_mw=site.mining_it_mw)
    n = sub.n
    flags = sub.four_cp
    months = np.array(month_keys(sub))
    groups: list[IntArray] = []
    group_keys: list[str] = []
    if site.four_cp_rate_usd_per_mw > 0:
        for key in dict.fromkeys(months.tolist()):
            sel = np.flatnonzero(flags & (months == key))
            if len(sel):
                groups.append(sel)
                group_keys.append(key)
    job_periods = [np.arange(j.release, j.deadline) for j in sub.jobs]
    model = DispatchModel(
        site, np.ones(n, dtype=np.int64), sub.hours, job_periods, groups, renewables=sub.has_renewables
    )
    jobs = []
    for j, p in zip(sub.jobs, job_periods, strict=True):
        left = max(j.energy_mwh - state.job_done_mwh.get(j.name, 0.0), 0.0)
        jobs.append(
            JobColumns(
                p, np.full(len(p), j.max_mw), left, left, j.revenue_usd_per_mwh, j.unmet_penalty_usd_per_mwh
            )
        )
    cap = np.minimum(sub.emergency_cap_mw, site.connection_mw)
    data = PeriodData(
        price_usd_per_mwh=marginal_price(site, sub.price_usd_per_mwh),
        mining_revenue_usd_per_mwh=sub.mining_revenue_usd_per_mwh,
        ai_inference_mw=sub.ai_inference_mw,
        reserve_price_usd_per_mw_h=sub.reserve_price_usd_per_mw_h,
        reserve_lb_mw=np.zeros(n),
        reserve_ub_mw=np.full(n, site.reserve_max_mw),
        cap_mw=cap,
        held_off_mw=held_off_mw(state, np.arange(n), site.mining_min_off_intervals),
        mining_prev_mw=state.mining_mw,
        jobs=tuple(jobs),
        peak_row_ub=tuple(np.zeros(len(g)) for g in groups),
        peak_lb_mw=np.array([state.peak_mw.get(k, 0.0) for k in group_keys]),
        renewable_mw=sub.renewable_mw,
    )
    return model.solve(data)
