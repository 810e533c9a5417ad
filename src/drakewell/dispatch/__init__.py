"""Dispatch: split a hybrid site's power between AI work and bitcoin mining, and sell flexibility.

- :mod:`~drakewell.dispatch.model`: the LP (maths in its docstring) on HiGHS;
- :mod:`~drakewell.dispatch.policies`: the policy registry (``perfect``, ``mpc``, ``threshold``,
  ``always``);
- :mod:`~drakewell.dispatch.ledger`: settlement of decisions per interval;
- :mod:`~drakewell.dispatch.backtest`: runs and summaries (the ``drakewell backtest`` JSON).

Typical use::

    from drakewell.dispatch import dispatch_comparison, run_backtest
    result = run_backtest("site.toml", rt_frame, da_frame, 60.0, "mpc", "LZ_WEST")
    result.ledger, result.summary
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drakewell.dispatch.backtest import (
        BacktestResult,
        backtest_inputs,
        compare_policies,
        dispatch_comparison,
        load_backtest_inputs,
        run_backtest,
        write_results,
    )
    from drakewell.dispatch.inputs import build_inputs, dispatch_site
    from drakewell.dispatch.ledger import (
        LEDGER_COLUMNS,
        BacktestSummary,
        build_ledger,
        limit_violations,
        summarize,
    )
    from drakewell.dispatch.model import DispatchResult, FleetState, solve
    from drakewell.dispatch.policies import Policy, get_policy, policy_names, register
    from drakewell.dispatch.types import (
        Decisions,
        DispatchInputError,
        DispatchInputs,
        DispatchSite,
        SolveStatus,
        TrainingLoad,
    )

__all__ = [
    "LEDGER_COLUMNS",
    "BacktestResult",
    "BacktestSummary",
    "Decisions",
    "DispatchInputError",
    "DispatchInputs",
    "DispatchResult",
    "DispatchSite",
    "FleetState",
    "Policy",
    "SolveStatus",
    "TrainingLoad",
    "backtest_inputs",
    "build_inputs",
    "build_ledger",
    "compare_policies",
    "dispatch_comparison",
    "dispatch_site",
    "get_policy",
    "limit_violations",
    "load_backtest_inputs",
    "policy_names",
    "register",
    "run_backtest",
    "solve",
    "summarize",
    "write_results",
]

# The CLI imports ``drakewell.dispatch.cli`` on every ``drakewell`` start; resolving names lazily
# keeps HiGHS and pandas out of ``drakewell --help``.
_LAZY = {
    "BacktestResult": "drakewell.dispatch.backtest",
    "BacktestSummary": "drakewell.dispatch.ledger",
    "Decisions": "drakewell.dispatch.types",
    "DispatchInputError": "drakewell.dispatch.types",
    "DispatchInputs": "drakewell.dispatch.types",
    "DispatchResult": "drakewell.dispatch.model",
    "DispatchSite": "drakewell.dispatch.types",
    "FleetState": "drakewell.dispatch.model",
    "LEDGER_COLUMNS": "drakewell.dispatch.ledger",
    "Policy": "drakewell.dispatch.policies",
    "SolveStatus": "drakewell.dispatch.types",
    "TrainingLoad": "drakewell.dispatch.types",
    "backtest_inputs": "drakewell.dispatch.backtest",
    "build_inputs": "drakewell.dispatch.inputs",
    "build_ledger": "drakewell.dispatch.ledger",
    "compare_policies": "drakewell.dispatch.backtest",
    "dispatch_comparison": "drakewell.dispatch.backtest",
    "dispatch_site": "drakewell.dispatch.inputs",
    "get_policy": "drakewell.dispatch.policies",
    "limit_violations": "drakewell.dispatch.ledger",
    "load_backtest_inputs": "drakewell.dispatch.backtest",
    "policy_names": "drakewell.dispatch.policies",
    "register": "drakewell.dispatch.policies",
    "run_backtest": "drakewell.dispatch.backtest",
    "solve": "drakewell.dispatch.model",
    "summarize": "drakewell.dispatch.ledger",
    "write_results": "drakewell.dispatch.backtest",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'drakewell.dispatch' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
