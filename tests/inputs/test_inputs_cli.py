"""``drakewell inputs`` commands, run through Typer's test runner."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from drakewell.core.errors import InputDataError, SiteError
from drakewell.inputs.bitcoin import load_hashprice_csv
from drakewell.inputs.cli import app
from drakewell.inputs.grid import load_4cp_intervals
from drakewell.inputs.prices import load_ercot_prices
from drakewell.inputs.synthetic import synthetic_inputs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sites" / "west-texas-hybrid.toml"
runner = CliRunner()


def test_check_site_summarises_the_example() -> None:
    result = runner.invoke(app, ["check-site", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "S21 XP" in result.output and "H100 SXM" in result.output
    assert "fixed block 70 MW" in result.output


def test_check_site_raises_the_library_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text(encoding="utf-8").replace("pue = 1.25", "pue = 1.25\nfans = 3"), "utf-8")
    result = runner.invoke(app, ["check-site", str(bad)])
    assert isinstance(result.exception, SiteError)
    assert "halls.gpu-hall.fans" in str(result.exception)


def test_breakeven_table() -> None:
    result = runner.invoke(app, ["breakeven", "--hashprice", "43", "--pue", "1.0"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "S21 XP" in line)
    assert "132.7" in row


def test_synthesize_writes_files_the_loaders_read_back(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synthesize", "--out", str(tmp_path), "--days", "2", "--seed", "5"])
    assert result.exit_code == 0, result.output
    expected = synthetic_inputs("2023-07-01", 2, seed=5)
    pd.testing.assert_frame_equal(load_ercot_prices(tmp_path / "rt.csv"), expected.rt, check_freq=False)
    pd.testing.assert_frame_equal(load_ercot_prices(tmp_path / "da.csv"), expected.da, check_freq=False)
    hashprice = load_hashprice_csv(tmp_path / "hashprice.csv")
    assert hashprice.to_numpy().tolist() == expected.hashprice.to_numpy().tolist()
    check = runner.invoke(app, ["check-prices", str(tmp_path / "rt.csv")])
    assert check.exit_code == 0 and "LZ_WEST" in check.output


def test_check_prices_refuses_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "rt.csv"
    bad.write_text("interval_start_ct,LZ_WEST\n2023-07-01T00:00:00-05:00,abc\n", encoding="utf-8")
    result = runner.invoke(app, ["check-prices", str(bad)])
    assert isinstance(result.exception, InputDataError)
    assert "rt.csv:2" in str(result.exception)


def test_proxy_4cp_and_derived_hashprice_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "cp.csv"
    result = runner.invoke(
        app, ["proxy-4cp", str(shared_data / "ercot" / "ercot_rtm_spp_2023-07_09.csv"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    shipped = EXAMPLE.parents[1] / "grid" / "ercot-4cp-2023.csv"
    assert load_4cp_intervals(out) == load_4cp_intervals(shipped)
    hp = tmp_path / "hp.csv"
    btc = shared_data / "bitcoin" / "btc_price_volume_yahoo_lukmol.csv"
    result = runner.invoke(app, ["derive-hashprice", "--out", str(hp), "--btc", str(btc)])
    assert result.exit_code == 0, result.output
    assert load_hashprice_csv(hp).index[0] == pd.Timestamp("2023-07-01", tz="UTC")


def test_write_ercot_prices_round_trips_real_negative_prices(tmp_path: Path) -> None:
    frame = synthetic_inputs("2023-11-04", 2, seed=0).rt  # spans the 2023-11-05 fall-back
    frame.iloc[3, 0] = -2.5
    from drakewell.inputs.prices import write_ercot_prices

    path = write_ercot_prices(frame, tmp_path / "rt.csv")
    text = path.read_text(encoding="utf-8")
    assert "2023-11-05T01:00:00-05:00" in text and "2023-11-05T01:00:00-06:00" in text
    pd.testing.assert_frame_equal(load_ercot_prices(path), frame, check_freq=False)
    assert len(frame) == 2 * 96 + 4  # the fall-back day has 25 hours


@pytest.mark.parametrize("command", ["check-site", "check-prices"])
def test_missing_file_is_reported(command: str, tmp_path: Path) -> None:
    result = runner.invoke(app, [command, str(tmp_path / "absent")])
    assert result.exception is not None and "not found" in str(result.exception)
