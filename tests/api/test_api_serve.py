"""``drakewell serve`` refuses the dev meter domain unless asked (readings bound to no contract)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from drakewell.api.cli import check_meter_domain
from drakewell.cli import app
from drakewell.core.errors import ConfigError
from drakewell.metering import MeterDomain

ZERO = "0x" + "00" * 20


def test_the_dev_domain_is_refused_unless_asked() -> None:
    with pytest.raises(ConfigError, match="bound to no contract") as refused:
        check_meter_domain(MeterDomain(31337, ZERO), allow_dev=False)
    assert refused.value.hint and "--dev-domain" in refused.value.hint
    check_meter_domain(MeterDomain(31337, ZERO), allow_dev=True)
    check_meter_domain(MeterDomain(8453, "0x" + "12" * 20), allow_dev=False)
    check_meter_domain(MeterDomain(31337, "0x" + "12" * 20), allow_dev=False)  # a deployed dev registry


def test_serve_with_the_defaults_does_not_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no demo run here: the defaults are the dev domain
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path / "serve"), "--port", "1"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError) and "dev default" in str(result.exception)
