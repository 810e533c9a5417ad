"""The hardware catalogue: the models the product promises, and refusal of bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from drakewell.catalog import AsicModel, CatalogError, GpuModel, load_catalog

HEADER = "model,kind,attribute,value,unit,source\n"


def test_shipped_models_match_their_specifications() -> None:
    cat = load_catalog()
    expected_asics = {  # model: (TH/s, W)
        "S19j Pro": (100, 3050),
        "S21": (200, 3500),
        "S21 Pro": (234, 3510),
        "S21 XP": (270, 3645),
        "S21+ Hydro": (319, 4785),
    }
    for name, (th, watts) in expected_asics.items():
        asic = cat.asic(name)
        assert isinstance(asic, AsicModel)
        assert asic.hashrate_th_s == th
        assert asic.power_w == pytest.approx(watts)
        assert asic.source
    assert cat.asic("S19j Pro").efficiency_j_per_th == pytest.approx(30.5)
    assert cat.asic("S21 XP").efficiency_j_per_th == pytest.approx(13.5)
    assert cat.asic("S21 Pro").efficiency_j_per_th == pytest.approx(15.0)
    expected_gpus = {"H100 SXM": 700, "H100 PCIe": 350, "H200 SXM": 700, "B200": 1000}
    for name, tdp in expected_gpus.items():
        gpu = cat.gpu(name)
        assert isinstance(gpu, GpuModel)
        assert gpu.gpu_power_w == tdp
        assert gpu.server_overhead_w_per_gpu > 0
        assert gpu.power_w_per_gpu == gpu.gpu_power_w + gpu.server_overhead_w_per_gpu
    # DGX H100: 10.2 kW for 8 GPUs
    assert cat.gpu("H100 SXM").power_w_per_gpu * 8 == pytest.approx(10_200)


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(CatalogError, match=r"'S21XP' is not in the catalogue.*did you mean 'S21 XP'"):
        load_catalog().model("S21XP")
    with pytest.raises(CatalogError, match="not an ASIC"):
        load_catalog().asic("H100 SXM")
    with pytest.raises(CatalogError, match="not a GPU"):
        load_catalog().gpu("S21")


@pytest.mark.parametrize(
    ("rows", "pattern"),
    [
        ("X,asic,hashrate,100,TH/s,s\nX,asic,power,3000,kW,s\n", r":3: X power is in 'kW', expected 'W'"),
        ("X,asic,hashrate,100,TH/s,s\nX,asic,power,3000,W,s\nX,asic,efficiency,20,J/TH,s\n", "disagrees"),
        ("X,asic,hashrate,100,TH/s,s\nX,asic,colour,red,,s\n", ":3: unknown asic attribute 'colour'"),
        ("X,asic,hashrate,100,TH/s,s\nX,asic,hashrate,110,TH/s,s\n", ":3: X states hashrate twice"),
        ("X,asic,hashrate,fast,TH/s,s\n", ":2: X hashrate = 'fast' is not a number"),
        ("X,asic,hashrate,-5,TH/s,s\n", "must be positive"),
        ("X,asic,hashrate,100,TH/s,s\n", "X lacks power or efficiency"),
        ("X,fpga,hashrate,100,TH/s,s\n", ":2: unknown kind 'fpga'"),
        ("X,gpu,gpu_power,700,W,s\n", "X lacks server_overhead"),
        ("X,gpu,gpu_power,700,W,\n", "source must not be empty"),
        ("X,asic,hashrate,100,TH/s,s\nX,gpu,gpu_power,700,W,s\n", ":3: X is 'gpu' here but 'asic'"),
        ("X,asic,hashrate,100\n", ":2: expected 6 cells"),
    ],
)
def test_bad_catalogue_rows_name_file_and_line(tmp_path: Path, rows: str, pattern: str) -> None:
    path = tmp_path / "hw.csv"
    path.write_text(HEADER + rows, encoding="utf-8")
    with pytest.raises(CatalogError, match=pattern):
        load_catalog(path)


def test_bad_catalogue_header_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "hw.csv"
    path.write_text("model,kind,value\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"hw\.csv:1: header"):
        load_catalog(path)
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "absent.csv")
