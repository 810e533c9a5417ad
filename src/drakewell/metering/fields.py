"""Typed values out of the records metering reads (database rows, frame records, JSON objects),
and the JSON every Merkle proof ends with.

A :class:`Fields` is anything that gives a value by field name (a SQLAlchemy ``RowMapping``, a
``DataFrame.to_dict("records")`` entry, a parsed JSON object). Its values are narrowed by the
readers below, which convert exactly as ``int()``, ``float()`` and ``bytes()`` do and raise the
same ``TypeError`` for a value of the wrong kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, SupportsFloat, SupportsIndex, SupportsInt

from drakewell.core.jsontypes import JsonMapping, JsonObject


class Fields(Protocol):
    """A record's values by field name."""

    def __getitem__(self, key: str, /) -> object: ...


def _wrong(target: str, what: str, value: object) -> TypeError:
    return TypeError(f"{target}() argument must be {what}, not {type(value).__name__!r}")


def as_int(value: object) -> int:
    """``int(value)``: an integer, a real number (truncated) or numeric text."""
    if isinstance(value, str | bytes | bytearray | SupportsInt | SupportsIndex):
        return int(value)
    raise _wrong("int", "a string, a bytes-like object or a real number", value)


def as_float(value: object) -> float:
    """``float(value)``: a real number or numeric text."""
    if isinstance(value, str | bytes | bytearray | SupportsFloat | SupportsIndex):
        return float(value)
    raise _wrong("float", "a string or a real number", value)


def as_bytes(value: object) -> bytes:
    """``bytes(value)`` of a binary column's value (bytes, bytearray or memoryview)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"cannot convert {type(value).__name__!r} object to bytes")


def hex_bytes(value: object) -> bytes:
    """The bytes of ``0x`` hex text (as stored for assets and as JSON carries bytes)."""
    return bytes.fromhex(str(value)[2:])


def hex_list(values: object) -> tuple[bytes, ...]:
    """:func:`hex_bytes` of each item of a list (``TypeError`` for what cannot be iterated)."""
    if not isinstance(values, Iterable):
        raise TypeError(f"{type(values).__name__!r} object is not iterable")
    return tuple(hex_bytes(v) for v in values)


def json_list(value: object) -> list[object]:
    """``value`` as a JSON array; ``TypeError`` for anything else."""
    if isinstance(value, list):
        return value
    raise TypeError(f"{value!r} is not a JSON array")


def json_object(value: object) -> JsonMapping:
    """``value`` as a JSON object (a mapping); ``TypeError`` for anything else."""
    if isinstance(value, Mapping):
        return value
    raise TypeError(f"{value!r} is not a JSON object")


def path_json(leaf: bytes, proof: Sequence[bytes], root: bytes) -> JsonObject:
    """The ``leaf``, ``proof`` and ``root`` keys a proof's JSON ends with, as ``0x`` hex."""
    return {"leaf": "0x" + leaf.hex(), "proof": ["0x" + p.hex() for p in proof], "root": "0x" + root.hex()}
