"""A sweep SPEC: a TOML file → a validated, frozen :class:`SweepSpec` and its cells.

Schema::

    [sweep]
    name = "hashprice-zones"                       # optional (default: the file's stem)
    site = "../sites/west-texas-hybrid.toml"       # base site, relative to the SPEC
    prices = "data:ercot/ercot_rtm_spp_2023-07_09.csv"     # real-time prices (or a prices axis)
    forecast = "data:ercot/ercot_dam_spp_2023-07_09.csv"   # optional day-ahead prices
    zone = "LZ_WEST"                               # optional (default: the site's zone)
    hashprice_usd_per_ph_day = 45                  # optional (default: derived from BTC prices)
    policy = "mpc"                                 # default when there is no policy axis

    [axes]                                         # varied together: the cartesian product
    zone = ["LZ_WEST", "LZ_NORTH"]
    hashprice_usd_per_ph_day = [30, 45]            # numbers, or daily hashprice CSV paths
    policy = ["perfect", "mpc"]
    prices = ["a.csv", { rt = "b.csv", forecast = "b-da.csv", label = "Q4" }]
    "contract.block_price_usd_per_mwh" = [35.0, 40.0]   # any site key by its dotted path
    "halls.asic-hall.fleets[0].count" = [10000, 15680]

    [report]
    heatmap = ["zone", "hashprice_usd_per_ph_day"] # the two axes of the heatmaps (optional)
    mpc_flex_capture_bar = 0.9                     # mpc cells below this are listed

Paths are relative to the SPEC's folder; ``data:REL`` is ``REL`` inside the shared data folder
(:func:`drakewell.core.config.data_dir`, set by ``DRAKEWELL_DATA_DIR``).

Cells: with axes ``A_1 … A_k`` of ``n_1 … n_k`` values the sweep has ``∏ n_i`` cells, in the order of
:func:`itertools.product` over the axes as written (the last axis varies fastest). A site axis sets
one key of the base site's TOML mapping; every value of every axis is checked at load time against
the site schema (with the other axes at their base values), so a typo or a wrong type fails before
any work starts, naming the SPEC key. A combination of valid values can still make an invalid site
(e.g. a fleet count × PUE over its hall's capacity): that cell is recorded as failed with the site
error, and the other cells run.

A cell's identity (the ``cell`` column, used to resume) is a SHA-256 over its resolved definition:
the site mapping after the overrides, the price files' contents, zone, hashprice and policy. A
cell whose inputs changed is therefore run again, and one whose inputs did not is skipped.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drakewell.core.config import DATA_DIR_ENV, data_dir
from drakewell.core.errors import DrakewellError, SweepError
from drakewell.dispatch.policies import get_policy
from drakewell.site import parse_site, read_toml

__all__ = [
    "RESERVED_AXES",
    "Cell",
    "PriceSource",
    "SiteAxis",
    "SweepSpec",
    "expand_cells",
    "load_spec",
    "parse_key_path",
    "parse_spec",
    "set_key_path",
]

Scalar: TypeAlias = str | int | float | bool
KeyPart: TypeAlias = str | int
RESERVED_AXES = ("zone", "hashprice_usd_per_ph_day", "policy", "prices")
DATA_PREFIX = "data:"


# ---------------------------------------------------------------------------------------------
# Frozen records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceSource:
    """Real-time prices (and optionally day-ahead prices as the forecast) for a cell."""

    label: str  # the value shown in the results' ``prices`` column
    rt_path: str
    forecast_path: str | None


AxisValue: TypeAlias = Scalar | PriceSource
"""One value of an axis: a price source on the prices axis, a scalar on every other."""


@dataclass(frozen=True)
class SiteAxis:
    """An axis over one site key (``path`` as written, ``parts`` parsed)."""

    path: str
    parts: tuple[KeyPart, ...]


@dataclass(frozen=True)
class Cell:
    """One scenario: the axis values (labels, in axis order) and what the backtest needs."""

    values: tuple[tuple[str, Scalar], ...]
    site_overrides: tuple[tuple[tuple[KeyPart, ...], Scalar], ...]
    prices: PriceSource
    zone: str | None
    hashprice: float | str | None  # USD/PH/day, a CSV path, or None (derived from BTC prices)
    policy: str

    @property
    def label(self) -> str:
        """``axis=value`` pairs joined by commas (a chart label)."""
        return ", ".join(f"{k}={v}" for k, v in self.values) or "base"


@dataclass(frozen=True)
class SweepSpec:
    """A validated SPEC (paths resolved); :func:`expand_cells` gives its cells."""

    name: str
    source: str
    site_path: str
    site_data: Mapping[str, object]  # the base site's TOML mapping
    prices: PriceSource | None  # fixed prices (None when prices is an axis)
    zone: str | None
    hashprice: float | str | None
    policy: str
    axes: tuple[tuple[str, tuple[AxisValue, ...]], ...]  # name -> values (prices as PriceSource)
    heatmap: tuple[str, str] | None
    mpc_flex_capture_bar: float

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.axes)

    @property
    def n_cells(self) -> int:
        return math.prod(len(values) for _, values in self.axes)

    def price_sources(self) -> tuple[PriceSource, ...]:
        """Every distinct price source the cells use (each is loaded once)."""
        for name, values in self.axes:
            if name == "prices":
                return tuple(v for v in values if isinstance(v, PriceSource))
        assert self.prices is not None
        return (self.prices,)


# ---------------------------------------------------------------------------------------------
# Pydantic schema (the edge)
# ---------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _PricesIn(_Model):
    rt: str = Field(min_length=1)
    forecast: str | None = None
    label: str | None = None


HashpriceIn = Annotated[float, Field(ge=0, allow_inf_nan=False)] | Annotated[str, Field(min_length=1)]


class _SweepIn(_Model):
    name: str | None = None
    site: str = Field(min_length=1)
    prices: Annotated[str, Field(min_length=1)] | _PricesIn | None = None
    forecast: str | None = None
    zone: str | None = None
    hashprice_usd_per_ph_day: HashpriceIn | None = None
    policy: str = "mpc"


class _ReportIn(_Model):
    heatmap: Annotated[list[str], Field(min_length=2, max_length=2)] | None = None
    mpc_flex_capture_bar: Annotated[float, Field(allow_inf_nan=False)] = 0.9


class _SpecIn(_Model):
    sweep: _SweepIn
    axes: dict[str, Annotated[list[object], Field(min_length=1)]] = Field(default_factory=dict)
    report: _ReportIn = _ReportIn()


def _key_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
                text = json.dumps(text)  # an axis named by a dotted site key is quoted, as in TOML
            out += ("." if out else "") + text
    return out or "(top level)"


def _validation_error(source: str, exc: ValidationError) -> SweepError:
    errors = exc.errors()
    first = errors[0]
    loc = [p for p in first["loc"] if p not in ("str", "float", "_PricesIn", "constrained-str")]
    # a union's branch names (``function-after[...]``, ``str``) are pydantic's, not the SPEC's
    loc = [p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function")))]
    key = _key_path(loc)
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    kind = first["type"]
    if kind == "extra_forbidden":
        return SweepError(
            f"{source}: unknown key {key}{more}",
            hint="remove it or check its spelling; axes go under [axes], see drakewell.sweep.spec",
        )
    if kind == "missing":
        return SweepError(f"{source}: missing key {key}{more}", hint="add it (see examples/sweeps/)")
    if kind == "too_short" and key.startswith("axes."):
        return SweepError(f"{source}: axis {key} is empty{more}", hint="give the axis at least one value")
    return SweepError(
        f"{source}: {key}: {first['msg']}{more}", hint="fix the value (see drakewell.sweep.spec)"
    )


# ---------------------------------------------------------------------------------------------
# Site key paths
# ---------------------------------------------------------------------------------------------

_PART = re.compile(r'\.?(?:"(?P<quoted>[^"]+)"|(?P<bare>[A-Za-z0-9_-]+))|\[(?P<index>\d+)\]')


def parse_key_path(path: str) -> tuple[KeyPart, ...]:
    """``halls.asic-hall.fleets[0].count`` → ``("halls", "asic-hall", "fleets", 0, "count")``.

    A key holding dots is quoted as in TOML: ``halls."hall.a".pue``. Raises ``ValueError``.
    """
    parts: list[KeyPart] = []
    pos = 0
    while pos < len(path):
        match = _PART.match(path, pos)
        if match is None or (pos == 0 and path.startswith(".")):
            raise ValueError(f"cannot read the key path {path!r} at character {pos + 1}")
        if match.group("index") is not None:
            parts.append(int(match.group("index")))
        else:
            parts.append(match.group("quoted") or match.group("bare"))
        pos = match.end()
    if len(parts) < 2 or not isinstance(parts[0], str):
        raise ValueError(f"{path!r} is not a dotted site key path like contract.block_price_usd_per_mwh")
    return tuple(parts)


def _describe(parts: Sequence[KeyPart]) -> str:
    return _key_path(list(parts))


def set_key_path(data: Mapping[str, object], parts: Sequence[KeyPart], value: object) -> dict[str, object]:
    """A deep copy of ``data`` with the key at ``parts`` set to ``value``.

    Every table or array on the way must exist in ``data`` (a ``KeyError`` names the first one
    missing and what is there); the last key may be new (the site schema then judges it).
    """
    out = copy.deepcopy(dict(data))
    node: object = out
    for depth, part in enumerate(parts[:-1]):
        here = _describe(parts[: depth + 1])
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise KeyError(f"{here}: the base site has {size} item(s) there")
            node = node[part]
        else:
            if not isinstance(node, dict) or part not in node:
                known = ", ".join(sorted(node)) if isinstance(node, dict) else "no table"
                raise KeyError(f"the base site has no {here} (there: {known})")
            node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise KeyError(f"{_describe(parts)}: no such item in the base site")
        node[last] = value
    else:
        if not isinstance(node, dict):
            raise KeyError(f"{_describe(parts[:-1])} is not a table in the base site")
        node[last] = value
    return out


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_spec(path: str | Path) -> SweepSpec:
    """Load and validate a sweep SPEC TOML."""
    file = Path(path)
    data = read_toml(
        file,
        SweepError,
        missing=f"sweep SPEC {file}",
        hint="pass the path of a SPEC TOML, e.g. examples/sweeps/",
    )
    return parse_spec(data, base_dir=file.parent, source=str(file), name=file.stem)


def resolve_path(text: str, base_dir: Path) -> Path:
    """A SPEC path: ``data:REL`` inside the shared data folder, else relative to the SPEC."""

    if text.startswith(DATA_PREFIX):
        return data_dir() / text[len(DATA_PREFIX) :]
    path = Path(text).expanduser()
    return path if path.is_absolute() else base_dir / path


def _existing(text: str, base_dir: Path, source: str, key: str) -> str:

    path = resolve_path(text, base_dir)
    if not path.is_file():
        hint = (
            f"set {DATA_DIR_ENV} to the shared data folder (now {path.parent})"
            if text.startswith(DATA_PREFIX)
            else f"paths are relative to the SPEC's folder ({base_dir})"
        )
        raise SweepError(f"{source}: {key} = {text!r}: file {path} not found", hint=hint)
    return str(path)


def _price_source(raw: str | _PricesIn, base_dir: Path, source: str, key: str) -> PriceSource:
    if isinstance(raw, str):
        return PriceSource(label=raw, rt_path=_existing(raw, base_dir, source, key), forecast_path=None)
    rt = _existing(raw.rt, base_dir, source, f"{key}.rt")
    fc = _existing(raw.forecast, base_dir, source, f"{key}.forecast") if raw.forecast else None
    return PriceSource(label=raw.label or raw.rt, rt_path=rt, forecast_path=fc)


def _hashprice(raw: object, base_dir: Path, source: str, key: str) -> float | str:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise SweepError(
            f"{source}: {key} = {raw!r} is neither a number nor a file path",
            hint="hashprice is USD per PH/s per day, e.g. 45, or a daily hashprice CSV",
        )
    if isinstance(raw, str):
        return _existing(raw, base_dir, source, key)
    if not math.isfinite(raw) or raw < 0:
        raise SweepError(
            f"{source}: {key} = {raw} must be a non-negative number", hint="e.g. 45 (USD/PH/day)"
        )
    return float(raw)


def _scalar_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    return type(value).__name__


class _Reader:
    """One SPEC being read: its name, folder and base site (the mapping every site axis changes)."""

    def __init__(self, source: str, base: Path, site_file: Path) -> None:
        self.source, self.base, self.site_file = source, base, site_file
        try:
            self.site_data: dict[str, object] = tomllib.loads(site_file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SweepError(
                f"{source}: sweep.site {site_file}: not valid TOML: {exc}", hint="fix the site file"
            ) from None
        self.check_site(self.site_data, "sweep.site")

    def check_site(self, mapping: Mapping[str, object], key: str) -> None:
        try:
            parse_site(mapping, base_dir=self.site_file.parent, source=str(self.site_file))
        except DrakewellError as exc:
            message = exc.message.removeprefix(f"{self.site_file}: ")
            raise SweepError(f"{self.source}: {key}: {message}", hint=exc.hint) from None

    def policy(self, name: str, key: str) -> str:
        try:
            get_policy(name)
        except DrakewellError as exc:
            raise SweepError(f"{self.source}: {key} = {name!r}: {exc.message}", hint=exc.hint) from None
        return name

    def fixed_prices(self, sw: _SweepIn, has_prices_axis: bool) -> PriceSource | None:
        """The [sweep] price files, when the prices are not an axis."""
        source = self.source
        if has_prices_axis and (sw.prices is not None or sw.forecast is not None):
            raise SweepError(
                f"{source}: sweep.prices/sweep.forecast and axes.prices are both set",
                hint="give the price files either in [sweep] or as the prices axis, not both",
            )
        if not has_prices_axis and sw.prices is None:
            raise SweepError(
                f"{source}: missing key sweep.prices", hint="name a real-time price CSV, or add axes.prices"
            )
        if sw.prices is None:
            return None
        fixed = _price_source(sw.prices, self.base, source, "sweep.prices")
        if sw.forecast is None:
            return fixed
        if isinstance(sw.prices, _PricesIn) and sw.prices.forecast is not None:
            raise SweepError(f"{source}: the forecast is given twice", hint="keep one forecast key")
        return PriceSource(
            fixed.label, fixed.rt_path, _existing(sw.forecast, self.base, source, "sweep.forecast")
        )

    def axis(self, axis: str, values: Sequence[object]) -> tuple[AxisValue, ...]:
        """An axis's values, each checked (a site axis: the base site with it must validate)."""
        source, key = self.source, "axes." + _key_path([axis])
        kinds = {_scalar_kind(v) for v in values if axis != "prices"}
        if len(kinds) > 1:
            raise SweepError(
                f"{source}: {key} mixes {' and '.join(sorted(kinds))}",
                hint="give every value of an axis the same type",
            )
        out: tuple[AxisValue, ...]
        if axis == "policy":
            out = tuple(
                self.policy(_text(v, f"{key}[{i}]", source), f"{key}[{i}]") for i, v in enumerate(values)
            )
        elif axis == "zone":
            out = tuple(_text(v, f"{key}[{i}]", source) for i, v in enumerate(values))
        elif axis == "hashprice_usd_per_ph_day":
            out = tuple(_hashprice(v, self.base, source, f"{key}[{i}]") for i, v in enumerate(values))
        elif axis == "prices":
            out = self._prices_axis(key, values)
        else:
            out = self._site_axis(axis, key, values)
        if len(set(map(_hashable, out))) != len(out):
            raise SweepError(f"{source}: {key} repeats a value", hint="list each value once")
        return out

    def _prices_axis(self, key: str, values: Sequence[object]) -> tuple[PriceSource, ...]:
        sources = []
        for i, v in enumerate(values):
            try:
                entry: str | _PricesIn = v if isinstance(v, str) else _PricesIn.model_validate(v)
            except ValidationError as exc:
                err = _validation_error(self.source, exc)
                raise SweepError(
                    f"{self.source}: {key}[{i}]: {err.message.split(': ', 1)[-1]}", hint=err.hint
                ) from None
            sources.append(_price_source(entry, self.base, self.source, f"{key}[{i}]"))
        labels = [s.label for s in sources]
        if len(set(labels)) != len(labels):
            raise SweepError(
                f"{self.source}: {key} repeats a label", hint="give each price source its own label"
            )
        return tuple(sources)

    def _site_axis(self, axis: str, key: str, values: Sequence[object]) -> tuple[Scalar, ...]:
        source = self.source
        try:
            parts = parse_key_path(axis)
        except ValueError as exc:
            raise SweepError(
                f"{source}: {key}: {exc}",
                hint=f"axes are {', '.join(RESERVED_AXES)} or a site key path, quoted in TOML",
            ) from None
        scalars: list[Scalar] = []
        for i, v in enumerate(values):
            if not isinstance(v, str | int | float | bool):  # a table, an array or a TOML date
                raise SweepError(
                    f"{source}: {key}[{i}] is a {type(v).__name__}", hint="a site axis takes scalar values"
                )
            try:
                changed = set_key_path(self.site_data, parts, v)
            except KeyError as exc:
                raise SweepError(
                    f"{source}: {key}: unknown key path: {exc.args[0]}",
                    hint="name a key of the base site (see its TOML); tables and arrays must exist there",
                ) from None
            self.check_site(changed, f"{key}[{i}] = {v!r}")
            scalars.append(v)
        return tuple(scalars)

    def heatmap(self, raw: _SpecIn) -> tuple[str, str] | None:
        if raw.report.heatmap is None:
            return None
        a, b = raw.report.heatmap
        for i, axis in enumerate((a, b)):
            if axis not in raw.axes:
                raise SweepError(
                    f"{self.source}: report.heatmap[{i}] = {axis!r} is not an axis",
                    hint=f"choose two of {', '.join(raw.axes) or '(no axes)'}",
                )
        if a == b:
            raise SweepError(
                f"{self.source}: report.heatmap names {a!r} twice", hint="choose two different axes"
            )
        return (a, b)


def parse_spec(
    data: Mapping[str, object], *, base_dir: str | Path = ".", source: str = "sweep", name: str = "sweep"
) -> SweepSpec:
    """Validate a SPEC mapping (parsed TOML): schema, axes, site key paths and every axis value."""
    base = Path(base_dir)
    try:
        raw = _SpecIn.model_validate(dict(data))
    except ValidationError as exc:
        raise _validation_error(source, exc) from None
    sw = raw.sweep
    reader = _Reader(source, base, Path(_existing(sw.site, base, source, "sweep.site")))
    prices = reader.fixed_prices(sw, "prices" in raw.axes)
    axes = tuple((axis, reader.axis(axis, values)) for axis, values in raw.axes.items())
    hashprice = sw.hashprice_usd_per_ph_day
    return SweepSpec(
        name=sw.name or name,
        source=source,
        site_path=str(reader.site_file),
        site_data=reader.site_data,
        prices=prices,
        zone=sw.zone,
        hashprice=None
        if hashprice is None
        else _hashprice(hashprice, base, source, "sweep.hashprice_usd_per_ph_day"),
        policy=reader.policy(sw.policy, "sweep.policy"),
        axes=axes,
        heatmap=reader.heatmap(raw),
        mpc_flex_capture_bar=raw.report.mpc_flex_capture_bar,
    )


def _text(value: object, key: str, source: str) -> str:
    if not isinstance(value, str) or not value:
        raise SweepError(f"{source}: {key} = {value!r} is not a name", hint="write it as a quoted string")
    return value


def _hashable(value: AxisValue) -> str | tuple[str, Scalar]:
    return value.label if isinstance(value, PriceSource) else (type(value).__name__, value)


def _label(value: AxisValue) -> Scalar:
    return value.label if isinstance(value, PriceSource) else value


def expand_cells(spec: SweepSpec) -> list[Cell]:
    """Every cell of ``spec``, in product order (the last axis varies fastest)."""
    cells = []
    names = spec.axis_names
    for combo in itertools.product(*(values for _, values in spec.axes)):
        chosen = dict(zip(names, combo, strict=True))
        prices = chosen.get("prices", spec.prices)
        zone = chosen.get("zone", spec.zone)
        hashprice = chosen.get("hashprice_usd_per_ph_day", spec.hashprice)
        policy = chosen.get("policy", spec.policy)
        # the reserved axes hold what _Reader.axis made of them: prices, names and hashprices
        assert isinstance(prices, PriceSource) and isinstance(policy, str)
        assert (zone is None or isinstance(zone, str)) and (
            hashprice is None or isinstance(hashprice, float | str)
        )
        overrides = tuple((parse_key_path(n), _label(v)) for n, v in chosen.items() if n not in RESERVED_AXES)
        cells.append(
            Cell(
                values=tuple((n, _label(v)) for n, v in chosen.items()),
                site_overrides=overrides,
                prices=prices,
                zone=zone,
                hashprice=hashprice,
                policy=policy,
            )
        )
    return cells


def cell_site_data(spec: SweepSpec, cell: Cell) -> dict[str, object]:
    """The base site's mapping with the cell's overrides applied."""
    data = copy.deepcopy(dict(spec.site_data))
    for parts, value in cell.site_overrides:
        data = set_key_path(data, parts, value)
    return data


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cell_key(site_data: Mapping[str, object], cell: Cell, digests: Mapping[str, str]) -> str:
    """The cell's identity: SHA-256 (first 16 hex digits) of its resolved definition.

    ``digests`` maps every file path the cell reads (price files, a hashprice CSV) to its SHA-256.
    """
    hashprice: object = cell.hashprice
    if isinstance(hashprice, str):
        hashprice = {"file": digests[hashprice]}
    elif hashprice is None:
        hashprice = {"derived": digests.get("hashprice:derived")}
    definition = {
        "site": site_data,
        "rt": digests[cell.prices.rt_path],
        "forecast": digests[cell.prices.forecast_path] if cell.prices.forecast_path else None,
        "zone": cell.zone,
        "hashprice": hashprice,
        "policy": cell.policy,
    }
    text = json.dumps(definition, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
