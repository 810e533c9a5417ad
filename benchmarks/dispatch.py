"""Dispatch benchmark: every policy on July–September 2023 ERCOT prices, example site, three zones.

Real-time prices settle the ledger, day-ahead prices are the forecast, and hashprice is derived
daily from the BTC close and the stated 2023 difficulty levels (the synthetic generator's calibrated
mean when the BTC file is absent). For each zone and policy it prints profit, the ratio to
``perfect`` (the anchor, measured in the same run), the flexibility capture
``(profit − always) / (perfect − always)`` and solve seconds, each beside its target:

- ``mpc`` flexibility capture ≥ 0.90 in every zone (goal 0.95);
- ``mpc`` > ``threshold`` > ``always`` in profit;
- the full-horizon ``perfect`` solve of the 8,832 intervals ≤ 2 s;
- the ``mpc`` backtest of the three months ≤ 60 s.

Usage: ``python benchmarks/dispatch.py [--json OUT]``. Exits 2 when the real data folder is absent
(set ``DRAKEWELL_DATA_DIR``), 1 when a target is missed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ZONES = ("LZ_WEST", "LZ_NORTH", "LZ_HOUSTON")
RT_FILE = "ercot/ercot_rtm_spp_2023-07_09.csv"
DA_FILE = "ercot/ercot_dam_spp_2023-07_09.csv"
FLEX_TARGET, FLEX_GOAL = 0.90, 0.95
PERFECT_SECONDS, MPC_SECONDS = 2.0, 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--zones", nargs="*", default=list(ZONES), help="price columns to run")
    args = parser.parse_args(argv)

    from drakewell.config import DATA_DIR_ENV, data_dir, data_file

    rt_file, da_file = data_file(RT_FILE), data_file(DA_FILE)
    if rt_file is None or da_file is None:
        print(
            f"real data not found: need {RT_FILE} and {DA_FILE} under {data_dir()} "
            f"(set {DATA_DIR_ENV}); this benchmark runs on real prices only",
            file=sys.stderr,
        )
        return 2

    from drakewell.dispatch.backtest import backtest_inputs, resolve_site
    from drakewell.dispatch.inputs import build_inputs
    from drakewell.errors import DrakewellError
    from drakewell.inputs.bitcoin import derive_daily_hashprice, load_btc_prices
    from drakewell.inputs.prices import load_ercot_prices
    from drakewell.inputs.synthetic import HASHPRICE_MEAN_USD_PER_PH_DAY

    site = resolve_site(None)
    rt, da = load_ercot_prices(rt_file), load_ercot_prices(da_file)
    hashprice: Any
    try:
        hashprice = derive_daily_hashprice(load_btc_prices())
        hp_source = "daily, derived from BTC close and 2023 difficulty levels"
    except DrakewellError:
        hashprice = HASHPRICE_MEAN_USD_PER_PH_DAY
        hp_source = f"constant {HASHPRICE_MEAN_USD_PER_PH_DAY} USD/PH/day"
    print(f"site: {site.name}; prices: {rt_file.name} (forecast {da_file.name}); hashprice: {hp_source}")
    print(f"machine: {platform.machine()} {platform.system()}, Python {platform.python_version()}\n")

    figures: dict[str, Any] = {"site": site.name, "hashprice": hp_source, "zones": {}}
    failures: list[str] = []
    for zone in args.zones:
        inputs = build_inputs(site, rt, da, hashprice, zone)
        t0 = time.perf_counter()
        results = {r.policy: r.summary for r in backtest_inputs(inputs)}
        wall = time.perf_counter() - t0
        print(f"== {zone}: {inputs.n:,} intervals, all policies in {wall:.1f} s")
        print(
            f"{'policy':<10} {'profit $':>14} {'ratio to perfect':>17} {'flex capture':>13} "
            f"{'solve s':>8}  target"
        )
        for name, s in results.items():
            flex = s["flex_capture"]
            target = {
                "mpc": f"flex ≥ {FLEX_TARGET} (goal {FLEX_GOAL}); ≤ {MPC_SECONDS:g} s",
                "perfect": f"anchor; ≤ {PERFECT_SECONDS:g} s",
                "threshold": "profit below mpc, above always",
                "always": "reference (flex 0)",
            }.get(name, "")
            print(
                f"{name:<10} {s['profit_usd']:>14,.0f} {s['ratio_to_perfect']:>17.4f} "
                f"{'—' if flex is None else format(flex, '.3f'):>13} {s['solve_seconds']:>8.2f}  {target}"
            )
        mpc, thr, alw, per = (results[k] for k in ("mpc", "threshold", "always", "perfect"))
        checks = {
            "mpc_flex_capture>=0.90": (mpc["flex_capture"] or 0.0) >= FLEX_TARGET,
            "mpc>threshold>always": mpc["profit_usd"] > thr["profit_usd"] > alw["profit_usd"],
            "perfect_solve<=2s": per["solve_seconds"] <= PERFECT_SECONDS,
            "mpc_backtest<=60s": mpc["solve_seconds"] <= MPC_SECONDS,
        }
        for name, ok in checks.items():
            print(f"  {'PASS' if ok else 'MISS'} {name}")
            if not ok:
                failures.append(f"{zone}: {name}")
        print()
        figures["zones"][zone] = {"policies": results, "checks": checks, "wall_seconds": wall}
    figures["failures"] = failures
    print("all targets met" if not failures else "missed: " + "; ".join(failures))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
