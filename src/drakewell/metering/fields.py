"""The JSON every Merkle proof ends with.

The typed readers metering narrows record values with live in :mod:`drakewell.core.fields`.
"""

from __future__ import annotations

from collections.abc import Sequence

from drakewell.core.jsontypes import JsonObject

__all__ = ["path_json"]


def path_json(leaf: bytes, proof: Sequence[bytes], root: bytes) -> JsonObject:
    """The ``leaf``, ``proof`` and ``root`` keys a proof's JSON ends with, as ``0x`` hex."""
    return {"leaf": "0x" + leaf.hex(), "proof": ["0x" + p.hex() for p in proof], "root": "0x" + root.hex()}
