"""A throwaway PostgreSQL server for the store's suite: started from Debian's ``postgresql`` package
on a free loopback port with its data in a temporary folder, and stopped at the end."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL server binaries not found: run `make sysdeps` (Debian package 'postgresql')")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="drakewell-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    run = lambda cmd: subprocess.run(_as_postgres(cmd), check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run([str(bindir / "initdb"), "-D", str(data), "-U", "drakewell", "--auth=trust", "-E", "UTF8"])
        run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-w",
                "-t",
                "30",
                "-l",
                str(root / "log"),
                "-o",
                f"-h 127.0.0.1 -p {port} -k {sock} -F",
                "start",
            ]
        )
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"could not start PostgreSQL: {exc.stderr or exc.stdout}")
    try:
        run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "drakewell", "drakewell"])
        yield f"postgresql://drakewell@127.0.0.1:{port}/drakewell"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    # a fresh schema per test: drop every table the previous test created
    from drakewell.store import metadata, open_engine

    engine = open_engine(url, create=False)
    metadata.drop_all(engine)
    engine.dispose()
    return url
