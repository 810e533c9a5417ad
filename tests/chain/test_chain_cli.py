import json

import pytest
from typer.testing import CliRunner

from drakewell.chain import ChainError
from drakewell.chain.cli import app

runner = CliRunner()


def test_deploy_embedded_prints_distinct_addresses() -> None:
    result = runner.invoke(app, ["deploy", "--asset", "CLI pool", "--symbol", "CLI"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["backend"] == "embedded" and out["asset"] == "CLI pool"
    addresses = [out[k] for k in ("usd", "share", "meter", "escrow", "vault")]
    assert len(set(addresses)) == 5 and all(a.startswith("0x") and len(a) == 42 for a in addresses)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "--rpc", "http://127.0.0.1:9"], "needs the deployer's key"),
        (["deploy", "--symbol", "TOOLONG"], "1 to 5 characters"),
        (["deploy", "--gpus", "0"], "--gpus must be positive"),
        (["abi", "NoSuchContract"], "no contract 'NoSuchContract'"),
    ],
)
def test_bad_input_is_refused_with_a_hint(args: list[str], message: str) -> None:
    result = runner.invoke(app, args, env={"DRAKEWELL_CHAIN_KEY": ""})
    assert isinstance(result.exception, ChainError)
    assert message in str(result.exception) and "hint:" in str(result.exception)


def test_unreachable_node_is_a_chain_error() -> None:
    result = runner.invoke(app, ["deploy", "--rpc", "http://127.0.0.1:9", "--key", "0x" + "11" * 32])
    assert isinstance(result.exception, ChainError)
    assert "cannot reach an EVM node" in str(result.exception)


def test_abi_and_contract_listing() -> None:
    abi = json.loads(runner.invoke(app, ["abi", "MeterRegistry"]).output)
    names = {e.get("name") for e in abi}
    assert {"anchor", "verify_reading", "verify_delivery", "void_epoch", "EpochAnchored"} <= names
    sizes = json.loads(runner.invoke(app, ["contracts"]).output)
    assert set(sizes) >= {"ComputeShare", "LeaseEscrow", "CreditVault", "MerkleDistributor", "TestUSD"}
    assert all(0 < n < 49_152 for n in sizes.values())  # EIP-3860 init code limit
