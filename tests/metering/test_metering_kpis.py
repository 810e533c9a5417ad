"""KPIs from hand-made readings: load rate, uptime, tokens per joule, J/TH, lease delivery."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from metering_helpers import ASIC_ASSET, DAY, EPOCH, GPU_ASSET

from drakewell.metering.ingest import LeaseTerms, MeterStore
from drakewell.metering.kpis import LEASE_KPI_COLUMNS, NODE_KPI_COLUMNS, lease_kpis, node_kpis
from drakewell.metering.readings import MeterDomain
from drakewell.metering.signing import NodeKey


def test_node_kpis_by_hand(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey, asic_key: NodeKey
) -> None:
    start = EPOCH * DAY
    gpu = [
        # two leases sharing the first hour's window (counted once for uptime), then an idle hour
        make_reading(
            seq=1,
            window_start=start,
            window_end=start + 3_600,
            gpu_seconds=4 * 3_600,
            energy_wh=4_000,
            tokens=10**7,
            lease_id=3,
        ),
        make_reading(
            seq=2,
            window_start=start,
            window_end=start + 3_600,
            gpu_seconds=2 * 3_600,
            energy_wh=2_000,
            tokens=0,
            lease_id=4,
        ),
        make_reading(
            seq=3, window_start=start + 3_600, window_end=start + 7_200, gpu_seconds=0, energy_wh=0, tokens=0
        ),
    ]
    asic = [
        make_reading(
            key=asic_key,
            asset=ASIC_ASSET,
            seq=1,
            window_start=start,
            window_end=start + 3_600,
            energy_wh=27_000,
            gpu_seconds=0,
            tokens=0,
            hashes_th=7_200_000,
        ),
    ]
    assert (
        store.ingest([*(gpu_key.sign(r, domain) for r in gpu), asic_key.sign(asic[0], domain)]).accepted == 4
    )
    frame = node_kpis(store.readings_frame(), store.nodes).set_index("node")
    g = frame.loc[gpu_key.address]
    assert g["load_rate"] == (6 * 3_600) / (8 * DAY)
    assert g["uptime"] == 7_200 / DAY
    assert g["tokens_per_joule"] == 10**7 / (6_000 * 3_600)
    assert math.isnan(g["j_per_th"])
    a = frame.loc[asic_key.address]
    assert a["j_per_th"] == 27_000 * 3_600 / 7_200_000  # 13.5 J/TH
    assert a["uptime"] == 3_600 / DAY
    assert math.isnan(a["load_rate"]) and math.isnan(a["tokens_per_joule"])
    assert list(frame.reset_index().columns) == NODE_KPI_COLUMNS


def test_lease_kpis_against_the_lease_book(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey
) -> None:
    start = EPOCH * DAY
    readings = [
        make_reading(
            seq=1,
            window_start=start,
            window_end=start + 3_600,
            gpu_seconds=8 * 3_600,
            energy_wh=7_000,
            lease_id=3,
        ),
        make_reading(
            seq=2,
            window_start=start + 3_600,
            window_end=start + 7_200,
            gpu_seconds=4 * 3_600,
            energy_wh=3_000,
            lease_id=3,
        ),
    ]
    store.ingest([gpu_key.sign(r, domain) for r in readings])
    # the lease runs from 23:00 the day before to 02:00: 2 h of its 8 GPUs fall in the epoch
    start, end = datetime(2025, 6, 30, 23, tzinfo=UTC), datetime(2025, 7, 1, 2, tzinfo=UTC)
    book = [LeaseTerms(3, GPU_ASSET, 8, int(start.timestamp()), int(end.timestamp()))]
    frame = lease_kpis(store.readings_frame(), book)
    row = frame.iloc[0]
    assert (row["lease_id"], row["epoch"], row["gpu_hours"], row["energy_wh"]) == (3, EPOCH, 12.0, 10_000)
    assert row["contracted_gpu_hours"] == 16.0
    assert row["delivery_ratio"] == 12.0 / 16.0
    assert math.isnan(lease_kpis(store.readings_frame()).iloc[0]["delivery_ratio"])  # no book: no ratio


def test_empty_inputs_give_empty_frames() -> None:
    empty = pd.DataFrame(columns=["node", "asset", "epoch", "lease_id"])
    assert list(node_kpis(empty, {}).columns) == NODE_KPI_COLUMNS
    assert list(lease_kpis(empty).columns) == LEASE_KPI_COLUMNS
    assert node_kpis(empty, {}).empty and lease_kpis(empty).empty
