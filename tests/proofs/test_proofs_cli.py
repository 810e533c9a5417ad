"""``drakewell proofs``: challenge → record → prove-capacity → verify, and a short proxy run."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

from typer.testing import CliRunner, Result

from drakewell.cli import app
from drakewell.core.errors import ConfigError, ProofError
from drakewell.metering.capacity import close_capacity
from drakewell.metering.readings import asset_id
from drakewell.proofs.emulate import EmulatedPool
from drakewell.store import open_engine, sqlite_url

runner = CliRunner()
NODE = "0x" + "ab" * 20
SEED = "0x" + "07" * 32


def _run(*args: str) -> Result:
    result = runner.invoke(app, ["proofs", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_challenge_record_prove_and_verify(tmp_path: Path) -> None:
    db = tmp_path / "meter.sqlite"
    out = tmp_path / "verdict.json"
    _run(
        "challenge",
        "--n",
        "64",
        "--k",
        "4",
        "--backend",
        "numpy",
        "--seed",
        SEED,
        "--db",
        str(db),
        "--node",
        NODE,
        "--asset",
        "cli-pool",
        "--declared-tops",
        "1979",
        "--epoch-seconds",
        "86400",
        "--out",
        str(out),
    )
    result = json.loads(out.read_text())
    assert result["verdict"]["passed"] and len(result["verdict"]["checkedRows"]) == 4
    assert result["challenge"] == {"seed": SEED, "n": 64}
    cap = result["capacity"]
    assert cap["passed"] == 1 and cap["declaredPerSecond"] == 1979 * 10**12 and not cap["flagged"]
    engine = open_engine(sqlite_url(db))
    root = close_capacity(engine, asset_id("cli-pool"), cap["epoch"])
    engine.dispose()
    proof = _run(
        "prove-capacity", "--db", str(db), "--asset", "cli-pool", "--epoch", str(cap["epoch"]), "--node", NODE
    ).output
    (tmp_path / "proof.json").write_text(proof)
    verdict = json.loads(_run("verify", str(tmp_path / "proof.json"), "--root", "0x" + root.hex()).output)
    assert verdict == {"valid": True, "flagged": False, "node": NODE}
    bad = runner.invoke(app, ["proofs", "verify", str(tmp_path / "proof.json"), "--root", "0x" + "00" * 32])
    assert bad.exit_code == 1 and json.loads(bad.output)["valid"] is False


def test_bad_arguments_get_clear_errors(tmp_path: Path) -> None:
    cases = [
        (["challenge", "--n", "64", "--seed", "0xzz"], ConfigError, "not hex"),
        (["challenge", "--n", "100"], ProofError, "multiple of 32"),
        (["challenge", "--n", "64", "--db", str(tmp_path / "m.sqlite")], ConfigError, "--node"),
        (["challenge", "--n", "64", "--backend", "tpu"], ProofError, "unknown array backend"),
        (["verify", str(tmp_path / "missing.json")], ConfigError, "cannot read"),
        (["proxy", "--pool", "nowhere"], ConfigError, "HOST:PORT"),
        (["proxy", "--pool", "127.0.0.1:1", "--listen", "0.0.0.0:3333"], ProofError, "loopback"),
    ]
    for args, kind, fragment in cases:
        result = runner.invoke(app, ["proofs", *args])
        assert isinstance(result.exception, kind), (args, result.output, result.exception)
        assert fragment in str(result.exception)


def test_proxy_command_runs_for_its_duration_and_reports(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    pool = EmulatedPool(1.0)
    address = loop.run_until_complete(pool.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        out = tmp_path / "proxy.json"
        _run(
            "proxy",
            "--pool",
            f"{address[0]}:{address[1]}",
            "--listen",
            "127.0.0.1:0",
            "--duration-s",
            "0.3",
            "--out",
            str(out),
        )
        assert json.loads(out.read_text()) == {"tallies": [], "estimates": []}
    finally:
        asyncio.run_coroutine_threadsafe(pool.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
