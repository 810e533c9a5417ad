import pytest
from chain_helpers import World

from drakewell.chain import ContractReverted
from drakewell.core.merkle import MerkleTree, leaf_hash
from drakewell.metering import MeterDomain, NodeKey, Reading
from drakewell.metering.readings import DELIVERY_LEAF_TYPES, READING_LEAF_TYPES


def _signed_tree(w: World, n: int = 5):
    m = w.market
    domain = MeterDomain(w.chain.chain_id, m.meter.address)
    key = NodeKey.generate()
    epoch = 20_000
    readings = [
        Reading(
            key.address,
            m.asset_id,
            epoch,
            seq,
            epoch * 86_400 + 3_600 * seq,
            epoch * 86_400 + 3_600 * (seq + 1),
            10_000 + seq,
            28_800,
            0,
            1_000 * seq,
            7,
        )
        for seq in range(n)
    ]
    sigs = [key.sign_digest(domain.digest(r)) for r in readings]
    tree = MerkleTree.of(READING_LEAF_TYPES, [r.values() for r in readings])
    return key, epoch, readings, sigs, tree


def test_verify_reading_needs_anchored_root_valid_proof_and_registered_signer(w: World) -> None:
    m = w.market
    key, epoch, readings, sigs, tree = _signed_tree(w)
    r, sig = readings[2], sigs[2]
    proof = tree.proof(leaf_hash(READING_LEAF_TYPES, r.values()))
    assert not m.meter.verify_reading(r.values(), sig, proof)  # not anchored yet
    m.meter.anchor(m.asset_id, epoch, tree.root, b"\x00" * 32, len(readings), 0, 0)
    assert not m.meter.verify_reading(r.values(), sig, proof)  # signer not registered
    m.meter.set_signer(m.asset_id, key.address)
    assert m.meter.verify_reading(r.values(), sig, proof)
    assert not m.meter.verify_reading(r.values(), sigs[1], proof)  # another reading's signature
    assert not m.meter.verify_reading(readings[1].values(), sigs[1], proof)  # wrong proof
    forged = list(r.values())
    forged[6] += 1  # one more Wh
    assert not m.meter.verify_reading(forged, sig, proof)
    other = NodeKey.generate()
    assert not m.meter.verify_reading(
        r.values(), other.sign_digest(MeterDomain(w.chain.chain_id, m.meter.address).digest(r)), proof
    )


def test_digest_matches_the_off_chain_eip712_digest(w: World) -> None:
    m = w.market
    _, _, readings, _, _ = _signed_tree(w, 1)
    domain = MeterDomain(w.chain.chain_id, m.meter.address)
    assert bytes(m.meter.call("reading_digest", readings[0].values())) == domain.digest(readings[0])


def test_anchor_rules_and_challenge_window(w: World) -> None:
    m = w.market
    rows = [[1, m.asset_id, 5, 3_600, 100], [2, m.asset_id, 5, 7_200, 200]]
    tree = MerkleTree.of(DELIVERY_LEAF_TYPES, rows)
    with pytest.raises(ContractReverted, match="not operator"):
        m.meter.anchor(m.asset_id, 5, b"\x01" * 32, tree.root, 2, 300, 10_800, sender=w.alice)
    m.meter.anchor(m.asset_id, 5, b"\x01" * 32, tree.root, 2, 300, 10_800)
    with pytest.raises(ContractReverted, match="already anchored"):
        m.meter.anchor(m.asset_id, 5, b"\x02" * 32, tree.root, 2, 300, 10_800)
    assert not m.meter.is_final(m.asset_id, 5)
    proof = tree.proof(leaf_hash(DELIVERY_LEAF_TYPES, rows[0]))
    assert m.meter.verify_delivery(1, m.asset_id, 5, 3_600, 100, proof)
    assert not m.meter.verify_delivery(1, m.asset_id, 5, 3_601, 100, proof)
    with pytest.raises(ContractReverted, match="not challenger"):
        m.meter.send("void_epoch", m.asset_id, 5, b"\x00" * 32, sender=w.alice)
    m.meter.void_epoch(m.asset_id, 5)
    assert not m.meter.verify_delivery(1, m.asset_id, 5, 3_600, 100, proof)
    m.meter.anchor(m.asset_id, 5, b"\x03" * 32, tree.root, 2, 300, 10_800)  # re-anchor after a void
    w.chain.warp(w.chain.timestamp() + 3_600)
    assert m.meter.is_final(m.asset_id, 5)
    with pytest.raises(ContractReverted, match="epoch is final"):
        m.meter.send("void_epoch", m.asset_id, 5, b"\x00" * 32)


def test_eth_account_typed_data_signature_verifies_on_chain(w: World) -> None:
    """The domain and struct written out by hand, signed by eth-account, recovered by the contract."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    m = w.market
    acct = Account.create()
    epoch = 20_500
    fields = [
        ("node", "address"),
        ("asset", "bytes32"),
        ("epoch", "uint64"),
        ("seq", "uint64"),
        ("windowStart", "uint64"),
        ("windowEnd", "uint64"),
        ("energyWh", "uint256"),
        ("gpuSeconds", "uint256"),
        ("hashesTh", "uint256"),
        ("tokens", "uint256"),
        ("leaseId", "uint256"),
    ]
    values = [acct.address, m.asset_id, epoch, 3, epoch * 86_400, epoch * 86_400 + 60, 1_234, 480, 0, 99, 42]
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Reading": [{"name": n, "type": t} for n, t in fields],
        },
        "primaryType": "Reading",
        "domain": {
            "name": "Drakewell Meter",
            "version": "1",
            "chainId": w.chain.chain_id,
            "verifyingContract": m.meter.address,
        },
        "message": {n: v for (n, _), v in zip(fields, values, strict=True)},
    }
    sig = bytes(Account.sign_message(encode_typed_data(full_message=typed), acct.key).signature)
    tree = MerkleTree.of(READING_LEAF_TYPES, [values, [*values[:3], 4, *values[4:]]])
    proof = tree.proof(leaf_hash(READING_LEAF_TYPES, values))
    m.meter.anchor(m.asset_id, epoch, tree.root, b"\x00" * 32, 2, 0, 0)
    m.meter.set_signer(m.asset_id, acct.address)
    assert m.meter.verify_reading(values, sig, proof)
    typed["domain"]["chainId"] = w.chain.chain_id + 1  # another chain's signature does not verify
    other = bytes(Account.sign_message(encode_typed_data(full_message=typed), acct.key).signature)
    assert not m.meter.verify_reading(values, other, proof)
    m.meter.set_signer(m.asset_id, acct.address, False)  # a revoked signer no longer verifies
    assert not m.meter.verify_reading(values, sig, proof)
