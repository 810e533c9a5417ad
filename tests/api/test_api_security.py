"""Exploits on the composed app over real HTTP (uvicorn on loopback): oversized bodies, a
foreign Host (DNS rebinding), backtests without a key, meter writes without the operator key,
and database errors in 5xx answers. Each write says who may call it; nobody else can."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import sqlalchemy.exc
from api_helpers import API_KEY, OPERATOR_KEY
from api_live_server import serve

from drakewell.api.app import create_app
from drakewell.exchange.api import demo_service


def _raw_post(base: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """A POST written by hand (so Content-Length and Host can lie); returns status and body."""
    host, port = base.removeprefix("http://").split(":")
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head.encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


def test_oversized_bodies_are_refused_before_they_are_read(live_app: dict[str, Any]) -> None:
    base = live_app["base"]
    big = b"[" + b"0," * 700_000 + b"0]"  # 1.4 MB of JSON: over the 1 MiB cap
    r = httpx.post(base + "/api/backtests", content=big, headers={"X-API-Key": API_KEY})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    r = httpx.post(base + "/exchange/orders", content=big, headers={"X-API-Key": "k" * 20})
    assert r.status_code == 413
    # a declared length beyond the cap is refused from the headers alone (nothing sent after them)
    status, _ = _raw_post(
        base, "/meter/proofs/verify", {"Host": "127.0.0.1", "Content-Length": str(2**40)}, b""
    )
    assert status == 413

    def chunks() -> Any:  # no Content-Length at all: stopped at the cap while streaming
        for _ in range(40):
            yield b" " * 65_536

    assert httpx.post(base + "/meter/proofs/verify", content=chunks()).status_code == 413
    # ingest batches have their own, larger cap
    assert (
        httpx.post(base + "/meter/readings", content=big, headers={"X-API-Key": "x" * 20}).status_code == 401
    )


def test_a_foreign_host_is_refused(live_app: dict[str, Any]) -> None:
    """A page on evil.example that rebinds its name to 127.0.0.1 reaches the server with its Host."""
    r = httpx.get(live_app["base"] + "/api/summary", headers={"Host": "evil.example"})
    assert r.status_code == 400
    assert httpx.get(live_app["base"] + "/api/summary").status_code == 200


def test_backtests_need_an_api_key(live_app: dict[str, Any]) -> None:
    base = live_app["base"]
    assert httpx.post(base + "/api/backtests", json={"days": 1}).status_code == 401
    wrong = httpx.post(
        base + "/api/backtests", json={"days": 1}, headers={"Authorization": "Bearer " + "w" * 30}
    )
    assert wrong.status_code == 401
    operator = httpx.post(base + "/api/backtests", json={"days": 1}, cookies={"key": API_KEY})
    assert operator.status_code == 401  # a cookie is no credential
    app = create_app(exchange=demo_service()[0])  # no keys configured: no backtests at all
    with serve(app) as other:
        none = httpx.post(other + "/api/backtests", json={"days": 1}, headers={"X-API-Key": API_KEY})
        assert none.status_code == 503


def test_meter_writes_need_the_operator_key(live_app: dict[str, Any]) -> None:
    record = live_app["record"].to_json()
    close = f"{live_app['base']}/meter/epochs/{record['asset']}/{record['epoch'] + 1}/close"
    assert httpx.post(close).status_code == 401
    assert httpx.post(live_app["base"] + "/meter/readings", json=[]).status_code == 401
    ok = httpx.post(
        live_app["base"] + "/meter/readings", json=[], headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
    )
    assert ok.status_code == 200


def test_server_errors_never_echo_the_database(live_app: dict[str, Any]) -> None:
    """A journal commit that fails inside the database: the 503 names no SQL and no cause."""
    service, keys = demo_service()

    def failing(_batch: object) -> None:
        raise sqlalchemy.exc.OperationalError(
            "INSERT INTO exchange_journal (seq, kind, body) VALUES (?, ?, ?)",
            (1, "place", "{}"),
            Exception("database or disk is full: /var/lib/drakewell/exchange.sqlite"),
        )

    service.engine.attach(failing)
    with serve(create_app(exchange=service)) as base:
        instrument = httpx.get(base + "/exchange/instruments").json()["listed"][0]
        order = {"instrument": instrument, "side": "buy", "qty": 1, "price": 1_000_000}
        r = httpx.post(base + "/exchange/orders", json=order, headers={"X-API-Key": keys["demo-buyer"]})
    assert r.status_code == 503
    for leaked in ("INSERT", "exchange_journal", "disk is full", "/var/lib", "sqlite"):
        assert leaked not in r.text
