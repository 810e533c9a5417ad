"""A Stratum V1 proxy that witnesses every share between a site's miners and their pool.

Each miner connection gets its own connection to the pool; every line is forwarded unchanged in
both directions (the pool stays the authority on payouts). On the way the proxy reads what both
sides say: ``mining.subscribe``'s answer (``extranonce1``, ``extranonce2`` size),
``mining.configure``'s version-rolling mask, ``mining.set_difficulty``, ``mining.notify``,
``mining.set_extranonce``, ``mining.authorize``, and checks every ``mining.submit`` itself
(:mod:`drakewell.proofs.stratum`). Accepted work is counted per worker and epoch
(``floor(now / epoch_seconds)``, ``now`` from the injected clock); invalid, duplicate, stale and
malformed shares are counted apart and never credited. The pool's own answer to each submit is
recorded beside the proxy's verdict.

All connection handlers run on one asyncio event loop; the tallies are also read from other
threads (a CLI, an API), so they sit behind a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from drakewell.core.errors import ProofError
from drakewell.core.jsontypes import JsonMapping, JsonObject
from drakewell.metering.readings import DEFAULT_EPOCH_SECONDS
from drakewell.proofs.stratum import (
    HashrateEstimate,
    Session,
    ShareStatus,
    Submission,
    estimate_hashrate,
    hashes_per_share,
    verify_shares,
)

MAX_LINE = 64 * 1024  # a Stratum line is well under this; longer lines end the connection

Pending: TypeAlias = dict[object, tuple[str, str]]
"""A connection's requests awaiting the pool's answer: request id -> (method, worker or "")."""


@dataclass
class WorkerTally:
    """Shares of one worker in one epoch."""

    worker: str
    epoch: int
    accepted: int = 0
    work_hashes: float = 0.0
    invalid: int = 0
    duplicate: int = 0
    stale: int = 0
    malformed: int = 0
    pool_accepted: int = 0
    pool_rejected: int = 0
    first_seen_s: float = 0.0
    last_target: int = 0

    @property
    def rejected(self) -> int:
        return self.invalid + self.duplicate + self.stale + self.malformed

    def to_json(self) -> JsonObject:
        return {
            "worker": self.worker,
            "epoch": self.epoch,
            "accepted": self.accepted,
            "workHashes": self.work_hashes,
            "invalid": self.invalid,
            "duplicate": self.duplicate,
            "stale": self.stale,
            "malformed": self.malformed,
            "poolAccepted": self.pool_accepted,
            "poolRejected": self.pool_rejected,
        }


class StratumProxy:
    """Listen on a loopback address, relay to ``pool_host:pool_port``, verify and count shares."""

    def __init__(
        self,
        pool_host: str,
        pool_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        epoch_seconds: int = DEFAULT_EPOCH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not listen_host.startswith("127."):
            raise ProofError(f"listen address {listen_host} is not loopback", hint="listen on 127.0.0.1")
        if epoch_seconds <= 0:
            raise ProofError(f"epoch length {epoch_seconds} s is not positive", hint="default is 86400")
        self.pool = (pool_host, int(pool_port))
        self.listen = (listen_host, int(listen_port))
        self.epoch_seconds = int(epoch_seconds)
        self.clock = clock
        self._tallies: dict[tuple[str, int], WorkerTally] = {}
        self._lock = threading.Lock()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._started_s = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        self._started_s = self.clock()
        self._server = await asyncio.start_server(self._serve, *self.listen, limit=MAX_LINE)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.listen = (host, port)
        return host, port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()  # ends both pumps of that connection; its handler then returns
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> StratumProxy:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # -- accounting --------------------------------------------------------------------------------

    def epoch_of(self, now_s: float) -> int:
        return int(now_s // self.epoch_seconds)

    def _tally(self, worker: str, now_s: float) -> WorkerTally:
        key = (worker, self.epoch_of(now_s))
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = WorkerTally(worker, key[1], first_seen_s=now_s)
        return tally

    def tallies(self) -> list[WorkerTally]:
        """A copy of every worker's tally, ordered by epoch and worker."""
        with self._lock:
            return [
                WorkerTally(**vars(t))
                for _, t in sorted(self._tallies.items(), key=lambda kv: (kv[0][1], kv[0][0]))
            ]

    def estimates(self, now_s: float, confidence: float = 0.95) -> dict[tuple[str, int], HashrateEstimate]:
        """Hashrate per worker and epoch over the part of the epoch the proxy has watched."""
        out = {}
        for t in self.tallies():
            start = max(t.epoch * self.epoch_seconds, self._started_s)
            end = min((t.epoch + 1) * self.epoch_seconds, now_s)
            if end <= start:
                continue
            per_share = t.work_hashes / t.accepted if t.accepted else hashes_per_share(t.last_target)
            out[(t.worker, t.epoch)] = estimate_hashrate(t.accepted, end - start, per_share, confidence)
        return out

    # -- relay -------------------------------------------------------------------------------------

    async def _serve(self, miner_r: asyncio.StreamReader, miner_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        session = Session()
        pending: Pending = {}
        try:
            pool_r, pool_w = await asyncio.open_connection(*self.pool, limit=MAX_LINE)
        except OSError:
            miner_w.close()
            if task is not None:
                self._tasks.discard(task)
            return
        self._writers.update((miner_w, pool_w))
        up = asyncio.ensure_future(
            _relay(miner_r, pool_w, lambda msg: self._from_miner(msg, session, pending))
        )
        down = asyncio.ensure_future(
            _relay(pool_r, miner_w, lambda msg: self._from_pool(msg, session, pending))
        )
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (up, down):
                t.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
            for w in (pool_w, miner_w):
                self._writers.discard(w)
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()
            if task is not None:
                self._tasks.discard(task)

    def _from_miner(self, msg: JsonMapping, session: Session, pending: Pending) -> None:
        """Miner → pool: note subscribe/configure/authorize ids, verify and count submits."""
        method, params, req_id = msg.get("method"), msg.get("params"), msg.get("id")
        if method == "mining.submit":
            now = self.clock()
            worker = params[0] if isinstance(params, list) and params and isinstance(params[0], str) else "?"
            try:
                sub = Submission.from_params(params)
            except ProofError:
                with self._lock:
                    self._tally(worker, now).malformed += 1
                return
            result = verify_shares(session, [sub])[0]
            with self._lock:
                tally = self._tally(sub.worker, now)
                tally.last_target = session.target
                if result.status is ShareStatus.ACCEPTED:
                    tally.accepted += 1
                    tally.work_hashes += result.work
                else:
                    setattr(tally, result.status.value, getattr(tally, result.status.value) + 1)
            pending[req_id] = ("submit", sub.worker)
        elif method in ("mining.subscribe", "mining.configure"):
            pending[req_id] = (method, "")
        elif method == "mining.authorize" and isinstance(params, list) and params:
            pending[req_id] = (method, str(params[0]))

    def _from_pool(self, msg: JsonMapping, session: Session, pending: Pending) -> None:
        """Pool → miner: learn extranonce, mask, difficulty and jobs, record submit answers."""
        method, params = msg.get("method"), msg.get("params")
        if method is None:
            asked = pending.pop(msg.get("id"), None)
            if asked is not None:
                self._answer(asked, msg.get("result"), session)
            return
        try:
            if method == "mining.set_difficulty" and isinstance(params, list) and params:
                session.set_difficulty(params[0])
            elif method == "mining.notify" and isinstance(params, list):
                session.notify(params)
            elif method == "mining.set_extranonce" and isinstance(params, list) and len(params) >= 2:
                session.set_extranonce(bytes.fromhex(params[0]), int(params[1]))
            elif method == "mining.set_version_mask" and isinstance(params, list) and params:
                session.version_mask = int(params[0], 16)
        except (ProofError, ValueError, TypeError):
            pass  # forwarded anyway; shares on a job the proxy could not read count as stale

    def _answer(self, asked: tuple[str, str], result: object, session: Session) -> None:
        kind, detail = asked
        if kind == "mining.subscribe" and isinstance(result, list) and len(result) >= 3:
            with contextlib.suppress(ValueError, TypeError):
                session.set_extranonce(bytes.fromhex(result[1]), int(result[2]))
        elif kind == "mining.configure" and isinstance(result, dict) and result.get("version-rolling"):
            with contextlib.suppress(ValueError, TypeError):
                session.version_mask = int(result.get("version-rolling.mask", "0"), 16)
        elif kind == "mining.authorize" and result is True:
            session.workers.add(detail)
        elif kind == "submit":
            with self._lock:
                tally = self._tally(detail, self.clock())
                if result is True:
                    tally.pool_accepted += 1
                else:
                    tally.pool_rejected += 1


async def _relay(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, note: Callable[[JsonMapping], None]
) -> None:
    """Forward every line from ``reader`` to ``writer`` unchanged, showing each JSON object to ``note``
    first."""
    while line := await reader.readline():
        msg = _parse(line)
        if msg is not None:
            note(msg)
        writer.write(line)
        await writer.drain()


def _parse(line: bytes) -> JsonMapping | None:
    try:
        msg = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return msg if isinstance(msg, dict) else None
