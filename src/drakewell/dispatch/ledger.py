"""The per-interval ledger: what a policy's decisions earn and cost against realised prices.

Every policy is settled by the same function, so policies are compared on the same books. Columns
(USD per interval unless the name says otherwise):

``interval_start_utc`` (UTC), ``hours``, ``price_usd_per_mwh`` (real time), ``ai_inference_mw``,
``ai_training_mw``, ``ai_spot_mw``, ``mining_mw`` (IT power at the hardware, before PUE),
``curtailed_mw`` (ASIC IT capacity not mining), ``grid_import_mw`` (facility power incl. PUE),
``reserve_mw`` (committed), ``reserve_shortfall_mw``, ``inference_shed_mw``, ``training_unmet_mwh``
(at each job's deadline), ``four_cp`` (realised 4CP interval), ``revenue_ai_usd``,
``revenue_mining_usd``, ``revenue_reserves_usd``, ``curtailment_credits_usd``, ``energy_cost_usd``,
``four_cp_cost_usd``, ``penalty_usd``, ``profit_usd``, ``gpus_busy`` (GPUs doing AI work);
behind-the-meter renewables (all zero without plants): ``facility_load_mw`` (the load incl. PUE),
``renewable_generation_mw``, ``renewable_self_consumed_mw`` (generation the load used),
``renewable_export_mw`` (surplus sold at the real-time price), ``renewable_curtailed_mw`` and
``revenue_export_usd``.

Renewables: generation serves the load first, so ``grid_import_mw = max(load − generation, 0)``;
at a negative real-time price the site is paid to import, so it imports its load (up to the
connection) and curtails its own generation. The surplus is exported (``surplus = "export"``) when
the real-time price is positive, up to the grid connection, and curtailed otherwise — the choices
the LP makes.

Money: ``energy_cost_usd`` is the fixed block (``block_mw × block price × hours``) plus real-time
energy above the block (index contract: all energy at real time + adder);
``curtailment_credits_usd`` is unused block energy × real-time price (zero under index);
``four_cp_cost_usd`` is the 4CP rate × grid import at each realised 4CP interval; ``penalty_usd``
adds inference shed (SLA credit per GPU-hour), undelivered reserve (multiplier × reserve price) and
training energy left undone at a deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from drakewell.core.jsontypes import JsonObject
from drakewell.dispatch.types import Decisions, DispatchInputError, DispatchInputs, FloatArray

LEDGER_COLUMNS = (
    "interval_start_utc",
    "hours",
    "price_usd_per_mwh",
    "ai_inference_mw",
    "ai_training_mw",
    "ai_spot_mw",
    "mining_mw",
    "curtailed_mw",
    "grid_import_mw",
    "reserve_mw",
    "reserve_shortfall_mw",
    "inference_shed_mw",
    "training_unmet_mwh",
    "four_cp",
    "revenue_ai_usd",
    "revenue_mining_usd",
    "revenue_reserves_usd",
    "curtailment_credits_usd",
    "energy_cost_usd",
    "four_cp_cost_usd",
    "penalty_usd",
    "profit_usd",
    "gpus_busy",
    "facility_load_mw",
    "renewable_generation_mw",
    "renewable_self_consumed_mw",
    "renewable_export_mw",
    "renewable_curtailed_mw",
    "revenue_export_usd",
)


def _renewables(inputs: DispatchInputs, load: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Generation the load used, exported and curtailed. It serves the load first, except at a
    negative price: the grid pays for the import, so the site imports its load up to the cap."""
    site, price, gen = inputs.site, inputs.price_usd_per_mwh, inputs.generation_mw
    cap = np.minimum(inputs.emergency_cap_mw, site.connection_mw)
    self_used = np.where(price < 0, np.minimum(np.maximum(load - cap, 0.0), gen), np.minimum(load, gen))
    surplus = gen - self_used
    if site.renewable_surplus == "export":
        export = np.where(price > 0, np.minimum(surplus, site.connection_mw), 0.0)
    else:
        export = np.zeros(inputs.n)
    return self_used, export, surplus - export


def _training(inputs: DispatchInputs, d: Decisions) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Training energy left undone at each deadline (MWh), its penalty and the training revenue (USD)."""
    n, h = inputs.n, inputs.hours
    if len(d.training_by_job_mw) != len(inputs.jobs):
        raise DispatchInputError(
            f"decisions split training over {len(d.training_by_job_mw)} jobs, inputs have {len(inputs.jobs)}",
            hint="a policy must return one training series per job of the inputs",
        )
    unmet, unmet_penalty, revenue = np.zeros(n), np.zeros(n), np.zeros(n)
    for job, xj in zip(inputs.jobs, d.training_by_job_mw, strict=True):
        left = max(job.energy_mwh - float(xj[job.release : job.deadline].sum() * h), 0.0)
        unmet[job.deadline - 1] += left
        unmet_penalty[job.deadline - 1] += left * job.unmet_penalty_usd_per_mwh
        revenue += xj * h * job.revenue_usd_per_mwh
    return unmet, unmet_penalty, revenue


def _energy_bill(inputs: DispatchInputs, grid: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Energy cost and curtailment credits (USD per interval) of importing ``grid`` MW."""
    site, price, h = inputs.site, inputs.price_usd_per_mwh, inputs.hours
    if site.contract == "fixed_block":
        above = np.maximum(grid - site.block_mw, 0.0)
        unused = np.maximum(site.block_mw - grid, 0.0)
        return site.block_mw * site.block_price_usd_per_mwh * h + price * above * h, price * unused * h
    return (price + site.index_adder_usd_per_mwh) * grid * h, np.zeros(inputs.n)


def build_ledger(inputs: DispatchInputs, d: Decisions) -> pd.DataFrame:
    """Settle ``d`` against the realised inputs, one row per interval."""
    site, h, n = inputs.site, inputs.hours, inputs.n
    price = inputs.price_usd_per_mwh
    m, a, x, o, r = d.mining_mw, d.inference_mw, d.training_mw, d.spot_mw, d.reserve_mw
    load = site.mining_pue * m + site.ai_pue * (a + x + o)
    gen = inputs.generation_mw
    self_used, export, curtailed_gen = _renewables(inputs, load)
    grid = load - self_used  # import
    revenue_export = price * export * h
    shed = np.maximum(inputs.ai_inference_mw - a, 0.0)
    shortfall = np.maximum(r - site.mining_pue * m, 0.0)
    unmet, unmet_penalty, revenue_training = _training(inputs, d)
    energy_cost, credits = _energy_bill(inputs, grid)
    four_cp_cost = np.where(inputs.four_cp, site.four_cp_rate_usd_per_mw * grid, 0.0)
    revenue_ai = (a * site.ai_revenue_usd_per_mwh + o * site.spot_revenue_usd_per_mwh) * h + revenue_training
    revenue_mining = m * h * inputs.mining_revenue_usd_per_mwh
    revenue_reserves = r * inputs.reserve_price_usd_per_mw_h * h
    penalty = (
        shed * site.shed_penalty_usd_per_mwh * h
        + shortfall * site.reserve_penalty_multiplier * inputs.reserve_price_usd_per_mw_h * h
        + unmet_penalty
    )
    profit = (
        revenue_ai
        + revenue_mining
        + revenue_reserves
        + credits
        + revenue_export
        - energy_cost
        - four_cp_cost
        - penalty
    )
    gpus = np.rint((a + x + o) / site.gpu_mw).astype(np.int64) if site.gpu_mw > 0 else np.zeros(n, np.int64)
    frame = pd.DataFrame(
        {
            "interval_start_utc": inputs.interval_start_utc,
            "hours": np.full(n, h),
            "price_usd_per_mwh": price,
            "ai_inference_mw": a,
            "ai_training_mw": x,
            "ai_spot_mw": o,
            "mining_mw": m,
            "curtailed_mw": np.maximum(site.mining_it_mw - m, 0.0),
            "grid_import_mw": grid,
            "reserve_mw": r,
            "reserve_shortfall_mw": shortfall,
            "inference_shed_mw": shed,
            "training_unmet_mwh": unmet,
            "four_cp": inputs.four_cp,
            "revenue_ai_usd": revenue_ai,
            "revenue_mining_usd": revenue_mining,
            "revenue_reserves_usd": revenue_reserves,
            "curtailment_credits_usd": credits,
            "energy_cost_usd": energy_cost,
            "four_cp_cost_usd": four_cp_cost,
            "penalty_usd": penalty,
            "profit_usd": profit,
            "gpus_busy": gpus,
            "facility_load_mw": load,
            "renewable_generation_mw": gen,
            "renewable_self_consumed_mw": self_used,
            "renewable_export_mw": export,
            "renewable_curtailed_mw": curtailed_gen,
            "revenue_export_usd": revenue_export,
        }
    )
    return frame


@dataclass(frozen=True)
class RevenueUsd:
    """Revenue by source over a run (USD)."""

    ai: float
    mining: float
    reserves: float
    curtailment_credits: float
    export: float


@dataclass(frozen=True)
class EnergyMwh:
    """IT energy over a run (MWh): AI work, mining, and ASIC capacity curtailed."""

    ai: float
    mining: float
    curtailed: float


@dataclass(frozen=True)
class RenewablesMwh:
    """On-site generation over a run (MWh) and where it went."""

    generation: float
    self_consumed: float
    export: float
    curtailed: float


@dataclass(frozen=True)
class BacktestSummary:
    """A policy's run in figures; :meth:`to_json` is the JSON contract (``dispatch_summary.json``,
    ``backtest --json``, the demo's ``summary.json`` and the API)."""

    policy: str
    profit_usd: float
    revenue_usd: RevenueUsd
    energy_cost_usd: float
    energy_mwh: EnergyMwh
    ratio_to_perfect: float | None  # profit / perfect-foresight profit
    flex_capture: float | None  # (profit − always) / (perfect − always)
    solve_seconds: float
    intervals: int
    solve_status: dict[str, int]  # decisions by how they were made
    renewables_mwh: RenewablesMwh

    def to_json(self) -> JsonObject:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> BacktestSummary:
        return cls(
            **{
                **obj,
                "revenue_usd": RevenueUsd(**obj["revenue_usd"]),
                "energy_mwh": EnergyMwh(**obj["energy_mwh"]),
                "renewables_mwh": RenewablesMwh(**obj["renewables_mwh"]),
                "solve_status": dict(obj["solve_status"]),
            }
        )


def summarize(
    ledger: pd.DataFrame,
    policy: str,
    *,
    solve_seconds: float,
    perfect_profit_usd: float | None,
    always_profit_usd: float | None,
    solve_status: dict[str, int] | None = None,
) -> BacktestSummary:
    """The backtest summary: totals, ratio to ``perfect`` and flexibility capture.

    ``flex_capture = (profit − always) / (perfect − always)``; ``None`` where a reference is missing
    or ``perfect`` does not beat ``always`` (no flexibility value to capture). ``solve_status``
    counts the policy's decisions by how they were made (``optimal`` solves; any other solver status
    is a solve that fell back to the safe rule; ``rule`` for a rule-based policy).
    """
    h = ledger["hours"].to_numpy()
    profit = float(ledger["profit_usd"].sum())
    ratio = profit / perfect_profit_usd if perfect_profit_usd else None
    flex = None
    if perfect_profit_usd is not None and always_profit_usd is not None:
        span = perfect_profit_usd - always_profit_usd
        flex = (profit - always_profit_usd) / span if span > 1e-6 else None

    def total(column: str) -> float:
        return float(ledger[column].sum()) if column in ledger else 0.0

    def mwh(column: str) -> float:
        return float((ledger[column] * h).sum()) if column in ledger else 0.0

    ai_mw = ledger["ai_inference_mw"] + ledger["ai_training_mw"] + ledger["ai_spot_mw"]
    return BacktestSummary(
        policy=policy,
        profit_usd=profit,
        revenue_usd=RevenueUsd(
            ai=total("revenue_ai_usd"),
            mining=total("revenue_mining_usd"),
            reserves=total("revenue_reserves_usd"),
            curtailment_credits=total("curtailment_credits_usd"),
            export=total("revenue_export_usd"),
        ),
        energy_cost_usd=total("energy_cost_usd"),
        energy_mwh=EnergyMwh(
            ai=float((ai_mw * h).sum()), mining=mwh("mining_mw"), curtailed=mwh("curtailed_mw")
        ),
        ratio_to_perfect=ratio,
        flex_capture=flex,
        solve_seconds=float(solve_seconds),
        intervals=len(ledger),
        solve_status=dict(sorted((solve_status or {}).items())),
        renewables_mwh=RenewablesMwh(
            generation=mwh("renewable_generation_mw"),
            self_consumed=mwh("renewable_self_consumed_mw"),
            export=mwh("renewable_export_mw"),
            curtailed=mwh("renewable_curtailed_mw"),
        ),
    )


def limit_violations(inputs: DispatchInputs, d: Decisions, *, tol_mw: float = 1e-5) -> list[str]:
    """Physical limits ``d`` breaks (empty when feasible): connection and emergency caps, hall and
    GPU capacity, inference above demand, ASIC ramp-up, minimum off time and job power limits."""
    site = inputs.site
    out: list[str] = []
    m, a, x, o = d.mining_mw, d.inference_mw, d.training_mw, d.spot_mw
    grid = site.mining_pue * m + site.ai_pue * (a + x + o)
    cap = np.minimum(inputs.emergency_cap_mw, site.connection_mw)

    def report(name: str, bad: np.ndarray) -> None:
        if bad.any():
            out.append(f"{name} at {int(bad.sum())} interval(s), first {int(np.flatnonzero(bad)[0])}")

    for name, arr in (
        ("mining", m),
        ("inference", a),
        ("training", x),
        ("spot", o),
        ("reserve", d.reserve_mw),
    ):
        report(f"negative {name}", arr < -tol_mw)
    report("grid import above connection/emergency cap", grid - inputs.generation_mw > cap + tol_mw)
    report("mining above the ASIC fleet", m > site.mining_it_mw + tol_mw)
    report("GPUs over capacity", a + x + o > site.gpu_it_mw + tol_mw)
    report("inference above demand", a > inputs.ai_inference_mw + tol_mw)
    report("spot above its cap", o > site.spot_max_gpus * site.gpu_mw + tol_mw)
    prev = np.concatenate([[site.mining_it_mw], m[:-1]])
    report("ASIC ramp-up above limit", m - prev > site.mining_ramp_up_mw_per_interval + tol_mw)
    W = site.mining_min_off_intervals
    if W > 1:
        shut = np.maximum(prev - m, 0.0)
        held = np.zeros(len(m))
        for lag in range(1, W):
            held[lag:] += shut[:-lag]
        report("machines restarted inside their minimum off time", m + held > site.mining_it_mw + tol_mw)
    for job, xj in zip(inputs.jobs, d.training_by_job_mw, strict=False):
        outside = np.ones(len(xj), dtype=bool)
        outside[job.release : job.deadline] = False
        report(
            f"job {job.name} outside its window or above max power",
            (xj > job.max_mw + tol_mw) | (outside & (xj > tol_mw)),
        )
    return out
