"""A run folder's layout, in one place: what ``drakewell demo`` writes and ``drakewell serve`` reads.

::

    summary.json     the run's figures (the dispatch summary under "dispatch", then the market's)
    ledger.csv       the per-interval dispatch ledger (UTC interval starts)
    report.html      the self-contained report
    meter.sqlite     the run's signed readings, epochs and capacity checks
    exchange.sqlite  the run's exchange journal
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from drakewell.core.errors import DrakewellError
from drakewell.core.jsontypes import JsonObject

__all__ = ["RunDir"]


class _File:
    """A file of the run folder, by name: ``run.summary`` is ``run.root / "summary.json"``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, run: RunDir, owner: type[RunDir] | None = None) -> Path:
        return run.root / self.name


@dataclass(frozen=True)
class RunDir:
    """The folder of one end-to-end run."""

    root: Path

    summary = _File("summary.json")
    ledger = _File("ledger.csv")
    report = _File("report.html")
    meter_db = _File("meter.sqlite")
    exchange_db = _File("exchange.sqlite")

    def exists(self) -> bool:
        """True when the folder holds a run (its summary)."""
        return self.summary.is_file()

    def files(self) -> dict[str, str]:
        """The run's files that exist, by role (the summary's ``files`` entry)."""
        named = {
            "summary": self.summary,
            "ledger": self.ledger,
            "report": self.report,
            self.meter_db.name: self.meter_db,
            self.exchange_db.name: self.exchange_db,
        }
        return {role: str(path) for role, path in named.items() if path.exists() or role == "summary"}

    def write_summary(self, summary: JsonObject) -> Path:
        self.summary.write_text(json.dumps(summary, indent=2, default=str))
        return self.summary

    def read_summary(self) -> JsonObject:
        if not self.exists():
            raise DrakewellError(
                f"no summary.json in {self.root}", hint="run `drakewell demo --out DIR` first"
            )
        try:
            summary: JsonObject = json.loads(self.summary.read_text())
        except json.JSONDecodeError as exc:
            raise DrakewellError(f"{self.summary} is not valid JSON: {exc}", hint="re-run the demo") from exc
        return summary

    def read_ledger(self) -> pd.DataFrame | None:
        """The ledger, or None when the run wrote none."""
        if not self.ledger.exists():
            return None
        return pd.read_csv(self.ledger, parse_dates=["interval_start_utc"])
