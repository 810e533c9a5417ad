"""``drakewell meter``: keygen → sign → ingest → close-epoch → prove → verify, with JSON in and out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from metering_helpers import EPOCH, GPU_ASSET
from typer.testing import CliRunner

from drakewell.cli import app
from drakewell.metering.readings import Reading

runner = CliRunner()


def _run(*args: str, ok: bool = True) -> Any:
    result = runner.invoke(app, ["meter", *args])
    if ok:
        assert result.exit_code == 0, result.output + str(result.exception)
        return json.loads(result.stdout)
    return result


def test_round_trip_through_the_cli(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    assert runner.invoke(app, ["meter", "keygen", "--count", "2", "--out", str(keys_file)]).exit_code == 0
    keys = json.loads(keys_file.read_text())
    assert len(keys) == 2 and all(k["privateKey"].startswith("0x") for k in keys)
    readings = []
    for i, k in enumerate(keys):
        start = EPOCH * 86_400 + i * 300
        readings.append(
            Reading(
                k["address"], GPU_ASSET, EPOCH, 1, start, start + 300, 400, 1_200, 0, 100, 5 + i
            ).to_json()
        )
    (tmp_path / "readings.json").write_text(json.dumps(readings))
    nodes = [
        {
            "address": k["address"],
            "asset": "0x" + GPU_ASSET.hex(),
            "kind": "gpu",
            "gpus": 8,
            "gpu_w": 1000.0,
            "asic_units": 0,
            "asic_w": 0.0,
            "asic_th_s": 0.0,
            "max_tokens_per_gpu_s": 100.0,
        }
        for k in keys
    ]
    (tmp_path / "nodes.json").write_text(json.dumps(nodes))
    leases = [
        {
            "lease_id": 5 + i,
            "asset": "0x" + GPU_ASSET.hex(),
            "gpus": 4,
            "start_s": EPOCH * 86_400,
            "end_s": EPOCH * 86_400 + 3_600,
        }
        for i in range(2)
    ]
    (tmp_path / "leases.json").write_text(json.dumps(leases))
    registry = ["--chain-id", "8453", "--registry", "0x" + "12" * 20]
    signed = _run("sign", str(tmp_path / "readings.json"), "--keys", str(keys_file), *registry)
    (tmp_path / "signed.json").write_text(json.dumps(signed))
    db = str(tmp_path / "m.sqlite")
    result = _run(
        "ingest",
        str(tmp_path / "signed.json"),
        "--nodes",
        str(tmp_path / "nodes.json"),
        "--leases",
        str(tmp_path / "leases.json"),
        "--db",
        db,
        *registry,
    )
    assert result == {"accepted": 2, "duplicates": 0, "rejected": []}
    again = _run(
        "ingest", str(tmp_path / "signed.json"), "--db", db, "--chain-id", "1", "--registry", "0x" + "12" * 20
    )
    assert [r["reason"] for r in again["rejected"]] == ["bad_signature"] * 2  # another chain's domain

    records = _run("close-epoch", "--db", db, *registry)
    assert len(records) == 1 and records[0]["nReadings"] == 2 and records[0]["nLeases"] == 2

    proof = _run("prove", "--db", db, "--node", keys[0]["address"], "--seq", "1", *registry)
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    assert _run("verify", str(tmp_path / "proof.json"), *registry) == {"kind": "reading", "valid": True}
    assert _run("verify", str(tmp_path / "proof.json"), "--root", records[0]["readingsRoot"])["valid"]
    wrong_root = _run("verify", str(tmp_path / "proof.json"), "--root", "0x" + "00" * 32, ok=False)
    assert wrong_root.exit_code == 1 and '"valid": false' in wrong_root.output
    wrong_chain = _run(
        "verify", str(tmp_path / "proof.json"), "--chain-id", "1", "--registry", "0x" + "12" * 20, ok=False
    )
    assert wrong_chain.exit_code == 1

    delivery = _run(
        "prove",
        "--db",
        db,
        "--lease",
        "6",
        "--asset",
        "0x" + GPU_ASSET.hex(),
        "--epoch",
        str(EPOCH),
        *registry,
    )
    assert delivery["delivery"]["gpuSeconds"] == 1_200
    (tmp_path / "delivery.json").write_text(json.dumps(delivery))
    assert _run("verify", str(tmp_path / "delivery.json"), "--root", records[0]["deliveriesRoot"])["valid"]


def test_simulate_writes_ingestible_files(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    summary = _run("simulate", "--out", str(out), "--gpu-nodes", "2", "--asic-nodes", "1")
    assert summary["nodes"] == 3
    assert (
        abs(summary["metered_energy_wh"] - summary["ledger_energy_wh"]) <= 0.005 * summary["ledger_energy_wh"]
    )
    result = _run(
        "ingest",
        str(out / "readings.json"),
        "--nodes",
        str(out / "nodes.json"),
        "--db",
        str(tmp_path / "m.sqlite"),
    )
    assert result["accepted"] == summary["readings"] and result["rejected"] == []
    exported = _run("export", "--out", str(tmp_path / "r.parquet"), "--db", str(tmp_path / "m.sqlite"))
    assert exported["rows"] == summary["readings"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["keygen", "--count", "0"], "--count must be > 0"),
        (["verify", "{missing}"], "cannot read"),
        (["verify", "{notjson}"], "is not JSON"),
        (["verify", "{notproof}"], "not a meter proof"),
        (["verify", "{notproof}", "--root", "0x12"], "32 bytes"),
        (["prove", "--db", "{db}"], "say which proof"),
        (["sign", "{readings}", "--keys", "{notjson}"], "is not JSON"),
        (["sign", "{readings}", "--keys", "{badkeys}"], "bad key entry"),
        (["sign", "{readings}", "--keys", "{otherkeys}"], "no key for node"),
        (["ingest", "{readings}", "--db", "{db}", "--batch-size", "0"], "--batch-size"),
    ],
)
def test_bad_input_is_named(tmp_path: Path, args: list[str], words: str) -> None:
    (tmp_path / "notjson.json").write_text("{")
    (tmp_path / "notproof.json").write_text('{"kind": "other"}')
    (tmp_path / "badkeys.json").write_text('[{"privateKey": "0x12"}]')
    (tmp_path / "otherkeys.json").write_text(json.dumps([{"privateKey": "0x" + "07" * 32}]))
    start = EPOCH * 86_400
    (tmp_path / "readings.json").write_text(
        json.dumps(
            [Reading("0x" + "11" * 20, GPU_ASSET, EPOCH, 1, start, start + 60, 1, 1, 0, 0, 0).to_json()]
        )
    )
    paths = {
        "missing": str(tmp_path / "missing.json"),
        "notjson": str(tmp_path / "notjson.json"),
        "notproof": str(tmp_path / "notproof.json"),
        "badkeys": str(tmp_path / "badkeys.json"),
        "otherkeys": str(tmp_path / "otherkeys.json"),
        "readings": str(tmp_path / "readings.json"),
        "db": str(tmp_path / "m.sqlite"),
    }
    result = runner.invoke(app, ["meter", *(a.format(**paths) for a in args)])
    assert result.exit_code != 0
    assert words in str(result.exception)


def test_ingest_and_close_through_a_server_need_its_keys(
    tmp_path: Path, store: Any, domain: Any, make_reading: Any, gpu_key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from metering_helpers import GATEWAY_KEY, OPERATOR_KEY, live_server
    from test_metering_api import meter_app

    signed = [gpu_key.sign(make_reading(seq=s), domain).to_json() for s in (1, 2)]
    (tmp_path / "signed.json").write_text(json.dumps(signed))
    with live_server(meter_app(store, gpu_key.address)) as base:
        monkeypatch.delenv("DRAKEWELL_METER_KEY", raising=False)
        no_key = _run("ingest", str(tmp_path / "signed.json"), "--server", base, ok=False)
        assert no_key.exit_code != 0 and "needs a meter key" in str(no_key.exception)
        bad = _run("ingest", str(tmp_path / "signed.json"), "--server", base, "--key", "x" * 30, ok=False)
        assert "401" in str(bad.exception)
        answer = _run("ingest", str(tmp_path / "signed.json"), "--server", base, "--key", GATEWAY_KEY)
        assert answer == {"accepted": 2, "duplicates": 0, "rejected": []}
        close = ["close-epoch", "--server", base, "--asset", "0x" + GPU_ASSET.hex(), "--epoch", str(EPOCH)]
        refused = _run(*close, "--key", GATEWAY_KEY, ok=False)
        assert "403" in str(refused.exception) and "only the operator" in str(refused.exception)
        monkeypatch.setenv("DRAKEWELL_METER_KEY", OPERATOR_KEY)
        records = _run(*close)
    assert records[0]["nReadings"] == 2


def test_close_epoch_leaves_epochs_that_are_not_due(tmp_path: Path) -> None:
    from drakewell.metering.ingest import MeterStore, NodeSpec
    from drakewell.metering.readings import MeterDomain
    from drakewell.metering.signing import NodeKey

    key = NodeKey((5150).to_bytes(32, "big"))
    db = tmp_path / "m.sqlite"
    domain = MeterDomain(31337, "0x" + "00" * 20)
    store = MeterStore(f"sqlite:///{db}", domain)
    store.register_nodes([NodeSpec(key.address, GPU_ASSET, "gpu", gpus=8, gpu_w=1_000.0)])
    start = EPOCH * 86_400
    reading = Reading(key.address, GPU_ASSET, EPOCH, 1, start, start + 300, 10, 60, 0, 0, 0)
    assert store.ingest([key.sign(reading, domain)]).accepted == 1
    store.close()
    due = (EPOCH + 1) * 86_400 + 900
    assert _run("close-epoch", "--db", str(db), "--now", str(due - 1)) == []  # not yet: left open
    assert len(_run("close-epoch", "--db", str(db), "--now", str(due))) == 1
