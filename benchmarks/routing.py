"""Routing benchmark: policies on an emerging-market fleet at 80% load with bursts, decision time,
and gateway overhead on loopback.

**Scenario** (``drakewell.routing.simulator.default_scenario``): five 32-slot edge nodes in
aws:af-south-1, aws:me-south-1, aws:ap-south-1, aws:sa-east-1 and aws:ap-southeast-3, one 256-slot
hyperscaler node in aws:us-east-1; users in all six regions with equal shares, daily cycles in their
local time and bursts (2× for ~30 s, about two an hour per region); one hour from 17:15 UTC (the
busy hour, when the summed daily cycles peak) at 80% of total capacity on average; TTFT SLA 800 ms.
RTTs are Skyplane's measurements when the data folder is present, else the great-circle model.
The hour is simulated ``--runs`` times (default 4) with consecutive seeds; in each run every policy
serves the same seeded workload, and the TTFT figures pool the requests of all runs (one lucky or
unlucky hour of bursts does not decide the result).

Figures, each with its target and its ratio to the anchor measured in the same run:

- ``p99_ttft_ms`` per policy; target: SLO-aware ≤ 0.5 × nearest (the anchor);
- ``sla_attainment`` per policy; target: SLO-aware ≥ 99%;
- ``decision_p99_us``: p99 time of one SLO-aware ``choose`` call on live fleet states; target ≤ 20 µs
  (anchor: ``nearest``'s decision);
- ``gateway_overhead_p99_ms``: p99 over 2,000 pairs of (time through the gateway − time straight to
  the backend), the two sent back to back in alternating order, with the fake backend and the
  gateway each in its own process on loopback; target ≤ 2 ms (anchor: the direct request's p50).

A plot of the TTFT distribution of each policy (empirical CDF) is written to ``--out``
(default ``out/bench/routing/``) as ``ttft_distribution.html``.

Usage: ``python benchmarks/routing.py [--json OUT] [--out DIR] [--seed N] [--runs R] [--hours H]``.
Exits 1 when a target is missed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import random
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

P99_RATIO_TARGET = 0.5
SLA_TARGET = 0.99
DECISION_P99_US_TARGET = 20.0
GATEWAY_OVERHEAD_P99_MS_TARGET = 2.0
DECISIONS = 20_000
GATEWAY_PAIRS, GATEWAY_WARMUP = 2000, 200


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_backend(port: int) -> None:
    import uvicorn

    from drakewell.routing.fake_backend import fake_backend_app

    uvicorn.run(fake_backend_app("bench", tokens=16), host="127.0.0.1", port=port, log_level="warning")


def _serve_gateway(port: int, backend_url: str) -> None:
    import uvicorn

    from drakewell.routing.gateway import create_gateway_app, loopback_config

    config = loopback_config([backend_url], policy="slo-aware")
    uvicorn.run(
        create_gateway_app(config), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


def _wait_ready(url: str, timeout_s: float = 20.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.post(url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not start")


def measure_gateway_overhead_ms() -> dict[str, float]:
    """Paired direct vs through-gateway request times on loopback, servers in their own processes."""
    import httpx

    ctx = mp.get_context("spawn")
    backend_port, gateway_port = _free_port(), _free_port()
    backend_url, gateway_url = f"http://127.0.0.1:{backend_port}", f"http://127.0.0.1:{gateway_port}"
    procs = [ctx.Process(target=_serve_backend, args=(backend_port,), daemon=True)]
    procs.append(ctx.Process(target=_serve_gateway, args=(gateway_port, backend_url), daemon=True))
    for p in procs:
        p.start()
    try:
        _wait_ready(backend_url)
        _wait_ready(gateway_url)
        body = {"model": "m", "messages": [{"role": "user", "content": "Say hello in Swahili."}]}
        direct_ms: list[float] = []
        via_ms: list[float] = []
        with httpx.Client(base_url=backend_url) as direct, httpx.Client(base_url=gateway_url) as via:
            for k in range(GATEWAY_WARMUP + GATEWAY_PAIRS):
                # alternate which goes first, so neither side always runs on a just-woken loop
                order = (direct, via) if k % 2 == 0 else (via, direct)
                took = {}
                for client in order:
                    t0 = time.perf_counter()
                    r = client.post("/v1/chat/completions", json=body)
                    took[id(client)] = (time.perf_counter() - t0) * 1e3
                    if r.status_code != 200:
                        raise RuntimeError(f"benchmark request failed with status {r.status_code}")
                if k >= GATEWAY_WARMUP:
                    direct_ms.append(took[id(direct)])
                    via_ms.append(took[id(via)])
    finally:
        for p in procs:
            p.terminate()
            p.join(timeout=5)
    overhead = [v - d for v, d in zip(via_ms, direct_ms, strict=True)]
    return {
        "overhead_p50_ms": statistics.median(overhead),
        "overhead_p99_ms": p99(overhead),
        "direct_p50_ms": statistics.median(direct_ms),
        "direct_p99_ms": p99(direct_ms),
        "via_p50_ms": statistics.median(via_ms),
        "via_p99_ms": p99(via_ms),
    }


def measure_decision_us(scenario: Any, workload: Any, names: list[str], seed: int) -> dict[str, float]:
    """p99 of single ``choose`` calls, on fleet states drawn around the run's utilisation."""
    from drakewell.routing.policies import RouteRequest, make_policy

    view = scenario.fleet_view()
    state_rng = random.Random(seed)
    regions = [u.region for u in scenario.spec.users]
    candidates = tuple(range(len(scenario.nodes)))
    requests = [
        RouteRequest(regions[int(u)], int(p), scenario.spec.sla_ttft_ms)
        for u, p in zip(workload.user[:DECISIONS], workload.prompt_tokens[:DECISIONS], strict=True)
    ]
    states = [
        [state_rng.randint(int(0.5 * c), int(1.1 * c)) for c in view.concurrency]
        for _ in range(DECISIONS // 100)
    ]
    out: dict[str, float] = {}
    for name in names:
        policy, rng = make_policy(name), random.Random(seed)
        times: list[float] = []
        clock = time.perf_counter_ns
        for k, request in enumerate(requests):
            if k % 100 == 0:
                view.outstanding[:] = states[k // 100]
            t0 = clock()
            policy.choose(view, request, candidates, rng)
            times.append((clock() - t0) / 1e3)
        out[name] = p99(times)
    return out


@dataclass(frozen=True, eq=False)
class Pooled:
    """One policy's figures over all runs' requests together."""

    policy: str
    ttft_ms: Any
    ttft_ms_p50: float
    ttft_ms_p90: float
    ttft_ms_p99: float
    sla_attainment: float
    cost_usd_per_mtok: float
    sla_by_seed: list[float]


def pool(name: str, runs: list[Any], sla_ms: float) -> Pooled:
    import numpy as np

    ttft = np.concatenate([r.ttft_ms for r in runs])
    cost = sum(r.cost_usd for r in runs)
    mtok = sum(r.cost_usd / r.cost_usd_per_mtok for r in runs)  # output tokens / 1e6
    p50, p90, p99_ = (float(np.percentile(ttft, q)) for q in (50, 90, 99))
    return Pooled(
        name,
        ttft,
        p50,
        p90,
        p99_,
        float(np.mean(ttft <= sla_ms)),
        cost / mtok,
        [r.sla_attainment for r in runs],
    )


def write_plot(results: list[Any], out_dir: Path, sla_ms: float) -> Path:
    """Empirical CDF of TTFT per policy (500 quantiles each), log-scaled, as a standalone HTML file."""
    import numpy as np
    import plotly.graph_objects as go

    fig = go.Figure()
    q = np.linspace(0.0, 1.0, 501)
    for r in results:
        fig.add_trace(go.Scatter(x=np.quantile(r.ttft_ms, q), y=q, mode="lines", name=r.policy))
    fig.add_vline(x=sla_ms, line_dash="dash", annotation_text=f"SLA {sla_ms:.0f} ms")
    fig.update_layout(
        title="Time to first token by routing policy (same workload)",
        xaxis={"title": "TTFT (ms, log scale)", "type": "log"},
        yaxis={"title": "share of requests at or below", "range": [0, 1]},
        template="plotly_white",
    )
    path = out_dir / "ttft_distribution.html"
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--out", type=Path, default=Path("out/bench/routing"), help="folder for the plot")
    parser.add_argument("--seed", type=int, default=0, help="first workload seed")
    parser.add_argument("--runs", type=int, default=4, help="busy hours simulated, one seed each")
    parser.add_argument("--hours", type=float, default=1.0, help="simulated hours")
    parser.add_argument("--skip-gateway", action="store_true", help="leave out the gateway measurement")
    args = parser.parse_args(argv)

    from drakewell.routing.policies import make_policy, policy_names
    from drakewell.routing.simulator import default_scenario, simulate
    from drakewell.routing.workload import generate_workload

    scenario = default_scenario(load=0.8, duration_s=args.hours * 3600.0)
    m = scenario.matrix
    print(
        f"routing benchmark · {platform.python_implementation()} {platform.python_version()} · "
        f"RTTs: {m.source} ({m.n_imputed} of {m.n_pairs} pairs imputed) · seed {args.seed}"
    )
    t0 = time.perf_counter()
    seeds = list(range(args.seed, args.seed + args.runs))
    names = list(policy_names())
    runs: dict[str, list[Any]] = {n: [] for n in names}
    workloads = []
    for seed in seeds:
        workload = generate_workload(scenario.spec, seed)
        workloads.append(workload)
        for n in names:
            runs[n].append(simulate(scenario, workload, make_policy(n), seed=seed))
    sim_s = time.perf_counter() - t0
    results = [pool(n, runs[n], scenario.spec.sla_ttft_ms) for n in names]
    n_requests = sum(len(w) for w in workloads)
    print(
        f"{len(seeds)} runs of {args.hours:g} h (seeds {seeds[0]}–{seeds[-1]}), {n_requests:,} requests, "
        f"{len(names)} policies simulated in {sim_s:.1f} s; figures pool all requests\n"
    )
    by = {r.policy: r for r in results}
    anchor = by["nearest"].ttft_ms_p99
    header = ("TTFT p50", "p90", "p99", "÷ nearest", "SLA met", "USD/Mtok", "SLA met per seed")
    widths = (9, 9, 11, 10, 8, 9, 0)
    print(f"{'policy':<11} " + " ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for r in results:
        print(
            f"{r.policy:<11} {r.ttft_ms_p50:>9,.0f} {r.ttft_ms_p90:>9,.0f} {r.ttft_ms_p99:>11,.0f} "
            f"{r.ttft_ms_p99 / anchor:>10.5f} {r.sla_attainment:>8.2%} {r.cost_usd_per_mtok:>9.4f} "
            + " ".join(f"{x:.2%}" for x in r.sla_by_seed)
        )
    slo = by["slo-aware"]
    p99_ratio = slo.ttft_ms_p99 / anchor
    checks: list[tuple[str, bool]] = []
    print()
    print(
        f"SLO-aware p99 TTFT {slo.ttft_ms_p99:,.0f} ms = {p99_ratio:.5f} × nearest ({anchor:,.0f} ms); "
        f"target ≤ {P99_RATIO_TARGET} × nearest"
    )
    checks.append(("slo-aware p99 ttft", p99_ratio <= P99_RATIO_TARGET))
    print(
        f"SLO-aware SLA attainment {slo.sla_attainment:.2%} (nearest {by['nearest'].sla_attainment:.2%}); "
        f"target ≥ {SLA_TARGET:.0%}"
    )
    checks.append(("slo-aware sla attainment", slo.sla_attainment >= SLA_TARGET))

    decision = measure_decision_us(scenario, workloads[0], names, args.seed)
    decision_p99 = decision["slo-aware"]
    print(
        f"routing decision p99 (slo-aware) {decision_p99:.2f} µs "
        f"= {decision_p99 / decision['nearest']:.2f} × nearest ({decision['nearest']:.2f} µs); "
        f"target ≤ {DECISION_P99_US_TARGET:.0f} µs"
    )
    print("  all policies: " + ", ".join(f"{k} {v:.2f} µs" for k, v in decision.items()))
    checks.append(("decision p99", decision_p99 <= DECISION_P99_US_TARGET))

    gateway: dict[str, float] | None = None
    if not args.skip_gateway:
        gateway = measure_gateway_overhead_ms()
        print(
            f"gateway overhead p99 {gateway['overhead_p99_ms']:.3f} ms "
            f"(p50 {gateway['overhead_p50_ms']:.3f} ms) "
            f"= {gateway['overhead_p99_ms'] / gateway['direct_p50_ms']:.2f} × a direct request's p50 "
            f"({gateway['direct_p50_ms']:.3f} ms); target ≤ {GATEWAY_OVERHEAD_P99_MS_TARGET:.0f} ms"
        )
        checks.append(("gateway overhead p99", gateway["overhead_p99_ms"] <= GATEWAY_OVERHEAD_P99_MS_TARGET))

    args.out.mkdir(parents=True, exist_ok=True)
    plot = write_plot(results, args.out, scenario.spec.sla_ttft_ms)
    print(f"\nplot: {plot}")
    figures: dict[str, Any] = {
        "p99_ttft_ms": {r.policy: r.ttft_ms_p99 for r in results},
        "sla_attainment": {r.policy: r.sla_attainment for r in results},
        "decision_p99_us": decision_p99,
        "gateway_overhead_p99_ms": gateway["overhead_p99_ms"] if gateway else None,
        "decision_p99_us_by_policy": decision,
        "gateway": gateway,
        "runs": {n: [r.summary() for r in runs[n]] for n in names},
        "scenario": {
            "requests": n_requests,
            "seeds": seeds,
            "hours": args.hours,
            "load": 0.8,
            "sla_ttft_ms": scenario.spec.sla_ttft_ms,
            "latency_source": m.source,
            "pairs_imputed": m.n_imputed,
        },
        "targets": {
            "slo_aware_p99_over_nearest": P99_RATIO_TARGET,
            "slo_aware_sla_attainment": SLA_TARGET,
            "decision_p99_us": DECISION_P99_US_TARGET,
            "gateway_overhead_p99_ms": GATEWAY_OVERHEAD_P99_MS_TARGET,
        },
        "met": dict(checks),
    }
    (args.out / "routing.json").write_text(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    missed = [name for name, ok in checks if not ok]
    print("all targets met" if not missed else f"targets missed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
