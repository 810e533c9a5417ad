"""Exchange assets tied to tokenized assets on chain, registered by the exchange operator.

An exchange asset is sellable capacity of one tokenized GPU pool. Only the operator registers one
(``POST /operator/assets`` with the operator key; no account's API key can), and only against an
on-chain asset: the registration names the pool's ``LeaseEscrow`` and ``ComputeShare`` addresses,
and an :class:`AssetDirectory` answers what that asset declares. :func:`register_tied_asset`
refuses the registration unless

- the escrow is a LeaseEscrow on the exchange's chain whose ``share()`` is the named share, and
  ``escrow.asset() == share.asset_id()`` (one asset id on both);
- the exchange's lease sender holds the escrow's ``MARKET_ROLE`` (its leases can be opened there);
- the GPUs registered are at most the GPUs the asset declares;
- no other exchange asset already names that escrow (checked by the engine: its capacity is
  registered once).

Where the declared GPU count comes from: the contracts keep no GPU count, so
:class:`ChainAssetDirectory` takes it from the :class:`~drakewell.chain.AssetSpec` each market was
deployed with (``Market.spec.gpus``); everything else is read from the chain. Every refusal is an
:class:`AssetRefused` with a stable ``code``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from drakewell.chain import EscrowClient, ShareClient
from drakewell.core.errors import ChainError
from drakewell.exchange.engine import Engine, OrderRejected
from drakewell.exchange.refusals import RejectCode
from drakewell.exchange.risk import Asset

if TYPE_CHECKING:
    from drakewell.chain import Chain, Market

T = TypeVar("T")


class AssetRefused(OrderRejected):
    """An asset registration does not match the asset on chain (``code`` says how)."""


@dataclass(frozen=True)
class DeclaredAsset:
    """What a tokenized asset declares: its escrow, share, asset id (hex) and GPU count."""

    escrow: str
    share: str
    asset_id: str
    gpus: int


class AssetDirectory(Protocol):
    """Answers what the on-chain asset behind an escrow declares (the seam; see the doubles)."""

    def declared(self, escrow: str, share: str) -> DeclaredAsset:
        """The asset whose LeaseEscrow is ``escrow`` and share is ``share``; raises AssetRefused."""
        ...


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _by_escrow(table: Mapping[str, T], escrow: str, code: RejectCode, message: str, hint: str) -> T:
    """What ``table`` (keyed by lower-case escrow address: addresses compare case-blind) holds for
    ``escrow``; refused with ``code`` where it holds nothing."""
    found = table.get(escrow.lower())
    if found is None:
        raise AssetRefused(code, message, hint=hint)
    return found


def _check_share(escrow: str, paid: str, share: str) -> None:
    """Refuse unless ``paid``, the share the escrow pays, is the named ``share``."""
    if not _same(paid, share):
        raise AssetRefused(
            RejectCode.SHARE_MISMATCH,
            f"escrow {escrow} pays share {paid}, not {share}",
            hint="name the share token of the same tokenized asset",
        )


class ChainAssetDirectory:
    """The markets deployed on ``chain``, read back from the chain.

    ``declared_gpus`` maps escrow addresses to the GPUs each asset declares; ``market_sender`` is
    the account the lease sink sends from (it must hold the escrow's ``MARKET_ROLE``; the deployer
    by default).
    """

    def __init__(self, chain: Chain, declared_gpus: Mapping[str, int], *, market_sender: str | None = None):
        self.chain = chain
        self.declared_gpus = {k.lower(): v for k, v in declared_gpus.items()}
        self.market_sender = market_sender or chain.deployer

    @classmethod
    def of_markets(
        cls, chain: Chain, markets: Iterable[Market], *, market_sender: str | None = None
    ) -> ChainAssetDirectory:
        """The directory of markets deployed with :meth:`drakewell.chain.Chain.deploy_market`."""
        return cls(chain, {m.escrow.address: m.spec.gpus for m in markets}, market_sender=market_sender)

    def declared(self, escrow: str, share: str) -> DeclaredAsset:

        try:
            # the embedded EVM warns (does not fail) when an address holds another contract's code
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                escrow_client = self.chain.attach("LeaseEscrow", escrow, client=EscrowClient)
                share_client = self.chain.attach("ComputeShare", share, client=ShareClient)
            if caught:
                raise ChainError(str(caught[0].message), hint="")
            escrow_share = escrow_client.share()
            escrow_asset = escrow_client.asset()
            share_asset = share_client.asset_id()
            market = escrow_client.has_role("MARKET_ROLE", self.market_sender)
        except ChainError as exc:
            raise AssetRefused(
                RejectCode.UNKNOWN_ESCROW,
                f"escrow {escrow} / share {share} are not a LeaseEscrow and ComputeShare on this chain: "
                f"{exc.message}",
                hint="name the addresses of the tokenized asset's deployed contracts",
            ) from None
        _check_share(escrow, escrow_share, share)
        if escrow_asset != share_asset:
            raise AssetRefused(
                RejectCode.ASSET_ID_MISMATCH,
                f"escrow asset id 0x{escrow_asset.hex()} differs from the share's 0x{share_asset.hex()}",
                hint="the escrow and share must belong to one tokenized asset",
            )
        if not market:
            raise AssetRefused(
                RejectCode.NOT_MARKET,
                f"the exchange's sender {self.market_sender} lacks MARKET_ROLE on escrow {escrow}",
                hint="grant it MARKET_ROLE on the escrow, so the asset's leases can be opened",
            )
        gpus = _by_escrow(
            self.declared_gpus,
            escrow,
            RejectCode.UNDECLARED_ASSET,
            f"no GPU count is declared for the asset of escrow {escrow}",
            "deploy the market with its AssetSpec and give it to the directory",
        )
        return DeclaredAsset(escrow_client.address, share_client.address, "0x" + escrow_asset.hex(), gpus)


class InMemoryAssetDirectory:
    """The in-memory double: assets declared by hand (tests, the chainless demo exchange)."""

    def __init__(self) -> None:
        self.assets: dict[str, DeclaredAsset] = {}

    def declare(self, asset: DeclaredAsset) -> DeclaredAsset:
        self.assets[asset.escrow.lower()] = asset
        return asset

    def declared(self, escrow: str, share: str) -> DeclaredAsset:
        asset = _by_escrow(
            self.assets,
            escrow,
            RejectCode.UNKNOWN_ESCROW,
            f"no tokenized asset has escrow {escrow}",
            "declare the asset first",
        )
        _check_share(escrow, asset.share, share)
        return asset


def register_tied_asset(
    engine: Engine,
    directory: AssetDirectory,
    *,
    owner: str,
    asset_id: str,
    gpu_model: str,
    region: str,
    gpus: int,
    available_from_s: int,
    available_to_s: int,
    floor_price: int,
    escrow: str,
    share: str,
) -> Asset:
    """Register capacity of the on-chain asset behind ``escrow`` for ``owner`` to sell (the operator's
    command; see the module docstring for the checks)."""
    declared = directory.declared(escrow, share)
    if isinstance(gpus, int) and gpus > declared.gpus:
        raise AssetRefused(
            RejectCode.CAPACITY_EXCEEDS_DECLARED,
            f"{gpus} GPUs exceed the {declared.gpus} GPUs the asset of escrow {declared.escrow} declares",
            hint="register at most the asset's declared GPUs",
        )
    return engine.register_asset(
        owner,
        asset_id,
        gpu_model,
        region,
        gpus,
        available_from_s,
        available_to_s,
        floor_price,
        escrow=declared.escrow,
    )


__all__ = [
    "AssetDirectory",
    "AssetRefused",
    "ChainAssetDirectory",
    "DeclaredAsset",
    "InMemoryAssetDirectory",
    "register_tied_asset",
]
