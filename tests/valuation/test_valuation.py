import pytest

from drakewell.finance.valuation import DcfAssumptions, ValuationError, nav_per_share


def test_flat_cash_flow_with_no_discount_is_the_sum_of_months() -> None:
    a = DcfAssumptions(
        discount_rate_per_year=0.0, price_decline_per_year=0.0, life_months=12, utilisation_assumed=0.5
    )
    r = nav_per_share(1_000_000, 30, 10 * 10**18, utilisation_measured=0.5, assumptions=a)
    assert r.nav_base == 12_000_000
    assert r.nav_per_share_base == 1_200_000  # per whole share
    assert r.annual_yield == pytest.approx(1.0)


def test_discounting_and_decline_lower_the_value() -> None:
    base = nav_per_share(1_000_000, 30, 10**18)
    assert 0 < base.nav_base < 48_000_000
    steeper = nav_per_share(1_000_000, 30, 10**18, assumptions=DcfAssumptions(discount_rate_per_year=0.3))
    assert steeper.nav_base < base.nav_base


def test_trailing_window_is_scaled_to_thirty_days() -> None:
    a = nav_per_share(2_000_000, 60, 10**18)
    b = nav_per_share(1_000_000, 30, 10**18)
    assert a.monthly_cash_base == b.monthly_cash_base == 1_000_000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"trailing_cash_base": -1},
        {"trailing_days": 0},
        {"total_shares": 0},
        {"utilisation_measured": 0.0},
    ],
)
def test_bad_inputs_are_refused(kwargs: dict[str, float]) -> None:
    args = {"trailing_cash_base": 1, "trailing_days": 30, "total_shares": 10**18} | kwargs
    with pytest.raises(ValuationError):
        nav_per_share(**args)  # type: ignore[arg-type]
