"""Child process for the crash test: ingests deterministic batches, printing ACK after each commit."""

from __future__ import annotations

import sys
from functools import cache

from drakewell.metering.ingest import MeterStore, NodeSpec
from drakewell.metering.readings import MeterDomain, Reading, SignedReading, asset_id
from drakewell.metering.signing import NodeKey

DOMAIN = MeterDomain(31337, "0x5fbdb2315678afecb367f032d93f642f64180aa3")
ASSET = asset_id("crash:gpu-pool")
EPOCH = 20_270
KEYS = [NodeKey((9_000 + i).to_bytes(32, "big")) for i in range(20)]
BATCHES = 6
PER_BATCH = 600


def nodes() -> list[NodeSpec]:
    return [NodeSpec(k.address, ASSET, "gpu", gpus=8, gpu_w=1_000.0) for k in KEYS]


@cache
def batches() -> list[list[SignedReading]]:
    out: list[list[SignedReading]] = []
    seq = 0
    for _ in range(BATCHES):
        batch = []
        for j in range(PER_BATCH // len(KEYS)):
            seq += 1
            start = EPOCH * 86_400 + (seq - 1) * 60
            for k in KEYS:
                r = Reading(k.address, ASSET, EPOCH, seq, start, start + 60, 50 + j, 480, 0, 0, 0)
                batch.append(k.sign(r, DOMAIN))
        out.append(batch)
    return out


def main(url: str) -> None:
    store = MeterStore(url, DOMAIN)
    for i, batch in enumerate(batches()):
        result = store.ingest(batch)
        print(f"ACK {i} {result.acknowledged}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
