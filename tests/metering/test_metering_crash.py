"""A process killed (SIGKILL) in the middle of ingest loses nothing acknowledged and stores nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import metering_crash_child as child
import pytest

from drakewell.metering.ingest import MeterStore
from drakewell.store import sqlite_url

HERE = Path(__file__).resolve().parent


@pytest.mark.integration
@pytest.mark.parametrize("kill_after_acks", [1, 3])
def test_sigkill_mid_batch_loses_no_acknowledged_reading(tmp_path: Path, kill_after_acks: int) -> None:
    url = sqlite_url(tmp_path / "meter.sqlite")
    MeterStore(url, child.DOMAIN).register_nodes(child.nodes())
    batches = child.batches()
    acked: list[int] = []
    with subprocess.Popen(
        [sys.executable, str(HERE / "metering_crash_child.py"), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            tag, index, count = line.split()
            assert tag == "ACK" and int(count) == child.PER_BATCH
            acked.append(int(index))
            if len(acked) == kill_after_acks:
                os.kill(proc.pid, signal.SIGKILL)  # the child is now inside the next batch
                break
        proc.wait(timeout=60)
        errors = proc.stderr.read()
    assert proc.returncode == -signal.SIGKILL, errors
    assert len(acked) == kill_after_acks

    store = MeterStore(url, child.DOMAIN)
    stored = {(s.reading.node, s.reading.seq): s for s in store.signed_readings()}
    for i in acked:  # nothing acknowledged is lost
        for s in batches[i]:
            assert stored[(s.reading.node, s.reading.seq)] == s
    # the batch in flight is all or nothing (one transaction)
    assert store.count() in (len(acked) * child.PER_BATCH, (len(acked) + 1) * child.PER_BATCH)

    # re-sending everything after the crash stores each reading exactly once
    total = 0
    for batch in batches:
        result = store.ingest(batch)
        assert result.rejected == ()
        total += result.acknowledged
    assert total == child.BATCHES * child.PER_BATCH
    assert store.count() == child.BATCHES * child.PER_BATCH
