# pragma version ~=0.4.3
"""
@title MeterRegistry
@notice Registered node signers per asset and each epoch's anchored Merkle roots.
@dev Readings are EIP-712 typed structs (domain "Drakewell Meter", version "1", this contract).
     Per (asset, epoch) the operator anchors two roots in OpenZeppelin's StandardMerkleTree
     convention (leaf = keccak256(keccak256(abi.encode(values))), sorted pairs):
     - readings: leaf values = the Reading's fields in struct order;
     - deliveries: leaf values = (leaseId, asset, epoch, gpuSeconds, energyWh);
     and, by a second call (`anchor_capacity`) before the epoch is final, a third:
     - capacity: leaf values = (node, asset, epoch, kind, verifiedPerSecond, declaredPerSecond,
       passed, failed), the proofs of capacity (drakewell.metering.capacity): the evidence a
       challenger checks (`verify_capacity`) before voiding.
     An epoch is final `challenge_window` seconds after it is anchored. Inside the window a
     challenger may void it (with a reason hash); a voided epoch can be anchored again.

     Roles: OPERATOR_ROLE registers node signers and anchors roots; CHALLENGER_ROLE voids an
     epoch inside its window; PAUSER_ROLE pauses anchoring and signer changes (voiding and
     verification stay open, so a pause never stops a challenge); DEFAULT_ADMIN_ROLE grants roles.
"""

from snekmate.auth import access_control
from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712
from snekmate.utils import merkle_proof_verification as merkle
from snekmate.utils import pausable

initializes: access_control
initializes: eip712
initializes: pausable

exports: (
    access_control.hasRole,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.DEFAULT_ADMIN_ROLE,
    eip712.eip712Domain,
    pausable.paused,
)

OPERATOR_ROLE: public(constant(bytes32)) = keccak256("OPERATOR_ROLE")
CHALLENGER_ROLE: public(constant(bytes32)) = keccak256("CHALLENGER_ROLE")
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER_ROLE")
READING_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Reading(address node,bytes32 asset,uint64 epoch,uint64 seq,uint64 windowStart,uint64 windowEnd,uint256 energyWh,uint256 gpuSeconds,uint256 hashesTh,uint256 tokens,uint256 leaseId)"
)
MAX_PROOF: constant(uint256) = 64


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


struct EpochRoots:
    readings_root: bytes32
    deliveries_root: bytes32
    n_readings: uint256
    energy_wh: uint256
    gpu_seconds: uint256
    anchored_at: uint256
    voided: bool


signers: public(HashMap[bytes32, HashMap[address, bool]])
epochs: public(HashMap[bytes32, HashMap[uint64, EpochRoots]])
capacity_roots: public(HashMap[bytes32, HashMap[uint64, bytes32]])
challenge_window: public(uint256)


event SignerSet:
    asset: indexed(bytes32)
    signer: indexed(address)
    status: bool


event EpochAnchored:
    asset: indexed(bytes32)
    epoch: indexed(uint64)
    readings_root: bytes32
    deliveries_root: bytes32
    n_readings: uint256
    energy_wh: uint256
    gpu_seconds: uint256


event CapacityAnchored:
    asset: indexed(bytes32)
    epoch: indexed(uint64)
    capacity_root: bytes32


event EpochVoided:
    asset: indexed(bytes32)
    epoch: indexed(uint64)
    reason: bytes32


@deploy
def __init__(challenge_window_: uint256):
    access_control.__init__()
    eip712.__init__("Drakewell Meter", "1")
    pausable.__init__()
    self.challenge_window = challenge_window_
    access_control._grant_role(OPERATOR_ROLE, msg.sender)
    access_control._grant_role(CHALLENGER_ROLE, msg.sender)
    access_control._grant_role(PAUSER_ROLE, msg.sender)


@external
def set_signer(asset: bytes32, signer: address, status: bool):
    """@dev OPERATOR_ROLE only; not while paused."""
    assert access_control.hasRole[OPERATOR_ROLE][msg.sender], "MeterRegistry: not operator"
    pausable._require_not_paused()
    assert signer != empty(address), "MeterRegistry: zero signer"
    self.signers[asset][signer] = status
    log SignerSet(asset=asset, signer=signer, status=status)


@external
def anchor(
    asset: bytes32,
    epoch: uint64,
    readings_root: bytes32,
    deliveries_root: bytes32,
    n_readings: uint256,
    energy_wh: uint256,
    gpu_seconds: uint256,
):
    """@dev OPERATOR_ROLE only; not while paused."""
    assert access_control.hasRole[OPERATOR_ROLE][msg.sender], "MeterRegistry: not operator"
    pausable._require_not_paused()
    current: EpochRoots = self.epochs[asset][epoch]
    assert current.anchored_at == 0 or current.voided, "MeterRegistry: epoch already anchored"
    assert readings_root != empty(bytes32), "MeterRegistry: empty root"
    self.epochs[asset][epoch] = EpochRoots(
        readings_root=readings_root,
        deliveries_root=deliveries_root,
        n_readings=n_readings,
        energy_wh=energy_wh,
        gpu_seconds=gpu_seconds,
        anchored_at=block.timestamp,
        voided=False,
    )
    self.capacity_roots[asset][epoch] = empty(bytes32)  # a voided epoch's capacity root goes with it
    log EpochAnchored(
        asset=asset,
        epoch=epoch,
        readings_root=readings_root,
        deliveries_root=deliveries_root,
        n_readings=n_readings,
        energy_wh=energy_wh,
        gpu_seconds=gpu_seconds,
    )


@external
def anchor_capacity(asset: bytes32, epoch: uint64, capacity_root: bytes32):
    """@notice Anchor the epoch's capacity root (proofs of capacity: one leaf per node) beside its
         readings and deliveries roots, so a challenger can prove a failed check on chain.
    @dev OPERATOR_ROLE only; not while paused; once per anchoring, before the epoch is final."""
    assert access_control.hasRole[OPERATOR_ROLE][msg.sender], "MeterRegistry: not operator"
    pausable._require_not_paused()
    e: EpochRoots = self.epochs[asset][epoch]
    assert e.anchored_at != 0 and not e.voided, "MeterRegistry: epoch not anchored"
    assert block.timestamp < e.anchored_at + self.challenge_window, "MeterRegistry: epoch is final"
    assert capacity_root != empty(bytes32), "MeterRegistry: empty root"
    assert self.capacity_roots[asset][epoch] == empty(bytes32), "MeterRegistry: capacity root already anchored"
    self.capacity_roots[asset][epoch] = capacity_root
    log CapacityAnchored(asset=asset, epoch=epoch, capacity_root=capacity_root)


@external
def void_epoch(asset: bytes32, epoch: uint64, reason: bytes32):
    """@dev CHALLENGER_ROLE only, inside the challenge window (also while paused)."""
    assert access_control.hasRole[CHALLENGER_ROLE][msg.sender], "MeterRegistry: not challenger"
    e: EpochRoots = self.epochs[asset][epoch]
    assert e.anchored_at != 0 and not e.voided, "MeterRegistry: nothing to void"
    assert block.timestamp < e.anchored_at + self.challenge_window, "MeterRegistry: epoch is final"
    self.epochs[asset][epoch].voided = True
    log EpochVoided(asset=asset, epoch=epoch, reason=reason)


@view
@external
def is_final(asset: bytes32, epoch: uint64) -> bool:
    e: EpochRoots = self.epochs[asset][epoch]
    return e.anchored_at != 0 and not e.voided and block.timestamp >= e.anchored_at + self.challenge_window


@view
@external
def reading_digest(r: Reading) -> bytes32:
    return self._digest(r)


@view
@internal
def _digest(r: Reading) -> bytes32:
    struct_hash: bytes32 = keccak256(
        abi_encode(
            READING_TYPEHASH,
            r.node,
            r.asset,
            r.epoch,
            r.seq,
            r.windowStart,
            r.windowEnd,
            r.energyWh,
            r.gpuSeconds,
            r.hashesTh,
            r.tokens,
            r.leaseId,
        )
    )
    return eip712._hash_typed_data_v4(struct_hash)


@view
@external
def verify_reading(r: Reading, signature: Bytes[65], proof: DynArray[bytes32, MAX_PROOF]) -> bool:
    """@notice True iff the reading is in its epoch's anchored tree and signed by a registered node."""
    e: EpochRoots = self.epochs[r.asset][r.epoch]
    if e.anchored_at == 0 or e.voided:
        return False
    leaf: bytes32 = keccak256(
        keccak256(
            abi_encode(
                r.node,
                r.asset,
                r.epoch,
                r.seq,
                r.windowStart,
                r.windowEnd,
                r.energyWh,
                r.gpuSeconds,
                r.hashesTh,
                r.tokens,
                r.leaseId,
            )
        )
    )
    if not merkle._verify(proof, e.readings_root, leaf):
        return False
    signer: address = ecdsa._recover_sig(self._digest(r), signature)
    return signer == r.node and self.signers[r.asset][signer]


@view
@external
def verify_delivery(
    lease_id: uint256,
    asset: bytes32,
    epoch: uint64,
    gpu_seconds: uint256,
    energy_wh: uint256,
    proof: DynArray[bytes32, MAX_PROOF],
) -> bool:
    e: EpochRoots = self.epochs[asset][epoch]
    if e.anchored_at == 0 or e.voided:
        return False
    leaf: bytes32 = keccak256(keccak256(abi_encode(lease_id, asset, epoch, gpu_seconds, energy_wh)))
    return merkle._verify(proof, e.deliveries_root, leaf)


@external
def pause():
    """@notice Stop anchoring and signer changes. PAUSER_ROLE only."""
    assert access_control.hasRole[PAUSER_ROLE][msg.sender], "MeterRegistry: not pauser"
    pausable._pause()


@external
def unpause():
    """@notice PAUSER_ROLE only."""
    assert access_control.hasRole[PAUSER_ROLE][msg.sender], "MeterRegistry: not pauser"
    pausable._unpause()


@view
@external
def verify_capacity(
    node: address,
    asset: bytes32,
    epoch: uint64,
    kind: uint8,
    verified_per_s: uint256,
    declared_per_s: uint256,
    passed: uint32,
    failed: uint32,
    proof: DynArray[bytes32, MAX_PROOF],
) -> bool:
    """@notice True when the node's capacity leaf is in the epoch's anchored capacity root."""
    root: bytes32 = self.capacity_roots[asset][epoch]
    if root == empty(bytes32) or self.epochs[asset][epoch].voided:
        return False
    leaf: bytes32 = keccak256(
        keccak256(abi_encode(node, asset, epoch, kind, verified_per_s, declared_per_s, passed, failed))
    )
    return merkle._verify(proof, root, leaf)
