"""Gas benchmark of the Drakewell contracts, measured in one run on the embedded EVM.

Each figure is the gas a transaction calling the function would use (a receipt's ``gasUsed``):
``drakewell.chain.gas.transaction_gas`` gives each call a fresh transaction's storage and access
state, adds the intrinsic cost (21,000 + calldata) and subtracts the capped refund; the anvil
integration test checks it equals anvil's receipts. View functions (``verify_reading``) are
measured the same way, as if sent in a transaction.

- ``transfer_plain`` (the anchor): an unmodified snekmate ERC-20 transfer, deployed in this run,
  between two accounts that already hold tokens.
- ``transfer_share``: a ComputeShare compliant transfer in the same situation, after a revenue
  distribution so both parties' revenue checkpoints are written (the worst case). Target ≤ 1.6×
  the plain transfer (ERC-3643's reference T-REX transfer: 231,359 gas).
- ``distribute_10`` / ``distribute_10000``: a revenue deposit with 10 and with 10,000 holders
  (each a second deposit, so both write non-zero slots). Target: the same gas (ratio 1.0).
  The 10,000 holders are allowlisted and minted one by one on the embedded chain.
- ``claim``: a holder's first claim from the 10,000-holder share, the costly case: its
  withdrawn record, its stablecoin balance and the share's claimed total all go from zero to
  non-zero (three 20,000-gas stores); later claims cost less.
- ``verify_2p10``: ``MeterRegistry.verify_reading`` of a signed reading in a full tree of 2^10
  signed readings (proof: 10 hashes). ``verify_2p20``: the same in a tree of 2^20 leaves, built
  sparsely: the proven leaf and 20 random sibling subtree roots, the root computed up the path
  (the contract sees exactly what a full tree gives: a 20-hash proof against a root).
- ``settle``: ``LeaseEscrow.settle`` of one lease-epoch proven in a deliveries tree of 2^10 leaves.
- ``borrow`` / ``liquidate``: ``CreditVault.borrow`` against deposited shares, and a liquidation
  at the close factor after a 30% price shock.

Usage: ``python benchmarks/gas.py [--json OUT] [--holders N]``. Exits 1 when a target is missed.
Gas does not depend on machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

SHARE = 10**18
USD = 10**6
SHARE_RATIO_TARGET = 1.6
T_REX_TRANSFER_GAS = 231_359


class Meter:
    """Transaction gas of calls on the embedded chain (see ``drakewell.chain.gas``)."""

    def gas(self, client: Any, fn: str, *args: Any, sender: str) -> int:
        from drakewell.chain.gas import transaction_gas

        return transaction_gas(client, fn, *args, sender=sender)


def _holders_share(chain: Any, market: Any, n: int) -> list[str]:
    holders = ["0x%040x" % (0x10_0000 + i) for i in range(n)]
    share, deployer = market.share.handle, chain.deployer
    for h in holders:
        share.set_allowlisted(h, True, sender=deployer)
        share.mint(h, 10 * SHARE, sender=deployer)
    return holders


def _distribute_gas(meter: Meter, chain: Any, market: Any) -> int:
    market.usd.mint(chain.deployer, 2_000 * USD)
    market.usd.approve(market.share.address, 2_000 * USD, sender=chain.deployer)
    market.share.distribute(1_000 * USD, sender=chain.deployer)  # first deposit writes fresh slots
    return meter.gas(market.share, "distribute", 1_000 * USD, sender=chain.deployer)


def measure(n_holders: int) -> dict[str, Any]:
    import secrets

    from drakewell.chain import AssetSpec, Chain
    from drakewell.core.merkle import MerkleTree, hash_pair, leaf_hash
    from drakewell.metering import MeterDomain, NodeKey, Reading
    from drakewell.metering.readings import DELIVERY_LEAF_TYPES, READING_LEAF_TYPES

    meter = Meter()
    chain = Chain.embedded()
    d = chain.deployer
    a, b = chain.new_account(), chain.new_account()
    out: dict[str, Any] = {}

    # transfers: plain snekmate ERC-20 vs ComputeShare, both parties already holding
    plain = chain.deploy("PlainToken")
    plain.send("mint", a, 100 * SHARE)
    plain.send("mint", b, 100 * SHARE)
    plain.send("transfer", b, SHARE, sender=a)
    out["transfer_plain"] = meter.gas(plain, "transfer", b, SHARE, sender=a)

    m = chain.deploy_market(AssetSpec("Gas pool A"))
    for x in (a, b):
        m.share.set_allowlisted(x)
        m.share.mint(x, 100 * SHARE)
    m.share.transfer(b, SHARE, sender=a)
    m.usd.mint(d, 1_000 * USD)
    m.usd.approve(m.share.address, 1_000 * USD, sender=d)
    m.share.distribute(1_000 * USD, sender=d)  # both checkpoints now have revenue to record
    out["transfer_share"] = meter.gas(m.share, "transfer", b, SHARE, sender=a)

    # distribute with 10 and with n holders, then a claim among n holders
    m10 = chain.deploy_market(AssetSpec("Gas pool 10"))
    _holders_share(chain, m10, 10)
    out["distribute_10"] = _distribute_gas(meter, chain, m10)
    t0 = time.perf_counter()
    mn = chain.deploy_market(AssetSpec("Gas pool N"))
    holders = _holders_share(chain, mn, n_holders)
    setup_s = time.perf_counter() - t0
    out[f"distribute_{n_holders}"] = _distribute_gas(meter, chain, mn)
    out["claim"] = meter.gas(mn.share, "claim", sender=holders[n_holders // 2])

    # verify_reading: full 2^10 tree of signed readings; sparse 2^20 tree
    domain = MeterDomain(chain.chain_id, m.meter.address)
    key = NodeKey.generate()
    m.meter.set_signer(m.asset_id, key.address)
    epoch = chain.timestamp() // 86_400

    def reading(seq: int, ep: int) -> Reading:
        start = ep * 86_400 + seq
        return Reading(key.address, m.asset_id, ep, seq, start, start + 60, 1_200, 480, 0, 0, 0)

    readings = [reading(i, epoch) for i in range(2**10)]
    tree = MerkleTree.of(READING_LEAF_TYPES, [r.values() for r in readings])
    m.meter.anchor(m.asset_id, epoch, tree.root, b"\x00" * 32, len(readings), 0, 0)
    r = readings[333]
    proof = tree.proof(leaf_hash(READING_LEAF_TYPES, r.values()))
    sig = key.sign_digest(domain.digest(r))
    assert len(proof) == 10 and m.meter.verify_reading(r.values(), sig, proof)
    out["verify_2p10"] = meter.gas(m.meter, "verify_reading", r.values(), sig, proof, sender=d)

    r20 = reading(777, epoch + 1)
    node = leaf_hash(READING_LEAF_TYPES, r20.values())
    proof20 = [secrets.token_bytes(32) for _ in range(20)]
    for sibling in proof20:
        node = hash_pair(node, sibling)
    m.meter.anchor(m.asset_id, epoch + 1, node, b"\x00" * 32, 2**20, 0, 0)
    sig20 = key.sign_digest(domain.digest(r20))
    assert m.meter.verify_reading(r20.values(), sig20, proof20)
    out["verify_2p20"] = meter.gas(m.meter, "verify_reading", r20.values(), sig20, proof20, sender=d)

    # settle one lease-epoch proven in a 2^10-leaf deliveries tree
    renter = chain.new_account()
    price = 2 * USD
    m.usd.mint(renter, 10_000 * USD)
    m.usd.approve(m.escrow.address, 10_000 * USD, sender=renter)
    start = epoch * 86_400  # covers epochs epoch .. epoch + 2 in full: settle pays up to 8 GPU-days
    lid = m.escrow.open_lease_for(renter, 8, start, start + 72 * 3_600, price)
    d_epoch = epoch + 2
    row = [lid, m.asset_id, d_epoch, 8 * 86_400, 9_000_000]
    rows = [row] + [[lid + 1 + i, m.asset_id, d_epoch, 3_600 * i, i] for i in range(2**10 - 1)]
    dtree = MerkleTree.of(DELIVERY_LEAF_TYPES, rows)
    m.meter.anchor(m.asset_id, d_epoch, b"\x01" * 32, dtree.root, len(rows), 0, 0)
    chain.warp(chain.timestamp() + m.spec.challenge_window_s)
    dproof = dtree.proof(leaf_hash(DELIVERY_LEAF_TYPES, row))
    assert len(dproof) == 10
    out["settle"] = meter.gas(m.escrow, "settle", lid, d_epoch, row[3], row[4], dproof, sender=d)

    # borrow against deposited shares; liquidate at the close factor after a 30% price shock
    nav = 2 * USD
    lender = chain.new_account()
    m.usd.mint(lender, 1_000_000 * USD)
    m.usd.approve(m.vault.address, 1_000_000 * USD, sender=lender)
    m.vault.supply(1_000_000 * USD, sender=lender)
    m.vault.post_nav(nav)
    m.share.approve(m.vault.address, 50 * SHARE, sender=b)
    m.vault.deposit(50 * SHARE, sender=b)
    m.vault.borrow(10 * USD, sender=b)  # the position exists: measure a second, typical borrow
    out["borrow"] = meter.gas(m.vault, "borrow", 39 * USD, sender=b)
    m.vault.post_nav(nav * 7 // 10)
    assert m.vault.health_factor(b) < 1
    m.usd.mint(a, 1_000 * USD)
    m.usd.approve(m.vault.address, 1_000 * USD, sender=a)
    repay = m.vault.debt_of(b) * m.spec.close_factor_bps // 10_000
    out["liquidate"] = meter.gas(m.vault, "liquidate", b, repay, sender=a)
    return {"figures": out, "holders": n_holders, "holder_setup_s": setup_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--holders", type=int, default=10_000, help="holders of the large distribution")
    args = parser.parse_args()
    t0 = time.perf_counter()
    run = measure(args.holders)
    f = run["figures"]
    big = f"distribute_{args.holders}"
    anchor = f["transfer_plain"]
    targets: dict[str, tuple[str, bool]] = {
        "transfer_share": (
            f"<= {SHARE_RATIO_TARGET}x transfer_plain",
            f["transfer_share"] <= SHARE_RATIO_TARGET * anchor,
        ),
        big: ("== distribute_10", f[big] == f["distribute_10"]),
    }
    print(f"{'figure':<18}{'gas':>10}  {'x plain':>8}  target")
    for name, gas in f.items():
        target, ok = targets.get(name, ("-", True))
        mark = "" if name not in targets else ("  ok" if ok else "  MISSED")
        print(f"{name:<18}{gas:>10,}  {gas / anchor:>8.2f}  {target}{mark}")
    print(
        f"ERC-3643 T-REX reference transfer: {T_REX_TRANSFER_GAS:,} gas "
        f"({f['transfer_share'] / T_REX_TRANSFER_GAS:.2f}x of it for transfer_share)"
    )
    print(
        f"{args.holders:,} holders set up in {run['holder_setup_s']:.1f} s; "
        f"run {time.perf_counter() - t0:.1f} s "
        f"(load average {os.getloadavg()[0]:.1f}; gas does not depend on load)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = dict(f)
        doc["distribute_10000"] = f[big]
        doc["anchor"] = "transfer_plain"
        doc["ratios"] = {k: round(v / anchor, 4) for k, v in f.items()}
        doc["targets"] = {k: {"target": t, "met": ok} for k, (t, ok) in targets.items()}
        doc["holders"] = args.holders
        args.json.write_text(json.dumps(doc, indent=2))
    return 0 if all(ok for _, ok in targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
