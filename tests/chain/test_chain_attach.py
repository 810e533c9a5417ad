"""Chain.attach: a typed client of a contract deployed earlier, and its bad inputs."""

from __future__ import annotations

import pytest
from chain_helpers import World

from drakewell.chain import AssetSpec, ChainError, MeterClient, ShareClient, TokenClient


def test_attach_reads_and_writes_the_deployed_contract(w: World) -> None:
    share = w.chain.attach("ComputeShare", w.market.share.address, client=ShareClient)
    assert isinstance(share, ShareClient)
    assert share.address == w.market.share.address
    assert share.balance_of(w.alice) == w.market.share.balance_of(w.alice) > 0
    share.set_frozen(w.bob)
    assert w.market.share.is_frozen(w.bob)  # same contract, not a copy


def test_escrow_and_share_name_their_asset(w: World) -> None:
    m = w.market
    assert m.escrow.share() == m.share.address
    assert m.escrow.asset() == m.share.asset_id() == m.asset_id


def test_attach_accepts_a_lower_case_address(w: World) -> None:
    meter = w.chain.attach("MeterRegistry", w.market.meter.address.lower(), client=MeterClient)
    assert meter.address == w.market.meter.address
    assert meter.has_role("OPERATOR_ROLE", w.chain.deployer)


@pytest.mark.parametrize("address", ["", "0x1234", "not an address", "0x" + "g" * 40])
def test_attach_refuses_a_malformed_address(w: World, address: str) -> None:
    with pytest.raises(ChainError, match="not an address"):
        w.chain.attach("ComputeShare", address)


def test_attach_refuses_an_address_without_code(w: World) -> None:
    with pytest.raises(ChainError, match="no contract code"):
        w.chain.attach("ComputeShare", w.alice)


def test_attach_refuses_an_unknown_contract(w: World) -> None:
    with pytest.raises(ChainError, match="no contract 'Nope'"):
        w.chain.attach("Nope", w.market.share.address)


def test_a_second_market_reuses_the_stablecoin(w: World) -> None:
    second = w.chain.deploy_market(AssetSpec("Second pool", gpus=64), usd=w.market.usd.address)
    assert isinstance(second.usd, TokenClient)
    assert second.usd.address == w.market.usd.address
    assert second.share.address != w.market.share.address
