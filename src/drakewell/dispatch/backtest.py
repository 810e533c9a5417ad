"""Backtest: run policies over a price history and settle them on the same ledger.

``perfect`` and ``always`` are the two references of every summary: ``ratio_to_perfect`` is profit ÷
the perfect-foresight profit and ``flex_capture`` is (profit − always) ÷ (perfect − always), the share
of the value of flexibility a policy earns. :func:`run_backtest` runs one policy (and the references
it needs); :func:`compare_policies` runs several and reuses the references.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path

import pandas as pd

from drakewell.core.config import data_file
from drakewell.core.errors import DrakewellError
from drakewell.dispatch.inputs import HashpriceInput, build_inputs
from drakewell.dispatch.ledger import BacktestSummary, build_ledger, summarize
from drakewell.dispatch.policies import Progress, get_policy, policy_names
from drakewell.dispatch.types import Decisions, DispatchInputs
from drakewell.inputs.bitcoin import derive_daily_hashprice, load_btc_prices, parse_hashprice
from drakewell.inputs.grid import four_cp_mask, proxy_4cp_intervals
from drakewell.inputs.prices import load_ercot_prices
from drakewell.inputs.synthetic import HASHPRICE_MEAN_USD_PER_PH_DAY, synthetic_inputs
from drakewell.site import Site, load_site

REFERENCES = ("perfect", "always")
#: The example site as a checkout names it; the package ships the same file (and the grid files
#: it refers to) as ``drakewell/examples/``, which is what the defaults read.
EXAMPLE_SITE = Path("examples/sites/west-texas-hybrid.toml")


@dataclass(frozen=True)
class BacktestResult:
    """One policy's run: the per-interval ledger, the summary and the raw decisions."""

    policy: str
    ledger: pd.DataFrame
    summary: BacktestSummary
    decisions: Decisions


def backtest_inputs(
    inputs: DispatchInputs,
    policies: Sequence[str] | None = None,
    *,
    progress: Progress | None = None,
    on_policy: Callable[[str], None] | None = None,
) -> list[BacktestResult]:
    """Run ``policies`` (default: all registered) on ``inputs``; references run once and are reused.

    ``progress(done, total)`` reports intervals of the policy running now; ``on_policy(name)`` is
    called before each policy starts.
    """
    names = list(policies) if policies else policy_names()
    for name in names:
        get_policy(name)  # fail fast on an unknown name
    order = [r for r in REFERENCES if r not in names] + names
    runs: dict[str, tuple[Decisions, pd.DataFrame]] = {}
    for name in order:
        if on_policy is not None:
            on_policy(name)
        decisions = get_policy(name).run(inputs, progress)
        runs[name] = (decisions, build_ledger(inputs, decisions))
    perfect = float(runs["perfect"][1]["profit_usd"].sum())
    always = float(runs["always"][1]["profit_usd"].sum())
    results = []
    for name in names:
        decisions, ledger = runs[name]
        summary = summarize(
            ledger,
            name,
            solve_seconds=decisions.solve_seconds,
            perfect_profit_usd=perfect,
            always_profit_usd=always,
            solve_status=decisions.statuses,
        )
        results.append(BacktestResult(name, ledger, summary, decisions))
    return results


def run_backtest(
    site: Site | str | Path,
    rt_prices: pd.DataFrame,
    da_prices: pd.DataFrame | None,
    hashprice: HashpriceInput,
    policy: str,
    zone: str | None = None,
    *,
    progress: Progress | None = None,
) -> BacktestResult:
    """Backtest one policy of ``site`` on real-time prices (``zone`` column; default the site's zone)."""
    site_obj = site if isinstance(site, Site) else load_site(site)
    inputs = build_inputs(site_obj, rt_prices, da_prices, hashprice, zone)
    return backtest_inputs(inputs, [policy], progress=progress)[0]


def compare_policies(
    site: Site | str | Path,
    rt_prices: pd.DataFrame,
    da_prices: pd.DataFrame | None,
    hashprice: HashpriceInput,
    zone: str | None = None,
    policies: Sequence[str] | None = None,
    *,
    progress: Progress | None = None,
) -> list[BacktestResult]:
    """Backtest several policies (default: every registered one) on the same inputs."""
    site_obj = site if isinstance(site, Site) else load_site(site)
    inputs = build_inputs(site_obj, rt_prices, da_prices, hashprice, zone)
    return backtest_inputs(inputs, policies, progress=progress)


def fallbacks(summary: BacktestSummary) -> dict[str, int]:
    """The solves of one summary that did not end optimal (and so fell back to the safe rule), by
    status; empty when every solve was optimal or the policy is a rule."""
    return {k: v for k, v in summary.solve_status.items() if k not in ("optimal", "rule")}


#: Why a solve ends without an optimum, by status (the policy then falls back to its safe rule).
FALLBACK_REASONS = {
    "time_limit": "HiGHS reached its per-solve time or iteration limit",
    "infeasible": "the LP was infeasible",
    "unbounded": "the LP was unbounded",
    "error": "HiGHS reported an error",
    "unknown": "HiGHS returned a status Drakewell does not know",
}


def describe_fallbacks(summary: BacktestSummary) -> str | None:
    """One sentence saying how many of a policy's solves fell back and why (``None`` when none did)."""
    bad = fallbacks(summary)
    if not bad:
        return None
    total = sum(summary.solve_status.values())
    why = "; ".join(
        f"{count:,} {status} ({FALLBACK_REASONS.get(status, 'no optimum')})" for status, count in bad.items()
    )
    return (
        f"{summary.policy}: {sum(bad.values()):,} of {total:,} solves fell back to the safe rule "
        f"(hold mining within limits, serve inference): {why}"
    )


def packaged_example(relative: str | Path) -> Path:
    """A file the package ships under ``drakewell/examples/`` (``sites/…``, ``grid/…``), found with
    :mod:`importlib.resources`, so defaults work from an installed wheel as from a checkout."""

    root = files("drakewell") / "examples"
    path = Path(str(root)) / relative
    if not isinstance(root, Path) or not path.is_file():
        raise DrakewellError(
            f"the packaged example {relative} is missing from {root}",
            hint="reinstall drakewell from a wheel or a checkout (pip install --force-reinstall drakewell)",
        )
    return path


def resolve_site(site: Site | str | Path | None) -> Site:
    """A site object from an object, a path, or ``None`` (the packaged example site). The example's
    checkout path, ``examples/sites/west-texas-hybrid.toml``, names the packaged file where the
    working directory has no such file."""
    if isinstance(site, Site):
        return site
    if site is None or (Path(site) == EXAMPLE_SITE and not EXAMPLE_SITE.is_file()):
        return load_site(packaged_example("sites/west-texas-hybrid.toml"))
    return load_site(site)


def load_backtest_inputs(
    site: Site | str | Path | None,
    *,
    prices: str | Path | None = None,
    forecast: str | Path | None = None,
    zone: str | None = None,
    hashprice: str | float | pd.Series | None = None,
    seed: int = 0,
) -> DispatchInputs:
    """Inputs for a backtest from files, or the seeded synthetic July–September series.

    Without ``prices`` the synthetic real-time, day-ahead and hashprice series are used (any of
    ``forecast``/``hashprice`` given still wins), and the 4CP intervals are picked from the
    synthetic prices by the same price-proxy rule that picked the shipped 2023 list
    (:func:`drakewell.inputs.grid.proxy_4cp_intervals`). With real prices and no hashprice, a daily
    hashprice is derived from the BTC price file in the data folder; without that file the
    synthetic generator's calibrated mean is used as a constant.
    """

    site_obj = resolve_site(site)
    hp: float | pd.Series | None = None
    if isinstance(hashprice, str | Path):
        hp = parse_hashprice(str(hashprice))
    elif hashprice is not None:
        hp = hashprice
    synthetic = prices is None
    if prices is None:
        syn = synthetic_inputs("2023-07-01", 92, seed=seed)
        rt, da = syn.rt, syn.da
        if hp is None:
            hp = syn.hashprice
    else:
        rt = load_ercot_prices(prices)
        da = None
    if forecast is not None:
        da = load_ercot_prices(forecast)
    if hp is None:
        try:
            hp = derive_daily_hashprice(load_btc_prices())
        except DrakewellError:
            hp = HASHPRICE_MEAN_USD_PER_PH_DAY
    inputs = build_inputs(site_obj, rt, da, hp, zone)
    if synthetic and site_obj.markets.four_cp.enabled:
        # the site's 4CP list belongs to real 2023 prices; synthetic prices get the same proxy rule
        proxy = proxy_4cp_intervals(rt, zone=site_obj.markets.four_cp.forecast_zone)
        inputs = replace(inputs, four_cp=four_cp_mask(list(proxy), inputs.interval_start_utc))
    return inputs


def dispatch_comparison(
    *,
    site: Site | str | Path | None = None,
    zone: str | None = None,
    real_data: bool = True,
    policies: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> list[BacktestResult]:
    """The demo's dispatch comparison: every policy on the example site.

    Uses the July–September 2023 ERCOT real-time prices (day-ahead as forecast) when the data
    folder has them and ``real_data`` is true, else the seeded synthetic series.
    """

    rt_file = data_file("ercot/ercot_rtm_spp_2023-07_09.csv") if real_data else None
    da_file = data_file("ercot/ercot_dam_spp_2023-07_09.csv") if real_data else None
    if rt_file is not None and da_file is not None:
        inputs = load_backtest_inputs(site, prices=rt_file, forecast=da_file, zone=zone)
    else:
        inputs = load_backtest_inputs(site, zone=zone)
    return backtest_inputs(inputs, policies, progress=progress)


def write_results(results: Sequence[BacktestResult], out_dir: str | Path) -> list[Path]:
    """Write ``dispatch_summary.json`` (the list of summaries) and ``ledger_<policy>.csv`` per policy
    (UTC times in ISO-8601) into ``out_dir``; returns the paths written."""

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    summary = folder / "dispatch_summary.json"
    summary.write_text(json.dumps([r.summary.to_json() for r in results], indent=2) + "\n", encoding="utf-8")
    paths = [summary]
    for r in results:
        paths.append(write_ledger_csv(r.ledger, folder / f"ledger_{r.policy}.csv"))
    return paths


def write_ledger_csv(ledger: pd.DataFrame, path: str | Path) -> Path:
    """Write a ledger as CSV with ISO-8601 UTC interval starts."""
    frame = ledger.copy()
    frame["interval_start_utc"] = frame["interval_start_utc"].map(lambda ts: ts.isoformat())
    frame.to_csv(path, index=False)
    return Path(path)
