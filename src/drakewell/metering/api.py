"""HTTP routes for metering: ingest, epochs, proofs and KPIs (a FastAPI ``APIRouter``).

Mount with ``app.include_router(router)`` and put the store and its keys on the app:
``app.state.meter_store = MeterStore(url, domain)``, ``app.state.meter_access =
MeterAccess.of(operator_key, gateway_keys)`` (:mod:`drakewell.metering.access`). Bodies and
answers are the JSON shapes of ``drakewell meter`` (readings with EIP-712 field names, ``0x`` hex
for bytes). Refusals are ``400`` (bad input), ``404`` (unknown reading, lease or epoch), ``409``
(an epoch not yet due to close), with the error's hint.

Who may call what:

- ``POST /meter/readings``: the operator key, or a gateway key (only for the nodes it is bound
  to; a batch with any other node's reading is refused whole, ``403``);
- ``POST /meter/epochs/{asset}/{epoch}/close``: the operator key only, and only once the epoch
  has ended plus the store's ``close_grace_s`` (by ``app.state.meter_clock``, default the clock);
- everything else (reads, ``POST /meter/proofs/verify``, which changes nothing): anyone. The
  proofs-of-capacity reads (``GET /meter/capacity``, ``/meter/kpis/capacity``,
  ``/meter/proofs/capacity/...``) only read: capacity leaves are recorded by whoever runs the
  challenges against the store (``drakewell proofs challenge --db``), never through this router.

A missing or unknown key answers ``401``, a key without the right ``403``; a server with no keys
configured refuses every write (``503``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request

from drakewell.core.errors import MeteringError, ProofError
from drakewell.core.httpguard import key_holder
from drakewell.core.jsontypes import JsonMapping
from drakewell.metering.access import Caller, MeterAccess
from drakewell.metering.capacity import (
    CapacityProof,
    capacity_epochs,
    capacity_frame,
    prove_capacity,
    verify_capacity_proof,
)
from drakewell.metering.epochs import (
    DeliveryProof,
    EpochError,
    ReadingProof,
    close_epoch,
    epoch_record,
    epoch_records,
    prove_delivery,
    prove_reading,
    verify_delivery_proof,
    verify_reading_proof,
)
from drakewell.metering.ingest import MeterStore
from drakewell.metering.kpis import capacity_kpis, capacity_totals, lease_kpis, node_kpis
from drakewell.metering.readings import asset_id

router = APIRouter(prefix="/meter", tags=["metering"])

MAX_BATCH = 50_000


def get_meter_store(request: Request) -> MeterStore:
    store = getattr(request.app.state, "meter_store", None)
    if store is None:
        raise HTTPException(503, "metering is not configured on this server (app.state.meter_store)")
    return store


StoreDep = Annotated[MeterStore, Depends(get_meter_store)]


def get_caller(request: Request) -> Caller:
    """The caller a write presents itself as (a key in a header; cookies are never read)."""
    access: MeterAccess | None = getattr(request.app.state, "meter_access", None)
    if access is None:
        raise HTTPException(
            503, "this server has no meter keys configured (app.state.meter_access), so it accepts no writes"
        )
    return key_holder(
        request.headers,
        access.caller,
        "a meter key is required: send 'Authorization: Bearer KEY' (the operator's or a gateway's)",
    )


CallerDep = Annotated[Caller, Depends(get_caller)]
INT63 = 2**63 - 1
EpochPath = Annotated[int, Path(ge=0, le=INT63)]
SeqPath = Annotated[int, Path(ge=0, le=INT63)]
LeasePath = Annotated[int, Path(ge=1, le=2**256 - 1)]
EpochQuery = Annotated[int | None, Query(ge=0, le=INT63)]


def _asset(text: str) -> bytes:
    try:
        return asset_id(text)
    except MeteringError as exc:
        raise HTTPException(400, str(exc)) from None


def _refuse(exc: MeteringError) -> HTTPException:
    missing = isinstance(exc, EpochError) and ("no stored" in exc.message or "not closed" in exc.message)
    missing = missing or (isinstance(exc, EpochError) and "has no readings" in exc.message)
    early = isinstance(exc, EpochError) and "cannot close before" in exc.message
    return HTTPException(404 if missing else 409 if early else 400, str(exc))


def _records(frame: pd.DataFrame) -> list[JsonMapping]:
    """The frame's rows as JSON objects; NaN is not JSON, so KPI cells without a meaning (e.g. J/TH
    of a GPU node) become null."""
    return [
        {str(k): (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]


@router.post("/readings")
def post_readings(
    store: StoreDep, caller: CallerDep, readings: Annotated[list[dict[str, object]], Body()]
) -> JsonMapping:
    """Ingest a batch of signed readings (operator or gateway key); every refused reading comes
    back with its reason."""
    if len(readings) > MAX_BATCH:
        raise HTTPException(413, f"batch of {len(readings)} readings exceeds {MAX_BATCH}; split it")
    if caller.nodes is not None and caller.role != "operator":
        foreign = sorted(
            {str(r.get("node", "")).lower() for r in readings if isinstance(r, dict)}
            - {n for n in caller.nodes}
        )
        if foreign:
            raise HTTPException(
                403,
                f"gateway key {caller.name!r} may not submit readings of {', '.join(foreign[:3])}"
                + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
                + "; send them through the gateway those nodes are bound to",
            )
    return store.ingest(readings).to_json()


@router.get("/epochs")
def get_epochs(store: StoreDep, asset: str | None = None) -> Sequence[JsonMapping]:
    """Closed epochs (roots and totals), optionally of one asset."""
    return [r.to_json() for r in epoch_records(store, _asset(asset) if asset else None)]


@router.get("/epochs/{asset}/{epoch}")
def get_epoch(store: StoreDep, asset: str, epoch: EpochPath) -> JsonMapping:
    record = epoch_record(store, _asset(asset), epoch)
    if record is None:
        raise HTTPException(404, f"epoch {epoch} of asset {asset} is not closed")
    return record.to_json()


@router.post("/epochs/{asset}/{epoch}/close")
def post_close_epoch(
    store: StoreDep, caller: CallerDep, request: Request, asset: str, epoch: EpochPath
) -> JsonMapping:
    """Build the epoch's trees and record its roots (operator key; idempotent; not before the
    epoch's end plus the store's grace)."""
    if caller.role != "operator":
        raise HTTPException(403, f"only the operator may close an epoch, not gateway key {caller.name!r}")
    clock = getattr(request.app.state, "meter_clock", None) or time.time
    try:
        return close_epoch(store, _asset(asset), epoch, now_s=clock()).to_json()
    except MeteringError as exc:
        raise _refuse(exc) from None


@router.get("/proofs/reading/{node}/{seq}")
def get_reading_proof(store: StoreDep, node: str, seq: SeqPath) -> JsonMapping:
    try:
        return prove_reading(store, node, seq).to_json()
    except MeteringError as exc:
        raise _refuse(exc) from None


@router.get("/proofs/delivery/{asset}/{epoch}/{lease_id}")
def get_delivery_proof(store: StoreDep, asset: str, epoch: EpochPath, lease_id: LeasePath) -> JsonMapping:
    try:
        return prove_delivery(store, _asset(asset), epoch, lease_id).to_json()
    except MeteringError as exc:
        raise _refuse(exc) from None


@router.get("/proofs/capacity/{asset}/{epoch}/{node}")
def get_capacity_proof(store: StoreDep, asset: str, epoch: EpochPath, node: str) -> JsonMapping:
    """A node's capacity leaf in a closed epoch and its path to the capacity root (for a dispute)."""
    try:
        return prove_capacity(store.engine, _asset(asset), epoch, node).to_json()
    except ProofError as exc:
        missing = "not closed" in exc.message or "no capacity leaf" in exc.message
        raise HTTPException(404 if missing else 400, str(exc)) from None
    except MeteringError as exc:
        raise HTTPException(400, str(exc)) from None


@router.post("/proofs/verify")
def post_verify(store: StoreDep, proof: Annotated[dict[str, object], Body()]) -> JsonMapping:
    """Check a proof against its root (and, for a reading, its signature under the store's domain)."""
    try:
        if proof.get("kind") == "reading":
            valid = verify_reading_proof(ReadingProof.from_json(proof), domain=store.domain)
        elif proof.get("kind") == "delivery":
            valid = verify_delivery_proof(DeliveryProof.from_json(proof))
        elif proof.get("kind") == "capacity":
            valid = verify_capacity_proof(CapacityProof.from_json(proof))
        else:
            raise HTTPException(400, "not a meter proof: 'kind' must be 'reading', 'delivery' or 'capacity'")
    except (MeteringError, ProofError) as exc:
        raise HTTPException(400, str(exc)) from None
    return {"kind": proof["kind"], "valid": valid}


@router.get("/kpis/nodes")
def get_node_kpis(
    store: StoreDep, asset: str | None = None, epoch: EpochQuery = None
) -> Sequence[JsonMapping]:
    return _records(node_kpis(_readings(store, asset, epoch), store.nodes, epoch_seconds=store.epoch_seconds))


@router.get("/kpis/leases")
def get_lease_kpis(
    store: StoreDep, asset: str | None = None, epoch: EpochQuery = None
) -> Sequence[JsonMapping]:
    leases = store.leases.values()  # the lease book: contracted GPU-hours beside the delivered ones
    return _records(lease_kpis(_readings(store, asset, epoch), leases, epoch_seconds=store.epoch_seconds))


def _readings(store: MeterStore, asset: str | None, epoch: int | None) -> pd.DataFrame:
    """The stored readings of one asset (all when ``None``) and epoch (all when ``None``)."""
    return store.readings_frame(_asset(asset) if asset else None, epoch)


def _capacity_rows(store: MeterStore, asset: bytes | None, epoch: int | None) -> pd.DataFrame:
    frame = node_kpis(store.readings_frame(asset, epoch), store.nodes, epoch_seconds=store.epoch_seconds)
    leaves = capacity_frame(store.engine, asset)
    if epoch is not None:
        leaves = leaves[leaves["epoch"] == int(epoch)]
    return capacity_kpis(frame, leaves, epoch_seconds=store.epoch_seconds)


@router.get("/kpis/capacity")
def get_capacity_kpis(
    store: StoreDep, asset: str | None = None, epoch: EpochQuery = None
) -> Sequence[JsonMapping]:
    """Per node, asset and epoch: the KPIs of :func:`get_node_kpis` with the verified values and
    challenge counts beside the declared ones (``drakewell.metering.kpis.capacity_kpis``)."""
    frame = _capacity_rows(store, _asset(asset) if asset else None, epoch)
    return _records(frame)


@router.get("/capacity")
def get_capacity(store: StoreDep, asset: str | None = None, epoch: EpochQuery = None) -> JsonMapping:
    """Proofs of capacity at a glance: every epoch with checks or a capacity root (``capacityRoot``
    is null while the epoch is open), and for one epoch (``epoch``, else the latest with checks)
    the asset's verified-beside-declared KPIs (``drakewell.metering.kpis.capacity_totals``)."""
    a = _asset(asset) if asset else None
    epochs = capacity_epochs(store.engine, a)
    if epoch is not None:
        chosen = [e for e in epochs if e["epoch"] == int(epoch)]
    else:
        chosen = [e for e in epochs if e["nodes"] > 0][-1:]
    kpis = None
    if chosen:
        pick = chosen[-1]
        rows = _capacity_rows(store, _asset(pick["asset"]), pick["epoch"])
        kpis = {
            "asset": pick["asset"],
            "epoch": pick["epoch"],
            "capacityRoot": pick["capacityRoot"],
            **capacity_totals(rows),
        }
    return {"epochs": epochs, "kpis": kpis}
