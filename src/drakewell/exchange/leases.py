"""Where leases go after a trade: one narrow seam, :class:`LeaseSink`.

The engine records a :class:`~drakewell.exchange.engine.Lease` per trade in memory (and its command
in the journal). A sink receives a lease only once the command that created it is durable, through
:class:`LeaseForwarder`, so a lease is never sent for a trade that a crash could undo. The
forwarder's cursor (how many leases were forwarded) is the caller's to persist: an in-memory sink
starts at zero; a chain sink starts at the number of leases its escrows already hold from the
exchange. A sink that raises stops the forwarding at that lease, which stays queued and is retried
on the next :meth:`LeaseForwarder.forward` (``last_error`` says why).

Sinks: :class:`InMemoryLeaseSink` (tests, the default) and :class:`ChainLeaseSink`, which opens
each lease in the asset's ``LeaseEscrow`` with ``open_lease_for(renter, gpus, start, end, price)``,
funded from the renter's stablecoin allowance: the escrow's deposit
``gpus × (end − start) × price // 3600`` equals the lease's ``amount`` exactly, because contracts
last whole hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from drakewell.errors import ExchangeError
from drakewell.exchange.engine import Engine, Lease


@runtime_checkable
class LeaseSink(Protocol):
    """Receives each lease exactly once, in lease-id order."""

    def open_lease(self, lease: Lease) -> int | None:
        """Open the lease; returns the backend's lease id (or ``None`` if it keeps none)."""
        ...


class InMemoryLeaseSink:
    """Keeps every lease in a list (its backend id is its position + 1)."""

    def __init__(self) -> None:
        self.leases: list[Lease] = []

    def open_lease(self, lease: Lease) -> int:
        if self.leases and lease.lease_id <= self.leases[-1].lease_id:
            raise ValueError(f"lease {lease.lease_id} was already opened")
        self.leases.append(lease)
        return len(self.leases)


class Escrow(Protocol):
    """What :class:`ChainLeaseSink` needs of a LeaseEscrow client (``drakewell.chain.EscrowClient``)."""

    def open_lease_for(
        self, renter: str, gpus: int, start: int, end: int, price: int, *, sender: str | None = None
    ) -> int: ...


class LeaseSinkError(ExchangeError):
    """A lease cannot be sent: its asset or renter has no on-chain counterpart."""


class ChainLeaseSink:
    """Opens each lease in its asset's LeaseEscrow on chain, funded from the renter's allowance.

    ``escrows`` maps exchange asset ids to escrow clients (one LeaseEscrow per tokenized asset);
    ``renters`` maps exchange account ids to chain addresses; ``sender`` holds the escrow's
    ``MARKET_ROLE`` (the deployer by default).
    """

    def __init__(
        self, escrows: Mapping[str, Escrow], renters: Mapping[str, str], *, sender: str | None = None
    ) -> None:
        self.escrows = escrows
        self.renters = renters
        self.sender = sender

    def open_lease(self, lease: Lease) -> int:
        escrow = self.escrows.get(lease.asset)
        if escrow is None:
            raise LeaseSinkError(
                f"asset {lease.asset!r} of lease {lease.lease_id} has no LeaseEscrow",
                hint="deploy the asset's market on chain and map its exchange id to the escrow",
            )
        renter = self.renters.get(lease.renter)
        if renter is None:
            raise LeaseSinkError(
                f"account {lease.renter!r} of lease {lease.lease_id} has no chain address",
                hint="map the account to its address (which approved the escrow for its deposits)",
            )
        return escrow.open_lease_for(
            renter, lease.gpus, lease.start_s, lease.end_s, lease.price, sender=self.sender
        )


class LeaseForwarder:
    """Forwards durable leases from an engine to a sink, remembering where it stopped."""

    def __init__(self, engine: Engine, sink: LeaseSink, start: int = 0) -> None:
        self.engine = engine
        self.sink = sink
        self.cursor = start  # leases[:cursor] were forwarded
        self.backend_ids: dict[int, int | None] = {}
        self.last_error: Exception | None = None

    def forward(self) -> int:
        """Send every lease whose command has committed, in order; returns how many were sent.

        Stops at the first lease the sink refuses (kept in ``last_error``); it is retried next time.
        """
        engine = self.engine
        durable = engine.committed_seq
        leases, seqs = engine.leases, engine.lease_seqs
        sent = 0
        while self.cursor < len(leases) and seqs[self.cursor] <= durable:
            lease = leases[self.cursor]
            try:
                self.backend_ids[lease.lease_id] = self.sink.open_lease(lease)
            except Exception as exc:  # a chain revert or an unreachable node must not fail the trade
                self.last_error = exc
                return sent
            self.last_error = None
            self.cursor += 1
            sent += 1
        return sent
