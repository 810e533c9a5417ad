"""A hybrid AI/bitcoin site as data: a TOML file → validated, frozen records.

The TOML is validated with pydantic at the edge (unknown keys, wrong types, negative capacities,
unknown hardware, a fleet over its hall's capacity) and converted to frozen dataclasses. Every
error is a :class:`~drakewell.errors.SiteError` naming the key path, e.g.
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
                see :mod:`drakewell.renewables`

Power convention: a fleet's *IT* power is units × catalogue power per unit (a GPU counts its share of
the server); its *facility* power is IT power × the hall's PUE — what the grid meter sees, and what
``capacity_mw``, ``grid_connection_mw``, ``block_mw`` and ramp limits are expressed in.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from drakewell.catalog import AsicModel, Catalog, CatalogError, GpuModel, load_catalog
from drakewell.errors import DrakewellError, SiteError
from drakewell.inputs.grid import EmergencyEvent, load_4cp_intervals, load_emergency_events
from drakewell.renewables import NO_RENEWABLES, PvModel, RenewablePlant, Renewables, load_profile

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


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 time") from None
    else:
        raise ValueError(f"{value!r} is not a time")
    if ts.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset; write e.g. 2023-07-03T05:00:00Z")
    return ts.astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# Pydantic schema (the edge)
# ---------------------------------------------------------------------------------------------

NonNeg = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Pos = Annotated[float, Field(gt=0, allow_inf_nan=False)]


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


class _HallIn(_Model):
    pue: Annotated[float, Field(ge=1.0, le=3.0)]
    capacity_mw: Pos
    cooling: str = "air"
    fleets: list[_FleetIn] = Field(min_length=1)


class _MiningIn(_Model):
    ramp_mw_per_interval: Pos | None = None
    min_off_minutes: Annotated[int, Field(ge=0)] = 0


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


class _SpotIn(_Model):
    price_usd_per_gpu_hour: NonNeg
    max_gpus: Annotated[int, Field(ge=0)]


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
    def _time(cls, value: Any) -> Any:
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


class _AiIn(_Model):
    contract_price_usd_per_gpu_hour: NonNeg
    shed_penalty_usd_per_gpu_hour: NonNeg
    inference: _InferenceIn
    spot: _SpotIn = _SpotIn(price_usd_per_gpu_hour=0.0, max_gpus=0)
    training: list[_TrainingIn] = Field(default_factory=list)


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


class _ReservesIn(_Model):
    enabled: bool = False
    product: str = "Non-Spin"
    max_mw: NonNeg = 0.0
    price_kind: Literal["constant", "da_fraction"] = "constant"
    price_usd_per_mw_h: NonNeg = 0.0
    da_fraction: NonNeg = 0.0
    undelivered_penalty_multiplier: Annotated[float, Field(ge=1.0, allow_inf_nan=False)] = 1.0


class _EmergencyIn(_Model):
    enabled: bool = False
    events_file: str | None = None

    @model_validator(mode="after")
    def _file(self) -> _EmergencyIn:
        if self.enabled and self.events_file is None:
            raise ValueError("emergency events are enabled: set events_file")
        return self


class _MarketsIn(_Model):
    four_cp: _FourCPIn = _FourCPIn()
    reserves: _ReservesIn = _ReservesIn()
    emergency: _EmergencyIn = _EmergencyIn()


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


class _RenewablesIn(_Model):
    surplus: Literal["export", "curtail"] = "curtail"
    plants: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")], _PlantIn] = Field(
        min_length=1
    )


class _SiteIn(_Model):
    site: _SiteSection
    catalog: str | None = None
    halls: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")], _HallIn] = Field(min_length=1)
    mining: _MiningIn = _MiningIn()
    contract: _ContractIn
    ai: _AiIn
    markets: _MarketsIn = _MarketsIn()
    renewables: _RenewablesIn | None = None
    live: dict[str, Any] | None = None  # the live controller's settings, validated by drakewell.live


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


def load_site(path: str | Path, *, catalog: Catalog | None = None) -> Site:
    """Load and validate a site TOML file."""
    file = Path(path)
    if not file.is_file():
        raise SiteError(
            f"site file {file} not found", hint="pass the path of a site TOML, e.g. examples/sites/"
        )
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SiteError(
            f"{file}: not valid TOML: {exc}", hint="fix the TOML syntax at the reported line"
        ) from None
    return parse_site(data, base_dir=file.parent, source=str(file), catalog=catalog)


def parse_site(
    data: Mapping[str, Any],
    *,
    base_dir: str | Path = ".",
    source: str = "site",
    catalog: Catalog | None = None,
) -> Site:
    """Validate a site mapping (parsed TOML) and build its frozen record."""
    try:
        raw = _SiteIn.model_validate(dict(data))
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        key = _key_path(first["loc"])
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        kind = first["type"]
        if kind == "extra_forbidden":
            message, hint = f"unknown key {key}", "remove it or check its spelling against the site schema"
        elif kind == "missing":
            message, hint = f"missing key {key}", "add it (see examples/sites/west-texas-hybrid.toml)"
        else:
            message, hint = f"{key}: {first['msg']}", "fix the value (see the schema in drakewell.site)"
        raise SiteError(f"{source}: {message}{more}", hint=hint) from None
    base = Path(base_dir)
    if raw.catalog is not None and catalog is None:
        catalog = _wrap(source, "catalog", lambda: load_catalog(base / str(raw.catalog)))
    cat = catalog or load_catalog()

    halls: list[Hall] = []
    for hall_name, hall in raw.halls.items():
        fleets: list[Fleet] = []
        total = 0.0
        for i, fleet in enumerate(hall.fleets):
            key = f"halls.{hall_name}.fleets[{i}]"
            model = _wrap(source, f"{key}.model", lambda name=fleet.model: cat.model(name))
            if isinstance(model, AsicModel):
                unit_w, unit_th = model.power_w, model.hashrate_th_s
            else:
                assert isinstance(model, GpuModel)
                unit_w, unit_th = model.power_w_per_gpu, 0.0
            built = Fleet(
                model=model.model,
                kind=model.kind,
                count=fleet.count,
                hall=hall_name,
                pue=hall.pue,
                unit_power_w=unit_w,
                unit_hashrate_th_s=unit_th,
            )
            total += built.facility_power_mw
            if total > hall.capacity_mw * (1 + 1e-9):
                raise SiteError(
                    f"{source}: {key}.count = {fleet.count} takes hall {hall_name!r} to {total:.2f} MW "
                    f"at the meter (IT × PUE {hall.pue}), over its capacity_mw = {hall.capacity_mw}",
                    hint=f"lower {key}.count or raise halls.{hall_name}.capacity_mw",
                )
            fleets.append(built)
        halls.append(
            Hall(
                name=hall_name,
                pue=hall.pue,
                capacity_mw=hall.capacity_mw,
                cooling=hall.cooling,
                fleets=tuple(fleets),
            )
        )

    grid_mw = raw.site.grid_connection_mw
    if raw.contract.kind == "fixed_block" and (raw.contract.block_mw or 0.0) > grid_mw:
        raise SiteError(
            f"{source}: contract.block_mw = {raw.contract.block_mw} exceeds "
            f"site.grid_connection_mw = {grid_mw}",
            hint="a block cannot be larger than the connection that delivers it",
        )
    if raw.markets.reserves.enabled:
        r = raw.markets.reserves
        if r.max_mw > grid_mw:
            raise SiteError(
                f"{source}: markets.reserves.max_mw = {r.max_mw} exceeds the grid connection ({grid_mw} MW)",
                hint="offer at most the load you can curtail",
            )
        if r.price_kind == "da_fraction" and r.da_fraction <= 0:
            raise SiteError(
                f"{source}: markets.reserves.da_fraction must be positive when price_kind = 'da_fraction'",
                hint="e.g. da_fraction = 0.25",
            )

    has_gpus = any(f.kind == "gpu" for h in halls for f in h.fleets)
    gpu_count = sum(f.count for h in halls for f in h.fleets if f.kind == "gpu")
    gpu_mw = sum(f.facility_power_mw for h in halls for f in h.fleets if f.kind == "gpu")
    training: list[TrainingJobSpec] = []
    for i, job in enumerate(raw.ai.training):
        key = f"ai.training[{i}]"
        if not has_gpus or gpu_count == 0:
            raise SiteError(f"{source}: {key} needs GPUs but the site has none", hint="add a GPU fleet")
        if job.gpus_max > gpu_count:
            raise SiteError(
                f"{source}: {key}.gpus_max = {job.gpus_max} exceeds the site's {gpu_count} GPUs",
                hint=f"lower {key}.gpus_max",
            )
        gpu_hours = (
            job.gpu_hours
            if job.gpu_hours is not None
            else float(job.energy_mwh or 0.0) / (gpu_mw / gpu_count)
        )
        every = parse_duration(job.every) if job.every else None
        after = parse_duration(job.deadline_after) if job.deadline_after else None
        window = after or every
        if job.every is None:
            assert isinstance(job.release, datetime) and isinstance(job.deadline, datetime)
            window = job.deadline - job.release
        assert window is not None
        if gpu_hours > job.gpus_max * window.total_seconds() / 3600 * (1 + 1e-9):
            raise SiteError(
                f"{source}: {key} needs {gpu_hours:g} GPU-hours but gpus_max × window gives only "
                f"{job.gpus_max * window.total_seconds() / 3600:g}",
                hint="raise gpus_max, widen the window or lower the work: the job could never finish",
            )
        training.append(
            TrainingJobSpec(
                name=job.name,
                gpus_max=job.gpus_max,
                gpu_hours=float(gpu_hours),
                price_usd_per_gpu_hour=(
                    job.price_usd_per_gpu_hour
                    if job.price_usd_per_gpu_hour is not None
                    else raw.ai.contract_price_usd_per_gpu_hour
                ),
                miss_penalty_usd_per_gpu_hour=job.miss_penalty_usd_per_gpu_hour,
                release_utc=job.release if isinstance(job.release, datetime) else None,
                deadline_utc=job.deadline if isinstance(job.deadline, datetime) else None,
                every=every,
                first_release_utc=job.first_release if isinstance(job.first_release, datetime) else None,
                deadline_after=after,
            )
        )
    names = [t.name for t in training]
    if len(set(names)) != len(names):
        raise SiteError(f"{source}: ai.training has repeated job names", hint="give each job its own name")

    inf = raw.ai.inference
    if inf.base_gpus + inf.peak_gpus * max(inf.hourly_fraction) > gpu_count:
        raise SiteError(
            f"{source}: ai.inference peak ({inf.base_gpus} + {inf.peak_gpus} × "
            f"{max(inf.hourly_fraction)}) GPUs exceeds the site's {gpu_count} GPUs",
            hint="lower ai.inference.base_gpus or peak_gpus, or add GPUs",
        )
    if raw.ai.spot.max_gpus > gpu_count:
        raise SiteError(
            f"{source}: ai.spot.max_gpus = {raw.ai.spot.max_gpus} exceeds the site's {gpu_count} GPUs",
            hint="lower ai.spot.max_gpus",
        )

    fc = raw.markets.four_cp
    cp_file = os.path.normpath(base / fc.intervals_file) if fc.intervals_file else None
    cp_intervals: tuple[datetime, ...] = ()
    if fc.enabled and cp_file:
        cp_intervals = _wrap(source, "markets.four_cp.intervals_file", lambda: load_4cp_intervals(cp_file))
    em = raw.markets.emergency
    em_file = os.path.normpath(base / em.events_file) if em.events_file else None
    events: tuple[EmergencyEvent, ...] = ()
    if em.enabled and em_file:
        events = _wrap(source, "markets.emergency.events_file", lambda: load_emergency_events(em_file))
    renewables = NO_RENEWABLES
    if raw.renewables is not None:
        plants = []
        for plant_name, plant in raw.renewables.plants.items():
            profile_file = os.path.normpath(base / plant.profile_file) if plant.profile_file else None
            utc: tuple[int, ...] = ()
            cf: tuple[float, ...] = ()
            if profile_file is not None:
                key = f"renewables.plants.{plant_name}.profile_file"
                utc, cf = _wrap(source, key, lambda f=profile_file: load_profile(f))
            pv = None
            if plant.kind == "pv":
                assert plant.latitude is not None and plant.longitude is not None
                pv = PvModel(
                    latitude=plant.latitude,
                    longitude=plant.longitude,
                    altitude_m=plant.altitude_m,
                    tilt_deg=plant.tilt_deg,
                    azimuth_deg=plant.azimuth_deg,
                    dc_ac_ratio=plant.dc_ac_ratio,
                    gamma_per_c=plant.gamma_per_c,
                    ambient_temp_c=plant.ambient_temp_c,
                    clear_sky_fraction=plant.clear_sky_fraction,
                )
            plants.append(
                RenewablePlant(plant_name, plant.kind, plant.capacity_mw, pv, profile_file, utc, cf)
            )
        renewables = Renewables(surplus=raw.renewables.surplus, plants=tuple(plants))
    res = raw.markets.reserves
    con = raw.contract
    mining = raw.mining
    return Site(
        name=raw.site.name,
        zone=raw.site.zone,
        grid_connection_mw=grid_mw,
        interval_minutes=raw.site.interval_minutes,
        halls=tuple(halls),
        mining=MiningLimits(
            ramp_mw_per_interval=mining.ramp_mw_per_interval if mining.ramp_mw_per_interval else float("inf"),
            min_off_minutes=mining.min_off_minutes,
        ),
        contract=PowerContract(
            kind=con.kind,
            block_mw=con.block_mw or 0.0,
            block_price_usd_per_mwh=con.block_price_usd_per_mwh or 0.0,
            adder_usd_per_mwh=con.adder_usd_per_mwh,
        ),
        ai=AiDemand(
            contract_price_usd_per_gpu_hour=raw.ai.contract_price_usd_per_gpu_hour,
            shed_penalty_usd_per_gpu_hour=raw.ai.shed_penalty_usd_per_gpu_hour,
            inference=InferenceProfile(
                base_gpus=inf.base_gpus,
                peak_gpus=inf.peak_gpus,
                hourly_fraction=tuple(inf.hourly_fraction),
                timezone=inf.timezone,
            ),
            spot=SpotMarket(
                price_usd_per_gpu_hour=raw.ai.spot.price_usd_per_gpu_hour, max_gpus=raw.ai.spot.max_gpus
            ),
            training=tuple(training),
        ),
        markets=Markets(
            four_cp=FourCP(
                enabled=fc.enabled,
                rate_usd_per_mw_year=fc.rate_usd_per_mw_year,
                intervals_utc=cp_intervals,
                intervals_file=cp_file,
                forecast_zone=fc.forecast_zone,
                forecast_ratio=fc.forecast_ratio,
                forecast_threshold_usd_per_mwh=fc.forecast_threshold_usd_per_mwh,
            ),
            reserves=Reserves(
                enabled=res.enabled,
                product=res.product,
                max_mw=res.max_mw,
                price_kind=res.price_kind,
                price_usd_per_mw_h=res.price_usd_per_mw_h,
                da_fraction=res.da_fraction,
                undelivered_penalty_multiplier=res.undelivered_penalty_multiplier,
            ),
            emergency=EmergencyProgramme(enabled=em.enabled, events=events, events_file=em_file),
        ),
        source=source,
        renewables=renewables,
    )


def _wrap(source: str, key: str, load: Any) -> Any:
    """Run a loader; re-raise its error as a SiteError that names the key that pointed to it."""
    try:
        return load()
    except CatalogError as exc:
        raise SiteError(f"{source}: {key}: {exc.message}", hint=exc.hint) from None
    except DrakewellError as exc:
        raise SiteError(f"{source}: {key}: {exc.message}", hint=exc.hint) from None
