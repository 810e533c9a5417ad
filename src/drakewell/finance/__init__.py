"""Finance: what a tokenized compute pool earns and is worth.

- :mod:`~drakewell.finance.pool`: the pool's part of the site's dispatch (leased GPUs served first);
- :mod:`~drakewell.finance.valuation`: NAV per share from verified trailing cash flows (a stated DCF).
"""

from __future__ import annotations

from drakewell.finance.pool import pool_ledger
from drakewell.finance.valuation import DcfAssumptions, ValuationError, nav_of_share, nav_per_share

__all__ = ["DcfAssumptions", "ValuationError", "nav_of_share", "nav_per_share", "pool_ledger"]
