"""Typed values out of records read back: database rows, frame records, parsed JSON objects and
journal lines.

A :class:`Fields` is anything that gives a value by field name (a SQLAlchemy ``RowMapping``, a
``DataFrame.to_dict("records")`` entry, a parsed JSON object). Its values are narrowed by the
readers below. :func:`as_int`, :func:`as_float` and :func:`as_bytes` convert exactly as ``int()``,
``float()`` and ``bytes()`` do and raise the same ``TypeError`` for a value of the wrong kind; the
others raise ``TypeError`` for a value of the wrong JSON type (``ValueError`` for bad hex digits).
Callers catch both and say which record was bad and how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, SupportsFloat, SupportsIndex, SupportsInt, overload

from drakewell.core.jsontypes import JsonMapping, JsonObject, JsonValue

__all__ = [
    "Fields",
    "as_bytes",
    "as_float",
    "as_int",
    "as_optional_float",
    "as_str",
    "hex_bytes",
    "hex_list",
    "json_list",
    "json_object",
]


class Fields(Protocol):
    """A record's values by field name."""

    def __getitem__(self, key: str, /) -> object: ...


# What int() and float() take; the plain types come first, so that they match before a (slow)
# protocol check is made.
_INT_LIKE = int | float | str | bytes | bytearray | SupportsInt | SupportsIndex
_FLOAT_LIKE = int | float | str | bytes | bytearray | SupportsFloat | SupportsIndex


def _wrong(target: str, what: str, value: object) -> TypeError:
    return TypeError(f"{target}() argument must be {what}, not {type(value).__name__!r}")


def as_int(value: object) -> int:
    """``int(value)``: an integer, a real number (truncated) or numeric text."""
    if isinstance(value, _INT_LIKE):
        return int(value)
    raise _wrong("int", "a string, a bytes-like object or a real number", value)


def as_float(value: object) -> float:
    """``float(value)``: a real number or numeric text."""
    if isinstance(value, _FLOAT_LIKE):
        return float(value)
    raise _wrong("float", "a string or a real number", value)


def as_optional_float(value: object) -> float | None:
    """:func:`as_float`, or ``None`` for ``null``."""
    return None if value is None else as_float(value)


def as_str(value: object) -> str:
    """``value`` as text (a name, an ISO-8601 time); ``TypeError`` for anything else."""
    if isinstance(value, str):
        return value
    raise TypeError(f"{value!r} is not text")


def as_bytes(value: object) -> bytes:
    """``bytes(value)`` of a binary column's value (bytes, bytearray or memoryview)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"cannot convert {type(value).__name__!r} object to bytes")


def hex_bytes(value: object) -> bytes:
    """The bytes of ``0x`` hex text (as stored for assets and as JSON carries bytes); ``ValueError``
    for anything else."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"{value!r} is not 0x hex")
    return bytes.fromhex(value[2:])


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


@overload
def json_object(value: JsonValue) -> JsonObject: ...
@overload
def json_object(value: object) -> JsonMapping: ...
def json_object(value: object) -> JsonMapping:
    """``value`` as a JSON object (a mapping); ``TypeError`` for anything else.

    A parsed JSON value that is an object is a :data:`JsonObject` (its values are JSON too);
    anything else that is a mapping (a row, a record) is read as a :data:`JsonMapping`.
    """
    if isinstance(value, Mapping):
        return value
    raise TypeError(f"{value!r} is not a JSON object")
