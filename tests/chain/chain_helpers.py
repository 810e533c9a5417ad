"""Shared constants and the test world of the chain tests."""

from __future__ import annotations

from dataclasses import dataclass

from drakewell.chain import Chain, Market

USD = 10**6
SHARE = 10**18


@dataclass
class World:
    chain: Chain
    market: Market
    alice: str
    bob: str
    renter: str
    liquidator: str
    outsider: str
