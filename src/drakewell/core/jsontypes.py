"""JSON as a type: what a JSON document can hold, for the few places that carry free-form JSON.

A payload with fixed keys is a record (a frozen dataclass or a pydantic model with ``to_json()``);
these aliases are for what is JSON by nature — an HTTP body before it is validated, a journal
entry's arguments, a device's answer. Read a :data:`JsonValue` by narrowing it (``isinstance``), or
validate it into a record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

JsonScalar: TypeAlias = str | int | float | bool | None
JsonValue: TypeAlias = JsonScalar | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject: TypeAlias = dict[str, JsonValue]
"""A JSON object as built for output."""
JsonMapping: TypeAlias = Mapping[str, object]
"""A JSON object as taken in: any mapping of names to values; read it by narrowing."""

__all__ = ["JsonMapping", "JsonObject", "JsonScalar", "JsonValue"]
