"""Inter-region round-trip times: measured (Skyplane pings) or modelled (great-circle distance).

A :class:`LatencyMatrix` is a square, symmetric matrix of RTTs in milliseconds over named regions
(``provider:region``, e.g. ``aws:af-south-1``). Two sources:

**Measured** — :func:`load_skyplane` reads ``latency/skyplane_latency.csv`` from the data folder
(ping between cloud VMs, one row per (src, dst, tier, instance class) measurement).

- *Duplicates*: a directed pair may appear with several tiers or instance classes. We keep the
  PREMIUM-tier rows when a pair has any (STANDARD routes over the public internet and is not what a
  provider-to-provider path uses), and take the **median of their ``avg_rtt``**.
- *Direction*: RTT is a round trip, so ``a→b`` and ``b→a`` measure the same path; the matrix entry is
  the mean of the two directions when both exist, else the one that exists (counted as
  ``n_filled_by_symmetry``).
- *Missing pairs*: the remaining holes are imputed by the **best one-hop relay**,
  ``rtt(a, b) = min_k rtt(a, k) + rtt(k, b)`` over measured ``k`` — an upper bound by the triangle
  inequality, i.e. the RTT of routing through a third region (counted as ``n_imputed``). A pair with
  no measured relay either is refused.
- *Diagonal*: always :data:`INTRA_REGION_RTT_MS`. The file's self-pairs mix tiers (some leave the
  provider's network and read 50–80 ms), so they do not describe a same-region hop.

In ``skyplane_latency.csv`` all 2,346 unordered pairs of its 69 regions are measured in both
directions, so nothing is imputed there; the older ``skyplane_latency_643731c3.csv`` leaves 561
pairs to the relay rule.

**Modelled** — :func:`great_circle_matrix` needs no data, so the simulator and CLI work out of the
box: ``rtt_ms = GC_BASE_RTT_MS + 2 · GC_ROUTE_FACTOR · d_km / FIBRE_KM_PER_MS`` with ``d_km`` the
haversine distance between the regions' cities (:data:`REGION_COORDS`), light in fibre at
~200 km/ms, a route-inflation factor for cable paths that are not great circles, and a fixed term
for switching and the last hops. The constants were chosen so the model's median ratio to the
Skyplane RTTs over the regions in :data:`REGION_COORDS` is close to 1 (a test checks this when the
data is present).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import numpy as np
import numpy.typing as npt

from drakewell.core.config import DATA_DIR_ENV, data_dir
from drakewell.core.errors import RoutingError

SKYPLANE_FILE = "latency/skyplane_latency.csv"
INTRA_REGION_RTT_MS = 1.0
FIBRE_KM_PER_MS = 200.0  # light in glass: about 2/3 c
GC_ROUTE_FACTOR = 1.75  # cable paths are longer than great circles (fitted: median ratio ≈ 1)
GC_BASE_RTT_MS = 4.0  # switching, serialisation, last hops

_REQUIRED_COLUMNS = ("src_region", "src_tier", "dst_region", "dst_tier", "avg_rtt")

# (latitude, longitude) of the city that hosts each region, from the providers' public region lists.
REGION_COORDS: dict[str, tuple[float, float]] = {
    "aws:af-south-1": (-33.92, 18.42),  # Cape Town
    "aws:me-south-1": (26.07, 50.56),  # Bahrain
    "aws:ap-south-1": (19.08, 72.88),  # Mumbai
    "aws:sa-east-1": (-23.55, -46.63),  # São Paulo
    "aws:ap-southeast-3": (-6.21, 106.85),  # Jakarta
    "aws:ap-southeast-1": (1.35, 103.82),  # Singapore
    "aws:ap-southeast-2": (-33.87, 151.21),  # Sydney
    "aws:ap-east-1": (22.32, 114.17),  # Hong Kong
    "aws:ap-northeast-1": (35.68, 139.69),  # Tokyo
    "aws:ap-northeast-2": (37.57, 126.98),  # Seoul
    "aws:ap-northeast-3": (34.69, 135.50),  # Osaka
    "aws:eu-central-1": (50.11, 8.68),  # Frankfurt
    "aws:eu-west-1": (53.35, -6.26),  # Dublin
    "aws:eu-west-2": (51.51, -0.13),  # London
    "aws:eu-south-1": (45.46, 9.19),  # Milan
    "aws:eu-north-1": (59.33, 18.07),  # Stockholm
    "aws:us-east-1": (38.95, -77.45),  # N. Virginia
    "aws:us-east-2": (39.96, -83.00),  # Ohio
    "aws:us-west-1": (37.35, -121.96),  # N. California
    "aws:us-west-2": (45.60, -121.18),  # Oregon
    "aws:ca-central-1": (45.50, -73.57),  # Montréal
    "azure:southafricanorth": (-26.20, 28.05),  # Johannesburg
    "azure:uaenorth": (25.27, 55.30),  # Dubai
    "azure:centralindia": (18.52, 73.86),  # Pune
    "azure:brazilsouth": (-23.55, -46.63),  # São Paulo
    "azure:eastus": (37.37, -79.82),  # Virginia
    "azure:westeurope": (52.37, 4.90),  # Netherlands
    "gcp:asia-south1-a": (19.08, 72.88),  # Mumbai
    "gcp:asia-south2-a": (28.61, 77.21),  # Delhi
    "gcp:asia-southeast2-a": (-6.21, 106.85),  # Jakarta
    "gcp:southamerica-east1-a": (-23.55, -46.63),  # São Paulo
    "gcp:southamerica-west1-a": (-33.45, -70.67),  # Santiago
    "gcp:us-east1-b": (33.20, -80.01),  # South Carolina
    "gcp:europe-west1-b": (50.45, 3.82),  # St. Ghislain
}


class LatencyDataError(RoutingError):
    """The latency file is missing, malformed, or does not cover the regions asked for."""


@dataclass(frozen=True)
class LatencyMatrix:
    """Symmetric RTT matrix in milliseconds; ``rtt_ms[i, j]`` between ``regions[i]`` and ``regions[j]``.

    ``measured[i, j]`` is True where the value came from a measurement (either direction) and False
    where the stated imputation rule (or the model) produced it.
    """

    regions: tuple[str, ...]
    rtt_ms: npt.NDArray[np.float64]
    measured: npt.NDArray[np.bool_]
    source: str
    n_filled_by_symmetry: int = 0  # unordered pairs measured in one direction only

    @property
    def n_pairs(self) -> int:
        """Unordered off-diagonal pairs."""
        n = len(self.regions)
        return n * (n - 1) // 2

    @property
    def n_imputed(self) -> int:
        """Unordered off-diagonal pairs not measured in either direction."""
        return int(np.count_nonzero(np.triu(~self.measured, k=1)))

    def index(self, region: str) -> int:
        try:
            return self.regions.index(region)
        except ValueError:
            raise LatencyDataError(
                f"region {region!r} is not in the latency matrix ({self.source})",
                hint=f"use one of: {', '.join(self.regions[:8])}{' …' if len(self.regions) > 8 else ''}",
            ) from None

    def rtt(self, a: str, b: str) -> float:
        """RTT in ms between two regions."""
        return float(self.rtt_ms[self.index(a), self.index(b)])

    def subset(self, regions: Sequence[str]) -> LatencyMatrix:
        """The matrix restricted to ``regions``, in that order (a region may not repeat)."""
        if len(set(regions)) != len(regions):
            raise LatencyDataError("a region is listed twice", hint="list each region once")
        idx = [self.index(r) for r in regions]
        grid = np.ix_(idx, idx)
        return LatencyMatrix(
            regions=tuple(regions),
            rtt_ms=self.rtt_ms[grid].copy(),
            measured=self.measured[grid].copy(),
            source=self.source,
        )


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km between two (lat, lon) points in degrees."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def modelled_rtt_ms(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The great-circle RTT model (see module docstring)."""
    return GC_BASE_RTT_MS + 2.0 * GC_ROUTE_FACTOR * haversine_km(a, b) / FIBRE_KM_PER_MS


def great_circle_matrix(regions: Iterable[str]) -> LatencyMatrix:
    """An RTT matrix from the great-circle model; every region must be in :data:`REGION_COORDS`."""
    names = tuple(regions)
    unknown = [r for r in names if r not in REGION_COORDS]
    if unknown:
        raise LatencyDataError(
            f"no coordinates for region(s) {', '.join(unknown)}",
            hint=f"use regions from REGION_COORDS ({', '.join(sorted(REGION_COORDS)[:6])} …) "
            f"or load measured RTTs with load_skyplane()",
        )
    n = len(names)
    rtt = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            rtt[i, j] = (
                INTRA_REGION_RTT_MS
                if i == j
                else modelled_rtt_ms(REGION_COORDS[names[i]], REGION_COORDS[names[j]])
            )
    return LatencyMatrix(
        regions=names, rtt_ms=rtt, measured=np.zeros((n, n), dtype=bool), source="great-circle model"
    )


def _read_rows(path: Path) -> dict[tuple[str, str], list[tuple[str, float]]]:
    """(src, dst) → [(tier, avg_rtt_ms)], where tier is PREMIUM only if both ends are PREMIUM."""
    rows: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise LatencyDataError(
            f"cannot read latency file {path}: {exc.strerror}",
            hint=f"set {DATA_DIR_ENV} to the folder holding latency/skyplane_latency.csv",
        ) from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise LatencyDataError(
                f"{path}: missing column(s) {', '.join(missing)}",
                hint="the file must have the Skyplane header: src_region,src_tier,…,avg_rtt,…",
            )
        for line_no, row in enumerate(reader, start=2):
            raw = (row.get("avg_rtt") or "").strip()
            if not raw:
                continue  # an unmeasured pair; it will be imputed
            try:
                value = float(raw)
            except ValueError:
                raise LatencyDataError(
                    f"{path}:{line_no}: avg_rtt {raw!r} is not a number",
                    hint="fix or delete that row",
                ) from None
            if not math.isfinite(value) or value < 0:
                raise LatencyDataError(
                    f"{path}:{line_no}: avg_rtt {value} is not a non-negative finite number",
                    hint="fix or delete that row",
                )
            tier = "PREMIUM" if row["src_tier"] == row["dst_tier"] == "PREMIUM" else "STANDARD"
            rows[(row["src_region"].strip(), row["dst_region"].strip())].append((tier, value))
    if not rows:
        raise LatencyDataError(f"{path}: no measured RTT rows", hint="check that the file is not empty")
    return rows


def _aggregate(samples: list[tuple[str, float]]) -> float:
    premium = [v for tier, v in samples if tier == "PREMIUM"]
    return float(median(premium or [v for _, v in samples]))


def load_skyplane(path: Path | None = None, regions: Sequence[str] | None = None) -> LatencyMatrix:
    """Measured RTT matrix from the Skyplane CSV (rules for duplicates and holes: module docstring).

    ``regions`` restricts and orders the matrix; imputation uses every region in the file as a relay.
    """
    path = path if path is not None else data_dir() / SKYPLANE_FILE
    directed = {pair: _aggregate(s) for pair, s in _read_rows(path).items()}
    names = sorted({r for pair in directed for r in pair})
    n = len(names)
    rtt = np.full((n, n), np.nan)
    n_one_way = 0
    for i, a in enumerate(names):
        for j in range(i + 1, n):
            b = names[j]
            ab, ba = directed.get((a, b)), directed.get((b, a))
            if ab is not None and ba is not None:
                rtt[i, j] = rtt[j, i] = (ab + ba) / 2
            elif ab is not None or ba is not None:
                rtt[i, j] = rtt[j, i] = ab if ab is not None else ba
                n_one_way += 1
    measured = ~np.isnan(rtt)
    np.fill_diagonal(rtt, INTRA_REGION_RTT_MS)
    # One-hop relay over measured pairs only: relay[i, j] = min_k rtt[i, k] + rtt[k, j], k ∉ {i, j}.
    known = np.where(measured, rtt, np.inf)
    np.fill_diagonal(known, np.inf)
    relay = np.min(known[:, :, None] + known[None, :, :], axis=1)
    holes = ~measured
    np.fill_diagonal(holes, False)
    if np.any(holes & ~np.isfinite(relay)):
        i, j = map(int, np.argwhere(holes & ~np.isfinite(relay))[0])
        raise LatencyDataError(
            f"{path}: no measured path, direct or through one relay, between {names[i]} and {names[j]}",
            hint="add a measurement for that pair or drop one of the regions",
        )
    rtt[holes] = relay[holes]
    full = LatencyMatrix(
        regions=tuple(names), rtt_ms=rtt, measured=measured, source=path.name, n_filled_by_symmetry=n_one_way
    )
    return full if regions is None else full.subset(regions)


def latency_matrix(regions: Sequence[str], *, source: str = "auto") -> LatencyMatrix:
    """RTTs for ``regions``: ``"skyplane"`` (measured), ``"model"`` (great circle), or ``"auto"``
    (measured when the data file is present, else the model)."""
    if source not in ("auto", "skyplane", "model"):
        raise LatencyDataError(f"unknown latency source {source!r}", hint="use 'auto', 'skyplane' or 'model'")
    path = data_dir() / SKYPLANE_FILE
    if source == "skyplane" or (source == "auto" and path.exists()):
        return load_skyplane(path, regions)
    return great_circle_matrix(regions)
