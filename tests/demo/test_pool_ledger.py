"""The pool's part of the site's AI work: leased GPUs first, never more than the site or the pool runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from drakewell.finance import pool_ledger


def _site_ledger(busy: list[float]) -> pd.DataFrame:
    """Hourly site ledger (four 15-minute intervals per hour, same values) with ``busy`` GPUs."""
    rows = []
    start = pd.Timestamp("2026-07-01T00:00Z")
    for h, b in enumerate(busy):
        for q in range(4):
            rows.append(
                {
                    "interval_start_utc": start + pd.Timedelta(minutes=60 * h + 15 * q),
                    "ai_inference_mw": b / 1_000,  # 1 kW per busy GPU
                    "ai_training_mw": 0.0,
                    "ai_spot_mw": 0.0,
                    "mining_mw": 5.0,
                    "gpus_busy": b,
                }
            )
    return pd.DataFrame(rows)


def test_leased_gpus_are_served_first_within_site_and_pool_limits() -> None:
    site = _site_ledger([800.0, 300.0, 50.0, 0.0])  # a 1,000-GPU site; the pool holds 200 of them
    lease = (datetime(2026, 7, 1, 0, tzinfo=UTC), datetime(2026, 7, 1, 3, tzinfo=UTC), 150)
    pool = pool_ledger(site, 200, 1_000, [lease])
    # hour 0: pro rata 160 > leased 150; hour 1: pro rata 60 < leased 150; hour 2: the site runs only
    # 50; hour 3: the lease has ended and the site is idle
    assert pool["gpus_busy"].tolist() == [160, 150, 50, 0]
    assert pool["ai_inference_mw"].tolist() == pytest.approx([0.16, 0.15, 0.05, 0.0])
    assert pool["mining_mw"].tolist() == [5.0] * 4  # mining is metered whole
    assert (pool["hours"] == 1.0).all()


def test_without_leases_the_pool_runs_its_pro_rata_share() -> None:
    pool = pool_ledger(_site_ledger([1_000.0, 500.0]), 200, 1_000)
    assert pool["gpus_busy"].tolist() == [200, 100]
    assert pool["ai_inference_mw"].tolist() == pytest.approx([0.2, 0.1])
