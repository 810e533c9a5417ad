"""The demo's timed steps: each step's name, seconds and one line of detail, echoed as it ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["DemoLog", "Step"]

T = TypeVar("T")


@dataclass
class Step:
    name: str
    seconds: float
    detail: str


@dataclass
class DemoLog:
    """Timings of the demo's steps (for the summary and the console)."""

    steps: list[Step] = field(default_factory=list)
    echo: Callable[[str], None] = print

    def run(self, name: str, fn: Callable[[], T], detail: Callable[[T], str] | None = None) -> T:
        t0 = time.perf_counter()
        out = fn()
        step = Step(name, time.perf_counter() - t0, detail(out) if detail else "")
        self.steps.append(step)
        self.echo(f"[{step.seconds:6.1f} s] {name}{': ' + step.detail if step.detail else ''}")
        return out
