"""The chain lease sink against a recording escrow double (the real escrow: see the chain tests)."""

from __future__ import annotations

import pytest
from exchange_helpers import INST, funded_engine

from drakewell.core.errors import ChainError
from drakewell.exchange.leases import ChainLeaseSink, LeaseForwarder, LeaseSink, LeaseSinkError

P = 2_000_000


class RecordingEscrow:
    """Keeps the calls, numbers leases from 1, and can refuse (like a revert) on demand."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int, int, int, str | None]] = []
        self.refuse = False

    def open_lease_for(
        self, renter: str, gpus: int, start: int, end: int, price: int, *, sender: str | None = None
    ) -> int:
        if self.refuse:
            raise ChainError("LeaseEscrow: insufficient allowance", hint="approve the escrow")
        self.calls.append((renter, gpus, start, end, price, sender))
        return len(self.calls)


def test_each_durable_lease_opens_once_in_its_assets_escrow_with_the_same_deposit() -> None:
    e = funded_engine()
    e.attach(lambda batch: None)
    bob_escrow, dave_escrow = RecordingEscrow(), RecordingEscrow()
    sink = ChainLeaseSink(
        {"pool-bob": bob_escrow, "pool-dave": dave_escrow},
        {"alice": "0xA11CE", "carol": "0xCA401"},
        sender="0xMARKET",
    )
    assert isinstance(sink, LeaseSink)
    fwd = LeaseForwarder(e, sink)
    e.place("bob", INST, "sell", price=P, qty=2)
    e.place("dave", INST, "sell", price=P + 1, qty=3)
    e.place("alice", INST, "buy", price=P + 1, qty=4)
    assert fwd.forward() == 0  # nothing durable yet
    e.commit()
    assert fwd.forward() == 2 and fwd.forward() == 0
    inst = e.instruments[INST]
    assert bob_escrow.calls == [("0xA11CE", 2, inst.start_s, inst.end_s, P, "0xMARKET")]
    assert dave_escrow.calls == [("0xA11CE", 2, inst.start_s, inst.end_s, P + 1, "0xMARKET")]
    for lease, (_, gpus, start, end, price, _) in zip(
        e.leases, bob_escrow.calls + dave_escrow.calls, strict=True
    ):
        assert gpus * (end - start) * price // 3600 == lease.amount  # the escrow's deposit rule
    assert fwd.backend_ids == {1: 1, 2: 1}


def test_a_refused_lease_stays_queued_and_is_retried_in_order() -> None:
    e = funded_engine()
    escrow = RecordingEscrow()
    fwd = LeaseForwarder(e, ChainLeaseSink({"pool-bob": escrow}, {"alice": "0xA11CE"}))
    e.place("bob", INST, "sell", price=P, qty=5)
    e.place("alice", INST, "buy", price=P, qty=1)
    e.place("alice", INST, "buy", price=P, qty=1)
    e.commit()
    escrow.refuse = True
    assert fwd.forward() == 0 and isinstance(fwd.last_error, ChainError) and fwd.cursor == 0
    escrow.refuse = False
    assert fwd.forward() == 2 and fwd.last_error is None and len(escrow.calls) == 2


@pytest.mark.parametrize(
    ("escrows", "renters", "words"),
    [
        ({}, {"alice": "0xA"}, "has no LeaseEscrow"),
        ({"pool-bob": RecordingEscrow()}, {}, "has no chain address"),
    ],
)
def test_unmapped_assets_and_accounts_are_refused_with_a_hint(
    escrows: dict[str, RecordingEscrow], renters: dict[str, str], words: str
) -> None:
    e = funded_engine()
    e.place("bob", INST, "sell", price=P, qty=1)
    e.place("alice", INST, "buy", price=P, qty=1)
    with pytest.raises(LeaseSinkError, match=words) as info:
        ChainLeaseSink(escrows, renters).open_lease(e.leases[0])
    assert info.value.hint


@pytest.mark.slow
def test_traded_leases_open_funded_in_the_real_lease_escrow() -> None:
    import boa

    with boa.env.anchor():  # the embedded chain is boa's global one: leave it as found
        _open_leases_on_an_embedded_chain()


def _open_leases_on_an_embedded_chain() -> None:
    from drakewell.chain import AssetSpec, Chain

    chain = Chain.embedded()
    market = chain.deploy_market(AssetSpec("Exchange test H100 pool"))
    renter = chain.new_account()
    market.usd.mint(renter, 10_000 * 10**6)
    market.usd.approve(market.escrow.address, 10_000 * 10**6, sender=renter)
    e = funded_engine()
    sink = ChainLeaseSink({"pool-bob": market.escrow}, {"alice": renter})
    fwd = LeaseForwarder(e, sink)
    e.place("bob", INST, "sell", price=P, qty=2)
    e.place("alice", INST, "buy", price=P, qty=2)
    e.commit()
    assert fwd.forward() == 1, fwd.last_error
    lease = e.leases[0]
    on_chain = market.escrow.lease(fwd.backend_ids[lease.lease_id] or 0)
    assert (
        on_chain["renter"].lower(),
        on_chain["gpus"],
        on_chain["start"],
        on_chain["end"],
        on_chain["price"],
    ) == (renter.lower(), 2, lease.start_s, lease.end_s, P)
    assert on_chain["deposit"] == lease.amount == P * 2 * 24
    assert market.usd.balance_of(renter) == 10_000 * 10**6 - lease.amount
    # without an allowance the escrow reverts: the lease stays queued, nothing is lost
    market.usd.approve(market.escrow.address, 0, sender=renter)
    e.place("bob", INST, "sell", price=P, qty=1)
    e.place("alice", INST, "buy", price=P, qty=1)
    e.commit()
    assert fwd.forward() == 0 and isinstance(fwd.last_error, ChainError) and fwd.cursor == 1
    market.usd.approve(market.escrow.address, 10**12, sender=renter)
    assert fwd.forward() == 1 and market.escrow.totals()["total_deposited"] == P * 3 * 24


@pytest.mark.slow
def test_serve_chain_option_builds_an_escrow_per_asset_and_a_funded_address_per_account() -> None:
    import boa

    from drakewell.exchange.cli import _embedded_chain_sink

    with boa.env.anchor():
        e = funded_engine(buyers=("alice",), sellers=("bob",))
        e.place("bob", INST, "sell", price=P, qty=1)
        e.place("alice", INST, "buy", price=P, qty=1)  # traded before the chain existed
        sink = _embedded_chain_sink(e)
        assert set(sink.escrows) == {"pool-alice", "pool-bob"} and set(sink.renters) == {"alice", "bob"}
        fwd = LeaseForwarder(e, sink)
        e.commit()
        assert fwd.forward() == 1, fwd.last_error
        e.place("bob", INST, "sell", price=P, qty=3)
        e.place("alice", INST, "buy", price=P, qty=3)
        e.commit()
        assert fwd.forward() == 1, fwd.last_error
        escrow = sink.escrows["pool-bob"]
        assert escrow.totals()["total_deposited"] == sum(lease.amount for lease in e.leases)  # type: ignore[attr-defined]
