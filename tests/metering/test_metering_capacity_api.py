"""Proofs of capacity over the meter API: the capacity root and the verified-beside-declared KPIs
are readable by anyone, and nothing under these routes writes."""

from __future__ import annotations

from typing import Any

import pytest
from metering_helpers import ASIC_ASSET, EPOCH, GPU_ASSET
from test_metering_api import OPERATOR, AsgiClient, meter_app

from drakewell.metering.capacity import capacity_leaves_of
from drakewell.metering.ingest import MeterStore
from drakewell.metering.readings import MeterDomain
from drakewell.metering.signing import NodeKey
from drakewell.proofs.rounds import run_capacity_round

GPU = "0x" + GPU_ASSET.hex()
ASIC = "0x" + ASIC_ASSET.hex()


@pytest.fixture
def checked(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey, asic_key: NodeKey
) -> AsgiClient:
    """Six GPU and six miner readings in EPOCH, and one capacity round over both nodes."""
    gpu = [gpu_key.sign(make_reading(seq=s), domain) for s in range(1, 7)]
    asic = [
        asic_key.sign(
            make_reading(
                seq=s,
                key=asic_key,
                asset=ASIC_ASSET,
                energy_wh=2_000,
                gpu_seconds=0,
                tokens=0,
                hashes_th=500_000,
            ),
            domain,
        )
        for s in range(1, 7)
    ]
    assert store.ingest(gpu + asic).accepted == 12
    result = run_capacity_round(store, store.nodes.values(), [EPOCH], seed=3, n=32, k=8)
    assert (result.challenges, result.passed, result.asic_node_epochs) == (1, 1, 1)
    return AsgiClient(meter_app(store, gpu_key.address))


def test_capacity_summary_then_root_after_close(checked: AsgiClient, gpu_key: NodeKey) -> None:
    answer = checked.get("/meter/capacity", params={"asset": GPU}).json()
    assert [(e["epoch"], e["capacityRoot"], e["closed"]) for e in answer["epochs"]] == [(EPOCH, None, False)]
    kpis = answer["kpis"]
    assert kpis["epoch"] == EPOCH and kpis["challengesPassed"] == 1 and kpis["challengesFailed"] == 0
    assert kpis["flaggedNodes"] == [] and kpis["loadRate"]["coverage"] == 1.0
    # a passed challenge: the declared load rate and tokens/J stand as verified
    assert kpis["loadRate"]["verified"] == pytest.approx(kpis["loadRate"]["declared"])
    assert kpis["tokensPerJoule"]["verified"] == pytest.approx(kpis["tokensPerJoule"]["declared"])

    record = checked.post(f"/meter/epochs/{GPU}/{EPOCH}/close", headers=OPERATOR).json()
    assert record["capacityRoot"] != "0x" + "00" * 32
    after = checked.get("/meter/capacity", params={"asset": GPU}).json()
    assert after["epochs"][0]["capacityRoot"] == record["capacityRoot"] and after["epochs"][0]["closed"]
    assert after["kpis"]["capacityRoot"] == record["capacityRoot"]
    assert checked.get(f"/meter/epochs/{GPU}/{EPOCH}").json()["capacityRoot"] == record["capacityRoot"]

    proof = checked.get(f"/meter/proofs/capacity/{GPU}/{EPOCH}/{gpu_key.address}").json()
    assert proof["root"] == record["capacityRoot"] and proof["capacity"]["passed"] == 1
    assert checked.post("/meter/proofs/verify", json=proof).json() == {"kind": "capacity", "valid": True}
    forged = {**proof, "capacity": {**proof["capacity"], "failed": 0, "passed": 9}}
    assert checked.post("/meter/proofs/verify", json=forged).json()["valid"] is False
    assert checked.get(f"/meter/proofs/capacity/{GPU}/{EPOCH + 1}/{gpu_key.address}").status_code == 404


def test_miner_kpis_show_verified_beside_declared(checked: AsgiClient, asic_key: NodeKey) -> None:
    rows = checked.get("/meter/kpis/capacity", params={"asset": ASIC, "epoch": EPOCH}).json()
    assert len(rows) == 1 and rows[0]["node"] == asic_key.address.lower()
    row = rows[0]
    assert row["challenges_passed"] > 0 and not row["flagged"]
    assert 0 < row["verified_per_s"] <= row["declared_per_s"]  # the interval's lower end
    assert row["j_per_th_verified"] >= row["j_per_th"]  # energy over the hashes the shares prove
    kpis = checked.get("/meter/capacity", params={"asset": ASIC}).json()["kpis"]
    assert kpis["sharesAccepted"] == row["challenges_passed"]
    assert kpis["jPerTh"]["verified"] == pytest.approx(row["j_per_th_verified"])
    assert kpis["jPerTh"]["declared"] == pytest.approx(row["j_per_th"])


def test_a_flagged_node_shows_in_the_kpis(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey
) -> None:
    assert store.ingest([gpu_key.sign(make_reading(seq=1), domain)]).accepted == 1
    result = run_capacity_round(
        store,
        store.nodes.values(),
        [EPOCH],
        seed=4,
        n=32,
        k=8,
        dishonest=[gpu_key.address],
        fake_fraction=1.0,
    )
    assert result.failed == 1 and result.flagged == [(EPOCH, gpu_key.address)]
    client = AsgiClient(meter_app(store, gpu_key.address))
    kpis = client.get("/meter/capacity").json()["kpis"]
    assert kpis["flaggedNodes"] == [gpu_key.address] and kpis["challengesFailed"] == 1
    assert kpis["loadRate"]["verified"] == 0.0 and kpis["loadRate"]["declared"] > 0
    assert kpis["tokensPerJoule"]["verified"] == 0.0
    assert [leaf.flagged for leaf in capacity_leaves_of(store.engine, GPU_ASSET, EPOCH)] == [True]


def test_capacity_routes_only_read(checked: AsgiClient, gpu_key: NodeKey) -> None:
    """No write lives under these routes: capacity leaves come from whoever runs the challenges
    against the store, never over HTTP, with or without the operator's key."""
    routes = [
        "/meter/capacity",
        "/meter/kpis/capacity",
        f"/meter/proofs/capacity/{GPU}/{EPOCH}/{gpu_key.address}",
    ]
    before = checked.get("/meter/capacity").json()
    for route in routes:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for headers in ({}, OPERATOR):
                answer = checked._call(method, route, json={"passed": 99}, headers=headers)
                assert answer.status_code == 405, (method, route, answer.status_code)
    assert checked.get("/meter/capacity").json() == before
    assert checked.get("/meter/capacity", params={"asset": "another pool"}).json() == {
        "epochs": [],
        "kpis": None,
    }
