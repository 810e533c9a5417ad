"""Capacity rounds over a metered fleet: challenge GPU nodes and tally miners' shares, per epoch.

A round records capacity leaves (:mod:`drakewell.metering.capacity`) for the epochs of a meter store
that are still open, so they are in the capacity root when the epochs close:

- GPU nodes: each epoch, ``per_epoch`` nodes drawn at random (all of them if fewer) answer a real
  challenge (:func:`drakewell.proofs.gpu.run_challenge`, size ``n``, ``k`` rows checked). The
  node's answer is computed here, on this machine's CPU, so the verified rate is a lower bound
  measured on that CPU, not on the node's GPUs: small next to what a node declares. A node
  listed in ``dishonest`` fakes ``fake_fraction`` of its rows and is caught with the probability
  of :func:`~drakewell.proofs.gpu.detection_probability`.
- ASIC nodes: the shares a miner that really hashed what its readings claim would send to the
  Stratum proxy at ``pool_difficulty``: their count is drawn from Poisson with mean
  ``hashes / work per share``, a few in :data:`HARDWARE_ERROR_RATE` rejected; the verified rate
  is the lower end of the 95 % interval of :func:`~drakewell.proofs.stratum.estimate_hashrate`
  over the seconds its readings cover.
  (The proxy, :mod:`drakewell.proofs.proxy`, counts real shares; this stands in for one.)

The declared rates are the node's hardware: ``gpus · declared_ops_per_gpu`` int8 operations per
second, and the hashes its readings claim over the seconds they cover.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

import numpy as np

from drakewell.core.errors import ProofError
from drakewell.core.jsontypes import JsonObject
from drakewell.metering.capacity import capacity_root, record_capacity
from drakewell.metering.ingest import MeterStore, NodeSpec
from drakewell.metering.kpis import covered_seconds
from drakewell.proofs.arrays import exact_int8_matmul_numpy
from drakewell.proofs.gpu import (
    Challenge,
    NodeWork,
    answer_challenge,
    commit_product,
    expand_matrices,
    new_challenge,
    run_challenge,
)
from drakewell.proofs.stratum import estimate_hashrate, hashes_per_share, target_for_difficulty

H100_INT8_OPS_PER_S = 1_979 * 10**12  # NVIDIA H100 SXM, dense int8 tensor throughput
DEFAULT_POOL_DIFFICULTY = 2**20
HARDWARE_ERROR_RATE = 0.001


@dataclass
class RoundResult:
    """What a round did: GPU challenges run and their outcome, miners' shares, flagged nodes."""

    challenges: int = 0
    passed: int = 0
    failed: int = 0
    asic_node_epochs: int = 0
    shares_accepted: int = 0
    shares_rejected: int = 0
    flagged: list[tuple[int, str]] = field(default_factory=list)  # (epoch, node)
    seconds: float = 0.0

    def line(self) -> str:
        flagged = f"{len(self.flagged)} node-epoch{'s' if len(self.flagged) != 1 else ''} flagged"
        return (
            f"{self.challenges:,} GPU challenges ({self.passed:,} passed, {self.failed:,} failed), "
            f"{self.shares_accepted:,} miner shares over {self.asic_node_epochs:,} node-epochs, {flagged}"
        )

    def to_json(self) -> JsonObject:
        return {
            "challenges": self.challenges,
            "challengesPassed": self.passed,
            "challengesFailed": self.failed,
            "asicNodeEpochs": self.asic_node_epochs,
            "sharesAccepted": self.shares_accepted,
            "sharesRejected": self.shares_rejected,
            "flagged": [{"epoch": e, "node": n} for e, n in self.flagged],
            "seconds": round(self.seconds, 3),
        }


def _honest_node(ch: Challenge) -> NodeWork:
    return answer_challenge(ch, "numpy")


def _faking_node(fraction: float, rng: np.random.Generator) -> Callable[[Challenge], NodeWork]:
    """A node that computes only ``1 − fraction`` of the rows and commits random values for the rest."""

    def node(ch: Challenge) -> NodeWork:
        a, b = expand_matrices(ch)
        faked = rng.choice(ch.n, size=max(1, round(fraction * ch.n)), replace=False)
        keep = np.setdiff1d(np.arange(ch.n), faked)
        c = np.empty((ch.n, ch.n), dtype=np.int32)
        c[keep] = exact_int8_matmul_numpy(a[keep], b)
        c[faked] = rng.integers(-(2**20), 2**20, size=(len(faked), ch.n), dtype=np.int32)
        return commit_product(ch, c)

    return node


@dataclass
class _Round:
    """One capacity round's settings, random stream and tally."""

    store: MeterStore
    rng: np.random.Generator
    result: RoundResult
    liars: set[str]
    per_epoch: int
    n: int
    k: int
    declared_ops_per_gpu: float
    fake_fraction: float
    work_per_share: float
    now_s: float | None

    def challenge_gpus(self, epoch: int, asset: bytes, members: list[NodeSpec]) -> None:
        """A random sample of the asset's GPU nodes answers one real challenge each."""
        if capacity_root(self.store.engine, asset, epoch) is not None:
            return
        rng, result = self.rng, self.result
        picks = rng.choice(len(members), size=min(self.per_epoch, len(members)), replace=False)
        for i in sorted(int(p) for p in picks):
            spec = members[i]
            honest = spec.address.lower() not in self.liars
            node = _honest_node if honest else _faking_node(self.fake_fraction, rng)
            verdict = run_challenge(new_challenge(self.n, seed=rng.bytes(32)), node, k=self.k, rng=rng)
            result.challenges += 1
            result.passed += int(verdict.passed)
            result.failed += int(not verdict.passed)
            if not verdict.passed:
                result.flagged.append((epoch, spec.address))
            record_capacity(
                self.store.engine,
                node=spec.address,
                asset=asset,
                epoch=epoch,
                kind="gpu",
                verified_per_s=int(verdict.tops_lower_bound * 1e12),
                declared_per_s=int(spec.gpus * self.declared_ops_per_gpu),
                passed=int(verdict.passed),
                failed=int(not verdict.passed),
                now_s=self.now_s,
            )

    def tally_asics(self, epoch: int, asics: set[str]) -> None:
        """The shares the ASIC nodes' claimed hashes would have produced, checked as the proxy would."""
        frame = self.store.readings_frame(None, epoch)
        if frame.empty:
            return
        frame = frame[frame["node"].isin(list(asics))]
        rng, result = self.rng, self.result
        for (node_addr, asset_hex), g in frame.groupby(["node", "asset"], sort=True):
            asset = bytes.fromhex(str(asset_hex)[2:])
            if capacity_root(self.store.engine, asset, epoch) is not None:
                continue
            hashes = float(g["hashes_th"].astype(np.int64).sum()) * 1e12
            if hashes <= 0:
                continue
            accepted = int(rng.poisson(hashes / self.work_per_share))
            rejected = int(rng.binomial(accepted, HARDWARE_ERROR_RATE)) if accepted else 0
            up_s = max(1, covered_seconds(g))  # the rate while up, as capacity_kpis reads it
            estimate = estimate_hashrate(accepted, up_s, self.work_per_share)
            leaf = record_capacity(
                self.store.engine,
                node=str(node_addr),
                asset=asset,
                epoch=epoch,
                kind="asic",
                verified_per_s=int(estimate.low_per_s),
                declared_per_s=int(hashes / up_s),
                passed=accepted,
                failed=rejected,
                now_s=self.now_s,
            )
            result.asic_node_epochs += 1
            result.shares_accepted += accepted
            result.shares_rejected += rejected
            if leaf.flagged:
                result.flagged.append((epoch, leaf.node))


def run_capacity_round(
    store: MeterStore,
    nodes: Iterable[NodeSpec],
    epochs: Iterable[int],
    *,
    seed: int,
    per_epoch: int = 8,
    n: int = 64,
    k: int = 16,
    declared_ops_per_gpu: float = H100_INT8_OPS_PER_S,
    pool_difficulty: float = DEFAULT_POOL_DIFFICULTY,
    dishonest: Collection[str] = (),
    fake_fraction: float = 0.5,
    now_s: float | None = None,
) -> RoundResult:
    """Challenge and tally the fleet's nodes for each open epoch (module docstring); record leaves.

    Epochs already closed are skipped (their capacity root is fixed). Deterministic for a seed.
    """
    if per_epoch < 0 or not 0 < fake_fraction <= 1:
        raise ProofError(
            f"per_epoch {per_epoch}, fake_fraction {fake_fraction}",
            hint="challenge 0 or more nodes per epoch; a dishonest node fakes a fraction in (0, 1]",
        )
    t0 = time.perf_counter()
    specs = list(nodes)
    gpus: dict[bytes, list[NodeSpec]] = {}
    for spec in specs:
        if spec.kind == "gpu":
            gpus.setdefault(spec.asset, []).append(spec)
    asics = {s.address for s in specs if s.kind == "asic"}
    r = _Round(
        store,
        np.random.default_rng(seed),
        RoundResult(),
        {str(a).lower() for a in dishonest},
        per_epoch,
        n,
        k,
        declared_ops_per_gpu,
        fake_fraction,
        hashes_per_share(target_for_difficulty(pool_difficulty)),
        now_s,
    )
    for epoch in epochs:
        for asset, members in gpus.items():
            r.challenge_gpus(int(epoch), asset, members)
        if asics:
            r.tally_asics(int(epoch), asics)
    result = r.result
    result.seconds = time.perf_counter() - t0
    return result
