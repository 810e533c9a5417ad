"""End to end over JSON-RPC against a real anvil node: lease -> settle -> distribute -> claim ->
borrow -> liquidate. The test starts anvil on a free loopback port and always stops it."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from chain_helpers import SHARE, USD
from eth_utils import to_checksum_address
from typer.testing import CliRunner

from drakewell.chain import AssetSpec, Chain, ChainError, ContractReverted, ShareClient
from drakewell.chain.cli import app
from drakewell.chain.gas import transaction_gas
from drakewell.core.merkle import MerkleTree, leaf_hash
from drakewell.metering.readings import DELIVERY_LEAF_TYPES

ANVIL = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "anvil"
# anvil's first well-known development key (public test mnemonic, holds only dev-chain ether)
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DISTRIBUTOR_TYPES = ["uint256", "address", "uint256"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def anvil_url() -> Iterator[str]:
    if not ANVIL.exists():
        pytest.fail(f"anvil is not installed at {ANVIL}: run `make node` (npm ci) first")
    port = _free_port()
    proc = subprocess.Popen(
        [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent", "--code-size-limit", "50000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"anvil exited at start (code {proc.returncode}): {err[:500]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("anvil did not open its port within 30 s")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.integration
def test_lease_settle_distribute_claim_borrow_liquidate_over_rpc(anvil_url: str) -> None:
    chain = Chain.rpc(anvil_url, DEV_KEY)
    assert chain.backend.name == "rpc" and chain.chain_id == 31337
    m = chain.deploy_market(AssetSpec("Anvil H100 pool", challenge_window_s=600))
    alice, bob, renter, liquidator = (chain.new_account() for _ in range(4))
    for a in (alice, bob, liquidator):
        m.share.set_allowlisted(a)
    m.share.mint(alice, 750 * SHARE)
    m.share.mint(bob, 250 * SHARE)
    attached = chain.attach("ComputeShare", m.share.address.lower(), client=ShareClient)
    assert attached.address == m.share.address and attached.balance_of(bob) == 250 * SHARE
    with pytest.raises(ChainError, match="no contract code"):
        chain.attach("ComputeShare", alice)

    # lease: the renter deposits the full price
    price = 3 * USD  # per GPU-hour
    m.usd.mint(renter, 1_000 * USD)
    m.usd.approve(m.escrow.address, 1_000 * USD, sender=renter)
    start = (chain.timestamp() // 86_400 + 1) * 86_400  # one whole epoch: settle pays up to 4 GPU-days
    lid = int(m.escrow.call("next_lease_id"))
    m.escrow.open_lease(4, start, start + 24 * 3_600, price, sender=renter)
    assert m.usd.balance_of(m.escrow.address) == 4 * 24 * price

    # settle: anchor the epoch's deliveries root, wait out the challenge window, settle once
    epoch = start // 86_400
    delivered = 4 * 20 * 3_600  # 20 of 24 hours delivered
    row = [lid, m.asset_id, epoch, delivered, 12_345]
    tree = MerkleTree.of(DELIVERY_LEAF_TYPES, [row, [lid + 7, m.asset_id, epoch, 1, 1]])
    m.meter.anchor(m.asset_id, epoch, b"\x02" * 32, tree.root, 2, 12_346, delivered + 1)
    proof = tree.proof(leaf_hash(DELIVERY_LEAF_TYPES, row))
    assert m.meter.verify_delivery(lid, m.asset_id, epoch, delivered, 12_345, proof)
    with pytest.raises(ContractReverted, match=r"LeaseEscrow\.settle reverted: .*epoch not final"):
        m.escrow.settle(lid, epoch, delivered, 12_345, proof)
    chain.warp(chain.timestamp() + 601)
    treasury_before = m.usd.balance_of(m.treasury)
    receipt = m.escrow.settle(lid, epoch, delivered, 12_345, proof)
    assert receipt.gas_used > 21_000 and receipt.tx_hash
    payment = delivered * price // 3_600
    held = payment * m.spec.holdback_bps // 10_000
    fee = (payment - held) * m.spec.fee_bps // 10_000
    distributed = payment - held - fee
    assert m.usd.balance_of(m.treasury) - treasury_before == fee
    assert m.share.total_distributed() == distributed
    with pytest.raises(ContractReverted, match="already settled"):
        m.escrow.settle(lid, epoch, delivered, 12_345, proof)

    # distribute -> claim: pro rata to 750/250
    assert m.share.claimable(alice) + m.share.claimable(bob) <= distributed
    assert abs(m.share.claimable(alice) - distributed * 3 // 4) <= 1
    m.share.claim(sender=alice)
    assert abs(m.usd.balance_of(alice) - distributed * 3 // 4) <= 1
    assert m.share.claimable(alice) == 0

    # a campaign's MerkleDistributor
    rows = [[0, alice, 5 * USD], [1, bob, 2 * USD]]
    dtree = MerkleTree.of(DISTRIBUTOR_TYPES, rows)
    dist = chain.deploy_distributor(m.usd.address, dtree.root)
    m.usd.mint(dist.address, 7 * USD)
    dist.claim(1, bob, 2 * USD, dtree.proof(leaf_hash(DISTRIBUTOR_TYPES, rows[1])), sender=bob)
    assert m.usd.balance_of(bob) == 2 * USD and dist.is_claimed(1)

    # borrow against shares, then a price shock makes the loan liquidatable
    lender = chain.new_account()  # lenders supply through the vault's books
    m.usd.mint(lender, 100_000 * USD)
    m.usd.approve(m.vault.address, 100_000 * USD, sender=lender)
    m.vault.supply(100_000 * USD, sender=lender)
    m.vault.post_nav(2 * USD)
    m.share.approve(m.vault.address, 250 * SHARE, sender=bob)
    m.vault.deposit(250 * SHARE, sender=bob)
    m.vault.borrow(250 * USD, sender=bob)  # LTV 50% of 500 USD
    with pytest.raises(ContractReverted, match="over LTV"):
        m.vault.borrow(10 * USD, sender=bob)
    m.usd.mint(liquidator, 1_000 * USD)
    m.usd.approve(m.vault.address, 1_000 * USD, sender=liquidator)
    with pytest.raises(ContractReverted, match="position is healthy"):
        m.vault.liquidate(bob, 10 * USD, sender=liquidator)
    m.vault.post_nav(int(1.4 * USD))
    assert m.vault.health_factor(bob) < 1
    debt_before = m.vault.debt_of(bob)
    m.vault.liquidate(bob, 100 * USD, sender=liquidator)
    seized = m.share.balance_of(liquidator)
    assert seized == 100 * USD * 10_500 * SHARE // (10_000 * int(1.4 * USD))
    assert m.vault.debt_of(bob) < debt_before
    assert m.share.total_supply() == 1_000 * SHARE  # conserved through vault and liquidation


@pytest.mark.integration
def test_cli_deploys_over_rpc(anvil_url: str) -> None:
    result = CliRunner().invoke(app, ["deploy", "--rpc", anvil_url, "--key", DEV_KEY, "--asset", "RPC pool"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["backend"] == "rpc" and out["chain_id"] == 31337
    chain = Chain.rpc(anvil_url, DEV_KEY)
    for key in ("usd", "share", "meter", "escrow", "vault"):
        assert len(chain.backend.w3.eth.get_code(out[key])) > 0  # type: ignore[attr-defined]
    share = chain.attach("ComputeShare", out["share"], client=ShareClient)
    assert share.has_role("COMPLIANCE_ROLE", chain.deployer)
    share.set_allowlisted(out["usd"])
    assert share.is_allowlisted(out["usd"])
    with pytest.raises(ChainError, match="no contract code"):
        chain.attach("ComputeShare", chain.new_account())


def _gas_scenario(chain: Chain, gas_of: Callable[..., int]) -> dict[str, int]:
    d = chain.deployer
    # the recipient is fixed and has no zero byte: calldata costs 4 gas per zero byte and 16 per
    # other byte, so random addresses on the two chains would differ by 12 gas per zero byte
    a, b = chain.new_account(), to_checksum_address("0x" + "7e" * 20)
    plain = chain.deploy("PlainToken")
    plain.send("mint", a, 100 * SHARE)
    out = {"plain_new_holder": gas_of(plain, "transfer", b, SHARE, sender=a)}
    out["plain_holder"] = gas_of(plain, "transfer", b, SHARE, sender=a)
    m = chain.deploy_market(AssetSpec("Gas check"))
    for x in (a, b):
        m.share.set_allowlisted(x)
        m.share.mint(x, 100 * SHARE)
    m.usd.mint(d, 10**12)
    m.usd.approve(m.share.address, 10**12, sender=d)
    out["distribute"] = gas_of(m.share, "distribute", USD, sender=d)
    out["share_transfer"] = gas_of(m.share, "transfer", b, SHARE, sender=a)
    out["claim"] = gas_of(m.share, "claim", sender=a)
    return out


@pytest.mark.integration
def test_embedded_transaction_gas_equals_anvil_receipts(anvil_url: str) -> None:
    on_node = _gas_scenario(
        Chain.rpc(anvil_url, DEV_KEY), lambda c, fn, *a, sender: c.send(fn, *a, sender=sender).gas_used
    )
    embedded = _gas_scenario(Chain.embedded(), transaction_gas)
    assert embedded == on_node
    # a zero -> non-zero balance store costs 17,100 more than a non-zero -> non-zero one
    assert on_node["plain_new_holder"] - on_node["plain_holder"] == 17_100
