"""Times at the edge: text with a UTC offset in, aware UTC inside (a naive time is refused)."""

from __future__ import annotations

from datetime import UTC, datetime

from drakewell.core.errors import DrakewellError


def aware_utc(
    text: str, what: str, error: type[DrakewellError], *, hint: str, zone_hint: str | None = None
) -> datetime:
    """An ISO 8601 time with its UTC offset (``Z`` too) as aware UTC.

    Otherwise ``error`` is raised, naming ``what`` (e.g. ``"posts.csv line 2: 'yesterday'"``):
    ``"<what> is not an ISO 8601 time"`` with ``hint``, or ``"<what> has no UTC offset"`` with
    ``zone_hint`` (default: ``hint``).
    """
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise error(f"{what} is not an ISO 8601 time", hint=hint) from None
    if ts.tzinfo is None:
        raise error(f"{what} has no UTC offset", hint=zone_hint or hint)
    return ts.astimezone(UTC)


__all__ = ["aware_utc"]
