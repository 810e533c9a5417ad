"""The shown run changes as one: a backtest posted on one thread never shows half on another.

``AppState.show_run`` replaces the ledger, the site name and the summary under the state's lock and
``shown`` reads them under it, so holding the lock holds both back.
"""

from __future__ import annotations

import threading

import pandas as pd

from drakewell.api.app import AppState, ShownSummary
from drakewell.dispatch.ledger import BacktestSummary, EnergyMwh, RenewablesMwh, RevenueUsd

DISPATCH = BacktestSummary(
    policy="threshold",
    profit_usd=1.0,
    revenue_usd=RevenueUsd(ai=1.0, mining=0.0, reserves=0.0, curtailment_credits=0.0, export=0.0),
    energy_cost_usd=0.0,
    energy_mwh=EnergyMwh(ai=1.0, mining=0.0, curtailed=0.0),
    ratio_to_perfect=None,
    flex_capture=None,
    solve_seconds=0.0,
    intervals=1,
    solve_status={"rule": 1},
    renewables_mwh=RenewablesMwh(generation=0.0, self_consumed=0.0, export=0.0, curtailed=0.0),
)


def test_a_new_run_waits_for_the_lock_and_lands_whole() -> None:
    state = AppState()
    ledger = pd.DataFrame({"run": [1]})
    with state.lock:  # a reader is in the middle of reading the shown run
        writer = threading.Thread(target=state.show_run, args=(ledger, "site-1", DISPATCH))
        writer.start()
        writer.join(timeout=0.3)
        assert writer.is_alive(), "show_run changed the shown run without taking the lock"
        assert state.ledger is None and state.site_name == "" and state.summary == ShownSummary()
    writer.join(timeout=5)
    assert not writer.is_alive()
    shown_ledger, name, summary = state.shown()
    assert shown_ledger is ledger and name == "site-1" and summary.dispatch is DISPATCH
    assert summary.to_json() == {"dispatch": DISPATCH.to_json()}


def test_a_reader_waits_while_a_run_is_being_replaced() -> None:
    state = AppState()
    got: list[object] = []
    with state.lock:  # a writer is in the middle of replacing the run
        reader = threading.Thread(target=lambda: got.append(state.shown()))
        reader.start()
        reader.join(timeout=0.3)
        assert reader.is_alive() and not got, "shown() read the run without taking the lock"
    reader.join(timeout=5)
    assert got == [(None, "", ShownSummary())]
