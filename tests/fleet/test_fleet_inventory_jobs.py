"""Inventory TOML validation and the training-job hooks (HTTP webhook on loopback, Slurm command)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from drakewell.core.jsontypes import JsonMapping, JsonObject
from drakewell.fleet import FleetError, InventoryError, load_inventory, parse_inventory
from drakewell.fleet.jobs import SlurmJobHook, WebhookJobHook, hook_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_example_inventory_loads() -> None:
    inv = load_inventory(EXAMPLES / "fleet" / "emulated.toml")
    assert [m.ip for m in inv.miners][:2] == ["127.0.1.1", "127.0.1.2"] and len(inv.miners) == 10
    assert inv.miners[0].model.efficiency_j_per_th == pytest.approx(34.0)
    assert inv.limits.ramp_w_per_interval == pytest.approx(50_000.0) and inv.limits.interval_s == 900.0


def test_ramp_limit_and_minimum_off_time_come_from_the_site(tmp_path: Path) -> None:
    site = (EXAMPLES / "sites" / "west-texas-hybrid.toml").resolve()
    (tmp_path / "fleet.toml").write_text(
        f'[fleet]\nsite = "{site}"\n\n[[miners]]\nip = "10.0.0.1"\nmodel = "S21 XP"\n'
    )
    inv = load_inventory(tmp_path / "fleet.toml")
    # 15 facility MW per 15 minutes through a hall with PUE 1.05 → IT MW
    assert inv.limits.ramp_w_per_interval == pytest.approx(15e6 / 1.05)
    assert inv.limits.min_off_s == 3600.0 and inv.limits.interval_s == 900.0


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"miners": [{"ip": "10.0.0.1", "model": "M31S"}]}, "miners\\[0\\].model"),
        ({"miners": [{"ip": "10.0.0.300", "model": "M30S+"}]}, "not an IPv4 address"),
        (
            {
                "miners": [{"ip": "10.0.0.1", "model": "M30S+"}],
                "miner_ranges": [{"first_ip": "10.0.0.1", "count": 2, "model": "M30S+"}],
            },
            "listed twice",
        ),
        ({"miners": [{"ip": "10.0.0.1", "model": "H100 SXM"}]}, "not an ASIC"),
        ({"jobs": [{"name": "ft", "hook": "webhook"}]}, "needs url"),
        ({"jobs": [{"name": "ft", "hook": "slurm"}]}, "slurm_job_id"),
        ({"gpus": [{"id": "g", "index": 0, "model": "H100 SXM", "role": "training", "job": "x"}]}, "not in"),
        ({"gpus": [{"id": "g", "index": 0, "model": "H100 SXM", "role": "gaming"}]}, "gpus\\[0\\].role"),
        ({"fleet": {"nmae": "typo"}}, "fleet.nmae"),
    ],
)
def test_bad_inventories_name_the_key_and_the_fix(data: JsonMapping, match: str) -> None:
    with pytest.raises(InventoryError, match=match) as err:
        parse_inventory(data)
    assert err.value.hint


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="not found"):
        load_inventory(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("[[miners]\n")
    with pytest.raises(InventoryError, match="not valid TOML"):
        load_inventory(tmp_path / "bad.toml")


class _Scheduler(BaseHTTPRequestHandler):
    """A scheduler's webhook: only the holder of the bearer token may pause or resume jobs."""

    token = "t0ken"
    lock = threading.Lock()  # handlers run on server threads; the call log is shared
    calls: ClassVar[list[JsonObject]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ok = self.headers.get("Authorization") == f"Bearer {self.token}"
        if ok:
            with self.lock:
                self.calls.append(body)
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scheduler() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scheduler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Scheduler.calls.clear()
    yield f"http://127.0.0.1:{server.server_port}/jobs"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_webhook_posts_job_action_and_mw_with_the_token(
    scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHED_TOKEN", "t0ken")
    inv = parse_inventory(
        {"jobs": [{"name": "ft", "hook": "webhook", "url": scheduler, "token_env": "SCHED_TOKEN"}]}
    )
    hook = hook_for(inv.jobs[0])
    assert asyncio.run(hook.pause("ft", 1.5)) is True
    assert asyncio.run(hook.resume("ft", 1.5)) is True
    assert _Scheduler.calls == [
        {"job": "ft", "action": "pause", "mw": 1.5},
        {"job": "ft", "action": "resume", "mw": 1.5},
    ]


def test_webhook_without_the_right_token_is_refused(scheduler: str) -> None:
    assert asyncio.run(WebhookJobHook(scheduler, token="guess").pause("ft", 1.0)) is False
    assert asyncio.run(WebhookJobHook(scheduler).pause("ft", 1.0)) is False
    assert _Scheduler.calls == []


def test_webhook_token_variable_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCHED_TOKEN", raising=False)
    inv = parse_inventory(
        {
            "jobs": [
                {"name": "ft", "hook": "webhook", "url": "http://127.0.0.1:9/x", "token_env": "SCHED_TOKEN"}
            ]
        }
    )
    with pytest.raises(FleetError, match="SCHED_TOKEN"):
        hook_for(inv.jobs[0])


def test_unreachable_webhook_is_a_fleet_error() -> None:
    with pytest.raises(FleetError, match="failed"):
        asyncio.run(WebhookJobHook("http://127.0.0.1:9/jobs").pause("ft", 1.0))


def test_slurm_hook_runs_scontrol_suspend_and_resume(tmp_path: Path) -> None:
    log = tmp_path / "calls.txt"
    scontrol = tmp_path / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {log}\n[ "$2" = "4242" ]\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    hook = SlurmJobHook("4242", scontrol=str(scontrol))
    assert asyncio.run(hook.pause("ft", 2.0)) is True
    assert asyncio.run(hook.resume("ft", 2.0)) is True
    assert log.read_text().split("\n")[:2] == ["suspend 4242", "resume 4242"]
    assert asyncio.run(SlurmJobHook("999", scontrol=str(scontrol)).pause("ft", 2.0)) is False  # non-zero exit
    with pytest.raises(FleetError, match="not found"):
        asyncio.run(SlurmJobHook("1", scontrol=str(tmp_path / "missing")).pause("ft", 1.0))
    assert os.access(scontrol, os.X_OK)
