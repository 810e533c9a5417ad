import pytest
from chain_helpers import USD, World

from drakewell.chain import ContractReverted
from drakewell.core.merkle import MerkleTree, leaf_hash
from drakewell.metering.readings import DELIVERY_LEAF_TYPES

PRICE = 2 * USD  # per GPU-hour


def _open(w: World, gpus: int = 8, hours: int = 48) -> tuple[int, int]:
    """A lease from the start of the next epoch (the session's clock may be at any phase)."""
    epoch = w.chain.timestamp() // 86_400 + 1
    start = epoch * 86_400
    w.chain.warp(start)
    lid = w.market.escrow.open_lease_for(w.renter, gpus, start, start + hours * 3_600, PRICE)
    return lid, epoch


def _anchor(w: World, epoch: int, rows: list[list]) -> MerkleTree:
    tree = MerkleTree.of(DELIVERY_LEAF_TYPES, rows)
    w.market.meter.anchor(w.market.asset_id, epoch, b"\x01" * 32, tree.root, len(rows), 0, 0)
    return tree


def test_settle_pays_proven_delivery_once_and_splits_fee_and_holders(w: World) -> None:
    m = w.market
    lid, epoch = _open(w)
    assert m.escrow.lease(lid)["deposit"] == 8 * 48 * PRICE
    delivered = 8 * 86_400 - 3_600  # one GPU-hour short
    row = [lid, m.asset_id, epoch, delivered, 5_000]
    tree = _anchor(w, epoch, [row, [lid + 1, m.asset_id, epoch, 1, 1]])
    proof = tree.proof(leaf_hash(DELIVERY_LEAF_TYPES, row))
    with pytest.raises(ContractReverted, match="epoch not final"):
        m.escrow.settle(lid, epoch, delivered, 5_000, proof)
    w.chain.warp(w.chain.timestamp() + 3_600)
    with pytest.raises(ContractReverted, match="bad delivery proof"):
        m.escrow.settle(lid, epoch, delivered + 3_600, 5_000, proof)
    with pytest.raises(ContractReverted, match="not operator"):
        m.escrow.settle(lid, epoch, delivered, 5_000, proof, sender=w.alice)
    treasury_before = m.usd.balance_of(m.treasury)
    payment = m.escrow.settle(lid, epoch, delivered, 5_000, proof).value
    assert payment == delivered * PRICE // 3_600
    held = payment * m.spec.holdback_bps // 10_000
    fee = (payment - held) * m.spec.fee_bps // 10_000
    assert m.usd.balance_of(m.treasury) - treasury_before == fee
    assert m.share.total_distributed() == payment - held - fee
    with pytest.raises(ContractReverted, match="already settled"):
        m.escrow.settle(lid, epoch, delivered, 5_000, proof)


def test_close_refunds_shortfall_with_penalty_below_sla(w: World) -> None:
    m = w.market
    lid, epoch = _open(w, hours=24)
    delivered = 8 * 86_400 // 2  # half delivered: below the 95% SLA
    row = [lid, m.asset_id, epoch, delivered, 1]
    tree = _anchor(w, epoch, [row])
    w.chain.warp(w.chain.timestamp() + 3_600)
    with pytest.raises(ContractReverted, match="not ended"):
        m.escrow.close(lid)
    payment = m.escrow.settle(lid, epoch, delivered, 1, tree.proof(leaf_hash(DELIVERY_LEAF_TYPES, row))).value
    w.chain.warp(m.escrow.lease(lid)["end"])
    renter_before = m.usd.balance_of(w.renter)
    with pytest.raises(ContractReverted, match="not renter or operator"):
        m.escrow.close(lid, sender=w.alice)
    m.escrow.close(lid)
    lease = m.escrow.lease(lid)
    shortfall = lease["deposit"] - payment
    penalty = min(shortfall * m.spec.penalty_bps // 10_000, lease["held"])
    assert m.usd.balance_of(w.renter) - renter_before == shortfall + penalty
    with pytest.raises(ContractReverted, match="lease closed"):
        m.escrow.close(lid)
    t = m.escrow.totals()
    assert t["total_released"] + t["total_refunded"] == t["total_deposited"]  # the escrow is empty


def test_open_lease_refusals(w: World) -> None:
    m = w.market
    now = w.chain.timestamp()
    with pytest.raises(ContractReverted, match="not market"):
        m.escrow.send("open_lease_for", w.renter, 1, now, now + 3_600, PRICE, sender=w.alice)
    with pytest.raises(ContractReverted, match="end before start"):
        m.escrow.open_lease(1, now, now, PRICE, sender=w.renter)
    with pytest.raises(ContractReverted, match="no GPUs"):
        m.escrow.open_lease(0, now, now + 3_600, PRICE, sender=w.renter)
    with pytest.raises(ContractReverted):  # no allowance: the stablecoin refuses
        m.escrow.open_lease(1, now, now + 3_600, PRICE, sender=w.alice)
