"""Key performance indicators of metered delivery, as frames (used by settlement and the report).

Per node, asset and epoch (:func:`node_kpis`), with ``T`` the epoch length in seconds:

- ``load_rate`` = Σ gpuSeconds ÷ (GPUs · T) — busy over available GPU-seconds (GPU nodes);
- ``uptime`` = seconds covered by the node's distinct reading windows ÷ T (a missed window that
  a later reading covers counts as up; windows are merged, so overlaps count once);
- ``tokens_per_joule`` = Σ tokens ÷ (Σ energyWh · 3600) (GPU nodes; inference efficiency);
- ``j_per_th`` = Σ energyWh · 3600 ÷ Σ hashesTh (ASIC nodes);
- plus the sums ``energy_wh``, ``gpu_seconds``, ``hashes_th``, ``tokens`` and ``n_readings``.

Verified beside declared (:func:`capacity_kpis`), from the capacity leaves of
:mod:`drakewell.metering.capacity`: ``declared_per_s`` and ``verified_per_s`` (int8 ops/s for GPUs,
hashes/s for ASICs), ``verified_ratio``, challenges passed and failed, ``flagged``, and

- ``load_rate_verified`` and ``tokens_per_joule_verified`` (GPU nodes): the declared value when the
  node passed at least one challenge and failed none, 0 when it failed one, NaN when unchallenged;
- ``j_per_th_verified`` (ASIC nodes) = Σ energyWh · 3600 ÷ (verified hashes/s · uptime · T ÷ 10¹²):
  energy over the hashes the shares prove at the lower end of their interval (so an upper bound
  on J/TH); NaN when flagged or without shares.

Per lease and epoch (:func:`lease_kpis`): delivered ``gpu_hours`` and ``energy_wh``; given the
lease book (:class:`~drakewell.metering.ingest.LeaseTerms`), the contracted GPU-hours that fall
in the epoch and ``delivery_ratio`` = delivered ÷ contracted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from drakewell.core.jsontypes import JsonObject
from drakewell.metering.ingest import LeaseTerms, NodeSpec
from drakewell.metering.readings import DEFAULT_EPOCH_SECONDS

NODE_KPI_COLUMNS = [
    "node",
    "asset",
    "epoch",
    "kind",
    "n_readings",
    "energy_wh",
    "gpu_seconds",
    "hashes_th",
    "tokens",
    "load_rate",
    "uptime",
    "tokens_per_joule",
    "j_per_th",
]
_LEAF_COLUMNS = ["declared_per_s", "verified_per_s", "challenges_passed", "challenges_failed", "flagged"]
CAPACITY_KPI_COLUMNS = [
    *NODE_KPI_COLUMNS,
    *_LEAF_COLUMNS,
    "verified_ratio",
    "load_rate_verified",
    "tokens_per_joule_verified",
    "j_per_th_verified",
]
LEASE_KPI_COLUMNS = [
    "lease_id",
    "asset",
    "epoch",
    "gpu_hours",
    "energy_wh",
    "contracted_gpu_hours",
    "delivery_ratio",
]


def covered_seconds(windows: pd.DataFrame) -> int:
    """Seconds covered by the windows of a frame of readings (overlaps counted once)."""
    spans = sorted(
        set(zip(windows["window_start"].astype(int), windows["window_end"].astype(int), strict=True))
    )
    total, cur_s, cur_e = 0, None, None
    for s, e in spans:
        if cur_e is None or s > cur_e:
            if cur_e is not None and cur_s is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None and cur_s is not None:
        total += cur_e - cur_s
    return total


def node_kpis(
    readings: pd.DataFrame,
    nodes: Mapping[str, NodeSpec],
    *,
    epoch_seconds: int = DEFAULT_EPOCH_SECONDS,
) -> pd.DataFrame:
    """One row per (node, asset, epoch) of a ``meter_readings`` frame (see module docstring)."""
    if readings.empty:
        return pd.DataFrame(columns=NODE_KPI_COLUMNS)
    rows = []
    for (node, asset, epoch), g in readings.groupby(["node", "asset", "epoch"], sort=True):
        spec = nodes.get(str(node))
        energy = int(g["energy_wh"].astype(np.int64).sum())
        gpu_s = int(g["gpu_seconds"].astype(np.int64).sum())
        hashes = int(g["hashes_th"].astype(np.int64).sum())
        tokens = int(g["tokens"].astype(np.int64).sum())
        joules = energy * 3600.0
        kind = spec.kind if spec is not None else ("asic" if hashes > 0 else "gpu")
        gpus = spec.gpus if spec is not None else 0
        rows.append(
            {
                "node": node,
                "asset": asset,
                "epoch": int(epoch),
                "kind": kind,
                "n_readings": len(g),
                "energy_wh": energy,
                "gpu_seconds": gpu_s,
                "hashes_th": hashes,
                "tokens": tokens,
                "load_rate": gpu_s / (gpus * epoch_seconds) if gpus else np.nan,
                "uptime": covered_seconds(g) / epoch_seconds,
                "tokens_per_joule": tokens / joules if kind == "gpu" and joules > 0 else np.nan,
                "j_per_th": joules / hashes if kind == "asic" and hashes > 0 else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=NODE_KPI_COLUMNS)


def capacity_kpis(
    node_frame: pd.DataFrame,
    capacity: pd.DataFrame,
    *,
    epoch_seconds: int = DEFAULT_EPOCH_SECONDS,
) -> pd.DataFrame:
    """:func:`node_kpis` rows with verified values beside declared ones (see module docstring).

    ``capacity`` is a frame of capacity leaves (``drakewell.metering.capacity.capacity_frame``).
    """
    if node_frame.empty:
        return pd.DataFrame(columns=CAPACITY_KPI_COLUMNS)
    cap = capacity.rename(columns={"passed": "challenges_passed", "failed": "challenges_failed"})
    cap = cap[["node", "asset", "epoch", *_LEAF_COLUMNS]]
    out = node_frame.merge(cap, on=["node", "asset", "epoch"], how="left")
    declared = out["declared_per_s"].astype(float)
    verified = out["verified_per_s"].astype(float)
    out["verified_ratio"] = np.where(declared > 0, verified / declared.where(declared > 0, 1.0), np.nan)
    passed = out["challenges_passed"].fillna(0).astype(np.int64)
    failed = out["challenges_failed"].fillna(0).astype(np.int64)
    flagged = out["flagged"].astype("boolean").fillna(False).astype(bool)
    out["challenges_passed"], out["challenges_failed"], out["flagged"] = passed, failed, flagged
    gpu = out["kind"] == "gpu"
    proven = gpu & (passed > 0) & ~flagged
    for col in ("load_rate", "tokens_per_joule"):
        out[f"{col}_verified"] = np.where(proven, out[col], np.where(gpu & flagged, 0.0, np.nan))
    joules = out["energy_wh"].astype(float) * 3600.0
    proven_th = verified * out["uptime"].astype(float) * epoch_seconds / 1e12
    asic_ok = (out["kind"] == "asic") & ~flagged & (proven_th > 0)
    out["j_per_th_verified"] = np.where(asic_ok, joules / proven_th.where(proven_th > 0, 1.0), np.nan)
    return out[CAPACITY_KPI_COLUMNS]


def _joules(frame: pd.DataFrame) -> pd.Series:
    return frame["energy_wh"].astype(float) * 3600.0


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 and math.isfinite(num / den) else None


def capacity_totals(frame: pd.DataFrame) -> JsonObject:
    """Verified beside declared for a set of :func:`capacity_kpis` rows (an asset's epoch, or more).

    - ``loadRate``: ``declared`` is the mean load rate of the GPU node-epochs; ``verified`` the mean
      of ``load_rate_verified`` over the node-epochs that were challenged (a failed challenge counts
      0); ``coverage`` the share of GPU node-epochs that were challenged at all.
    - ``tokensPerJoule``: Σ tokens ÷ Σ joules of the GPU node-epochs (declared), and of the
      challenged ones with a flagged node's tokens counted as 0 (verified).
    - ``jPerTh``: Σ joules ÷ Σ TH of the ASIC node-epochs from their readings (declared), and over
      the hashes their shares prove (verified; node-epochs without shares or flagged left out).
    - ``challengesPassed``/``challengesFailed`` count GPU challenges; ``sharesAccepted``/
      ``sharesRejected`` the miners' shares; ``flaggedNodes`` lists every flagged node once.

    A figure with nothing to stand on is ``None`` (JSON ``null``).
    """
    if frame.empty:
        return {
            "nodeEpochs": 0,
            "challengesPassed": 0,
            "challengesFailed": 0,
            "sharesAccepted": 0,
            "sharesRejected": 0,
            "flaggedNodes": [],
            "loadRate": {"declared": None, "verified": None, "coverage": None},
            "tokensPerJoule": {"declared": None, "verified": None},
            "jPerTh": {"declared": None, "verified": None},
        }
    gpu = frame[frame["kind"] == "gpu"]
    asic = frame[frame["kind"] == "asic"]
    checked = gpu[(gpu["challenges_passed"] + gpu["challenges_failed"]) > 0]
    proven_tokens = checked["tokens"].astype(float).where(~checked["flagged"].astype(bool), 0.0)
    asic_ok = asic[asic["j_per_th_verified"].notna()]
    proven_th = (_joules(asic_ok) / asic_ok["j_per_th_verified"].astype(float)).sum()
    load = gpu["load_rate"].astype(float).dropna()
    load_verified = checked["load_rate_verified"].astype(float).dropna()
    return {
        "nodeEpochs": len(frame),
        "challengesPassed": int(gpu["challenges_passed"].sum()),
        "challengesFailed": int(gpu["challenges_failed"].sum()),
        "sharesAccepted": int(asic["challenges_passed"].sum()),
        "sharesRejected": int(asic["challenges_failed"].sum()),
        "flaggedNodes": sorted(set(frame.loc[frame["flagged"].astype(bool), "node"].astype(str))),
        "loadRate": {
            "declared": float(load.mean()) if len(load) else None,
            "verified": float(load_verified.mean()) if len(load_verified) else None,
            "coverage": _ratio(len(checked), len(gpu)),
        },
        "tokensPerJoule": {
            "declared": _ratio(float(gpu["tokens"].astype(float).sum()), float(_joules(gpu).sum())),
            "verified": _ratio(float(proven_tokens.sum()), float(_joules(checked).sum())),
        },
        "jPerTh": {
            "declared": _ratio(float(_joules(asic).sum()), float(asic["hashes_th"].astype(float).sum())),
            "verified": _ratio(float(_joules(asic_ok).sum()), float(proven_th)),
        },
    }


def lease_kpis(
    readings: pd.DataFrame,
    leases: Iterable[LeaseTerms] = (),
    *,
    epoch_seconds: int = DEFAULT_EPOCH_SECONDS,
) -> pd.DataFrame:
    """Delivered GPU-hours per lease and epoch, against the lease's contracted GPU-hours if given."""
    terms = {lease.lease_id: lease for lease in leases}
    leased = readings[readings["lease_id"].astype(str) != "0"] if not readings.empty else readings
    if leased.empty:
        return pd.DataFrame(columns=LEASE_KPI_COLUMNS)
    rows = []
    for (lease, asset, epoch), g in leased.groupby(["lease_id", "asset", "epoch"], sort=True):
        lid = int(lease)
        gpu_h = int(g["gpu_seconds"].astype(np.int64).sum()) / 3600.0
        contracted = np.nan
        if lid in terms:
            e0 = int(epoch) * epoch_seconds
            contracted = terms[lid].max_gpu_seconds(e0, e0 + epoch_seconds) / 3600.0
        rows.append(
            {
                "lease_id": lid,
                "asset": asset,
                "epoch": int(epoch),
                "gpu_hours": gpu_h,
                "energy_wh": int(g["energy_wh"].astype(np.int64).sum()),
                "contracted_gpu_hours": contracted,
                "delivery_ratio": gpu_h / contracted if contracted and contracted > 0 else np.nan,
            }
        )
    return (
        pd.DataFrame(rows, columns=LEASE_KPI_COLUMNS)
        .sort_values(["lease_id", "epoch"])
        .reset_index(drop=True)
    )
