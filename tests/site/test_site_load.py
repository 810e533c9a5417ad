"""Site TOML → frozen records: the shipped example, and every refusal naming its key."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from drakewell.core.errors import SiteError
from drakewell.site import Site, load_site, parse_duration, parse_site

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sites" / "west-texas-hybrid.toml"


def example_data() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def parse(data: dict[str, Any]) -> Site:
    return parse_site(data, base_dir=EXAMPLE.parent, source="test.toml")


def test_example_site_matches_its_description() -> None:
    site = load_site(EXAMPLE)
    assert site.grid_connection_mw == 100.0
    assert site.zone == "LZ_WEST"
    assert site.mining_capacity_mw == pytest.approx(60.0, abs=0.5)  # ~60 MW of S21 XP
    assert site.gpu_capacity_mw == pytest.approx(25.0, abs=0.5)  # ~25 MW of H100 SXM
    asic_hall = next(h for h in site.halls if h.name == "asic-hall")
    gpu_hall = next(h for h in site.halls if h.name == "gpu-hall")
    assert asic_hall.pue == 1.05 and asic_hall.cooling == "immersion"
    assert asic_hall.fleets[0].model == "S21 XP"
    assert gpu_hall.pue == 1.25 and gpu_hall.fleets[0].model == "H100 SXM"
    # 15,680 miners × 270 TH/s
    assert site.mining_hashrate_ph_s == pytest.approx(15_680 * 0.270)
    assert site.gpu_facility_mw_per_gpu == pytest.approx(1275e-6 * 1.25)
    assert site.ai.contract_price_usd_per_gpu_hour == 2.00
    assert site.contract.kind == "fixed_block" and site.contract.block_mw > 0
    assert site.mining.ramp_mw_per_interval < site.mining_capacity_mw
    assert site.mining.min_off_minutes > 0
    assert site.markets.four_cp.enabled and len(site.markets.four_cp.intervals_utc) == 3
    assert site.markets.reserves.enabled and site.markets.reserves.max_mw > 0
    assert site.markets.emergency.events[0].start_utc == datetime(2023, 9, 7, 0, 25, tzinfo=UTC)
    assert site.ai.training and site.ai.training[0].every == timedelta(days=7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        site.zone = "LZ_NORTH"  # type: ignore[misc]


def test_training_jobs_expand_weekly_inside_the_horizon() -> None:
    site = load_site(EXAMPLE)
    start, end = pd.Timestamp("2023-07-01T05:00Z"), pd.Timestamp("2023-10-01T05:00Z")
    jobs = site.training_jobs(start, end)
    assert len(jobs) == 13  # 92 days hold 13 whole weeks
    assert jobs[0].release_utc == start.to_pydatetime()
    assert all(j.deadline_utc - j.release_utc == timedelta(days=7) for j in jobs)
    assert all(j.deadline_utc <= end.to_pydatetime() for j in jobs)
    assert jobs[0].energy_mwh == pytest.approx(600_000 * 1275e-6 * 1.25)
    assert len(site.training_jobs(start, end, include_partial=True)) == 14
    with pytest.raises(SiteError, match="no time zone"):
        site.training_jobs(datetime(2023, 7, 1), end)


def test_inference_profile_follows_local_hours() -> None:
    site = load_site(EXAMPLE)
    profile = site.ai.inference
    # 2023-07-01 21:00 UTC = 16:00 CDT, whose fraction is 1.0 → base + peak
    index = pd.DatetimeIndex(["2023-07-01T21:00Z", "2023-07-01T09:00Z"])
    busy = profile.gpus_busy(index)
    assert busy[0] == profile.base_gpus + profile.peak_gpus * profile.hourly_fraction[16]
    assert busy[1] == profile.base_gpus + profile.peak_gpus * profile.hourly_fraction[4]


def test_one_off_training_job_and_energy_spec() -> None:
    data = example_data()
    data["ai"]["training"] = [
        {
            "name": "pretrain",
            "gpus_max": 4000,
            "energy_mwh": 1000.0,
            "release": "2023-08-01T00:00:00Z",
            "deadline": "2023-08-15T00:00:00Z",
        }
    ]
    site = parse(data)
    spec = site.ai.training[0]
    assert spec.gpu_hours == pytest.approx(1000.0 / (1275e-6 * 1.25))
    assert spec.price_usd_per_gpu_hour == 2.00  # defaults to the contract price
    jobs = site.training_jobs(pd.Timestamp("2023-07-01T00:00Z"), pd.Timestamp("2023-09-01T00:00Z"))
    assert [j.name for j in jobs] == ["pretrain"]


def mutate(path: tuple[str | int, ...], value: Any, *, delete: bool = False) -> dict[str, Any]:
    data = copy.deepcopy(example_data())
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "pattern"),
    [
        (("site", "grid_conection_mw"), 100.0, r"unknown key site\.grid_conection_mw"),
        (("halls", "gpu-hall", "fans"), 3, r"unknown key halls\.gpu-hall\.fans"),
        (("ai", "inference", "colour"), "red", r"unknown key ai\.inference\.colour"),
        (
            ("halls", "gpu-hall", "capacity_mw"),
            -5.0,
            r"halls\.gpu-hall\.capacity_mw: Input should be greater than 0",
        ),
        (("site", "grid_connection_mw"), -100.0, r"site\.grid_connection_mw: Input should be greater than 0"),
        (
            ("halls", "asic-hall", "pue"),
            0.9,
            r"halls\.asic-hall\.pue: Input should be greater than or equal to 1",
        ),
        (
            ("halls", "gpu-hall", "fleets"),
            [{"model": "H100 SXM", "count": -1}],
            r"halls\.gpu-hall\.fleets\[0\]\.count",
        ),
        (("mining", "ramp_mw_per_interval"), -1.0, r"mining\.ramp_mw_per_interval"),
        (("contract", "kind"), "pay_as_bid", r"contract\.kind"),
        (("ai", "inference", "hourly_fraction"), [0.5] * 23, r"ai\.inference\.hourly_fraction"),
        (("ai", "inference", "hourly_fraction"), [1.5] * 24, r"ai\.inference\.hourly_fraction\[0\]"),
        (("ai", "inference", "timezone"), "Mars/Olympus", r"ai\.inference\.timezone: .*unknown time zone"),
        (("ai", "training", 0, "every"), "fortnightly", r"ai\.training\[0\]\.every: .*not a duration"),
        (("markets", "reserves", "undelivered_penalty_multiplier"), 0.5, r"markets\.reserves\.undelivered"),
        (("markets", "four_cp", "forecast_ratio"), 1.5, r"markets\.four_cp\.forecast_ratio"),
    ],
)
def test_invalid_values_name_their_key(path: tuple[str | int, ...], value: Any, pattern: str) -> None:
    with pytest.raises(SiteError, match=pattern):
        parse(mutate(path, value))


def test_bad_hall_name_is_named() -> None:
    data = example_data()
    data["halls"]["gpu hall!"] = data["halls"].pop("gpu-hall")
    with pytest.raises(SiteError, match=r"halls\.gpu hall! \(the name itself\): String should match"):
        parse(data)


def test_missing_required_key_is_named() -> None:
    with pytest.raises(SiteError, match=r"missing key ai\.contract_price_usd_per_gpu_hour"):
        parse(mutate(("ai", "contract_price_usd_per_gpu_hour"), None, delete=True))
    with pytest.raises(SiteError, match=r"missing key contract"):
        parse(mutate(("contract",), None, delete=True))


def test_fleet_over_hall_capacity_names_the_fleet() -> None:
    data = mutate(
        ("halls", "gpu-hall", "fleets"),
        [{"model": "H100 SXM", "count": 10_000}, {"model": "B200", "count": 8000}],
    )
    with pytest.raises(
        SiteError, match=r"halls\.gpu-hall\.fleets\[1\]\.count = 8000 takes hall 'gpu-hall' to .* over"
    ):
        parse(data)
    with pytest.raises(SiteError, match=r"halls\.asic-hall\.fleets\[0\]\.count"):
        parse(mutate(("halls", "asic-hall", "capacity_mw"), 50.0))


def test_unknown_model_names_the_key() -> None:
    data = mutate(("halls", "gpu-hall", "fleets"), [{"model": "H100 SMX", "count": 10}])
    with pytest.raises(SiteError, match=r"halls\.gpu-hall\.fleets\[0\]\.model: .*did you mean 'H100 SXM'"):
        parse(data)


def test_contract_shape_is_checked() -> None:
    with pytest.raises(SiteError, match=r"contract: .*needs block_mw"):
        parse(mutate(("contract",), {"kind": "fixed_block", "block_mw": 50.0}))
    with pytest.raises(SiteError, match=r"contract: .*belong to kind = 'fixed_block'"):
        parse(mutate(("contract",), {"kind": "index", "block_mw": 50.0}))
    with pytest.raises(SiteError, match=r"contract\.block_mw = 150.0 exceeds site\.grid_connection_mw"):
        parse(mutate(("contract", "block_mw"), 150.0))
    site = parse(mutate(("contract",), {"kind": "index", "adder_usd_per_mwh": 3.5}))
    assert site.contract.kind == "index" and site.contract.block_mw == 0.0
    assert site.contract.adder_usd_per_mwh == 3.5


def test_ai_demand_beyond_the_fleet_is_refused() -> None:
    with pytest.raises(SiteError, match=r"ai\.training\[0\]\.gpus_max = 20000 exceeds"):
        parse(mutate(("ai", "training", 0, "gpus_max"), 20_000))
    with pytest.raises(SiteError, match=r"ai\.training\[0\] needs .* could never finish"):
        parse(mutate(("ai", "training", 0, "gpu_hours"), 6000 * 168 + 1))
    with pytest.raises(SiteError, match=r"ai\.inference peak .* exceeds"):
        parse(mutate(("ai", "inference", "base_gpus"), 12_000))
    with pytest.raises(SiteError, match=r"ai\.spot\.max_gpus = 99999"):
        parse(mutate(("ai", "spot", "max_gpus"), 99_999))
    with pytest.raises(SiteError, match=r"markets\.reserves\.max_mw = 150.0"):
        parse(mutate(("markets", "reserves", "max_mw"), 150.0))


def test_training_job_shape_is_checked() -> None:
    job = {"name": "j", "gpus_max": 10, "gpu_hours": 10.0}
    cases = [
        ({**job, "energy_mwh": 1.0, "every": "1 day"}, "exactly one of gpu_hours or energy_mwh"),
        (job, "give release and deadline"),
        ({**job, "every": "1 day", "release": "2023-07-01T00:00:00Z"}, "first_release/deadline_after"),
        (
            {**job, "release": "2023-07-02T00:00:00Z", "deadline": "2023-07-01T00:00:00Z"},
            "deadline must be after",
        ),
        ({**job, "release": "2023-07-01T00:00:00", "deadline": "2023-07-02T00:00:00Z"}, "has no UTC offset"),
    ]
    for spec, pattern in cases:
        with pytest.raises(SiteError, match=rf"ai\.training\[0\].*{pattern}"):
            parse(mutate(("ai", "training"), [spec]))
    with pytest.raises(SiteError, match="repeated job names"):
        parse(mutate(("ai", "training"), [{**job, "every": "1 day"}, {**job, "every": "2 days"}]))


def test_grid_event_files_are_checked(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match=r"markets\.four_cp\.intervals_file: .*not found"):
        parse(mutate(("markets", "four_cp", "intervals_file"), "absent.csv"))
    with pytest.raises(SiteError, match=r"markets\.four_cp: .*set intervals_file"):
        parse(mutate(("markets", "four_cp", "intervals_file"), None, delete=True))
    with pytest.raises(SiteError, match=r"markets\.emergency\.events_file: .*not found"):
        parse(mutate(("markets", "emergency", "events_file"), "absent.csv"))


def test_toml_syntax_error_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[site\nname = 1\n", encoding="utf-8")
    with pytest.raises(SiteError, match="not valid TOML"):
        load_site(bad)
    with pytest.raises(SiteError, match="not found"):
        load_site(tmp_path / "absent.toml")


def test_parse_duration() -> None:
    assert parse_duration("7 days") == timedelta(days=7)
    assert parse_duration("every 7 days") == timedelta(days=7)
    assert parse_duration("12 hours") == timedelta(hours=12)
    assert parse_duration("90 min") == timedelta(minutes=90)
    assert parse_duration("1 week") == timedelta(weeks=1)
    for text in ("soon", "0 days", "-1 day"):
        with pytest.raises(ValueError):
            parse_duration(text)


def test_every_example_site_loads() -> None:
    sites = sorted(EXAMPLE.parent.glob("*.toml"))
    assert len(sites) >= 2
    for path in sites:
        site = load_site(path)
        assert site.mining_capacity_mw + site.gpu_capacity_mw <= site.grid_connection_mw


def test_small_index_site_defaults() -> None:
    site = load_site(EXAMPLE.parent / "small-index.toml")
    assert site.contract.kind == "index" and site.contract.adder_usd_per_mwh == 2.5
    assert site.mining_capacity_mw == pytest.approx(1400 * 3500e-6 * 1.10)
    assert site.mining.ramp_mw_per_interval == float("inf") and site.mining.min_off_minutes == 0
    assert not site.markets.four_cp.enabled and not site.markets.reserves.enabled
    assert site.ai.spot.max_gpus == 0 and site.ai.training == ()
    busy = site.ai.inference.gpus_busy(pd.date_range("2023-07-01T00:00Z", periods=96, freq="15min"))
    assert (busy == 600).all()
