"""Restart recovery: the journal rebuilds exactly the same exchange, also after a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from exchange_helpers import INST, command_stream, drive, seed_accounts

from drakewell.core.errors import ExchangeError
from drakewell.exchange.engine import Engine
from drakewell.exchange.journal import Journal, JournalError, recover, replay

HERE = Path(__file__).parent


def test_replay_rebuilds_identical_books_balances_and_leases(tmp_path: Path) -> None:
    engine, journal = recover(tmp_path / "j.sqlite")
    seed_accounts(engine)
    commands = command_stream(600)
    drive(engine, commands[:400])
    engine.commit()
    assert engine.trades and engine.leases and any(o.status == "open" for o in engine.orders.values())
    journal.close()

    again, journal2 = recover(tmp_path / "j.sqlite")
    assert again.snapshot() == engine.snapshot()
    # both continue identically (ids, priorities and capacity all carried over)
    drive(engine, commands[400:])
    drive(again, commands[400:])
    again.commit()
    assert again.snapshot() == engine.snapshot()
    journal2.close()
    assert replay(Journal(tmp_path / "j.sqlite")).snapshot() == engine.snapshot()


def test_unacknowledged_commands_are_not_in_the_journal(tmp_path: Path) -> None:
    engine, _journal = recover(tmp_path / "j.sqlite")
    seed_accounts(engine)
    acked = engine.commit()
    engine.place("alice", INST, "buy", price=1_000_000, qty=1)  # applied, never committed
    assert engine.seq == acked + 1
    assert replay(Journal(tmp_path / "j.sqlite")).seq == acked


def test_two_writers_on_one_journal_are_refused(tmp_path: Path) -> None:
    first, _ = recover(tmp_path / "j.sqlite")
    second, _ = recover(tmp_path / "j.sqlite")
    seed_accounts(first)
    first.commit()
    seed_accounts(second)
    with pytest.raises(JournalError, match="another engine"):
        second.commit()
    assert second.halted


def test_a_journal_that_no_longer_applies_is_refused(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    journal.write([(1, "deposit", {"account_id": "ghost", "amount": 5})])
    with pytest.raises(JournalError, match="no longer applies"):
        replay(journal)
    other = Journal(tmp_path / "k.sqlite")
    other.write([(1, "launch_rocket", {})])
    with pytest.raises(ExchangeError, match="unknown command"):
        replay(other)


CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from exchange_helpers import command_stream, seed_accounts
    from drakewell.core.errors import ExchangeError
    from drakewell.exchange.journal import recover

    engine, journal = recover(sys.argv[1])
    seed_accounts(engine)
    engine.commit()
    for i, (kind, args) in enumerate(command_stream(100_000)):
        try:
            engine.apply(kind, dict(args))
        except ExchangeError:
            pass
        if i % 7 == 0:
            print(engine.commit(), flush=True)  # acknowledged up to this sequence number
    """
)


@pytest.mark.integration
def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path = tmp_path / "j.sqlite"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), str(HERE)], stdout=subprocess.PIPE, text=True
    )
    acked = 0
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked >= 1500:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert acked >= 1500, "the child stopped before it acknowledged enough commands"
    recovered = replay(Journal(path))
    assert recovered.seq >= acked  # every acknowledged command survived
    reference = Engine()
    seed_accounts(reference)
    drive(reference, command_stream(100_000), stop_at_seq=recovered.seq)
    assert reference.seq == recovered.seq
    assert recovered.snapshot() == reference.snapshot()
