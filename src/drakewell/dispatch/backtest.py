"""Backtest: run policies over a price history and settle them on the same ledger.

``perfect`` and ``always`` are the two references of every summary: ``ratio_to_perfect`` is profit ÷
the perfect-foresight profit and ``flex_capture`` is (profit − always) ÷ (perfect − always), the share
of the value of flexibility a policy earns. :func:`run_backtest` runs one policy (and the references
it needs); :func:`compare_policies` runs several and reuses the references.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from drakewell.dispatch.inputs import HashpriceInput, build_inputs
from drakewell.dispatch.ledger import build_ledger, summarize
from drakewell.dispatch.policies import Progress, get_policy, policy_names
from drakewell.dispatch.types import Decisions, DispatchInputs
from drakewell.site import Site, load_site

REFERENCES = ("perfect", "always")


@dataclass(frozen=True)
class BacktestResult:
    """One policy's run: the per-interval ledger, the summary (JSON keys) and the raw decisions."""

    policy: str
    ledger: pd.DataFrame
    summary: dict[str, Any]
    decisions: Decisions


def backtest_inputs(
    inputs: DispatchInputs,
    policies: Sequence[str] | None = None,
    *,
    progress: Progress | None = None,
    on_policy: Any = None,
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
