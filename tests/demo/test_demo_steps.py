"""The market run's steps one at a time: each takes and returns plain frozen records."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from drakewell.core.units import usd_to_base
from drakewell.demo.market import (
    ASK_LADDER,
    BUY_ORDERS,
    INVESTORS,
    POOL_GPUS,
    SHARE,
    Credit,
    Window,
    tokenize,
    trade,
)
from drakewell.dispatch.backtest import resolve_site
from drakewell.exchange.engine import Engine
from drakewell.report.summary import Loan


def _ledger(start: str, days: int) -> pd.DataFrame:
    index = pd.date_range(start, periods=days * 96, freq="15min", tz="UTC")
    return pd.DataFrame({"interval_start_utc": index, "hours": 0.25})


def test_the_window_covers_whole_days_and_their_epochs() -> None:
    window = Window.of(_ledger("2026-07-01T05:00", 3))
    assert window.days == 3 and window.end_s - window.start_s == 3 * 86_400
    assert window.epochs == list(range(window.start_s // 86_400, window.start_s // 86_400 + 4))  # 05:00 start
    with pytest.raises(dataclasses.FrozenInstanceError):
        window.days = 4  # type: ignore[misc]


def test_tokenize_sells_every_share_to_the_allowlisted_investors() -> None:
    tok = tokenize(Window.of(_ledger("2026-07-01", 2)))
    supply = tok.market.share.total_supply()
    held = {name: tok.market.share.balance_of(tok.accounts[name]) for name, _ in INVESTORS}
    assert sum(held.values()) == supply > 0
    assert [held[name] * 100 // supply for name, _ in INVESTORS] == [pct for _, pct in INVESTORS]
    assert tok.market.spec.gpus == POOL_GPUS and supply % SHARE == 0


def test_trade_turns_the_trades_into_escrowed_leases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = Window.of(_ledger("2026-07-01", 30))
    tok = tokenize(window)
    prices: set[int] = set()
    place = Engine.place

    def recording_place(self: Engine, *args: Any, **kwargs: Any) -> Any:
        prices.add(kwargs["price"])
        return place(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "place", recording_place)
    traded = trade(resolve_site(None), window, tok, 45.0, tmp_path / "exchange.sqlite")
    # every order is priced at the exact base units of its USD text ("2.05" once became 2_049_999)
    assert prices == {usd_to_base(p) for p, _ in ASK_LADDER} | {usd_to_base(o[-1]) for o in BUY_ORDERS}
    assert traded.engine.trades and len(traded.chain_leases) == len(traded.engine.leases)
    deposited = tok.market.escrow.totals()["total_deposited"]
    assert deposited == sum(tok.market.escrow.lease(lid)["deposit"] for lid in traded.chain_leases) > 0
    assert (tmp_path / "exchange.sqlite").exists()


def test_credit_reports_its_loan_as_the_summary_entry() -> None:
    assert [f.name for f in dataclasses.fields(Credit)] == ["nav", "paid_utilisation", "loan"]
    loan = Loan(
        shocked_nav_base=1,
        pledged_shares=2,
        borrowed_base=3,
        health_factor_before_shock=1.5,
        health_factor_after_shock=0.9,
        liquidation_repaid_base=4,
        shares_seized=5,
        debt_after_base=6,
        health_factor_after_liquidation=1.2,
    )
    assert list(loan.to_json()) == list(Loan.model_fields)
    assert list(loan.to_json().values()) == [1, 2, 3, 1.5, 0.9, 4, 5, 6, 1.2]
