"""Inputs to dispatch: electricity prices, grid events, bitcoin economics and synthetic series.

- :mod:`drakewell.inputs.prices` — ERCOT settlement point price CSVs (and gridstatus frames) → UTC frames.
- :mod:`drakewell.inputs.grid` — 4CP intervals (and their forecast), emergency load-cap events.
- :mod:`drakewell.inputs.bitcoin` — block subsidy, hashprice, mining revenue and breakeven per MWh.
- :mod:`drakewell.inputs.synthetic` — seeded prices and hashprice calibrated to real 2023 statistics.
"""

from drakewell.inputs.grid import (
    EmergencyEvent,
    emergency_cap_mw,
    forecast_4cp_alerts,
    four_cp_mask,
    load_4cp_intervals,
    load_emergency_events,
    proxy_4cp_intervals,
)
from drakewell.inputs.prices import align_da_to_rt, load_ercot_prices, select_zone

__all__ = [
    "EmergencyEvent",
    "align_da_to_rt",
    "emergency_cap_mw",
    "forecast_4cp_alerts",
    "four_cp_mask",
    "load_4cp_intervals",
    "load_emergency_events",
    "load_ercot_prices",
    "proxy_4cp_intervals",
    "select_zone",
]
