"""The demo end to end on a short run, and the proof that the money adds up across it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from drakewell.demo import DemoSummary, run_demo


@pytest.fixture(scope="module")
def typed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoSummary, Path]:
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, days=4, seed=11, echo=lambda _s: None), out


@pytest.fixture(scope="module")
def run(typed_run: tuple[DemoSummary, Path]) -> tuple[dict[str, Any], Path]:
    """The run's summary as JSON, and its folder."""
    summary, out = typed_run
    return summary.to_json(), out


def test_the_written_summary_is_the_records_json(typed_run: tuple[DemoSummary, Path]) -> None:
    summary, out = typed_run
    written = (out / "summary.json").read_text()
    assert written == json.dumps(summary.to_json(), indent=2, default=str)
    assert list(json.loads(written)) == [
        "site",
        "days",
        "inputs",
        "dispatch",
        "chain",
        "exchange",
        "metering",
        "settlement",
        "valuation",
        "credit",
        "stablecoin",
        "leases",
        "investors",
        "assets",
        "capacity",
        "steps",
        "files",
    ]
    assert DemoSummary.model_validate(json.loads(written)) == summary


def test_outputs_are_written(run: tuple[dict[str, Any], Path]) -> None:
    summary, out = run
    assert json.loads((out / "summary.json").read_text())["dispatch"]["policy"] == "mpc"
    assert len(pd.read_csv(out / "ledger.csv")) == 4 * 96
    html = (out / "report.html").read_text()
    for title in (
        "Power split",
        "Revenue by source",
        "Curtailment credits",
        "Delivered vs contracted",
        "Investors",
    ):
        assert title in html
    # the synthetic month starts at midnight Central Time (05:00 UTC): 4 days touch 5 UTC-day epochs
    assert summary["metering"]["epochs"] == 5 and summary["metering"]["rejected"] == 0


def test_lease_payments_equal_proven_delivery_times_price(run: tuple[dict[str, Any], Path]) -> None:
    summary, out = run
    prices = {row["lease"]: round(row["price_usd_per_gpu_hour"] * 10**6) for row in summary["leases"]}
    # the deliveries the epochs anchored, straight from the meter store
    db = create_engine(f"sqlite:///{out / 'meter.sqlite'}")
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT lease_id, epoch, SUM(gpu_seconds) FROM meter_readings WHERE lease_id != '0' "
                "GROUP BY lease_id, epoch"
            )
        ).all()
    db.dispose()
    # rounding rule: each (lease, epoch) settlement pays floor(gpu_seconds * price / 3600)
    expected = sum(int(gs) * prices[int(lid)] // 3600 for lid, _epoch, gs in rows)
    s = summary["settlement"]
    assert s["payments_base"] == expected > 0
    assert s["settlements"] == len(rows)
    assert sum(r["paid_base"] for r in summary["leases"]) == s["payments_base"]


def test_escrow_fees_distribution_and_claims_reconcile(run: tuple[dict[str, Any], Path]) -> None:
    s = run[0]["settlement"]
    # every deposited unit was either released (paid on) or refunded to the renter
    assert s["deposited_base"] == s["released_base"] + s["refunded_base"]
    # releases = payments less SLA penalties (which go back to renters out of the holdback)
    penalties = s["payments_base"] - s["released_base"]
    assert 0 <= penalties <= s["refunded_base"]
    # distributed to holders = released less the platform fee (fee_bps of each release, floored)
    assert s["distributed_base"] == s["released_base"] - s["fees_base"]
    assert s["fees_base"] <= s["released_base"] * s["fee_bps"] // 10_000
    # claimed + still claimable + dust = distributed; dust below one unit per holder and distribution
    dust = s["distributed_base"] - s["claimed_base"] - s["unclaimed_base"]
    assert 0 <= dust <= 3 + s["settlements"] + s["leases"]


def test_every_stablecoin_unit_minted_is_somewhere(run: tuple[dict[str, Any], Path]) -> None:
    coin = run[0]["stablecoin"]
    assert sum(coin["balances_base"].values()) == coin["total_supply_base"]


def test_the_loan_is_liquidated_only_after_the_shock(run: tuple[dict[str, Any], Path]) -> None:
    c = run[0]["credit"]
    assert c["health_factor_before_shock"] >= 1 > c["health_factor_after_shock"]
    assert c["shares_seized"] > 0 and c["debt_after_base"] < c["borrowed_base"]
    assert c["health_factor_after_liquidation"] > c["health_factor_after_shock"]


def test_real_price_files_are_a_flag_away(shared_data: Path, tmp_path: Path) -> None:
    from drakewell.demo import month_inputs

    rt, da, _hp = month_inputs(
        3,
        prices=shared_data / "ercot" / "ercot_rtm_spp_2023-07_09.csv",
        forecast=shared_data / "ercot" / "ercot_dam_spp_2023-07_09.csv",
        zone="LZ_WEST",
        seed=0,
    )
    assert len(rt) == 3 * 96 and str(rt.index[0]) == "2023-07-01 05:00:00+00:00"
    assert da is not None and da.index[-1] <= rt.index[-1]


def test_bad_demo_options_say_what_to_do(tmp_path: Path) -> None:
    from drakewell.demo import DemoError, month_inputs

    short = tmp_path / "rt.csv"
    short.write_text(
        "interval_start_ct,LZ_WEST\n2023-07-01T00:00:00-05:00,20.0\n2023-07-01T00:15:00-05:00,21.0\n"
    )
    with pytest.raises(DemoError, match="fewer than 2 days"):
        month_inputs(2, prices=short, forecast=None, zone=None, seed=0)


def test_serve_opens_the_runs_own_exchange_and_meter_store(
    run: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    from drakewell.api.cli import open_services
    from drakewell.metering.epochs import epoch_records

    summary, out = run
    service, keys, store, state, where = open_services(None, tmp_path / "serve", out)
    # the run's journal replays into the same trades; demo accounts are added for the order form
    assert len(service.engine.trades) == summary["exchange"]["trades"] > 0
    assert set(keys) == {"demo-buyer", "demo-provider"}
    assert len(epoch_records(store)) == summary["metering"]["epochs"]
    assert str(out / "exchange.sqlite") in where and state.summary.site == summary["site"]
    store.close()
    # a second start replays the demo accounts too and prints no new keys
    service, keys, store, _, _ = open_services(None, tmp_path / "serve", out)
    assert keys == {} and len(service.engine.trades) == summary["exchange"]["trades"]
    store.close()

    # a database named on the command line holds the exchange and meter store instead
    url = f"sqlite:///{tmp_path / 'own.sqlite'}"
    service, keys, store, state, where = open_services(url, tmp_path / "serve", out)
    assert service.engine.trades == [] and epoch_records(store) == []
    assert where == f"database {url}" and state.summary.site == summary["site"]
    store.close()


def test_capacity_checks_reach_the_epochs_and_the_summary(
    run: tuple[dict[str, Any], Path], typed_run: tuple[DemoSummary, Path]
) -> None:
    from drakewell.demo.capacity import summary_rows
    from drakewell.metering import MeterStore
    from drakewell.metering.epochs import epoch_record
    from drakewell.store import sqlite_url

    summary, out = run
    c = summary["capacity"]
    r = c["round"]
    # every epoch challenged a sample of GPU nodes; the one node faking a quarter of its product
    # was challenged once and caught
    assert r["challenges"] == 5 * 8 + 1 and r["challengesFailed"] == 1 and len(r["flagged"]) == 1
    assert c["gpu_pool"]["flaggedNodes"] == [r["flagged"][0]["node"]]
    assert r["sharesAccepted"] > 0 and c["miners"]["flaggedNodes"] == []
    g, m = c["gpu_pool"], c["miners"]
    assert 0 < g["loadRate"]["verified"] < g["loadRate"]["declared"]  # the flagged node counts 0
    assert m["jPerTh"]["verified"] >= m["jPerTh"]["declared"] > 0  # energy over proven hashes
    # each anchored epoch's record carries the capacity root the summary shows
    store = MeterStore(sqlite_url(out / "meter.sqlite"), summary_domain(summary))
    asset = bytes.fromhex(g["asset"][2:])
    for row in c["roots"]:
        record = epoch_record(store, asset, row["epoch"])
        assert record is not None and row["capacityRoot"] == "0x" + record.capacity_root.hex()
    assert g["lastCapacityRoot"] == c["roots"][-1]["capacityRoot"]
    printed = dict(summary_rows(typed_run[0].capacity))
    assert printed["capacity root (last epoch)"] == g["lastCapacityRoot"]
    assert printed["GPU challenges passed / failed"] == f"{r['challengesPassed']} / 1"


def summary_domain(summary: dict[str, Any]) -> Any:
    from drakewell.metering import MeterDomain

    return MeterDomain(summary["chain"]["chain_id"], summary["chain"]["meter_registry"])
