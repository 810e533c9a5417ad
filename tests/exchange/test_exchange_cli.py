from __future__ import annotations

import json
from pathlib import Path

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
