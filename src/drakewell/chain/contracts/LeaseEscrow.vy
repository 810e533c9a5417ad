# pragma version ~=0.4.3
"""
@title LeaseEscrow
@notice Leases of an asset's GPUs, paid in advance into escrow and released against metered delivery.
@dev A renter (or the exchange, with the renter's allowance) opens a lease by depositing
     `gpus * hours * price`. For each final epoch the operator settles the lease's delivered
     GPU-seconds, proven against the deliveries root anchored in MeterRegistry:
         payment = gpu_seconds * price // 3600            (floor: never more than owed)
     where gpu_seconds is first capped at what the lease can have delivered in that epoch,
         cap = gpus * overlap([epoch * epoch_s, (epoch + 1) * epoch_s), [start, end))
     (an epoch the lease does not overlap cannot be settled), and the payment is capped at
     what is left of the deposit. Of each payment `holdback_bps` is held back until
     the lease closes; of the rest, `fee_bps` goes to the treasury and the remainder is
     distributed to the asset's share holders. When the lease closes (after its end), if the
     delivered GPU-seconds are below `sla_bps` of contracted, the renter gets the unused deposit
     (the shortfall) plus a penalty of `penalty_bps` of the shortfall's value, paid out of the
     holdback; whatever holdback remains is released like a payment. Each (lease, epoch) is
     settled once; a lease closes once: nothing is ever paid twice, and the escrow never pays
     out more than was deposited.

     Closing: the operator may close a lease once it has ended. The renter may close it only
     when every epoch overlapping the lease has been settled, or after
         close_deadline = end + epoch_s + anchor_grace_s + meter.challenge_window()
     (the last overlapping epoch ends before end + epoch_s, is anchored within the grace and is
     final after the challenge window): until then delivered compute may still be unpaid, and a
     renter's close would refund it.

     Roles: MARKET_ROLE opens leases for renters (the exchange); OPERATOR_ROLE settles and
     closes; PAUSER_ROLE pauses opening and settling (closing is never paused: a pause holds
     payments to holders, never the renter's way out); DEFAULT_ADMIN_ROLE grants roles.
"""

from ethereum.ercs import IERC20
from snekmate.auth import access_control
from snekmate.utils import pausable

initializes: access_control
initializes: pausable

exports: (
    access_control.hasRole,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.DEFAULT_ADMIN_ROLE,
    pausable.paused,
)


interface IShare:
    def distribute(amount: uint256): nonpayable


interface IMeter:
    def is_final(asset: bytes32, epoch: uint64) -> bool: view
    def verify_delivery(
        lease_id: uint256,
        asset: bytes32,
        epoch: uint64,
        gpu_seconds: uint256,
        energy_wh: uint256,
        proof: DynArray[bytes32, 64],
    ) -> bool: view
    def challenge_window() -> uint256: view


OPERATOR_ROLE: public(constant(bytes32)) = keccak256("OPERATOR_ROLE")
MARKET_ROLE: public(constant(bytes32)) = keccak256("MARKET_ROLE")
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER_ROLE")
BPS: constant(uint256) = 10_000


struct Lease:
    renter: address
    gpus: uint256
    start: uint256
    end: uint256
    price: uint256
    deposit: uint256
    paid: uint256
    held: uint256
    delivered_gpu_seconds: uint256
    settled_epochs: uint256
    closed: bool


asset: public(bytes32)
usd: public(IERC20)
share: public(IShare)
meter: public(IMeter)
treasury: public(address)
fee_bps: public(uint256)
holdback_bps: public(uint256)
sla_bps: public(uint256)
penalty_bps: public(uint256)
epoch_s: public(uint256)
anchor_grace_s: public(uint256)

leases: public(HashMap[uint256, Lease])
next_lease_id: public(uint256)
settled: public(HashMap[uint256, HashMap[uint64, bool]])
total_deposited: public(uint256)
total_released: public(uint256)
total_fees: public(uint256)
total_refunded: public(uint256)


event LeaseOpened:
    lease_id: indexed(uint256)
    renter: indexed(address)
    gpus: uint256
    start: uint256
    end: uint256
    price: uint256
    deposit: uint256


event LeaseSettled:
    lease_id: indexed(uint256)
    epoch: indexed(uint64)
    gpu_seconds: uint256
    payment: uint256
    fee: uint256
    distributed: uint256
    held: uint256


event LeaseClosed:
    lease_id: indexed(uint256)
    delivered_gpu_seconds: uint256
    refund: uint256
    penalty: uint256
    released: uint256


@deploy
def __init__(
    asset_: bytes32,
    usd_: IERC20,
    share_: IShare,
    meter_: IMeter,
    treasury_: address,
    fee_bps_: uint256,
    holdback_bps_: uint256,
    sla_bps_: uint256,
    penalty_bps_: uint256,
    epoch_s_: uint256,
    anchor_grace_s_: uint256,
):
    access_control.__init__()
    pausable.__init__()
    assert fee_bps_ + holdback_bps_ <= BPS and sla_bps_ <= BPS, "LeaseEscrow: bad basis points"
    assert epoch_s_ > 0, "LeaseEscrow: zero epoch length"
    self.asset = asset_
    self.usd = usd_
    self.share = share_
    self.meter = meter_
    self.treasury = treasury_
    self.fee_bps = fee_bps_
    self.holdback_bps = holdback_bps_
    self.sla_bps = sla_bps_
    self.penalty_bps = penalty_bps_
    self.epoch_s = epoch_s_
    self.anchor_grace_s = anchor_grace_s_
    self.next_lease_id = 1
    access_control._grant_role(OPERATOR_ROLE, msg.sender)
    access_control._grant_role(MARKET_ROLE, msg.sender)
    access_control._grant_role(PAUSER_ROLE, msg.sender)


@internal
def _open(renter: address, gpus: uint256, start: uint256, end: uint256, price: uint256) -> uint256:
    pausable._require_not_paused()
    assert gpus > 0, "LeaseEscrow: no GPUs"
    assert end > start, "LeaseEscrow: end before start"
    assert price > 0, "LeaseEscrow: zero price"
    deposit: uint256 = gpus * (end - start) * price // 3600
    assert deposit > 0, "LeaseEscrow: empty deposit"
    lease_id: uint256 = self.next_lease_id
    self.next_lease_id = lease_id + 1
    self.leases[lease_id] = Lease(
        renter=renter, gpus=gpus, start=start, end=end, price=price, deposit=deposit,
        paid=0, held=0, delivered_gpu_seconds=0, settled_epochs=0, closed=False,
    )
    self.total_deposited += deposit
    assert extcall self.usd.transferFrom(renter, self, deposit, default_return_value=True)
    log LeaseOpened(lease_id=lease_id, renter=renter, gpus=gpus, start=start, end=end, price=price, deposit=deposit)
    return lease_id


@external
def open_lease(gpus: uint256, start: uint256, end: uint256, price: uint256) -> uint256:
    """@notice Open a lease for the caller, depositing the full price (approve this contract first).
    @dev Anyone, for themselves (the caller is the renter and pays)."""
    return self._open(msg.sender, gpus, start, end, price)


@external
def open_lease_for(renter: address, gpus: uint256, start: uint256, end: uint256, price: uint256) -> uint256:
    """@notice The exchange opens a traded lease, funded from the renter's allowance.
    @dev MARKET_ROLE only."""
    assert access_control.hasRole[MARKET_ROLE][msg.sender], "LeaseEscrow: not market"
    return self._open(renter, gpus, start, end, price)


@internal
def _release(amount: uint256) -> (uint256, uint256):
    fee: uint256 = amount * self.fee_bps // BPS
    rest: uint256 = amount - fee
    if fee > 0:
        self.total_fees += fee
        assert extcall self.usd.transfer(self.treasury, fee, default_return_value=True)
    if rest > 0:
        extcall self.usd.approve(self.share.address, rest)
        extcall self.share.distribute(rest)
    self.total_released += amount
    return fee, rest


@view
@internal
def _epochs_overlapping(lease: Lease) -> uint256:
    return (lease.end - 1) // self.epoch_s - lease.start // self.epoch_s + 1


@view
@internal
def _deadline(lease: Lease) -> uint256:
    return lease.end + self.epoch_s + self.anchor_grace_s + staticcall self.meter.challenge_window()


@view
@external
def close_deadline(lease_id: uint256) -> uint256:
    """@notice From this time the renter may close the lease even if epochs are unsettled."""
    lease: Lease = self.leases[lease_id]
    assert lease.deposit > 0, "LeaseEscrow: unknown lease"
    return self._deadline(lease)


@view
@external
def deliverable_gpu_seconds(lease_id: uint256, epoch: uint64) -> uint256:
    """@notice The most GPU-seconds the lease can be paid for in `epoch`: gpus x overlap."""
    return self._cap(self.leases[lease_id], epoch)


@view
@internal
def _cap(lease: Lease, epoch: uint64) -> uint256:
    lo: uint256 = max(convert(epoch, uint256) * self.epoch_s, lease.start)
    hi: uint256 = min((convert(epoch, uint256) + 1) * self.epoch_s, lease.end)
    if hi <= lo:
        return 0
    return lease.gpus * (hi - lo)


@external
def settle(
    lease_id: uint256,
    epoch: uint64,
    gpu_seconds: uint256,
    energy_wh: uint256,
    proof: DynArray[bytes32, 64],
) -> uint256:
    """@notice Pay for one final epoch's proven delivery of a lease; returns the payment.
    @dev OPERATOR_ROLE only; not while paused. The proven GPU-seconds are capped at
         gpus x overlap(epoch, lease window)."""
    assert access_control.hasRole[OPERATOR_ROLE][msg.sender], "LeaseEscrow: not operator"
    pausable._require_not_paused()
    lease: Lease = self.leases[lease_id]
    assert lease.deposit > 0, "LeaseEscrow: unknown lease"
    assert not lease.closed, "LeaseEscrow: lease closed"
    assert not self.settled[lease_id][epoch], "LeaseEscrow: epoch already settled"
    assert staticcall self.meter.is_final(self.asset, epoch), "LeaseEscrow: epoch not final"
    assert staticcall self.meter.verify_delivery(lease_id, self.asset, epoch, gpu_seconds, energy_wh, proof), "LeaseEscrow: bad delivery proof"
    cap: uint256 = self._cap(lease, epoch)
    assert cap > 0, "LeaseEscrow: epoch outside lease"
    counted: uint256 = min(gpu_seconds, cap)
    self.settled[lease_id][epoch] = True
    self.leases[lease_id].settled_epochs = lease.settled_epochs + 1
    payment: uint256 = min(counted * lease.price // 3600, lease.deposit - lease.paid)
    held: uint256 = payment * self.holdback_bps // BPS
    self.leases[lease_id].paid = lease.paid + payment
    self.leases[lease_id].held = lease.held + held
    self.leases[lease_id].delivered_gpu_seconds = lease.delivered_gpu_seconds + counted
    fee: uint256 = 0
    rest: uint256 = 0
    if payment > held:
        fee, rest = self._release(payment - held)
    log LeaseSettled(lease_id=lease_id, epoch=epoch, gpu_seconds=counted, payment=payment, fee=fee, distributed=rest, held=held)
    return payment


@external
def close(lease_id: uint256):
    """@notice After the lease ends: refund unused deposit, apply the SLA penalty, release the holdback.
    @dev OPERATOR_ROLE once the lease has ended; the renter once every overlapping epoch is
         settled or `close_deadline` has passed. Never paused."""
    lease: Lease = self.leases[lease_id]
    assert lease.deposit > 0, "LeaseEscrow: unknown lease"
    assert not lease.closed, "LeaseEscrow: lease closed"
    assert block.timestamp >= lease.end, "LeaseEscrow: lease not ended"
    if not access_control.hasRole[OPERATOR_ROLE][msg.sender]:
        assert msg.sender == lease.renter, "LeaseEscrow: not renter or operator"
        assert lease.settled_epochs == self._epochs_overlapping(lease) or block.timestamp >= self._deadline(lease), "LeaseEscrow: epochs not settled"
    self.leases[lease_id].closed = True
    refund: uint256 = lease.deposit - lease.paid
    contracted: uint256 = lease.gpus * (lease.end - lease.start)
    penalty: uint256 = 0
    if lease.delivered_gpu_seconds * BPS < contracted * self.sla_bps:
        penalty = min(refund * self.penalty_bps // BPS, lease.held)
    released: uint256 = lease.held - penalty
    self.total_refunded += refund + penalty
    if refund + penalty > 0:
        assert extcall self.usd.transfer(lease.renter, refund + penalty, default_return_value=True)
    if released > 0:
        self._release(released)
    log LeaseClosed(lease_id=lease_id, delivered_gpu_seconds=lease.delivered_gpu_seconds, refund=refund, penalty=penalty, released=released)


@external
def pause():
    """@notice Stop opening and settling leases. PAUSER_ROLE only."""
    assert access_control.hasRole[PAUSER_ROLE][msg.sender], "LeaseEscrow: not pauser"
    pausable._pause()


@external
def unpause():
    """@notice PAUSER_ROLE only."""
    assert access_control.hasRole[PAUSER_ROLE][msg.sender], "LeaseEscrow: not pauser"
    pausable._unpause()
