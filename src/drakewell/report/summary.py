"""A run's summary as records: what ``drakewell demo`` writes to ``summary.json`` and ``drakewell
serve`` answers (``/api/summary``, ``/api/assets``).

Each record's ``to_json()`` is its JSON contract: the keys in the order of its fields, each value as
written. :class:`RunSummary` is generic in its ``dispatch`` entry (the dispatch summary, a record of
a package beside this one); the demo and the API both use ``RunSummary[BacktestSummary]``. Every
entry of a run summary may be absent: the API shows a partial one (nothing loaded yet, or only a
posted backtest), and ``to_json()`` writes only the entries that were given. The capacity KPIs are
metering's JSON and stay free-form here.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from drakewell.core.jsontypes import JsonObject

__all__ = [
    "AssetRow",
    "CapacityRoot",
    "CapacitySummary",
    "ChainInfo",
    "ChallengeSize",
    "ExchangeCounts",
    "InvestorRow",
    "LeaseRow",
    "Loan",
    "MeteringCounts",
    "Record",
    "RunSummary",
    "SettlementTotals",
    "StablecoinBalances",
    "StepTime",
    "ValuationSummary",
]

DispatchT = TypeVar("DispatchT")


class Record(BaseModel):
    """A frozen record whose JSON is its fields in order (aliases as keys; unset entries left out)."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True)

    def to_json(self) -> JsonObject:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class ChainInfo(Record):
    """The chain the run settled on and its contracts' addresses."""

    backend: str
    chain_id: int
    meter_registry: str
    share: str
    escrow: str
    vault: str


class ExchangeCounts(Record):
    trades: int
    leases: int


class MeteringCounts(Record):
    """Signed readings accepted and rejected, and the epochs anchored."""

    readings: int
    rejected: int
    epochs: int


class SettlementTotals(Record):
    """Lease settlement in stablecoin base units: paid, released, charged, distributed, claimed."""

    leases: int
    settlements: int
    payments_base: int
    deposited_base: int
    released_base: int
    fees_base: int
    refunded_base: int
    distributed_base: int
    claimed_base: int
    unclaimed_base: int
    fee_bps: int


class ValuationSummary(Record):
    """The NAV posted to the oracle, the measured utilisation behind it and the DCF's assumptions."""

    nav_base: int
    nav_per_share_base: int
    monthly_cash_base: int
    annual_yield: float
    total_shares: float
    utilisation_measured: float
    assumptions: dict[str, int | float]


class Loan(Record):
    """A loan against shares, shocked by a fall in NAV and partly liquidated (base units)."""

    shocked_nav_base: int
    pledged_shares: int
    borrowed_base: int
    health_factor_before_shock: float
    health_factor_after_shock: float
    liquidation_repaid_base: int
    shares_seized: int
    debt_after_base: int
    health_factor_after_liquidation: float


class StablecoinBalances(Record):
    """Where every stablecoin base unit is at the end of the run."""

    total_supply_base: int
    balances_base: dict[str, int]


class LeaseRow(Record):
    """One escrowed lease: its terms, what it delivered and what it paid."""

    lease: int
    renter: str
    gpus: int
    price_usd_per_gpu_hour: float
    contracted_gpu_hours: float
    delivered_gpu_hours: float
    deposit_base: int
    paid_base: int


class InvestorRow(Record):
    """One investor's holding, its value at NAV and the cash it returned."""

    investor: str
    shares: float
    shares_bought: float
    value_usd: float
    claimed_usd: float
    stablecoin_usd: float  # claims, plus any loan proceeds
    yield_: float = Field(validation_alias="yield", serialization_alias="yield")
    cash_yield_annualised: float


class AssetRow(Record):
    """A tokenized asset: its GPUs, NAV and yield per share, and its holders."""

    name: str
    gpus: int
    nav_per_share_usd: float
    annual_yield: float
    holders: list[InvestorRow]


class CapacityRoot(Record):
    epoch: int
    capacityRoot: str | None


class ChallengeSize(Record):
    """A capacity challenge's size: ``n`` rows computed, ``k`` checked, nodes drawn per epoch."""

    n: int
    k: int
    per_epoch: int


class CapacitySummary(Record):
    """The run's capacity round, each asset's verified-beside-declared KPIs and the epochs' roots."""

    round: dict[str, JsonValue]
    gpu_pool: dict[str, JsonValue]
    miners: dict[str, JsonValue]
    roots: list[CapacityRoot]
    challenge: ChallengeSize


class StepTime(Record):
    name: str
    seconds: float


class RunSummary(Record, Generic[DispatchT]):
    """A run's figures: the dispatch summary, then the market's parts, the steps' timings and the
    run folder's files (``summary.json``)."""

    site: str | None = None
    days: int | None = None
    inputs: str | None = None
    dispatch: DispatchT | None = None
    chain: ChainInfo | None = None
    exchange: ExchangeCounts | None = None
    metering: MeteringCounts | None = None
    settlement: SettlementTotals | None = None
    valuation: ValuationSummary | None = None
    credit: Loan | None = None
    stablecoin: StablecoinBalances | None = None
    leases: list[LeaseRow] | None = None
    investors: list[InvestorRow] | None = None
    assets: list[AssetRow] | None = None
    capacity: CapacitySummary | None = None
    steps: list[StepTime] | None = None
    files: dict[str, str] | None = None
