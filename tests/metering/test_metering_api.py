"""HTTP routes: ingest, close, prove and verify over the router mounted on a bare FastAPI app."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from metering_helpers import ANY_GATEWAY_KEY, DAY, EPOCH, GATEWAY_KEY, GPU_ASSET, OPERATOR_KEY

from drakewell.metering.access import MeterAccess
from drakewell.metering.api import router
from drakewell.metering.ingest import MeterStore
from drakewell.metering.readings import MeterDomain
from drakewell.metering.signing import NodeKey

ASSET = "0x" + GPU_ASSET.hex()


class AsgiClient:
    """A synchronous client over httpx's ASGI transport (no server, no thread)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._call("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._call("POST", url, **kwargs)


OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
GATEWAY = {"Authorization": f"Bearer {GATEWAY_KEY}"}


def meter_app(store: MeterStore, gpu_node: str, now_s: float = (EPOCH + 2) * DAY) -> FastAPI:
    """The meter router with the test keys, its clock at ``now_s``."""
    app = FastAPI()
    app.include_router(router)
    app.state.meter_store = store
    app.state.meter_access = MeterAccess.of(
        OPERATOR_KEY, {"site-gw": (GATEWAY_KEY, [gpu_node]), "any-gw": (ANY_GATEWAY_KEY, None)}
    )
    app.state.meter_clock = lambda: now_s
    return app


@pytest.fixture
def client(store: MeterStore, gpu_key: NodeKey) -> AsgiClient:
    return AsgiClient(meter_app(store, gpu_key.address))


def test_ingest_close_prove_verify(
    client: AsgiClient, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey
) -> None:
    batch = [gpu_key.sign(make_reading(seq=s, lease_id=s % 2), domain).to_json() for s in range(1, 6)]
    batch.append({"node": "bad"})
    answer = client.post("/meter/readings", json=batch, headers=OPERATOR).json()
    assert answer["accepted"] == 5
    assert [(r["index"], r["reason"]) for r in answer["rejected"]] == [(5, "malformed")]

    assert client.get(f"/meter/epochs/{ASSET}/{EPOCH}").status_code == 404
    record = client.post(f"/meter/epochs/{ASSET}/{EPOCH}/close", headers=OPERATOR).json()
    assert record["nReadings"] == 5
    assert client.get("/meter/epochs", params={"asset": ASSET}).json() == [record]
    assert client.get(f"/meter/epochs/{ASSET}/{EPOCH}").json() == record

    proof = client.get(f"/meter/proofs/reading/{gpu_key.address}/3").json()
    assert proof["root"] == record["readingsRoot"]
    assert client.post("/meter/proofs/verify", json=proof).json() == {"kind": "reading", "valid": True}
    proof["reading"]["energyWh"] += 1
    assert client.post("/meter/proofs/verify", json=proof).json()["valid"] is False

    delivery = client.get(f"/meter/proofs/delivery/{ASSET}/{EPOCH}/1").json()
    assert delivery["delivery"]["gpuSeconds"] == 3 * 1_800
    assert client.post("/meter/proofs/verify", json=delivery).json()["valid"] is True

    kpis = client.get("/meter/kpis/nodes", params={"epoch": EPOCH}).json()
    assert kpis[0]["node"] == gpu_key.address and kpis[0]["j_per_th"] is None
    leases = client.get("/meter/kpis/leases").json()
    assert leases[0]["lease_id"] == 1 and leases[0]["gpu_hours"] == 1.5
    # the store's lease book gives what was contracted: 8 GPUs over the whole epoch
    assert leases[0]["contracted_gpu_hours"] == 8 * 24.0
    assert leases[0]["delivery_ratio"] == 1.5 / (8 * 24.0)


def test_refusals_carry_a_status_and_a_reason(client: AsgiClient, gpu_key: NodeKey) -> None:
    assert client.get(f"/meter/proofs/reading/{gpu_key.address}/1").status_code == 404
    assert client.get("/meter/proofs/reading/0x12/1").status_code == 400
    assert client.get(f"/meter/proofs/delivery/{ASSET}/{EPOCH}/1").status_code == 404
    assert client.post(f"/meter/epochs/{ASSET}/{EPOCH}/close", headers=OPERATOR).status_code == 404
    assert client.get(f"/meter/epochs/{ASSET}/-1").status_code == 422
    assert client.get(f"/meter/proofs/reading/{gpu_key.address}/{2**64}").status_code == 422
    assert client.post("/meter/proofs/verify", json={"kind": "other"}).status_code == 400
    assert client.post("/meter/proofs/verify", json={"kind": "reading"}).status_code == 400
    assert client.post("/meter/readings", json={"not": "a list"}, headers=OPERATOR).status_code == 422


def test_unconfigured_server_says_so() -> None:
    app = FastAPI()
    app.include_router(router)
    answer = AsgiClient(app).get("/meter/epochs")
    assert answer.status_code == 503 and "meter_store" in answer.json()["detail"]


def test_a_server_without_keys_accepts_no_writes(store: MeterStore) -> None:
    app = FastAPI()
    app.include_router(router)
    app.state.meter_store = store
    answer = AsgiClient(app).post("/meter/readings", json=[], headers=OPERATOR)
    assert answer.status_code == 503 and "no meter keys" in answer.json()["detail"]
