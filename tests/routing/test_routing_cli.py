"""``drakewell route …`` commands: in-process, and as real processes for ``serve``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from drakewell.core.errors import ConfigError
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


@pytest.mark.integration
def test_serve_and_fake_backend_commands_work_together() -> None:
    route = [sys.executable, "-m", "drakewell.routing.cli"]
    good, bad, gw = _free_port(), _free_port(), _free_port()
    procs = [
        subprocess.Popen([*route, "fake-backend", "--port", str(good), "--name", "good"]),
        subprocess.Popen([*route, "fake-backend", "--port", str(bad), "--mode", "error"]),
    ]
    try:
        _wait_for(f"http://127.0.0.1:{good}/state")
        _wait_for(f"http://127.0.0.1:{bad}/state")
        procs.append(
            subprocess.Popen(
                [
                    *route,
                    "serve",
                    "--port",
                    str(gw),
                    "--policy",
                    "nearest",
                    "--user-region",
                    "aws:af-south-1",
                    "-b",
                    f"cpt=http://127.0.0.1:{bad},region=aws:af-south-1",
                    "-b",
                    f"iad=http://127.0.0.1:{good},region=aws:us-east-1",
                    "--latency",
                    "model",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait_for(f"http://127.0.0.1:{gw}/healthz")
        r = httpx.post(
            f"http://127.0.0.1:{gw}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10.0,
        )
        assert r.status_code == 200
        assert r.headers["x-drakewell-backend"] == "iad"  # the nearer one failed
        assert r.headers["x-drakewell-attempts"] == "2"
        assert r.json()["choices"][0]["message"]["content"].startswith("tok")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
