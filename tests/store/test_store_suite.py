"""The store's suite, run on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from drakewell.core.errors import StoreError
from drakewell.exchange.api import demo_service
from drakewell.exchange.journal import Journal, recover
from drakewell.metering import MeterDomain, MeterStore, close_epoch, simulate_fleet
from drakewell.metering.fleet import FleetParams, synthetic_ledger
from drakewell.store import open_engine

DOMAIN = MeterDomain(31337, "0x" + "22" * 20)
PARAMS = FleetParams(
    gpu_nodes=2,
    gpus_per_node=8,
    gpu_w=1_275.0,
    asic_nodes=1,
    asics_per_node=5,
    asic_w=3_645.0,
    asic_th_s=270.0,
)


def _fleet():
    ledger = synthetic_ledger(1, gpus=16, gpu_w=1_275.0, mining_it_mw=0.02, seed=4)
    return ledger, simulate_fleet(ledger, PARAMS, DOMAIN, seed=4)


def test_tables_are_created(store_url: str) -> None:
    import drakewell.exchange.journal
    import drakewell.metering.tables  # noqa: F401

    engine = open_engine(store_url)
    names = set(inspect(engine).get_table_names())
    assert {"meter_readings", "meter_nodes", "meter_epochs", "exchange_journal"} <= names
    engine.dispose()


def test_meter_readings_round_trip_and_epoch_roots_match_sqlite(store_url: str, tmp_path) -> None:
    ledger, fleet = _fleet()
    store = MeterStore(store_url, DOMAIN)
    store.register_nodes(fleet.nodes)
    result = store.ingest(fleet.readings)
    assert result.accepted == len(fleet.readings) and not result.rejected
    again = store.ingest(fleet.readings[:10])  # replays are idempotent
    assert again.duplicates == 10 and again.accepted == 0 and not again.rejected
    epoch = int(ledger["interval_start_utc"].iloc[0].timestamp()) // store.epoch_seconds
    record = close_epoch(store, PARAMS.gpu_asset, epoch)
    # the same readings in a fresh SQLite store give the same root: the backend changes nothing
    ref = MeterStore(f"sqlite:///{tmp_path / 'ref.sqlite'}", DOMAIN)
    ref.register_nodes(fleet.nodes)
    ref.ingest(fleet.readings)
    assert close_epoch(ref, PARAMS.gpu_asset, epoch).readings_root == record.readings_root
    reopened = MeterStore(store_url, DOMAIN)
    assert len(reopened.readings_frame(PARAMS.gpu_asset, epoch)) == record.n_readings
    for s in (store, ref, reopened):
        s.engine.dispose()


def test_exchange_journal_replays_to_the_same_state(store_url: str) -> None:
    engine, journal = recover(store_url)
    service, _keys = demo_service(journal, engine)
    instrument = service.listed()[0]  # the demo pool's first day
    engine.place("demo-buyer", instrument, "buy", price=1_700_000, qty=4)
    engine.place("demo-provider", instrument, "sell", price=1_600_000, qty=3, asset="demo-pool-h100")
    engine.commit()
    rebuilt, rebuilt_journal = recover(store_url)
    assert rebuilt.snapshot() == engine.snapshot()
    assert len(rebuilt.leases) == 1
    third = Journal(store_url)
    assert third.last_seq == engine.seq
    service.close()
    for j in (journal, rebuilt_journal, third):
        j.db.dispose()


def test_bad_urls_raise_store_errors_with_a_hint() -> None:
    with pytest.raises(StoreError, match="hint"):
        open_engine("nosuchdb://x")
    with pytest.raises(StoreError, match="cannot create tables"):
        open_engine("postgresql://nobody@127.0.0.1:1/none")


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "readings.json"
    path.write_text('{"not": "a database"}')
    with pytest.raises(StoreError, match="is not an SQLite database") as info:
        open_engine(f"sqlite:///{path}")
    assert "left untouched" in str(info.value)
    assert path.read_text() == '{"not": "a database"}'
