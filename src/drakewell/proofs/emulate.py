"""An emulated Stratum V1 pool and emulated miners that really solve shares (loopback only).

The pool hands each connection an ``extranonce1`` (4 bytes, a counter) and ``extranonce2`` of 4
bytes, answers ``mining.configure`` with BIP 310 version rolling, sends ``mining.set_difficulty``
and a ``mining.notify`` once a worker is authorized, and checks every submit itself. Jobs are
deterministic functions of the pool's seed (coinbase halves shaped like a real coinbase, a merkle
branch of random sibling hashes, version ``0x20000000``).

A miner subscribes, authorizes, waits for a job, then hashes a bounded range of nonces for each
``extranonce2`` it tries and submits every header whose double SHA-256 is under the share target.
Tiny difficulties (e.g. one share per 16 hashes) keep this fast in Python. A cheating miner adds
shares that are not under the target (``"invalid"``) or repeats its valid ones (``"duplicate"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from drakewell.core.jsontypes import JsonMapping
from drakewell.proofs.stratum import (
    DEFAULT_VERSION_MASK,
    DIFF1_TARGET,
    Job,
    Session,
    ShareStatus,
    Submission,
    build_header,
    sha256d,
    target_for_difficulty,
    verify_shares,
)

Cheat = Literal["invalid", "duplicate"] | None


def difficulty_for_share_odds(hashes_per_share: int) -> float:
    """The difficulty at which about one hash in ``hashes_per_share`` is a share."""
    return float(Fraction(DIFF1_TARGET * hashes_per_share, 1 << 256))


class EmulatedPool:
    """A Stratum V1 pool on a loopback address (see module docstring)."""

    def __init__(
        self,
        difficulty: float,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        branch_length: int = 3,
        ntime: int = 1_700_000_000,
    ) -> None:
        self.difficulty = difficulty
        self.address = (host, port)
        self._rng = random.Random(seed)
        self.branch_length = branch_length
        self.ntime = ntime
        self._next_extranonce = 1
        self._job_seq = 0
        self._job = self._make_job()
        self._writers: list[tuple[asyncio.StreamWriter, Session]] = []
        self._server: asyncio.Server | None = None
        self.accepted: dict[str, int] = {}
        self.rejected: dict[str, int] = {}

    def _make_job(self) -> list[object]:
        self._job_seq += 1
        rnd = self._rng.randbytes
        height = (800_000 + self._job_seq).to_bytes(3, "little")
        coinb1 = (
            "01000000" + "01" + "00" * 32 + "ffffffff" + "20" + "03" + height.hex() + rnd(4).hex()
        )  # version, 1 input, null prevout, script length 32, BIP 34 height, pool tag; extranonces follow
        coinb2 = (
            rnd(17).hex()
            + "ffffffff"
            + "01"
            + (625_000_000).to_bytes(8, "little").hex()
            + "16"
            + "0014"
            + rnd(20).hex()
            + "00000000"
        )
        branch = [rnd(32).hex() for _ in range(self.branch_length)]
        return [
            f"{self._job_seq:x}",
            rnd(32).hex(),
            coinb1,
            coinb2,
            branch,
            "20000000",
            "1703a30c",
            f"{self.ntime:08x}",
            True,
        ]

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, *self.address)
        self.address = self._server.sockets[0].getsockname()[:2]
        return self.address

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w, _ in self._writers:
                w.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> EmulatedPool:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def new_job(self) -> None:
        """Send every connection a new job with ``clean_jobs``: older jobs' shares become stale."""
        self._job = self._make_job()
        for writer, session in self._writers:
            session.notify(self._job)
            await _send(writer, {"id": None, "method": "mining.notify", "params": self._job})

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(extranonce1=self._next_extranonce.to_bytes(4, "big"), extranonce2_size=4)
        self._next_extranonce += 1
        self._writers.append((writer, session))
        try:
            while line := await reader.readline():
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                await self._handle(msg, session, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers = [(w, s) for w, s in self._writers if w is not writer]
            writer.close()

    async def _handle(self, msg: JsonMapping, session: Session, writer: asyncio.StreamWriter) -> None:
        method, params, req_id = msg.get("method"), msg.get("params"), msg.get("id")
        if not isinstance(params, list):
            params = []
        if method == "mining.subscribe":
            result = [[["mining.notify", "emulated"]], session.extranonce1.hex(), session.extranonce2_size]
            await _send(writer, {"id": req_id, "result": result, "error": None})
        elif method == "mining.configure":
            session.version_mask = DEFAULT_VERSION_MASK
            answer = {"version-rolling": True, "version-rolling.mask": f"{DEFAULT_VERSION_MASK:08x}"}
            await _send(writer, {"id": req_id, "result": answer, "error": None})
        elif method == "mining.authorize":
            session.workers.add(str(params[0]))
            await _send(writer, {"id": req_id, "result": True, "error": None})
            session.set_difficulty(self.difficulty)
            session.notify(self._job)
            await _send(writer, {"id": None, "method": "mining.set_difficulty", "params": [self.difficulty]})
            await _send(writer, {"id": None, "method": "mining.notify", "params": self._job})
        elif method == "mining.submit":
            try:
                status = verify_shares(session, [Submission.from_params(params)])[0].status
            except Exception:
                status = ShareStatus.MALFORMED
            worker = str(params[0]) if params else "?"
            ok = status is ShareStatus.ACCEPTED
            book = self.accepted if ok else self.rejected
            book[worker] = book.get(worker, 0) + 1
            error = None if ok else [23, f"share {status.value}", None]
            await _send(writer, {"id": req_id, "result": ok, "error": error})
        else:
            await _send(writer, {"id": req_id, "result": None, "error": [20, "unsupported method", None]})


async def _send(writer: asyncio.StreamWriter, msg: JsonMapping) -> None:
    writer.write(json.dumps(msg).encode() + b"\n")
    await writer.drain()


@dataclass
class MinerReport:
    """What an emulated miner did: hashes tried, shares found and submitted, and the answers."""

    worker: str
    hashes: int = 0
    shares_found: int = 0
    submitted: int = 0
    answers: list[bool] = field(default_factory=list)


@dataclass
class EmulatedMiner:
    """A miner that hashes ``nonces`` nonces for each of ``extranonces`` extranonce2 values."""

    host: str
    port: int
    worker: str
    nonces: int = 256
    extranonces: int = 1
    version_rolling: bool = False
    cheat: Cheat = None
    source_host: str | None = None  # local loopback address to connect from (one per miner)
    timeout_s: float = 10.0

    async def run(self) -> MinerReport:
        report = MinerReport(self.worker)
        local = (self.source_host, 0) if self.source_host else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, local_addr=local), self.timeout_s
        )
        try:
            await asyncio.wait_for(self._mine(reader, writer, report), self.timeout_s)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        return report

    async def _mine(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, report: MinerReport
    ) -> None:
        ids = iter(range(1, 1 << 30))
        mask = 0
        if self.version_rolling:
            await _send(
                writer, {"id": next(ids), "method": "mining.configure", "params": [["version-rolling"], {}]}
            )
        await _send(writer, {"id": next(ids), "method": "mining.subscribe", "params": ["emulated-miner/1.0"]})
        await _send(writer, {"id": next(ids), "method": "mining.authorize", "params": [self.worker, "x"]})
        extranonce1, en2_size, target, notify = b"", 4, 0, None
        while notify is None:
            msg = json.loads(await reader.readline())
            result = msg.get("result")
            if isinstance(result, dict) and result.get("version-rolling"):
                mask = int(result["version-rolling.mask"], 16)
            elif isinstance(result, list) and len(result) >= 3:
                extranonce1, en2_size = bytes.fromhex(result[1]), int(result[2])
            elif msg.get("method") == "mining.set_difficulty":
                target = target_for_difficulty(msg["params"][0])
            elif msg.get("method") == "mining.notify":
                notify = msg["params"]
        job = Job.from_notify(notify, target)
        found: list[Submission] = []
        for e in range(self.extranonces):
            en2 = e.to_bytes(en2_size, "big")
            vbits = (0x2000 * (e + 1)) & mask if mask else None
            for nonce in range(self.nonces):
                nb = nonce.to_bytes(4, "big")
                vb = vbits.to_bytes(4, "big") if vbits is not None else None
                header = build_header(job, extranonce1, en2, job.ntime.to_bytes(4, "big"), nb, vb, mask)
                report.hashes += 1
                good = int.from_bytes(sha256d(header), "little") <= job.target
                if good or (self.cheat == "invalid" and nonce % 7 == 0):
                    report.shares_found += good
                    found.append(
                        Submission(
                            self.worker,
                            job.job_id,
                            en2.hex(),
                            f"{job.ntime:08x}",
                            nb.hex(),
                            vb.hex() if vb else None,
                        )
                    )
        if self.cheat == "duplicate":
            found = found + found[: max(1, len(found) // 2)]
        for sub in found:
            await _send(writer, {"id": next(ids), "method": "mining.submit", "params": sub.to_params()})
            report.submitted += 1
        while len(report.answers) < report.submitted:
            msg = json.loads(await reader.readline())
            if msg.get("method") is None and isinstance(msg.get("result"), bool):
                report.answers.append(bool(msg["result"]))
