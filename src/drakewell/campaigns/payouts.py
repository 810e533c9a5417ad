"""Exact splits: a pool of integer cents shared pro rata by weights, by largest remainder.

Each recipient gets ``floor(pool * w / W)``; the cents left over (fewer than the number of
recipients) go one each to the largest fractional remainders, ties broken by recipient id
ascending. The shares always sum to the pool exactly, never more; a pool with no positive
weight pays nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction


def largest_remainder(pool_cents: int, weights: Mapping[str, Fraction | int]) -> dict[str, int]:
    if pool_cents < 0:
        raise ValueError("pool is negative")
    live = {k: Fraction(w) for k, w in weights.items() if w > 0}
    total = sum(live.values(), Fraction(0))
    if not live or total == 0:
        return {}
    exact = {k: pool_cents * w / total for k, w in live.items()}
    shares = {k: int(v) for k, v in exact.items()}  # floor (values are >= 0)
    left = pool_cents - sum(shares.values())
    for k in sorted(live, key=lambda k: (-(exact[k] - shares[k]), k))[:left]:
        shares[k] += 1
    return shares
