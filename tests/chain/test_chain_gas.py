import pytest
from chain_helpers import SHARE, World

from drakewell.chain import AssetSpec, Chain, ChainError
from drakewell.chain.gas import calldata, calldata_gas, transaction_gas


def test_transaction_gas_is_stable_per_call_and_prices_fresh_slots() -> None:
    chain = Chain.embedded()  # measuring commits state: not inside the shared world's anchor
    m = chain.deploy_market(AssetSpec("Gas pool"))
    a, b = chain.new_account(), chain.new_account()
    for x in (a, b):
        m.share.set_allowlisted(x)
    m.share.mint(a, 10 * SHARE)
    first = transaction_gas(m.share, "transfer", b, SHARE, sender=a)  # b becomes a holder
    again = transaction_gas(m.share, "transfer", b, SHARE, sender=a)
    assert first - again == 17_100  # one zero -> non-zero store (the receiver's balance)
    assert again == transaction_gas(m.share, "transfer", b, SHARE, sender=a)
    assert m.share.balance_of(b) == 3 * SHARE


def test_refusals(w: World) -> None:
    assert len(calldata("ComputeShare", "transfer", (w.bob, 1))) == 4 + 64
    assert calldata_gas(b"\x00\x01") == 20
    with pytest.raises(ChainError, match="no function 'nope'"):
        transaction_gas(w.market.share, "nope", sender=w.alice)
    with pytest.raises(ChainError, match=r"open env\.anchor"):  # the fixture runs inside an anchor
        transaction_gas(w.market.share, "transfer", w.bob, 1, sender=w.alice)


def test_unknown_function_is_a_chain_error(w: World) -> None:
    with pytest.raises(ChainError, match="ComputeShare has no function 'nope'"):
        w.market.share.send("nope", sender=w.alice)
    with pytest.raises(ChainError, match="has no function"):
        w.market.share.call("_checkpoint", w.alice)
