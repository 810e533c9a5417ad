"""Metering tables on the shared store ``MetaData`` (SQLite by default, PostgreSQL by URL).

- ``meter_nodes``: registered nodes (signer address, asset, hardware limits);
- ``meter_readings``: accepted readings, primary key ``(node, seq)``; the EIP-712 digest is kept
  so a replay is recognised as the same reading;
- ``meter_equivocations``: a second, different reading for a taken ``(node, seq)``, kept as
  evidence (unique per conflicting digest, so re-sending it stores it once);
- ``meter_leases``: the leases readings may name: asset, GPUs and UTC window (Unix seconds);
- ``meter_epochs``: closed epochs: roots, totals, and the anchoring transaction once sent.

Integer fields are 64-bit columns: ingest refuses values above ``2**63 - 1`` (far beyond any
physical reading) before they reach the database; lease ids (``uint256``) are stored as decimal text.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from drakewell.store import metadata


def _totals() -> list[Column[int]]:
    """What a reading reports and a closed epoch sums: energy, GPU-seconds, hashes, tokens."""
    return [
        Column(name, BigInteger, nullable=False)
        for name in ("energy_wh", "gpu_seconds", "hashes_th", "tokens")
    ]


nodes = Table(
    "meter_nodes",
    metadata,
    Column("address", String(42), primary_key=True),
    Column("asset", String(66), nullable=False),
    Column("kind", String(8), nullable=False),  # "gpu" | "asic"
    Column("gpus", Integer, nullable=False),
    Column("gpu_w", Float, nullable=False),
    Column("asic_units", Integer, nullable=False),
    Column("asic_w", Float, nullable=False),
    Column("asic_th_s", Float, nullable=False),
    Column("max_tokens_per_gpu_s", Float, nullable=False),
)

readings = Table(
    "meter_readings",
    metadata,
    Column("node", String(42), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("asset", String(66), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    *_totals(),
    Column("lease_id", String(78), nullable=False),
    Column("digest", LargeBinary(32), nullable=False),
    Column("signature", LargeBinary(65), nullable=False),
    Index("ix_meter_readings_asset_epoch", "asset", "epoch"),
    Index("ix_meter_readings_node_window_end", "node", "window_end"),  # the overlap check's range scan
)

leases = Table(
    "meter_leases",
    metadata,
    Column("lease_id", String(78), primary_key=True),  # uint256 as decimal text
    Column("asset", String(66), nullable=False),
    Column("gpus", Integer, nullable=False),
    Column("start_s", BigInteger, nullable=False),
    Column("end_s", BigInteger, nullable=False),
)

equivocations = Table(
    "meter_equivocations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("node", String(42), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("digest", LargeBinary(32), nullable=False),
    Column("existing_digest", LargeBinary(32), nullable=False),
    Column("reading_json", Text, nullable=False),  # the conflicting signed reading, as sent
    Column("detected_at", Float, nullable=False),  # Unix seconds
    UniqueConstraint("node", "seq", "digest", name="uq_meter_equivocations_evidence"),
)

epochs = Table(
    "meter_epochs",
    metadata,
    Column("asset", String(66), primary_key=True),
    Column("epoch", BigInteger, primary_key=True),
    Column("epoch_seconds", Integer, nullable=False),
    Column("readings_root", LargeBinary(32), nullable=False),
    Column("deliveries_root", LargeBinary(32), nullable=False),
    Column("n_readings", Integer, nullable=False),
    Column("n_leases", Integer, nullable=False),
    *_totals(),
    Column("closed_at", Float, nullable=False),
    Column("anchor_tx", String(66), nullable=True),
)
