"""Behind-the-meter renewables: the site section, PV and profile generation, the LP's use of on-site
power (self-consumption first, export or curtail) and the ledger's energy balance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from drakewell.core.errors import SiteError
from drakewell.dispatch.ledger import build_ledger, limit_violations
from drakewell.dispatch.model import solve
from drakewell.dispatch.policies import get_policy
from drakewell.dispatch.types import Decisions, DispatchInputError, DispatchInputs
from drakewell.site import load_site, parse_site

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/sites/west-texas-solar-hybrid.toml"
Make = Callable[..., DispatchInputs]


def with_generation(inputs: DispatchInputs, gen: list[float]) -> DispatchInputs:
    return replace(inputs, renewable_mw=np.asarray(gen, dtype=np.float64))


def perfect(inputs: DispatchInputs) -> Decisions:
    return get_policy("perfect").run(inputs)


def test_example_solar_site_generates_by_day_within_its_capacity() -> None:
    site = load_site(EXAMPLE)
    assert site.renewables.surplus == "export" and site.renewables.capacity_mw == 50.0
    index = pd.date_range("2023-08-01T05:00Z", periods=96, freq="15min")  # a Central Time day
    gen = site.renewables.generation_mw(index)
    local_hour = index.tz_convert("America/Chicago").hour
    assert (gen >= 0).all() and gen.max() <= 50.0
    assert gen[(local_hour < 5) | (local_hour >= 21)].max() == 0.0
    assert gen[local_hour == 13].min() > 30.0


def _site_data(**renewables: object) -> dict[str, object]:
    import tomllib

    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["renewables"] = renewables
    return data


def test_a_profile_plant_reads_its_csv_and_names_a_missing_interval(tmp_path: Path) -> None:
    index = pd.date_range("2023-08-01T05:00Z", periods=8, freq="15min")
    frame = pd.DataFrame({"interval_start_utc": [t.isoformat() for t in index], "capacity_factor": 0.5})
    frame.to_csv(tmp_path / "wind.csv", index=False)
    data = _site_data(
        surplus="curtail",
        plants={"wind": {"kind": "profile", "capacity_mw": 30.0, "profile_file": "wind.csv"}},
    )
    site = parse_site(_relocate(data, tmp_path), base_dir=tmp_path, source="t")
    assert site.renewables.surplus == "curtail" and site.renewables.plants[0].kind == "profile"
    np.testing.assert_allclose(site.renewables.generation_mw(index), 15.0)
    with pytest.raises(SiteError, match="no value for 2023-08-01T07:00:00") as err:
        site.renewables.generation_mw(pd.date_range("2023-08-01T05:00Z", periods=9, freq="15min"))
    assert "capacity_factor per dispatch interval" in (err.value.hint or "")


def _relocate(data: dict[str, object], folder: Path) -> dict[str, object]:
    """The example's relative 4CP/emergency files, made absolute so the site parses from ``folder``."""
    out = dict(data)
    markets = {k: dict(v) for k, v in dict(out["markets"]).items()}  # type: ignore[call-overload]
    for key, field in (("four_cp", "intervals_file"), ("emergency", "events_file")):
        markets[key][field] = str((EXAMPLE.parent / markets[key][field]).resolve())
    out["markets"] = markets
    return out


@pytest.mark.parametrize(
    ("plant", "files", "match"),
    [
        ({"kind": "pv", "capacity_mw": 10.0}, {}, "needs latitude and longitude"),
        ({"kind": "profile", "capacity_mw": 10.0}, {}, "needs profile_file"),
        ({"kind": "profile", "capacity_mw": 10.0, "profile_file": "nope.csv"}, {}, "not found"),
        (
            {"kind": "profile", "capacity_mw": 10.0, "profile_file": "p.csv"},
            {"p.csv": "interval_start_utc,capacity_factor\n2023-08-01T05:00:00Z,1.7\n"},
            "not a number in \\[0, 1\\]",
        ),
        (
            {"kind": "profile", "capacity_mw": 10.0, "profile_file": "p.csv"},
            {"p.csv": "when,cf\n2023-08-01T05:00:00Z,0.5\n"},
            "missing column",
        ),
        ({"kind": "pv", "capacity_mw": -1.0, "latitude": 30.0, "longitude": -100.0}, {}, "capacity_mw"),
        ({"kind": "coal", "capacity_mw": 10.0}, {}, "kind"),
    ],
)
def test_bad_renewables_are_refused_with_the_key_and_a_hint(
    tmp_path: Path, plant: dict[str, object], files: dict[str, str], match: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    data = _relocate(_site_data(plants={"solar": plant}), tmp_path)
    with pytest.raises(SiteError, match=match) as err:
        parse_site(data, base_dir=tmp_path, source="s.toml")
    assert "renewables" in err.value.message and err.value.hint


def test_generation_input_must_match_the_intervals(tiny_inputs: Make) -> None:
    with pytest.raises(DispatchInputError, match="renewable_mw"):
        with_generation(tiny_inputs([10.0, 10.0]), [1.0])
    with pytest.raises(DispatchInputError, match="renewable_mw"):
        with_generation(tiny_inputs([10.0, 10.0]), [1.0, -2.0])


# the tiny site mines 10 MW at PUE 1; hashprice 43 earns 43e3/13.5/24 = 132.7 USD per MWh


def test_curtail_mode_mines_the_free_surplus_even_above_breakeven(tiny_inputs: Make) -> None:
    inputs = with_generation(tiny_inputs([200.0, 200.0], renewable_surplus="curtail"), [4.0, 0.0])
    d = perfect(inputs)
    np.testing.assert_allclose(d.mining_mw, [4.0, 0.0], atol=1e-6)
    ledger = build_ledger(inputs, d)
    np.testing.assert_allclose(ledger["renewable_self_consumed_mw"], [4.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(ledger["grid_import_mw"], [0.0, 0.0], atol=1e-6)
    assert ledger["renewable_export_mw"].sum() == 0.0


def test_export_mode_sells_the_surplus_when_it_pays_more_than_mining(tiny_inputs: Make) -> None:
    inputs = with_generation(tiny_inputs([200.0, 50.0, -20.0], renewable_surplus="export"), [4.0, 4.0, 4.0])
    d = perfect(inputs)
    # 200 > 132.7: export rather than mine; 50: mine all, 4 MW from the sun; -20: mine all on
    # (paid) grid power and curtail the sun
    np.testing.assert_allclose(d.mining_mw, [0.0, 10.0, 10.0], atol=1e-6)
    ledger = build_ledger(inputs, d)
    np.testing.assert_allclose(ledger["renewable_export_mw"], [4.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(ledger["grid_import_mw"], [0.0, 6.0, 10.0], atol=1e-6)
    np.testing.assert_allclose(ledger["renewable_curtailed_mw"], [0.0, 0.0, 4.0], atol=1e-6)
    np.testing.assert_allclose(ledger["revenue_export_usd"], [200.0, 0.0, 0.0], atol=1e-6)
    balance = (
        ledger["renewable_self_consumed_mw"]
        + ledger["renewable_export_mw"]
        + ledger["renewable_curtailed_mw"]
    )
    np.testing.assert_allclose(balance, ledger["renewable_generation_mw"])


def test_the_lp_objective_is_the_ledgers_profit_with_renewables(tiny_inputs: Make) -> None:
    prices = [30.0, 250.0, -5.0, 140.0, 90.0, 600.0]
    inputs = with_generation(
        tiny_inputs(prices, renewable_surplus="export", demand=0.5), [0.0, 3.0, 12.0, 6.0, 0.0, 2.0]
    )
    sol = solve(inputs)
    d = perfect(inputs)
    ledger = build_ledger(inputs, d)
    # index contract, no adder: profit = -objective (the dropped shed-penalty constant is zero here)
    assert float(ledger["profit_usd"].sum()) == pytest.approx(-sol.objective_usd, rel=1e-7)
    assert limit_violations(inputs, d) == []


def test_generation_lets_the_load_exceed_the_grid_connection(tiny_inputs: Make) -> None:
    # connection 8 MW: without the sun mining stops at 8 - 1 (AI); with 5 MW of sun it runs 10
    base = tiny_inputs([20.0, 20.0], demand=1.0, connection_mw=8.0)
    assert perfect(base).mining_mw.max() == pytest.approx(7.0)
    inputs = with_generation(base, [5.0, 5.0])
    for name in ("perfect", "mpc", "threshold", "always"):
        d = get_policy(name).run(inputs)
        assert limit_violations(inputs, d) == [], name
        assert d.mining_mw.max() == pytest.approx(10.0), name
