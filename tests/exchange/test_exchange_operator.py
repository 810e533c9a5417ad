"""Operator routes: who may register assets and handle dead letters, the on-chain ties of an
asset registration, and the dead-letter table (API, CLI, persistence, retry)."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path

import httpx
import pytest
import typer
from exchange_helpers import INST, START_S, escrow_for
from fastapi import FastAPI
from typer.testing import CliRunner

from drakewell.core.errors import ChainError
from drakewell.core.units import USD
from drakewell.exchange.api import ExchangeService, create_app
from drakewell.exchange.assets import (
    AssetRefused,
    ChainAssetDirectory,
    DeclaredAsset,
    InMemoryAssetDirectory,
    register_tied_asset,
)
from drakewell.exchange.engine import Engine, hash_api_key
from drakewell.exchange.journal import Journal, recover, replay
from drakewell.exchange.leases import ChainLeaseSink, DeadLetterLog, LeaseForwarder, LeaseSink

OPERATOR = "operator-key-0123456789"
KEYS = {"alice": "alice-key-0123456789", "bob": "bob-key-0123456789"}
P = 2_000_000
POOL = DeclaredAsset(escrow_for("pool-a"), escrow_for("share-a"), "0x" + "aa" * 32, 256)


def _service(
    engine: Engine | None = None,
    operator_key: str | None = OPERATOR,
    *,
    journal: Journal | None = None,
    sink: LeaseSink | None = None,
) -> ExchangeService:
    if engine is None:
        engine = Engine()
        for name, key in KEYS.items():
            engine.open_account(name, hash_api_key(key))
            engine.deposit(name, 1_000_000 * USD)
    directory = InMemoryAssetDirectory()
    directory.declare(POOL)
    return ExchangeService(engine, journal, sink, operator_key=operator_key, assets=directory)


def _call(
    app: FastAPI, method: str, url: str, headers: dict[str, str] | None = None, *, json: object = None
) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, url, headers=headers or {}, json=json)

    return asyncio.run(go())


def _asset(**over: object) -> dict[str, object]:
    body = {
        "owner": "bob",
        "asset_id": "pool-a",
        "gpu_model": "H100-SXM",
        "region": "us-tx",
        "gpus": 256,
        "available_from_s": START_S - 86400,
        "available_to_s": START_S + 30 * 86400,
        "floor_price": 0,
        "escrow": POOL.escrow,
        "share": POOL.share,
    }
    return {**body, **over}


OP = {"X-Operator-Key": OPERATOR}


@pytest.mark.parametrize(
    ("route", "method"),
    [
        ("/operator/assets", "POST"),
        ("/operator/dead-letters", "GET"),
        ("/operator/dead-letters/1/retry", "POST"),
    ],
)
def test_nobody_but_the_operator_reaches_the_operator_routes(route: str, method: str) -> None:
    service = _service()
    app = create_app(service, close_every_s=None)
    body = _asset() if route == "/operator/assets" else None
    r = _call(app, method, route, json=body)
    assert r.status_code == 401 and r.json()["code"] == "missing_operator_key"
    for key in (KEYS["bob"], "not-the-key", OPERATOR + "x"):
        r = _call(app, method, route, {"X-Operator-Key": key}, json=body)
        assert r.status_code == 403 and r.json()["code"] == "not_operator", key
    # an account key in the account header opens nothing either
    assert _call(app, method, route, {"X-API-Key": KEYS["bob"]}, json=body).status_code == 401
    # a service started without an operator key refuses everyone
    closed = create_app(_service(operator_key=None), close_every_s=None)
    assert _call(closed, method, route, OP, json=body).status_code == 403
    assert service.engine.assets == {}


def test_the_operator_registers_an_asset_tied_to_its_escrow(tmp_path: Path) -> None:
    engine, journal = recover(tmp_path / "j.sqlite")
    for name, key in KEYS.items():
        engine.open_account(name, hash_api_key(key))
        engine.deposit(name, 1_000_000 * USD)
    engine.commit()
    app = create_app(_service(engine, journal=journal), close_every_s=None)
    refusals = {
        "unknown_escrow": _asset(escrow=escrow_for("nowhere")),
        "share_mismatch": _asset(share=escrow_for("share-b")),
        "capacity_exceeds_declared": _asset(gpus=1_000_000),
        "unknown_account": _asset(owner="mallory"),
    }
    for code, body in refusals.items():
        r = _call(app, "POST", "/operator/assets", OP, json=body)
        assert r.status_code in (400, 409) and r.json()["code"] == code, (code, r.text)
        assert r.json()["hint"]
    r = _call(app, "POST", "/operator/assets", OP, json=_asset())
    assert r.status_code == 201, r.text
    assert r.json()["owner"] == "bob" and r.json()["escrow"] == POOL.escrow
    again = _call(app, "POST", "/operator/assets", OP, json=_asset(asset_id="pool-a-twin"))
    assert again.status_code == 409 and again.json()["code"] == "escrow_registered"
    bad = _call(app, "POST", "/operator/assets", OP, json=_asset(escrow="0x12"))
    assert bad.status_code == 422  # outside the published address pattern
    # the owner sells it; the registration (with its escrow) is in the journal
    sell = {"instrument": INST, "side": "sell", "qty": 4, "price": P}
    assert _call(app, "POST", "/orders", {"X-API-Key": KEYS["bob"]}, json=sell).status_code == 201
    rebuilt = replay(Journal(tmp_path / "j.sqlite"))
    assert rebuilt.assets["pool-a"].escrow == POOL.escrow and rebuilt.snapshot() == engine.snapshot()
    journal.close()


def test_dead_letters_are_listed_kept_and_retried(tmp_path: Path) -> None:
    engine, journal = recover(tmp_path / "j.sqlite")
    for name, key in KEYS.items():
        engine.open_account(name, hash_api_key(key))
        engine.deposit(name, 1_000_000 * USD)
    window = (START_S - 86400, START_S + 30 * 86400)
    engine.register_asset("bob", "pool-a", "H100-SXM", "us-tx", 64, *window, escrow=POOL.escrow)
    engine.commit()
    escrow = _Escrow()
    renters: dict[str, str] = {"bob": "0xB0B"}  # alice's address is not known yet
    service = _service(engine, journal=journal, sink=ChainLeaseSink({"pool-a": escrow}, renters))
    app = create_app(service, close_every_s=None)
    sell = {"instrument": INST, "side": "sell", "qty": 4, "price": P}
    buy = {"instrument": INST, "side": "buy", "qty": 1, "price": P}
    assert _call(app, "POST", "/orders", {"X-API-Key": KEYS["bob"]}, json=sell).status_code == 201
    assert _call(app, "POST", "/orders", {"X-API-Key": KEYS["alice"]}, json=buy).status_code == 201
    (letter,) = _call(app, "GET", "/operator/dead-letters", OP).json()
    assert letter["lease_id"] == 1 and letter["error"] == "LeaseSinkError" and letter["amount"] == P * 24
    assert "alice" in letter["reason"] and letter["attempts"] == 1
    # kept in the journal's database: the CLI lists it
    out = CliRunner().invoke(
        _cli_app(), ["exchange", "dead-letters", "--journal", str(tmp_path / "j.sqlite"), "--json"]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["lease_id"] == 1
    failed = _call(app, "POST", "/operator/dead-letters/1/retry", OP)
    assert failed.status_code == 409 and failed.json()["code"] == "refused"
    renters["alice"] = "0xA11CE"
    ok = _call(app, "POST", "/operator/dead-letters/1/retry", OP)
    assert ok.status_code == 200 and ok.json() == {"lease_id": 1, "sink_lease_id": 1}
    assert _call(app, "GET", "/operator/dead-letters", OP).json() == []
    assert _call(app, "GET", "/leases", {"X-API-Key": KEYS["alice"]}).json()[0]["forwarded"] is True
    unknown = _call(app, "POST", "/operator/dead-letters/7/retry", OP)
    assert unknown.status_code == 409 and "not in the dead-letter table" in unknown.json()["message"]
    journal.close()
    assert DeadLetterLog(tmp_path / "j.sqlite").list() == []


def _cli_app() -> typer.Typer:
    from drakewell.cli import app

    return app


class _Escrow:
    def __init__(self, failures: int = 0) -> None:
        self.opened: list[tuple[str, int]] = []
        self.failures = failures

    def open_lease_for(
        self, renter: str, gpus: int, start: int, end: int, price: int, *, sender: str | None = None
    ) -> int:
        if self.failures:
            self.failures -= 1
            raise ChainError("LeaseEscrow: insufficient allowance", hint="approve the escrow")
        self.opened.append((renter, gpus))
        return len(self.opened)


def test_a_lease_that_keeps_failing_is_dead_lettered_after_its_tries_and_the_rest_go_on() -> None:
    engine = Engine()
    for name in ("alice", "bob"):
        engine.open_account(name, hash_api_key(name))
        engine.deposit(name, 10**12)
    engine.register_asset(
        "bob", "pool-a", "H100-SXM", "us-tx", 64, START_S - 86400, START_S + 86400 * 30, escrow=POOL.escrow
    )
    escrow = _Escrow(failures=3)
    fwd = LeaseForwarder(engine, ChainLeaseSink({"pool-a": escrow}, {"alice": "0xA11CE"}), max_attempts=3)
    engine.place("bob", INST, "sell", price=P, qty=5)
    for _ in range(3):
        engine.place("alice", INST, "buy", price=P, qty=1)
    engine.commit()
    assert fwd.forward() == 0 and fwd.cursor == 0  # try 1: retried later, in order
    assert fwd.forward() == 0 and fwd.cursor == 0  # try 2
    assert fwd.forward() == 2 and fwd.cursor == 3  # try 3 fails: dead-lettered, the next two go
    (letter,) = fwd.dead_letters.list()
    assert (letter.lease_id, letter.error, letter.attempts) == (1, "ChainError", 3)
    assert escrow.opened == [("0xA11CE", 1), ("0xA11CE", 1)]


def test_chain_directory_reads_the_asset_from_the_chain() -> None:
    import boa

    from drakewell.chain import AssetSpec, Chain

    with boa.env.anchor():  # the embedded chain is boa's global one: leave it as found
        chain = Chain.embedded()
        a = chain.deploy_market(AssetSpec("Exchange pool A", gpus=512))
        b = chain.deploy_market(AssetSpec("Exchange pool B", gpus=64), usd=a.usd.address)
        directory = ChainAssetDirectory.of_markets(chain, [a, b])
        found = directory.declared(a.escrow.address, a.share.address)
        assert (found.gpus, found.asset_id) == (512, "0x" + a.spec.asset_id.hex())
        with pytest.raises(AssetRefused) as info:
            directory.declared(a.escrow.address, b.share.address)
        assert info.value.code == "share_mismatch"
        with pytest.raises(AssetRefused) as info:
            directory.declared(a.share.address, a.share.address)  # a share is not an escrow
        assert info.value.code == "unknown_escrow"
        with pytest.raises(AssetRefused) as info:
            directory.declared("0x" + "11" * 20, a.share.address)  # no code there
        assert info.value.code == "unknown_escrow"
        stranger = chain.new_account()
        with pytest.raises(AssetRefused) as info:
            ChainAssetDirectory.of_markets(chain, [a], market_sender=stranger).declared(
                a.escrow.address, a.share.address
            )
        assert info.value.code == "not_market"
        with pytest.raises(AssetRefused) as info:
            ChainAssetDirectory.of_markets(chain, [b]).declared(a.escrow.address, a.share.address)
        assert info.value.code == "undeclared_asset"
        engine = Engine()
        engine.open_account("bob", hash_api_key("bob"))
        register = functools.partial(
            register_tied_asset,
            engine,
            directory,
            owner="bob",
            asset_id="pool-b",
            gpu_model="H100-SXM",
            region="us-tx",
            available_from_s=START_S,
            available_to_s=START_S + 86400,
            floor_price=0,
            escrow=b.escrow.address,
            share=b.share.address,
        )
        with pytest.raises(AssetRefused) as info:
            register(gpus=65)
        assert info.value.code == "capacity_exceeds_declared"
        asset = register(gpus=64)
        assert asset.escrow == b.escrow.address
