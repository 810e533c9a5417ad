"""The market half of the demo: tokenize → trade → escrow → meter → anchor → settle → claim → lend.

Kept apart from :mod:`drakewell.demo` so the dispatch half stays importable without the chain.
Every money figure here is an ``int`` of stablecoin base units, read back from the chain.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from drakewell.finance import DcfAssumptions, nav_of_share, pool_ledger
from drakewell.report.rundir import RunDir
from drakewell.units import USD

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
    site: Any,
    month_start: datetime,
    hashprice_usd_per_ph_day: float,
    days: int,
    market: Any,
    journal_path: Path | None = None,
) -> Any:
    """The month's trading on the exchange engine (the operator sells pool A's GPU time).

    Pool A is registered as the exchange operator does it: against its LeaseEscrow and share in
    ``market`` (a :class:`drakewell.chain.Market`), checked on chain, for at most its declared GPUs.
    With ``journal_path`` every command is journaled there (a fresh SQLite file), so the exchange
    can be reopened later (``drakewell serve`` shows the run's trades).
    """
    from drakewell.exchange.assets import ChainAssetDirectory, register_tied_asset
    from drakewell.exchange.book import OPEN
    from drakewell.exchange.engine import Engine, hash_api_key
    from drakewell.exchange.instruments import make_instrument
    from drakewell.exchange.journal import recover
    from drakewell.exchange.pricing import floor_price_for

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
                price=int(float(price) * USD),
                qty=max(1, int(gpus * share)),
                asset="pool-a",
            )
        engine.place(buyer, inst, "buy", price=int(float(limit) * USD), qty=gpus, tif="IOC")
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


def run_market(
    site: Any,
    ledger: pd.DataFrame,
    *,
    out: Path,
    seed: int,
    log: Any,
    hashprice_usd_per_ph_day: float = 45.0,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Tokenize, trade, meter, settle and lend for the month of ``ledger``; returns summary parts."""
    from drakewell.chain import AssetSpec, Chain
    from drakewell.exchange.leases import ChainLeaseSink
    from drakewell.metering import MeterDomain, MeterStore, asset_id, simulate_fleet
    from drakewell.metering.epochs import deliveries_of, prove_delivery
    from drakewell.metering.fleet import FleetParams, Lease
    from drakewell.metering.onchain import anchor_epoch, register_signers_on_chain
    from drakewell.store import sqlite_url

    month_start = pd.Timestamp(ledger["interval_start_utc"].iloc[0]).to_pydatetime().astimezone(UTC)
    start_s = int(month_start.timestamp())
    days = math.ceil(len(ledger) * float(ledger["hours"].iloc[0]) / 24)
    end_s = start_s + days * 86_400

    # 1. tokenize the pool and sell its shares to allowlisted investors
    def tokenize() -> tuple[Any, Any, dict[str, str]]:
        chain = Chain.embedded(timestamp=start_s - 86_400)
        market = chain.deploy_market(
            AssetSpec(POOL_NAME, symbol="WTXA", gpus=POOL_GPUS, challenge_window_s=3_600)
        )
        accounts = {
            name: chain.new_account() for name in [n for n, _ in INVESTORS] + ["liquidator", "lender"]
        }
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
        return chain, market, accounts

    chain, market, accounts = log.run(
        "tokenize: deploy the market, allowlist and sell shares",
        tokenize,
        lambda r: (
            f"{r[1].share.total_supply() // SHARE:,} shares of '{POOL_NAME}' to {len(INVESTORS)} investors"
        ),
    )

    # 2. trade GPU time; every trade becomes a lease escrowed on chain
    def trade() -> tuple[Any, dict[int, Any]]:
        engine = trade_gpu_time(
            site, month_start, hashprice_usd_per_ph_day, days, market, RunDir(out).exchange_db
        )
        renters: dict[str, str] = {}
        for name in engine.accounts:
            if name.startswith("buyer-"):
                addr = accounts.setdefault(name, chain.new_account())
                renters[name] = addr
                market.usd.mint(addr, BUYER_DEPOSIT_BASE)
                market.usd.approve(market.escrow.address, BUYER_DEPOSIT_BASE, sender=addr)
        sink = ChainLeaseSink({"pool-a": market.escrow}, renters)
        chain_leases = {sink.open_lease(lease): lease for lease in engine.leases}
        return engine, chain_leases

    engine, chain_leases = log.run(
        "exchange: buyers trade GPU-time contracts; trades become escrowed leases",
        trade,
        lambda r: (
            f"{len(r[0].trades)} trades -> {len(r[1])} leases, "
            f"${market.escrow.totals()['total_deposited'] / USD:,.0f} in escrow"
        ),
    )

    # 3. the simulated fleet signs readings; ingest and verify them
    gpu = site.gpu_fleets[0]
    asic = site.asic_fleets[0]
    n_asics = sum(f.count for f in site.asic_fleets)
    params = FleetParams(
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
    fleet_leases = {
        lid: Lease(
            lease.gpus, datetime.fromtimestamp(lease.start_s, UTC), datetime.fromtimestamp(lease.end_s, UTC)
        )
        for lid, lease in chain_leases.items()
    }
    domain = MeterDomain(chain.chain_id, market.meter.address)
    hourly = pool_ledger(
        ledger,
        POOL_GPUS,
        site.gpu_count,
        [(lz.start_utc, lz.end_utc, lz.gpus) for lz in fleet_leases.values()],
    )
    fleet = log.run(
        "meter: the fleet signs hourly EIP-712 readings",
        lambda: simulate_fleet(hourly, params, domain, leases=fleet_leases, seed=seed),
        lambda f: f"{len(f.readings):,} readings from {len(f.nodes)} nodes",
    )
    db = RunDir(out).meter_db
    _remove_sqlite(db)
    store = MeterStore(sqlite_url(db), domain)

    def ingest() -> Any:
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
    capacity_round = _prove_capacity(store, fleet.nodes, start_s, end_s, seed, log)

    # 4. per day: close the epoch, anchor its roots, and settle each lease after the challenge window
    epochs = list(range(start_s // 86_400, (end_s - 1) // 86_400 + 1))  # the run need not start at 00:00 UTC

    def settle_all() -> dict[str, Any]:
        payments = 0
        settlements = 0
        delivered_gpu_s = 0
        for epoch in epochs:
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
                payments += int(receipt.value)
                settlements += 1
                delivered_gpu_s += delivery.gpu_seconds
            if progress:
                progress("settle", epochs.index(epoch) + 1, len(epochs))
        chain.warp(max(chain.timestamp(), end_s + 60))
        for lid in chain_leases:
            market.escrow.close(lid)
        claimed_by = {name: int(market.share.claim(sender=accounts[name]).value) for name, _ in INVESTORS}
        return {
            "payments": payments,
            "settlements": settlements,
            "claimed": sum(claimed_by.values()),
            "claimed_by": claimed_by,
            "delivered_gpu_seconds": delivered_gpu_s,
        }

    settled = log.run(
        "settle: anchor epoch roots, settle leases on proven delivery, investors claim",
        settle_all,
        lambda r: (
            f"{len(epochs)} epochs anchored, {r['settlements']} settlements, "
            f"${r['payments'] / USD:,.0f} paid, ${r['claimed'] / USD:,.0f} claimed"
        ),
    )

    # 5. NAV from verified cash flow, posted to the oracle; a loan, a shock and a liquidation
    def value_and_lend() -> dict[str, Any]:
        # the cash flow was earned on the GPU-hours leases paid for: its utilisation is the proven
        # leased delivery over the pool's available GPU-hours (not the site's busy share)
        paid_utilisation = settled["delivered_gpu_seconds"] / (POOL_GPUS * days * 86_400)
        nav = nav_of_share(market.share, days, utilisation_measured=min(max(paid_utilisation, 0.01), 1.0))
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
        debt = market.vault.debt_of(borrower)
        repay = debt * market.spec.close_factor_bps // 10_000
        market.usd.mint(liquidator, repay)
        market.usd.approve(market.vault.address, repay, sender=liquidator)
        seized = int(market.vault.liquidate(borrower, repay, sender=liquidator).value)
        return {
            "nav": nav,
            "paid_utilisation": paid_utilisation,
            "shocked_nav_base": shocked,
            "pledged_shares": pledge,
            "borrowed_base": loan,
            "health_factor_before_shock": hf_before,
            "health_factor_after_shock": hf_after,
            "liquidation_repaid_base": repay,
            "shares_seized": seized,
            "debt_after_base": market.vault.debt_of(borrower),
            "health_factor_after_liquidation": market.vault.health_factor(borrower),
        }

    credit = log.run(
        "value and lend: NAV to the oracle, a loan, a 30% shock, a liquidation",
        value_and_lend,
        lambda r: (
            f"NAV ${r['nav'].nav_per_share_base / USD:.4f}/share, loan ${r['borrowed_base'] / USD:,.0f}, "
            f"HF {r['health_factor_before_shock']:.2f} -> {r['health_factor_after_shock']:.2f}, "
            f"liquidator repaid ${r['liquidation_repaid_base'] / USD:,.0f}"
        ),
    )
    summary = _summarize(
        chain, market, accounts, engine, chain_leases, accepted, rejected, epochs, settled, credit
    )
    from drakewell.demo_capacity import capacity_summary

    summary["capacity"] = capacity_summary(
        store, capacity_round, gpu_asset=market.asset_id, asic_asset=params.asic_asset, epochs=epochs
    )
    return summary


def _prove_capacity(store: Any, nodes: Any, start_s: int, end_s: int, seed: int, log: Any) -> Any:
    """Proofs of capacity on the simulated fleet, while its epochs are open (drakewell.demo_capacity)."""
    from drakewell.demo_capacity import run_demo_challenges

    es = store.epoch_seconds
    return log.run(
        "proofs: challenge sampled GPU nodes, tally the miners' shares, per epoch",
        lambda: run_demo_challenges(store, nodes, range(start_s // es, (end_s - 1) // es + 1), seed=seed),
        lambda r: r.line(),
    )


def _summarize(
    chain: Any,
    market: Any,
    accounts: dict[str, str],
    engine: Any,
    chain_leases: dict[int, Any],
    accepted: int,
    rejected: int,
    epochs: list[int],
    settled: dict[str, Any],
    credit: dict[str, Any],
) -> dict[str, Any]:
    nav = credit["nav"]
    escrow_totals = market.escrow.totals()
    lease_rows = []
    for lid, lease in chain_leases.items():
        on_chain = market.escrow.lease(lid)
        contracted_s = on_chain["gpus"] * (on_chain["end"] - on_chain["start"])
        lease_rows.append(
            {
                "lease": lid,
                "renter": lease.renter,
                "gpus": lease.gpus,
                "price_usd_per_gpu_hour": lease.price / USD,
                "contracted_gpu_hours": contracted_s / 3_600,
                "delivered_gpu_hours": on_chain["delivered_gpu_seconds"] / 3_600,
                "deposit_base": on_chain["deposit"],
                "paid_base": on_chain["paid"],
            }
        )
    investor_rows = []
    supply = market.share.total_supply()
    for name, fraction in INVESTORS:
        addr = accounts[name]
        shares = market.share.balance_of(addr) + market.vault.collateral(addr)
        bought = supply * fraction // 100
        cost_base = bought * SHARE_PRICE_BASE // SHARE
        claimed = settled["claimed_by"][name]
        investor_rows.append(
            {
                "investor": name,
                "shares": shares / SHARE,
                "shares_bought": bought / SHARE,
                "value_usd": shares * nav.nav_per_share_base // SHARE / USD,
                "claimed_usd": claimed / USD,
                "stablecoin_usd": market.usd.balance_of(addr) / USD,  # claims, plus any loan proceeds
                "yield": nav.annual_yield,
                "cash_yield_annualised": claimed / max(cost_base, 1) * 365 / max(len(epochs), 1),
            }
        )
    # where every stablecoin base unit is at the end
    holders = {
        **{name: addr for name, addr in accounts.items()},
        "treasury": market.treasury,
        "escrow": market.escrow.address,
        "share contract (unclaimed revenue)": market.share.address,
        "vault": market.vault.address,
    }
    balances = {name: market.usd.balance_of(addr) for name, addr in holders.items()}
    return {
        "chain": {
            "backend": chain.backend.name,
            "chain_id": chain.chain_id,
            "meter_registry": market.meter.address,
            "share": market.share.address,
            "escrow": market.escrow.address,
            "vault": market.vault.address,
        },
        "exchange": {"trades": len(engine.trades), "leases": len(chain_leases)},
        "metering": {"readings": accepted, "rejected": rejected, "epochs": len(epochs)},
        "settlement": {
            "leases": len(chain_leases),
            "settlements": settled["settlements"],
            "payments_base": settled["payments"],
            "deposited_base": escrow_totals["total_deposited"],
            "released_base": escrow_totals["total_released"],
            "fees_base": escrow_totals["total_fees"],
            "refunded_base": escrow_totals["total_refunded"],
            "distributed_base": market.share.total_distributed(),
            "claimed_base": settled["claimed"],
            "unclaimed_base": sum(
                market.share.claimable(a) for a in (*accounts.values(), market.vault.address)
            ),
            "fee_bps": market.spec.fee_bps,
        },
        "valuation": {
            "nav_base": nav.nav_base,
            "nav_per_share_base": nav.nav_per_share_base,
            "monthly_cash_base": nav.monthly_cash_base,
            "annual_yield": nav.annual_yield,
            "total_shares": supply / SHARE,
            "utilisation_measured": credit["paid_utilisation"],
            "assumptions": dataclasses.asdict(DcfAssumptions()),
        },
        "credit": {k: v for k, v in credit.items() if k not in ("nav", "paid_utilisation")},
        "stablecoin": {"total_supply_base": market.usd.total_supply(), "balances_base": balances},
        "leases": lease_rows,
        "investors": investor_rows,
        "assets": [
            {
                "name": POOL_NAME,
                "gpus": POOL_GPUS,
                "nav_per_share_usd": nav.nav_per_share_base / USD,
                "annual_yield": nav.annual_yield,
                "holders": investor_rows,
            }
        ],
    }
