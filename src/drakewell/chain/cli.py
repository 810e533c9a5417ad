"""``drakewell chain …``: deploy an asset's contracts and export their ABIs, JSON out.

``deploy`` without ``--rpc`` runs on a fresh embedded EVM (a dry run: the addresses are those a
fresh chain would assign, and the state is gone when the command ends); with ``--rpc URL`` and
``--key`` (or ``DRAKEWELL_CHAIN_KEY``) it deploys over JSON-RPC. ``--usd`` reuses a stablecoin
already on the network instead of deploying TestUSD.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from drakewell.chain import AssetSpec, Chain, ChainError
from drakewell.chain.backends import CONTRACTS_DIR, abi_and_bytecode
from drakewell.core.jsontypes import JsonObject

app = typer.Typer(help="Tokenized compute contracts: deploy a market, export ABIs.", no_args_is_help=True)


def _contract_names() -> list[str]:
    return sorted(p.stem for p in CONTRACTS_DIR.glob("*.vy"))


@app.command()
def deploy(
    asset: Annotated[str, typer.Option("--asset", "--name", help="Asset name, e.g. 'Pool A'.")] = (
        "Drakewell H100 pool A"
    ),
    symbol: Annotated[str, typer.Option("--symbol", help="Share token symbol (at most 5 characters).")] = (
        "DWGPU"
    ),
    gpus: Annotated[int, typer.Option("--gpus", help="GPUs in the asset.")] = 2_048,
    rpc: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL; embedded EVM when omitted.")] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", envvar="DRAKEWELL_CHAIN_KEY", help="Deployer private key (hex) for --rpc."),
    ] = None,
    usd: Annotated[str | None, typer.Option("--usd", help="Existing stablecoin address to use.")] = None,
    treasury: Annotated[
        str | None, typer.Option("--treasury", help="Fee treasury (default: deployer).")
    ] = None,
    challenge_window_s: Annotated[
        int, typer.Option("--challenge-window-s", help="Seconds before an anchored epoch is final.")
    ] = 3_600,
) -> None:
    """Deploy TestUSD (unless --usd), ComputeShare, MeterRegistry, LeaseEscrow and CreditVault."""
    if len(symbol) > 5 or not symbol:
        raise ChainError(f"symbol {symbol!r} must be 1 to 5 characters", hint="e.g. --symbol DWGPU")
    if gpus <= 0 or challenge_window_s < 0:
        raise ChainError(
            "--gpus must be positive and --challenge-window-s not negative", hint="fix the value"
        )
    if rpc is None:
        chain = Chain.embedded()
    else:
        if not key:
            raise ChainError("--rpc needs the deployer's key", hint="pass --key or set DRAKEWELL_CHAIN_KEY")
        chain = Chain.rpc(rpc, key)
    spec = AssetSpec(asset, symbol=symbol, gpus=gpus, challenge_window_s=challenge_window_s)
    m = chain.deploy_market(spec, usd=usd, treasury=treasury)
    out: JsonObject = {
        "backend": chain.backend.name,
        "chain_id": chain.chain_id,
        "deployer": chain.deployer,
        "asset": asset,
        "asset_id": "0x" + m.asset_id.hex(),
        "treasury": m.treasury,
        "usd": m.usd.address,
        "share": m.share.address,
        "meter": m.meter.address,
        "escrow": m.escrow.address,
        "vault": m.vault.address,
    }
    typer.echo(json.dumps(out, indent=2))


@app.command()
def abi(
    contract: Annotated[str, typer.Argument(help="Contract name, e.g. MeterRegistry.")],
) -> None:
    """Print a contract's ABI as JSON (for indexers and other clients)."""
    if contract not in _contract_names():
        raise ChainError(f"no contract {contract!r}", hint=f"one of {', '.join(_contract_names())}")
    abi_json, _ = abi_and_bytecode(contract)
    typer.echo(json.dumps(abi_json, indent=2))


@app.command("contracts")
def list_contracts() -> None:
    """List the contracts and the size of their creation bytecode in bytes."""
    out = {}
    for name in _contract_names():
        _, bytecode = abi_and_bytecode(name)
        out[name] = len(bytecode)
    typer.echo(json.dumps(out, indent=2))
