"""A run folder's layout: written by the demo, read by serve."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from drakewell.core.errors import DrakewellError
from drakewell.report.rundir import RunDir


def test_a_run_folder_round_trips_its_summary_and_ledger(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert not run.exists()
    with pytest.raises(DrakewellError, match=r"no summary\.json"):
        run.read_summary()
    assert run.read_ledger() is None
    pd.DataFrame({"interval_start_utc": ["2023-07-01T05:00:00Z"], "mining_mw": [1.5]}).to_csv(
        run.ledger, index=False
    )
    run.meter_db.write_bytes(b"")
    assert run.files() == {
        "summary": str(run.summary),
        "ledger": str(run.ledger),
        "meter.sqlite": str(run.meter_db),
    }
    run.write_summary({"site": "x", "files": run.files()})
    assert run.exists() and run.read_summary()["site"] == "x"
    ledger = run.read_ledger()
    assert ledger is not None and ledger["mining_mw"].tolist() == [1.5]
    assert str(ledger["interval_start_utc"].dt.tz) == "UTC"


def test_a_broken_summary_is_named(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.summary.write_text("{not json")
    with pytest.raises(DrakewellError, match="is not valid JSON"):
        run.read_summary()
