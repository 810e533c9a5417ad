"""The exchange journal: accepted commands, append-only, in the store layer's database.

One table, ``exchange_journal(seq, kind, body)``: ``seq`` is the engine's command sequence number
(primary key, gap-free from 1), ``kind`` the engine method, ``body`` its arguments as JSON. SQLite
in WAL mode with ``synchronous=FULL`` (set by :func:`drakewell.store.open_engine`) is the default, so
a committed transaction survives a kill -9 or a power cut; a PostgreSQL URL works the same way.

:meth:`Journal.write` appends a batch in one transaction (the group commit), refusing a batch that
does not continue the journal's sequence. :func:`recover` replays a journal into a fresh
:class:`~drakewell.exchange.engine.Engine` and attaches the journal for new commands.

:class:`GroupCommitter` serves asyncio callers (the REST API): each request applies its command in
memory and awaits ``durable(seq)``; whoever gets the lock writes *everything* queued so far in one
transaction, so N concurrent requests share one commit, and each request is answered only once its
own record is durable.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Column, Integer, String, Table, Text, func, select
from sqlalchemy.exc import IntegrityError

from drakewell.core.errors import ExchangeError
from drakewell.exchange.engine import Engine, Record
from drakewell.store import database_url, metadata, open_engine

journal_table = Table(
    "exchange_journal",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("body", Text, nullable=False),
)


_dumps = json.JSONEncoder(separators=(",", ":")).encode


class JournalError(ExchangeError):
    """The journal is out of sequence or unreadable."""


class Journal:
    """Append-only command log at a database URL (or SQLite file path)."""

    def __init__(self, path_or_url: str | Path) -> None:
        self.url = database_url(str(path_or_url))
        self.db = open_engine(self.url)
        with self.db.connect() as conn:
            last = conn.execute(select(func.max(journal_table.c.seq))).scalar()
        self.last_seq = int(last or 0)
        mark = "?" if self.db.dialect.paramstyle == "qmark" else "%s"
        self._insert_sql = f"INSERT INTO exchange_journal (seq, kind, body) VALUES ({mark}, {mark}, {mark})"

    def write(self, batch: list[Record]) -> None:
        """Append ``batch`` (consecutive sequence numbers) in one transaction."""
        if not batch:
            return
        if batch[0][0] != self.last_seq + 1:
            raise JournalError(
                f"batch starts at seq {batch[0][0]} but the journal ends at {self.last_seq}",
                hint="one engine per journal: replay it with recover() before writing",
            )
        dumps = _dumps
        rows = [(seq, kind, dumps(args)) for seq, kind, args in batch]
        try:
            with self.db.begin() as conn:
                # the driver's own executemany: about half SQLAlchemy's per-row cost on big batches
                conn.exec_driver_sql(self._insert_sql, rows)
        except IntegrityError as exc:
            raise JournalError(
                f"journal already holds seq {batch[0][0]}..{batch[-1][0]}: another engine wrote to it",
                hint="run one engine per journal; restart this one to replay what the other wrote",
            ) from exc
        self.last_seq = batch[-1][0]

    def records(self) -> Iterator[Record]:
        """Every record in sequence order."""
        with self.db.connect() as conn:
            result = conn.execute(select(journal_table).order_by(journal_table.c.seq))
            for seq, kind, body in result:
                yield int(seq), str(kind), json.loads(body)

    def close(self) -> None:
        self.db.dispose()


def replay(journal: Journal, engine: Engine | None = None) -> Engine:
    """Apply every journaled command to ``engine`` (a fresh one by default) and return it."""
    engine = engine or Engine()
    for seq, kind, args in journal.records():
        if seq != engine.seq + 1:
            raise JournalError(
                f"journal jumps from seq {engine.seq} to {seq}",
                hint="the journal was edited or truncated in the middle; restore it",
            )
        try:
            engine.apply(kind, args)
        except ExchangeError as exc:
            raise JournalError(
                f"journal record {seq} ({kind}) no longer applies: {exc}",
                hint="replay with the version that wrote the journal",
            ) from exc
    return engine


def recover(path_or_url: str | Path) -> tuple[Engine, Journal]:
    """Open (or create) a journal, rebuild the engine from it and attach the journal for new commands."""
    journal = Journal(path_or_url)
    engine = replay(journal)
    engine.attach(journal.write)
    return engine, journal


class GroupCommitter:
    """Group commit for asyncio callers; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = asyncio.Lock()

    async def durable(self, seq: int) -> None:
        """Return once command ``seq`` is in the journal (writing every queued record if needed)."""
        engine = self.engine
        if engine.journal_write is None:
            engine.mark_durable(seq)  # nothing to write: in memory is all there is
            return
        async with self._lock:
            if engine.committed_seq >= seq:
                return  # a commit made while we waited covered us
            batch = engine.take_pending()
            if not batch:
                return
            try:
                await asyncio.to_thread(engine.journal_write, batch)
            except Exception:
                engine.halt()
                raise
            engine.mark_durable(batch[-1][0])
