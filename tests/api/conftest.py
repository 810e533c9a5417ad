from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from api_helpers import API_KEY, OPERATOR_KEY
from api_live_server import serve

from drakewell.api.app import AppState, ShownSummary, create_app
from drakewell.exchange.api import demo_service
from drakewell.metering import MeterDomain, MeterStore, close_epoch, simulate_fleet
from drakewell.metering.access import MeterAccess
from drakewell.metering.fleet import FleetParams, synthetic_ledger
from drakewell.report.summary import AssetRow, InvestorRow


def _holder(name: str) -> InvestorRow:
    return InvestorRow(
        investor=name,
        shares=1_000.0,
        shares_bought=1_000.0,
        value_usd=1_234.5,
        claimed_usd=10.0,
        stablecoin_usd=10.0,
        yield_=0.142,
        cash_yield_annualised=0.12,
    )


ASSETS = [
    AssetRow(
        name="West Texas H100 pool A",
        gpus=2048,
        nav_per_share_usd=1.2345,
        annual_yield=0.142,
        holders=[_holder("alice"), _holder("bob")],
    ),
]


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The composed app with a dispatch run, an asset, one closed meter epoch and demo exchange keys."""
    from drakewell.dispatch import backtest_inputs, build_inputs
    from drakewell.dispatch.backtest import resolve_site
    from drakewell.inputs.synthetic import synthetic_inputs

    site = resolve_site(None)
    syn = synthetic_inputs("2026-07-01", 2, seed=3)
    result = backtest_inputs(build_inputs(site, syn.rt, syn.da, syn.hashprice), ["threshold"])
    run = next(r for r in result if r.policy == "threshold")
    state = AppState(
        ledger=run.ledger,
        summary=ShownSummary(dispatch=run.summary),
        assets=list(ASSETS),
        site_name=site.name,
    )

    db = tmp_path_factory.mktemp("api") / "meter.sqlite"
    domain = MeterDomain(31337, "0x" + "11" * 20)
    store = MeterStore(f"sqlite:///{db}", domain)
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
    fleet = simulate_fleet(ledger, params, domain, seed=1)
    store.register_nodes(fleet.nodes)
    store.ingest(fleet.readings)
    epoch = int(ledger["interval_start_utc"].iloc[0].timestamp()) // store.epoch_seconds
    record = close_epoch(store, params.gpu_asset, epoch)

    service, keys = demo_service()
    app = create_app(
        state,
        exchange=service,
        meter_store=store,
        meter_access=MeterAccess.of(OPERATOR_KEY),
        api_keys={"analyst": API_KEY},
    )
    with serve(app) as base:
        yield {"base": base, "keys": keys, "record": record, "summary": run.summary.to_json(), "store": store}
