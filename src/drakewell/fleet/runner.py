"""Run the fleet's coroutines on uvloop when it is installed.

A fleet step is thousands of short TCP requests (pyasic opens one connection per command and two
per Whatsminer read-back); libuv's event loop spends markedly less CPU per connection than
asyncio's default selector loop, and the controller is CPU-bound on one loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[object, None, T], *, use_uvloop: bool = True) -> T:
    """``asyncio.run(main)``, on uvloop unless it is missing or ``use_uvloop`` is False."""
    if use_uvloop:
        try:
            import uvloop
        except ModuleNotFoundError:  # pragma: no cover - a core dependency
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)
