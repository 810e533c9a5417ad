import json
import re

import numpy as np
import pandas as pd

from drakewell.report import build_figures, write_report


def _ledger(n: int = 96 * 3) -> pd.DataFrame:
    idx = pd.date_range("2026-07-01", periods=n, freq="15min", tz="UTC")
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "interval_start_utc": idx,
            "price_usd_per_mwh": rng.normal(40, 10, n),
            "ai_inference_mw": np.full(n, 10.0),
            "ai_training_mw": np.full(n, 5.0),
            "ai_spot_mw": np.full(n, 1.0),
            "mining_mw": rng.uniform(0, 57, n),
            "curtailed_mw": rng.uniform(0, 3, n),
            "curtailment_credits_usd": rng.uniform(0, 100, n),
            "four_cp_cost_usd": np.zeros(n),
            "penalty_usd": np.zeros(n),
        }
    )


SUMMARY = {
    "policy": "mpc",
    "profit_usd": 1_234_567.0,
    "revenue_usd": {"ai": 2e6, "mining": 5e5, "reserves": 1e4, "curtailment_credits": 2e3},
    "energy_cost_usd": 7e5,
    "intervals": 288,
}


def test_report_has_every_chart_with_its_data(tmp_path) -> None:
    leases = [{"lease": 1, "contracted_gpu_hours": 100.0, "delivered_gpu_hours": 97.5}]
    investors = [{"investor": "alice", "shares": 10, "value_usd": 1000.0, "yield": 0.12}]
    out = write_report(
        tmp_path / "r.html",
        ledger=_ledger(),
        summary=SUMMARY,
        leases=leases,
        investors=investors,
        facts={"GPU pool": "2,048 H100"},
    )
    text = out.read_text()
    for fid in ("power", "revenue", "credits", "leases", "investors"):
        assert f'id="fig-{fid}"' in text
    assert "Power split" in text and "Delivered vs contracted" in text
    assert text.count("plotly.js v") <= 2  # plotly.js inlined once
    assert "97.5" in text  # the delivered figure is in the chart data
    m = re.search(r"window.DRAKEWELL_SUMMARY = (\{.*?\});", text)
    assert m and json.loads(m.group(1))["profit_usd"] == SUMMARY["profit_usd"]


def test_report_leaves_out_charts_without_data() -> None:
    figs = build_figures(ledger=_ledger(), summary=SUMMARY)
    assert set(figs) == {"power", "revenue", "credits"}
    power = figs["power"]
    names = [t.name for t in power.data]
    assert names[:2] == ["AI inference", "AI training"] and "Real-time price" in names
    # hourly means of 15-minute data: 3 days -> 72 points
    assert len(power.data[0].x) == 72
