"""The controller's append-only journal: one JSON object per line, written and fsynced before it acts.

Records (``kind``):

- ``start``: the run's horizon (first interval, count, interval seconds) — a resumed run checks it;
- ``decision``: one interval's decision (:class:`~drakewell.dispatch.policies.StepDecision` fields,
  the price it used, the facility cap in force and why it was made: ``interval`` or ``event:ID``).
  The last decision of an interval is the one committed when the next interval starts;
- ``command``: a setpoint about to be sent to the fleet (``seq``, interval, MW); ``result``: what
  the read-back showed for ``seq`` (reached, measured MW, seconds);
- ``event``: a demand-response event and the opt answer given (journalled before the VTN hears
  it, so an event opted into is never forgotten);
- ``safe_mode``: entering (``on``) or leaving safe mode and why.

Records are JSON objects; the readers of :mod:`drakewell.core.fields` read a field back as the type
it was written with.

A line cut short by a crash (``kill -9`` between ``write`` and ``fsync``) is the only damage the
journal can suffer; :func:`read_journal` drops an unterminated last line and refuses any other
malformed line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from drakewell.core.jsontypes import JsonObject
from drakewell.live.config import LiveError

__all__ = ["Journal", "read_journal"]


def read_journal(path: str | Path) -> list[JsonObject]:
    """Every complete record of a journal, oldest first (``[]`` when the file does not exist)."""
    file = Path(path)
    if not file.exists():
        return []
    raw = file.read_bytes()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        lines.pop()  # unterminated: the write was cut short before its newline reached the disk
    out: list[JsonObject] = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise LiveError(
                f"journal {file} line {number} is not JSON",
                hint="the journal is append-only; restore it from a backup or start a new one",
            ) from None
        if not isinstance(record, dict) or "kind" not in record:
            raise LiveError(f"journal {file} line {number} has no kind", hint="use a journal this tool wrote")
        out.append(record)
    return out


class Journal:
    """Append records to ``path``; each ``append`` returns after the line is on disk (fsync)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records = read_journal(self.path)
        if self.path.exists():
            raw = self.path.read_bytes()
            keep = raw.rfind(b"\n") + 1
            if keep != len(raw):  # a torn last line (cut short by a crash): cut it off
                os.truncate(self.path, keep)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, record: JsonObject) -> None:
        line = json.dumps(record, separators=(",", ":"), allow_nan=False).encode() + b"\n"
        os.write(self._fd, line)
        os.fsync(self._fd)
        self.records.append(record)

    def of_kind(self, kind: str) -> Iterator[JsonObject]:
        return (r for r in self.records if r["kind"] == kind)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
