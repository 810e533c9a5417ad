"""Simulated fleet: metered energy equals ledger energy, leases and gaps are carried, ingest accepts all."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from drakewell.dispatch.ledger import LEDGER_COLUMNS
from drakewell.metering.epochs import close_epoch, open_epochs
from drakewell.metering.fleet import (
    ENERGY_TOLERANCE,
    METERED_COLUMNS,
    FleetError,
    FleetParams,
    NoiseModel,
    fleet_params_from_site,
    ledger_energy_wh,
    simulate_fleet,
    synthetic_ledger,
)
from drakewell.metering.ingest import LeaseTerms, MeterStore
from drakewell.metering.kpis import lease_kpis
from drakewell.metering.readings import MeterDomain
from drakewell.store import sqlite_url

PARAMS = FleetParams(
    gpu_nodes=12,
    gpus_per_node=8,
    gpu_w=1_200.0,
    asic_nodes=4,
    asics_per_node=50,
    asic_w=3_500.0,
    asic_th_s=200.0,
)


def _lease(lease_id: int, gpus: int, start: datetime, end: datetime) -> LeaseTerms:
    """A lease on the fleet's GPU asset over ``[start, end)``."""
    return LeaseTerms(lease_id, PARAMS.gpu_asset, gpus, int(start.timestamp()), int(end.timestamp()))


LEASES = (
    _lease(7, 24, datetime(2025, 7, 1, 6, tzinfo=UTC), datetime(2025, 7, 2, 6, tzinfo=UTC)),
    _lease(9, 10, datetime(2025, 7, 1, tzinfo=UTC), datetime(2025, 7, 3, tzinfo=UTC)),
)


def _ledger(days: int = 2, seed: int = 1) -> pd.DataFrame:
    return synthetic_ledger(days, gpus=PARAMS.total_gpus, gpu_w=PARAMS.gpu_w, mining_it_mw=0.7, seed=seed)


def _busy_ledger(days: int = 2, min_busy: int = 40) -> pd.DataFrame:
    """The synthetic ledger with at least ``min_busy`` GPUs busy (AI power follows the GPUs)."""
    ledger = _ledger(days)
    busy = np.maximum(ledger["gpus_busy"].to_numpy(), min_busy)
    ai_mw = busy * PARAMS.gpu_w / 1e6
    return ledger.assign(
        gpus_busy=busy, ai_inference_mw=ai_mw * 0.6, ai_training_mw=ai_mw * 0.3, ai_spot_mw=ai_mw * 0.1
    )


def _within_tolerance(metered: int, ledger_wh: float, n_readings: int) -> bool:
    return abs(metered - ledger_wh) <= ENERGY_TOLERANCE * ledger_wh + n_readings


@pytest.mark.parametrize("missing_rate", [0.0, 0.01, 0.3])
def test_metered_energy_equals_ledger_energy(domain: MeterDomain, missing_rate: float) -> None:
    ledger = _ledger()
    fleet = simulate_fleet(ledger, PARAMS, domain, leases=LEASES, noise=NoiseModel(missing_rate=missing_rate))
    assert _within_tolerance(fleet.energy_wh, ledger_energy_wh(ledger), len(fleet.readings))
    # split by kind: GPU readings carry the AI energy, ASIC readings the mining energy
    ai_wh = float(
        (
            (ledger["ai_inference_mw"] + ledger["ai_training_mw"] + ledger["ai_spot_mw"]) * ledger["hours"]
        ).sum()
        * 1e6
    )
    gpu_wh = sum(s.reading.energy_wh for s in fleet.readings if s.reading.asset == PARAMS.gpu_asset)
    assert abs(gpu_wh - ai_wh) <= ENERGY_TOLERANCE * ai_wh + len(fleet.readings)
    busy_s = int((ledger["gpus_busy"] * ledger["hours"] * 3600).sum())
    assert sum(s.reading.gpu_seconds for s in fleet.readings) == busy_s


def test_energy_mismatch_would_be_caught(domain: MeterDomain) -> None:
    ledger = _ledger()
    fleet = simulate_fleet(ledger, PARAMS, domain)
    doubled = ledger.assign(mining_mw=ledger["mining_mw"] * 1.05)
    assert not _within_tolerance(fleet.energy_wh, ledger_energy_wh(doubled), len(fleet.readings))


def test_missing_windows_are_covered_by_the_next_reading(domain: MeterDomain) -> None:
    ledger = _ledger(days=1)
    full = simulate_fleet(ledger, PARAMS, domain, noise=NoiseModel(missing_rate=0.0))
    gappy = simulate_fleet(ledger, PARAMS, domain, noise=NoiseModel(missing_rate=0.3))
    assert len(gappy.readings) < len(full.readings)
    spans = {s.reading.window_end - s.reading.window_start for s in gappy.readings}
    assert max(spans) > 900  # some readings cover several 15-minute windows
    for node in gappy.keys:
        mine = sorted((s.reading for s in gappy.readings if s.reading.node == node), key=lambda r: r.seq)
        assert [r.seq for r in mine] == list(range(1, len(mine) + 1))
        ends = sorted({r.window_end for r in mine})
        assert ends[-1] == ledger["interval_start_utc"].iloc[-1].timestamp() + 900  # last window reported


def test_every_simulated_reading_is_accepted_and_leases_are_delivered(
    tmp_path: Path, domain: MeterDomain
) -> None:
    ledger = _busy_ledger()
    fleet = simulate_fleet(ledger, PARAMS, domain, leases=LEASES, seed=4)
    store = MeterStore(sqlite_url(tmp_path / "m.sqlite"), domain)
    store.register_nodes(fleet.nodes)
    store.register_leases(fleet.leases)
    result = store.ingest(fleet.readings)
    assert result.rejected == () and result.accepted == len(fleet.readings)
    for asset, epoch in open_epochs(store):
        close_epoch(store, asset, epoch)
    kpis = lease_kpis(store.readings_frame(), LEASES)
    # at least 40 GPUs are busy, more than the leases' 34, so both leases are fully served
    assert set(kpis["lease_id"]) == {7, 9}
    assert np.allclose(kpis["delivery_ratio"], 1.0)
    seven = kpis[kpis["lease_id"] == 7]
    assert list(seven["gpu_hours"]) == [24 * 18.0, 24 * 6.0]  # 06:00 day one to 06:00 day two


def test_leases_beyond_busy_gpus_are_under_delivered(domain: MeterDomain) -> None:
    ledger = _ledger(days=1).assign(gpus_busy=5, ai_inference_mw=0.006, ai_training_mw=0.0, ai_spot_mw=0.0)
    big = [_lease(1, 50, datetime(2025, 7, 1, tzinfo=UTC), datetime(2025, 7, 2, tzinfo=UTC))]
    fleet = simulate_fleet(ledger, PARAMS, domain, leases=big)
    assert {s.reading.lease_id for s in fleet.readings if s.reading.gpu_seconds > 0} == {1}
    assert sum(s.reading.gpu_seconds for s in fleet.readings) == 5 * 86_400


def test_readings_follow_the_dispatch_backtest_ledger(domain: MeterDomain) -> None:
    from drakewell.dispatch import build_ledger, get_policy
    from drakewell.dispatch.backtest import load_backtest_inputs, resolve_site

    site = resolve_site(None)
    inputs = load_backtest_inputs(site)
    ledger = build_ledger(inputs, get_policy("threshold").run(inputs, None)).iloc[:12]  # 3 hours
    params = fleet_params_from_site(site, gpus_per_node=64, asics_per_node=1_000)
    assert params.total_gpus >= sum(f.count for f in site.gpu_fleets)
    fleet = simulate_fleet(ledger, params, domain, seed=2)
    assert _within_tolerance(fleet.energy_wh, ledger_energy_wh(ledger), len(fleet.readings))


def test_bad_ledgers_and_fleets_are_refused(domain: MeterDomain) -> None:
    ledger = _ledger(days=1)
    with pytest.raises(FleetError, match="lacks column"):
        simulate_fleet(ledger.drop(columns=["gpus_busy"]), PARAMS, domain)
    shifted = ledger.assign(interval_start_utc=ledger["interval_start_utc"] + pd.Timedelta(minutes=10))
    with pytest.raises(FleetError, match="straddles an epoch"):
        simulate_fleet(shifted, PARAMS, domain)
    with pytest.raises(FleetError, match="no duration"):
        simulate_fleet(ledger.assign(hours=0.0), PARAMS, domain)
    with pytest.raises(FleetError, match="not the fleet's GPU asset"):
        simulate_fleet(ledger, PARAMS, domain, leases=[replace(LEASES[0], asset=PARAMS.asic_asset)])
    with pytest.raises(FleetError, match="share an id"):
        simulate_fleet(ledger, PARAMS, domain, leases=[LEASES[0], replace(LEASES[1], lease_id=7)])
    with pytest.raises(FleetError, match="gpus_per_node"):
        FleetParams(1, 0, 1.0, 0, 0, 0.0, 0.0)
    with pytest.raises(FleetError, match="negative"):
        FleetParams(-1, 8, 1.0, 0, 0, 0.0, 0.0)
    with pytest.raises(FleetError, match="days"):
        synthetic_ledger(0)


def test_the_fleet_reads_columns_of_the_one_ledger_schema() -> None:
    assert set(METERED_COLUMNS) <= set(LEDGER_COLUMNS)
