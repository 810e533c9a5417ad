"""Hardware as data: ``hardware.csv`` → frozen model records.

The catalogue is a long table, one attribute per row, PyPSA-style::

    model,kind,attribute,value,unit,source
    S21 XP,asic,hashrate,270,TH/s,Bitmain Antminer S21 XP specification sheet

Every row carries its unit and a source, so a reader can check each number. The loader checks that
each attribute has the unit it expects (a W where a W belongs), that numbers parse, that no model
states an attribute twice, and that an ASIC given both ``power`` and ``efficiency`` is consistent
(within 1 %). An ASIC needs ``hashrate`` and one of ``power`` (W) or ``efficiency`` (J/TH); the other
is derived. A GPU needs ``gpu_power`` (W, the board's TDP) and ``server_overhead`` (W per GPU: the
host's CPUs, memory, NICs and fans shared over its GPUs); ``power_w_per_gpu`` is their sum, the IT
power one busy GPU draws in its server. Cooling is not here: it is a property of the hall (its PUE).

Errors are :class:`CatalogError` (a :class:`~drakewell.core.errors.SiteError`) naming file and line.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from drakewell.core.errors import SiteError

DEFAULT_CATALOG_PATH = Path(__file__).with_name("hardware.csv")
HEADER = ("model", "kind", "attribute", "value", "unit", "source")
_CONSISTENCY_TOLERANCE = 0.01

# attribute -> expected unit ("" for text attributes), per kind
_ATTRIBUTES: dict[str, dict[str, str]] = {
    "asic": {"hashrate": "TH/s", "power": "W", "efficiency": "J/TH", "cooling": ""},
    "gpu": {"gpu_power": "W", "server_overhead": "W/GPU", "memory": "GB"},
}


class CatalogError(SiteError):
    """The hardware catalogue is malformed, or a model is not in it."""


@dataclass(frozen=True)
class AsicModel:
    """A bitcoin miner model at its rated (stock) operating point."""

    model: str
    hashrate_th_s: float
    power_w: float
    cooling: str
    source: str

    kind: Literal["asic"] = "asic"

    @property
    def efficiency_j_per_th(self) -> float:
        """Joules per terahash (= W per TH/s) at the wall of the miner, before cooling (PUE)."""
        return self.power_w / self.hashrate_th_s


@dataclass(frozen=True)
class GpuModel:
    """An AI accelerator model with its share of the host server's power."""

    model: str
    gpu_power_w: float
    server_overhead_w_per_gpu: float
    memory_gb: float
    source: str

    kind: Literal["gpu"] = "gpu"

    @property
    def power_w_per_gpu(self) -> float:
        """IT power of one busy GPU in its server (GPU TDP + server overhead), before PUE."""
        return self.gpu_power_w + self.server_overhead_w_per_gpu


HardwareModel = AsicModel | GpuModel


@dataclass(frozen=True)
class Catalog:
    """All models of one catalogue file, looked up by exact model name."""

    models: tuple[HardwareModel, ...]
    path: str

    def model(self, name: str) -> HardwareModel:
        for item in self.models:
            if item.model == name:
                return item
        names = [m.model for m in self.models]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise CatalogError(
            f"hardware model {name!r} is not in the catalogue {self.path}",
            hint=(hint + " " if hint else "") + f"known models: {', '.join(names)}",
        )

    def asic(self, name: str) -> AsicModel:
        item = self.model(name)
        if not isinstance(item, AsicModel):
            raise CatalogError(f"{name!r} is a {item.kind}, not an ASIC", hint="use an ASIC model here")
        return item

    def gpu(self, name: str) -> GpuModel:
        item = self.model(name)
        if not isinstance(item, GpuModel):
            raise CatalogError(f"{name!r} is an {item.kind}, not a GPU", hint="use a GPU model here")
        return item

    @property
    def asics(self) -> tuple[AsicModel, ...]:
        return tuple(m for m in self.models if isinstance(m, AsicModel))

    @property
    def gpus(self) -> tuple[GpuModel, ...]:
        return tuple(m for m in self.models if isinstance(m, GpuModel))


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load a hardware catalogue CSV (default: the one shipped with Drakewell)."""
    if path is None:
        return _load_default()
    return _load(Path(path))


@lru_cache(maxsize=1)
def _load_default() -> Catalog:
    return _load(DEFAULT_CATALOG_PATH)


@dataclass
class _Entry:
    kind: str
    first_line: int
    values: dict[str, tuple[str, int, str]]  # attribute -> (raw value, line, source)


def _load(path: Path) -> Catalog:
    if not path.is_file():
        raise CatalogError(f"hardware catalogue {path} not found", hint="pass an existing CSV file")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or tuple(c.strip() for c in rows[0]) != HEADER:
        got = ",".join(rows[0]) if rows else "(empty file)"
        raise CatalogError(f"{path}:1: header is {got!r}", hint=f"the first line must be {','.join(HEADER)}")
    entries: dict[str, _Entry] = {}
    for line_no, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(HEADER):
            raise CatalogError(
                f"{path}:{line_no}: expected {len(HEADER)} cells, found {len(row)}",
                hint="quote cells that contain commas",
            )
        model, kind, attribute, value, unit, source = (c.strip() for c in row)
        where = f"{path}:{line_no}"
        if kind not in _ATTRIBUTES:
            raise CatalogError(f"{where}: unknown kind {kind!r}", hint="kind is 'asic' or 'gpu'")
        expected = _ATTRIBUTES[kind]
        if attribute not in expected:
            raise CatalogError(
                f"{where}: unknown {kind} attribute {attribute!r}",
                hint=f"{kind} attributes are {', '.join(expected)}",
            )
        if unit != expected[attribute]:
            raise CatalogError(
                f"{where}: {model} {attribute} is in {unit!r}, expected {expected[attribute]!r}",
                hint=f"convert the value to {expected[attribute] or 'plain text'}",
            )
        if not model or not source:
            raise CatalogError(
                f"{where}: model and source must not be empty", hint="cite where the value comes from"
            )
        entry = entries.setdefault(model, _Entry(kind=kind, first_line=line_no, values={}))
        if entry.kind != kind:
            raise CatalogError(
                f"{where}: {model} is {kind!r} here but {entry.kind!r} on line {entry.first_line}",
                hint="one model has one kind",
            )
        if attribute in entry.values:
            raise CatalogError(
                f"{where}: {model} states {attribute} twice (first on line {entry.values[attribute][1]})",
                hint="keep one row per model and attribute",
            )
        if expected[attribute]:
            _number(value, where, f"{model} {attribute}")
        entry.values[attribute] = (value, line_no, source)
    models = tuple(_build(path, name, entry) for name, entry in entries.items())
    if not models:
        raise CatalogError(f"{path}: no models", hint="add at least one model row")
    return Catalog(models=models, path=str(path))


def _number(raw: str, where: str, what: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise CatalogError(
            f"{where}: {what} = {raw!r} is not a number", hint="write a plain number"
        ) from None
    if not value > 0 or value == float("inf"):
        raise CatalogError(f"{where}: {what} = {raw!r} must be positive and finite", hint="fix the value")
    return value


def _sources(values: Iterable[tuple[str, int, str]]) -> str:
    seen: list[str] = []
    for _, _, source in values:
        if source not in seen:
            seen.append(source)
    return "; ".join(seen)


def _build(path: Path, name: str, entry: _Entry) -> HardwareModel:
    values = entry.values
    where = f"{path}:{entry.first_line}"

    def num(attribute: str) -> float:
        raw, line, _ = values[attribute]
        return _number(raw, f"{path}:{line}", f"{name} {attribute}")

    def require(*attributes: str) -> None:
        missing = [a for a in attributes if a not in values]
        if missing:
            raise CatalogError(f"{where}: {name} lacks {', '.join(missing)}", hint="add the missing rows")

    if entry.kind == "asic":
        require("hashrate")
        hashrate = num("hashrate")
        if "power" in values:
            power = num("power")
            if "efficiency" in values:
                implied = hashrate * num("efficiency")
                if abs(implied - power) > _CONSISTENCY_TOLERANCE * power:
                    raise CatalogError(
                        f"{where}: {name} power {power:g} W disagrees with hashrate × efficiency "
                        f"= {implied:g} W",
                        hint="state power or efficiency, or make them agree within 1 %",
                    )
        elif "efficiency" in values:
            power = hashrate * num("efficiency")
        else:
            raise CatalogError(f"{where}: {name} lacks power or efficiency", hint="add one of them")
        cooling = values["cooling"][0] if "cooling" in values else "air"
        return AsicModel(
            model=name,
            hashrate_th_s=hashrate,
            power_w=power,
            cooling=cooling,
            source=_sources(values.values()),
        )
    require("gpu_power", "server_overhead")
    memory = num("memory") if "memory" in values else 0.0
    return GpuModel(
        model=name,
        gpu_power_w=num("gpu_power"),
        server_overhead_w_per_gpu=num("server_overhead"),
        memory_gb=memory,
        source=_sources(values.values()),
    )
