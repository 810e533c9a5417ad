"""The dashboard's proofs-of-capacity panel in a real headless Chromium: the capacity root of a
closed epoch, verified beside declared KPIs, and a node flagged for a failed challenge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import OPERATOR_KEY
from api_live_server import serve

from drakewell.api.app import AppState, create_app
from drakewell.metering import MeterDomain, MeterStore, close_epoch, simulate_fleet
from drakewell.metering.access import MeterAccess
from drakewell.metering.fleet import FleetParams, synthetic_ledger
from drakewell.proofs.rounds import run_capacity_round

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def capacity_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A meter store with one day of a small fleet, a capacity round (one GPU node faking its
    product) and the GPU asset's epoch closed; the miners' epoch left open."""
    db = tmp_path_factory.mktemp("capacity") / "meter.sqlite"
    store = MeterStore(f"sqlite:///{db}", MeterDomain(31337, "0x" + "12" * 20))
    params = FleetParams(
        gpu_nodes=4,
        gpus_per_node=8,
        gpu_w=1_275.0,
        asic_nodes=2,
        asics_per_node=10,
        asic_w=3_645.0,
        asic_th_s=270.0,
    )
    ledger = synthetic_ledger(1, gpus=32, gpu_w=1_275.0, mining_it_mw=0.07, seed=1)
    fleet = simulate_fleet(ledger, params, store.domain, seed=1)
    store.register_nodes(fleet.nodes)
    store.ingest(fleet.readings)
    epoch = int(ledger["interval_start_utc"].iloc[0].timestamp()) // store.epoch_seconds
    liar = next(n.address for n in fleet.nodes if n.kind == "gpu")
    rounds = run_capacity_round(
        store, fleet.nodes, [epoch], seed=5, per_epoch=4, n=32, k=8, dishonest=[liar], fake_fraction=1.0
    )
    assert rounds.failed == 1 and rounds.passed == 3 and rounds.asic_node_epochs == 2
    record = close_epoch(store, params.gpu_asset, epoch)
    app = create_app(AppState(), meter_store=store, meter_access=MeterAccess.of(OPERATOR_KEY))
    with serve(app) as base:
        yield {"base": base, "record": record, "liar": liar, "epoch": epoch}


def test_dashboard_shows_capacity_root_kpis_and_flagged_node(
    capacity_app: dict[str, Any], tmp_path: Path, chromium: dict[str, Any]
) -> None:
    from playwright.sync_api import sync_playwright

    base, record, liar = capacity_app["base"], capacity_app["record"], capacity_app["liar"]
    root = record.to_json()["capacityRoot"]
    api = httpx.get(base + "/meter/capacity", params={"asset": record.to_json()["asset"]}).json()
    assert api["kpis"]["capacityRoot"] == root and api["kpis"]["flaggedNodes"] == [liar]

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(base + "/")
            page.wait_for_selector("#capacity tbody tr", timeout=20_000)
            page.wait_for_function(
                "document.querySelectorAll('#capacity-kpis tbody tr').length === 2", timeout=20_000
            )
            table = page.inner_text("#capacity")
            assert root in table and "open" in table  # the GPU epoch closed, the miners' still open
            assert liar[:8] in table
            kpis = page.inner_text("#capacity-kpis")
            # the GPU asset: one of four challenged nodes failed, so verified < declared; miners: J/TH
            gpu_row = page.inner_text(f"#capacity-kpis tbody tr:has-text('{liar[:8]}')")
            declared, verified = (float(x.rstrip("%")) for x in gpu_row.split("\t")[2:4])
            assert verified < declared and "100.0%" in gpu_row
            assert "none" in kpis  # the miners' asset has no flagged node
            assert root in page.inner_text("#epochs")  # the epoch table carries the capacity root too
            page.screenshot(path=str(tmp_path / "capacity.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
