"""``/metrics`` of the live controller (Prometheus text, prometheus-client), next to the fleet's own.

- ``drakewell_live_price_usd_per_mwh``: the real-time price the last decision used;
- ``drakewell_live_setpoint_mw{class}`` and ``drakewell_live_measured_mw{class}``: IT MW decided and
  measured per class (``mining``, ``inference``, ``training``, ``spot``; AI classes are measured
  only where the inventory has GPUs of that role);
- ``drakewell_live_facility_cap_mw``: the cap in force (demand response, emergency; absent: none);
- ``drakewell_live_command_failures_total``: device orders not obeyed (late, refused, unreachable);
- ``drakewell_live_dr_response_seconds``: event received → fleet verified at the event's target;
- ``drakewell_live_safe_mode`` (1 in safe mode), ``drakewell_live_decision_seconds`` (histogram).

The endpoint is read-only (GET), bound to loopback by default, like the fleet exporter.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

from drakewell.fleet.metrics import FleetCollector

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from drakewell.fleet.control import Fleet

__all__ = ["LiveMetrics"]

CLASSES = ("mining", "inference", "training", "spot")


class LiveMetrics:
    def __init__(self, fleet: Fleet | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        if fleet is not None:
            self.registry.register(FleetCollector(fleet))
        r = self.registry
        self.price = Gauge(
            "drakewell_live_price_usd_per_mwh", "Real-time price of the last decision", registry=r
        )
        self.setpoint = Gauge("drakewell_live_setpoint_mw", "Decided IT MW per class", ["class"], registry=r)
        self.measured = Gauge("drakewell_live_measured_mw", "Measured IT MW per class", ["class"], registry=r)
        self.cap = Gauge("drakewell_live_facility_cap_mw", "Facility cap in force (MW)", registry=r)
        self.failures = Counter("drakewell_live_command_failures", "Device orders not obeyed", registry=r)
        self.dr_response = Histogram(
            "drakewell_live_dr_response_seconds",
            "Event received to fleet verified at target",
            buckets=(0.5, 1, 2, 3, 5, 10, 30, 60, 300, 600),
            registry=r,
        )
        self.safe_mode = Gauge("drakewell_live_safe_mode", "1 while in safe mode", registry=r)
        self.decision = Histogram(
            "drakewell_live_decision_seconds",
            "Time to decide one interval",
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2),
            registry=r,
        )

    def text(self) -> str:
        return generate_latest(self.registry).decode()

    def serve(self, host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread (read-only)."""
        return start_http_server(port, addr=host, registry=self.registry)
