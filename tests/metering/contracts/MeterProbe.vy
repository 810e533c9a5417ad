# pragma version ~=0.4.3
"""
@title MeterProbe
@notice Test double of the on-chain checks MeterRegistry and LeaseEscrow make on metering data:
        EIP-712 recovery of a reading's signer (domain "Drakewell Meter", version "1", this
        chain, this contract) and OpenZeppelin-standard Merkle proofs of readings and
        deliveries, verified with snekmate's merkle_proof_verification.
"""

from snekmate.utils import ecdsa
from snekmate.utils import merkle_proof_verification as mpv


struct Reading:
    node: address
    asset: bytes32
    epoch: uint64
    seq: uint64
    windowStart: uint64
    windowEnd: uint64
    energyWh: uint256
    gpuSeconds: uint256
    hashesTh: uint256
    tokens: uint256
    leaseId: uint256


READING_TYPEHASH: constant(bytes32) = keccak256(
    "Reading(address node,bytes32 asset,uint64 epoch,uint64 seq,uint64 windowStart,uint64 windowEnd,uint256 energyWh,uint256 gpuSeconds,uint256 hashesTh,uint256 tokens,uint256 leaseId)"
)
DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


@internal
@view
def _separator() -> bytes32:
    return keccak256(
        abi_encode(DOMAIN_TYPEHASH, keccak256("Drakewell Meter"), keccak256("1"), chain.id, self)
    )


@internal
@pure
def _encode(r: Reading) -> Bytes[352]:
    return abi_encode(
        r.node, r.asset, r.epoch, r.seq, r.windowStart, r.windowEnd,
        r.energyWh, r.gpuSeconds, r.hashesTh, r.tokens, r.leaseId,
    )


@external
@view
def chain_id() -> uint256:
    return chain.id


@external
@view
def domain_separator() -> bytes32:
    return self._separator()


@external
@view
def signer(r: Reading, signature: Bytes[65]) -> address:
    struct_hash: bytes32 = keccak256(concat(READING_TYPEHASH, self._encode(r)))
    digest: bytes32 = keccak256(concat(x"1901", self._separator(), struct_hash))
    return ecdsa._recover_sig(digest, signature)


@external
@pure
def verify_reading(root: bytes32, proof: DynArray[bytes32, 255], r: Reading) -> bool:
    return mpv._verify(proof, root, keccak256(keccak256(self._encode(r))))


@external
@pure
def verify_delivery(
    root: bytes32,
    proof: DynArray[bytes32, 255],
    lease_id: uint256,
    asset: bytes32,
    epoch: uint64,
    gpu_seconds: uint256,
    energy_wh: uint256,
) -> bool:
    leaf: bytes32 = keccak256(keccak256(abi_encode(lease_id, asset, epoch, gpu_seconds, energy_wh)))
    return mpv._verify(proof, root, leaf)
