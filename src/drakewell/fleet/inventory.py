"""A fleet inventory as data: a TOML file → validated, frozen records.

Schema (see ``examples/fleet/emulated.toml``)::

    [fleet]     name, site (optional: a site TOML whose [mining] ramp limit and minimum off time
                apply), min_power_limit_fraction (0.3: lowest power limit as a share of rated power)
    [limits]    optional, overrides the site: ramp_mw_per_interval (IT MW the miners may move per
                interval), interval_minutes (15), min_off_minutes (0)
    [[miners]]  ip, model (hardware catalogue), hall, firmware (optional, informative)
    [[miner_ranges]]  first_ip, count, model, hall, firmware — ``count`` consecutive addresses
    [[gpus]]    id, index (NVML device index), model (catalogue GPU), role = inference | training
                | spot, job (training job name, optional), idle_w (draw while its job is paused)
    [[jobs]]    name, hook = "webhook" (url, token_env: name of an environment variable holding a
                bearer token) | "slurm" (slurm_job_id, scontrol = path of the command)

Power convention: the fleet measures and commands *IT* power (what each device draws at its plug).
A site's ramp limit is facility MW per interval; it becomes IT MW by dividing by the largest PUE of
the site's ASIC halls (the strictest reading). Errors are :class:`InventoryError` naming the key
path and the fix.
"""

from __future__ import annotations

import ipaddress
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from drakewell.catalog import AsicModel, CatalogError, GpuModel, load_catalog
from drakewell.core.errors import SiteError
from drakewell.core.jsontypes import JsonMapping
from drakewell.fleet.errors import InventoryError
from drakewell.site import load_site

__all__ = [
    "FleetLimits",
    "GpuEntry",
    "Inventory",
    "JobEntry",
    "MinerEntry",
    "load_inventory",
    "parse_inventory",
]


@dataclass(frozen=True)
class FleetLimits:
    ramp_w_per_interval: float  # IT W the miners may move per interval (inf: no limit)
    interval_s: float
    min_off_s: float  # a miner put to sleep stays asleep at least this long

    @property
    def ramp_w_per_s(self) -> float:
        return self.ramp_w_per_interval / self.interval_s


@dataclass(frozen=True)
class MinerEntry:
    ip: str
    model: AsicModel
    hall: str
    firmware: str
    min_power_limit_w: float


@dataclass(frozen=True)
class GpuEntry:
    id: str
    index: int
    model: GpuModel
    role: Literal["inference", "training", "spot"]
    job: str | None
    idle_w: float


@dataclass(frozen=True)
class JobEntry:
    name: str
    hook: Literal["webhook", "slurm"]
    url: str | None
    token_env: str | None
    slurm_job_id: str | None
    scontrol: str


@dataclass(frozen=True)
class Inventory:
    name: str
    miners: tuple[MinerEntry, ...]
    gpus: tuple[GpuEntry, ...]
    jobs: tuple[JobEntry, ...]
    limits: FleetLimits
    source: str

    @property
    def rated_mining_w(self) -> float:
        return sum(m.model.power_w for m in self.miners)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Pos = Annotated[float, Field(gt=0)]


class _FleetIn(_Model):
    name: str = "fleet"
    site: str | None = None
    min_power_limit_fraction: Annotated[float, Field(gt=0, le=1)] = 0.3


class _LimitsIn(_Model):
    ramp_mw_per_interval: Pos | None = None
    interval_minutes: Pos | None = None
    min_off_minutes: Annotated[float, Field(ge=0)] | None = None


def _check_ip(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address (write it like 10.0.1.17)") from None


_Ip = Annotated[str, AfterValidator(_check_ip)]


class _MinerIn(_Model):
    ip: _Ip
    model: str
    hall: str = "default"
    firmware: str = ""


class _MinerRangeIn(_Model):
    first_ip: _Ip
    count: Annotated[int, Field(ge=1, le=65536)]
    model: str
    hall: str = "default"
    firmware: str = ""


class _GpuIn(_Model):
    id: str
    index: Annotated[int, Field(ge=0)]
    model: str
    role: Literal["inference", "training", "spot"]
    job: str | None = None
    idle_w: Annotated[float, Field(ge=0)] = 75.0


class _JobIn(_Model):
    name: str
    hook: Literal["webhook", "slurm"]
    url: str | None = None
    token_env: str | None = None
    slurm_job_id: str | None = None
    scontrol: str = "scontrol"

    @model_validator(mode="after")
    def _fields_of_hook(self) -> _JobIn:
        if self.hook == "webhook" and not self.url:
            raise ValueError("a webhook job needs url = 'http://…'")
        if self.hook == "webhook" and self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url {self.url!r} must start with http:// or https://")
        if self.hook == "slurm" and not self.slurm_job_id:
            raise ValueError("a slurm job needs slurm_job_id = '<job id>'")
        return self


class _InventoryIn(_Model):
    fleet: _FleetIn = _FleetIn()
    limits: _LimitsIn = _LimitsIn()
    miners: list[_MinerIn] = []
    miner_ranges: list[_MinerRangeIn] = []
    gpus: list[_GpuIn] = []
    jobs: list[_JobIn] = []


def _key_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "(top level)"


def load_inventory(path: str | Path) -> Inventory:
    """Load and validate a fleet inventory TOML file."""
    file = Path(path)
    if not file.is_file():
        raise InventoryError(
            f"inventory file {file} not found", hint="pass the path of a fleet TOML, e.g. examples/fleet/"
        )
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{file}: not valid TOML: {exc}", hint="fix the TOML syntax there") from None
    return parse_inventory(data, base_dir=file.parent, source=str(file))


def parse_inventory(data: JsonMapping, *, base_dir: str | Path = ".", source: str = "inventory") -> Inventory:
    """Validate a parsed inventory mapping and build its frozen record."""
    try:
        raw = _InventoryIn.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InventoryError(
            f"{source}: {_key_path(err['loc'])}: {err['msg']}",
            hint="see the schema in drakewell.fleet.inventory or examples/fleet/emulated.toml",
        ) from None
    catalog = load_catalog()
    fraction = raw.fleet.min_power_limit_fraction

    def asic(name: str, where: str) -> AsicModel:
        try:
            return catalog.asic(name)
        except CatalogError as exc:
            raise InventoryError(f"{source}: {where}.model: {exc.message}", hint=exc.hint) from None

    miners: list[MinerEntry] = []
    for i, m in enumerate(raw.miners):
        model = asic(m.model, f"miners[{i}]")
        miners.append(MinerEntry(m.ip, model, m.hall, m.firmware, model.power_w * fraction))
    for i, r in enumerate(raw.miner_ranges):
        model = asic(r.model, f"miner_ranges[{i}]")
        first = ipaddress.IPv4Address(r.first_ip)
        if int(first) + r.count - 1 > 0xFFFFFFFF:
            raise InventoryError(
                f"{source}: miner_ranges[{i}]: {r.count} addresses from {first} run past 255.255.255.255",
                hint="lower count or first_ip",
            )
        miners.extend(
            MinerEntry(str(first + k), model, r.hall, r.firmware, model.power_w * fraction)
            for k in range(r.count)
        )
    seen: dict[str, int] = {}
    for k, entry in enumerate(miners):
        if entry.ip in seen:
            raise InventoryError(
                f"{source}: miner {entry.ip} is listed twice (entries {seen[entry.ip]} and {k})",
                hint="each miner is one IP address; remove the duplicate",
            )
        seen[entry.ip] = k

    gpus: list[GpuEntry] = []
    for i, g in enumerate(raw.gpus):
        try:
            model_g = catalog.gpu(g.model)
        except CatalogError as exc:
            raise InventoryError(f"{source}: gpus[{i}].model: {exc.message}", hint=exc.hint) from None
        gpus.append(GpuEntry(g.id, g.index, model_g, g.role, g.job, g.idle_w))
    _unique(source, "gpus", [g.id for g in gpus], "id")
    _unique(source, "gpus", [str(g.index) for g in gpus], "index")

    jobs = [JobEntry(j.name, j.hook, j.url, j.token_env, j.slurm_job_id, j.scontrol) for j in raw.jobs]
    _unique(source, "jobs", [j.name for j in jobs], "name")
    names = {j.name for j in jobs}
    for i, gpu in enumerate(gpus):
        if gpu.job is not None and gpu.job not in names:
            raise InventoryError(
                f"{source}: gpus[{i}].job: job {gpu.job!r} is not in [[jobs]]",
                hint=f"add a [[jobs]] entry named {gpu.job!r} or fix the name",
            )

    limits = _limits(raw, Path(base_dir), source)
    return Inventory(raw.fleet.name, tuple(miners), tuple(gpus), tuple(jobs), limits, source)


def _unique(source: str, table: str, values: list[str], key: str) -> None:
    seen: set[str] = set()
    for i, v in enumerate(values):
        if v in seen:
            raise InventoryError(
                f"{source}: {table}[{i}].{key}: {v!r} is used twice", hint=f"give each a unique {key}"
            )
        seen.add(v)


def _limits(raw: _InventoryIn, base_dir: Path, source: str) -> FleetLimits:
    ramp_w = math.inf
    interval_s = 15 * 60.0
    min_off_s = 0.0
    if raw.fleet.site is not None:
        site_path = Path(raw.fleet.site)
        if not site_path.is_absolute():
            site_path = base_dir / site_path
        try:
            site = load_site(site_path)
        except SiteError as exc:
            raise InventoryError(f"{source}: fleet.site: {exc.message}", hint=exc.hint) from None
        pue = max((f.pue for f in site.asic_fleets), default=1.0)
        ramp_w = site.mining.ramp_mw_per_interval * 1e6 / pue
        interval_s = site.interval_minutes * 60.0
        min_off_s = site.mining.min_off_minutes * 60.0
    lim = raw.limits
    if lim.ramp_mw_per_interval is not None:
        ramp_w = lim.ramp_mw_per_interval * 1e6
    if lim.interval_minutes is not None:
        interval_s = lim.interval_minutes * 60.0
    if lim.min_off_minutes is not None:
        min_off_s = lim.min_off_minutes * 60.0
    return FleetLimits(ramp_w, interval_s, min_off_s)
