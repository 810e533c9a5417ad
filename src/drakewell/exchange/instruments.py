"""Standardized GPU-time contracts: GPU model × region × start × duration.

A contract id is ``MODEL.REGION.YYYY-MM-DDTHHZ.Nh``, e.g. ``H100-SXM.us-tx.2026-12-01T00Z.24h``: one
GPU of ``MODEL`` in ``REGION`` for ``N`` whole hours from the stated UTC hour. Prices are integer
micro-USD (stablecoin base units) per GPU-hour; quantities are whole GPUs. :func:`parse_instrument`
is the one parser; every refusal names the bad part and the accepted values.

**Listing.** Which contracts are on offer depends on a clock that is passed in, never read here:
:func:`next_day_starts` gives the UTC midnights ``d_k = (floor(t / 86400) + k) * 86400``,
``k = 1..n``, that follow the time ``t`` (a day that has begun is not offered: a contract stops
trading at its start), and :func:`day_contracts` the 24-hour contracts starting on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from drakewell.core.errors import ExchangeError

#: Tradable GPU models, and the name each has in the hardware catalogue (``catalog/hardware.csv``).
GPU_MODELS: dict[str, str] = {
    "H100-SXM": "H100 SXM",
    "H100-PCIE": "H100 PCIe",
    "H200-SXM": "H200 SXM",
    "B200": "B200",
}

#: Delivery regions: ISO-like country/state codes of the grids the sites sit on.
REGIONS: tuple[str, ...] = (
    "us-tx",  # ERCOT
    "us-va",  # PJM Dominion
    "us-oh",  # PJM
    "us-ga",  # Southern
    "us-wa",  # BPA hydro
    "ca-qc",  # Hydro-Québec
    "no-no",  # Nordic hydro
    "is-is",  # Iceland geothermal
    "ae-ad",  # Abu Dhabi
    "py-py",  # Itaipú
)

MAX_DURATION_H = 24 * 366
#: The id's shape as a JSON-schema pattern (the API publishes it; the parser still checks the calendar).
INSTRUMENT_PATTERN = (
    r"^(" + "|".join(GPU_MODELS) + r")\.(" + "|".join(REGIONS) + r")\."
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3])Z\.[1-9]\d{0,3}h$"
)
_ID = re.compile(r"^([A-Z0-9-]+)\.([a-z]{2}-[a-z]{2})\.(\d{4})-(\d{2})-(\d{2})T(\d{2})Z\.(\d+)h$")


class InstrumentError(ExchangeError):
    """An instrument id is malformed or names an unknown model or region."""


@dataclass(frozen=True, slots=True)
class Instrument:
    """One contract: ``gpu_model`` GPUs in ``region`` for ``duration_h`` hours from ``start`` (UTC)."""

    gpu_model: str
    region: str
    start: datetime
    duration_h: int

    @property
    def id(self) -> str:
        return f"{self.gpu_model}.{self.region}.{self.start:%Y-%m-%dT%H}Z.{self.duration_h}h"

    @property
    def start_s(self) -> int:
        return int(self.start.timestamp())

    @property
    def end_s(self) -> int:
        return self.start_s + 3600 * self.duration_h

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.duration_h)

    def __str__(self) -> str:
        return self.id


def make_instrument(gpu_model: str, region: str, start: datetime, duration_h: int) -> Instrument:
    """Build and validate an instrument from its parts (``start`` must be an aware UTC hour)."""
    if gpu_model not in GPU_MODELS:
        raise InstrumentError(f"unknown GPU model {gpu_model!r}", hint=f"use one of {', '.join(GPU_MODELS)}")
    if region not in REGIONS:
        raise InstrumentError(f"unknown region {region!r}", hint=f"use one of {', '.join(REGIONS)}")
    if start.tzinfo is None:
        raise InstrumentError(f"start {start.isoformat()} has no time zone", hint="give the start in UTC")
    start = start.astimezone(UTC)
    if start.minute or start.second or start.microsecond:
        raise InstrumentError(
            f"start {start.isoformat()} is not on the hour", hint="contracts start on a whole UTC hour"
        )
    if (
        not isinstance(duration_h, int)
        or isinstance(duration_h, bool)
        or not 1 <= duration_h <= MAX_DURATION_H
    ):
        raise InstrumentError(
            f"duration {duration_h!r} h is not a whole number of hours in 1..{MAX_DURATION_H}",
            hint="write the duration as a whole number of hours, e.g. 24h",
        )
    return Instrument(gpu_model, region, start, duration_h)


def next_day_starts(now_s: int, days: int) -> list[datetime]:
    """The starts (00:00 UTC) of the ``days`` whole UTC days after ``now_s`` (Unix seconds)."""
    if days < 0:
        raise InstrumentError(f"days = {days} is negative", hint="ask for 0 or more days")
    first = (int(now_s) // 86400 + 1) * 86400
    return [datetime.fromtimestamp(first + 86400 * k, UTC) for k in range(days)]


def day_contracts(gpu_model: str, region: str, now_s: int, days: int) -> list[Instrument]:
    """The 24-hour contracts of ``gpu_model`` in ``region`` on the ``days`` whole UTC days after ``now_s``."""
    return [make_instrument(gpu_model, region, start, 24) for start in next_day_starts(now_s, days)]


@lru_cache(maxsize=4096)
def parse_instrument(instrument_id: str) -> Instrument:
    """Parse ``MODEL.REGION.YYYY-MM-DDTHHZ.Nh`` into an :class:`Instrument` (validated)."""
    if not isinstance(instrument_id, str):
        raise InstrumentError(f"instrument id {instrument_id!r} is not a string", hint="pass the id as text")
    m = _ID.match(instrument_id)
    if m is None:
        raise InstrumentError(
            f"malformed instrument id {instrument_id!r}",
            hint="write MODEL.REGION.YYYY-MM-DDTHHZ.Nh, e.g. H100-SXM.us-tx.2026-12-01T00Z.24h",
        )
    model, region, y, mo, d, h, dur = m.groups()
    try:
        start = datetime(int(y), int(mo), int(d), int(h), tzinfo=UTC)
    except ValueError as exc:
        raise InstrumentError(
            f"instrument {instrument_id!r} has an impossible start: {exc}",
            hint="use a real calendar date and an hour 00..23",
        ) from None
    return make_instrument(model, region, start, int(dur))
