"""4CP intervals (proxy file, forecast) and emergency events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from drakewell.core.errors import InputDataError
from drakewell.inputs.grid import (
    EmergencyEvent,
    emergency_cap_mw,
    forecast_4cp_alerts,
    four_cp_mask,
    load_4cp_intervals,
    load_emergency_events,
    proxy_4cp_intervals,
    write_4cp_intervals,
)
from drakewell.inputs.prices import load_ercot_prices

GRID = Path(__file__).resolve().parents[2] / "examples" / "grid"


def test_shipped_4cp_file_is_the_proxy_rule_applied_to_the_real_prices(shared_data: Path) -> None:
    rt = load_ercot_prices(shared_data / "ercot" / "ercot_rtm_spp_2023-07_09.csv")
    proxy = proxy_4cp_intervals(rt)
    shipped = load_4cp_intervals(GRID / "ercot-4cp-2023.csv")
    assert tuple(t.to_pydatetime() for t in proxy) == shipped
    local = proxy.tz_convert("America/Chicago")
    assert list(local.month) == [7, 8, 9]
    assert all(d < 5 and 15 <= h < 19 for d, h in zip(local.day_of_week, local.hour, strict=True))
    # each is the month's highest LZ_NORTH price among weekday 15-19 CT intervals
    assert rt.loc[proxy, "LZ_NORTH"].min() > 3000


def test_proxy_picks_the_highest_weekday_afternoon_interval() -> None:
    index = pd.date_range("2023-07-03T00:00", "2023-07-09T23:45", freq="15min", tz="America/Chicago")
    prices = pd.Series(10.0, index=index)
    prices[pd.Timestamp("2023-07-08T17:00", tz="America/Chicago")] = 9000.0  # Saturday: ignored
    prices[pd.Timestamp("2023-07-05T20:00", tz="America/Chicago")] = 8000.0  # after 19:00: ignored
    prices[pd.Timestamp("2023-07-06T16:30", tz="America/Chicago")] = 500.0
    frame = pd.DataFrame({"LZ_NORTH": prices}).tz_convert("UTC")
    picked = proxy_4cp_intervals(frame)
    assert list(picked) == [pd.Timestamp("2023-07-06T21:30Z")]


def test_4cp_file_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "cp.csv"
    intervals = [pd.Timestamp("2023-08-10T21:45Z"), pd.Timestamp("2023-07-31T23:45Z")]
    write_4cp_intervals(intervals, path, rule="test rule")
    assert path.read_text(encoding="utf-8").startswith("# 4CP intervals: test rule")
    assert load_4cp_intervals(path) == (
        datetime(2023, 7, 31, 23, 45, tzinfo=UTC),
        datetime(2023, 8, 10, 21, 45, tzinfo=UTC),
    )
    cases = {
        "interval_start_utc\n2023-08-10T21:40:00Z\n": r"cp\.csv:2: .*not a 15-minute boundary",
        "interval_start_utc\n2023-08-10T21:45:00Z\n2023-08-11T21:45:00Z\n": (
            r"cp\.csv:3: a second 4CP .* line 2"
        ),
        "interval_start_utc\n2023-08-10T21:45:00\n": r"cp\.csv:2: .*no UTC offset",
        "interval_start_utc\nlast tuesday\n": r"cp\.csv:2: .*not an ISO 8601",
        "when\n2023-08-10T21:45:00Z\n": r"cp\.csv:1: no 'interval_start_utc' column",
        "# only a comment\n": "no header line",
    }
    for body, pattern in cases.items():
        path.write_text(body, encoding="utf-8")
        with pytest.raises(InputDataError, match=pattern):
            load_4cp_intervals(path)


def test_four_cp_mask_marks_the_containing_interval() -> None:
    index = pd.date_range("2023-08-10T21:00Z", periods=8, freq="15min")
    mask = four_cp_mask([datetime(2023, 8, 10, 21, 45, tzinfo=UTC)], index)
    assert mask.tolist() == [False, False, False, True, False, False, False, False]
    hourly = pd.date_range("2023-08-10T20:00Z", periods=3, freq="h")
    assert four_cp_mask([datetime(2023, 8, 10, 21, 45, tzinfo=UTC)], hourly).tolist() == [False, True, False]
    assert not four_cp_mask([datetime(2023, 9, 1, tzinfo=UTC)], index).any()


def _da_frame(daily_peaks: dict[str, float]) -> pd.DataFrame:
    index = pd.date_range("2023-07-03T00:00", "2023-07-14T23:00", freq="h", tz="America/Chicago")
    prices = pd.Series(20.0, index=index)
    for day, peak in daily_peaks.items():
        prices[pd.Timestamp(f"{day}T17:00", tz="America/Chicago")] = peak
    return pd.DataFrame({"LZ_NORTH": prices}).tz_convert("UTC")


def test_forecast_alerts_follow_the_running_monthly_peak() -> None:
    da = _da_frame({"2023-07-03": 100.0, "2023-07-04": 50.0, "2023-07-05": 95.0, "2023-07-06": 200.0})
    rt_index = pd.date_range("2023-07-03T05:00Z", "2023-07-08T05:00Z", freq="15min", inclusive="left")
    alerts = forecast_4cp_alerts(da, rt_index, ratio=0.9)
    local = rt_index.tz_convert("America/Chicago")
    alert_days = sorted(set(local[alerts].strftime("%Y-%m-%d")))
    # 07-03 sets the month's first peak (100 < $500); 07-04 50 < 0.9 × 100; 07-05 95 ≥ 90;
    # 07-06 200 ≥ 90; 07-07 20 < 180
    assert alert_days == ["2023-07-05", "2023-07-06"]
    assert set(local[alerts].hour) == {15, 16, 17, 18}
    # the absolute threshold flags a day on its own, the first of the month included
    low = forecast_4cp_alerts(da, rt_index, ratio=0.9, threshold_usd_per_mwh=100.0)
    assert sorted(set(local[low].strftime("%Y-%m-%d"))) == ["2023-07-03", "2023-07-05", "2023-07-06"]


def test_forecast_reads_no_later_day() -> None:
    base = {"2023-07-03": 100.0, "2023-07-05": 95.0}
    rt_index = pd.date_range("2023-07-03T05:00Z", "2023-07-14T05:00Z", freq="15min", inclusive="left")
    before = forecast_4cp_alerts(_da_frame(base), rt_index)
    after = forecast_4cp_alerts(_da_frame({**base, "2023-07-10": 5000.0}), rt_index)
    cut = int(np.searchsorted(rt_index, pd.Timestamp("2023-07-10T05:00Z")))
    assert (before[:cut] == after[:cut]).all()
    assert not (before == after).all()  # the change is seen from 07-10 on
    with pytest.raises(InputDataError, match="ratio"):
        forecast_4cp_alerts(_da_frame(base), rt_index, ratio=1.5)
    with pytest.raises(InputDataError, match="threshold"):
        forecast_4cp_alerts(_da_frame(base), rt_index, threshold_usd_per_mwh=-1.0)


def test_default_forecast_covers_the_proxy_intervals(shared_data: Path) -> None:
    rt = load_ercot_prices(shared_data / "ercot" / "ercot_rtm_spp_2023-07_09.csv")
    da = load_ercot_prices(shared_data / "ercot" / "ercot_dam_spp_2023-07_09.csv")
    alerts = forecast_4cp_alerts(da, rt.index)
    realised = four_cp_mask(load_4cp_intervals(GRID / "ercot-4cp-2023.csv"), rt.index)
    assert (alerts & realised).sum() == realised.sum() == 3
    assert alerts.sum() == 24 * 16  # 24 alert days of 16 intervals: curtailing is not free


def test_shipped_emergency_event_is_the_2023_09_06_eea2() -> None:
    (event,) = load_emergency_events(GRID / "ercot-eea-2023.csv")
    assert event.start_utc == datetime(2023, 9, 7, 0, 25, tzinfo=UTC)  # 19:25 CDT
    assert event.load_cap_mw == 10.0 and "EEA2" in event.name


def test_emergency_caps_per_interval() -> None:
    events = [
        EmergencyEvent(
            datetime(2023, 9, 7, 0, 25, tzinfo=UTC), datetime(2023, 9, 7, 1, 0, tzinfo=UTC), 10.0, "a"
        ),
        EmergencyEvent(
            datetime(2023, 9, 7, 0, 45, tzinfo=UTC), datetime(2023, 9, 7, 1, 15, tzinfo=UTC), 5.0, "b"
        ),
    ]
    index = pd.date_range("2023-09-07T00:00Z", periods=6, freq="15min")
    caps = emergency_cap_mw(events, index)
    assert caps.tolist() == [np.inf, 10.0, 10.0, 5.0, 5.0, np.inf]
    hourly = emergency_cap_mw(events, index[:2], interval=timedelta(hours=1))
    assert hourly.tolist() == [5.0, 5.0]


def test_bad_emergency_files(tmp_path: Path) -> None:
    path = tmp_path / "ev.csv"
    header = "start,end,load_cap_mw,name\n"
    cases = {
        header
        + "2023-09-06T20:00:00-05:00,2023-09-06T19:00:00-05:00,10,x\n": r"ev\.csv:2: event ends before",
        header + "2023-09-06T19:00:00-05:00,2023-09-06T20:00:00-05:00,-1,x\n": r"ev\.csv:2: load_cap_mw '-1'",
        header
        + "2023-09-06T19:00:00-05:00,2023-09-06T20:00:00-05:00,ten,x\n": r"ev\.csv:2: load_cap_mw 'ten'",
        header + "2023-09-06T19:00:00,2023-09-06T20:00:00-05:00,10,x\n": r"ev\.csv:2: .*no UTC offset",
        header + "2023-09-06T19:00:00-05:00,2023-09-06T20:00:00-05:00\n": r"ev\.csv:2: expected 4 cells",
        "start,end,name\n": r"ev\.csv:1: missing column\(s\) load_cap_mw",
    }
    for body, pattern in cases.items():
        path.write_text(body, encoding="utf-8")
        with pytest.raises(InputDataError, match=pattern):
            load_emergency_events(path)
    with pytest.raises(InputDataError, match="not found"):
        load_emergency_events(tmp_path / "absent.csv")
