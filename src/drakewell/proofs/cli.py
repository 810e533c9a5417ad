"""``drakewell proofs …``: run a GPU challenge, witness miners' shares, prove and verify capacity."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from drakewell.core.cliopts import DurationOpt, EpochSecondsOpt, MeterDbOpt
from drakewell.core.errors import ConfigError, ProofError
from drakewell.core.jsontypes import JsonObject
from drakewell.core.tables import emit_json
from drakewell.metering.capacity import CapacityProof, prove_capacity, record_capacity, verify_capacity_proof
from drakewell.metering.readings import DEFAULT_EPOCH_SECONDS, asset_id
from drakewell.proofs.gpu import Challenge, NodeWork, answer_challenge, new_challenge, run_challenge
from drakewell.proofs.proxy import StratumProxy
from drakewell.store import database_url, open_engine

app = typer.Typer(help="Proofs of capacity: GPU challenges and verified mining shares.", no_args_is_help=True)

AssetOpt = Annotated[str, typer.Option("--asset", help="Asset: a name or 0x + 64 hex digits.")]


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{text!r} is not HOST:PORT", hint="e.g. 127.0.0.1:3333")
    return host, int(port)


@app.command()
def challenge(
    n: Annotated[int, typer.Option(help="Matrix size (a multiple of 32).")] = 4096,
    k: Annotated[int, typer.Option(help="Rows the verifier checks.")] = 16,
    backend: Annotated[str, typer.Option(help="auto, numpy, torch or cupy.")] = "auto",
    seed: Annotated[str | None, typer.Option(help="0x + 64 hex digits (default: fresh).")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Record the verdict in this meter store.")] = None,
    node: Annotated[str | None, typer.Option(help="Node address the verdict belongs to (with --db).")] = None,
    asset: Annotated[str | None, typer.Option(help="Asset of the node (with --db).")] = None,
    declared_tops: Annotated[float, typer.Option(help="The node's declared int8 TOPS (with --db).")] = 0.0,
    epoch_seconds: Annotated[
        int, typer.Option(help="Epoch length in seconds (with --db).")
    ] = DEFAULT_EPOCH_SECONDS,
    out: Annotated[Path | None, typer.Option(help="Write the verdict JSON here.")] = None,
) -> None:
    """Run one GPU challenge on this machine: the node's product and commitment, the verifier's checks."""

    raw = None
    if seed is not None:
        try:
            raw = bytes.fromhex(seed.removeprefix("0x"))
        except ValueError:
            raise ConfigError(f"seed {seed!r} is not hex", hint="pass 0x + 64 hex digits") from None
    ch = new_challenge(n, seed=raw)
    rng = np.random.default_rng(secrets.randbits(128))
    answered: list[NodeWork] = []

    def node_fn(c: Challenge) -> NodeWork:
        answered.append(answer_challenge(c, backend))
        return answered[0]

    verdict = run_challenge(ch, node_fn, k=k, rng=rng)
    result: JsonObject = {
        "challenge": ch.to_json(),
        "commitment": answered[0].commitment.to_json(),
        "verdict": verdict.to_json(),
    }
    if db is not None:
        if node is None or asset is None:
            raise ConfigError("--db needs --node and --asset", hint="say whose capacity the verdict shows")

        engine = open_engine(database_url(db))
        now = time.time()
        leaf = record_capacity(
            engine,
            node=node,
            asset=asset_id(asset),
            epoch=int(now // epoch_seconds),
            kind="gpu",
            verified_per_s=int(verdict.tops_lower_bound * 1e12),
            declared_per_s=int(declared_tops * 1e12),
            passed=int(verdict.passed),
            failed=int(not verdict.passed),
            now_s=now,
        )
        engine.dispose()
        result["capacity"] = leaf.to_json()
    emit_json(result, out)
    if not verdict.passed:
        raise typer.Exit(1)


@app.command("prove-capacity")
def prove_capacity_cmd(
    db: MeterDbOpt,
    asset: AssetOpt,
    epoch: Annotated[int, typer.Option()],
    node: Annotated[str, typer.Option()],
) -> None:
    """Print a node's capacity leaf in a closed epoch with its Merkle proof (evidence for a dispute)."""

    engine = open_engine(database_url(db))
    try:
        emit_json(prove_capacity(engine, asset_id(asset), epoch, node).to_json(), None)
    finally:
        engine.dispose()


@app.command()
def verify(
    proof_file: Annotated[Path, typer.Argument(help="JSON written by 'proofs prove-capacity'.")],
    root: Annotated[str | None, typer.Option(help="Check against this capacity root (0x…).")] = None,
) -> None:
    """Check a capacity proof; exit 1 when it does not lead to the root."""

    try:
        obj = json.loads(proof_file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read {proof_file}: {exc}", hint="pass the JSON prove-capacity wrote"
        ) from None
    proof = CapacityProof.from_json(obj)
    target = bytes.fromhex(root.removeprefix("0x")) if root else None
    ok = verify_capacity_proof(proof, target)
    typer.echo(json.dumps({"valid": ok, "flagged": proof.leaf.flagged, "node": proof.leaf.node}))
    if not ok:
        raise typer.Exit(1)


@app.command()
def proxy(
    pool: Annotated[str, typer.Option(help="The pool's Stratum address, HOST:PORT.")],
    listen: Annotated[str, typer.Option(help="Loopback address miners connect to.")] = "127.0.0.1:3333",
    duration_s: DurationOpt = 3_600.0,
    epoch_seconds: EpochSecondsOpt = DEFAULT_EPOCH_SECONDS,
    confidence: Annotated[float, typer.Option(help="Confidence of the hashrate intervals.")] = 0.95,
    out: Annotated[Path | None, typer.Option(help="Write the tallies and estimates here.")] = None,
) -> None:
    """Relay miners to their pool, verify every share, and report hashrate per worker and epoch."""

    if duration_s <= 0:
        raise ConfigError(f"--duration-s {duration_s} is not positive", hint="e.g. 3600")
    pool_host, pool_port = _host_port(pool)
    host, port = _host_port(listen)
    relay = StratumProxy(
        pool_host, pool_port, listen_host=host, listen_port=port, epoch_seconds=epoch_seconds
    )

    async def run() -> None:
        async with relay:
            typer.echo(
                f"relaying {relay.listen[0]}:{relay.listen[1]} -> {pool} for {duration_s:g} s", err=True
            )
            await asyncio.sleep(duration_s)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise ProofError(f"cannot listen on {listen}: {exc}", hint="pick a free loopback port") from None
    now = time.time()
    estimates = relay.estimates(now, confidence)
    emit_json(
        {
            "tallies": [t.to_json() for t in relay.tallies()],
            "estimates": [
                {"worker": w, "epoch": e, **est.to_json()} for (w, e), est in sorted(estimates.items())
            ],
        },
        out,
    )
