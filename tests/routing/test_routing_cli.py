"""``drakewell route …`` commands, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drakewell.errors import ConfigError
from drakewell.routing.cli import app

runner = CliRunner()


def test_simulate_prints_every_policy_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "sim.json"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--hours",
            "0.02",
            "-p",
            "nearest",
            "-p",
            "slo-aware",
            "--latency",
            "model",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "great-circle model" in result.output
    assert "slo-aware" in result.output
    rows = json.loads(out.read_text())
    assert [r["policy"] for r in rows] == ["nearest", "slo-aware"]
    assert {"ttft_ms_p99", "sla_attainment", "utilisation", "cost_usd"} <= set(rows[0])
    assert rows[0]["n_requests"] == rows[1]["n_requests"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--latency", "guess"], "--latency"),
        (["simulate", "--hours", "0"], "--hours"),
        (["latency", "--source", "guess"], "--source"),
        (["serve", "--backend", "a=http://h:1,region=aws:af-south-1", "--backend", "b=http://h:2"], "region"),
    ],
)
def test_bad_options_raise_config_errors_with_hints(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert isinstance(result.exception, ConfigError)
    assert message in str(result.exception)
    assert result.exception.hint


def test_unknown_policy_is_refused() -> None:
    result = runner.invoke(app, ["simulate", "--hours", "0.01", "-p", "fastest", "--latency", "model"])
    assert result.exception is not None
    assert "unknown routing policy" in str(result.exception)


def test_latency_shows_the_model_matrix() -> None:
    result = runner.invoke(
        app, ["latency", "--source", "model", "-r", "aws:af-south-1", "-r", "aws:us-east-1"]
    )
    assert result.exit_code == 0, result.output
    assert "great-circle model" in result.output
