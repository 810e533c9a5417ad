"""The demo's proofs of capacity: challenge the simulated fleet while its epochs are open, then
report each epoch's capacity root and the verified-beside-declared KPIs.

Called from the metering step of :func:`drakewell.demo.market.run_market` (before the epochs close,
so the capacity leaves are in the roots) and again after settlement for the summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from drakewell.metering.capacity import capacity_epochs, capacity_frame
from drakewell.metering.ingest import MeterStore, NodeSpec
from drakewell.metering.kpis import capacity_kpis, capacity_totals, node_kpis
from drakewell.proofs.rounds import RoundResult, run_capacity_round
from drakewell.report.summary import CapacityRoot, CapacitySummary, ChallengeSize

if TYPE_CHECKING:
    from drakewell.core.jsontypes import JsonObject, JsonValue

GPU_CHALLENGES_PER_EPOCH = 8  # GPU nodes challenged per epoch, drawn at random
CHALLENGE_N = 64  # small: the simulated nodes' products run on this machine's CPU
CHALLENGE_K = 16
DISHONEST_FAKE_FRACTION = 0.25  # the one dishonest node skips a quarter of its product


def run_demo_challenges(
    store: MeterStore, nodes: Sequence[NodeSpec], epochs: Iterable[int], *, seed: int
) -> RoundResult:
    """A month of capacity rounds: each epoch a sample of GPU nodes answers a challenge and the
    miners' shares are tallied; in the middle epoch one more GPU node, which fakes part of its
    product, is challenged (and, with ``k = 16`` rows checked, caught: 1 − 0.75¹⁶ ≈ 99 %)."""
    epochs = [int(e) for e in epochs]
    result = run_capacity_round(
        store, nodes, epochs, seed=seed, per_epoch=GPU_CHALLENGES_PER_EPOCH, n=CHALLENGE_N, k=CHALLENGE_K
    )
    gpus = [n for n in nodes if n.kind == "gpu"]
    if gpus and epochs:
        liar = gpus[len(gpus) // 2]
        extra = run_capacity_round(
            store,
            [liar],
            [epochs[len(epochs) // 2]],
            seed=seed + 1,
            n=CHALLENGE_N,
            k=CHALLENGE_K,
            dishonest=[liar.address],
            fake_fraction=DISHONEST_FAKE_FRACTION,
        )
        result.challenges += extra.challenges
        result.passed += extra.passed
        result.failed += extra.failed
        result.flagged += extra.flagged
        result.seconds += extra.seconds
    return result


def _asset_kpis(store: MeterStore, asset: bytes, leaves: pd.DataFrame) -> JsonObject:
    """capacity_totals over the node-epochs that have a capacity leaf (what was checked)."""
    mine = leaves[leaves["asset"] == "0x" + asset.hex()]
    frames = []
    for epoch, g in mine.groupby("epoch", sort=True):
        readings = store.readings_frame(asset, int(epoch))
        frames.append(readings[readings["node"].isin(set(g["node"]))])
    readings = pd.concat(frames, ignore_index=True) if frames else store.readings_frame(asset, -1)
    rows = capacity_kpis(node_kpis(readings, store.nodes, epoch_seconds=store.epoch_seconds), mine)
    return capacity_totals(rows)


def capacity_summary(
    store: MeterStore, result: RoundResult, *, gpu_asset: bytes, asic_asset: bytes, epochs: Sequence[int]
) -> CapacitySummary:
    """For the demo's summary: the round, each epoch's capacity root (GPU pool), and per asset the
    KPIs of the checked node-epochs, declared beside verified, with the share of node-epochs
    challenged (``coverage``)."""
    leaves = capacity_frame(store.engine)
    per_epoch = {e["epoch"]: e for e in capacity_epochs(store.engine, gpu_asset)}
    roots = [
        CapacityRoot(epoch=int(e), capacityRoot=per_epoch.get(int(e), {}).get("capacityRoot")) for e in epochs
    ]
    gpu_nodes = sum(1 for n in store.nodes.values() if n.kind == "gpu" and n.asset == gpu_asset)
    gpu = _asset_kpis(store, gpu_asset, leaves)
    load_rate = gpu["loadRate"]
    if isinstance(load_rate, dict):
        node_epochs = gpu["nodeEpochs"]
        load_rate["coverage"] = (
            node_epochs / (gpu_nodes * len(epochs))
            if gpu_nodes and epochs and isinstance(node_epochs, int | float)
            else None
        )
    closed = [r.capacityRoot for r in roots if r.capacityRoot is not None]
    return CapacitySummary(
        round=result.to_json(),
        gpu_pool={"asset": "0x" + gpu_asset.hex(), **gpu, "lastCapacityRoot": closed[-1] if closed else None},
        miners={"asset": "0x" + asic_asset.hex(), **_asset_kpis(store, asic_asset, leaves)},
        roots=roots,
        challenge=ChallengeSize(n=CHALLENGE_N, k=CHALLENGE_K, per_epoch=GPU_CHALLENGES_PER_EPOCH),
    )


def _at(obj: JsonValue, *path: str) -> JsonValue:
    """The value at ``path`` in nested JSON objects (None where one is missing)."""
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _pct(v: JsonValue) -> str:
    return f"{v:.1%}" if isinstance(v, int | float) else "n/a"


def _num(v: JsonValue, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, int | float) else "n/a"


def summary_rows(c: CapacitySummary | None) -> list[tuple[str, str]]:
    """Rows of the demo's printed summary table for its ``capacity`` entry (none if absent)."""
    if c is None:
        return []
    r, g, m = c.round, c.gpu_pool, c.miners
    flagged_rows = r.get("flagged")
    flagged = (
        ", ".join(
            f"{_at(f, 'node')!s:.10}… (epoch {_at(f, 'epoch')})"
            for f in (flagged_rows if isinstance(flagged_rows, list) else [])
        )
        or "none"
    )
    return [
        ("GPU challenges passed / failed", f"{r['challengesPassed']:,} / {r['challengesFailed']:,}"),
        ("miner shares accepted / rejected", f"{r['sharesAccepted']:,} / {r['sharesRejected']:,}"),
        ("flagged nodes", flagged),
        (
            "load rate declared / verified",
            f"{_pct(_at(g, 'loadRate', 'declared'))} / {_pct(_at(g, 'loadRate', 'verified'))} "
            f"({_pct(_at(g, 'loadRate', 'coverage'))} of node-epochs challenged)",
        ),
        (
            "tokens/J declared / verified",
            f"{_num(_at(g, 'tokensPerJoule', 'declared'), '.3f')} / "
            f"{_num(_at(g, 'tokensPerJoule', 'verified'), '.3f')}",
        ),
        (
            "J/TH declared / verified",
            f"{_num(_at(m, 'jPerTh', 'declared'), '.2f')} / {_num(_at(m, 'jPerTh', 'verified'), '.2f')}",
        ),
        ("capacity root (last epoch)", str(g["lastCapacityRoot"])),
    ]
