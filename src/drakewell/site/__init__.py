"""A hybrid AI/bitcoin site as data: a TOML file → validated, frozen records.

The TOML is validated with pydantic at the edge (unknown keys, wrong types, negative capacities,
unknown hardware, a fleet over its hall's capacity) and converted to frozen dataclasses. Every
error is a :class:`~drakewell.core.errors.SiteError` naming the key path, e.g.
``halls.gpu-hall.fleets[0].count``. Relative file paths (4CP intervals, emergency events, a custom
catalogue) are resolved against the TOML's folder and loaded eagerly, so a ``Site`` is complete.

Schema (see ``examples/sites/west-texas-hybrid.toml`` for a full example)::

    [site]      name, zone (default price column), grid_connection_mw, interval_minutes (15)
    [halls.<name>]  pue (≥ 1), capacity_mw (facility side, i.e. IT power × PUE), cooling,
                fleets = [{ model = "<catalogue model>", count = <units: miners or GPUs> }]
    [mining]    ramp_mw_per_interval (facility MW the ASIC fleet may move up or down per interval),
                min_off_minutes (a miner switched off stays off at least this long)
    [contract]  kind = "index" (pay the real-time price + adder_usd_per_mwh)
                | "fixed_block" (block_mw bought at block_price_usd_per_mwh; unused block energy is
                  credited at the real-time price; energy above the block is paid at real time)
    [ai]        contract_price_usd_per_gpu_hour, shed_penalty_usd_per_gpu_hour
    [ai.inference]  base_gpus + peak_gpus × hourly_fraction[local hour] GPUs busy (24 fractions in
                [0, 1], hours in ``timezone``)
    [ai.spot]   price_usd_per_gpu_hour, max_gpus
    [[ai.training]] name, gpus_max, gpu_hours | energy_mwh, then either release + deadline (ISO-8601
                with offset) or every = "7 days" [first_release, deadline_after]; price and a
                penalty per GPU-hour left undone at the deadline
    [markets.four_cp]   enabled, rate_usd_per_mw_year, intervals_file, forecast rule parameters
    [markets.reserves]  enabled, product, max_mw, price_kind = "constant" | "da_fraction",
                price_usd_per_mw_h | da_fraction, undelivered_penalty_multiplier
    [markets.emergency] enabled, events_file
    [renewables]    surplus = "export" (at the real-time price) | "curtail"
    [renewables.plants.<name>]  capacity_mw (AC), kind = "profile" (profile_file: a CSV of
                interval_start_utc,capacity_factor) | "pv" (latitude, longitude, altitude_m, tilt_deg,
                azimuth_deg, dc_ac_ratio, gamma_per_c, ambient_temp_c, clear_sky_fraction; pvlib),
                see :mod:`drakewell.site.renewables`

Power convention: a fleet's *IT* power is units × catalogue power per unit (a GPU counts its share of
the server); its *facility* power is IT power × the hall's PUE — what the grid meter sees, and what
``capacity_mw``, ``grid_connection_mw``, ``block_mw`` and ramp limits are expressed in.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from drakewell.catalog import AsicModel, Catalog, CatalogError, GpuModel, load_catalog
from drakewell.core.errors import DrakewellError, SiteError
from drakewell.inputs.grid import EmergencyEvent, load_4cp_intervals, load_emergency_events
from drakewell.site.renewables import NO_RENEWABLES, PvModel, RenewablePlant, Renewables, load_profile

__all__ = [
    "AiDemand",
    "EmergencyProgramme",
    "Fleet",
    "FourCP",
    "Hall",
    "InferenceProfile",
    "Markets",
    "MiningLimits",
    "PowerContract",
    "Renewables",
    "Reserves",
    "Site",
    "SpotMarket",
    "TrainingJob",
    "TrainingJobSpec",
    "load_site",
    "parse_duration",
    "parse_site",
    "read_toml",
]

# ---------------------------------------------------------------------------------------------
# Frozen records (what the rest of Drakewell uses)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    """``count`` units of one catalogue model in one hall."""

    model: str
    kind: Literal["asic", "gpu"]
    count: int
    hall: str
    pue: float
    unit_power_w: float  # IT power per unit: the miner, or one GPU plus its share of the server
    unit_hashrate_th_s: float  # 0 for GPUs

    @property
    def it_power_mw(self) -> float:
        return self.count * self.unit_power_w / 1e6

    @property
    def facility_power_mw(self) -> float:
        """Power at the grid meter at full load (IT × PUE)."""
        return self.it_power_mw * self.pue

    @property
    def hashrate_ph_s(self) -> float:
        return self.count * self.unit_hashrate_th_s / 1000.0


@dataclass(frozen=True)
class Hall:
    name: str
    pue: float
    capacity_mw: float  # facility side
    cooling: str
    fleets: tuple[Fleet, ...]

    @property
    def facility_power_mw(self) -> float:
        return sum(f.facility_power_mw for f in self.fleets)


@dataclass(frozen=True)
class MiningLimits:
    ramp_mw_per_interval: float  # facility MW the whole ASIC fleet may move per interval (inf: none)
    min_off_minutes: int  # 0: none


@dataclass(frozen=True)
class PowerContract:
    kind: Literal["index", "fixed_block"]
    block_mw: float  # 0 for index
    block_price_usd_per_mwh: float  # 0 for index
    adder_usd_per_mwh: float  # added to the real-time price for energy bought at index


@dataclass(frozen=True)
class InferenceProfile:
    base_gpus: int
    peak_gpus: int
    hourly_fraction: tuple[float, ...]  # 24 values in [0, 1], by local hour
    timezone: str

    def gpus_busy(self, index: pd.DatetimeIndex) -> np.ndarray:
        """GPUs inference needs in each interval of a tz-aware index (float, may be fractional)."""
        hours = np.asarray(index.tz_convert(ZoneInfo(self.timezone)).hour)
        shape = np.asarray(self.hourly_fraction, dtype=np.float64)
        return self.base_gpus + self.peak_gpus * shape[hours]


@dataclass(frozen=True)
class SpotMarket:
    price_usd_per_gpu_hour: float
    max_gpus: int


@dataclass(frozen=True)
class TrainingJobSpec:
    """A training job as configured: one-off (release/deadline) or recurring (every)."""

    name: str
    gpus_max: int
    gpu_hours: float
    price_usd_per_gpu_hour: float
    miss_penalty_usd_per_gpu_hour: float
    release_utc: datetime | None
    deadline_utc: datetime | None
    every: timedelta | None
    first_release_utc: datetime | None
    deadline_after: timedelta | None


@dataclass(frozen=True)
class TrainingJob:
    """One concrete job instance: run at most ``gpus_max`` GPUs, pausable, done by the deadline."""

    name: str  # "<spec name>#<k>" for recurring jobs
    gpus_max: int
    gpu_hours: float
    energy_mwh: float  # facility energy at the site's per-GPU facility power
    release_utc: datetime
    deadline_utc: datetime
    price_usd_per_gpu_hour: float
    miss_penalty_usd_per_gpu_hour: float


@dataclass(frozen=True)
class AiDemand:
    contract_price_usd_per_gpu_hour: float
    shed_penalty_usd_per_gpu_hour: float  # per GPU-hour of inference demand not served
    inference: InferenceProfile
    spot: SpotMarket
    training: tuple[TrainingJobSpec, ...]


@dataclass(frozen=True)
class FourCP:
    enabled: bool
    rate_usd_per_mw_year: float  # next year's transmission charge per MW of average 4CP load
    intervals_utc: tuple[datetime, ...]
    intervals_file: str | None
    forecast_zone: str
    forecast_ratio: float
    forecast_threshold_usd_per_mwh: float = 500.0


@dataclass(frozen=True)
class Reserves:
    enabled: bool
    product: str
    max_mw: float
    price_kind: Literal["constant", "da_fraction"]
    price_usd_per_mw_h: float  # constant price, when price_kind == "constant"
    da_fraction: float  # price = fraction × day-ahead energy price, when price_kind == "da_fraction"
    undelivered_penalty_multiplier: float  # undelivered MW-h pay multiplier × reserve price

    def price_usd_per_mw_h_series(self, da_price_usd_per_mwh: np.ndarray) -> np.ndarray:
        """Reserve capacity price per interval (USD per MW per hour), never negative."""
        if self.price_kind == "constant":
            return np.full(len(da_price_usd_per_mwh), self.price_usd_per_mw_h)
        return np.maximum(self.da_fraction * np.asarray(da_price_usd_per_mwh, dtype=np.float64), 0.0)


@dataclass(frozen=True)
class EmergencyProgramme:
    enabled: bool
    events: tuple[EmergencyEvent, ...]
    events_file: str | None


@dataclass(frozen=True)
class Markets:
    four_cp: FourCP
    reserves: Reserves
    emergency: EmergencyProgramme


@dataclass(frozen=True)
class Site:
    name: str
    zone: str
    grid_connection_mw: float
    interval_minutes: int
    halls: tuple[Hall, ...]
    mining: MiningLimits
    contract: PowerContract
    ai: AiDemand
    markets: Markets
    source: str
    renewables: Renewables = NO_RENEWABLES

    @property
    def fleets(self) -> tuple[Fleet, ...]:
        return tuple(f for h in self.halls for f in h.fleets)

    @property
    def asic_fleets(self) -> tuple[Fleet, ...]:
        return tuple(f for f in self.fleets if f.kind == "asic")

    @property
    def gpu_fleets(self) -> tuple[Fleet, ...]:
        return tuple(f for f in self.fleets if f.kind == "gpu")

    @property
    def mining_capacity_mw(self) -> float:
        """Facility MW of all ASICs at full load."""
        return sum(f.facility_power_mw for f in self.asic_fleets)

    @property
    def mining_hashrate_ph_s(self) -> float:
        return sum(f.hashrate_ph_s for f in self.asic_fleets)

    @property
    def mining_mw_per_ph_s(self) -> float:
        """Facility MW per PH/s of the whole ASIC fleet (0 if there are no ASICs)."""
        hashrate = self.mining_hashrate_ph_s
        return self.mining_capacity_mw / hashrate if hashrate else 0.0

    @property
    def gpu_count(self) -> int:
        return sum(f.count for f in self.gpu_fleets)

    @property
    def gpu_capacity_mw(self) -> float:
        """Facility MW of all GPUs busy."""
        return sum(f.facility_power_mw for f in self.gpu_fleets)

    @property
    def gpu_facility_mw_per_gpu(self) -> float:
        """Facility MW one busy GPU draws (count-weighted over GPU fleets; 0 if none)."""
        count = self.gpu_count
        return self.gpu_capacity_mw / count if count else 0.0

    def training_jobs(
        self, start: datetime | pd.Timestamp, end: datetime | pd.Timestamp, *, include_partial: bool = False
    ) -> tuple[TrainingJob, ...]:
        """Concrete job instances released in ``[start, end)``.

        Recurring jobs release at ``first_release`` (default ``start``) + k × ``every``; their deadline is
        release + ``deadline_after`` (default ``every``). Jobs whose deadline falls after ``end`` are
        left out unless ``include_partial``.
        """
        t0, t1 = _utc(start), _utc(end)
        per_gpu = self.gpu_facility_mw_per_gpu
        out: list[TrainingJob] = []
        for spec in self.ai.training:
            windows: list[tuple[str, datetime, datetime]] = []
            if spec.every is not None:
                release = spec.first_release_utc or t0
                window = spec.deadline_after or spec.every
                k = 0
                while release < t1:
                    if release >= t0:
                        windows.append((f"{spec.name}#{k}", release, release + window))
                    release += spec.every
                    k += 1
            else:
                assert spec.release_utc is not None and spec.deadline_utc is not None
                if t0 <= spec.release_utc < t1:
                    windows.append((spec.name, spec.release_utc, spec.deadline_utc))
            for name, release, deadline in windows:
                if deadline > t1 and not include_partial:
                    continue
                out.append(
                    TrainingJob(
                        name=name,
                        gpus_max=spec.gpus_max,
                        gpu_hours=spec.gpu_hours,
                        energy_mwh=spec.gpu_hours * per_gpu,
                        release_utc=release,
                        deadline_utc=deadline,
                        price_usd_per_gpu_hour=spec.price_usd_per_gpu_hour,
                        miss_penalty_usd_per_gpu_hour=spec.miss_penalty_usd_per_gpu_hour,
                    )
                )
        return tuple(sorted(out, key=lambda j: (j.release_utc, j.name)))


def _utc(ts: datetime | pd.Timestamp) -> datetime:
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise SiteError(f"time {stamp} has no time zone", hint="pass a tz-aware (UTC) time")
    return stamp.tz_convert(UTC).to_pydatetime()


# ---------------------------------------------------------------------------------------------
# Durations and times in TOML
# ---------------------------------------------------------------------------------------------

_DURATION = re.compile(
    r"^\s*(?:every\s+)?(\d+(?:\.\d+)?)\s*(minutes?|mins?|m|hours?|h|days?|d|weeks?|w)\s*$", re.IGNORECASE
)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Parse ``"7 days"``, ``"every 7 days"``, ``"12 hours"``, ``"90 min"``, ``"1 week"``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; write e.g. '7 days', '12 hours' or '90 minutes'")
    amount = float(match.group(1))
    unit = match.group(2).lower()[0]
    seconds = amount * _UNIT_SECONDS[unit]
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return timedelta(seconds=seconds)


def _parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        ts = value
    else:
        try:
            ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 time") from None
    if ts.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset; write e.g. 2023-07-03T05:00:00Z")
    return ts.astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# Pydantic schema (the edge): each section checks itself, the whole checks what crosses sections
# (with the catalogue as validation context), and each builds its frozen record
# ---------------------------------------------------------------------------------------------

NonNeg = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Pos = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_T = TypeVar("_T")


@dataclass(frozen=True)
class _Context:
    """What validation needs beyond the mapping: the file's name, its folder and the catalogue."""

    source: str
    base: Path
    catalog: Catalog

    def path(self, name: str | None) -> str | None:
        """A file named in the TOML, relative to the TOML's folder."""
        return os.path.normpath(self.base / name) if name else None

    def load(self, key: str, loader: Callable[[], _T]) -> _T:
        return _load(self.source, key, loader)


def _load(source: str, key: str, loader: Callable[[], _T]) -> _T:
    """Run a loader; its error becomes a SiteError naming the key that pointed to the file."""
    try:
        return loader()
    except DrakewellError as exc:
        raise SiteError(f"{source}: {key}: {exc.message}", hint=exc.hint) from None


def _context(info: ValidationInfo) -> _Context:
    ctx = (info.context or {}).get("site")
    if not isinstance(ctx, _Context):
        raise TypeError("site sections are validated by parse_site(), which passes the catalogue")
    return ctx


def _invalid(message: str, hint: str) -> PydanticCustomError:
    """A validation error whose message and hint reach the :class:`SiteError` unchanged."""
    return PydanticCustomError("site", "{message}", {"message": message, "hint": hint})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class _SiteSection(_Model):
    name: str = Field(min_length=1)
    zone: str = "LZ_WEST"
    grid_connection_mw: Pos
    interval_minutes: Literal[5, 15, 60] = 15


class _FleetIn(_Model):
    model: str = Field(min_length=1)
    count: Annotated[int, Field(ge=0)]

    @field_validator("model")
    @classmethod
    def _in_catalog(cls, value: str, info: ValidationInfo) -> str:
        try:
            _context(info).catalog.model(value)
        except CatalogError as exc:
            raise _invalid(exc.message, exc.hint or "use a model of the catalogue") from None
        return value

    def record(self, hall: str, pue: float, catalog: Catalog) -> Fleet:
        model = catalog.model(self.model)
        if isinstance(model, AsicModel):
            unit_w, unit_th = model.power_w, model.hashrate_th_s
        else:
            assert isinstance(model, GpuModel)
            unit_w, unit_th = model.power_w_per_gpu, 0.0
        return Fleet(model.model, model.kind, self.count, hall, pue, unit_w, unit_th)


class _HallIn(_Model):
    pue: Annotated[float, Field(ge=1.0, le=3.0)]
    capacity_mw: Pos
    cooling: str = "air"
    fleets: list[_FleetIn] = Field(min_length=1)

    def record(self, name: str, ctx: _Context) -> Hall:
        """The hall with its fleets; refused when they draw more than its capacity at the meter."""
        fleets: list[Fleet] = []
        total = 0.0
        for i, fleet in enumerate(self.fleets):
            fleets.append(fleet.record(name, self.pue, ctx.catalog))
            total += fleets[-1].facility_power_mw
            if total > self.capacity_mw * (1 + 1e-9):
                key = f"halls.{name}.fleets[{i}]"
                raise _invalid(
                    f"{key}.count = {fleet.count} takes hall {name!r} to {total:.2f} MW at the meter "
                    f"(IT × PUE {self.pue}), over its capacity_mw = {self.capacity_mw}",
                    f"lower {key}.count or raise halls.{name}.capacity_mw",
                )
        return Hall(name, self.pue, self.capacity_mw, self.cooling, tuple(fleets))


class _MiningIn(_Model):
    ramp_mw_per_interval: Pos | None = None
    min_off_minutes: Annotated[int, Field(ge=0)] = 0

    def record(self) -> MiningLimits:
        return MiningLimits(self.ramp_mw_per_interval or float("inf"), self.min_off_minutes)


class _ContractIn(_Model):
    kind: Literal["index", "fixed_block"]
    block_mw: NonNeg | None = None
    block_price_usd_per_mwh: Annotated[float, Field(allow_inf_nan=False)] | None = None
    adder_usd_per_mwh: Annotated[float, Field(allow_inf_nan=False)] = 0.0

    @model_validator(mode="after")
    def _block_fields(self) -> _ContractIn:
        if self.kind == "fixed_block":
            if self.block_mw is None or self.block_price_usd_per_mwh is None:
                raise ValueError("a fixed_block contract needs block_mw and block_price_usd_per_mwh")
        elif self.block_mw is not None or self.block_price_usd_per_mwh is not None:
            raise ValueError("block_mw and block_price_usd_per_mwh belong to kind = 'fixed_block' only")
        return self

    def record(self) -> PowerContract:
        return PowerContract(
            self.kind, self.block_mw or 0.0, self.block_price_usd_per_mwh or 0.0, self.adder_usd_per_mwh
        )


class _InferenceIn(_Model):
    base_gpus: Annotated[int, Field(ge=0)]
    peak_gpus: Annotated[int, Field(ge=0)] = 0
    hourly_fraction: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: [1.0] * 24, min_length=24, max_length=24
    )
    timezone: str = "America/Chicago"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like America/Chicago") from None
        return value

    @property
    def peak(self) -> float:
        return self.base_gpus + self.peak_gpus * max(self.hourly_fraction)

    def record(self) -> InferenceProfile:
        return InferenceProfile(self.base_gpus, self.peak_gpus, tuple(self.hourly_fraction), self.timezone)


class _SpotIn(_Model):
    price_usd_per_gpu_hour: NonNeg
    max_gpus: Annotated[int, Field(ge=0)]

    def record(self) -> SpotMarket:
        return SpotMarket(self.price_usd_per_gpu_hour, self.max_gpus)


class _TrainingIn(_Model):
    name: str = Field(min_length=1)
    gpus_max: Annotated[int, Field(gt=0)]
    gpu_hours: Pos | None = None
    energy_mwh: Pos | None = None
    release: str | datetime | None = None
    deadline: str | datetime | None = None
    every: str | None = None
    first_release: str | datetime | None = None
    deadline_after: str | None = None
    price_usd_per_gpu_hour: NonNeg | None = None
    miss_penalty_usd_per_gpu_hour: NonNeg = 0.0

    @field_validator("release", "deadline", "first_release")
    @classmethod
    def _time(cls, value: str | datetime | None) -> datetime | None:
        return None if value is None else _parse_time(value)

    @field_validator("every", "deadline_after")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _shape(self) -> _TrainingIn:
        if (self.gpu_hours is None) == (self.energy_mwh is None):
            raise ValueError("give exactly one of gpu_hours or energy_mwh")
        if self.every is not None:
            if self.release is not None or self.deadline is not None:
                raise ValueError(
                    "a recurring job (every) takes first_release/deadline_after, not release/deadline"
                )
        else:
            if self.release is None or self.deadline is None:
                raise ValueError("give release and deadline (UTC times), or every = '7 days'")
            if self.first_release is not None or self.deadline_after is not None:
                raise ValueError("first_release and deadline_after belong to recurring jobs (every)")
            assert isinstance(self.release, datetime) and isinstance(self.deadline, datetime)
            if self.deadline <= self.release:
                raise ValueError("deadline must be after release")
        return self

    def record(self, key: str, gpu_count: int, gpu_mw: float, default_price: float) -> TrainingJobSpec:
        """The job on a site with ``gpu_count`` GPUs drawing ``gpu_mw``; refused when it cannot fit."""
        if gpu_count == 0:
            raise _invalid(f"{key} needs GPUs but the site has none", "add a GPU fleet")
        if self.gpus_max > gpu_count:
            raise _invalid(
                f"{key}.gpus_max = {self.gpus_max} exceeds the site's {gpu_count} GPUs",
                f"lower {key}.gpus_max",
            )
        gpu_hours = (
            self.gpu_hours if self.gpu_hours is not None else (self.energy_mwh or 0.0) / (gpu_mw / gpu_count)
        )
        every = parse_duration(self.every) if self.every else None
        after = parse_duration(self.deadline_after) if self.deadline_after else None
        release = self.release if isinstance(self.release, datetime) else None
        deadline = self.deadline if isinstance(self.deadline, datetime) else None
        window = after or every or (deadline - release if deadline and release else None)
        assert window is not None  # _shape: recurring, or release and deadline
        possible = self.gpus_max * window.total_seconds() / 3600
        if gpu_hours > possible * (1 + 1e-9):
            raise _invalid(
                f"{key} needs {gpu_hours:g} GPU-hours but gpus_max × window gives only {possible:g}",
                "raise gpus_max, widen the window or lower the work: the job could never finish",
            )
        first = self.first_release if isinstance(self.first_release, datetime) else None
        price = self.price_usd_per_gpu_hour
        return TrainingJobSpec(
            name=self.name,
            gpus_max=self.gpus_max,
            gpu_hours=float(gpu_hours),
            price_usd_per_gpu_hour=price if price is not None else default_price,
            miss_penalty_usd_per_gpu_hour=self.miss_penalty_usd_per_gpu_hour,
            release_utc=release,
            deadline_utc=deadline,
            every=every,
            first_release_utc=first,
            deadline_after=after,
        )


class _AiIn(_Model):
    contract_price_usd_per_gpu_hour: NonNeg
    shed_penalty_usd_per_gpu_hour: NonNeg
    inference: _InferenceIn
    spot: _SpotIn = _SpotIn(price_usd_per_gpu_hour=0.0, max_gpus=0)
    training: list[_TrainingIn] = Field(default_factory=list)

    def record(self, gpu_count: int, gpu_mw: float) -> AiDemand:
        """The AI demand on a site with ``gpu_count`` GPUs drawing ``gpu_mw`` at the meter."""
        price = self.contract_price_usd_per_gpu_hour
        training = tuple(
            job.record(f"ai.training[{i}]", gpu_count, gpu_mw, price) for i, job in enumerate(self.training)
        )
        if len({t.name for t in training}) != len(training):
            raise _invalid("ai.training has repeated job names", "give each job its own name")
        inf = self.inference
        if inf.peak > gpu_count:
            raise _invalid(
                f"ai.inference peak ({inf.base_gpus} + {inf.peak_gpus} × {max(inf.hourly_fraction)}) "
                f"GPUs exceeds the site's {gpu_count} GPUs",
                "lower ai.inference.base_gpus or peak_gpus, or add GPUs",
            )
        if self.spot.max_gpus > gpu_count:
            raise _invalid(
                f"ai.spot.max_gpus = {self.spot.max_gpus} exceeds the site's {gpu_count} GPUs",
                "lower ai.spot.max_gpus",
            )
        return AiDemand(price, self.shed_penalty_usd_per_gpu_hour, inf.record(), self.spot.record(), training)


class _FourCPIn(_Model):
    enabled: bool = False
    rate_usd_per_mw_year: NonNeg = 0.0
    intervals_file: str | None = None
    forecast_zone: str = "LZ_NORTH"
    forecast_ratio: Annotated[float, Field(gt=0, le=1)] = 0.9
    forecast_threshold_usd_per_mwh: NonNeg = 500.0

    @model_validator(mode="after")
    def _file(self) -> _FourCPIn:
        if self.enabled and self.intervals_file is None:
            raise ValueError("4CP is enabled: set intervals_file (a CSV of interval_start_utc)")
        return self

    def record(self, ctx: _Context) -> FourCP:
        file = ctx.path(self.intervals_file)
        intervals: tuple[datetime, ...] = ()
        if self.enabled and file:
            intervals = ctx.load("markets.four_cp.intervals_file", lambda: load_4cp_intervals(file))
        return FourCP(
            enabled=self.enabled,
            rate_usd_per_mw_year=self.rate_usd_per_mw_year,
            intervals_utc=intervals,
            intervals_file=file,
            forecast_zone=self.forecast_zone,
            forecast_ratio=self.forecast_ratio,
            forecast_threshold_usd_per_mwh=self.forecast_threshold_usd_per_mwh,
        )


class _ReservesIn(_Model):
    enabled: bool = False
    product: str = "Non-Spin"
    max_mw: NonNeg = 0.0
    price_kind: Literal["constant", "da_fraction"] = "constant"
    price_usd_per_mw_h: NonNeg = 0.0
    da_fraction: NonNeg = 0.0
    undelivered_penalty_multiplier: Annotated[float, Field(ge=1.0, allow_inf_nan=False)] = 1.0

    def record(self) -> Reserves:
        return Reserves(
            enabled=self.enabled,
            product=self.product,
            max_mw=self.max_mw,
            price_kind=self.price_kind,
            price_usd_per_mw_h=self.price_usd_per_mw_h,
            da_fraction=self.da_fraction,
            undelivered_penalty_multiplier=self.undelivered_penalty_multiplier,
        )


class _EmergencyIn(_Model):
    enabled: bool = False
    events_file: str | None = None

    @model_validator(mode="after")
    def _file(self) -> _EmergencyIn:
        if self.enabled and self.events_file is None:
            raise ValueError("emergency events are enabled: set events_file")
        return self

    def record(self, ctx: _Context) -> EmergencyProgramme:
        file = ctx.path(self.events_file)
        events: tuple[EmergencyEvent, ...] = ()
        if self.enabled and file:
            events = ctx.load("markets.emergency.events_file", lambda: load_emergency_events(file))
        return EmergencyProgramme(self.enabled, events, file)


class _MarketsIn(_Model):
    four_cp: _FourCPIn = _FourCPIn()
    reserves: _ReservesIn = _ReservesIn()
    emergency: _EmergencyIn = _EmergencyIn()

    def record(self, ctx: _Context) -> Markets:
        return Markets(self.four_cp.record(ctx), self.reserves.record(), self.emergency.record(ctx))


class _PlantIn(_Model):
    kind: Literal["pv", "profile"]
    capacity_mw: Pos
    profile_file: str | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    altitude_m: Annotated[float, Field(ge=-500, le=9000)] = 0.0
    tilt_deg: Annotated[float, Field(ge=0, le=90)] = 25.0
    azimuth_deg: Annotated[float, Field(ge=0, le=360)] = 180.0
    dc_ac_ratio: Annotated[float, Field(gt=0, le=3)] = 1.2
    gamma_per_c: Annotated[float, Field(ge=-0.02, le=0)] = -0.004
    ambient_temp_c: Annotated[float, Field(ge=-50, le=60)] = 25.0
    clear_sky_fraction: Annotated[float, Field(gt=0, le=1)] = 1.0

    @model_validator(mode="after")
    def _source(self) -> _PlantIn:
        if self.kind == "profile" and self.profile_file is None:
            raise ValueError("a profile plant needs profile_file (CSV of interval_start_utc,capacity_factor)")
        if self.kind == "pv" and (self.latitude is None or self.longitude is None):
            raise ValueError("a pv plant needs latitude and longitude")
        if self.kind == "pv" and self.profile_file is not None:
            raise ValueError("profile_file belongs to kind = 'profile'; a pv plant is modelled by pvlib")
        return self

    def record(self, name: str, ctx: _Context) -> RenewablePlant:
        file = ctx.path(self.profile_file)
        utc: tuple[int, ...] = ()
        cf: tuple[float, ...] = ()
        if file is not None:
            utc, cf = ctx.load(f"renewables.plants.{name}.profile_file", lambda: load_profile(file))
        pv = None
        if self.kind == "pv":
            assert self.latitude is not None and self.longitude is not None  # _source
            pv = PvModel(
                latitude=self.latitude,
                longitude=self.longitude,
                altitude_m=self.altitude_m,
                tilt_deg=self.tilt_deg,
                azimuth_deg=self.azimuth_deg,
                dc_ac_ratio=self.dc_ac_ratio,
                gamma_per_c=self.gamma_per_c,
                ambient_temp_c=self.ambient_temp_c,
                clear_sky_fraction=self.clear_sky_fraction,
            )
        return RenewablePlant(name, self.kind, self.capacity_mw, pv, file, utc, cf)


class _RenewablesIn(_Model):
    surplus: Literal["export", "curtail"] = "curtail"
    plants: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")], _PlantIn] = Field(
        min_length=1
    )

    def record(self, ctx: _Context) -> Renewables:
        return Renewables(self.surplus, tuple(p.record(name, ctx) for name, p in self.plants.items()))


class _SiteIn(_Model):
    site: _SiteSection
    catalog: str | None = None
    halls: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")], _HallIn] = Field(min_length=1)
    mining: _MiningIn = _MiningIn()
    contract: _ContractIn
    ai: _AiIn
    markets: _MarketsIn = _MarketsIn()
    renewables: _RenewablesIn | None = None
    live: dict[str, object] | None = None  # the live controller's settings, validated by drakewell.live

    _halls: tuple[Hall, ...] = PrivateAttr(default=())
    _ai: AiDemand | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> _SiteIn:
        """What crosses sections: fleets within their halls, the contract and reserves within the
        connection, AI demand within the site's GPUs (halls and AI demand are built here, once)."""
        ctx = _context(info)
        self._halls = tuple(hall.record(name, ctx) for name, hall in self.halls.items())
        grid_mw, block_mw = self.site.grid_connection_mw, self.contract.block_mw or 0.0
        if self.contract.kind == "fixed_block" and block_mw > grid_mw:
            raise _invalid(
                f"contract.block_mw = {block_mw} exceeds site.grid_connection_mw = {grid_mw}",
                "a block cannot be larger than the connection that delivers it",
            )
        res = self.markets.reserves
        if res.enabled and res.max_mw > grid_mw:
            raise _invalid(
                f"markets.reserves.max_mw = {res.max_mw} exceeds the grid connection ({grid_mw} MW)",
                "offer at most the load you can curtail",
            )
        if res.enabled and res.price_kind == "da_fraction" and res.da_fraction <= 0:
            raise _invalid(
                "markets.reserves.da_fraction must be positive when price_kind = 'da_fraction'",
                "e.g. da_fraction = 0.25",
            )
        gpus = [f for h in self._halls for f in h.fleets if f.kind == "gpu"]
        self._ai = self.ai.record(sum(f.count for f in gpus), sum(f.facility_power_mw for f in gpus))
        return self

    def record(self, ctx: _Context) -> Site:
        """The frozen site (files named by the TOML are read here)."""
        assert self._ai is not None  # set by _fits
        return Site(
            name=self.site.name,
            zone=self.site.zone,
            grid_connection_mw=self.site.grid_connection_mw,
            interval_minutes=self.site.interval_minutes,
            halls=self._halls,
            mining=self.mining.record(),
            contract=self.contract.record(),
            ai=self._ai,
            markets=self.markets.record(ctx),
            source=ctx.source,
            renewables=self.renewables.record(ctx) if self.renewables is not None else NO_RENEWABLES,
        )


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def _key_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad table name rather than its value
            out += " (the name itself)"
        elif isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _site_error(source: str, exc: ValidationError) -> SiteError:
    """The first of pydantic's errors as a SiteError naming its key path (and how many more)."""
    errors = exc.errors()
    first = errors[0]
    key = _key_path(first["loc"])
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    kind = first["type"]
    if kind == "site":  # ours: a message and a hint of its own
        ctx = first.get("ctx") or {}
        where = f"{key}: " if first["loc"] else ""
        message, hint = f"{where}{ctx['message']}", str(ctx["hint"])
    elif kind == "extra_forbidden":
        message, hint = f"unknown key {key}", "remove it or check its spelling against the site schema"
    elif kind == "missing":
        message, hint = f"missing key {key}", "add it (see examples/sites/west-texas-hybrid.toml)"
    else:
        message, hint = f"{key}: {first['msg']}", "fix the value (see the schema in drakewell.site)"
    return SiteError(f"{source}: {message}{more}", hint=hint)


def load_site(path: str | Path, *, catalog: Catalog | None = None) -> Site:
    """Load and validate a site TOML file."""
    file = Path(path)
    data = read_toml(
        file,
        SiteError,
        missing=f"site file {file}",
        hint="pass the path of a site TOML, e.g. examples/sites/",
    )
    return parse_site(data, base_dir=file.parent, source=str(file), catalog=catalog)


def read_toml(file: Path, error: type[DrakewellError], *, missing: str, hint: str) -> dict[str, object]:
    """The mapping a TOML file holds; else ``error``: ``"<missing> not found"`` with ``hint``, or the
    line where the TOML syntax breaks."""
    if not file.is_file():
        raise error(f"{missing} not found", hint=hint)
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise error(
            f"{file}: not valid TOML: {exc}", hint="fix the TOML syntax at the reported line"
        ) from None


def parse_site(
    data: Mapping[str, object],
    *,
    base_dir: str | Path = ".",
    source: str = "site",
    catalog: Catalog | None = None,
) -> Site:
    """Validate a site mapping (parsed TOML) and build its frozen record.

    The catalogue is ``catalog``, else the file the mapping's ``catalog`` key names (relative to
    ``base_dir``), else the built-in one; it is the validation context of every fleet's model.
    """
    base = Path(base_dir)
    named = data.get("catalog")
    if catalog is None and isinstance(named, str):
        catalog = _load(source, "catalog", lambda: load_catalog(base / named))
    ctx = _Context(source, base, catalog or load_catalog())
    try:
        raw = _SiteIn.model_validate(dict(data), context={"site": ctx})
    except ValidationError as exc:
        raise _site_error(source, exc) from None
    return raw.record(ctx)
