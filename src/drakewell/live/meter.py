"""Sign what the fleet drew: one EIP-712 reading per interval from the measured telemetry.

The site's mining hall is one metering node (its key from ``[live.meter] node_key_env``). At the end
of each interval the controller hands :class:`IntervalMeter` the read-back samples of the interval
(site time, mining IT watts, TH/s); the reading's ``energyWh`` is the mean measured power × the
interval, ``hashesTh`` the mean hashrate × its seconds. ``seq`` is the interval's number since the
Unix epoch, so a restarted controller never reuses or skips one. Readings go to the meter API
(``POST …/readings`` with ``Authorization: Bearer <key>``) or straight into a local
:class:`~drakewell.metering.ingest.MeterStore`, whose ingest checks the signature, the windows and
the node's nameplate like the API does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx

from drakewell.core.jsontypes import JsonObject
from drakewell.live.config import LiveError, MeterConfig
from drakewell.metering.ingest import IngestResult, MeterStore, NodeSpec
from drakewell.metering.readings import MeterDomain, Reading, SignedReading, asset_id, epoch_of
from drakewell.metering.signing import NodeKey

__all__ = ["IntervalMeter"]


@dataclass
class IntervalMeter:
    config: MeterConfig
    key: NodeKey
    miners: int
    miner_w: float
    miner_th_s: float
    store: MeterStore | None = None

    @classmethod
    def from_config(
        cls, config: MeterConfig, *, miners: int, miner_w: float, miner_th_s: float
    ) -> IntervalMeter:
        secret = os.environ.get(config.node_key_env)
        if not secret:
            raise LiveError(
                f"no node key in ${config.node_key_env}",
                hint=f"export {config.node_key_env}=0x<64 hex digits> (the metering node's private key)",
            )
        meter = cls(config, NodeKey.from_hex(secret), miners, miner_w, miner_th_s)
        if config.store is not None:
            meter.store = MeterStore(config.store, meter.domain)
            meter.store.register_nodes([meter.node_spec])
        return meter

    @property
    def domain(self) -> MeterDomain:
        return MeterDomain(self.config.chain_id, self.config.verifying_contract)

    @property
    def node_spec(self) -> NodeSpec:
        return NodeSpec(
            address=self.key.address,
            asset=asset_id(self.config.asset),
            kind="asic",
            asic_units=self.miners,
            asic_w=self.miner_w,
            asic_th_s=self.miner_th_s,
        )

    def reading(
        self, window_start_s: int, window_end_s: int, samples: list[tuple[float, float]]
    ) -> SignedReading | None:
        """Sign the window from ``(watts, TH/s)`` samples (``None`` without samples)."""
        if not samples or window_end_s <= window_start_s:
            return None
        seconds = window_end_s - window_start_s
        mean_w = sum(w for w, _ in samples) / len(samples)
        mean_th = sum(h for _, h in samples) / len(samples)
        cap_w = self.miners * self.miner_w
        reading = Reading(
            node=self.key.address,
            asset=asset_id(self.config.asset),
            epoch=epoch_of(window_start_s),
            seq=window_start_s // seconds,
            window_start=window_start_s,
            window_end=window_end_s,
            energy_wh=round(min(mean_w, cap_w) * seconds / 3600.0),
            gpu_seconds=0,
            hashes_th=round(min(mean_th, self.miners * self.miner_th_s) * seconds),
            tokens=0,
        )
        return self.key.sign(reading, self.domain)

    def submit(self, signed: SignedReading) -> JsonObject:
        """Send one reading to the configured sink; returns the ingest answer (accepted/rejected)."""
        if self.store is not None:
            result: IngestResult = self.store.ingest([signed])
            return result.to_json()
        key = os.environ.get(self.config.key_env)
        if not key:
            raise LiveError(
                f"no meter API key in ${self.config.key_env}", hint=f"export {self.config.key_env}=<key>"
            )
        assert self.config.endpoint is not None
        answer = httpx.post(
            self.config.endpoint,
            json=[signed.to_json()],
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        if answer.status_code != 200:
            raise LiveError(
                f"the meter API answered {answer.status_code} to a reading",
                hint="check the endpoint and that the key may submit this node's readings",
            )
        body: JsonObject = answer.json()
        return body

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
