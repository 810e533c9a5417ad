"""``/metrics`` of the live controller (Prometheus text, prometheus-client), next to the fleet's own.

- ``drakewell_live_price_usd_per_mwh``: the real-time price the last decision used;
- ``drakewell_live_setpoint_mw{class}`` and ``drakewell_live_measured_mw{class}``: IT MW decided and
  measured per class (``mining``, ``inference``, ``training``, ``spot``; AI classes are measured
  only where the inventory has GPUs of that role);
- ``drakewell_live_facility_cap_mw``: the cap in force (demand response, emergency; absent: none);
- ``drakewell_live_command_failures_total``: device orders not obeyed (late, refused, unreachable);
- ``drakewell_live_dr_response_seconds``: event received → fleet verified at the event's target;
- ``drakewell_live_safe_mode`` (1 in safe mode), ``drakewell_live_decision_seconds`` (histogram).

:meth:`LiveMetrics.serve` answers ``/metrics``, ``/state.json`` (fleet state, setpoint vs measured MW
per class, recent decisions and events: ``Controller.live_state``; ``drakewell serve --live-url``
shows it on the dashboard) and ``/`` (a small live page that polls ``/state.json``). Every path is
read-only: any method but GET or HEAD is answered 405, so nothing reachable there changes the
controller. It binds to loopback by default, like the fleet exporter; put it behind the site's
monitoring network, not the internet.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, make_wsgi_app

from drakewell.core.jsontypes import JsonObject
from drakewell.fleet.metrics import FleetCollector

if TYPE_CHECKING:
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

    def app(self, state: Callable[[], JsonObject] | None = None) -> WSGIApplication:
        """The WSGI app: ``/metrics``, ``/state.json``, ``/``; GET and HEAD only."""
        prom = make_wsgi_app(self.registry)

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
            if method not in ("GET", "HEAD"):
                start_response(
                    "405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")]
                )
                return [b"read-only: GET or HEAD\n"]
            if path == "/metrics":
                return prom(environ, start_response)
            if path == "/state.json" and state is not None:
                body = json.dumps(state(), default=str).encode()
                start_response(
                    "200 OK", [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
                )
                return [body]
            if path in ("/", "/live") and state is not None:
                start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
                return [LIVE_PAGE.encode()]
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]

        return app

    def serve(
        self, host: str, port: int, state: Callable[[], JsonObject] | None = None
    ) -> tuple[WSGIServer, threading.Thread]:
        """Serve :meth:`app` on ``host:port`` from a daemon thread; ``server.shutdown()`` stops it."""
        server = make_server(host, port, self.app(state), handler_class=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True, name="live-metrics")
        thread.start()
        return server, thread


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # scrapes every few seconds: no log lines
        pass


LIVE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drakewell live site</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.3em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}.safe{color:#b00;font-weight:bold}
</style></head><body>
<h1>Drakewell live site</h1>
<p id="head">loading…</p>
<h2>Setpoint vs measured (IT MW)</h2><table id="classes"></table>
<h2>Recent decisions</h2><table id="decisions"></table>
<h2>Events</h2><table id="events"></table>
<script>
const DECISIONS = ["t", "reason", "price", "cap_mw", "mining_mw", "inference_mw", "training_mw", "spot_mw"];
const CLASSES = ["class", "setpoint_mw", "measured_mw"];
const EVENTS = ["event_id", "opt", "target_mw", "time_to_target_s", "mwh_short", "obeyed"];
function cell(v) {
  if (typeof v === "number") return v.toFixed(3);
  return v === null || v === undefined ? "" : String(v);
}
function table(id, rows, cols) {
  const t = document.getElementById(id);
  t.textContent = "";
  const h = t.insertRow();
  cols.forEach(c => { const th = document.createElement("th"); th.textContent = c; h.appendChild(th); });
  rows.forEach(r => {
    const tr = t.insertRow();
    cols.forEach(c => { tr.insertCell().textContent = cell(r[c]); });
  });
}
async function tick() {
  const head = document.getElementById("head");
  try {
    const s = await (await fetch("state.json", {cache: "no-store"})).json();
    const safe = s.safe_mode.length ? ` · SAFE MODE (${s.safe_mode.join(", ")})` : "";
    head.textContent = `site time ${s.site_time} · interval ${s.interval}`
      + ` · measured ${s.measured_facility_mw.toFixed(3)} MW`
      + ` · devices up ${s.devices_up}/${s.devices}` + safe;
    head.className = safe ? "safe" : "";
    table("classes", s.classes, CLASSES);
    table("decisions", s.decisions, DECISIONS);
    table("events", s.events, EVENTS);
  } catch (e) { head.textContent = "no answer: " + e; }
}
tick(); setInterval(tick, 2000);
</script></body></html>
"""
