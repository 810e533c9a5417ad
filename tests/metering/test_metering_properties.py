"""Properties of ingest: any interleaving of replays and conflicting readings, split into any batches,
stores the first version of each (node, seq) exactly once and keeps every other version as evidence."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metering_helpers import DAY, EPOCH, GPU_ASSET

from drakewell.metering.ingest import MeterStore, NodeSpec
from drakewell.metering.readings import MeterDomain, Reading, SignedReading
from drakewell.metering.signing import NodeKey
from drakewell.store import sqlite_url

DOMAIN = MeterDomain(31337, "0x5fbdb2315678afecb367f032d93f642f64180aa3")
KEYS = [NodeKey((300 + i).to_bytes(32, "big")) for i in range(2)]
_CACHE: dict[tuple[int, int, int], SignedReading] = {}


def _signed(node: int, seq: int, variant: int) -> SignedReading:
    key = (node, seq, variant)
    if key not in _CACHE:
        start = EPOCH * DAY + seq * 60
        r = Reading(KEYS[node].address, GPU_ASSET, EPOCH, seq, start, start + 60, 10 + variant, 60, 0, 0, 0)
        _CACHE[key] = KEYS[node].sign(r, DOMAIN)
    return _CACHE[key]


events = st.lists(st.tuples(st.integers(0, 1), st.integers(1, 6), st.integers(0, 2)), min_size=1, max_size=30)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=events, cuts=st.lists(st.integers(1, 30), max_size=5))
def test_first_version_wins_and_conflicts_are_evidence(
    tmp_path_factory: Any, stream: list[Any], cuts: list[int]
) -> None:
    path: Path = tmp_path_factory.mktemp("prop") / "m.sqlite"
    store = MeterStore(sqlite_url(path), DOMAIN)
    store.register_nodes([NodeSpec(k.address, GPU_ASSET, "gpu", gpus=1, gpu_w=1_000.0) for k in KEYS])
    batch_edges = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    acknowledged = refused = 0
    for lo, hi in pairwise(batch_edges):
        result = store.ingest([_signed(*e) for e in stream[lo:hi]])
        acknowledged += result.acknowledged
        refused += len(result.rejected)
        assert {str(r.reason) for r in result.rejected} <= {"equivocation"}
    first: dict[tuple[int, int], int] = {}
    for node, seq, variant in stream:
        first.setdefault((node, seq), variant)
    stored = {(s.reading.node, s.reading.seq): s for s in store.signed_readings()}
    assert stored == {(KEYS[n].address, q): _signed(n, q, v) for (n, q), v in first.items()}
    conflicts = {(n, q, v) for n, q, v in stream if v != first[(n, q)]}
    assert len(store.equivocations()) == len(conflicts)
    assert acknowledged + refused == len(stream)
    assert refused == sum(1 for n, q, v in stream if v != first[(n, q)])
