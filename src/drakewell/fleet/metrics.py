"""The fleet in Prometheus text format (``/metrics``), with prometheus-client.

Metrics, per device (labels ``device``, ``kind`` = miner | gpu, ``model``):

* ``drakewell_device_power_watts`` — counted draw (last read-back; rated power if never read);
* ``drakewell_device_up`` — 1 if the last read-back answered;
* ``drakewell_miner_hashrate_terahashes_per_second``, ``drakewell_miner_mining`` (1 awake, 0 asleep),
  ``drakewell_device_power_limit_watts`` (miner limit or GPU cap);
* ``drakewell_gpu_energy_joules_total`` — NVML's energy counter;

and for the fleet ``drakewell_fleet_mining_power_watts`` and ``drakewell_fleet_gpu_power_watts``.

A custom collector reads :meth:`Fleet.snapshot` at scrape time. The snapshot is an immutable record
that the fleet replaces with one reference assignment, so the exporter's HTTP thread reads it without
a lock and never sees a half-updated fleet. The endpoint is read-only (GET), bound to loopback by
default; put it behind the site's monitoring network, not the internet.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from drakewell.fleet.devices import GpuReading, MinerReading

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from drakewell.fleet.control import Fleet

__all__ = ["FleetCollector", "fleet_registry", "metrics_text", "serve_metrics"]

_LABELS = ["device", "kind", "model"]
_DEVICE_GAUGES = (  # power, up, limit, hashrate, mining
    ("drakewell_device_power_watts", "Counted IT power draw of a device"),
    ("drakewell_device_up", "1 if the device answered its last read"),
    ("drakewell_device_power_limit_watts", "Miner power limit or GPU power cap"),
    ("drakewell_miner_hashrate_terahashes_per_second", "Miner hashrate"),
    ("drakewell_miner_mining", "1 if the miner is mining, 0 asleep"),
)


class FleetCollector(Collector):
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def collect(self) -> Iterator[Metric]:
        snap = self.fleet.snapshot()
        power, up, limit, hashrate, mining = (
            GaugeMetricFamily(name, documentation, labels=_LABELS) for name, documentation in _DEVICE_GAUGES
        )
        energy = CounterMetricFamily(
            "drakewell_gpu_energy_joules", "GPU energy since the NVIDIA driver loaded", labels=_LABELS
        )
        for d in snap.devices:
            labels = [d.device, d.kind, d.model]
            power.add_metric(labels, d.power_w)
            up.add_metric(labels, 1.0 if d.reachable and d.reading is not None else 0.0)
            r = d.reading
            if isinstance(r, MinerReading):
                hashrate.add_metric(labels, r.hashrate_th_s)
                mining.add_metric(labels, 1.0 if r.mining else 0.0)
                if r.power_limit_w is not None:
                    limit.add_metric(labels, r.power_limit_w)
            elif isinstance(r, GpuReading):
                limit.add_metric(labels, r.power_cap_w)
                energy.add_metric(labels, r.energy_mj / 1000.0)
        yield from (power, up, limit, hashrate, mining, energy)
        yield GaugeMetricFamily(
            "drakewell_fleet_mining_power_watts", "Counted draw of all miners", value=snap.mining_power_w
        )
        yield GaugeMetricFamily(
            "drakewell_fleet_gpu_power_watts", "Counted draw of all GPUs", value=snap.gpu_power_w
        )


def fleet_registry(fleet: Fleet) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(FleetCollector(fleet))
    return registry


def metrics_text(fleet: Fleet) -> str:
    """The Prometheus exposition text of the fleet now."""
    return generate_latest(fleet_registry(fleet)).decode()


def serve_metrics(
    fleet: Fleet, *, host: str = "127.0.0.1", port: int = 9108
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread; ``server.shutdown()`` stops it."""
    return start_http_server(port, addr=host, registry=fleet_registry(fleet))
