"""Ingest: every rejection reason, idempotent replays, equivocation evidence, durable storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from metering_helpers import ASIC_ASSET, DAY, EPOCH, GPU_ASSET

from drakewell.core.errors import MeteringError
from drakewell.metering.epochs import close_epoch
from drakewell.metering.ingest import MeterStore, NodeSpec, RejectReason
from drakewell.metering.readings import MeterDomain, SignedReading
from drakewell.metering.signing import NodeKey


def _reasons(result: Any) -> list[str]:
    return [str(r.reason) for r in result.rejected]


def test_valid_readings_are_stored_and_read_back(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey
) -> None:
    signed = [gpu_key.sign(make_reading(seq=s, lease_id=s % 2), domain) for s in range(1, 11)]
    result = store.ingest(signed)
    assert (result.accepted, result.duplicates, result.rejected) == (10, 0, ())
    assert store.count() == 10
    assert store.signed_readings(GPU_ASSET, EPOCH) == signed


def test_replays_are_idempotent(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey
) -> None:
    signed = [gpu_key.sign(make_reading(seq=s), domain) for s in (1, 2, 3)]
    assert store.ingest(signed).accepted == 3
    again = store.ingest([*signed, signed[0]])  # across batches and within one
    assert (again.accepted, again.duplicates, again.rejected) == (0, 4, ())
    assert store.count() == 3


def test_equivocation_is_refused_and_kept_as_evidence(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey
) -> None:
    first = gpu_key.sign(make_reading(seq=7, energy_wh=500), domain)
    second = gpu_key.sign(make_reading(seq=7, energy_wh=600), domain)
    result = store.ingest([first, second])
    assert result.accepted == 1
    assert _reasons(result) == ["equivocation"]
    assert store.ingest([second]).rejected[0].reason is RejectReason.EQUIVOCATION  # stored reading still wins
    evidence = store.equivocations()
    assert len(evidence) == 1  # the same conflicting reading is kept once
    assert evidence[0]["seq"] == 7
    assert evidence[0]["digest"] == "0x" + domain.digest(second.reading).hex()
    assert evidence[0]["existing_digest"] == "0x" + domain.digest(first.reading).hex()
    assert evidence[0]["reading"]["energyWh"] == 600
    assert store.signed_readings()[0] == first


def test_unknown_signer(store: MeterStore, domain: MeterDomain, make_reading: Any) -> None:
    stranger = NodeKey((4242).to_bytes(32, "big"))
    result = store.ingest([stranger.sign(make_reading(key=stranger), domain)])
    assert _reasons(result) == ["unknown_signer"]
    assert "not registered" in result.rejected[0].detail


def test_node_signing_for_an_asset_it_is_not_registered_for(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey
) -> None:
    result = store.ingest([gpu_key.sign(make_reading(asset=ASIC_ASSET), domain)])
    assert _reasons(result) == ["unknown_signer"]
    assert "registered for asset" in result.rejected[0].detail


def test_bad_signature(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey, asic_key: NodeKey
) -> None:
    reading = make_reading()
    by_other = asic_key.sign(reading, domain)  # a registered key, but not the reading's node
    other_domain = gpu_key.sign(reading, MeterDomain(1, domain.verifying_contract))
    tampered = SignedReading(make_reading(energy_wh=501), gpu_key.sign(reading, domain).signature)
    flipped_v = SignedReading(reading, by_other.signature[:64] + bytes([55 - by_other.signature[64]]))
    result = store.ingest([by_other, other_domain, tampered, flipped_v])
    assert _reasons(result) == ["bad_signature"] * 4
    assert store.count() == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"window_start": EPOCH * DAY - 300, "window_end": EPOCH * DAY},  # previous epoch's window
        {"window_start": (EPOCH + 1) * DAY - 300, "window_end": (EPOCH + 1) * DAY + 300},  # runs past the end
        {"epoch": EPOCH + 1},
    ],
)
def test_window_outside_its_epoch(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey, fields: dict[str, int]
) -> None:
    result = store.ingest([gpu_key.sign(make_reading(**fields), domain)])
    assert _reasons(result) == ["window_outside_epoch"]


def test_epoch_length_is_configurable(
    tmp_path: Path, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey
) -> None:
    hourly = MeterStore(f"sqlite:///{tmp_path / 'h.sqlite'}", domain, epoch_seconds=3_600)
    hourly.register_nodes([NodeSpec(gpu_key.address, GPU_ASSET, "gpu", gpus=8, gpu_w=1_000.0)])
    start = EPOCH * DAY
    ok = make_reading(epoch=start // 3_600, window_start=start, window_end=start + 300)
    day_epoch = make_reading(window_start=start, window_end=start + 300, seq=2)
    result = hourly.ingest([gpu_key.sign(ok, domain), gpu_key.sign(day_epoch, domain)])
    assert result.accepted == 1
    assert _reasons(result) == ["window_outside_epoch"]
    with pytest.raises(MeteringError, match="not positive"):
        MeterStore(f"sqlite:///{tmp_path / 'x.sqlite'}", domain, epoch_seconds=0)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"energy_wh": 700}, "exceeds the node's 8000 W"),  # 8 kW × 300 s = 666.7 Wh (+2 % = 680)
        ({"gpu_seconds": 8 * 300 + 1}, "exceed the node's 8 GPUs"),
        ({"hashes_th": 1}, "TH/s"),  # a GPU node computes no hashes
        ({"tokens": 1_800 * 5_000 + 1}, "tokens exceed"),
    ],
)
def test_beyond_physical_capacity(
    store: MeterStore,
    domain: MeterDomain,
    make_reading: Any,
    gpu_key: NodeKey,
    fields: dict[str, int],
    words: str,
) -> None:
    result = store.ingest([gpu_key.sign(make_reading(**fields), domain)])
    assert _reasons(result) == ["beyond_capacity"]
    assert words in result.rejected[0].detail


def test_capacity_headroom_accepts_nameplate(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey, asic_key: NodeKey
) -> None:
    gpu = gpu_key.sign(make_reading(energy_wh=680, gpu_seconds=2_400, tokens=2_400 * 5_000), domain)
    asic = asic_key.sign(
        make_reading(
            key=asic_key, asset=ASIC_ASSET, energy_wh=2_550, gpu_seconds=0, tokens=0, hashes_th=10 * 200 * 300
        ),
        domain,
    )
    assert store.ingest([gpu, asic]).accepted == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"seq": 2**63},  # a uint64 the store's columns cannot hold
        {"window_end": EPOCH * DAY},  # ends where it starts
        {"energy_wh": -1},
        {"asset": b"short"},
    ],
)
def test_malformed_readings(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey, fields: dict[str, Any]
) -> None:
    base = make_reading(window_start=EPOCH * DAY)
    values = {**{k: getattr(base, k) for k in base.__slots__}, **fields}
    bad = type(base)(**values)
    result = store.ingest([SignedReading(bad, b"\x01" * 64 + b"\x1b")])
    assert _reasons(result) == ["malformed"]


def test_malformed_json_items_are_rejected_one_by_one(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey
) -> None:
    good = gpu_key.sign(make_reading(seq=1), domain)
    high_v = gpu_key.sign(make_reading(seq=2), domain).to_json()
    high_v["signature"] = high_v["signature"][:-2] + "01"
    batch: list[Any] = [
        good.to_json(),
        {"node": "nope"},
        {**good.to_json(), "seq": "x"},
        high_v,
        "not an object",
    ]
    result = store.ingest(batch)
    assert result.accepted == 1
    assert [(r.index, str(r.reason)) for r in result.rejected] == [
        (1, "malformed"),
        (2, "malformed"),
        (3, "malformed"),
        (4, "malformed"),
    ]
    assert "v=1" in result.rejected[2].detail


def test_closed_epoch_takes_no_more_readings(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey
) -> None:
    store.ingest([gpu_key.sign(make_reading(seq=1), domain)])
    close_epoch(store, GPU_ASSET, EPOCH)
    late = store.ingest([gpu_key.sign(make_reading(seq=2), domain)])
    assert _reasons(late) == ["epoch_closed"]
    assert store.ingest([gpu_key.sign(make_reading(seq=1), domain)]).duplicates == 1


def test_nodes_registered_by_another_process_are_seen(
    store: MeterStore, tmp_path: Path, domain: MeterDomain, make_reading: Any
) -> None:
    newcomer = NodeKey((777).to_bytes(32, "big"))
    other = MeterStore(store.engine, domain)
    other.register_nodes([NodeSpec(newcomer.address, GPU_ASSET, "gpu", gpus=8, gpu_w=900.0)])
    assert store.ingest([newcomer.sign(make_reading(key=newcomer), domain)]).accepted == 1


def test_node_descriptions_are_checked() -> None:
    with pytest.raises(MeteringError, match="no power capacity"):
        NodeSpec("0x" + "11" * 20, GPU_ASSET, "gpu")
    with pytest.raises(MeteringError, match="kind"):
        NodeSpec("0x" + "11" * 20, GPU_ASSET, "tpu", gpus=1, gpu_w=1.0)  # type: ignore[arg-type]
    with pytest.raises(MeteringError, match="negative"):
        NodeSpec("0x" + "11" * 20, GPU_ASSET, "gpu", gpus=-1, gpu_w=1.0)
    with pytest.raises(MeteringError, match="bad node description"):
        NodeSpec.from_json({"address": "0x" + "11" * 20})
    spec = NodeSpec("0x" + "AA" * 20, GPU_ASSET, "gpu", gpus=2, gpu_w=500.0)
    assert spec.address == "0x" + "aa" * 20
    assert NodeSpec.from_json(spec.to_json()) == spec


def test_parquet_export(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey, tmp_path: Path
) -> None:
    signed = [gpu_key.sign(make_reading(seq=s, lease_id=2**100), domain) for s in (1, 2)]
    store.ingest(signed)
    path = store.export_parquet(tmp_path / "out" / "readings.parquet")
    frame = pd.read_parquet(path)
    assert list(frame["seq"]) == [1, 2]
    assert list(frame["lease_id"]) == [str(2**100)] * 2
    assert frame["signature"][0] == "0x" + signed[0].signature.hex()


def test_inlined_digest_and_batched_recovery_equal_their_references(
    store: MeterStore, domain: MeterDomain, make_reading: Any, gpu_key: NodeKey
) -> None:
    from drakewell.metering.signing import FastVerifier

    big = 2**63 - 1
    signed = [
        gpu_key.sign(make_reading(seq=s, tokens=s * 1_000, lease_id=2**256 - s), domain) for s in range(1, 6)
    ]
    signed.append(gpu_key.sign(make_reading(seq=6, lease_id=big), domain))
    forged = SignedReading(make_reading(seq=7), signed[0].signature)  # a valid signature, other reading
    result = store.ingest([*signed, forged])
    assert result.accepted == 6 and _reasons(result) == ["bad_signature"]
    frame = store.readings_frame(GPU_ASSET, EPOCH)
    assert [bytes(d) for d in frame["digest"]] == [domain.digest(s.reading) for s in signed]

    fresh = FastVerifier()
    batch = [*signed, forged]
    digests = [domain.digest(s.reading) for s in batch]
    keys = fresh.recover_many(digests, [s.signature for s in batch])
    assert keys == [fresh.recover_raw(d, s.signature) for d, s in zip(digests, batch, strict=True)]
    assert fresh.prove(gpu_key.address, keys[0]) and not fresh.prove(gpu_key.address, keys[-1])
    assert fresh.known_keys == {gpu_key.address: keys[0]}
