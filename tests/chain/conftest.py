"""One embedded chain and market per test session; every test runs inside the chain's
``env.anchor()``, so its state changes are rolled back when it ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chain_helpers import SHARE, USD, World

from drakewell.chain import AssetSpec, Chain


@pytest.fixture(scope="session")
def world() -> World:
    chain = Chain.embedded()
    market = chain.deploy_market(AssetSpec("Test H100 pool", challenge_window_s=3_600))
    alice, bob, renter, liquidator, outsider = (chain.new_account() for _ in range(5))
    for account in (alice, bob, liquidator):
        market.share.set_allowlisted(account)
    market.share.mint(alice, 600 * SHARE)
    market.share.mint(bob, 400 * SHARE)
    market.usd.mint(renter, 10_000_000 * USD)
    market.usd.approve(market.escrow.address, 10_000_000 * USD, sender=renter)
    return World(chain, market, alice, bob, renter, liquidator, outsider)


@pytest.fixture
def w(world: World) -> Iterator[World]:
    with world.chain.backend.env.anchor():  # type: ignore[attr-defined]
        yield world
