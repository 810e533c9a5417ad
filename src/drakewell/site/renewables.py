r"""Behind-the-meter renewables: on-site solar and wind plants and their generation per interval.

A site may have plants behind its grid meter (``[renewables]`` in the site TOML, see
:mod:`drakewell.site`). Each plant has an AC capacity :math:`P` (MW) and a capacity factor
:math:`f_t \in [0, 1]` per interval, so it generates :math:`G_t = P f_t`:

- ``kind = "profile"``: :math:`f_t` from a CSV (``interval_start_utc,capacity_factor``), read at
  the interval starts (an interval missing from the file is an error naming it);
- ``kind = "pv"``: a PVWatts model in pvlib at the interval mid-points: clear-sky irradiance
  (Ineichen, pvlib's Linke turbidity climatology) at ``latitude``/``longitude``/``altitude_m``,
  transposed to the plane of array (``tilt_deg``, ``azimuth_deg``; isotropic sky model),
  cell temperature by the SAPM open-rack model at ``ambient_temp_c`` and 1 m/s wind,
  :math:`P_{dc} = P \cdot r_{dc/ac} \cdot E/1000 \cdot (1 + \gamma (T_c - 25))`, then the PVWatts
  inverter clipped at :math:`P`. Clear sky is an upper bound; ``clear_sky_fraction`` scales it to
  the expected share of clear-sky energy (e.g. 0.85 for West Texas summers).

Dispatch uses on-site generation first; what the load does not use is exported at the real-time
price (``surplus = "export"``, at most the grid connection, never at a negative price) or
curtailed (``surplus = "curtail"``). At a negative real-time price the site is paid to import, so it
curtails its own generation instead. The generation is treated as known ahead, like the contracted
AI profile.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from drakewell.core.errors import SiteError

SurplusRule = Literal["export", "curtail"]


@dataclass(frozen=True)
class PvModel:
    """A fixed-tilt PV plant's location and orientation for pvlib."""

    latitude: float
    longitude: float
    altitude_m: float
    tilt_deg: float
    azimuth_deg: float  # 180 = facing south
    dc_ac_ratio: float
    gamma_per_c: float  # power temperature coefficient, 1/°C (negative)
    ambient_temp_c: float
    clear_sky_fraction: float


@dataclass(frozen=True)
class RenewablePlant:
    """One plant: ``capacity_mw`` AC, and either a profile (``profile_utc``/``profile_cf``) or ``pv``."""

    name: str
    kind: Literal["pv", "profile"]
    capacity_mw: float
    pv: PvModel | None = None
    profile_file: str | None = None
    profile_utc: tuple[int, ...] = ()  # ns since the epoch, sorted
    profile_cf: tuple[float, ...] = ()

    def capacity_factor(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Capacity factor in [0, 1] for each interval starting at ``index`` (tz-aware)."""
        if self.kind == "pv":
            assert self.pv is not None
            return pv_capacity_factor(self.pv, index)
        stamps = np.asarray(index.tz_convert("UTC").asi8)
        utc = np.asarray(self.profile_utc, dtype=np.int64)
        pos = np.searchsorted(utc, stamps)
        found = (pos < len(utc)) & (utc[np.minimum(pos, len(utc) - 1)] == stamps)
        if not found.all():
            first = index[int(np.flatnonzero(~found)[0])]
            raise SiteError(
                f"renewables.plants.{self.name}: the profile {self.profile_file} has no value for "
                f"{first.isoformat()} ({int((~found).sum())} interval(s) missing)",
                hint="give one capacity_factor per dispatch interval start (UTC) over the whole horizon",
            )
        return np.asarray(self.profile_cf, dtype=np.float64)[pos]


@dataclass(frozen=True)
class Renewables:
    """The site's behind-the-meter plants and what happens to their surplus."""

    surplus: SurplusRule = "curtail"
    plants: tuple[RenewablePlant, ...] = ()

    @property
    def capacity_mw(self) -> float:
        return sum(p.capacity_mw for p in self.plants)

    def generation_mw(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Total on-site generation (MW AC) per interval of ``index``."""
        out = np.zeros(len(index))
        for plant in self.plants:
            out += plant.capacity_mw * plant.capacity_factor(index)
        return out


NO_RENEWABLES = Renewables()


def pv_capacity_factor(pv: PvModel, index: pd.DatetimeIndex) -> np.ndarray:
    """PVWatts capacity factor (AC ÷ AC capacity) at the mid-points of the intervals of ``index``."""
    import pvlib

    if len(index) == 0:
        return np.zeros(0)
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=15)
    mid = index.tz_convert("UTC") + step / 2
    with warnings.catch_warnings():
        # pvlib 0.16 still calls DatetimeIndex.dayofyear, deprecated by pandas 3; the value is right
        warnings.filterwarnings("ignore", category=pd.errors.Pandas4Warning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        loc = pvlib.location.Location(pv.latitude, pv.longitude, altitude=pv.altitude_m)
        sky = loc.get_clearsky(mid)
        sun = loc.get_solarposition(mid)
        poa = pvlib.irradiance.get_total_irradiance(
            pv.tilt_deg,
            pv.azimuth_deg,
            sun["apparent_zenith"],
            sun["azimuth"],
            sky["dni"],
            sky["ghi"],
            sky["dhi"],
        )
        e = np.nan_to_num(np.asarray(poa["poa_global"], dtype=np.float64)) * pv.clear_sky_fraction
        params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
        t_cell = pvlib.temperature.sapm_cell(e, pv.ambient_temp_c, 1.0, **params)
        dc = pvlib.pvsystem.pvwatts_dc(e, t_cell, pv.dc_ac_ratio, pv.gamma_per_c)
        ac = pvlib.inverter.pvwatts(dc, 1.0 / 0.96)
    return np.clip(np.nan_to_num(np.asarray(ac, dtype=np.float64)), 0.0, 1.0)


def load_profile(path: str | Path) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Read a generation profile CSV: ``interval_start_utc`` (ISO-8601 with offset) and
    ``capacity_factor`` in [0, 1]. Returns sorted UTC nanoseconds and the factors."""
    file = Path(path)
    if not file.is_file():
        raise SiteError(
            f"generation profile {file} not found", hint="check profile_file (relative to the TOML)"
        )
    try:
        frame = pd.read_csv(file, comment="#")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise SiteError(f"generation profile {file}: not a CSV ({exc})", hint="write a CSV file") from None
    missing = {"interval_start_utc", "capacity_factor"} - set(frame.columns)
    if missing:
        raise SiteError(
            f"generation profile {file}: missing column(s) {', '.join(sorted(missing))}",
            hint="columns: interval_start_utc,capacity_factor",
        )
    try:
        stamps = pd.to_datetime(frame["interval_start_utc"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise SiteError(
            f"generation profile {file}: bad interval_start_utc ({exc})",
            hint="write ISO-8601 times with an offset, e.g. 2023-07-01T05:00:00Z",
        ) from None
    cf = pd.to_numeric(frame["capacity_factor"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(cf) | (cf < 0) | (cf > 1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SiteError(
            f"generation profile {file}: capacity_factor {frame['capacity_factor'].iloc[row]!r} at data row "
            f"{row + 1} is not a number in [0, 1]",
            hint="capacity factors are generation ÷ capacity, between 0 and 1",
        )
    utc = np.asarray(pd.DatetimeIndex(stamps).asi8, dtype=np.int64)
    if len(np.unique(utc)) != len(utc):
        raise SiteError(
            f"generation profile {file}: repeated interval_start_utc", hint="one row per interval"
        )
    order = np.argsort(utc)
    return tuple(int(x) for x in utc[order]), tuple(float(x) for x in cf[order])
