"""Records that cross the dispatch seam: the site as the optimiser sees it, the per-interval inputs,
the decisions a policy returns, and the solver status enum.

Everything here is a frozen dataclass holding NumPy arrays (one value per interval) or scalars with
their units in the name. :class:`DispatchSite` is the dispatcher's own flat view of a site; the
adapter in :mod:`drakewell.dispatch.inputs` builds it from a validated site file, and tests build it
directly so the maths can be checked on hand-sized cases.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from drakewell.core.errors import DispatchError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

ContractKind = Literal["index", "fixed_block"]


class DispatchInputError(DispatchError):
    """The inputs handed to the dispatcher are inconsistent (lengths, signs, unknown names)."""


class SolveStatus(enum.Enum):
    """Our own view of a solver outcome; an unrecognised HiGHS status maps to ``UNKNOWN``."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"
    ERROR = "error"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TrainingLoad:
    """A site's training job (:class:`drakewell.site.TrainingJob`) as the dispatcher sees it: a
    pausable load of ``energy_mwh`` IT energy between release and deadline.

    Indices are interval numbers of the backtest horizon (release inclusive, deadline exclusive);
    the job may draw at most ``max_mw`` IT power in any interval. It earns ``revenue_usd_per_mwh``
    per MWh of IT energy delivered and pays ``unmet_penalty_usd_per_mwh`` per MWh left at the deadline.
    """

    name: str
    energy_mwh: float
    release: int
    deadline: int
    max_mw: float
    revenue_usd_per_mwh: float
    unmet_penalty_usd_per_mwh: float


@dataclass(frozen=True)
class DispatchSite:
    """The flat, optimiser-facing description of one hybrid site (all power in MW).

    ``mining_it_mw`` and ``gpu_it_mw`` are power at the hardware (before PUE); grid import is
    ``mining_pue * mining + ai_pue * ai``. Money is float USD (analytics, not settlement).
    """

    name: str
    connection_mw: float
    # bitcoin mining hall
    mining_it_mw: float
    mining_pue: float
    mining_j_per_th: float
    mining_ramp_up_mw_per_interval: float
    mining_min_off_intervals: int
    # AI hall
    gpu_count: int
    gpu_mw: float  # IT MW per GPU including its share of the server
    ai_pue: float
    ai_price_usd_per_gpu_hour: float
    spot_price_usd_per_gpu_hour: float
    spot_max_gpus: int
    inference_shed_penalty_usd_per_gpu_hour: float
    # grid programmes
    contract: ContractKind = "index"
    index_adder_usd_per_mwh: float = 0.0  # added to the real-time price under an index contract
    block_mw: float = 0.0
    block_price_usd_per_mwh: float = 0.0
    four_cp_rate_usd_per_mw: float = 0.0  # charged on facility MW at each realised 4CP interval
    reserve_max_mw: float = 0.0
    reserve_penalty_multiplier: float = 1.0  # undelivered reserve MW-h pay this x the reserve price
    # behind-the-meter renewables: surplus over the load is exported at real time or curtailed
    renewable_surplus: Literal["export", "curtail"] = "curtail"

    def __post_init__(self) -> None:
        checks = {
            "connection_mw": self.connection_mw,
            "mining_it_mw": self.mining_it_mw,
            "mining_j_per_th": self.mining_j_per_th,
            "mining_ramp_up_mw_per_interval": self.mining_ramp_up_mw_per_interval,
            "gpu_mw": self.gpu_mw,
            "block_mw": self.block_mw,
            "four_cp_rate_usd_per_mw": self.four_cp_rate_usd_per_mw,
            "reserve_max_mw": self.reserve_max_mw,
            "reserve_penalty_multiplier": self.reserve_penalty_multiplier,
        }
        for key, value in checks.items():
            if not np.isfinite(value) or value < 0:
                raise DispatchInputError(
                    f"site '{self.name}': {key} = {value} must be a finite number >= 0",
                    hint=f"fix {key} in the site file",
                )
        for key, pue in (("mining_pue", self.mining_pue), ("ai_pue", self.ai_pue)):
            if not (np.isfinite(pue) and pue >= 1.0):
                raise DispatchInputError(
                    f"site '{self.name}': {key} = {pue} must be >= 1.0", hint="PUE is facility/IT power"
                )
        if self.mining_j_per_th <= 0:
            raise DispatchInputError(
                f"site '{self.name}': mining_j_per_th must be > 0", hint="use the fleet's J/TH efficiency"
            )
        if self.gpu_count < 0 or self.spot_max_gpus < 0 or self.mining_min_off_intervals < 0:
            raise DispatchInputError(
                f"site '{self.name}': counts must be >= 0", hint="check gpu_count, spot and min off time"
            )
        if self.renewable_surplus not in ("export", "curtail"):
            raise DispatchInputError(
                f"site '{self.name}': unknown renewable surplus rule '{self.renewable_surplus}'",
                hint="use 'export' or 'curtail'",
            )
        if self.contract not in ("index", "fixed_block"):
            raise DispatchInputError(
                f"site '{self.name}': unknown power contract '{self.contract}'",
                hint="use 'index' or 'fixed_block'",
            )

    @property
    def gpu_it_mw(self) -> float:
        return self.gpu_count * self.gpu_mw

    @property
    def ai_revenue_usd_per_mwh(self) -> float:
        """Contracted AI revenue per MWh of IT energy."""
        return self.ai_price_usd_per_gpu_hour / self.gpu_mw if self.gpu_mw > 0 else 0.0

    @property
    def spot_revenue_usd_per_mwh(self) -> float:
        return self.spot_price_usd_per_gpu_hour / self.gpu_mw if self.gpu_mw > 0 else 0.0

    @property
    def shed_penalty_usd_per_mwh(self) -> float:
        return self.inference_shed_penalty_usd_per_gpu_hour / self.gpu_mw if self.gpu_mw > 0 else 0.0


@dataclass(frozen=True)
class DispatchInputs:
    """Everything a policy may use, one array entry per interval of length ``hours``.

    - ``price_usd_per_mwh``: realised real-time price (known at its own interval only).
    - ``forecast_usd_per_mwh``: the day-ahead price, the forecast of later intervals; entry ``u`` is
      published at interval ``forecast_known_from[u]`` (13:00 Central Time the day before).
    - ``hashprice_usd_per_ph_day``: realised hashprice (online policies persist the current value).
    - ``ai_inference_mw``: IT power inference needs (contracted profile, known in advance).
    - ``reserve_price_usd_per_mw_h``: day-ahead reserve price, published with the forecast.
    - ``four_cp``: the realised 4CP intervals (only ``perfect`` sees them);
      ``four_cp_forecast``: the 4CP alert intervals flagged from day-ahead data (known, like the
      forecast, from ``forecast_known_from``).
    - ``emergency_cap_mw``: facility power cap (``inf`` where none), known from its own interval on.
    - ``renewable_mw``: behind-the-meter generation (MW AC; ``None``: no plants), a known profile.
    """

    site: DispatchSite
    interval_start_utc: pd.DatetimeIndex
    hours: float
    price_usd_per_mwh: FloatArray
    forecast_usd_per_mwh: FloatArray
    forecast_known_from: IntArray
    hashprice_usd_per_ph_day: FloatArray
    ai_inference_mw: FloatArray
    reserve_price_usd_per_mw_h: FloatArray
    four_cp: BoolArray
    four_cp_forecast: BoolArray
    emergency_cap_mw: FloatArray
    jobs: tuple[TrainingLoad, ...] = ()
    zone: str = ""
    renewable_mw: FloatArray | None = None

    def __post_init__(self) -> None:
        n = len(self.interval_start_utc)
        if n == 0:
            raise DispatchInputError(
                "dispatch inputs have no intervals", hint="pass a non-empty price series"
            )
        for name in (
            "price_usd_per_mwh",
            "forecast_usd_per_mwh",
            "forecast_known_from",
            "hashprice_usd_per_ph_day",
            "ai_inference_mw",
            "reserve_price_usd_per_mw_h",
            "four_cp",
            "four_cp_forecast",
            "emergency_cap_mw",
        ):
            arr = getattr(self, name)
            if len(arr) != n:
                raise DispatchInputError(
                    f"dispatch input '{name}' has {len(arr)} values for {n} intervals",
                    hint="align every series to the real-time price intervals",
                )
            if arr.dtype.kind == "f" and np.isnan(arr).any():
                raise DispatchInputError(
                    f"dispatch input '{name}' has NaN at interval {int(np.flatnonzero(np.isnan(arr))[0])}",
                    hint="fill or drop missing values before dispatch",
                )
        if self.renewable_mw is not None:
            gen = self.renewable_mw
            if len(gen) != n or not np.isfinite(gen).all() or (gen < 0).any():
                raise DispatchInputError(
                    f"dispatch input 'renewable_mw' needs {n} finite values >= 0 (got {len(gen)})",
                    hint="give one on-site generation value (MW) per real-time interval",
                )
        if self.hours <= 0:
            raise DispatchInputError(
                f"interval length {self.hours} h must be > 0", hint="use 0.25 for 15 min"
            )
        if (self.ai_inference_mw < 0).any() or (self.emergency_cap_mw < 0).any():
            raise DispatchInputError(
                "AI demand and emergency caps must be >= 0", hint="check the demand profile and event file"
            )
        for job in self.jobs:
            if not (0 <= job.release < job.deadline <= n) or job.energy_mwh < 0 or job.max_mw < 0:
                raise DispatchInputError(
                    f"training job '{job.name}' has release {job.release}, deadline {job.deadline}, "
                    f"energy {job.energy_mwh} MWh, max {job.max_mw} MW",
                    hint=f"release < deadline within 0..{n} intervals, non-negative energy and power",
                )

    @property
    def n(self) -> int:
        return len(self.interval_start_utc)

    @property
    def has_renewables(self) -> bool:
        return self.renewable_mw is not None

    @property
    def generation_mw(self) -> FloatArray:
        """On-site generation per interval (zeros without plants)."""
        return self.renewable_mw if self.renewable_mw is not None else np.zeros(self.n)

    @property
    def mining_revenue_usd_per_mwh(self) -> FloatArray:
        """Mining revenue per MWh at the hardware: hashprice x (1000 / J/TH) PH/s per MW / 24 h."""
        return self.hashprice_usd_per_ph_day * (1000.0 / self.site.mining_j_per_th) / 24.0

    def slice(self, start: int, stop: int) -> DispatchInputs:
        """The inputs restricted to intervals ``start..stop`` (jobs clipped to the window)."""
        jobs = tuple(
            replace(j, release=max(j.release, start) - start, deadline=min(j.deadline, stop) - start)
            for j in self.jobs
            if j.release < stop and j.deadline > start and j.deadline <= stop
        )
        return DispatchInputs(
            site=self.site,
            interval_start_utc=self.interval_start_utc[start:stop],
            hours=self.hours,
            price_usd_per_mwh=self.price_usd_per_mwh[start:stop],
            forecast_usd_per_mwh=self.forecast_usd_per_mwh[start:stop],
            forecast_known_from=np.maximum(self.forecast_known_from[start:stop] - start, 0),
            hashprice_usd_per_ph_day=self.hashprice_usd_per_ph_day[start:stop],
            ai_inference_mw=self.ai_inference_mw[start:stop],
            reserve_price_usd_per_mw_h=self.reserve_price_usd_per_mw_h[start:stop],
            four_cp=self.four_cp[start:stop],
            four_cp_forecast=self.four_cp_forecast[start:stop],
            emergency_cap_mw=self.emergency_cap_mw[start:stop],
            jobs=jobs,
            zone=self.zone,
            renewable_mw=None if self.renewable_mw is None else self.renewable_mw[start:stop],
        )


@dataclass(frozen=True)
class Decisions:
    """What a policy decided, per interval (IT MW at the hardware; reserve in facility MW)."""

    mining_mw: FloatArray
    inference_mw: FloatArray
    training_mw: FloatArray
    spot_mw: FloatArray
    reserve_mw: FloatArray
    training_by_job_mw: tuple[FloatArray, ...] = ()  # per job of ``DispatchInputs.jobs``
    solve_seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
