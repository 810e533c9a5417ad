"""The gridstatus path with the real gridstatus library, offline: an ERCOT real-time settlement
point price document (NP6-905-CD's CSV layout, zipped as ERCOT publishes it) is written to disk,
gridstatus finds it in place of its download and parses it with its own code, and
``fetch_gridstatus_prices`` turns the result into Drakewell's UTC price frame."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest

from drakewell.inputs.prices import fetch_gridstatus_prices

gridstatus = pytest.importorskip(
    "gridstatus", reason="the grid extra is not installed: pip install -e '.[grid]'"
)
from gridstatus.ercot import Document  # noqa: E402

# (settlement point, type, price at interval k of the day)
POINTS = [
    ("LZ_WEST", "LZ", lambda k: 20.0 + k),
    ("LZ_NORTH", "LZ", lambda k: -1.5 - k),
    ("LZ_WEST", "LZEW", lambda k: 99.0),  # energy weighted: another location type
    ("HB_HUBAVG", "SH", lambda k: 30.0),
    ("RN_SOLAR1", "RN", lambda k: 5.0),
]


def _ercot_rt_document(folder: Path, day: str) -> Path:
    rows = [
        "DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,SettlementPointType,"
        "SettlementPointPrice,DSTFlag"
    ]
    date = pd.Timestamp(day).strftime("%m/%d/%Y")
    for k in range(96):
        for name, kind, price in POINTS:
            rows.append(f"{date},{k // 4 + 1},{k % 4 + 1},{name},{kind},{price(k):.2f},N")
    path = folder / "cdr.00012301.0000000000000000.20230702.000000.SPPHLZNP6905_20230701_2345.csv.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("SPPHLZNP6905_20230701_2345.csv", "\n".join(rows) + "\n")
    return path


@pytest.fixture
def offline_ercot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """gridstatus's Ercot with its two downloads (the document list and the settlement point
    mapping) answered from disk; everything else is the library's own code."""
    doc = _ercot_rt_document(tmp_path, "2023-07-01")

    def documents(self: object, **_kw: object) -> list[Document]:
        ts = pd.Timestamp("2023-07-02T00:00", tz="US/Central")
        return [Document(str(doc), ts, doc.name, doc.stem, ts)]

    monkeypatch.setattr(gridstatus.Ercot, "_get_documents", documents)
    monkeypatch.setattr(
        gridstatus.Ercot,
        "_get_settlement_point_mapping",
        lambda self, verbose=False: pd.DataFrame({"RESOURCE_NODE": ["RN_SOLAR1"]}),
    )
    return doc


def test_gridstatus_parses_an_ercot_document_into_our_utc_frame(offline_ercot: Path) -> None:
    frame = fetch_gridstatus_prices("2023-07-01", "2023-07-02", market="rt")
    assert list(frame.columns) == ["LZ_NORTH", "LZ_WEST"]  # load zones only
    assert len(frame) == 96 and frame.attrs["interval_minutes"] == 15
    assert frame.index[0] == pd.Timestamp("2023-07-01T05:00:00Z")  # 00:00 CDT
    assert frame.index[-1] == pd.Timestamp("2023-07-02T04:45:00Z")
    assert frame["LZ_WEST"].tolist() == [20.0 + k for k in range(96)]
    assert frame["LZ_NORTH"].iloc[95] == pytest.approx(-96.5)
    assert frame.attrs["market"] == "rt" and frame.attrs["source"] == "gridstatus"


def test_gridstatus_prices_select_zones(offline_ercot: Path) -> None:
    frame = fetch_gridstatus_prices("2023-07-01", "2023-07-02", market="rt", zones=["LZ_WEST"])
    assert list(frame.columns) == ["LZ_WEST"]


def test_a_failed_gridstatus_download_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from drakewell.core.errors import InputDataError

    def unreachable(self: object, **_kw: object) -> list[Document]:
        raise ConnectionError("ercot.com is unreachable")

    monkeypatch.setattr(gridstatus.Ercot, "_get_documents", unreachable)
    with pytest.raises(InputDataError, match="gridstatus could not get ERCOT rt prices") as info:
        fetch_gridstatus_prices("2023-07-01", "2023-07-02", market="rt")
    assert "load_ercot_prices" in (info.value.hint or "")
