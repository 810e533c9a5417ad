"""A simulated fleet: the readings a site's nodes would sign for a dispatch ledger.

Input: the dispatch ledger (``interval_start_utc`` UTC, ``hours``, ``ai_inference_mw``,
``ai_training_mw``, ``ai_spot_mw``, ``mining_mw`` as IT MW at the hardware, ``gpus_busy``) and
plain fleet parameters (:class:`FleetParams`): GPU servers (GPUs per node, W per GPU) and ASIC
containers (units per node, W and TH/s per unit). One secp256k1 key per node.

Per interval ``t`` of ``h`` hours (a window ``[t, t + h)``, which must not straddle an epoch):

- **GPU work.** ``E_ai = (inference + training + spot MW) · h · 10⁶`` Wh. The ``gpus_busy`` GPUs
  (capped at the fleet's) are packed onto nodes in order: first each active lease's GPUs (leases
  in id order, each a :class:`~drakewell.metering.ingest.LeaseTerms` on the fleet's GPU asset),
  then unleased work. A node carrying ``g`` busy GPUs of one lease signs a reading with
  ``gpuSeconds = g · Δt``, ``energyWh = E_ai · g / gpus_busy`` and
  ``tokens = gpuSeconds · tokens_per_gpu_s · inference share``; a node serving several leases
  signs one reading per lease.
- **Mining.** ``E_btc = mining MW · h · 10⁶`` Wh spread over ASIC nodes in order (``units · W``
  each, fractional last node); ``hashesTh = E · 3600 · TH/s ÷ W`` times the node's efficiency.
- **Noise.** Each node's meter has a fixed calibration error ``~ N(0, meter_bias)`` and each
  reading a random error ``~ N(0, meter_noise)`` on energy; each ASIC node a fixed efficiency
  ``~ N(1, asic_efficiency_spread)`` on hashes. Values are rounded to integers.
- **Every node reports every window** (zeros when idle), so uptime is measurable.
- **Missing windows.** With probability ``missing_rate`` a node does not report a window; its
  counters keep running, so its next readings in the same epoch cover both windows (energy is
  carried, never lost). The last window of an epoch is always reported. All readings a node signs
  at once share one window (from its first unreported window to now), so a node's windows tile
  time, as ingest requires, and their sums are capped at its nameplate.

Hence metered energy equals the ledger's energy up to meter error and rounding:
``|Σ metered − Σ ledger| ≤ ENERGY_TOLERANCE · Σ ledger + n_readings`` Wh
(:data:`ENERGY_TOLERANCE` = 0.5 %, several standard deviations of the default noise on any fleet
of more than a few nodes). Readings are capped at the node's nameplate (ingest would refuse more).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from drakewell.core.errors import MeteringError
from drakewell.metering.ingest import CAPACITY_HEADROOM, LeaseTerms, NodeSpec
from drakewell.metering.readings import DEFAULT_EPOCH_SECONDS, MeterDomain, Reading, SignedReading, asset_id
from drakewell.metering.signing import NodeKey

if TYPE_CHECKING:
    from drakewell.site import Site

ENERGY_TOLERANCE = 0.005  # relative: metered vs ledger energy (see module docstring)
METERED_COLUMNS = (  # the dispatch ledger's columns the fleet's readings follow
    "interval_start_utc",
    "hours",
    "ai_inference_mw",
    "ai_training_mw",
    "ai_spot_mw",
    "mining_mw",
    "gpus_busy",
)


class FleetError(MeteringError):
    """The ledger or fleet description cannot be turned into readings."""


@dataclass(frozen=True)
class FleetParams:
    """Plain fleet parameters (independent of the site file's shape)."""

    gpu_nodes: int
    gpus_per_node: int
    gpu_w: float  # IT watts per GPU incl. its share of the server
    asic_nodes: int
    asics_per_node: int
    asic_w: float  # IT watts per ASIC unit
    asic_th_s: float  # TH/s per ASIC unit
    tokens_per_gpu_s: float = 1_500.0  # inference throughput per busy GPU
    gpu_asset: bytes = field(default_factory=lambda: asset_id("drakewell:gpu-pool"))
    asic_asset: bytes = field(default_factory=lambda: asset_id("drakewell:asic-pool"))

    def __post_init__(self) -> None:
        for name in ("gpu_nodes", "gpus_per_node", "asic_nodes", "asics_per_node"):
            if getattr(self, name) < 0:
                raise FleetError(f"{name} is negative", hint="counts are >= 0")
        if self.gpu_nodes and (self.gpus_per_node <= 0 or self.gpu_w <= 0):
            raise FleetError("GPU nodes need gpus_per_node > 0 and gpu_w > 0", hint="describe the servers")
        if self.asic_nodes and (self.asics_per_node <= 0 or self.asic_w <= 0 or self.asic_th_s <= 0):
            raise FleetError(
                "ASIC nodes need asics_per_node, asic_w and asic_th_s > 0", hint="describe the miners"
            )

    @property
    def total_gpus(self) -> int:
        return self.gpu_nodes * self.gpus_per_node


@dataclass(frozen=True)
class NoiseModel:
    meter_bias: float = 0.002  # sd of each node's fixed calibration error
    meter_noise: float = 0.005  # sd of each reading's random error
    asic_efficiency_spread: float = 0.02  # sd of each ASIC node's hashes per joule
    missing_rate: float = 0.01  # chance a node skips a (non-final) window


@dataclass(frozen=True)
class SimulatedFleet:
    keys: dict[str, NodeKey]  # address -> key
    nodes: tuple[NodeSpec, ...]
    readings: tuple[SignedReading, ...]
    leases: tuple[LeaseTerms, ...] = ()  # what the GPU readings' lease ids stand for (register them)

    @property
    def energy_wh(self) -> int:
        return sum(s.reading.energy_wh for s in self.readings)


def ledger_energy_wh(ledger: pd.DataFrame) -> float:
    """IT energy of AI work and mining in the ledger, in Wh."""
    ai = ledger["ai_inference_mw"] + ledger["ai_training_mw"] + ledger["ai_spot_mw"]
    return float(((ai + ledger["mining_mw"]) * ledger["hours"]).sum() * 1e6)


def _node_keys(n: int, rng: np.random.Generator) -> list[NodeKey]:
    keys = []
    for _ in range(n):
        while True:
            raw = rng.bytes(32)
            if 0 < int.from_bytes(raw, "big") < 2**256 - 2**128:  # comfortably below the group order
                break
        keys.append(NodeKey(raw))
    return keys


@dataclass(frozen=True)
class _Timeline:
    """The ledger's windows in Unix seconds, their epochs, and which window closes its epoch."""

    start_s: np.ndarray
    end_s: np.ndarray
    dur_s: np.ndarray
    epochs: np.ndarray
    last_in_epoch: np.ndarray

    @classmethod
    def of(cls, ledger: pd.DataFrame, epoch_seconds: int) -> _Timeline:
        starts = pd.DatetimeIndex(pd.to_datetime(ledger["interval_start_utc"], utc=True))
        start_s = (starts.as_unit("s").asi8).astype(np.int64)
        dur_s = np.rint(ledger["hours"].to_numpy(dtype=float) * 3600).astype(np.int64)
        if (dur_s <= 0).any():
            raise FleetError("ledger has intervals of no duration", hint="hours must be > 0")
        end_s = start_s + dur_s
        epochs = start_s // epoch_seconds
        if ((end_s - 1) // epoch_seconds != epochs).any():
            raise FleetError(
                f"a ledger interval straddles an epoch boundary ({epoch_seconds} s epochs)",
                hint="use intervals that divide the epoch length (5, 15, 60 minutes for day epochs)",
            )
        last = np.append(epochs[1:] != epochs[:-1], True) if len(epochs) else np.array([], bool)
        return cls(start_s, end_s, dur_s, epochs, last)


class _Signer:
    """Signs readings in order, numbering each node's readings from 1."""

    def __init__(self, domain: MeterDomain) -> None:
        self.domain = domain
        self.seqs: dict[str, int] = {}
        self.out: list[SignedReading] = []

    def emit(
        self, key: NodeKey, spec: NodeSpec, asset: bytes, epoch: int, lease: int, acc: list[float], end: int
    ) -> None:
        """Sign one reading of the window ``[acc[0], end)``, each quantity capped at the nameplate."""
        ws = int(acc[0])
        dt = end - ws
        cap_wh = spec.max_power_w * dt * (1 + CAPACITY_HEADROOM) / 3600.0
        cap_th = spec.max_th_s * dt * (1 + CAPACITY_HEADROOM)
        energy = int(min(round(acc[1]), math.floor(cap_wh)))
        gpu_s = int(min(round(acc[2]), spec.gpus * dt))
        hashes = int(min(round(acc[3]), math.floor(cap_th)))
        tokens = int(min(round(acc[4]), math.floor(gpu_s * spec.max_tokens_per_gpu_s)))
        seq = self.seqs.get(key.address, 0) + 1
        self.seqs[key.address] = seq
        reading = Reading(key.address, asset, epoch, seq, ws, end, energy, gpu_s, hashes, tokens, lease)
        self.out.append(key.sign(reading, self.domain))

    def flush(
        self, key: NodeKey, spec: NodeSpec, asset: bytes, epoch: int, pend: dict[int, list[float]], end: int
    ) -> None:
        """Sign the node's pending readings, one per lease, over one shared window up to ``end``."""
        ws = int(min(acc[0] for acc in pend.values()))
        dt = end - ws
        cap_wh = math.floor(spec.max_power_w * dt * (1 + CAPACITY_HEADROOM) / 3600.0)
        total_wh = sum(round(acc[1]) for acc in pend.values())
        scale = cap_wh / total_wh if total_wh > cap_wh else 1.0  # the window's sum within nameplate
        for lease, acc in sorted(pend.items()):
            self.emit(key, spec, asset, epoch, lease, [ws, math.floor(round(acc[1]) * scale), *acc[2:]], end)
        pend.clear()


def _pack_gpus(
    n_busy: int, leases: Sequence[LeaseTerms], ws: int, we: int, params: FleetParams
) -> list[dict[int, int]]:
    """Busy GPUs per node and lease id: active leases' GPUs first (in id order), then unleased (0)."""
    chunks: list[tuple[int, int]] = []  # (lease id, gpus) in packing order
    left = n_busy
    for lease in leases:
        if lease.start_s < we and lease.end_s > ws and left > 0:
            g = min(lease.gpus, left)
            chunks.append((lease.lease_id, g))
            left -= g
    if left > 0:
        chunks.append((0, left))
    per_node: list[dict[int, int]] = [{} for _ in range(params.gpu_nodes)]
    node_i, room = 0, params.gpus_per_node
    for lid, g in chunks:
        while g > 0:
            take = min(g, room)
            per_node[node_i][lid] = per_node[node_i].get(lid, 0) + take
            g -= take
            room -= take
            if room == 0 and node_i + 1 < params.gpu_nodes:
                node_i, room = node_i + 1, params.gpus_per_node
    return per_node


class _Nodes:
    """One kind of node (GPU servers or ASIC containers): keys, specs, meter and efficiency errors,
    and each node's readings not yet reported (``pending[i][lease] = [window start, energy Wh,
    GPU-seconds, TH, tokens]``)."""

    def __init__(self, keys: list[NodeKey], specs: list[NodeSpec], asset: bytes) -> None:
        self.keys, self.specs, self.asset = keys, specs, asset
        self.pending: list[dict[int, list[float]]] = [{} for _ in keys]
        self.bias = np.ones(len(keys))
        self.efficiency = np.ones(len(keys))


def _node_group(
    count: int, asset: bytes, rng: np.random.Generator, describe: Callable[[str], NodeSpec]
) -> _Nodes:
    """``count`` nodes of ``asset`` with fresh keys, each described by ``describe(address)``."""
    keys = _node_keys(count, rng)
    return _Nodes(keys, [describe(k.address) for k in keys], asset)


def _gpu_nodes(params: FleetParams, rng: np.random.Generator) -> _Nodes:
    tokens = max(params.tokens_per_gpu_s * 2, 1.0)
    gpus, gpu_w = params.gpus_per_node, params.gpu_w
    describe = partial(
        NodeSpec, asset=params.gpu_asset, kind="gpu", gpus=gpus, gpu_w=gpu_w, max_tokens_per_gpu_s=tokens
    )
    return _node_group(params.gpu_nodes, params.gpu_asset, rng, describe)


def _asic_nodes(params: FleetParams, rng: np.random.Generator) -> _Nodes:
    units, unit_w, unit_th_s = params.asics_per_node, params.asic_w, params.asic_th_s
    describe = partial(
        NodeSpec, asset=params.asic_asset, kind="asic", asic_units=units, asic_w=unit_w, asic_th_s=unit_th_s
    )
    return _node_group(params.asic_nodes, params.asic_asset, rng, describe)


@dataclass(frozen=True)
class _Interval:
    """One ledger window as the nodes see it."""

    start_s: int
    end_s: int
    epoch: int
    final: bool  # the epoch's last window: every node reports it

    @property
    def seconds(self) -> int:
        return self.end_s - self.start_s


def _gpu_interval(
    nodes: _Nodes,
    per_node: list[dict[int, int]],
    busy: int,
    energy_wh: float,
    tokens_per_gpu_s: float,
    inference_share: float,
    window: _Interval,
    rng: np.random.Generator,
    noise: NoiseModel,
    signer: _Signer,
) -> None:
    """Each GPU node adds its share of the window's energy, GPU-seconds and tokens per lease, and
    reports (unless it misses the window)."""
    ws, dt = window.start_s, window.seconds
    for i, pend in enumerate(nodes.pending):
        for lid, g in per_node[i].items():
            share = g / busy if busy else 1.0
            energy = energy_wh * share * nodes.bias[i] * (1.0 + rng.normal(0.0, noise.meter_noise))
            acc = pend.setdefault(lid, [ws, 0.0, 0.0, 0.0, 0.0])
            acc[1] += max(energy, 0.0)
            acc[2] += g * dt
            acc[4] += g * dt * tokens_per_gpu_s * inference_share
        if not pend:
            pend[0] = [ws, 0.0, 0.0, 0.0, 0.0]  # an idle node reports zeros
        if window.final or rng.random() >= noise.missing_rate:
            signer.flush(nodes.keys[i], nodes.specs[i], nodes.asset, window.epoch, pend, window.end_s)


def _asic_interval(
    nodes: _Nodes,
    energy_wh: float,
    params: FleetParams,
    window: _Interval,
    rng: np.random.Generator,
    noise: NoiseModel,
    signer: _Signer,
) -> None:
    """Mining energy fills the ASIC containers in order (the last takes the rest); each reports
    (unless it misses the window)."""
    ws, dt = window.start_s, window.seconds
    node_wh = params.asics_per_node * params.asic_w * dt / 3600.0
    left_wh = energy_wh
    last = len(nodes.keys) - 1
    for i, pend in enumerate(nodes.pending):
        part = min(left_wh, node_wh) if i < last else left_wh
        left_wh -= part
        acc = pend.setdefault(0, [ws, 0.0, 0.0, 0.0, 0.0])  # idle containers report zero
        if part > 0:
            energy = part * nodes.bias[i] * (1.0 + rng.normal(0.0, noise.meter_noise))
            acc[1] += max(energy, 0.0)
            acc[3] += part * 3600.0 * params.asic_th_s / params.asic_w * nodes.efficiency[i]
        if window.final or rng.random() >= noise.missing_rate:
            signer.emit(nodes.keys[i], nodes.specs[i], nodes.asset, window.epoch, 0, acc, window.end_s)
            pend.clear()


def simulate_fleet(
    ledger: pd.DataFrame,
    params: FleetParams,
    domain: MeterDomain,
    *,
    leases: Iterable[LeaseTerms] = (),
    noise: NoiseModel | None = None,
    seed: int = 0,
    epoch_seconds: int = DEFAULT_EPOCH_SECONDS,
) -> SimulatedFleet:
    """Readings the fleet would sign for ``ledger`` (see the module docstring for the model)."""
    missing = [c for c in METERED_COLUMNS if c not in ledger.columns]
    if missing:
        raise FleetError(
            f"ledger lacks column(s) {', '.join(missing)}", hint="pass the dispatch backtest's ledger frame"
        )
    noise = noise or NoiseModel()
    terms = tuple(sorted(leases, key=lambda lease: lease.lease_id))
    for lease in terms:
        if lease.asset != params.gpu_asset:
            raise FleetError(
                f"lease {lease.lease_id} is on asset 0x{lease.asset.hex()}, not the fleet's GPU asset",
                hint="simulate the fleet whose GPUs the lease rents (FleetParams.gpu_asset)",
            )
    if len({lease.lease_id for lease in terms}) != len(terms):
        raise FleetError("two leases share an id", hint="give each lease its own id")
    rng = np.random.default_rng(seed)  # draws in a fixed order: keys, errors, then interval by interval
    gpus, asics = _gpu_nodes(params, rng), _asic_nodes(params, rng)
    gpus.bias = 1.0 + rng.normal(0.0, noise.meter_bias, params.gpu_nodes)
    asics.bias = 1.0 + rng.normal(0.0, noise.meter_bias, params.asic_nodes)
    asics.efficiency = np.clip(
        1.0 + rng.normal(0.0, noise.asic_efficiency_spread, params.asic_nodes), 0.8, 1.0
    )
    time = _Timeline.of(ledger, epoch_seconds)
    ai_mw = (ledger["ai_inference_mw"] + ledger["ai_training_mw"] + ledger["ai_spot_mw"]).to_numpy(float)
    inf_share = np.divide(
        ledger["ai_inference_mw"].to_numpy(float), ai_mw, out=np.zeros_like(ai_mw), where=ai_mw > 0
    )
    mining_mw = ledger["mining_mw"].to_numpy(float)
    busy = np.minimum(np.maximum(ledger["gpus_busy"].to_numpy(dtype=np.int64), 0), params.total_gpus)
    signer = _Signer(domain)
    for t in range(len(ledger)):
        window = _Interval(
            int(time.start_s[t]), int(time.end_s[t]), int(time.epochs[t]), bool(time.last_in_epoch[t])
        )
        dt = window.seconds
        if params.gpu_nodes:
            e_ai = ai_mw[t] * dt / 3600.0 * 1e6
            n_busy = int(busy[t])
            per_node = _pack_gpus(n_busy, terms, window.start_s, window.end_s, params)
            if n_busy == 0 and e_ai > 0:
                per_node[0][0] = 0  # idle draw with no whole GPU busy: metered on the first node
            tokens = params.tokens_per_gpu_s
            _gpu_interval(gpus, per_node, n_busy, e_ai, tokens, inf_share[t], window, rng, noise, signer)
        if params.asic_nodes:
            e_btc = max(mining_mw[t], 0.0) * dt / 3600.0 * 1e6
            _asic_interval(asics, e_btc, params, window, rng, noise, signer)
    keys = {k.address: k for k in (*gpus.keys, *asics.keys)}
    return SimulatedFleet(keys, (*gpus.specs, *asics.specs), tuple(signer.out), terms)


def fleet_params_from_site(
    site: Site,
    *,
    gpus_per_node: int = 8,
    asics_per_node: int = 200,
    tokens_per_gpu_s: float = 1_500.0,
) -> FleetParams:
    """Fleet parameters from a :class:`drakewell.site.Site` (GPU servers of ``gpus_per_node``,
    ASIC containers of ``asics_per_node``; watts and hashrate are count-weighted means of its fleets).
    """
    gpu_fleets, asic_fleets = site.gpu_fleets, site.asic_fleets
    n_gpus = sum(f.count for f in gpu_fleets)
    n_asics = sum(f.count for f in asic_fleets)
    gpu_w = sum(f.count * f.unit_power_w for f in gpu_fleets) / n_gpus if n_gpus else 0.0
    asic_w = sum(f.count * f.unit_power_w for f in asic_fleets) / n_asics if n_asics else 0.0
    asic_th = sum(f.count * f.unit_hashrate_th_s for f in asic_fleets) / n_asics if n_asics else 0.0
    return FleetParams(
        gpu_nodes=math.ceil(n_gpus / gpus_per_node) if n_gpus else 0,
        gpus_per_node=gpus_per_node,
        gpu_w=gpu_w,
        asic_nodes=math.ceil(n_asics / asics_per_node) if n_asics else 0,
        asics_per_node=asics_per_node,
        asic_w=asic_w,
        asic_th_s=asic_th,
        tokens_per_gpu_s=tokens_per_gpu_s,
        gpu_asset=asset_id(f"{site.name}:gpu-pool"),
        asic_asset=asset_id(f"{site.name}:asic-pool"),
    )


def synthetic_ledger(
    days: int = 1,
    *,
    start_utc: str = "2025-07-01",
    interval_minutes: int = 15,
    gpus: int = 384,
    gpu_w: float = 1_200.0,
    mining_it_mw: float = 3.0,
    seed: int = 0,
) -> pd.DataFrame:
    """A small ledger with the dispatch ledger's metering columns (demo and tests, no solver).

    Busy GPUs follow a daily cycle with noise; mining takes a random share of its capacity.
    """
    if days <= 0 or interval_minutes <= 0 or gpus < 0:
        raise FleetError("days and interval_minutes must be > 0 and gpus >= 0", hint="e.g. days=1")
    n = days * 24 * 60 // interval_minutes
    index = pd.date_range(start_utc, periods=n, freq=f"{interval_minutes}min", tz="UTC")
    rng = np.random.default_rng(seed)
    hour = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    cycle = 0.6 + 0.3 * np.sin((hour - 9.0) / 24.0 * 2 * np.pi)
    busy = np.clip(np.rint(gpus * (cycle + rng.normal(0.0, 0.05, n))), 0, gpus).astype(np.int64)
    ai_mw = busy * gpu_w / 1e6
    return pd.DataFrame(
        {
            "interval_start_utc": index,
            "hours": interval_minutes / 60.0,
            "ai_inference_mw": ai_mw * 0.6,
            "ai_training_mw": ai_mw * 0.3,
            "ai_spot_mw": ai_mw * 0.1,
            "mining_mw": mining_it_mw * rng.uniform(0.2, 1.0, n),
            "gpus_busy": busy,
        }
    )
