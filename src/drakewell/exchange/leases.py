"""Where leases go after a trade: one narrow seam, :class:`LeaseSink`.

The engine records a :class:`~drakewell.exchange.engine.Lease` per trade in memory (and its command
in the journal). A sink receives a lease only once the command that created it is durable, through
:class:`LeaseForwarder`, so a lease is never sent for a trade that a crash could undo. The
forwarder's cursor (how many leases were forwarded) is the caller's to persist: an in-memory sink
starts at zero; a chain sink starts at the number of leases its escrows already hold from the
exchange.

**Failures never block later leases.** A lease the sink can never open (a
:class:`LeaseSinkError`: its asset has no escrow, its renter no chain address) goes at once to the
dead-letter table ``exchange_dead_letters`` (through :mod:`drakewell.store`, in the journal's
database) with the reason, and forwarding goes on with the next lease. Every other failure (a revert
such as a missing allowance, an unreachable node) stops the forwarding at that lease, which is
retried on the next :meth:`LeaseForwarder.forward` (``last_error`` says why), in order; after
``max_attempts`` failed tries it too is dead-lettered. :meth:`LeaseForwarder.retry` sends a
dead-lettered lease again once its cause is fixed. The operator lists them with
``GET /operator/dead-letters`` or ``drakewell exchange dead-letters``.

Sinks: :class:`InMemoryLeaseSink` (tests, the default) and :class:`ChainLeaseSink`, which opens
each lease in the asset's ``LeaseEscrow`` with ``open_lease_for(renter, gpus, start, end, price)``,
funded from the renter's stablecoin allowance: the escrow's deposit
``gpus × (end − start) × price // 3600`` equals the lease's ``amount`` exactly, because contracts
last whole hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from sqlalchemy import Column, Integer, String, Table, Text, select

from drakewell.core.errors import ExchangeError
from drakewell.exchange.engine import Engine, Lease
from drakewell.store import database_url, metadata, open_engine

dead_letters_table = Table(
    "exchange_dead_letters",
    metadata,
    Column("lease_id", Integer, primary_key=True, autoincrement=False),
    Column("asset", String(80), nullable=False),
    Column("renter", String(64), nullable=False),
    Column("amount", Integer, nullable=False),
    Column("error", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
)


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


@dataclass(frozen=True)
class DeadLetter:
    """A lease that could not be forwarded: why (``error`` is the exception's type), after how many tries."""

    lease_id: int
    asset: str
    renter: str
    amount: int  # base units the renter paid into the lease
    error: str
    reason: str
    attempts: int

    @classmethod
    def of(cls, lease: Lease, exc: Exception, attempts: int) -> DeadLetter:
        """The dead letter of ``lease`` after ``attempts`` tries, the last failing with ``exc``."""
        return cls(
            lease.lease_id, lease.asset, lease.renter, lease.amount, type(exc).__name__, str(exc), attempts
        )


class DeadLetterLog:
    """The dead-letter table at a database URL or SQLite path (in memory only when none is given).

    Rows are kept in memory too (loaded at start), so listing never waits on the database.
    """

    def __init__(self, path_or_url: str | Path | None = None) -> None:
        self.db = None
        self.letters: dict[int, DeadLetter] = {}
        if path_or_url is not None:
            text = str(path_or_url)
            self.db = open_engine(database_url(text))
            with self.db.connect() as conn:
                for row in conn.execute(select(dead_letters_table).order_by(dead_letters_table.c.lease_id)):
                    self.letters[int(row.lease_id)] = DeadLetter(*row)

    def add(self, letter: DeadLetter) -> None:
        """Record (or update) the dead letter of ``letter.lease_id``."""
        if self.db is not None:
            row = {k: getattr(letter, k) for k in DeadLetter.__dataclass_fields__}
            with self.db.begin() as conn:
                conn.execute(
                    dead_letters_table.delete().where(dead_letters_table.c.lease_id == letter.lease_id)
                )
                conn.execute(dead_letters_table.insert().values(**row))
        self.letters[letter.lease_id] = letter

    def remove(self, lease_id: int) -> None:
        if self.db is not None:
            with self.db.begin() as conn:
                conn.execute(dead_letters_table.delete().where(dead_letters_table.c.lease_id == lease_id))
        self.letters.pop(lease_id, None)

    def list(self) -> list[DeadLetter]:
        return [self.letters[k] for k in sorted(self.letters)]

    def close(self) -> None:
        if self.db is not None:
            self.db.dispose()


class LeaseForwarder:
    """Forwards durable leases from an engine to a sink, remembering where it stopped.

    Called from one thread at a time (the API's event loop, after each acknowledged command); it
    holds no lock of its own.
    """

    def __init__(
        self,
        engine: Engine,
        sink: LeaseSink,
        start: int = 0,
        *,
        dead_letters: DeadLetterLog | None = None,
        max_attempts: int = 3,
    ) -> None:
        self.engine = engine
        self.sink = sink
        self.cursor = start  # leases[:cursor] were forwarded or dead-lettered
        self.backend_ids: dict[int, int | None] = {}
        self.last_error: Exception | None = None
        self.dead_letters = dead_letters if dead_letters is not None else DeadLetterLog()
        self.max_attempts = max_attempts
        self.attempts = 0  # failed tries of the lease at the cursor

    def forward(self) -> int:
        """Send every lease whose command has committed, in order; returns how many were sent.

        A lease the sink can never open is dead-lettered at once; one that fails otherwise is
        retried next time, and dead-lettered after ``max_attempts`` tries (module docstring).
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
                self.attempts += 1
                if not isinstance(exc, LeaseSinkError) and self.attempts < self.max_attempts:
                    return sent
                self._dead_letter(lease, exc)
                continue
            if lease.lease_id in self.dead_letters.letters:  # a dead letter from an earlier run
                self.dead_letters.remove(lease.lease_id)
            self.last_error = None
            self.attempts = 0
            self.cursor += 1
            sent += 1
        return sent

    def _dead_letter(self, lease: Lease, exc: Exception) -> None:
        self.dead_letters.add(DeadLetter.of(lease, exc, self.attempts))
        self.attempts = 0
        self.cursor += 1

    def retry(self, lease_id: int) -> int | None:
        """Send a dead-lettered lease again; on success it leaves the table and its backend id is
        returned, otherwise the dead letter is updated and the error raised."""
        letter = self.dead_letters.letters.get(lease_id)
        if letter is None:
            raise LeaseSinkError(
                f"lease {lease_id} is not in the dead-letter table",
                hint="list them with GET /operator/dead-letters",
            )
        lease = self.engine.leases[lease_id - 1]
        try:
            backend_id = self.sink.open_lease(lease)
        except Exception as exc:
            self.dead_letters.add(DeadLetter.of(lease, exc, letter.attempts + 1))
            raise
        self.backend_ids[lease_id] = backend_id
        self.dead_letters.remove(lease_id)
        return backend_id
