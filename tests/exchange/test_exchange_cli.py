from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from exchange_helpers import INST, command_stream, drive, seed_accounts
from typer.testing import CliRunner

from drakewell.cli import app
from drakewell.exchange.journal import recover

runner = CliRunner()


def _journal(tmp_path: Path) -> Path:
    path = tmp_path / "j.sqlite"
    engine, journal = recover(path)
    seed_accounts(engine)
    drive(engine, command_stream(300))
    engine.commit()
    journal.close()
    return path


def test_replay_prints_the_same_state_digest_every_time(tmp_path: Path) -> None:
    path = _journal(tmp_path)
    first = runner.invoke(app, ["exchange", "replay", str(path), "--json"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    assert summary["commands"] > 9 and summary["trades"] == summary["leases"] > 0
    second = json.loads(runner.invoke(app, ["exchange", "replay", str(path), "--json"]).output)
    assert second["state_sha256"] == summary["state_sha256"]
    text = runner.invoke(app, ["exchange", "replay", str(path)])
    assert "state_sha256" in text.output


def test_book_prints_levels(tmp_path: Path) -> None:
    path = _journal(tmp_path)
    result = runner.invoke(app, ["exchange", "book", INST, "--journal", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "bid" in result.output and "2000" in result.output


def test_open_account_writes_a_key_and_missing_journals_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    result = runner.invoke(
        app, ["exchange", "open-account", "erin", "--journal", str(path), "--deposit-usd", "100"]
    )
    assert result.exit_code == 0 and "X-API-Key" in result.output
    engine, _ = recover(path)
    assert engine.accounts["erin"].balance == 100_000_000
    missing = runner.invoke(app, ["exchange", "replay", str(tmp_path / "nope.sqlite")])
    assert missing.exit_code != 0 and "no journal" in str(missing.exception)
    missing = runner.invoke(app, ["exchange", "book", INST, "--journal", str(tmp_path / "nope.sqlite")])
    assert missing.exit_code != 0


@pytest.mark.integration
def test_serve_answers_orders_and_a_restart_keeps_them(tmp_path: Path) -> None:
    journal = tmp_path / "serve.sqlite"

    def start() -> tuple[subprocess.Popen[str], str, dict[str, str]]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [
            sys.executable,
            "-m",
            "drakewell.cli",
            "exchange",
            "serve",
            "--journal",
            str(journal),
            "--port",
            str(port),
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        keys: dict[str, str] = {}
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("demo account"):
                name, key = line.split()[2].rstrip(":"), line.split()[-1]
                keys[name] = key
            if len(keys) == 2 or (line.startswith("recovered") and "0 commands" not in line):
                break
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(base + "/instruments", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        return proc, base, keys

    proc, base, keys = start()
    try:
        # the demo pool's last listed day: still trading after the restart whatever the time of day
        far = httpx.get(base + "/instruments").json()["listed"][-1]
        r = httpx.post(
            base + "/orders",
            headers={"X-API-Key": keys["demo-buyer"]},
            json={"instrument": far, "side": "buy", "qty": 2, "price": 1_500_000},
        )
        assert r.status_code == 201, r.text
    finally:
        proc.kill()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
    proc, base, _ = start()  # restart: the acknowledged order is back on the book
    try:
        book = httpx.get(f"{base}/book/{far}").json()
        assert book["bids"] == [{"price": 1_500_000, "qty": 2, "orders": 1}]
    finally:
        proc.kill()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
