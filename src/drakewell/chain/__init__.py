"""Tokenized compute on an EVM chain: the Vyper contracts and their typed Python clients.

``Chain.embedded()`` runs the contracts in process on titanoboa's EVM; ``Chain.rpc(url, key)``
talks to any EVM node over JSON-RPC; both are the same :class:`Chain`. ``chain.deploy_market(spec)``
deploys and wires one asset's set (stablecoin, ComputeShare, MeterRegistry, LeaseEscrow,
CreditVault) and returns typed clients; ``chain.deploy_distributor(token, root)`` deploys a
campaign's MerkleDistributor. Every amount is an ``int`` of base units.

Roles: the deployer is admin, operator, compliance, issuer, pauser, challenger and oracle of
every contract; grant them to others with ``grant_role`` (docs/SECURITY.md says what each may
do). Revenue routing: LeaseEscrow pays the platform fee to the treasury and distributes the rest
through ``ComputeShare.distribute``; only the escrow's deposits (it holds ``REVENUE_ROLE``) count
in ``share.total_escrow_revenue()``, the figure the NAV recipe reads. Shares deposited in
CreditVault keep earning and depositors collect it with ``vault.claim_revenue``; lenders
``supply`` stablecoin and ``redeem`` it with interest.

Challenges: an anchored epoch is final ``challenge_window_s`` after anchoring; inside the window
the challenger role may ``void_epoch`` it, after which the operator can anchor it again. The
epoch's capacity root (proofs of capacity) is anchored by a second call, ``anchor_capacity``, before
the epoch is final; ``verify_capacity`` checks a node's capacity leaf against it.
Transaction gas of a call on the embedded chain: :func:`drakewell.chain.gas.transaction_gas`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar, overload

from drakewell.chain.backends import (
    AbiArg,
    Backend,
    ContractHandle,
    ContractReverted,
    EmbeddedBackend,
    Receipt,
    RpcBackend,
)
from drakewell.core.errors import ChainError
from drakewell.core.merkle import keccak256

__all__ = [
    "AssetSpec",
    "Chain",
    "ChainError",
    "Contract",
    "ContractReverted",
    "DistributorClient",
    "EscrowClient",
    "LeaseState",
    "Market",
    "MeterClient",
    "Receipt",
    "ShareClient",
    "TokenClient",
    "VaultClient",
    "role_id",
]


def role_id(name: str) -> bytes:
    """``keccak256(name)``: the id of an access-control role such as ``"OPERATOR_ROLE"``."""
    return keccak256(name.encode())


class Contract:
    """A deployed contract: ``call`` reads, ``send`` transacts as ``sender``."""

    def __init__(self, chain: Chain, name: str, handle: ContractHandle) -> None:
        self.chain, self.name, self.handle = chain, name, handle
        self.address = handle.address

    def call(self, fn: str, *args: AbiArg) -> Any:
        """``fn(*args)``'s decoded answer (an :data:`~drakewell.chain.backends.AbiValue`: the
        Python type of the function's ABI type); the typed clients convert it."""
        return self.handle.call(fn, args)

    def send(self, fn: str, *args: AbiArg, sender: str | None = None) -> Receipt:
        return self.handle.send(fn, args, sender or self.chain.deployer)

    def grant_role(self, role: str, account: str, *, sender: str | None = None) -> Receipt:
        return self.send("grantRole", role_id(role), account, sender=sender)

    def has_role(self, role: str, account: str) -> bool:
        return bool(self.call("hasRole", role_id(role), account))


class TokenClient(Contract):
    def balance_of(self, account: str) -> int:
        return int(self.call("balanceOf", account))

    def total_supply(self) -> int:
        return int(self.call("totalSupply"))

    def transfer(self, to: str, amount: int, *, sender: str) -> Receipt:
        return self.send("transfer", to, amount, sender=sender)

    def approve(self, spender: str, amount: int, *, sender: str) -> Receipt:
        return self.send("approve", spender, amount, sender=sender)

    def mint(self, to: str, amount: int, *, sender: str | None = None) -> Receipt:
        return self.send("mint", to, amount, sender=sender)


class _Pausable(Contract):
    def pause(self, *, sender: str | None = None) -> Receipt:
        return self.send("pause", sender=sender)

    def unpause(self, *, sender: str | None = None) -> Receipt:
        return self.send("unpause", sender=sender)

    def paused(self) -> bool:
        return bool(self.call("paused"))


class ShareClient(TokenClient, _Pausable):
    def set_allowlisted(self, account: str, status: bool = True, *, sender: str | None = None) -> Receipt:
        return self.send("set_allowlisted", account, status, sender=sender)

    def set_frozen(self, account: str, status: bool = True, *, sender: str | None = None) -> Receipt:
        return self.send("set_frozen", account, status, sender=sender)

    def distribute(self, amount: int, *, sender: str) -> Receipt:
        return self.send("distribute", amount, sender=sender)

    def claimable(self, holder: str) -> int:
        return int(self.call("claimable", holder))

    def claim(self, *, sender: str) -> Receipt:
        return self.send("claim", sender=sender)

    def total_distributed(self) -> int:
        return int(self.call("total_distributed"))

    def total_claimed(self) -> int:
        return int(self.call("total_claimed"))

    def total_escrow_revenue(self) -> int:
        """Revenue deposited by the lease escrow (REVENUE_ROLE): proven delivery, paid."""
        return int(self.call("total_escrow_revenue"))

    def add_vault(self, vault: str, *, sender: str | None = None) -> Receipt:
        """Allowlist a lending vault whose collateral counts as its depositors' shares."""
        return self.send("add_vault", vault, sender=sender)

    def is_allowlisted(self, account: str) -> bool:
        return bool(self.call("allowlisted", account))

    def is_frozen(self, account: str) -> bool:
        return bool(self.call("frozen", account))

    def asset_id(self) -> bytes:
        """The bytes32 id of the asset the share tokenizes (``AssetSpec.asset_id``)."""
        return bytes(self.call("asset_id"))


class MeterClient(_Pausable):
    def set_signer(
        self, asset: bytes, signer: str, status: bool = True, *, sender: str | None = None
    ) -> Receipt:
        return self.send("set_signer", asset, signer, status, sender=sender)

    def anchor(
        self,
        asset: bytes,
        epoch: int,
        readings_root: bytes,
        deliveries_root: bytes,
        n_readings: int,
        energy_wh: int,
        gpu_seconds: int,
        *,
        sender: str | None = None,
    ) -> Receipt:
        """Anchor an epoch's roots and totals (operator role), in ``MeterRegistry.anchor``'s order."""
        values = (asset, epoch, readings_root, deliveries_root, n_readings, energy_wh, gpu_seconds)
        return self.send("anchor", *values, sender=sender)

    def anchor_capacity(
        self, asset: bytes, epoch: int, capacity_root: bytes, *, sender: str | None = None
    ) -> Receipt:
        """Anchor an anchored epoch's capacity root before it is final (operator role), once."""
        return self.send("anchor_capacity", asset, epoch, capacity_root, sender=sender)

    def capacity_root(self, asset: bytes, epoch: int) -> bytes:
        """The epoch's anchored capacity root (32 zero bytes when none is anchored)."""
        return bytes(self.call("capacity_roots", asset, epoch))

    def verify_capacity(self, leaf: Sequence[AbiArg], proof: Sequence[bytes]) -> bool:
        """A capacity leaf's values (node, asset, epoch, kind, verified/s, declared/s, passed,
        failed) are in the epoch's anchored capacity root."""
        return bool(self.call("verify_capacity", *leaf, list(proof)))

    def void_epoch(
        self, asset: bytes, epoch: int, reason: bytes = b"\x00" * 32, *, sender: str | None = None
    ) -> Receipt:
        """Challenge an anchored epoch inside its window (challenger role); it may be re-anchored."""
        return self.send("void_epoch", asset, epoch, reason, sender=sender)

    def is_final(self, asset: bytes, epoch: int) -> bool:
        return bool(self.call("is_final", asset, epoch))

    def verify_reading(self, reading: Sequence[AbiArg], signature: bytes, proof: Sequence[bytes]) -> bool:
        return bool(self.call("verify_reading", tuple(reading), signature, list(proof)))

    def verify_delivery(
        self,
        lease_id: int,
        asset: bytes,
        epoch: int,
        gpu_seconds: int,
        energy_wh: int,
        proof: Sequence[bytes],
    ) -> bool:
        return bool(self.call("verify_delivery", lease_id, asset, epoch, gpu_seconds, energy_wh, list(proof)))


class LeaseState(TypedDict):
    """A lease as ``LeaseEscrow.leases(id)`` keeps it (base units, Unix seconds, GPU-seconds)."""

    renter: str
    gpus: int
    start: int
    end: int
    price: int  # per GPU-hour
    deposit: int
    paid: int
    held: int
    delivered_gpu_seconds: int
    settled_epochs: int
    closed: bool


class EscrowClient(_Pausable):
    def open_lease(self, gpus: int, start: int, end: int, price: int, *, sender: str) -> Receipt:
        return self.send("open_lease", gpus, start, end, price, sender=sender)

    def open_lease_for(
        self, renter: str, gpus: int, start: int, end: int, price: int, *, sender: str | None = None
    ) -> int:
        """Open a traded lease funded from ``renter``'s allowance; returns the lease id."""
        lease_id = int(self.call("next_lease_id"))
        self.send("open_lease_for", renter, gpus, start, end, price, sender=sender)
        return lease_id

    def settle(
        self,
        lease_id: int,
        epoch: int,
        gpu_seconds: int,
        energy_wh: int,
        proof: Sequence[bytes],
        *,
        sender: str | None = None,
    ) -> Receipt:
        return self.send("settle", lease_id, epoch, gpu_seconds, energy_wh, list(proof), sender=sender)

    def close(self, lease_id: int, *, sender: str | None = None) -> Receipt:
        """Close an ended lease: the operator any time, the renter once its epochs are settled
        or :meth:`close_deadline` has passed."""
        return self.send("close", lease_id, sender=sender)

    def close_deadline(self, lease_id: int) -> int:
        """Unix time from which the renter may close the lease with epochs still unsettled."""
        return int(self.call("close_deadline", lease_id))

    def deliverable_gpu_seconds(self, lease_id: int, epoch: int) -> int:
        """The most GPU-seconds ``settle`` pays the lease for in ``epoch`` (gpus x overlap)."""
        return int(self.call("deliverable_gpu_seconds", lease_id, epoch))

    def lease(self, lease_id: int) -> LeaseState:
        renter, gpus, start, end, price, deposit, paid, held, delivered, settled, closed = self.call(
            "leases", lease_id
        )
        return LeaseState(
            renter=renter,
            gpus=gpus,
            start=start,
            end=end,
            price=price,
            deposit=deposit,
            paid=paid,
            held=held,
            delivered_gpu_seconds=delivered,
            settled_epochs=settled,
            closed=closed,
        )

    def share(self) -> str:
        """The address of the ComputeShare the escrow pays revenue into."""
        return str(self.call("share"))

    def asset(self) -> bytes:
        """The bytes32 id of the asset whose leases the escrow holds."""
        return bytes(self.call("asset"))

    def totals(self) -> dict[str, int]:
        return {
            k: int(self.call(k))
            for k in ("total_deposited", "total_released", "total_fees", "total_refunded")
        }


class VaultClient(_Pausable):
    def post_nav(self, nav: int, *, sender: str | None = None) -> Receipt:
        return self.send("post_nav", nav, sender=sender)

    def deposit(self, shares: int, *, sender: str) -> Receipt:
        return self.send("deposit", shares, sender=sender)

    def withdraw(self, shares: int, *, sender: str) -> Receipt:
        return self.send("withdraw", shares, sender=sender)

    def borrow(self, amount: int, *, sender: str) -> Receipt:
        return self.send("borrow", amount, sender=sender)

    def repay(self, amount: int, *, sender: str) -> Receipt:
        return self.send("repay", amount, sender=sender)

    def liquidate(self, account: str, amount: int, *, sender: str) -> Receipt:
        return self.send("liquidate", account, amount, sender=sender)

    def debt_of(self, account: str) -> int:
        return int(self.call("debt_of", account))

    def collateral(self, account: str) -> int:
        return int(self.call("collateral", account))

    def health_factor(self, account: str) -> float:
        return int(self.call("health_factor_wad", account)) / 10**18

    def revenue_claimable(self, account: str) -> int:
        """Share revenue earned by ``account``'s collateral while deposited."""
        return int(self.call("revenue_claimable", account))

    def claim_revenue(self, *, sender: str) -> Receipt:
        return self.send("claim_revenue", sender=sender)

    def supply(self, amount: int, *, sender: str) -> Receipt:
        """Lend ``amount`` of stablecoin (approve the vault first); the receipt's value is the lp minted."""
        return self.send("supply", amount, sender=sender)

    def redeem(self, lp: int, *, sender: str) -> Receipt:
        """Burn ``lp`` lender shares for their part of cash plus debt; the receipt's value is paid out."""
        return self.send("redeem", lp, sender=sender)

    def lp_shares(self, lender: str) -> int:
        return int(self.call("lp_shares", lender))

    def lp_value(self, lender: str) -> int:
        """Stablecoin ``lender``'s shares are worth now, interest included."""
        return int(self.call("lp_value", lender))

    def total_assets(self) -> int:
        return int(self.call("total_assets"))

    def total_bad_debt(self) -> int:
        return int(self.call("total_bad_debt"))


class DistributorClient(_Pausable):
    def claim(self, index: int, account: str, amount: int, proof: Sequence[bytes], *, sender: str) -> Receipt:
        return self.send("claim", index, account, amount, list(proof), sender=sender)

    def is_claimed(self, index: int) -> bool:
        return bool(self.call("is_claimed", index))


@dataclass(frozen=True)
class AssetSpec:
    """One tokenized asset and its market parameters (basis points unless stated)."""

    name: str  # e.g. "West Texas H100 pool A"
    symbol: str = "DWGPU"
    gpus: int = 2_048
    challenge_window_s: int = 3_600
    fee_bps: int = 250  # platform fee on lease payments
    holdback_bps: int = 1_000  # share of each payment held until the lease closes
    sla_bps: int = 9_500  # delivery below 95% of contracted GPU-seconds misses the SLA
    penalty_bps: int = 1_000  # penalty: 10% of the shortfall's value, paid out of the holdback
    ltv_bps: int = 5_000
    liq_threshold_bps: int = 6_500
    close_factor_bps: int = 5_000  # as Aave v3
    bonus_bps: int = 500  # as Aave v3 (~5%)
    rate_per_second_wad: int = 3_170_979_198  # ~10% a year, simple per second
    nav_max_age_s: int = 2 * 86_400
    nav_max_move_bps: int = 5_000  # the NAV moves at most 50% ...
    nav_move_period_s: int = 86_400  # ... per day, however many posts
    min_debt_base: int = 10 * 10**6  # no loan below 10 USD (dust is never worth liquidating)
    epoch_s: int = 86_400  # metering epoch length (drakewell.metering.readings.DEFAULT_EPOCH_SECONDS)
    anchor_grace_s: int = 3_600  # an epoch is anchored within this long after it ends

    @property
    def asset_id(self) -> bytes:
        return role_id(f"drakewell:asset:{self.name}")


@dataclass(frozen=True)
class Market:
    spec: AssetSpec
    usd: TokenClient
    share: ShareClient
    meter: MeterClient
    escrow: EscrowClient
    vault: VaultClient
    treasury: str

    @property
    def asset_id(self) -> bytes:
        return self.spec.asset_id


ClientT = TypeVar("ClientT", bound=Contract)


class Chain:
    """One chain, embedded or over JSON-RPC, with the deployer as the default sender."""

    def __init__(self, backend: Backend, deployer: str) -> None:
        self.backend = backend
        self.deployer = deployer

    @classmethod
    def embedded(cls, *, timestamp: int | None = None) -> Chain:
        """A fresh in-process EVM; ``timestamp`` (Unix seconds) sets its clock, e.g. to replay a month."""
        backend = EmbeddedBackend(timestamp=timestamp)
        return cls(backend, backend.new_account())

    @classmethod
    def rpc(cls, url: str, private_key: str) -> Chain:
        backend = RpcBackend(url, private_key)
        return cls(backend, str(backend.deployer.address))

    @property
    def chain_id(self) -> int:
        return self.backend.chain_id

    def new_account(self) -> str:
        return self.backend.new_account()

    def timestamp(self) -> int:
        return self.backend.timestamp()

    def warp(self, timestamp: int) -> None:
        """Move the chain's clock forward (embedded, or a dev node such as anvil)."""
        self.backend.warp(timestamp)

    @overload
    def deploy(self, contract: str, *args: AbiArg) -> Contract: ...
    @overload
    def deploy(self, contract: str, *args: AbiArg, client: type[ClientT]) -> ClientT: ...
    def deploy(self, contract: str, *args: AbiArg, client: type[Contract] = Contract) -> Contract:
        """Deploy ``contract`` with constructor ``args`` as the deployer; a ``client`` of it."""
        return client(self, contract, self.backend.deploy(contract, args, self.deployer))

    def deploy_market(
        self, spec: AssetSpec, *, usd: str | None = None, treasury: str | None = None
    ) -> Market:
        """Deploy and wire one asset's contracts; ``usd`` reuses an existing stablecoin."""
        if usd is None:
            usd_client = self.deploy("TestUSD", client=TokenClient)
        else:
            usd_client = self.attach("TestUSD", usd, client=TokenClient)
        share = self.deploy(
            "ComputeShare",
            spec.name[:25],
            spec.symbol[:5],
            usd_client.address,
            spec.asset_id,
            client=ShareClient,
        )
        meter = self.deploy("MeterRegistry", spec.challenge_window_s, client=MeterClient)
        treasury = treasury or self.deployer
        escrow = self.deploy(
            "LeaseEscrow",
            spec.asset_id,
            usd_client.address,
            share.address,
            meter.address,
            treasury,
            spec.fee_bps,
            spec.holdback_bps,
            spec.sla_bps,
            spec.penalty_bps,
            spec.epoch_s,
            spec.anchor_grace_s,
            client=EscrowClient,
        )
        vault = self.deploy(
            "CreditVault",
            share.address,
            usd_client.address,
            spec.ltv_bps,
            spec.liq_threshold_bps,
            spec.close_factor_bps,
            spec.bonus_bps,
            spec.rate_per_second_wad,
            spec.nav_max_age_s,
            spec.nav_max_move_bps,
            spec.nav_move_period_s,
            spec.min_debt_base,
            client=VaultClient,
        )
        share.add_vault(vault.address)  # the vault holds collateral; its depositors stay accountable
        share.grant_role("REVENUE_ROLE", escrow.address)  # escrow deposits count as verified revenue
        return Market(spec, usd_client, share, meter, escrow, vault, treasury)

    def deploy_distributor(self, token: str, root: bytes) -> DistributorClient:
        return self.deploy("MerkleDistributor", token, root, client=DistributorClient)

    @overload
    def attach(self, contract: str, address: str) -> Contract: ...
    @overload
    def attach(self, contract: str, address: str, client: type[ClientT]) -> ClientT: ...
    def attach(self, contract: str, address: str, client: type[Contract] = Contract) -> Contract:
        """A client of the ``contract`` (a name from ``contracts/``, e.g. ``"MeterRegistry"``)
        already deployed at ``address`` on this chain, e.g.
        ``chain.attach("MeterRegistry", addr, client=MeterClient)``.

        Raises ChainError for an unknown contract name, a malformed address or an address without code.
        """
        return client(self, contract, self.backend.attach(contract, address))
