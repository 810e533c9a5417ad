"""ERCOT price loading: real files, hand-made bad files, DST, gridstatus frames."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from drakewell.core.errors import InputDataError
from drakewell.inputs.prices import (
    align_da_to_rt,
    fetch_gridstatus_prices,
    frame_from_gridstatus,
    load_ercot_prices,
    select_zone,
    validate_price_frame,
)

RT_HEADER = "interval_start_ct,LZ_HOUSTON,LZ_WEST"


def write(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_real_rt_and_da_files_load_to_utc(shared_data: Path) -> None:
    rt = load_ercot_prices(shared_data / "ercot" / "ercot_rtm_spp_2023-07_09.csv")
    da = load_ercot_prices(shared_data / "ercot" / "ercot_dam_spp_2023-07_09.csv")
    assert len(rt) == 8832 and len(da) == 2208
    assert list(rt.columns) == ["LZ_HOUSTON", "LZ_NORTH", "LZ_SOUTH", "LZ_WEST"]
    assert str(rt.index.tz) == "UTC" and rt.index.name == "interval_start_utc"
    # 2023-07-01T00:00-05:00 is 05:00 UTC
    assert rt.index[0] == pd.Timestamp("2023-07-01T05:00:00Z")
    assert rt.index[-1] == pd.Timestamp("2023-10-01T04:45:00Z")
    assert rt.attrs["market"] == "rt" and da.attrs["market"] == "da"
    assert rt.attrs["interval_minutes"] == 15 and da.attrs["interval_minutes"] == 60
    assert rt.iloc[0]["LZ_WEST"] == pytest.approx(25.3)
    assert rt["LZ_WEST"].max() == pytest.approx(5339.52)  # 2023-09-06 19:30 CT
    assert rt["LZ_WEST"].idxmax() == pd.Timestamp("2023-09-07T00:30:00Z")
    assert (rt < 0).to_numpy().any()  # negative prices are kept
    aligned = align_da_to_rt(da, rt.index)
    assert aligned.shape == rt.shape
    assert (aligned.iloc[:4]["LZ_WEST"] == da.iloc[0]["LZ_WEST"]).all()
    assert aligned.iloc[4]["LZ_WEST"] == da.iloc[1]["LZ_WEST"]


def test_negative_prices_are_valid(tmp_path: Path) -> None:
    path = write(
        tmp_path, f"{RT_HEADER}\n2023-07-01T00:00:00-05:00,-2.19,-1.5\n2023-07-01T00:15:00-05:00,3,4\n"
    )
    frame = load_ercot_prices(path)
    assert frame["LZ_HOUSTON"].tolist() == [-2.19, 3.0]


def test_gap_names_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"{RT_HEADER}\n2023-07-01T00:00:00-05:00,1,2\n2023-07-01T00:15:00-05:00,1,2\n"
        "2023-07-01T01:00:00-05:00,1,2\n",
    )
    with pytest.raises(InputDataError, match=r"prices\.csv:4: gap of 2 interval\(s\) after line 3"):
        load_ercot_prices(path)


def test_true_duplicate_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"{RT_HEADER}\n2023-07-01T00:00:00-05:00,1,2\n2023-07-01T00:00:00-05:00,1,2\n")
    with pytest.raises(InputDataError, match=r"prices\.csv:3: .*repeats line 2"):
        load_ercot_prices(path)


def test_fall_back_hour_with_two_offsets_is_accepted(tmp_path: Path) -> None:
    # 2023-11-05: 01:00-01:45 CDT, then 01:00-01:45 again in CST, then 02:00 CST.
    rows = [f"2023-11-05T01:{m:02d}:00-05:00,1,{m}" for m in (0, 15, 30, 45)]
    rows += [f"2023-11-05T01:{m:02d}:00-06:00,2,{m}" for m in (0, 15, 30, 45)]
    rows += ["2023-11-05T02:00:00-06:00,3,0"]
    frame = load_ercot_prices(write(tmp_path, RT_HEADER + "\n" + "\n".join(rows) + "\n"))
    assert len(frame) == 9
    assert frame.index[3] == pd.Timestamp("2023-11-05T06:45:00Z")
    assert frame.index[4] == pd.Timestamp("2023-11-05T07:00:00Z")
    assert frame["LZ_HOUSTON"].tolist() == [1, 1, 1, 1, 2, 2, 2, 2, 3]


def test_fall_back_hour_repeated_with_the_same_offset_is_refused(tmp_path: Path) -> None:
    rows = [f"2023-11-05T01:{m:02d}:00-05:00,1,{m}" for m in (0, 15, 30, 45)] * 2
    with pytest.raises(InputDataError, match=r"prices\.csv:6: .*repeats|prices\.csv:6: .*after line 5"):
        load_ercot_prices(write(tmp_path, RT_HEADER + "\n" + "\n".join(rows) + "\n"))


def test_offset_inconsistent_with_central_time_is_refused(tmp_path: Path) -> None:
    # In January Chicago is on CST (-06:00); -05:00 is wrong.
    path = write(tmp_path, f"{RT_HEADER}\n2023-01-15T10:00:00-05:00,1,2\n")
    with pytest.raises(InputDataError, match=r"prices\.csv:2: offset .* wrong for America/Chicago"):
        load_ercot_prices(path)


def test_timestamp_without_offset_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"{RT_HEADER}\n2023-07-01T00:00:00,1,2\n")
    with pytest.raises(InputDataError, match=r"prices\.csv:2: .*no UTC offset"):
        load_ercot_prices(path)


def test_unparseable_timestamp_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"{RT_HEADER}\n07/01/2023 00:00,1,2\n")
    with pytest.raises(InputDataError, match=r"prices\.csv:2: timestamp .* not ISO-8601"):
        load_ercot_prices(path)


@pytest.mark.parametrize("cell", ["n/a", "", "inf", "nan", "12,5x"])
def test_non_numeric_cell_names_file_line_and_zone(tmp_path: Path, cell: str) -> None:
    path = write(
        tmp_path,
        f'{RT_HEADER}\n2023-07-01T00:00:00-05:00,1,2\n2023-07-01T00:15:00-05:00,1,"{cell}"\n',
    )
    with pytest.raises(InputDataError, match=r"prices\.csv:3: LZ_WEST price .* is not a number"):
        load_ercot_prices(path)


@pytest.mark.parametrize(
    ("header", "pattern"),
    [
        ("time,LZ_WEST", "first column is 'time'"),
        ("interval_start_ct", "missing or empty zone column"),
        ("interval_start_ct,LZ_WEST,LZ_WEST", "LZ_WEST repeated"),
        ("interval_start_ct,,LZ_WEST", "missing or empty zone column"),
    ],
)
def test_bad_header_is_refused(tmp_path: Path, header: str, pattern: str) -> None:
    path = write(tmp_path, f"{header}\n2023-07-01T00:00:00-05:00,1,2\n")
    with pytest.raises(InputDataError, match=rf"prices\.csv:1: .*{pattern}"):
        load_ercot_prices(path)


def test_wrong_cell_count_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"prices\.csv:2: expected 3 cells, found 2"):
        load_ercot_prices(write(tmp_path, f"{RT_HEADER}\n2023-07-01T00:00:00-05:00,1\n"))
    with pytest.raises(InputDataError, match="empty file"):
        load_ercot_prices(write(tmp_path, "", "empty.csv"))
    with pytest.raises(InputDataError, match="no data rows"):
        load_ercot_prices(write(tmp_path, RT_HEADER + "\n", "header_only.csv"))
    with pytest.raises(InputDataError, match="not found"):
        load_ercot_prices(tmp_path / "absent.csv")


def test_out_of_order_rows_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"{RT_HEADER}\n2023-07-01T00:15:00-05:00,1,2\n2023-07-01T00:05:00-05:00,1,2\n")
    with pytest.raises(InputDataError, match=r"prices\.csv:3: .*expected 0:15:00"):
        load_ercot_prices(path)


def test_day_ahead_hourly_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, "hour_start_ct,LZ_WEST\n2023-07-01T00:00:00-05:00,10\n2023-07-01T01:00:00-05:00,11\n"
    )
    da = load_ercot_prices(path)
    assert da.attrs["market"] == "da" and da.index.freq == pd.Timedelta(hours=1)
    rt_index = pd.date_range("2023-07-01T05:00Z", periods=8, freq="15min")
    aligned = align_da_to_rt(da, rt_index)
    assert aligned["LZ_WEST"].tolist() == [10.0] * 4 + [11.0] * 4
    with pytest.raises(InputDataError, match="do not cover 1 real-time interval"):
        align_da_to_rt(da, pd.date_range("2023-07-01T05:00Z", periods=9, freq="15min"))


def test_select_zone_lists_zones() -> None:
    frame = pd.DataFrame({"LZ_WEST": [1.0]}, index=pd.DatetimeIndex(["2023-07-01T05:00Z"]))
    assert select_zone(frame, "LZ_WEST").tolist() == [1.0]
    with pytest.raises(InputDataError, match="choose one of LZ_WEST"):
        select_zone(frame, "LZ_EAST")


def gridstatus_like_frame(periods: int = 3) -> pd.DataFrame:
    """Shaped like gridstatus.Ercot().get_spp(...): long form, US/Central aware interval starts."""
    starts = pd.date_range("2023-07-01T00:00", periods=periods, freq="15min", tz="US/Central")
    rows = []
    for ts in starts:
        for loc, price in (("LZ_WEST", 20.0), ("LZ_NORTH", -1.5), ("HB_HOUSTON", 30.0)):
            rows.append(
                {
                    "Time": ts,
                    "Interval Start": ts,
                    "Interval End": ts + pd.Timedelta(minutes=15),
                    "Location": loc,
                    "Location Type": "Trading Hub" if loc.startswith("HB") else "Load Zone",
                    "Market": "REAL_TIME_15_MIN",
                    "SPP": price + ts.minute,
                }
            )
    return pd.DataFrame(rows)


def test_gridstatus_frame_conversion() -> None:
    frame = frame_from_gridstatus(gridstatus_like_frame(), location_types=["Load Zone"])
    assert list(frame.columns) == ["LZ_NORTH", "LZ_WEST"]
    assert frame.index[0] == pd.Timestamp("2023-07-01T05:00:00Z")
    assert frame["LZ_WEST"].tolist() == [20.0, 35.0, 50.0]
    assert frame["LZ_NORTH"].iloc[0] == -1.5
    assert frame.attrs["interval_minutes"] == 15


def test_gridstatus_frame_errors() -> None:
    bad = gridstatus_like_frame().drop(columns=["SPP"])
    with pytest.raises(InputDataError, match="lacks column"):
        frame_from_gridstatus(bad)
    doubled = pd.concat([gridstatus_like_frame(), gridstatus_like_frame()])
    with pytest.raises(InputDataError, match="repeats"):
        frame_from_gridstatus(doubled)
    gappy = gridstatus_like_frame(periods=5)
    gappy = gappy[gappy["Interval Start"] != gappy["Interval Start"].iloc[6]]  # drop the third interval
    with pytest.raises(InputDataError, match="gap"):
        frame_from_gridstatus(gappy, location_types=["Load Zone"])


def test_fetch_without_gridstatus_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gridstatus", None)  # makes `import gridstatus` fail
    with pytest.raises(InputDataError, match=r"gridstatus is not installed.*drakewell\[grid\]"):
        fetch_gridstatus_prices("2023-07-01", "2023-07-02")


def test_validate_price_frame_refuses_bad_frames() -> None:
    index = pd.date_range("2023-07-01T05:00Z", periods=4, freq="15min")
    good = pd.DataFrame({"LZ_WEST": [1.0, 2.0, 3.0, 4.0]}, index=index)
    assert validate_price_frame(good).attrs["market"] == "rt"
    with pytest.raises(InputDataError, match="not a finite number"):
        validate_price_frame(good.assign(LZ_WEST=[1.0, np.nan, 3.0, 4.0]))
    with pytest.raises(InputDataError, match="tz-aware"):
        validate_price_frame(good.tz_localize(None))
    five_minutes = pd.date_range("2023-07-01T05:00Z", periods=3, freq="5min")
    with pytest.raises(InputDataError, match="interval is"):
        validate_price_frame(pd.DataFrame({"LZ_WEST": [1.0, 2.0, 3.0]}, index=five_minutes))
    with pytest.raises(InputDataError, match="duplicate"):
        validate_price_frame(pd.DataFrame({"LZ_WEST": [1.0, 2.0, 3.0]}, index=index[[0, 1, 1]]))
