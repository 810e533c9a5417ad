"""Lazy package front doors: a name resolves from its module on first use, an unknown one is refused."""

from __future__ import annotations

import subprocess
import sys

import pytest

from drakewell.core.lazy import lazy_exports


def test_a_listed_name_resolves_from_its_module() -> None:
    getattr_ = lazy_exports("pkg", {"sqrt": "math"})
    import math

    assert getattr_("sqrt") is math.sqrt


def test_an_unlisted_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'nope'"):
        lazy_exports("pkg", {"sqrt": "math"})("nope")


def test_importing_the_sweep_package_does_not_import_pandas() -> None:
    code = "import sys, drakewell.sweep as s; assert 'pandas' not in sys.modules; s.run_sweep; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
