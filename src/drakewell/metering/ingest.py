"""Ingest: verify, deduplicate and durably store batches of signed readings.

Each reading of a batch is either accepted (stored), a duplicate (an identical reading is already
stored: acknowledged, not stored again) or rejected with one :class:`RejectReason`, checked in
this order:

1. ``malformed``: a field out of range for its ABI type, ``windowEnd <= windowStart``, a
   non-canonical signature (length, ``v``, high ``s``), or an integer above ``2**63 - 1`` (the
   store's 64-bit columns; no physical reading comes near it);
2. ``unknown_signer``: the reading's node is not registered for the reading's asset;
3. ``bad_signature``: the signature does not recover to the reading's node under this domain;
4. ``window_outside_epoch``: ``epoch != windowStart // epoch_seconds`` or the window ends after
   its epoch;
5. ``beyond_capacity``: more than the node's hardware can deliver in the window:
   ``energyWh·3600 > P_max·Δt·(1 + h)``, ``gpuSeconds > gpus·Δt``,
   ``hashesTh > units·TH/s·Δt·(1 + h)`` or ``tokens > gpuSeconds·max tokens/GPU-s``, with
   ``P_max = gpus·W_gpu + units·W_asic`` and headroom ``h`` = :data:`CAPACITY_HEADROOM` (meter
   and power-supply tolerance). Checked per reading here, and again for the sum of the node's
   readings that share one window (step 9);
6. ``unknown_lease``: ``leaseId != 0`` names no lease registered for the reading's asset
   (:meth:`MeterStore.register_leases`); ``outside_lease``: the window does not overlap the
   lease's; ``beyond_lease``: ``gpuSeconds > gpus_lease · |window ∩ lease window|``;
7. ``epoch_closed``: the epoch's root is already built;
8. ``equivocation``: a different reading holds the same ``(node, seq)``; it is refused and kept
   in ``meter_equivocations`` as evidence;
9. ``overlapping_window``: a node's windows tile time. Two readings of one node (stored or in the
   batch) have disjoint windows, or the same window for *different* leases (a server split between
   leases signs one reading per lease), whose sums must fit the node's capacity as in step 5. A
   window that partly overlaps another, or repeats one for the same lease under a new ``seq``, would
   count the same delivery twice.

Steps 7–9 read the store and the insert follows them, so they run under the store's write lock,
which :func:`drakewell.metering.epochs.close_epoch` takes too: an epoch's root is built from exactly
the rows stored before it, and no row of a closed epoch is stored after it. (The lock serialises the
threads of one process; run one writer process per database.)

Durability: a batch is written in one transaction (``executemany``) and acknowledged only after
it commits (SQLite WAL with ``synchronous=FULL``), so a crash loses no acknowledged reading, and the
``(node, seq)`` primary key with digest comparison makes re-sending after a crash idempotent.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypeVar

import pandas as pd
from sqlalchemy import Column, Connection, Engine, Row, Table, and_, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from drakewell.core.errors import MeteringError
from drakewell.core.fields import Fields, as_bytes, as_int, hex_bytes, json_list, json_object
from drakewell.core.jsontypes import JsonMapping, JsonObject, JsonScalar, JsonValue
from drakewell.metering import tables
from drakewell.metering.readings import (
    DEFAULT_EPOCH_SECONDS,
    MalformedReadingError,
    MeterDomain,
    Reading,
    SignedReading,
    normalize_address,
)
from drakewell.metering.signing import FastVerifier, signature_problem
from drakewell.store import open_engine

_T = TypeVar("_T")

CAPACITY_HEADROOM = 0.02  # readings may exceed nameplate power/hashrate by 2 % (meter + PSU tolerance)
INT63_MAX = 2**63 - 1
DEFAULT_CLOSE_GRACE_S = 900  # an epoch closes at the earliest this long after it ends (late readings)

_ReadingRow: TypeAlias = tuple[str, int, str, int, int, int, int, int, int, int, str, bytes, bytes]
"""A ``meter_readings`` row in :data:`READING_COLUMNS` order (the ingest hot path's rows)."""
BatchItem: TypeAlias = SignedReading | JsonMapping | JsonValue
"""What a batch to ingest holds: signed readings, or their JSON as sent (anything but a JSON object
is refused as malformed)."""
_StoredWindow: TypeAlias = "Row[str, int, int, str, int, int, int]"
"""A stored reading's node, window start and end, lease id, energy, GPU-seconds and hashes."""


class RejectReason(StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_SIGNER = "unknown_signer"
    BAD_SIGNATURE = "bad_signature"
    WINDOW_OUTSIDE_EPOCH = "window_outside_epoch"
    BEYOND_CAPACITY = "beyond_capacity"
    UNKNOWN_LEASE = "unknown_lease"
    OUTSIDE_LEASE = "outside_lease"
    BEYOND_LEASE = "beyond_lease"
    EPOCH_CLOSED = "epoch_closed"
    EQUIVOCATION = "equivocation"
    OVERLAPPING_WINDOW = "overlapping_window"


@dataclass(frozen=True)
class NodeSpec:
    """A registered node: its signer address, the asset it meters, and its hardware limits."""

    address: str
    asset: bytes
    kind: Literal["gpu", "asic"]
    gpus: int = 0
    gpu_w: float = 0.0  # IT watts per GPU incl. its share of the server
    asic_units: int = 0
    asic_w: float = 0.0  # watts per ASIC unit
    asic_th_s: float = 0.0  # TH/s per ASIC unit
    max_tokens_per_gpu_s: float = 100_000.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", normalize_address(self.address))
        if self.kind not in ("gpu", "asic"):
            raise MeteringError(f"node kind {self.kind!r} is not 'gpu' or 'asic'", hint="pick one")
        if len(self.asset) != 32:
            raise MeteringError("node asset is not 32 bytes", hint="use readings.asset_id(name)")
        numbers = (self.gpus, self.gpu_w, self.asic_units, self.asic_w, self.asic_th_s)
        if min(numbers) < 0 or self.max_tokens_per_gpu_s < 0:
            raise MeteringError(f"node {self.address} has a negative limit", hint="limits are >= 0")
        if self.max_power_w <= 0:
            raise MeteringError(
                f"node {self.address} has no power capacity",
                hint="give gpus and gpu_w, or asic_units and asic_w",
            )

    @property
    def max_power_w(self) -> float:
        return self.gpus * self.gpu_w + self.asic_units * self.asic_w

    @property
    def max_th_s(self) -> float:
        return self.asic_units * self.asic_th_s

    def to_row(self) -> JsonObject:
        return {
            "address": self.address,
            "asset": "0x" + self.asset.hex(),
            "kind": self.kind,
            "gpus": self.gpus,
            "gpu_w": self.gpu_w,
            "asic_units": self.asic_units,
            "asic_w": self.asic_w,
            "asic_th_s": self.asic_th_s,
            "max_tokens_per_gpu_s": self.max_tokens_per_gpu_s,
        }

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> NodeSpec:
        """A ``meter_nodes`` row or :meth:`to_json`'s object, its values passed to the constructor
        as they are (which checks them; a limit left out takes its default)."""
        data = dict(row)
        data["asset"] = bytes.fromhex(str(data["asset"])[2:])
        return cls(**data)

    def to_json(self) -> JsonObject:
        return self.to_row()

    @classmethod
    def from_json(cls, obj: JsonMapping) -> NodeSpec:
        hint = "give address, asset (0x+64 hex), kind and the hardware limits"
        return _described("node", obj, cls.from_row, hint)


@dataclass(frozen=True)
class LeaseTerms:
    """A lease as metering needs it: the asset, how many GPUs, and its UTC window ``[start_s, end_s)``.

    Passed in by whoever opened the lease (the exchange, the escrow); metering keeps its own copy.
    """

    lease_id: int
    asset: bytes
    gpus: int
    start_s: int
    end_s: int

    def __post_init__(self) -> None:
        if not 0 < self.lease_id < 2**256:
            raise MeteringError(f"lease id {self.lease_id} is not in 1..2**256-1", hint="0 means unleased")
        if len(self.asset) != 32:
            raise MeteringError("lease asset is not 32 bytes", hint="use readings.asset_id(name)")
        if self.gpus <= 0 or self.end_s <= self.start_s or self.start_s < 0:
            raise MeteringError(
                f"lease {self.lease_id} needs gpus > 0 and 0 <= start_s < end_s, got {self.gpus} GPUs "
                f"over [{self.start_s}, {self.end_s})",
                hint="give the lease's GPU count and its window in Unix seconds",
            )

    def max_gpu_seconds(self, start_s: int, end_s: int) -> int:
        """``gpus · |[start_s, end_s) ∩ lease window|``: the most GPU-seconds it can take there."""
        return self.gpus * max(0, min(end_s, self.end_s) - max(start_s, self.start_s))

    def to_row(self) -> JsonObject:
        return {
            "lease_id": str(self.lease_id),
            "asset": "0x" + self.asset.hex(),
            "gpus": self.gpus,
            "start_s": self.start_s,
            "end_s": self.end_s,
        }

    @classmethod
    def from_row(cls, row: Fields) -> LeaseTerms:
        return cls(
            as_int(row["lease_id"]),
            hex_bytes(row["asset"]),
            as_int(row["gpus"]),
            as_int(row["start_s"]),
            as_int(row["end_s"]),
        )

    def to_json(self) -> JsonObject:
        return {**self.to_row(), "lease_id": self.lease_id}

    @classmethod
    def from_json(cls, obj: JsonMapping) -> LeaseTerms:
        hint = "give lease_id, asset (0x+64 hex), gpus, start_s and end_s (Unix seconds)"
        return _described("lease", obj, cls._from_json_row, hint)

    @classmethod
    def _from_json_row(cls, obj: JsonMapping) -> LeaseTerms:
        if not str(obj["asset"]).startswith("0x"):
            raise ValueError("asset is not 0x hex")
        return cls.from_row(obj)


def _described(what: str, obj: JsonMapping, parse: Callable[[JsonMapping], _T], hint: str) -> _T:
    """``parse(obj)``; a missing or malformed field is a ``MeteringError`` naming the bad ``what``
    description."""
    try:
        return parse(obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise MeteringError(f"bad {what} description {dict(obj)!r}: {exc}", hint=hint) from None


@dataclass(frozen=True, slots=True)
class _NodeLimits:
    """A node's limits as the ingest hot loop reads them."""

    asset: bytes
    asset_hex: str
    power_w: float
    gpus: int
    th_s: float
    tokens_per_gpu_s: float

    @classmethod
    def of(cls, spec: NodeSpec) -> _NodeLimits:
        return cls(
            spec.asset,
            "0x" + spec.asset.hex(),
            spec.max_power_w,
            spec.gpus,
            spec.max_th_s,
            spec.max_tokens_per_gpu_s,
        )


@dataclass(frozen=True)
class Rejection:
    index: int  # position in the batch
    node: JsonScalar  # the reading's node and seq (as sent, when the reading is malformed)
    seq: JsonScalar
    reason: RejectReason
    detail: str

    def to_json(self) -> JsonObject:
        return {
            "index": self.index,
            "node": self.node,
            "seq": self.seq,
            "reason": str(self.reason),
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, obj: JsonMapping) -> Rejection:
        reason = RejectReason(str(obj["reason"]))
        return cls(
            as_int(obj["index"]), _scalar(obj["node"]), _scalar(obj["seq"]), reason, str(obj["detail"])
        )


@dataclass(frozen=True)
class IngestResult:
    accepted: int  # newly stored
    duplicates: int  # already stored, identical: acknowledged
    rejected: tuple[Rejection, ...]

    @property
    def acknowledged(self) -> int:
        return self.accepted + self.duplicates

    def to_json(self) -> JsonObject:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [r.to_json() for r in self.rejected],
        }

    @classmethod
    def from_json(cls, obj: JsonMapping) -> IngestResult:
        """:meth:`to_json`'s object (the meter API's answer to a batch)."""
        rejected = tuple(Rejection.from_json(json_object(r)) for r in json_list(obj["rejected"]))
        return cls(as_int(obj["accepted"]), as_int(obj["duplicates"]), rejected)


def _books(stored_windows: Sequence[_StoredWindow]) -> dict[str, _WindowBook]:
    """Per node, a window book holding its stored windows."""
    books: dict[str, _WindowBook] = {}
    for node, ws, we, lease, energy, gpu_s, hashes in stored_windows:
        book = books.get(node)
        if book is None:
            book = books[node] = _WindowBook()
        book.admit(int(ws), int(we), str(lease), int(energy), int(gpu_s), int(hashes), None, 0.0)
    return books


class MeterStore:
    """The metering database: nodes, readings, equivocation evidence and closed epochs."""

    def __init__(
        self,
        url_or_engine: str | Engine,
        domain: MeterDomain,
        *,
        epoch_seconds: int = DEFAULT_EPOCH_SECONDS,
        close_grace_s: int = DEFAULT_CLOSE_GRACE_S,
    ) -> None:
        if epoch_seconds <= 0:
            raise MeteringError(f"epoch length {epoch_seconds} s is not positive", hint="default is 86400")
        if close_grace_s < 0:
            raise MeteringError(f"close grace {close_grace_s} s is negative", hint="default is 900")
        self.engine = open_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        self.domain = domain
        self.epoch_seconds = int(epoch_seconds)
        self.close_grace_s = int(close_grace_s)
        self._verifier = FastVerifier()  # thread-safe: its C buffers are per thread
        # Steps 7-9 of ingest and close_epoch read the store and then write it: one at a time.
        self._write_lock = threading.Lock()
        self._nodes: dict[str, NodeSpec] = {}
        self._limits: dict[str, _NodeLimits] = {}
        self._leases: dict[int, LeaseTerms] = {}
        self._load_nodes()
        self._load_leases()

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> MeterStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- nodes -----------------------------------------------------------------------------------

    def _load_nodes(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tables.nodes)).mappings().all()
        self._nodes = {r["address"]: NodeSpec.from_row(r) for r in rows}
        self._limits = {address: _NodeLimits.of(spec) for address, spec in self._nodes.items()}

    def _replace(self, key: Column[str], rows: list[JsonObject], reload: Callable[[], None]) -> int:
        """Write ``rows`` over those of ``key``'s table with the same keys, then ``reload`` the
        store's copy of the table; returns how many were written."""
        if rows:
            table = key.table
            with self.engine.begin() as conn:
                conn.execute(table.delete().where(key.in_([r[key.name] for r in rows])))
                conn.execute(table.insert(), rows)
            reload()
        return len(rows)

    def register_nodes(self, specs: Iterable[NodeSpec]) -> int:
        """Register (or update the limits of) nodes; returns how many were written."""
        return self._replace(tables.nodes.c.address, [s.to_row() for s in specs], self._load_nodes)

    @property
    def nodes(self) -> dict[str, NodeSpec]:
        return dict(self._nodes)

    # -- leases ----------------------------------------------------------------------------------

    def _load_leases(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tables.leases)).mappings().all()
        self._leases = {int(r["lease_id"]): LeaseTerms.from_row(r) for r in rows}

    def register_leases(self, terms: Iterable[LeaseTerms]) -> int:
        """Register (or update) the leases readings may name; returns how many were written.

        Readings naming an unregistered lease are refused (``unknown_lease``), and each lease's
        delivery in an epoch is capped at ``gpus · overlap(epoch, lease window)`` when it closes.
        """
        return self._replace(tables.leases.c.lease_id, [t.to_row() for t in terms], self._load_leases)

    @property
    def leases(self) -> dict[int, LeaseTerms]:
        return dict(self._leases)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the store's write lock (ingest's final checks and insert; closing an epoch)."""
        with self._write_lock:
            yield

    # -- ingest ----------------------------------------------------------------------------------

    def ingest(self, batch: Sequence[BatchItem]) -> IngestResult:
        """Verify and store one batch (see the module docstring); returns after it is durable."""
        rejected: list[Rejection] = []
        if not all(type(item) is SignedReading for item in batch):
            parsed: list[SignedReading | None] = []
            for i, item in enumerate(batch):
                if isinstance(item, SignedReading):
                    parsed.append(item)
                    continue
                try:
                    parsed.append(SignedReading.from_json(item))
                except MalformedReadingError as exc:
                    rejected.append(
                        Rejection(i, _get(item, "node"), _get(item, "seq"), RejectReason.MALFORMED, str(exc))
                    )
                    parsed.append(None)
        else:
            parsed = list(batch)  # type: ignore[arg-type]

        known = self._nodes
        if any(p is not None and p.reading.node not in known for p in parsed):
            self._load_nodes()  # another process may have registered it
        rows, where = self._verify(parsed, rejected)
        with self._write_lock:
            accepted_rows, duplicates, evidence = self._deduplicate(rows, where, parsed, rejected)
            if accepted_rows or evidence:
                with self.engine.begin() as conn:
                    if accepted_rows:
                        accepted_rows.sort()  # primary-key (node, seq) order: appends to the index pages
                        _insert_rows_fast(conn, tables.readings, accepted_rows)
                    if evidence:
                        _insert_ignoring_duplicates(conn, tables.equivocations, evidence)
        rejected.sort(key=lambda rj: rj.index)
        return IngestResult(len(accepted_rows), duplicates, tuple(rejected))

    def _registered(
        self, parsed: Sequence[SignedReading | None], rejected: list[Rejection]
    ) -> tuple[list[tuple[int, Reading, bytes, _NodeLimits]], list[bytes], list[bytes]]:
        """Phase 1 of :meth:`_verify`: well-formed readings of registered nodes, with their EIP-712
        digests and signatures (for the recoveries in one loop)."""
        nodes, limits, digest_of = self._nodes, self._limits, self.domain.digest
        todo: list[tuple[int, Reading, bytes, _NodeLimits]] = []
        digests: list[bytes] = []
        signatures: list[bytes] = []
        for i, signed in enumerate(parsed):
            if signed is None:
                continue
            r = signed.reading
            sig = signed.signature
            node = r.node
            problem = _fast_problem(r) or signature_problem(sig)
            if problem:
                rejected.append(Rejection(i, node, r.seq, RejectReason.MALFORMED, problem))
                continue
            limit = limits.get(node)
            if limit is None or limit.asset != r.asset:
                spec = nodes.get(node)
                detail = (
                    f"node {node} is not registered"
                    if spec is None
                    else f"node {node} is registered for asset 0x{spec.asset.hex()}, not 0x{r.asset.hex()}"
                )
                rejected.append(Rejection(i, node, r.seq, RejectReason.UNKNOWN_SIGNER, detail))
                continue
            digests.append(digest_of(r))
            signatures.append(sig)
            todo.append((i, r, sig, limit))
        return todo, digests, signatures

    def _verify(
        self, parsed: Sequence[SignedReading | None], rejected: list[Rejection]
    ) -> tuple[list[_ReadingRow], list[int]]:
        """Checks 1–6 of the module docstring; returns the passing readings as table rows (in
        :data:`READING_COLUMNS` order) and their batch positions.

        Three passes: form, registration and the EIP-712 digest; every signature recovery in one
        tight loop; then signer, window and capacity.
        """
        es = self.epoch_seconds
        headroom = 1.0 + CAPACITY_HEADROOM
        todo, digests, signatures = self._registered(parsed, rejected)
        # phase 2: every recovery in one tight loop (libsecp256k1's tables stay in cache)
        verifier = self._verifier
        keys = verifier.recover_many(digests, signatures)
        # phase 3: the signer, the window, the hardware limits and the lease
        proven = verifier.known_keys
        leases = self._leases
        leases_reloaded = False
        rows: list[_ReadingRow] = []
        where: list[int] = []
        for (i, r, sig, limit), raw, digest in zip(todo, keys, digests, strict=True):
            node, seq = r.node, r.seq
            if raw is None or (raw != proven[node] if node in proven else not verifier.prove(node, raw)):
                rejected.append(
                    Rejection(
                        i, node, seq, RejectReason.BAD_SIGNATURE, "signature does not recover to the node"
                    )
                )
                continue
            epoch, start, end = r.epoch, r.window_start, r.window_end
            if epoch != start // es or end > (epoch + 1) * es:
                detail = f"window [{start}, {end}) is not inside epoch {epoch} of {es} s"
                rejected.append(Rejection(i, node, seq, RejectReason.WINDOW_OUTSIDE_EPOCH, detail))
                continue
            dt = end - start
            over = _over_capacity(r, limit, dt, headroom)
            if over:
                rejected.append(Rejection(i, node, seq, RejectReason.BEYOND_CAPACITY, over))
                continue
            lease_id = r.lease_id
            if lease_id:
                terms = leases.get(lease_id)
                if terms is None and not leases_reloaded:
                    self._load_leases()  # another process may have registered it
                    leases, leases_reloaded = self._leases, True
                    terms = leases.get(lease_id)
                refusal = _lease_problem(r, terms)
                if refusal is not None:
                    rejected.append(Rejection(i, node, seq, refusal[0], refusal[1]))
                    continue
            rows.append(
                (
                    node,
                    seq,
                    limit.asset_hex,
                    epoch,
                    start,
                    end,
                    r.energy_wh,
                    r.gpu_seconds,
                    r.hashes_th,
                    r.tokens,
                    str(r.lease_id),
                    digest,
                    sig,
                )
            )
            where.append(i)
        return rows, where

    def _deduplicate(
        self,
        rows: list[_ReadingRow],
        where: list[int],
        parsed: Sequence[SignedReading | None],
        rejected: list[Rejection],
    ) -> tuple[list[_ReadingRow], int, list[dict[str, object]]]:
        """Split verified rows into new rows, duplicates and equivocations (against batch and store),
        and refuse rows of closed epochs and rows whose window overlaps the node's others (steps
        7–9); the caller holds the write lock."""
        if not rows:
            return [], 0, []
        closed = self._closed_epochs({row[2] for row in rows})
        existing, stored_windows = self._stored(rows)
        books = _books(stored_windows)
        if not existing and not closed and len({(row[0], row[1]) for row in rows}) == len(rows):
            if _windows_admitted(rows, books, self._limits):
                return rows, 0, []  # the common case: every row is new and its window free
            books = _books(stored_windows)  # rebuild: admit reading by reading to say which overlap
        headroom = 1.0 + CAPACITY_HEADROOM
        limits = self._limits
        accepted: list[_ReadingRow] = []
        evidence: list[dict[str, object]] = []
        duplicates = 0
        now = time.time()
        for i, row in zip(where, rows, strict=True):
            node, seq, asset_hex, epoch, digest = row[0], row[1], row[2], row[3], row[11]
            held = existing.get((node, seq))
            if held is not None:
                if held == digest:
                    duplicates += 1
                    continue
                signed = parsed[i]
                assert signed is not None
                evidence.append(
                    {
                        "node": node,
                        "seq": seq,
                        "digest": digest,
                        "existing_digest": held,
                        "reading_json": json.dumps(signed.to_json(), sort_keys=True),
                        "detected_at": now,
                    }
                )
                detail = f"a different reading 0x{held.hex()} already holds ({node}, seq {seq})"
                rejected.append(Rejection(i, node, seq, RejectReason.EQUIVOCATION, detail))
                continue
            if (asset_hex, epoch) in closed:
                detail = f"epoch {epoch} is already closed"
                rejected.append(Rejection(i, node, seq, RejectReason.EPOCH_CLOSED, detail))
                continue
            book = books.get(node)
            if book is None:
                book = books[node] = _WindowBook()
            refusal = book.admit(row[4], row[5], row[10], row[6], row[7], row[8], limits[node], headroom)
            if refusal is not None:
                rejected.append(Rejection(i, node, seq, refusal[0], refusal[1]))
                continue
            existing[(node, seq)] = digest
            accepted.append(row)
        return accepted, duplicates, evidence

    def _stored(
        self, rows: list[_ReadingRow]
    ) -> tuple[dict[tuple[str, int], bytes], Sequence[_StoredWindow]]:
        """What the store holds for the batch's nodes: digests by ``(node, seq)`` in the batch's
        sequence range, and the stored windows that may meet the batch's."""
        by_node: dict[str, list[int]] = {}
        for row in rows:
            by_node.setdefault(row[0], []).append(row[1])
        c = tables.readings.c
        lo = min(min(seqs) for seqs in by_node.values())
        hi = max(max(seqs) for seqs in by_node.values())
        # one range query per batch: new readings usually find nothing, replays find themselves
        q = select(c.node, c.seq, c.digest).where(and_(c.seq >= lo, c.seq <= hi, c.node.in_(list(by_node))))
        w_lo = min(row[4] for row in rows)
        w_hi = max(row[5] for row in rows)
        # the node's stored windows that may meet the batch's (index on node, window_end)
        qw = select(c.node, c.window_start, c.window_end, c.lease_id, c.energy_wh, c.gpu_seconds, c.hashes_th)
        qw = qw.where(and_(c.node.in_(list(by_node)), c.window_end > w_lo, c.window_start < w_hi))
        with self.engine.connect() as conn:
            existing = {(node, seq): bytes(digest) for node, seq, digest in conn.execute(q)}
            stored_windows = conn.execute(qw).all()
        return existing, stored_windows

    def _closed_epochs(self, asset_hexes: set[str]) -> set[tuple[str, int]]:
        """Closed ``(asset as 0x hex, epoch)`` pairs of these assets."""
        e = tables.epochs.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(e.asset, e.epoch).where(e.asset.in_(sorted(asset_hexes)))).all()
        return {(str(a), int(ep)) for a, ep in rows}

    # -- queries ---------------------------------------------------------------------------------

    def readings_frame(self, asset: bytes | None = None, epoch: int | None = None) -> pd.DataFrame:
        """Stored readings as a frame (one row per reading, ordered by node and seq)."""
        c = tables.readings.c
        q = select(tables.readings)
        if asset is not None:
            q = q.where(c.asset == "0x" + asset.hex())
        if epoch is not None:
            q = q.where(c.epoch == int(epoch))
        q = q.order_by(c.node, c.seq)
        with self.engine.connect() as conn:
            result = conn.execute(q)
            frame = pd.DataFrame(result.all(), columns=list(result.keys()))
        if frame.empty:
            frame = pd.DataFrame(columns=[col.name for col in tables.readings.columns])
        return frame

    def signed_readings(self, asset: bytes | None = None, epoch: int | None = None) -> list[SignedReading]:
        frame = self.readings_frame(asset, epoch)
        return [signed_from_row(row) for row in frame.to_dict("records")]

    def count(self) -> int:

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(tables.readings)).scalar_one())

    def equivocations(self) -> list[JsonObject]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(select(tables.equivocations).order_by(tables.equivocations.c.id))
                .mappings()
                .all()
            )
        return [
            {
                "node": r["node"],
                "seq": int(r["seq"]),
                "digest": "0x" + bytes(r["digest"]).hex(),
                "existing_digest": "0x" + bytes(r["existing_digest"]).hex(),
                "reading": json.loads(r["reading_json"]),
                "detected_at": float(r["detected_at"]),
            }
            for r in rows
        ]

    def export_parquet(self, path: str | Path, asset: bytes | None = None, epoch: int | None = None) -> Path:
        """Write stored readings to Parquet (bytes as 0x hex, lease id as decimal text)."""
        frame = self.readings_frame(asset, epoch)
        for col in ("digest", "signature"):
            frame[col] = ["0x" + bytes(v).hex() for v in frame[col]]
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(out, index=False)
        return out


def signed_from_row(row: Fields) -> SignedReading:
    """Rebuild a signed reading from a ``meter_readings`` row (a row mapping or a frame record)."""
    reading = Reading(
        node=str(row["node"]),
        asset=hex_bytes(row["asset"]),
        epoch=as_int(row["epoch"]),
        seq=as_int(row["seq"]),
        window_start=as_int(row["window_start"]),
        window_end=as_int(row["window_end"]),
        energy_wh=as_int(row["energy_wh"]),
        gpu_seconds=as_int(row["gpu_seconds"]),
        hashes_th=as_int(row["hashes_th"]),
        tokens=as_int(row["tokens"]),
        lease_id=as_int(row["lease_id"]),
    )
    return SignedReading(reading, as_bytes(row["signature"]))


def _get(item: object, key: str) -> JsonScalar:
    """What a malformed reading sent for ``key``, when it is a JSON scalar (else ``None``)."""
    return _scalar(item.get(key) if isinstance(item, Mapping) else None)


def _scalar(value: object) -> JsonScalar:
    return value if isinstance(value, str | int | float | bool) else None


_INT_TYPES = {int}


def _fast_problem(r: Reading) -> str | None:
    """Range checks of the ingest hot path (falls back to the full check on anything unusual)."""
    ints = (r.epoch, r.seq, r.window_start, r.window_end, r.energy_wh, r.gpu_seconds, r.hashes_th, r.tokens)
    if (
        set(map(type, ints)) == _INT_TYPES
        and min(ints) >= 0
        and max(ints) <= INT63_MAX
        and r.window_end > r.window_start
        and type(r.lease_id) is int
        and 0 <= r.lease_id < 2**256
        and type(r.asset) is bytes
        and len(r.asset) == 32
        and type(r.node) is str
        and len(r.node) == 42
    ):
        return None
    problem = r.check()
    if problem:
        return problem
    return "a value exceeds 2**63 - 1, beyond any physical reading and the store's 64-bit columns"


def _over_capacity(r: Reading, node: _NodeLimits, dt: int, headroom: float) -> str | None:
    if r.energy_wh * 3600 > node.power_w * dt * headroom:
        return f"energy {r.energy_wh} Wh in {dt} s exceeds the node's {node.power_w:.0f} W"
    if r.gpu_seconds > node.gpus * dt:
        return f"{r.gpu_seconds} GPU-seconds in {dt} s exceed the node's {node.gpus} GPUs"
    if r.hashes_th > node.th_s * dt * headroom:
        return f"{r.hashes_th} TH in {dt} s exceed the node's {node.th_s:.0f} TH/s"
    if r.tokens > r.gpu_seconds * node.tokens_per_gpu_s:
        return f"{r.tokens} tokens exceed {node.tokens_per_gpu_s:.0f} per GPU-second of {r.gpu_seconds}"
    return None


def _lease_problem(r: Reading, terms: LeaseTerms | None) -> tuple[RejectReason, str] | None:
    """Step 6 of the module docstring for a reading with ``leaseId != 0``."""
    if terms is None or terms.asset != r.asset:
        return RejectReason.UNKNOWN_LEASE, (
            f"lease {r.lease_id} is not registered for asset 0x{r.asset.hex()} "
            "(register it with MeterStore.register_leases)"
        )
    start, end = r.window_start, r.window_end
    if not (start < terms.end_s and end > terms.start_s):
        return RejectReason.OUTSIDE_LEASE, (
            f"window [{start}, {end}) is outside lease {r.lease_id}'s [{terms.start_s}, {terms.end_s})"
        )
    most = terms.max_gpu_seconds(start, end)
    if r.gpu_seconds > most:
        return RejectReason.BEYOND_LEASE, (
            f"{r.gpu_seconds} GPU-seconds exceed lease {r.lease_id}'s {terms.gpus} GPUs over the "
            f"{most // terms.gpus} s its window shares with the reading's ({most} GPU-s)"
        )
    return None


class _Cell:
    """One window of a node: the leases reported for it and the sums of its readings."""

    __slots__ = ("energy_wh", "gpu_s", "hashes_th", "leases")

    def __init__(self, lease: str, energy_wh: int, gpu_s: int, hashes_th: int) -> None:
        self.leases = {lease}
        self.energy_wh = energy_wh
        self.gpu_s = gpu_s
        self.hashes_th = hashes_th


class _WindowBook:
    """One node's windows: disjoint ``[start, end)`` sorted by start, each with the leases reported
    for it and the sums of energy, GPU-seconds and hashes (step 9 of the module docstring)."""

    __slots__ = ("cells", "ends", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.cells: dict[tuple[int, int], _Cell] = {}

    def admit(
        self,
        start: int,
        end: int,
        lease: str,
        energy_wh: int,
        gpu_s: int,
        hashes_th: int,
        limit: _NodeLimits | None,
        headroom: float,
    ) -> tuple[RejectReason, str] | None:
        """Add a window, or say why not; ``limit=None`` adds a stored reading without checks."""
        starts, ends = self.starts, self.ends
        if ends and ends[-1] > start:  # not simply after the latest window
            i = bisect.bisect_left(starts, end)  # windows [0, i) start before this one ends
            if i and ends[i - 1] > start:  # the latest of them (the one ending last) overlaps it
                held = (starts[i - 1], ends[i - 1])
                if held != (start, end):
                    if limit is None:
                        return None
                    return RejectReason.OVERLAPPING_WINDOW, (
                        f"window [{start}, {end}) overlaps the node's window [{held[0]}, {held[1]})"
                    )
                cell = self.cells[held]
                if limit is not None:
                    if lease in cell.leases:
                        return RejectReason.OVERLAPPING_WINDOW, (
                            f"the node already reported lease {lease} for window [{start}, {end})"
                        )
                    dt = end - start
                    wh, gs, th = cell.energy_wh + energy_wh, cell.gpu_s + gpu_s, cell.hashes_th + hashes_th
                    if (
                        wh * 3600 > limit.power_w * dt * headroom
                        or gs > limit.gpus * dt
                        or th > limit.th_s * dt * headroom
                    ):
                        return RejectReason.BEYOND_CAPACITY, (
                            f"with the node's other readings of window [{start}, {end}) it would report "
                            f"{wh} Wh, {gs} GPU-s and {th} TH, "
                            f"beyond its {limit.power_w:.0f} W, {limit.gpus} GPUs and {limit.th_s:.0f} TH/s"
                        )
                cell.leases.add(lease)
                cell.energy_wh += energy_wh
                cell.gpu_s += gpu_s
                cell.hashes_th += hashes_th
                return None
            starts.insert(i, start)
            ends.insert(i, end)
        else:
            starts.append(start)
            ends.append(end)
        self.cells[(start, end)] = _Cell(lease, energy_wh, gpu_s, hashes_th)
        return None


def _windows_admitted(
    rows: Sequence[_ReadingRow], books: dict[str, _WindowBook], limits: Mapping[str, _NodeLimits]
) -> bool:
    """Whether every row's window is free (step 9), for the fast path; fills ``books``."""
    headroom = 1.0 + CAPACITY_HEADROOM
    for row in rows:
        node = row[0]
        book = books.get(node)
        if book is None:
            book = books[node] = _WindowBook()
        ends, start = book.ends, row[4]
        if not ends or ends[-1] <= start:  # after the node's latest window: inlined admit
            book.starts.append(start)
            ends.append(row[5])
            book.cells[(start, row[5])] = _Cell(row[10], row[6], row[7], row[8])
        elif book.admit(start, row[5], row[10], row[6], row[7], row[8], limits[node], headroom) is not None:
            return False
    return True


READING_COLUMNS = tuple(column.name for column in tables.readings.columns)  # the row tuples' order


def _insert_rows_fast(conn: Connection, table: Table, rows: list[_ReadingRow]) -> None:
    """``executemany`` straight on the driver: the ingest hot path skips per-row SQLAlchemy processing.

    Rows are tuples in :data:`READING_COLUMNS` order; the placeholder style follows the driver.
    """
    style = conn.dialect.paramstyle
    mark = "?" if style == "qmark" else "%s"
    cols = ", ".join(READING_COLUMNS)
    marks = ", ".join([mark] * len(READING_COLUMNS))
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({cols}) VALUES ({marks})", rows)


def _insert_ignoring_duplicates(conn: Connection, table: Table, rows: list[dict[str, object]]) -> None:
    """Insert rows, skipping those that hit a unique constraint (SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    else:
        conn.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)
