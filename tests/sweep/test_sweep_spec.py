"""SPEC parsing: axes expand in product order, site key paths reach the site, and every bad SPEC gets
an error naming the key (unknown key path, empty axis, wrong type, ...)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from drakewell.core.errors import SweepError
from drakewell.site import parse_site
from drakewell.sweep.spec import (
    cell_key,
    cell_site_data,
    expand_cells,
    file_digest,
    load_spec,
    parse_key_path,
    set_key_path,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_spec_has_48_cells_over_its_three_axes(shared_data: Path) -> None:
    spec = load_spec(ROOT / "examples" / "sweeps" / "hashprice-zones.toml")
    assert spec.axis_names == ("zone", "hashprice_usd_per_ph_day", "policy")
    assert spec.n_cells == 48
    cells = expand_cells(spec)
    assert len({c.values for c in cells}) == 48
    assert cells[0].values == (("zone", "LZ_WEST"), ("hashprice_usd_per_ph_day", 30.0), ("policy", "perfect"))
    assert cells[0].prices.rt_path == str(shared_data / "ercot" / "ercot_rtm_spp_2023-07_09.csv")
    assert cells[0].prices.forecast_path == str(shared_data / "ercot" / "ercot_dam_spp_2023-07_09.csv")


def test_cells_are_the_product_of_the_axes_last_axis_fastest(make_spec) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(
        axes={"hashprice_usd_per_ph_day": [30, 60], "contract.adder_usd_per_mwh": [0.0, 2.5, 5.0]},
        sweep={"policy": "threshold"},
    )
    cells = expand_cells(spec)
    assert [(c.hashprice, dict(c.values)["contract.adder_usd_per_mwh"]) for c in cells] == [
        (30.0, 0.0),
        (30.0, 2.5),
        (30.0, 5.0),
        (60.0, 0.0),
        (60.0, 2.5),
        (60.0, 5.0),
    ]
    assert {c.policy for c in cells} == {"threshold"}
    assert {c.zone for c in cells} == {None}  # the site's zone


def test_a_site_axis_sets_the_key_at_its_dotted_path(make_spec) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(axes={"halls.main.fleets[0].count": [1000, 1500], "site.grid_connection_mw": [8.0, 9.5]})
    sites = [parse_site(cell_site_data(spec, c)) for c in expand_cells(spec)]
    assert [(s.halls[0].fleets[0].count, s.grid_connection_mw) for s in sites] == [
        (1000, 8.0),
        (1000, 9.5),
        (1500, 8.0),
        (1500, 9.5),
    ]
    # the base mapping is left as it was
    assert spec.site_data["halls"]["main"]["fleets"][0]["count"] == 1400


def test_key_paths_parse_quoted_keys_and_indices() -> None:
    assert parse_key_path("halls.asic-hall.fleets[0].count") == ("halls", "asic-hall", "fleets", 0, "count")
    assert parse_key_path('halls."hall.a".pue') == ("halls", "hall.a", "pue")
    for bad in ("pue", "halls..pue", "halls.a[x]", ".halls.a", "halls.a b"):
        with pytest.raises(ValueError):
            parse_key_path(bad)


def test_set_key_path_names_the_first_missing_table() -> None:
    data = {"halls": {"main": {"fleets": [{"count": 1}]}}}
    with pytest.raises(KeyError, match=r"no halls.other \(there: main\)"):
        set_key_path(data, ("halls", "other", "pue"), 1.2)
    with pytest.raises(KeyError, match=r"halls.main.fleets\[2\]: the base site has 1 item"):
        set_key_path(data, ("halls", "main", "fleets", 2, "count"), 3)
    assert set_key_path(data, ("halls", "main", "fleets", 0, "count"), 3)["halls"]["main"]["fleets"][0] == {
        "count": 3
    }


def test_the_cell_key_follows_the_definition_and_the_price_file_contents(make_spec, prices_dir) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(axes={"hashprice_usd_per_ph_day": [30, 60]})
    a, b = expand_cells(spec)
    digests = {p: file_digest(p) for p in (a.prices.rt_path, a.prices.forecast_path) if p}
    key_a = cell_key(cell_site_data(spec, a), a, digests)
    assert key_a == cell_key(cell_site_data(spec, a), a, dict(digests))
    assert key_a != cell_key(cell_site_data(spec, b), b, digests)
    changed = dict(digests, **{a.prices.rt_path: "0" * 64})
    assert key_a != cell_key(cell_site_data(spec, a), a, changed)


# -- bad SPECs: each error names the key -------------------------------------------------------


@pytest.mark.parametrize(
    ("axes", "expected"),
    [
        (
            {"contract.adder_usd_perr_mwh": [1.0]},
            r'axes\."contract\.adder_usd_perr_mwh"\[0\] = 1\.0: unknown key contract\.adder_usd_perr_mwh',
        ),
        (
            {"halls.no-such-hall.pue": [1.2]},
            r'axes\."halls\.no-such-hall\.pue": unknown key path: the base site has no halls\.no-such-hall '
            r"\(there: gpu, main\)",
        ),
        (
            {"halls.main.fleets[3].count": [10]},
            r"unknown key path: halls\.main\.fleets\[3\]: the base site has 1 item",
        ),
        ({"pue": [1.2]}, r"axes\.pue: 'pue' is not a dotted site key path"),
    ],
    ids=["unknown-leaf", "unknown-table", "index-out-of-range", "not-a-path"],
)
def test_an_unknown_key_path_is_named(make_spec, axes, expected) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SweepError, match=expected) as info:
        make_spec(axes=axes)
    assert info.value.hint


@pytest.mark.parametrize("axis", ["zone", "policy", "contract.adder_usd_per_mwh"])
def test_an_empty_axis_is_named(make_spec, axis) -> None:  # type: ignore[no-untyped-def]
    label = axis if "." not in axis else f'"{axis}"'
    with pytest.raises(SweepError, match=rf"axis axes\.{label} is empty"):
        make_spec(axes={axis: []})


@pytest.mark.parametrize(
    ("axes", "expected"),
    [
        (
            {"halls.main.fleets[0].count": [1000.5]},
            r'axes\."halls\.main\.fleets\[0\]\.count"\[0\] = 1000\.5: halls\.main\.fleets\[0\]\.count: '
            r"Input should be a valid integer",
        ),
        (
            {"contract.adder_usd_per_mwh": ["cheap"]},
            r"contract\.adder_usd_per_mwh: Input should be a valid number",
        ),
        ({"zone": "LZ_WEST"}, r"axes\.zone: Input should be a valid list"),
        ({"policy": ["mpc", 3]}, r"axes\.policy mixes a number and text"),
        ({"policy": [3]}, r"axes\.policy\[0\] = 3 is not a name"),
        ({"hashprice_usd_per_ph_day": [True]}, r"axes\.hashprice_usd_per_ph_day\[0\] = True is neither"),
        (
            {"hashprice_usd_per_ph_day": [-5]},
            r"axes\.hashprice_usd_per_ph_day\[0\] = -5 must be a non-negative",
        ),
        ({"contract.adder_usd_per_mwh": [[1.0]]}, r'axes\."contract\.adder_usd_per_mwh"\[0\] is a list'),
        (
            {"contract.adder_usd_per_mwh": [date(2023, 7, 1)]},
            r'axes\."contract\.adder_usd_per_mwh"\[0\] is a date',
        ),
    ],
    ids=[
        "int-key",
        "float-key",
        "not-a-list",
        "mixed",
        "policy-number",
        "bool-hashprice",
        "negative",
        "table",
        "toml-date",
    ],
)
def test_a_wrong_type_is_named(make_spec, axes, expected) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SweepError, match=expected):
        make_spec(axes=axes)


def test_an_unknown_policy_lists_the_known_ones(make_spec) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SweepError, match=r"axes\.policy\[1\] = 'mcp': unknown dispatch policy") as info:
        make_spec(axes={"policy": ["mpc", "mcp"]})
    assert "threshold" in (info.value.hint or "")


def test_a_repeated_value_is_refused(make_spec) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SweepError, match=r"axes\.zone repeats a value"):
        make_spec(axes={"zone": ["LZ_WEST", "LZ_WEST"]})


def test_unknown_and_missing_spec_keys_are_named(make_spec, prices_dir) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SweepError, match=r"unknown key sweep\.sitee"):
        make_spec(sweep={"sitee": "x.toml"})
    with pytest.raises(SweepError, match=r"unknown key report\.heat_map"):
        make_spec(report={"heat_map": ["zone", "policy"]})
    with pytest.raises(SweepError, match=r"report\.heatmap\[1\] = 'policy' is not an axis"):
        make_spec(axes={"zone": ["LZ_WEST"]}, report={"heatmap": ["zone", "policy"]})
    with pytest.raises(SweepError, match=r"sweep\.prices/sweep\.forecast and axes\.prices are both set"):
        make_spec(axes={"prices": ["rt.csv"]})
    with pytest.raises(SweepError, match=r"sweep\.site = 'nowhere\.toml': file .* not found"):
        make_spec(sweep={"site": "nowhere.toml"})


def test_a_base_site_that_is_invalid_is_reported_through_sweep_site(prices_dir: Path) -> None:
    site = prices_dir / "broken-site.toml"
    site.write_text((ROOT / "examples/sites/small-index.toml").read_text() + "\n[mining]\nramp = 3\n")
    spec = prices_dir / "spec.toml"
    spec.write_text(f'[sweep]\nsite = "{site.name}"\nprices = "rt.csv"\n')
    with pytest.raises(SweepError, match=r"sweep\.site: .*unknown key mining\.ramp"):
        load_spec(spec)


def test_load_spec_reports_a_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="not found"):
        load_spec(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[sweep\nsite = 1\n")
    with pytest.raises(SweepError, match="not valid TOML"):
        load_spec(bad)


def test_a_data_path_without_the_data_folder_says_which_setting(
    make_spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DRAKEWELL_DATA_DIR", str(tmp_path / "no-data"))
    with pytest.raises(SweepError, match=r"sweep\.prices = 'data:ercot/rt\.csv': file .* not found") as info:
        make_spec(sweep={"prices": "data:ercot/rt.csv", "forecast": None})
    assert "DRAKEWELL_DATA_DIR" in (info.value.hint or "")


def test_a_prices_axis_takes_files_and_tables_with_labels(make_spec) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(
        sweep={"prices": None, "forecast": None},
        axes={"prices": ["rt.csv", {"rt": "rt.csv", "forecast": "da.csv", "label": "with-da"}]},
    )
    cells = expand_cells(spec)
    assert [dict(c.values)["prices"] for c in cells] == ["rt.csv", "with-da"]
    assert cells[0].prices.forecast_path is None and cells[1].prices.forecast_path is not None
    with pytest.raises(SweepError, match=r"axes\.prices\[0\]: unknown key .*forecst"):
        make_spec(
            sweep={"prices": None, "forecast": None}, axes={"prices": [{"rt": "rt.csv", "forecst": "x"}]}
        )
