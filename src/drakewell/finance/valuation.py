"""NAV per share of a tokenized GPU pool from verified trailing cash flows (a stated DCF).

The only input that is not a stated assumption is the *verified* trailing cash flow: revenue that
reached share holders through lease settlements proven against anchored meter roots
(``ComputeShare.total_escrow_revenue``; :func:`nav_of_share` reads it from chain).

Model (monthly steps, all money in stablecoin base units):

- ``cf0`` = verified trailing net cash flow to holders, scaled to 30 days
  (``trailing_cash_base * 30 / trailing_days``).
- Utilisation: the trailing flow was earned at the measured utilisation ``u_measured``; the DCF assumes
  it trends to ``utilisation_assumed`` (flows scale by ``utilisation_assumed / u_measured``).
- Depreciation: GPU-hour prices fall by ``price_decline_per_year`` (H100 rental rates fell roughly
  this fast in 2024–2025), so month ``m`` earns ``cf0 * (1 - decline) ** (m / 12)``.
- Remaining useful life ``life_months``; no residual value (conservative).
- Discount at ``discount_rate_per_year``, monthly compounding.

    NAV = sum_{m=1..M} cf0 * k * (1 - d)^(m/12) / (1 + r)^(m/12)

NAV per share = floor(NAV * 10**share_decimals / total_shares): base units per whole share,
rounded down so a lender never over-values collateral.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from drakewell.core.errors import DrakewellError

if TYPE_CHECKING:
    from drakewell.chain import ShareClient


class ValuationError(DrakewellError):
    """A DCF input is out of range."""


@dataclass(frozen=True)
class DcfAssumptions:
    discount_rate_per_year: float = 0.15
    price_decline_per_year: float = 0.20
    life_months: int = 48
    utilisation_assumed: float = 0.80


@dataclass(frozen=True)
class NavResult:
    nav_base: int  # whole pool, stablecoin base units
    nav_per_share_base: int  # base units per 1 whole share (10**share_decimals units)
    monthly_cash_base: int  # cf0, 30-day trailing cash flow
    annual_yield: float  # 12 * cf0 / NAV


def nav_per_share(
    trailing_cash_base: int,
    trailing_days: float,
    total_shares: int,
    *,
    share_decimals: int = 18,
    utilisation_measured: float = 0.80,
    assumptions: DcfAssumptions | None = None,
) -> NavResult:
    """Discounted value of the pool's verified cash flows, per share (see the module docstring)."""
    a = assumptions or DcfAssumptions()
    if trailing_cash_base < 0:
        raise ValuationError("trailing cash flow is negative", hint="pass revenue distributed to holders")
    if trailing_days <= 0:
        raise ValuationError("trailing window must be positive", hint="pass the days the cash covers")
    if total_shares <= 0:
        raise ValuationError("total share supply must be positive", hint="mint shares before valuing")
    if not 0 < utilisation_measured <= 1 or not 0 < a.utilisation_assumed <= 1:
        raise ValuationError("utilisation must be in (0, 1]", hint="measure it from the meter KPIs")
    if a.discount_rate_per_year <= -1 or not 0 <= a.price_decline_per_year < 1 or a.life_months <= 0:
        raise ValuationError("DCF assumptions out of range", hint="see DcfAssumptions for sane values")
    cf0 = trailing_cash_base * 30 / trailing_days
    k = a.utilisation_assumed / utilisation_measured
    nav = 0.0
    for m in range(1, a.life_months + 1):
        years = m / 12
        nav += cf0 * k * (1 - a.price_decline_per_year) ** years / (1 + a.discount_rate_per_year) ** years
    nav_base = int(nav)
    per_share = nav_base * 10**share_decimals // total_shares
    annual_yield = 12 * cf0 / nav_base if nav_base else 0.0
    return NavResult(nav_base, per_share, int(cf0), annual_yield)


def nav_of_share(
    share: ShareClient,
    trailing_days: float,
    *,
    utilisation_measured: float = 0.80,
    assumptions: DcfAssumptions | None = None,
) -> NavResult:
    """The NAV recipe on chain: :func:`nav_per_share` of the share's verified revenue and supply.

    ``share`` is the pool's ComputeShare client. The trailing cash flow over
    ``trailing_days`` is ``total_escrow_revenue()``: only revenue the lease escrow paid for proven
    delivery. ``total_distributed()`` is not used: anyone may deposit revenue, so a holder paying
    itself (and getting its pro-rata part back) would raise the NAV it borrows against.
    """
    return nav_per_share(
        share.total_escrow_revenue(),
        trailing_days,
        share.total_supply(),
        utilisation_measured=utilisation_measured,
        assumptions=assumptions,
    )
