"""Sweep fixtures: two days of seeded synthetic prices as ERCOT CSVs, the small index site, a SPEC
writer, and a small local Ray (2 CPUs, 200 MB object store, no dashboard) shut down after use."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drakewell.sweep.spec import SweepSpec, parse_spec

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

ROOT = Path(__file__).resolve().parents[2]
SMALL_SITE = ROOT / "examples" / "sites" / "small-index.toml"
OBJECT_STORE_MB = 200


@pytest.fixture(scope="session")
def prices_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``rt.csv`` (15 min) and ``da.csv`` (hourly): two days of synthetic prices, four zones."""
    from drakewell.inputs.prices import write_ercot_prices
    from drakewell.inputs.synthetic import synthetic_inputs

    folder = tmp_path_factory.mktemp("prices")
    syn = synthetic_inputs("2023-07-03", 2, seed=7)
    write_ercot_prices(syn.rt, folder / "rt.csv")
    write_ercot_prices(syn.da, folder / "da.csv")
    return folder


SpecMaker = Callable[..., SweepSpec]


@pytest.fixture
def make_spec(prices_dir: Path) -> SpecMaker:
    """``make_spec(axes={...}, sweep={...}, report={...})``: a SPEC on the small site and synthetic prices."""

    def make(
        axes: dict[str, Any] | None = None,
        sweep: dict[str, Any] | None = None,
        report: dict[str, Any] | None = None,
    ) -> SweepSpec:
        data: dict[str, Any] = {
            "sweep": {"site": str(SMALL_SITE), "prices": "rt.csv", "forecast": "da.csv", **(sweep or {})},
            "axes": axes or {},
        }
        if report:
            data["report"] = report
        return parse_spec(data, base_dir=prices_dir, source="spec.toml", name="test")

    return make


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A local Ray for one test module: 2 CPUs, a 200 MB object store, shut down afterwards."""
    ray = pytest.importorskip("ray")
    from drakewell.sweep.executors import start_ray

    start_ray(workers=2, object_store_mb=OBJECT_STORE_MB)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def comparable() -> Callable[[Any], Any]:
    """Drops what describes the run rather than the result (the worker, timings) from a results frame."""

    def drop(frame: Any) -> Any:
        return frame.drop(columns=[c for c in frame.columns if c == "worker" or c.endswith("seconds")])

    return drop
