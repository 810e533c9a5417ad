"""EIP-712 readings: the fast digest equals eth-account's, signatures round trip, bad JSON is refused."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from drakewell.core.merkle import keccak256
from drakewell.metering.readings import (
    READING_TYPE,
    MalformedReadingError,
    MeterDomain,
    Reading,
    SignedReading,
    asset_id,
    epoch_of,
    normalize_address,
)
from drakewell.metering.signing import (
    FastVerifier,
    NodeKey,
    recover_with_eth_account,
    sign_with_eth_account,
    signature_problem,
)


def _eth_account_digest(domain: MeterDomain, reading: Reading) -> bytes:
    msg = encode_typed_data(full_message=domain.typed_data(reading))
    return keccak256(b"\x19" + msg.version + msg.header + msg.body)


def test_type_string_is_the_agreed_struct() -> None:
    assert READING_TYPE.startswith("Reading(address node,bytes32 asset,uint64 epoch,uint64 seq,")
    assert READING_TYPE.endswith("uint256 hashesTh,uint256 tokens,uint256 leaseId)")


uint64 = st.integers(0, 2**64 - 1)
uint256 = st.integers(0, 2**256 - 1)


@settings(max_examples=40, deadline=None)
@given(
    node=st.binary(min_size=20, max_size=20),
    asset=st.binary(min_size=32, max_size=32),
    u64=st.tuples(uint64, uint64, uint64),
    u256=st.tuples(uint256, uint256, uint256, uint256, uint256),
    chain_id=st.integers(1, 2**64),
)
def test_fast_digest_equals_eth_account(
    node: bytes, asset: bytes, u64: tuple[int, ...], u256: tuple[int, ...], chain_id: int
) -> None:
    domain = MeterDomain(chain_id, "0x" + "ab" * 20)
    start = u64[2] % (2**63)
    reading = Reading("0x" + node.hex(), asset, u64[0], u64[1], start, start + 1, *u256)
    assert domain.digest(reading) == _eth_account_digest(domain, reading)


def test_signature_matches_eth_account_and_recovers(
    domain: MeterDomain, make_reading: Any, gpu_key: NodeKey
) -> None:
    reading = make_reading(lease_id=2**200 + 7)
    ours = gpu_key.sign(reading, domain)
    theirs = sign_with_eth_account(gpu_key.private_key, reading, domain)
    assert ours.signature == theirs.signature  # RFC 6979 deterministic, low s
    assert recover_with_eth_account(ours, domain) == gpu_key.address
    assert Account.from_key(gpu_key.private_key).address.lower() == gpu_key.address
    assert FastVerifier().recover_address(domain.digest(reading), ours.signature) == gpu_key.address


def test_signature_is_bound_to_the_domain(domain: MeterDomain, make_reading: Any, gpu_key: NodeKey) -> None:
    reading = make_reading()
    signed = gpu_key.sign(reading, domain)
    other_chain = MeterDomain(1, domain.verifying_contract)
    other_contract = MeterDomain(domain.chain_id, "0x" + "01" * 20)
    v = FastVerifier()
    assert v.is_signed_by(gpu_key.address, domain.digest(reading), signed.signature)
    assert not v.is_signed_by(gpu_key.address, other_chain.digest(reading), signed.signature)
    assert not v.is_signed_by(gpu_key.address, other_contract.digest(reading), signed.signature)


def test_fast_verifier_remembers_keys_but_still_checks(domain: MeterDomain, make_reading: Any) -> None:
    a, b = NodeKey((5).to_bytes(32, "big")), NodeKey((6).to_bytes(32, "big"))
    v = FastVerifier()
    r = make_reading(key=a)
    assert v.is_signed_by(a.address, domain.digest(r), a.sign(r, domain).signature)
    # after a's key is remembered, b's signature over a's reading is still refused
    assert not v.is_signed_by(a.address, domain.digest(r), b.sign(r, domain).signature)


def test_non_canonical_signatures_are_named(domain: MeterDomain, make_reading: Any, gpu_key: NodeKey) -> None:
    sig = gpu_key.sign(make_reading(), domain).signature
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = sig[:32] + (n - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") + bytes([55 - sig[64]])
    assert signature_problem(sig) is None
    assert "lower half" in (signature_problem(high_s) or "")
    assert "not 65" in (signature_problem(sig[:64]) or "")
    assert "v=1" in (signature_problem(sig[:64] + b"\x01") or "")
    assert FastVerifier().recover_pubkey(domain.digest(make_reading()), high_s) is None


def test_json_round_trip(domain: MeterDomain, make_reading: Any, gpu_key: NodeKey) -> None:
    signed = gpu_key.sign(make_reading(lease_id=42), domain)
    assert SignedReading.from_json(signed.to_json()) == signed
    assert MeterDomain.from_json(domain.to_json()) == domain
    text = signed.to_json()
    text["energyWh"] = str(text["energyWh"])  # decimal strings are accepted for big integers
    assert SignedReading.from_json(text) == signed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"node": "0x1234"}, "not an address"),
        ({"asset": "0xabcd"}, "not bytes32"),
        ({"epoch": -1}, "out of range"),
        ({"seq": 2**64}, "out of range"),
        ({"energyWh": 2**256}, "out of range"),
        ({"tokens": "lots"}, "not an unsigned integer"),
        ({"gpuSeconds": True}, "boolean"),
        ({"windowEnd": 0}, "not after windowStart"),
        ({"signature": "0x1234"}, "65 bytes"),
    ],
)
def test_malformed_json_is_refused_with_a_reason(
    domain: MeterDomain, make_reading: Any, gpu_key: NodeKey, change: dict[str, Any], message: str
) -> None:
    obj = gpu_key.sign(make_reading(), domain).to_json()
    obj.update(change)
    with pytest.raises(MalformedReadingError, match=message) as info:
        SignedReading.from_json(obj)
    assert info.value.hint


def test_missing_fields_and_wrong_shapes_are_named() -> None:
    with pytest.raises(MalformedReadingError, match="lacks field"):
        Reading.from_json({"node": "0x" + "11" * 20})
    with pytest.raises(MalformedReadingError, match="JSON object"):
        Reading.from_json([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(MalformedReadingError, match="chainId"):
        MeterDomain.from_json({"verifyingContract": "0x" + "11" * 20})


def test_epoch_and_asset_helpers() -> None:
    assert epoch_of(86_400 * 3 - 1) == 2
    assert epoch_of(86_400 * 3) == 3
    assert epoch_of(3_600 * 5, epoch_seconds=3_600) == 5
    assert asset_id("pool") == keccak256(b"pool")
    assert asset_id("0x" + "ab" * 32) == bytes.fromhex("ab" * 32)
    with pytest.raises(MalformedReadingError):
        asset_id(b"short")
    assert normalize_address("0x" + "AB" * 20) == "0x" + "ab" * 20
    assert normalize_address(bytes(20)) == "0x" + "00" * 20
