"""``drakewell exchange``: serve the REST API, print a book, replay a journal, open accounts, list
dead-lettered leases."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from drakewell.chain import AssetSpec, Chain
from drakewell.core.errors import ExchangeError
from drakewell.core.units import usd_to_base
from drakewell.exchange.api import ExchangeService, create_app, demo_service
from drakewell.exchange.engine import Engine, hash_api_key, tune_gc
from drakewell.exchange.journal import Journal, recover
from drakewell.exchange.journal import replay as replay_journal
from drakewell.exchange.leases import ChainLeaseSink, DeadLetterLog, LeaseForwarder

app = typer.Typer(help="The GPU-time exchange: order books, leases, marks.", no_args_is_help=True)

DEFAULT_JOURNAL = Path("out/exchange/journal.sqlite")
OPERATOR_KEY_ENV = "DRAKEWELL_EXCHANGE_OPERATOR_KEY"


def _state_digest(snapshot: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, default=str).encode()).hexdigest()


@app.command()
def serve(
    journal: Path = typer.Option(DEFAULT_JOURNAL, help="SQLite journal file (created if absent)"),
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8600, help="TCP port"),
    demo: bool = typer.Option(True, help="open two demo accounts (printed with their keys) if absent"),
    chain: bool = typer.Option(
        False, help="open every lease in a LeaseEscrow on an in-process chain (fresh each start)"
    ),
) -> None:
    """Serve the exchange API, recovering its state from the journal first.

    The operator key (X-Operator-Key: registering assets, dead letters) is read from
    $DRAKEWELL_EXCHANGE_OPERATOR_KEY, else a fresh one is printed.
    """

    import uvicorn

    journal.parent.mkdir(parents=True, exist_ok=True)

    engine, jrnl = recover(journal)
    tune_gc()
    typer.echo(f"recovered {engine.seq} commands from {journal}")
    if demo:
        service, keys = demo_service(jrnl, engine)
        for name, key in keys.items():
            typer.echo(f"demo account {name}: X-API-Key {key}")
    else:
        service = ExchangeService(engine, jrnl)
    operator_key = os.environ.get(OPERATOR_KEY_ENV)
    if not operator_key:
        operator_key = secrets.token_urlsafe(24)
        typer.echo(f"operator: X-Operator-Key {operator_key} (set ${OPERATOR_KEY_ENV} to choose it)")
    service.operator_key_hash = hash_api_key(operator_key)
    if chain:
        dead = service.forwarder.dead_letters
        service.forwarder = LeaseForwarder(engine, _embedded_chain_sink(engine), dead_letters=dead)
        service.forwarder.forward()
        typer.echo(f"embedded chain: {service.forwarder.cursor} leases opened in escrow")
    uvicorn.run(create_app(service), host=host, port=port, log_level="warning")


def _embedded_chain_sink(engine: Engine) -> ChainLeaseSink:
    """One market (stablecoin, share, meter, LeaseEscrow) per registered asset on titanoboa's EVM,
    and one chain address per account, minted its exchange balance and approving every escrow."""

    chain = Chain.embedded()
    escrows = {}
    usd_address: str | None = None
    for asset_id in engine.assets:
        market = chain.deploy_market(AssetSpec(f"exchange:{asset_id}"), usd=usd_address)
        usd_address = market.usd.address
        escrows[asset_id] = market.escrow
        usd = market.usd
    renters = {}
    for account_id, acct in engine.accounts.items():
        address = chain.new_account()
        renters[account_id] = address
        if escrows:
            usd.mint(
                address,
                acct.balance + sum(lease.amount for lease in engine.leases if lease.renter == account_id),
            )
            for escrow in escrows.values():
                usd.approve(escrow.address, 2**255, sender=address)
    return ChainLeaseSink(escrows, renters)


@app.command("open-account")
def open_account(
    account_id: str = typer.Argument(..., help="account name"),
    journal: Path = typer.Option(DEFAULT_JOURNAL, help="SQLite journal file"),
    deposit_usd: float = typer.Option(0.0, help="initial deposit in USD"),
) -> None:
    """Open an account in a journal (stop the server first) and print its new API key."""

    journal.parent.mkdir(parents=True, exist_ok=True)
    engine, jrnl = recover(journal)
    key = secrets.token_urlsafe(24)
    engine.open_account(account_id, hash_api_key(key))
    if deposit_usd > 0:
        engine.deposit(account_id, usd_to_base(deposit_usd))
    engine.commit()
    jrnl.close()
    typer.echo(f"account {account_id}: X-API-Key {key}")


@app.command()
def book(
    instrument: str = typer.Argument(..., help="e.g. H100-SXM.us-tx.2026-12-01T00Z.24h"),
    journal: Path = typer.Option(DEFAULT_JOURNAL, help="SQLite journal file"),
    depth: int = typer.Option(10, min=1, help="levels per side"),
) -> None:
    """Print an instrument's book as rebuilt from the journal."""

    if not journal.exists():
        raise ExchangeError(f"no journal at {journal}", hint="pass --journal PATH of a running exchange")
    engine = replay_journal(Journal(journal))
    b = engine.book(instrument)
    table = Table(title=f"{instrument} (micro-USD per GPU-hour)")
    for col in ("bid orders", "bid GPUs", "bid", "ask", "ask GPUs", "ask orders"):
        table.add_column(col, justify="right")
    bids, asks = b.bids.depth()[:depth], b.asks.depth()[:depth]
    for i in range(max(len(bids), len(asks))):
        bid = [str(bids[i][2]), str(bids[i][1]), str(bids[i][0])] if i < len(bids) else ["", "", ""]
        ask = [str(asks[i][0]), str(asks[i][1]), str(asks[i][2])] if i < len(asks) else ["", "", ""]
        table.add_row(*bid, *ask)
    Console().print(table)


@app.command()
def replay(
    journal: Path = typer.Argument(..., help="SQLite journal file (or database URL)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Rebuild the exchange from a journal and print what it holds (and a digest of the state)."""

    if "://" not in str(journal) and not journal.exists():
        raise ExchangeError(f"no journal at {journal}", hint="pass the path of an exchange journal file")
    t0 = time.perf_counter()
    engine = replay_journal(Journal(journal))
    elapsed = time.perf_counter() - t0
    summary = {
        "commands": engine.seq,
        "accounts": len(engine.accounts),
        "assets": len(engine.assets),
        "instruments": len(engine.instruments),
        "orders": len(engine.orders),
        "open_orders": sum(1 for o in engine.orders.values() if o.status == "open"),
        "trades": len(engine.trades),
        "leases": len(engine.leases),
        "escrow_base_units": sum(lease.amount for lease in engine.leases),
        "state_sha256": _state_digest(engine.snapshot()),
        "replay_s": round(elapsed, 3),
    }
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        for k, v in summary.items():
            typer.echo(f"{k:>18}: {v}")


@app.command("dead-letters")
def dead_letters(
    journal: Path = typer.Option(DEFAULT_JOURNAL, help="SQLite journal file (or database URL)"),
    as_json: bool = typer.Option(False, "--json", help="print them as JSON lines"),
) -> None:
    """List the leases that could not be forwarded to the chain, with the reason (oldest first)."""

    if "://" not in str(journal) and not journal.exists():
        raise ExchangeError(f"no journal at {journal}", hint="pass --journal PATH of the exchange")
    log = DeadLetterLog(journal)
    letters = log.list()
    log.close()
    if as_json:
        for letter in letters:
            typer.echo(json.dumps(dataclasses.asdict(letter)))
        return
    table = Table(title=f"dead-lettered leases ({len(letters)})")
    for col in ("lease", "asset", "renter", "amount (base units)", "error", "tries", "reason"):
        table.add_column(col, justify="right" if col in ("lease", "amount (base units)", "tries") else "left")
    for d in letters:
        table.add_row(str(d.lease_id), d.asset, d.renter, f"{d.amount:,}", d.error, str(d.attempts), d.reason)
    Console().print(table)
