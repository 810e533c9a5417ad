"""Pre-trade risk: stablecoin collateral for buys, registered GPU capacity for sells.

**Buys** are fully collateralised: placing a buy of ``q`` GPUs at limit ``L`` on a contract of ``h``
hours reserves ``L·q·h`` base units of the buyer's free balance (``free = balance − reserved``). A
fill of ``f`` GPUs at price ``p ≤ L`` releases ``L·f·h`` and moves ``p·f·h`` from the balance into the
lease's escrow; cancelling the remainder releases its reservation. Money is conserved:
``Σ balances + Σ lease escrow = Σ deposits − Σ withdrawals``.

**Sells** are backed by capacity: the operator registers an asset (a tokenized GPU pool: model,
region, GPU count, the window it may be sold in, a floor price and the pool's LeaseEscrow address;
see :mod:`drakewell.exchange.assets`); an asset without an escrow backs no sell. A sell of ``q``
GPUs on a window ``[s, e)`` commits ``q`` GPUs of one asset over that window; fills keep the
commitment (it becomes the lease), a cancelled remainder releases it. The same GPU-hour is never sold twice:
for every hour ``t``, ``Σ commitments covering t ≤ gpus``.

The check is O(1) in the common case: while the sum of all commitments of the asset (whatever their
windows) plus ``q`` fits in ``gpus``, no hour can be over-committed. Otherwise the peak over the new
window is computed exactly at the window's start and at every commitment start inside it (a step
function's maximum sits at one of its rising edges).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drakewell.exchange.refusals import FixedCodeRejection, RejectCode


class RiskError(FixedCodeRejection):
    """An order, amend or withdrawal was refused by pre-trade risk (each kind has its own ``code``)."""


class InsufficientBalance(RiskError):
    """The buyer's free balance does not cover the order's collateral."""

    code = RejectCode.INSUFFICIENT_BALANCE


class InsufficientCapacity(RiskError):
    """No registered asset has the GPUs free for the whole window."""

    code = RejectCode.INSUFFICIENT_CAPACITY


class BelowFloor(RiskError):
    """A sell price is below the asset's floor (its mining value) and the order did not allow it."""

    code = RejectCode.BELOW_FLOOR


class NoEscrow(RiskError):
    """The asset has no LeaseEscrow on chain, so a lease on it could never be escrowed."""

    code = RejectCode.ASSET_WITHOUT_ESCROW


class Account:
    """A stablecoin account: ``balance`` (base units) of which ``reserved`` backs open buys."""

    __slots__ = ("account_id", "balance", "key_hash", "reserved")

    def __init__(self, account_id: str, key_hash: str) -> None:
        self.account_id = account_id
        self.key_hash = key_hash
        self.balance = 0
        self.reserved = 0

    @property
    def free(self) -> int:
        return self.balance - self.reserved


@dataclass(slots=True, eq=False)
class Asset:
    """Registered capacity of a tokenized GPU pool, with its committed windows."""

    asset_id: str
    owner: str
    gpu_model: str
    region: str
    gpus: int
    available_from_s: int
    available_to_s: int
    floor_price: int  # base units per GPU-hour
    escrow: str | None = None  # the pool's LeaseEscrow address (None: no lease on it can be escrowed)
    total: int = field(default=0, init=False)  # Σ of all commitments, any window
    windows: dict[tuple[int, int], int] = field(default_factory=dict, init=False)  # (start_s, end_s) -> GPUs

    def covers(self, start_s: int, end_s: int) -> bool:
        return self.available_from_s <= start_s and end_s <= self.available_to_s

    def peak(self, start_s: int, end_s: int) -> int:
        """Largest number of GPUs committed in any hour of ``[start_s, end_s)``."""
        windows = self.windows
        points = [start_s] + [ws for (ws, _we) in windows if start_s < ws < end_s]
        best = 0
        for t in points:
            n = sum(q for (ws, we), q in windows.items() if ws <= t < we)
            if n > best:
                best = n
        return best

    def can_commit(self, start_s: int, end_s: int, qty: int) -> bool:
        if self.total + qty <= self.gpus:
            return True
        return self.peak(start_s, end_s) + qty <= self.gpus

    def commit(self, start_s: int, end_s: int, qty: int) -> None:
        w = (start_s, end_s)
        self.windows[w] = self.windows.get(w, 0) + qty
        self.total += qty

    def release(self, start_s: int, end_s: int, qty: int) -> None:
        w = (start_s, end_s)
        left = self.windows[w] - qty
        if left:
            self.windows[w] = left
        else:
            del self.windows[w]
        self.total -= qty
