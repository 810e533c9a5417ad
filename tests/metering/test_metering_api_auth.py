"""Exploits on the meter API over real HTTP (uvicorn on loopback): anonymous and cross-site
closes, closes before the epoch is due, ingest without a key or for another gateway's nodes, and
forged readings raced through the server's thread pool. Each write says who may call it; these
tests show nobody else can."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from metering_helpers import ANY_GATEWAY_KEY, DAY, EPOCH, GATEWAY_KEY, GPU_ASSET, OPERATOR_KEY, live_server
from test_metering_api import GATEWAY, OPERATOR, meter_app
from test_metering_forgery_race import GENUINE, hammer, second_reading

from drakewell.metering.epochs import epoch_record
from drakewell.metering.ingest import MeterStore
from drakewell.metering.readings import MeterDomain
from drakewell.metering.signing import NodeKey

ASSET = "0x" + GPU_ASSET.hex()
CLOSE = f"/meter/epochs/{ASSET}/{EPOCH}/close"


@pytest.fixture
def server(store: MeterStore, gpu_key: NodeKey) -> Iterator[str]:
    with live_server(meter_app(store, gpu_key.address)) as base:
        yield base


@pytest.fixture
def one_reading(store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey) -> None:
    assert store.ingest([gpu_key.sign(make_reading(seq=1), domain)]).accepted == 1


def test_nobody_but_the_operator_closes_an_epoch(server: str, store: MeterStore, one_reading: None) -> None:
    """The reported attack: an anonymous close right after the epoch's first reading."""
    assert httpx.post(server + CLOSE).status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * 40}
    assert httpx.post(server + CLOSE, headers=wrong).status_code == 401
    refused = httpx.post(server + CLOSE, headers=GATEWAY)  # a gateway may ingest, not close
    assert refused.status_code == 403 and "only the operator" in refused.json()["detail"]
    assert epoch_record(store, GPU_ASSET, EPOCH) is None
    closed = httpx.post(server + CLOSE, headers=OPERATOR)
    assert closed.status_code == 200 and closed.json()["nReadings"] == 1


def test_a_cross_site_bodiless_post_carries_no_credential(
    server: str, store: MeterStore, one_reading: None
) -> None:
    """What a page on another site can make the operator's browser send: a bodiless form POST
    with the site's cookies (even a cookie holding the operator key) and a foreign Origin."""
    forged = httpx.post(
        server + CLOSE,
        headers={"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"},
        cookies={"Authorization": f"Bearer {OPERATOR_KEY}", "meter_key": OPERATOR_KEY},
    )
    assert forged.status_code == 401
    assert epoch_record(store, GPU_ASSET, EPOCH) is None


def test_no_close_before_the_epoch_is_due(store: MeterStore, gpu_key: NodeKey, one_reading: None) -> None:
    due = (EPOCH + 1) * DAY + store.close_grace_s
    with live_server(meter_app(store, gpu_key.address, now_s=due - 1)) as early:
        refused = httpx.post(early + CLOSE, headers=OPERATOR)
        assert refused.status_code == 409 and "cannot close before" in refused.json()["detail"]
    assert epoch_record(store, GPU_ASSET, EPOCH) is None
    with live_server(meter_app(store, gpu_key.address, now_s=due)) as due_server:
        assert httpx.post(due_server + CLOSE, headers=OPERATOR).status_code == 200


def test_ingest_needs_a_key_bound_to_the_node(
    server: str,
    store: MeterStore,
    domain: MeterDomain,
    make_reading: Any,
    gpu_key: NodeKey,
    asic_key: NodeKey,
) -> None:
    from metering_helpers import ASIC_ASSET

    gpu = gpu_key.sign(make_reading(seq=1), domain).to_json()
    asic = asic_key.sign(
        make_reading(key=asic_key, asset=ASIC_ASSET, seq=1, gpu_seconds=0, tokens=0, energy_wh=100), domain
    ).to_json()
    assert httpx.post(server + "/meter/readings", json=[gpu]).status_code == 401
    cookie = httpx.post(server + "/meter/readings", json=[gpu], cookies={"meter_key": GATEWAY_KEY})
    assert cookie.status_code == 401
    foreign = httpx.post(server + "/meter/readings", json=[gpu, asic], headers=GATEWAY)
    assert foreign.status_code == 403 and asic_key.address in foreign.json()["detail"]
    assert store.count() == 0  # refused whole
    assert httpx.post(server + "/meter/readings", json=[gpu], headers=GATEWAY).json()["accepted"] == 1
    anyone = {"X-API-Key": ANY_GATEWAY_KEY}
    assert httpx.post(server + "/meter/readings", json=[asic], headers=anyone).json()["accepted"] == 1


def test_forged_readings_raced_over_http_are_never_stored(
    server: str, store: MeterStore, domain: MeterDomain, gpu_key: NodeKey
) -> None:
    """Item 1 over the wire: many clients post genuine and forged readings to uvicorn's pool."""
    genuine = [gpu_key.sign(second_reading(gpu_key.address, s), domain) for s in range(1, GENUINE + 1)]
    assert store.ingest(genuine).accepted == GENUINE
    body = [g.to_json() for g in genuine]
    started = time.monotonic()
    with httpx.Client(base_url=server, headers=GATEWAY, timeout=60) as client:

        def post(batch: list[Any]) -> None:
            answer = client.post(
                "/meter/readings", json=[b if isinstance(b, dict) else b.to_json() for b in batch]
            )
            assert answer.status_code == 200

        hammer(post, gpu_key.address, body, threads=8, rounds=12)
    assert time.monotonic() - started < 120
    assert store.signed_readings() == genuine
