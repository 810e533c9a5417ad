"""The exchange operator's routes: register assets tied to the chain, see and retry dead letters.

Who may call them: only a request carrying the operator key in ``X-Operator-Key`` (compared in
constant time against the SHA-256 the service keeps). A missing key answers 401; a wrong one,
including any account's API key, 403; a service started without an operator key answers 403 to
everyone. Accounts cannot register capacity: an asset is registered by the operator for an owner
account, against its LeaseEscrow and ComputeShare on chain (:mod:`drakewell.exchange.assets`).

- ``POST /operator/assets``: register an asset (201, or 409 with the refusal's ``code``:
  ``unknown_escrow``, ``share_mismatch``, ``asset_id_mismatch``, ``not_market``,
  ``undeclared_asset``, ``capacity_exceeds_declared``, ``escrow_registered``, ``asset_exists``).
- ``GET /operator/dead-letters``: leases that could not be forwarded, with the reason.
- ``POST /operator/dead-letters/{lease_id}/retry``: send one again once its cause is fixed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field

from drakewell.core.errors import ExchangeError
from drakewell.exchange.assets import register_tied_asset
from drakewell.exchange.engine import MAX_PRICE, MAX_QTY
from drakewell.exchange.service import (
    AssetOut,
    ExchangeService,
    HttpRefusal,
    error_responses,
    refusal,
    service_of,
)

_operator_key = APIKeyHeader(
    name="X-Operator-Key",
    scheme_name="OperatorKeyHeader",
    auto_error=False,
    description="the exchange operator's key",
)


def _operator(request: Request, key: Annotated[str | None, Depends(_operator_key)]) -> ExchangeService:
    service = service_of(request)
    if not key:
        raise HttpRefusal(
            401, "missing_operator_key", "no X-Operator-Key header", "operator routes need the operator key"
        )
    if not service.is_operator(key):
        raise HttpRefusal(
            403,
            "not_operator",
            "this key is not the operator key",
            "only the exchange operator registers assets and handles dead letters",
        )
    return service


Operator = Annotated[ExchangeService, Depends(_operator)]
_OPERATOR = error_responses(400, 401, 403, 409, 503)

_ADDRESS = r"^0x[0-9a-fA-F]{40}$"


class OperatorAssetIn(BaseModel):
    model_config = ConfigDict(strict=True)  # JSON true/false and integers only, no coercion

    owner: str = Field(min_length=1, max_length=64, description="the account that may sell the capacity")
    asset_id: str = Field(min_length=1, max_length=80)
    gpu_model: Literal["H100-SXM", "H100-PCIE", "H200-SXM", "B200"]
    region: str = Field(min_length=1, max_length=16)
    gpus: int = Field(ge=1, le=MAX_QTY, description="at most what the asset declares")
    available_from_s: int = Field(ge=0, le=2**40)
    available_to_s: int = Field(ge=0, le=2**40)
    floor_price: int = Field(default=0, ge=0, le=MAX_PRICE)
    escrow: str = Field(pattern=_ADDRESS, description="the asset's LeaseEscrow address")
    share: str = Field(pattern=_ADDRESS, description="the asset's ComputeShare address")


class OperatorAssetOut(AssetOut):
    owner: str
    escrow: str


class DeadLetterOut(BaseModel):
    lease_id: int
    asset: str
    renter: str
    amount: int = Field(description="base units the renter paid into the lease")
    error: str
    reason: str
    attempts: int


class RetryOut(BaseModel):
    lease_id: int
    sink_lease_id: int | None


router = APIRouter(prefix="/operator", tags=["operator"])


@router.post("/assets", response_model=OperatorAssetOut, status_code=201, responses=_OPERATOR)
async def post_operator_asset(service: Operator, body: OperatorAssetIn) -> OperatorAssetOut:
    """Register capacity of a tokenized asset for its owner (operator only; checked on chain)."""
    if service.assets is None:
        raise HttpRefusal(
            409,
            "no_asset_directory",
            "this exchange has no asset directory to check registrations against",
            "start the exchange with its chain's markets",
        )
    directory = service.assets
    a = await service.command(
        lambda: register_tied_asset(
            service.engine,
            directory,
            owner=body.owner,
            asset_id=body.asset_id,
            gpu_model=body.gpu_model,
            region=body.region,
            gpus=body.gpus,
            available_from_s=body.available_from_s,
            available_to_s=body.available_to_s,
            floor_price=body.floor_price,
            escrow=body.escrow,
            share=body.share,
        )
    )
    return OperatorAssetOut.of(a, owner=a.owner, escrow=a.escrow or "")


@router.get("/dead-letters", response_model=list[DeadLetterOut], responses=_OPERATOR)
async def get_dead_letters(service: Operator) -> list[DeadLetterOut]:
    """Leases that could not be forwarded to the lease sink, oldest first, with the reason."""
    return [DeadLetterOut(**vars(d)) for d in service.forwarder.dead_letters.list()]


@router.post("/dead-letters/{lease_id}/retry", response_model=RetryOut, responses=_OPERATOR)
async def retry_dead_letter(service: Operator, lease_id: int) -> RetryOut:
    """Send a dead-lettered lease again (its cause fixed); 409 with the reason if it fails again."""
    try:
        sink_id = service.forwarder.retry(lease_id)
    except ExchangeError as exc:
        raise refusal(exc) from None
    except Exception as exc:  # the sink's own failure (a revert, an unreachable node)
        raise HttpRefusal(
            409, "retry_failed", f"lease {lease_id} failed again: {exc}", "fix the cause and retry"
        ) from None
    return RetryOut(lease_id=lease_id, sink_lease_id=sink_id)
