"""Helpers for the live controller tests: a small site sized to the emulated miners, hand-made prices."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd

from drakewell.dispatch.inputs import build_inputs
from drakewell.dispatch.types import DispatchInputs
from drakewell.site import Site

ROOT = Path(__file__).resolve().parents[2]
SITE_FILE = ROOT / "examples/sites/emulated-live.toml"


def hand_prices(n: int, price: float = 20.0, start: str = "2023-08-10T05:00") -> pd.DataFrame:
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=n, freq="15min", name="interval_start_utc")
    return pd.DataFrame({"LZ_WEST": np.full(n, price)}, index=index)


def hand_inputs(site: Site, n: int = 8, price: float = 20.0) -> DispatchInputs:
    return build_inputs(site, hand_prices(n, price), None, 55.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
