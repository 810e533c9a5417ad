"""The pool's part of a site's dispatch: what a tokenized GPU pool's nodes run, hour by hour."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

__all__ = ["pool_ledger"]


def pool_ledger(
    ledger: pd.DataFrame,
    pool_gpus: int,
    site_gpus: int,
    leases: Sequence[tuple[datetime, datetime, int]] = (),
) -> pd.DataFrame:
    """Pool A's part of the site's AI work on hourly windows (the fleet signs one reading per node
    per hour); mining stays whole, since the site's ASIC containers are metered too.

    The operator serves leased GPUs first: in each hour the pool runs its pro-rata share of the
    site's busy GPUs, or its GPUs under an active lease ``(start, end, gpus)`` if more, but never
    more than the site runs nor than the pool has. The pool's AI energy is the site's times
    ``pool busy / site busy``.
    """
    frame = ledger.set_index("interval_start_utc")
    cols = ["ai_inference_mw", "ai_training_mw", "ai_spot_mw", "mining_mw", "gpus_busy"]
    hourly = frame[cols].resample("1h").mean()
    site_busy = hourly["gpus_busy"].to_numpy(dtype=float)
    leased = np.zeros(len(hourly))
    hours = hourly.index
    for start, end, gpus in leases:
        leased += gpus * ((hours >= pd.Timestamp(start)) & (hours < pd.Timestamp(end)))
    pro_rata = site_busy * pool_gpus / site_gpus
    pool_busy = np.minimum.reduce([np.maximum(pro_rata, leased), site_busy, np.full(len(hourly), pool_gpus)])
    share = np.divide(
        pool_busy, site_busy, out=np.full(len(hourly), pool_gpus / site_gpus), where=site_busy > 0
    )
    for col in ("ai_inference_mw", "ai_training_mw", "ai_spot_mw"):
        hourly[col] = hourly[col] * share
    hourly["gpus_busy"] = np.floor(pool_busy).astype("int64")
    hourly["hours"] = 1.0
    return hourly.reset_index()
