"""Latency matrix: the stated aggregation and imputation rules, the distance model, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drakewell.routing.latency import (
    INTRA_REGION_RTT_MS,
    REGION_COORDS,
    LatencyDataError,
    great_circle_matrix,
    haversine_km,
    latency_matrix,
    load_skyplane,
    modelled_rtt_ms,
)

HEADER = (
    "src_region,src_tier,src_instance_class,dst_region,dst_tier,dst_instance_class,"
    "min_rtt,avg_rtt,max_rtt,mdev_rtt"
)


def write_csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "lat.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def row(src: str, dst: str, avg: str, tier: str = "PREMIUM") -> str:
    return f"{src},{tier},m5.large,{dst},{tier},m5.large,1,{avg},1,"


def test_duplicates_take_median_of_premium_rows_and_ignore_standard(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            row("a", "b", "10"),
            row("a", "b", "30"),
            row("a", "b", "14"),
            row("a", "b", "500", tier="STANDARD"),
            row("b", "a", "14"),
        ],
    )
    m = load_skyplane(path)
    # a→b median of PREMIUM (10, 14, 30) = 14; b→a = 14; mean of directions = 14
    assert m.rtt("a", "b") == pytest.approx(14.0)
    assert m.rtt("b", "a") == pytest.approx(14.0)


def test_standard_rows_used_when_no_premium_and_directions_averaged(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [row("a", "b", "100", tier="STANDARD"), row("b", "a", "120")])
    m = load_skyplane(path)
    assert m.rtt("a", "b") == pytest.approx(110.0)


def test_one_way_pair_is_filled_by_symmetry_and_counted(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [row("a", "b", "40")])
    m = load_skyplane(path)
    assert m.rtt("b", "a") == pytest.approx(40.0)
    assert m.n_filled_by_symmetry == 1
    assert m.n_imputed == 0


def test_missing_pair_imputed_by_best_one_hop_relay(tmp_path: Path) -> None:
    # a-c is never measured; relays: via b = 10 + 20 = 30, via d = 5 + 50 = 55
    path = write_csv(
        tmp_path,
        [
            row("a", "b", "10"),
            row("b", "c", "20"),
            row("a", "d", "5"),
            row("d", "c", "50"),
            row("b", "d", "7"),
        ],
    )
    m = load_skyplane(path)
    assert m.rtt("a", "c") == pytest.approx(30.0)
    assert m.n_imputed == 1
    assert not m.measured[m.index("a"), m.index("c")]
    assert m.measured[m.index("a"), m.index("b")]


def test_empty_rtt_rows_count_as_missing(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [row("a", "b", "10"), row("b", "c", "20"), "a,PREMIUM,x,c,PREMIUM,x,,,,"])
    m = load_skyplane(path)
    assert m.rtt("a", "c") == pytest.approx(30.0)
    assert m.n_imputed == 1


def test_diagonal_is_the_stated_intra_region_rtt(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [row("a", "a", "80"), row("a", "b", "10")])
    m = load_skyplane(path)
    assert m.rtt("a", "a") == INTRA_REGION_RTT_MS
    assert m.rtt("b", "b") == INTRA_REGION_RTT_MS


def test_pair_without_any_path_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [row("a", "b", "10"), row("c", "d", "10")])
    with pytest.raises(LatencyDataError, match="no measured path") as info:
        load_skyplane(path)
    assert info.value.hint


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([row("a", "b", "fast")], "not a number"),
        ([row("a", "b", "-3")], "non-negative"),
        ([row("a", "b", "nan")], "non-negative"),
        ([], "no measured RTT rows"),
    ],
)
def test_bad_values_are_refused_with_line_numbers(tmp_path: Path, rows: list[str], message: str) -> None:
    with pytest.raises(LatencyDataError, match=message):
        load_skyplane(write_csv(tmp_path, rows))


def test_missing_column_and_missing_file_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("src_region,dst_region,avg_rtt\na,b,3\n")
    with pytest.raises(LatencyDataError, match="missing column"):
        load_skyplane(bad)
    with pytest.raises(LatencyDataError, match="cannot read") as info:
        load_skyplane(tmp_path / "absent.csv")
    assert "DRAKEWELL_DATA_DIR" in (info.value.hint or "")


def test_unknown_region_and_duplicate_subset_are_refused(tmp_path: Path) -> None:
    m = load_skyplane(write_csv(tmp_path, [row("a", "b", "10")]))
    with pytest.raises(LatencyDataError, match="not in the latency matrix"):
        m.rtt("a", "zz")
    with pytest.raises(LatencyDataError, match="twice"):
        m.subset(["a", "a"])


def test_haversine_matches_a_known_distance() -> None:
    london, new_york = (51.5074, -0.1278), (40.7128, -74.0060)
    assert haversine_km(london, new_york) == pytest.approx(5570, rel=0.01)
    assert haversine_km(london, london) == 0.0


def test_great_circle_matrix_is_symmetric_grows_with_distance_and_needs_coordinates() -> None:
    regions = ["aws:af-south-1", "azure:southafricanorth", "aws:us-east-1"]
    m = great_circle_matrix(regions)
    assert np.allclose(m.rtt_ms, m.rtt_ms.T)
    assert np.all(np.diag(m.rtt_ms) == INTRA_REGION_RTT_MS)
    # Cape Town is nearer Johannesburg than N. Virginia
    assert m.rtt("aws:af-south-1", "azure:southafricanorth") < m.rtt("aws:af-south-1", "aws:us-east-1")
    assert m.n_imputed == 3
    with pytest.raises(LatencyDataError, match="no coordinates"):
        great_circle_matrix(["aws:af-south-1", "mars:olympus-1"])


def test_latency_source_falls_back_to_the_model_without_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRAKEWELL_DATA_DIR", str(tmp_path))
    m = latency_matrix(["aws:af-south-1", "aws:us-east-1"])
    assert m.source == "great-circle model"
    with pytest.raises(LatencyDataError, match="cannot read"):
        latency_matrix(["aws:af-south-1", "aws:us-east-1"], source="skyplane")
    with pytest.raises(LatencyDataError, match="unknown latency source"):
        latency_matrix(["aws:af-south-1"], source="guess")


# --- the real Skyplane files -------------------------------------------------------------------


def test_real_matrix_covers_every_pair_of_its_regions(shared_data: Path) -> None:
    m = load_skyplane(shared_data / "latency" / "skyplane_latency.csv")
    assert len(m.regions) == 69
    assert m.n_pairs == 69 * 68 // 2
    assert m.n_imputed == 0  # every pair is measured in this version of the file
    assert np.allclose(m.rtt_ms, m.rtt_ms.T)
    assert np.all(np.isfinite(m.rtt_ms))
    # Frankfurt–Ireland is a short European hop; Cape Town–São Paulo goes the long way round
    assert m.rtt("aws:eu-central-1", "aws:eu-west-1") < 40
    assert m.rtt("aws:af-south-1", "aws:sa-east-1") > 250


def test_older_file_has_holes_that_the_relay_rule_fills(shared_data: Path) -> None:
    m = load_skyplane(shared_data / "latency" / "skyplane_latency_643731c3.csv")
    assert m.n_imputed > 0
    assert np.all(np.isfinite(m.rtt_ms))
    # an imputed value is never below the best measured two-leg path it came from, by construction
    i, j = map(int, np.argwhere(np.triu(~m.measured, k=1))[0])
    legs = [
        m.rtt_ms[i, k] + m.rtt_ms[k, j]
        for k in range(len(m.regions))
        if m.measured[i, k] and m.measured[k, j]
    ]
    assert m.rtt_ms[i, j] == pytest.approx(min(legs))


def test_distance_model_is_calibrated_against_measurements(shared_data: Path) -> None:
    m = load_skyplane(shared_data / "latency" / "skyplane_latency.csv")
    regions = [r for r in REGION_COORDS if r in m.regions]
    ratios = [
        modelled_rtt_ms(REGION_COORDS[a], REGION_COORDS[b]) / m.rtt(a, b)
        for k, a in enumerate(regions)
        for b in regions[k + 1 :]
    ]
    assert 0.9 <= float(np.median(ratios)) <= 1.1
