"""The package works outside the checkout: build the wheel, install it into a fresh virtual
environment in a temporary folder, and run the commands whose defaults read packaged files
(the example site and its grid files) from a working directory that has no ``examples/``."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = ROOT / "src" / "drakewell" / "examples"


def test_the_packaged_examples_equal_the_checkouts() -> None:
    """One example site, two places: the package's copy (what the defaults read) and the
    checkout's ``examples/`` (what the README points at) must never diverge."""
    shipped = sorted(p.relative_to(PACKAGED) for p in PACKAGED.rglob("*") if p.is_file())
    assert shipped == [
        Path("grid/ercot-4cp-2023.csv"),
        Path("grid/ercot-eea-2023.csv"),
        Path("sites/west-texas-hybrid.toml"),
    ]
    for rel in shipped:
        assert filecmp.cmp(PACKAGED / rel, ROOT / "examples" / rel, shallow=False), rel


def test_the_default_site_is_the_packaged_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from drakewell.dispatch.backtest import EXAMPLE_SITE, packaged_example, resolve_site

    monkeypatch.chdir(tmp_path)  # no examples/ here
    site = resolve_site(None)
    packaged = packaged_example("sites/west-texas-hybrid.toml")
    assert site == resolve_site(EXAMPLE_SITE) == resolve_site(packaged)
    assert site.name == "West Texas hybrid" and len(site.markets.four_cp.intervals_utc) == 3


def _build_wheel(tmp: Path) -> Path:
    """Build from a copy of the sources, so the checkout gains no build/ folder."""
    src = tmp / "src-copy"
    shutil.copytree(
        ROOT / "src" / "drakewell", src / "src" / "drakewell", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    dist = tmp / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            ".",
        ],
        cwd=src,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("drakewell-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A new venv holding only the wheel; the installed dependencies are reached through a .pth
    line to this environment's site-packages (whose own .pth files, the editable drakewell among
    them, a path line does not run)."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site_dir = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site_dir / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        pytest.fail(f"uv is not installed beside {sys.executable}: run `make test` to install the dev extra")
    subprocess.run(
        [str(uv), "pip", "install", "--no-deps", "--offline", "--python", str(py), str(wheel)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return venv


@pytest.mark.slow
def test_the_wheel_runs_backtest_and_demo_outside_the_checkout(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "drakewell/examples/sites/west-texas-hybrid.toml" in names
    assert not any(n.startswith("drakewell/report/templates") for n in names)
    venv = _fresh_venv(tmp_path, wheel)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import drakewell; print(drakewell.__file__)"],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout's

    drakewell = str(venv / "bin" / "drakewell")
    bt = subprocess.run(
        [drakewell, "backtest", "--policy", "threshold", "--json", "bt.json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bt.returncode == 0, bt.stdout + bt.stderr
    summary = json.loads((cwd / "bt.json").read_text())
    assert summary["policy"] == "threshold" and summary["intervals"] == 92 * 96
    demo = subprocess.run(
        [drakewell, "demo", "--out", str(cwd / "run"), "--days", "7"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    for name in ("summary.json", "report.html", "ledger.csv"):
        assert (cwd / "run" / name).is_file(), name
    assert json.loads((cwd / "run" / "summary.json").read_text())["site"] == "West Texas hybrid"
