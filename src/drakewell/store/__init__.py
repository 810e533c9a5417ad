"""The store layer: one SQLAlchemy ``MetaData`` and one engine factory for every package.

SQLite (WAL, synchronous=FULL so an acknowledged write survives a crash) is the default;
``postgresql://…`` (or ``postgresql+psycopg://…``) selects a real server. Packages declare their
tables on :data:`metadata` and call :func:`open_engine`; nothing else in the code base names a
database driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, MetaData, create_engine, event

from drakewell.core.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

metadata = MetaData()


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path)}"


def database_url(text: str) -> str:
    """``text`` as a database URL: a URL as given, or a SQLite file path's URL."""
    return text if "://" in text else sqlite_url(text)


WAL_AUTOCHECKPOINT_PAGES = 10_000


def open_engine(url: str, *, create: bool = True) -> Engine:
    """Open (and by default create the tables of) the database at ``url``."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    try:
        engine = create_engine(url, future=True)
    except Exception as exc:  # bad URL or missing driver
        raise StoreError(
            f"cannot open database {url!r}: {exc}",
            hint="use sqlite:///PATH or postgresql://USER@HOST:PORT/DB (install the 'postgres' extra)",
        ) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if create:
        try:
            metadata.create_all(engine)
        except Exception as exc:
            engine.dispose()
            if "file is not a database" in str(exc):
                raise StoreError(
                    f"{url.removeprefix('sqlite:///')} is not an SQLite database",
                    hint="pass a database file Drakewell wrote (it was left untouched)",
                ) from None
            raise StoreError(
                f"cannot create tables in {url!r}: {exc}",
                hint="check that the server is running, the URL (user, host, port, database) and permissions",
            ) from exc
    return engine


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    # checkpoint the WAL every 10,000 pages (~40 MB) rather than 1,000: the store is write-heavy
    # (readings, the exchange journal), and fewer checkpoints mean fewer fsyncs of the database file
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cur.close()
