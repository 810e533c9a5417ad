"""The market half of the demo: tokenize → trade → escrow → meter → anchor → settle → claim → lend.

Kept apart from the dispatch half (:mod:`drakewell.demo`) as the pipeline of named market steps.
Every money figure here is an ``int`` of stablecoin base units, read back from the chain.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from drakewell.chain import AssetSpec, Chain, Market
from drakewell.core.units import USD, usd_to_base
from drakewell.demo.capacity import capacity_summary, run_demo_challenges
from drakewell.demo.steps import DemoLog
from drakewell.dispatch.ledger import BacktestSummary
from drakewell.exchange.assets import ChainAssetDirectory, register_tied_asset
from drakewell.exchange.book import OPEN
from drakewell.exchange.engine import Engine, hash_api_key
from drakewell.exchange.engine import Lease as ExchangeLease
from drakewell.exchange.instruments import make_instrument
from drakewell.exchange.journal import recover
from drakewell.exchange.leases import ChainLeaseSink
from drakewell.exchange.pricing import floor_price_for
from drakewell.finance import DcfAssumptions, nav_of_share, pool_ledger
from drakewell.finance.valuation import NavResult as Valuation
from drakewell.metering import LeaseTerms, MeterDomain, MeterStore, asset_id, simulate_fleet
from drakewell.metering.epochs import deliveries_of, prove_delivery
from drakewell.metering.fleet import FleetParams, SimulatedFleet
from drakewell.metering.onchain import anchor_epoch, register_signers_on_chain
from drakewell.proofs.rounds import RoundResult
from drakewell.report.rundir import RunDir
from drakewell.report.summary import (
    AssetRow,
    ChainInfo,
    ExchangeCounts,
    InvestorRow,
    LeaseRow,
    Loan,
    MeteringCounts,
    RunSummary,
    SettlementTotals,
    StablecoinBalances,
    ValuationSummary,
)
from drakewell.site import Site
from drakewell.store import sqlite_url

DemoSummary = RunSummary[BacktestSummary]
"""The demo's ``summary.json``: the dispatch summary, the market's parts, the steps and the files."""

POOL_NAME = "West Texas H100 pool A"
POOL_GPUS = 2_048
GPUS_PER_NODE = 8
ASICS_PER_NODE = 400
SHARE = 10**18
SHARE_PRICE_BASE = 1 * USD  # primary sale: $1.00 per share
POOL_VALUE_USD = 25_000 * POOL_GPUS  # ~$25k per installed H100 incl. its share of the server
INVESTORS = (("alice", 40), ("bob", 35), ("carol", 25))  # percent of the shares
BORROWER = "bob"
BORROW_PLEDGE_PERCENT = 10  # bob pledges 10% of his shares
BORROW_LTV_PERMILLE = 490  # and borrows 49% of their value (the vault allows 50%, liquidates above 65%)
PRICE_SHOCK_PERCENT = 30  # NAV falls 30%: the loan becomes unhealthy
LENDING_POOL_BASE = 10_000_000 * USD

# (buyer, instrument start offset in days, duration in hours, GPUs, limit price in USD per GPU-hour)
BUY_ORDERS = (
    ("buyer-ada", 0, 720, 384, "2.10"),
    ("buyer-ben", 0, 720, 384, "2.05"),
    ("buyer-eve", 0, 720, 512, "2.00"),
    ("buyer-cy", 7, 168, 192, "2.30"),
    ("buyer-cy", 14, 168, 192, "2.25"),
    ("buyer-dee", 0, 24 * 10, 192, "1.95"),
)
# the operator's asks per contract: a two-step ladder, so some buyers pay more than others
ASK_LADDER = (("1.90", 0.5), ("2.00", 0.5))
BUYER_DEPOSIT_BASE = 3_000_000 * USD


def trade_gpu_time(
    site: Site,
    month_start: datetime,
    hashprice_usd_per_ph_day: float,
    days: int,
    market: Market,
    journal_path: Path | None = None,
) -> Engine:
    """The month's trading on the exchange engine (the operator sells pool A's GPU time).

    Pool A is registered as the exchange operator does it: against its LeaseEscrow and share in
    ``market`` (a :class:`drakewell.chain.Market`), checked on chain, for at most its declared GPUs.
    With ``journal_path`` every command is journaled there (a fresh SQLite file), so the exchange
    can be reopened later (``drakewell serve`` shows the run's trades).
    """

    journal = None
    if journal_path is None:
        engine = Engine()
    else:
        _remove_sqlite(journal_path)
        engine, journal = recover(journal_path)
    engine.open_account("operator", hash_api_key("operator-demo-key"))
    asic = site.asic_fleets[0]
    floor = floor_price_for(
        "H100-SXM",
        hashprice_usd_per_ph_day,
        asic.unit_power_w / asic.unit_hashrate_th_s,
        pue=site.gpu_fleets[0].pue,
    )
    start_s = int(month_start.timestamp())
    register_tied_asset(
        engine,
        ChainAssetDirectory.of_markets(market.escrow.chain, [market]),
        owner="operator",
        asset_id="pool-a",
        gpu_model="H100-SXM",
        region="us-tx",
        gpus=POOL_GPUS,
        available_from_s=start_s,
        available_to_s=start_s + days * 86_400,
        floor_price=floor,
        escrow=market.escrow.address,
        share=market.share.address,
    )
    for buyer in sorted({b for b, *_ in BUY_ORDERS}):
        engine.open_account(buyer, hash_api_key(f"{buyer}-demo-key"))
        engine.deposit(buyer, BUYER_DEPOSIT_BASE)
    for buyer, offset_d, hours, gpus, limit in BUY_ORDERS:
        if offset_d >= days:
            continue  # the contract starts after the run
        hours = min(hours, (days - offset_d) * 24)  # short runs trade shorter contracts
        inst = make_instrument("H100-SXM", "us-tx", month_start + pd.Timedelta(days=offset_d), hours).id
        for price, share in ASK_LADDER:
            engine.place(
                "operator",
                inst,
                "sell",
                price=usd_to_base(price),
                qty=max(1, int(gpus * share)),
                asset="pool-a",
            )
        engine.place(buyer, inst, "buy", price=usd_to_base(limit), qty=gpus, tif="IOC")
        # the operator withdraws what the buyer did not take (that capacity stays free for mining)
        for order in list(engine.orders.values()):
            if order.account == "operator" and order.status == OPEN:
                engine.cancel("operator", order.oid)
    engine.commit()
    if journal is not None:
        journal.close()
    return engine


def _remove_sqlite(path: Path) -> None:
    """Delete a SQLite database and its WAL side files (a re-run starts afresh)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@dataclass(frozen=True)
class Window:
    """The run's month: its UTC start, its span in seconds and whole days, and its daily epochs."""

    start: datetime
    start_s: int
    end_s: int
    days: int

    @classmethod
    def of(cls, ledger: pd.DataFrame) -> Window:
        start = pd.Timestamp(ledger["interval_start_utc"].iloc[0]).to_pydatetime().astimezone(UTC)
        days = math.ceil(len(ledger) * float(ledger["hours"].iloc[0]) / 24)
        start_s = int(start.timestamp())
        return cls(start, start_s, start_s + days * 86_400, days)

    @property
    def epochs(self) -> list[int]:
        """Daily epochs touched by the window (the run need not start at 00:00 UTC)."""
        return list(range(self.start_s // 86_400, (self.end_s - 1) // 86_400 + 1))


@dataclass(frozen=True)
class Tokenized:
    """The pool's market on chain and the run's accounts by name."""

    chain: Chain
    market: Market
    accounts: dict[str, str]


@dataclass(frozen=True)
class Traded:
    """The exchange after the month's trading and the escrowed leases by on-chain id."""

    engine: Engine
    chain_leases: dict[int, ExchangeLease]


@dataclass(frozen=True)
class Metered:
    """The meter store holding the fleet's verified readings, and the capacity checks of the run."""

    store: MeterStore
    fleet: SimulatedFleet
    asic_asset: bytes
    accepted: int
    rejected: int
    capacity: RoundResult


@dataclass(frozen=True)
class Settled:
    """What settlement on proven delivery paid, and what investors claimed."""

    payments: int
    settlements: int
    claimed: int
    claimed_by: dict[str, int]
    delivered_gpu_seconds: int


@dataclass(frozen=True)
class Credit:
    """The NAV posted to the oracle, the utilisation it was valued at, and a loan taken, shocked and
    liquidated against shares (the summary's ``credit`` entry; the NAV has its own, ``valuation``)."""

    nav: Valuation
    paid_utilisation: float
    loan: Loan


def tokenize(window: Window) -> Tokenized:
    """Deploy the pool's market, allowlist the investors and sell them their shares."""
    chain = Chain.embedded(timestamp=window.start_s - 86_400)
    market = chain.deploy_market(
        AssetSpec(POOL_NAME, symbol="WTXA", gpus=POOL_GPUS, challenge_window_s=3_600)
    )
    accounts = {name: chain.new_account() for name in [n for n, _ in INVESTORS] + ["liquidator", "lender"]}
    total_shares = POOL_VALUE_USD * SHARE * USD // SHARE_PRICE_BASE
    for name, fraction in INVESTORS:
        addr = accounts[name]
        shares = total_shares * fraction // 100
        cost = shares * SHARE_PRICE_BASE // SHARE
        market.share.set_allowlisted(addr)
        market.usd.mint(addr, cost)
        market.usd.transfer(market.treasury, cost, sender=addr)  # primary sale proceeds to the issuer
        market.share.mint(addr, shares)
    market.share.set_allowlisted(accounts["liquidator"])
    return Tokenized(chain, market, accounts)


def trade(
    site: Site, window: Window, tok: Tokenized, hashprice_usd_per_ph_day: float, journal: Path
) -> Traded:
    """Buyers trade GPU-time contracts; every trade becomes a lease escrowed on chain."""
    engine = trade_gpu_time(site, window.start, hashprice_usd_per_ph_day, window.days, tok.market, journal)
    renters: dict[str, str] = {}
    for name in engine.accounts:
        if name.startswith("buyer-"):
            addr = tok.accounts.setdefault(name, tok.chain.new_account())
            renters[name] = addr
            tok.market.usd.mint(addr, BUYER_DEPOSIT_BASE)
            tok.market.usd.approve(tok.market.escrow.address, BUYER_DEPOSIT_BASE, sender=addr)
    sink = ChainLeaseSink({"pool-a": tok.market.escrow}, renters)
    return Traded(engine, {sink.open_lease(lease): lease for lease in engine.leases})


def fleet_for(site: Site, market: Market) -> FleetParams:
    """The pool's GPU servers and the site's ASIC containers, as the simulated fleet meters them."""
    gpu, asic = site.gpu_fleets[0], site.asic_fleets[0]
    n_asics = sum(f.count for f in site.asic_fleets)
    return FleetParams(
        gpu_nodes=POOL_GPUS // GPUS_PER_NODE,
        gpus_per_node=GPUS_PER_NODE,
        gpu_w=gpu.unit_power_w,
        asic_nodes=math.ceil(n_asics / ASICS_PER_NODE),
        asics_per_node=ASICS_PER_NODE,
        asic_w=asic.unit_power_w,
        asic_th_s=asic.unit_hashrate_th_s,
        gpu_asset=market.asset_id,
        asic_asset=asset_id(f"{site.name}:asic-fleet"),
    )


def meter(
    site: Site,
    ledger: pd.DataFrame,
    window: Window,
    tok: Tokenized,
    traded: Traded,
    *,
    db: Path,
    seed: int,
    log: DemoLog,
    progress: Callable[[str, int, int], None] | None = None,
) -> Metered:
    """The fleet signs hourly readings for the pool's part of the ledger; they are verified and
    stored, and the fleet's capacity is challenged while the epochs are open."""
    market = tok.market
    params = fleet_for(site, market)
    fleet_leases = [
        LeaseTerms(lid, params.gpu_asset, lz.gpus, lz.start_s, lz.end_s)
        for lid, lz in traded.chain_leases.items()
    ]
    domain = MeterDomain(tok.chain.chain_id, market.meter.address)
    windows = [
        (datetime.fromtimestamp(lz.start_s, UTC), datetime.fromtimestamp(lz.end_s, UTC), lz.gpus)
        for lz in fleet_leases
    ]
    hourly = pool_ledger(ledger, POOL_GPUS, site.gpu_count, windows)
    fleet = log.run(
        "meter: the fleet signs hourly EIP-712 readings",
        lambda: simulate_fleet(hourly, params, domain, leases=fleet_leases, seed=seed),
        lambda f: f"{len(f.readings):,} readings from {len(f.nodes)} nodes",
    )
    _remove_sqlite(db)
    store = MeterStore(sqlite_url(db), domain)

    def ingest() -> tuple[int, int]:
        store.register_nodes(fleet.nodes)
        store.register_leases(fleet.leases)  # each escrowed lease's GPUs and window, as metering sees them
        register_signers_on_chain(market.meter, [n for n in fleet.nodes if n.asset == market.asset_id])
        accepted, rejected, batch = 0, 0, 20_000
        for i in range(0, len(fleet.readings), batch):
            result = store.ingest(fleet.readings[i : i + batch])
            accepted += result.accepted
            rejected += len(result.rejected)
            if progress:
                progress("ingest", min(i + batch, len(fleet.readings)), len(fleet.readings))
        return accepted, rejected

    accepted, rejected = log.run(
        "meter: verify and store readings", ingest, lambda r: f"{r[0]:,} accepted, {r[1]} rejected"
    )
    es = store.epoch_seconds
    capacity = log.run(
        "proofs: challenge sampled GPU nodes, tally the miners' shares, per epoch",
        lambda: run_demo_challenges(
            store, fleet.nodes, range(window.start_s // es, (window.end_s - 1) // es + 1), seed=seed
        ),
        lambda r: r.line(),
    )
    return Metered(store, fleet, params.asic_asset, accepted, rejected, capacity)


def settle(
    window: Window,
    tok: Tokenized,
    traded: Traded,
    metered: Metered,
    progress: Callable[[str, int, int], None] | None = None,
) -> Settled:
    """Per day: close the epoch, anchor its roots, settle each lease on its proven delivery after the
    challenge window; then close the leases and let investors claim."""
    chain, market, store = tok.chain, tok.market, metered.store
    payments = settlements = delivered_gpu_s = 0
    epochs = window.epochs
    for done, epoch in enumerate(epochs, 1):
        epoch_end = (epoch + 1) * 86_400
        if chain.timestamp() < epoch_end + 60:
            chain.warp(epoch_end + 60)
        anchor_epoch(store, market.meter, market.asset_id, epoch)
        chain.warp(chain.timestamp() + market.spec.challenge_window_s)
        for delivery in deliveries_of(store, market.asset_id, epoch):
            proof = prove_delivery(store, market.asset_id, epoch, delivery.lease_id)
            receipt = market.escrow.settle(
                delivery.lease_id, epoch, delivery.gpu_seconds, delivery.energy_wh, proof.proof
            )
            payments += receipt.amount
            settlements += 1
            delivered_gpu_s += delivery.gpu_seconds
        if progress:
            progress("settle", done, len(epochs))
    chain.warp(max(chain.timestamp(), window.end_s + 60))
    for lid in traded.chain_leases:
        market.escrow.close(lid)
    claimed_by = {name: market.share.claim(sender=tok.accounts[name]).amount for name, _ in INVESTORS}
    return Settled(payments, settlements, sum(claimed_by.values()), claimed_by, delivered_gpu_s)


def value_and_lend(window: Window, tok: Tokenized, settled: Settled) -> Credit:
    """NAV from the verified cash flow, posted to the oracle; a loan against shares, a price shock
    and a liquidation."""
    market, accounts = tok.market, tok.accounts
    # the cash flow was earned on the GPU-hours leases paid for: its utilisation is the proven
    # leased delivery over the pool's available GPU-hours (not the site's busy share)
    paid_utilisation = settled.delivered_gpu_seconds / (POOL_GPUS * window.days * 86_400)
    nav = nav_of_share(market.share, window.days, utilisation_measured=min(max(paid_utilisation, 0.01), 1.0))
    market.vault.post_nav(nav.nav_per_share_base)
    lender = accounts["lender"]  # lends through the vault's books (a raw transfer is not counted)
    market.usd.mint(lender, LENDING_POOL_BASE)
    market.usd.approve(market.vault.address, LENDING_POOL_BASE, sender=lender)
    market.vault.supply(LENDING_POOL_BASE, sender=lender)
    borrower = accounts[BORROWER]
    pledge = market.share.balance_of(borrower) * BORROW_PLEDGE_PERCENT // 100
    market.share.approve(market.vault.address, pledge, sender=borrower)
    market.vault.deposit(pledge, sender=borrower)
    loan = pledge * nav.nav_per_share_base // SHARE * BORROW_LTV_PERMILLE // 1000
    market.vault.borrow(loan, sender=borrower)
    hf_before = market.vault.health_factor(borrower)
    shocked = nav.nav_per_share_base * (100 - PRICE_SHOCK_PERCENT) // 100
    market.vault.post_nav(shocked)
    hf_after = market.vault.health_factor(borrower)
    liquidator = accounts["liquidator"]
    repay = market.vault.debt_of(borrower) * market.spec.close_factor_bps // 10_000
    market.usd.mint(liquidator, repay)
    market.usd.approve(market.vault.address, repay, sender=liquidator)
    seized = market.vault.liquidate(borrower, repay, sender=liquidator).amount
    return Credit(
        nav=nav,
        paid_utilisation=paid_utilisation,
        loan=Loan(
            shocked_nav_base=shocked,
            pledged_shares=pledge,
            borrowed_base=loan,
            health_factor_before_shock=hf_before,
            health_factor_after_shock=hf_after,
            liquidation_repaid_base=repay,
            shares_seized=seized,
            debt_after_base=market.vault.debt_of(borrower),
            health_factor_after_liquidation=market.vault.health_factor(borrower),
        ),
    )


def run_market(
    site: Site,
    ledger: pd.DataFrame,
    *,
    out: Path,
    seed: int,
    log: DemoLog,
    hashprice_usd_per_ph_day: float = 45.0,
    progress: Callable[[str, int, int], None] | None = None,
) -> DemoSummary:
    """Tokenize, trade, meter, settle, value and lend for the month of ``ledger``: the pipeline of
    steps above, each timed by ``log``; returns the summary with its market parts (``chain`` to
    ``capacity``) given."""
    window, run_dir = Window.of(ledger), RunDir(out)
    tok = log.run(
        "tokenize: deploy the market, allowlist and sell shares",
        lambda: tokenize(window),
        lambda r: (
            f"{r.market.share.total_supply() // SHARE:,} shares of '{POOL_NAME}' to {len(INVESTORS)} "
            "investors"
        ),
    )
    traded = log.run(
        "exchange: buyers trade GPU-time contracts; trades become escrowed leases",
        lambda: trade(site, window, tok, hashprice_usd_per_ph_day, run_dir.exchange_db),
        lambda r: (
            f"{len(r.engine.trades)} trades -> {len(r.chain_leases)} leases, "
            f"${tok.market.escrow.totals()['total_deposited'] / USD:,.0f} in escrow"
        ),
    )
    metered = meter(
        site, ledger, window, tok, traded, db=run_dir.meter_db, seed=seed, log=log, progress=progress
    )
    settled = log.run(
        "settle: anchor epoch roots, settle leases on proven delivery, investors claim",
        lambda: settle(window, tok, traded, metered, progress),
        lambda r: (
            f"{len(window.epochs)} epochs anchored, {r.settlements} settlements, "
            f"${r.payments / USD:,.0f} paid, ${r.claimed / USD:,.0f} claimed"
        ),
    )
    credit = log.run(
        "value and lend: NAV to the oracle, a loan, a 30% shock, a liquidation",
        lambda: value_and_lend(window, tok, settled),
        lambda r: (
            f"NAV ${r.nav.nav_per_share_base / USD:.4f}/share, loan ${r.loan.borrowed_base / USD:,.0f}, "
            f"HF {r.loan.health_factor_before_shock:.2f} -> {r.loan.health_factor_after_shock:.2f}, "
            f"liquidator repaid ${r.loan.liquidation_repaid_base / USD:,.0f}"
        ),
    )
    return _summarize(window, tok, traded, metered, settled, credit)


def _lease_rows(market: Market, traded: Traded) -> list[LeaseRow]:
    rows = []
    for lid, lease in traded.chain_leases.items():
        on_chain = market.escrow.lease(lid)
        contracted_s = on_chain["gpus"] * (on_chain["end"] - on_chain["start"])
        rows.append(
            LeaseRow(
                lease=lid,
                renter=lease.renter,
                gpus=lease.gpus,
                price_usd_per_gpu_hour=lease.price / USD,
                contracted_gpu_hours=contracted_s / 3_600,
                delivered_gpu_hours=on_chain["delivered_gpu_seconds"] / 3_600,
                deposit_base=on_chain["deposit"],
                paid_base=on_chain["paid"],
            )
        )
    return rows


def _investor_rows(tok: Tokenized, settled: Settled, nav: Valuation, days: int) -> list[InvestorRow]:
    market, rows = tok.market, []
    supply = market.share.total_supply()
    for name, fraction in INVESTORS:
        addr = tok.accounts[name]
        shares = market.share.balance_of(addr) + market.vault.collateral(addr)
        bought = supply * fraction // 100
        cost_base = bought * SHARE_PRICE_BASE // SHARE
        claimed = settled.claimed_by[name]
        rows.append(
            InvestorRow(
                investor=name,
                shares=shares / SHARE,
                shares_bought=bought / SHARE,
                value_usd=shares * nav.nav_per_share_base // SHARE / USD,
                claimed_usd=claimed / USD,
                stablecoin_usd=market.usd.balance_of(addr) / USD,
                yield_=nav.annual_yield,
                cash_yield_annualised=claimed / max(cost_base, 1) * 365 / max(days, 1),
            )
        )
    return rows


def _summarize(
    window: Window, tok: Tokenized, traded: Traded, metered: Metered, settled: Settled, credit: Credit
) -> DemoSummary:
    chain, market, accounts, nav = tok.chain, tok.market, tok.accounts, credit.nav
    escrow_totals = market.escrow.totals()
    epochs = window.epochs
    investor_rows = _investor_rows(tok, settled, nav, len(epochs))
    # where every stablecoin base unit is at the end
    holders = {
        **accounts,
        "treasury": market.treasury,
        "escrow": market.escrow.address,
        "share contract (unclaimed revenue)": market.share.address,
        "vault": market.vault.address,
    }
    return DemoSummary(
        chain=ChainInfo(
            backend=chain.backend.name,
            chain_id=chain.chain_id,
            meter_registry=market.meter.address,
            share=market.share.address,
            escrow=market.escrow.address,
            vault=market.vault.address,
        ),
        exchange=ExchangeCounts(trades=len(traded.engine.trades), leases=len(traded.chain_leases)),
        metering=MeteringCounts(readings=metered.accepted, rejected=metered.rejected, epochs=len(epochs)),
        settlement=SettlementTotals(
            leases=len(traded.chain_leases),
            settlements=settled.settlements,
            payments_base=settled.payments,
            deposited_base=escrow_totals["total_deposited"],
            released_base=escrow_totals["total_released"],
            fees_base=escrow_totals["total_fees"],
            refunded_base=escrow_totals["total_refunded"],
            distributed_base=market.share.total_distributed(),
            claimed_base=settled.claimed,
            unclaimed_base=sum(market.share.claimable(a) for a in (*accounts.values(), market.vault.address)),
            fee_bps=market.spec.fee_bps,
        ),
        valuation=ValuationSummary(
            nav_base=nav.nav_base,
            nav_per_share_base=nav.nav_per_share_base,
            monthly_cash_base=nav.monthly_cash_base,
            annual_yield=nav.annual_yield,
            total_shares=market.share.total_supply() / SHARE,
            utilisation_measured=credit.paid_utilisation,
            assumptions=dataclasses.asdict(DcfAssumptions()),
        ),
        credit=credit.loan,
        stablecoin=StablecoinBalances(
            total_supply_base=market.usd.total_supply(),
            balances_base={name: market.usd.balance_of(addr) for name, addr in holders.items()},
        ),
        leases=_lease_rows(market, traded),
        investors=investor_rows,
        assets=[
            AssetRow(
                name=POOL_NAME,
                gpus=POOL_GPUS,
                nav_per_share_usd=nav.nav_per_share_base / USD,
                annual_yield=nav.annual_yield,
                holders=investor_rows,
            )
        ],
        capacity=capacity_summary(
            metered.store,
            metered.capacity,
            gpu_asset=market.asset_id,
            asic_asset=metered.asic_asset,
            epochs=epochs,
        ),
    )
