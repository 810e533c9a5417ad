"""``drakewell meter …``: keys, signing, ingest, epochs and proofs, with JSON in and out.

Every command reads JSON from a file (or ``-`` for standard input) and prints JSON to standard
output. The EIP-712 domain is ``--chain-id`` and ``--registry`` (the MeterRegistry address).

``ingest`` and ``close-epoch`` work on the database itself (``--db``: whoever can write it is its
operator), or with ``--server URL`` on a running ``drakewell serve`` through its meter API, with
the key in ``--key`` or ``DRAKEWELL_METER_KEY`` (sent as ``Authorization: Bearer``; the operator
key to close, the operator's or a gateway's to ingest).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import httpx
import pandas as pd
import pyarrow.parquet as pq
import typer

from drakewell.core.cliopts import EpochSecondsOpt, MeterDbOpt
from drakewell.core.errors import ConfigError, MeteringError
from drakewell.core.fields import json_object
from drakewell.core.jsontypes import JsonMapping, JsonValue
from drakewell.core.tables import emit_json
from drakewell.metering.epochs import (
    DeliveryProof,
    ReadingProof,
    close_epoch,
    open_epochs,
    prove_delivery,
    prove_reading,
    verify_delivery_proof,
    verify_reading_proof,
)
from drakewell.metering.fleet import FleetParams, ledger_energy_wh, simulate_fleet, synthetic_ledger
from drakewell.metering.ingest import IngestResult, LeaseTerms, MeterStore, NodeSpec, Rejection
from drakewell.metering.readings import DEFAULT_EPOCH_SECONDS, MeterDomain, Reading, asset_id
from drakewell.metering.signing import NodeKey
from drakewell.store import database_url

app = typer.Typer(
    help="Verifiable metering: signed readings, epoch Merkle roots, proofs.", no_args_is_help=True
)

DEFAULT_DB = "out/meter/meter.sqlite"
DEFAULT_CHAIN_ID = 31337
ZERO_ADDRESS = "0x" + "00" * 20

ChainIdOpt = Annotated[int, typer.Option("--chain-id", help="EIP-712 domain chain id.")]
RegistryOpt = Annotated[
    str, typer.Option("--registry", help="MeterRegistry address (EIP-712 verifyingContract).")
]
AssetsOpt = Annotated[
    str | None, typer.Option("--asset", help="Asset id (0x+64 hex) or name; default: every asset.")
]
ServerOpt = Annotated[
    str | None,
    typer.Option("--server", help="Base URL of a drakewell server (its meter API) instead of --db."),
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", envvar="DRAKEWELL_METER_KEY", help="Meter key for --server (operator or gateway)."),
]


def _post(server: str, key: str | None, path: str, body: JsonValue = None) -> JsonMapping:
    """POST to a meter API with the key in a header; a refusal becomes a clear error."""

    if not key:
        raise ConfigError(
            "--server needs a meter key", hint="pass --key or set DRAKEWELL_METER_KEY (see drakewell serve)"
        )
    try:
        answer = httpx.post(
            server.rstrip("/") + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=120
        )
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach {server}: {exc}", hint="check --server and that it runs") from None
    if answer.status_code >= 400:
        try:
            detail = answer.json().get("detail", answer.text)
        except ValueError:
            detail = answer.text
        raise MeteringError(
            f"{server} refused POST {path} ({answer.status_code}): {detail}",
            hint="401/403: use the operator key (close) or a gateway key bound to these nodes (ingest)",
        )
    return json_object(answer.json())


def _read_json(source: str) -> JsonValue:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {source}: {exc}", hint="pass an existing JSON file or - for stdin"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{source} is not JSON: {exc}", hint="pass the JSON another meter command wrote"
        ) from None


def _as_list(obj: JsonValue) -> list[JsonValue]:
    return obj if isinstance(obj, list) else [obj]


def _domain(chain_id: int, registry: str) -> MeterDomain:
    return MeterDomain(chain_id, registry)


def _store(db: str, chain_id: int, registry: str, epoch_seconds: int, grace_s: int = 900) -> MeterStore:
    url = database_url(db)
    if "://" not in db:
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    return MeterStore(url, _domain(chain_id, registry), epoch_seconds=epoch_seconds, close_grace_s=grace_s)


@app.command()
def keygen(
    count: Annotated[int, typer.Option(help="How many node keys.")] = 1,
    out: Annotated[Path | None, typer.Option(help="Write the keys here instead of stdout.")] = None,
) -> None:
    """New node keys: [{"address", "privateKey"}]. Keep the file secret."""

    if count <= 0:
        raise ConfigError(f"--count must be > 0, got {count}", hint="e.g. --count 4")
    keys = [NodeKey.generate() for _ in range(count)]
    emit_json([{"address": k.address, "privateKey": k.hex} for k in keys], out)


@app.command()
def sign(
    readings: Annotated[str, typer.Argument(help="JSON reading or list of readings (unsigned), or -.")],
    keys: Annotated[str, typer.Option("--keys", help="JSON keys file from 'meter keygen'.")],
    chain_id: ChainIdOpt = DEFAULT_CHAIN_ID,
    registry: RegistryOpt = ZERO_ADDRESS,
    out: Annotated[Path | None, typer.Option(help="Write signed readings here instead of stdout.")] = None,
) -> None:
    """Sign readings with the key of each reading's node."""

    book: dict[str, NodeKey] = {}
    for entry in _as_list(_read_json(keys)):
        try:
            key = NodeKey.from_hex(str(json_object(entry)["privateKey"]))
        except (KeyError, TypeError, ValueError, MeteringError) as exc:
            raise ConfigError(
                f"bad key entry in {keys}: {exc}", hint="use the file 'meter keygen' wrote"
            ) from None
        book[key.address] = key
    domain = _domain(chain_id, registry)
    signed = []
    for obj in _as_list(_read_json(readings)):
        reading = Reading.from_json(obj)
        signer = book.get(reading.node)
        if signer is None:
            raise MeteringError(
                f"no key for node {reading.node} in {keys}", hint="sign with that node's key file"
            )
        signed.append(signer.sign(reading, domain).to_json())
    emit_json(signed, out)


@app.command()
def ingest(
    readings: Annotated[str, typer.Argument(help="JSON list of signed readings, or -.")],
    nodes: Annotated[
        str | None, typer.Option(help="JSON list of node descriptions to register first.")
    ] = None,
    leases: Annotated[
        str | None,
        typer.Option(
            help="JSON list of leases (lease_id, asset, gpus, start_s, end_s) to register first; "
            "readings naming an unregistered lease are refused."
        ),
    ] = None,
    db: MeterDbOpt = DEFAULT_DB,
    chain_id: ChainIdOpt = DEFAULT_CHAIN_ID,
    registry: RegistryOpt = ZERO_ADDRESS,
    epoch_seconds: EpochSecondsOpt = DEFAULT_EPOCH_SECONDS,
    batch_size: Annotated[int, typer.Option(help="Readings per transaction.")] = 5_000,
    server: ServerOpt = None,
    key: KeyOpt = None,
) -> None:
    """Verify and store signed readings; prints counts and each rejection with its reason.

    With --db, whoever can write the database file is its operator (no key); with --server the
    readings go to the meter API with --key (the operator's or a gateway's)."""

    if batch_size <= 0:
        raise ConfigError(f"--batch-size must be > 0, got {batch_size}", hint="e.g. 5000")
    if server is not None:
        if nodes is not None or leases is not None:
            raise ConfigError(
                "--nodes and --leases register on the database itself",
                hint="run them with --db on the server",
            )
        emit_json(_in_batches(_as_list(_read_json(readings)), batch_size, _sender(server, key)).to_json())
        return
    store = _store(db, chain_id, registry, epoch_seconds)
    if nodes is not None:
        store.register_nodes(NodeSpec.from_json(json_object(n)) for n in _as_list(_read_json(nodes)))
    if leases is not None:
        store.register_leases(LeaseTerms.from_json(json_object(x)) for x in _as_list(_read_json(leases)))
    emit_json(_in_batches(_as_list(_read_json(readings)), batch_size, store.ingest).to_json())


def _sender(server: str, key: str | None) -> Callable[[list[JsonValue]], IngestResult]:
    """A batch's answer from a server's meter API."""
    return lambda batch: IngestResult.from_json(_post(server, key, "/meter/readings", batch))


def _in_batches(
    items: Sequence[JsonValue], batch_size: int, ingest: Callable[[list[JsonValue]], IngestResult]
) -> IngestResult:
    """Ingest ``items`` batch by batch: the counts summed, each rejection's ``index`` its position
    in ``items``."""
    accepted = duplicates = 0
    rejected: list[Rejection] = []
    for lo in range(0, len(items), batch_size):
        result = ingest(list(items[lo : lo + batch_size]))
        accepted += result.accepted
        duplicates += result.duplicates
        rejected += [replace(r, index=r.index + lo) for r in result.rejected]
    return IngestResult(accepted, duplicates, tuple(rejected))


@app.command("close-epoch")
def close_epoch_cmd(
    asset: AssetsOpt = None,
    epoch: Annotated[int | None, typer.Option(help="Epoch number; default: every open epoch.")] = None,
    db: MeterDbOpt = DEFAULT_DB,
    chain_id: ChainIdOpt = DEFAULT_CHAIN_ID,
    registry: RegistryOpt = ZERO_ADDRESS,
    epoch_seconds: EpochSecondsOpt = DEFAULT_EPOCH_SECONDS,
    now: Annotated[
        int | None,
        typer.Option(help="Unix seconds taken as now (default: the clock); replays of past epochs pass it."),
    ] = None,
    grace_s: Annotated[
        int, typer.Option("--grace-s", help="Seconds after an epoch's end before it may close.")
    ] = 900,
    server: ServerOpt = None,
    key: KeyOpt = None,
) -> None:
    """Build the readings and deliveries Merkle trees of epochs; prints their records (roots, totals).

    An epoch closes only --grace-s seconds after it ends (late readings still get in). With no
    --epoch, open epochs that cannot close yet are left open and listed on standard error."""

    if server is not None:
        if asset is None or epoch is None:
            raise ConfigError("--server closes one epoch", hint="give --asset and --epoch")
        emit_json([_post(server, key, f"/meter/epochs/0x{asset_id(asset).hex()}/{epoch}/close")])
        return
    now_s = float(now) if now is not None else time.time()
    store = _store(db, chain_id, registry, epoch_seconds, grace_s)
    wanted = asset_id(asset) if asset is not None else None
    targets = [
        (a, e)
        for a, e in open_epochs(store)
        if (wanted is None or a == wanted) and (epoch is None or e == epoch)
    ]
    if epoch is not None and wanted is not None and not targets:
        targets = [(wanted, epoch)]  # already closed (returns its record) or empty (says so)
    records = []
    for a, e in targets:
        if epoch is None and (e + 1) * store.epoch_seconds + store.close_grace_s > now_s:
            typer.echo(
                f"epoch {e} of 0x{a.hex()} is still open (it may close from "
                f"{(e + 1) * store.epoch_seconds + store.close_grace_s})",
                err=True,
            )
            continue
        records.append(close_epoch(store, a, e, now_s=now_s).to_json())
    emit_json(records)


@app.command()
def prove(
    node: Annotated[str | None, typer.Option(help="Node address (reading proof).")] = None,
    seq: Annotated[int | None, typer.Option(help="Sequence number (reading proof).")] = None,
    lease: Annotated[int | None, typer.Option(help="Lease id (delivery proof).")] = None,
    asset: Annotated[str | None, typer.Option(help="Asset id or name (delivery proof).")] = None,
    epoch: Annotated[int | None, typer.Option(help="Epoch (delivery proof).")] = None,
    db: MeterDbOpt = DEFAULT_DB,
    chain_id: ChainIdOpt = DEFAULT_CHAIN_ID,
    registry: RegistryOpt = ZERO_ADDRESS,
    epoch_seconds: EpochSecondsOpt = DEFAULT_EPOCH_SECONDS,
) -> None:
    """Proof of one reading (--node --seq) or of one lease's delivery (--lease --asset --epoch)."""

    store = _store(db, chain_id, registry, epoch_seconds)
    if node is not None and seq is not None:
        emit_json(prove_reading(store, node, seq).to_json())
    elif lease is not None and asset is not None and epoch is not None:
        emit_json(prove_delivery(store, asset_id(asset), epoch, lease).to_json())
    else:
        raise ConfigError("say which proof", hint="give --node and --seq, or --lease, --asset and --epoch")


@app.command()
def verify(
    proof: Annotated[str, typer.Argument(help="Proof JSON from 'meter prove', or -.")],
    root: Annotated[str | None, typer.Option(help="Root to check against (e.g. the anchored one).")] = None,
    chain_id: Annotated[int | None, typer.Option("--chain-id", help="Also check the signature.")] = None,
    registry: RegistryOpt = ZERO_ADDRESS,
) -> None:
    """Check a proof off chain; prints {"valid": ...} and exits 1 when it is not."""

    read = _read_json(proof)
    obj = read if isinstance(read, dict) else {}
    target = None
    if root is not None:
        if not (root.startswith("0x") and len(root) == 66):
            raise ConfigError(
                f"--root {root!r} is not 32 bytes of hex", hint="pass 0x followed by 64 hex digits"
            )
        target = bytes.fromhex(root[2:])
    kind = obj.get("kind")
    if kind == "reading":
        domain = _domain(chain_id, registry) if chain_id is not None else None
        valid = verify_reading_proof(ReadingProof.from_json(obj), target, domain=domain)
    elif kind == "delivery":
        valid = verify_delivery_proof(DeliveryProof.from_json(obj), target)
    else:
        raise ConfigError("the JSON is not a meter proof", hint="pass the output of 'drakewell meter prove'")
    emit_json({"kind": kind, "valid": valid})
    if not valid:
        raise typer.Exit(1)


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="Parquet file to write.")],
    asset: AssetsOpt = None,
    epoch: Annotated[int | None, typer.Option(help="Epoch; default: all.")] = None,
    db: MeterDbOpt = DEFAULT_DB,
    chain_id: ChainIdOpt = DEFAULT_CHAIN_ID,
    registry: RegistryOpt = ZERO_ADDRESS,
    epoch_seconds: EpochSecondsOpt = DEFAULT_EPOCH_SECONDS,
) -> None:
    """Write stored readings to Parquet; prints the path and the row count."""

    store = _store(db, chain_id, registry, epoch_seconds)
    path = store.export_parquet(out, asset_id(asset) if asset is not None else None, epoch)

    emit_json({"path": str(path), "rows": pq.read_metadata(path).num_rows})


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Folder for keys.json, nodes.json and readings.json.")] = Path(
        "out/meter"
    ),
    ledger: Annotated[
        Path | None, typer.Option(help="Dispatch ledger (CSV or Parquet); default synthetic.")
    ] = None,
    days: Annotated[int, typer.Option(help="Days of synthetic ledger when no --ledger.")] = 1,
    gpu_nodes: Annotated[int, typer.Option(help="GPU servers.")] = 48,
    gpus_per_node: Annotated[int, typer.Option(help="GPUs per server.")] = 8,
    gpu_w: Annotated[float, typer.Option(help="IT watts per GPU (incl. server share).")] = 1_200.0,
    asic_nodes: Annotated[int, typer.Option(help="ASIC containers.")] = 10,
    asics_per_node: Annotated[int, typer.Option(help="Miners per container.")] = 100,
    asic_w: Annotated[float, typer.Option(help="Watts per miner.")] = 3_500.0,
    asic_th_s: Annotated[float, typer.Option(help="TH/s per miner.")] = 200.0,
    seed: Annotated[int, typer.Option(help="Seed of keys and noise.")] = 0,
    chain_id: ChainIdOpt = DEFAULT_CHAIN_ID,
    registry: RegistryOpt = ZERO_ADDRESS,
) -> None:
    """Turn a dispatch ledger into the signed readings of a simulated fleet."""

    params = FleetParams(gpu_nodes, gpus_per_node, gpu_w, asic_nodes, asics_per_node, asic_w, asic_th_s)
    if ledger is None:
        frame = synthetic_ledger(
            days,
            gpus=params.total_gpus,
            gpu_w=gpu_w,
            mining_it_mw=asic_nodes * asics_per_node * asic_w / 1e6,
            seed=seed,
        )
    elif ledger.suffix == ".parquet":
        frame = pd.read_parquet(ledger)
    else:
        frame = pd.read_csv(ledger, parse_dates=["interval_start_utc"])
    fleet = simulate_fleet(frame, params, _domain(chain_id, registry), seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    emit_json([{"address": a, "privateKey": k.hex} for a, k in fleet.keys.items()], out / "keys.json")
    emit_json([n.to_json() for n in fleet.nodes], out / "nodes.json")
    emit_json([s.to_json() for s in fleet.readings], out / "readings.json")
    emit_json(
        {
            "nodes": len(fleet.nodes),
            "readings": len(fleet.readings),
            "metered_energy_wh": fleet.energy_wh,
            "ledger_energy_wh": ledger_energy_wh(frame),
            "files": [str(out / f) for f in ("keys.json", "nodes.json", "readings.json")],
        }
    )
