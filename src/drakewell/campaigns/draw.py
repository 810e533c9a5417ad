"""A verifiable lucky draw: a deterministic function of a public beacon and the sorted entries.

Algorithm (anyone can re-run it): entries are the eligible user ids, sorted ascending (one
entry per user). With ``seed = sha256(beacon_bytes ‖ campaign_name_utf8)``, for round
``k = 0, 1, …`` draw ``r = int(sha256(seed ‖ k as 8-byte big-endian)) mod len(remaining)`` and
take ``remaining.pop(r)``, until ``winners`` are drawn or no entries remain. The beacon is fixed
after the window closes (the rules name it, e.g. the hash of a stated future bitcoin block), so
nobody can know it while the entries can still change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from drakewell.errors import CampaignError


class DrawError(CampaignError):
    """The beacon is missing or malformed."""


def beacon_bytes(beacon: str) -> bytes:
    text = beacon.strip().lower().removeprefix("0x")
    if not text:
        raise DrawError("no beacon given for the lucky draw", hint="pass --beacon with the stated block hash")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise DrawError(
            f"beacon {beacon!r} is not hex", hint="pass the block hash as 64 hex digits"
        ) from None
    if len(raw) != 32:
        raise DrawError(f"beacon is {len(raw)} bytes, not 32", hint="a bitcoin block hash is 32 bytes")
    return raw


def draw_winners(entries: Iterable[str], winners: int, beacon: str, campaign: str) -> list[str]:
    remaining = sorted(set(entries))
    seed = hashlib.sha256(beacon_bytes(beacon) + campaign.encode()).digest()
    out: list[str] = []
    k = 0
    while remaining and len(out) < winners:
        r = int.from_bytes(hashlib.sha256(seed + k.to_bytes(8, "big")).digest(), "big") % len(remaining)
        out.append(remaining.pop(r))
        k += 1
    return out
