"""Money, energy and time conventions, in one place.

- Money in settlement and on chain is an ``int`` of the stablecoin's base units (6 decimals:
  1 USD = 1_000_000). Analytics may use float USD. :func:`usd_to_base` is the one conversion, and it
  rounds half to even on the exact decimal value (never through binary floating point).
- Power in MW and energy in MWh in dispatch; W and Wh in meter readings.
- Time is UTC inside; zones are converted at the edge (:func:`to_utc`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

USD_DECIMALS = 6
USD = 10**USD_DECIMALS  # base units per US dollar
SECONDS_PER_HOUR = 3600
WH_PER_MWH = 1_000_000
W_PER_MW = 1_000_000


def usd_to_base(usd: float | str | Decimal) -> int:
    """Convert dollars to integer base units, rounding half to even at the sixth decimal."""
    value = Decimal(str(usd)) if not isinstance(usd, Decimal) else usd
    return int((value * USD).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def base_to_usd(base: int) -> float:
    """Base units to float dollars, for display and analytics only."""
    return base / USD


def mul_div_floor(a: int, b: int, c: int) -> int:
    """``floor(a * b / c)`` on integers: the settlement rounding rule (never pays out more)."""
    if c == 0:
        raise ZeroDivisionError("mul_div_floor: division by zero")
    return (a * b) // c


def floor_decimal(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def to_utc(ts: datetime) -> datetime:
    """Return an aware UTC datetime; naive input is refused because its zone is unknown."""
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts.isoformat()} has no time zone; attach one at the edge")
    return ts.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)
