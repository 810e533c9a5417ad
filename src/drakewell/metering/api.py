"""HTTP routes for metering: ingest, epochs, proofs and KPIs (a FastAPI ``APIRouter``).

Mount with ``app.include_router(router)`` and put the store on the app:
``app.state.meter_store = MeterStore(url, domain)``. Bodies and answers are the JSON shapes of
``drakewell meter`` (readings with EIP-712 field names, ``0x`` hex for bytes). Refusals are
``400`` (bad input) or ``404`` (unknown reading, lease or epoch), with the error's hint.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request

from drakewell.errors import MeteringError
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
from drakewell.metering.kpis import lease_kpis, node_kpis
from drakewell.metering.readings import asset_id

router = APIRouter(prefix="/meter", tags=["metering"])

MAX_BATCH = 50_000


def get_meter_store(request: Request) -> MeterStore:
    store = getattr(request.app.state, "meter_store", None)
    if store is None:
        raise HTTPException(503, "metering is not configured on this server (app.state.meter_store)")
    return store


StoreDep = Annotated[MeterStore, Depends(get_meter_store)]
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
    return HTTPException(404 if missing else 400, str(exc))


def _clean(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """NaN is not JSON: KPI cells without a meaning (e.g. J/TH of a GPU node) become null."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in records
    ]


@router.post("/readings")
def post_readings(store: StoreDep, readings: Annotated[list[dict[str, Any]], Body()]) -> dict[str, Any]:
    """Ingest a batch of signed readings; every refused reading comes back with its reason."""
    if len(readings) > MAX_BATCH:
        raise HTTPException(413, f"batch of {len(readings)} readings exceeds {MAX_BATCH}; split it")
    return store.ingest(readings).to_json()


@router.get("/epochs")
def get_epochs(store: StoreDep, asset: str | None = None) -> list[dict[str, Any]]:
    """Closed epochs (roots and totals), optionally of one asset."""
    return [r.to_json() for r in epoch_records(store, _asset(asset) if asset else None)]


@router.get("/epochs/{asset}/{epoch}")
def get_epoch(store: StoreDep, asset: str, epoch: EpochPath) -> dict[str, Any]:
    record = epoch_record(store, _asset(asset), epoch)
    if record is None:
        raise HTTPException(404, f"epoch {epoch} of asset {asset} is not closed")
    return record.to_json()


@router.post("/epochs/{asset}/{epoch}/close")
def post_close_epoch(store: StoreDep, asset: str, epoch: EpochPath) -> dict[str, Any]:
    """Build the epoch's trees and record its roots (idempotent)."""
    try:
        return close_epoch(store, _asset(asset), epoch).to_json()
    except MeteringError as exc:
        raise _refuse(exc) from None


@router.get("/proofs/reading/{node}/{seq}")
def get_reading_proof(store: StoreDep, node: str, seq: SeqPath) -> dict[str, Any]:
    try:
        return prove_reading(store, node, seq).to_json()
    except MeteringError as exc:
        raise _refuse(exc) from None


@router.get("/proofs/delivery/{asset}/{epoch}/{lease_id}")
def get_delivery_proof(store: StoreDep, asset: str, epoch: EpochPath, lease_id: LeasePath) -> dict[str, Any]:
    try:
        return prove_delivery(store, _asset(asset), epoch, lease_id).to_json()
    except MeteringError as exc:
        raise _refuse(exc) from None


@router.post("/proofs/verify")
def post_verify(store: StoreDep, proof: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Check a proof against its root (and, for a reading, its signature under the store's domain)."""
    try:
        if proof.get("kind") == "reading":
            valid = verify_reading_proof(ReadingProof.from_json(proof), domain=store.domain)
        elif proof.get("kind") == "delivery":
            valid = verify_delivery_proof(DeliveryProof.from_json(proof))
        else:
            raise HTTPException(400, "not a meter proof: 'kind' must be 'reading' or 'delivery'")
    except MeteringError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"kind": proof["kind"], "valid": valid}


@router.get("/kpis/nodes")
def get_node_kpis(
    store: StoreDep, asset: str | None = None, epoch: EpochQuery = None
) -> list[dict[str, Any]]:
    frame = node_kpis(
        store.readings_frame(_asset(asset) if asset else None, epoch),
        store.nodes,
        epoch_seconds=store.epoch_seconds,
    )
    return _clean(frame.to_dict("records"))


@router.get("/kpis/leases")
def get_lease_kpis(
    store: StoreDep, asset: str | None = None, epoch: EpochQuery = None
) -> list[dict[str, Any]]:
    frame = lease_kpis(
        store.readings_frame(_asset(asset) if asset else None, epoch), epoch_seconds=store.epoch_seconds
    )
    return _clean(frame.to_dict("records"))
