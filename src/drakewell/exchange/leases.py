"""Where leases go after a trade: one narrow seam, :class:`LeaseSink`.

The engine records a :class:`~drakewell.exchange.engine.Lease` per trade in memory (and its command
in the journal). A sink receives leases only once their command is durable, through
:class:`LeaseForwarder`, so replaying the journal never opens a lease twice: the forwarder's cursor
(the number of leases already forwarded) is the sink's business to persist — an in-memory sink
starts at zero, the chain sink asks the escrow how many leases it holds.

Sinks: :class:`InMemoryLeaseSink` (tests, the default) and, when the chain package is installed, a
LeaseEscrow-backed sink (see :mod:`drakewell.exchange.chain_sink`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

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


class LeaseForwarder:
    """Forwards durable leases from an engine to a sink, remembering where it stopped."""

    def __init__(self, engine: Engine, sink: LeaseSink, start: int = 0) -> None:
        self.engine = engine
        self.sink = sink
        self.cursor = start  # leases[:cursor] were forwarded
        self.backend_ids: dict[int, int | None] = {}

    def forward(self) -> int:
        """Send every lease whose command has committed; returns how many were sent."""
        engine = self.engine
        durable = engine.committed_seq
        leases, seqs = engine.leases, engine.lease_seqs
        sent = 0
        while self.cursor < len(leases) and seqs[self.cursor] <= durable:
            lease = leases[self.cursor]
            self.backend_ids[lease.lease_id] = self.sink.open_lease(lease)
            self.cursor += 1
            sent += 1
        return sent
