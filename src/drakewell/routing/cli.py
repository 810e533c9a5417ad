"""``drakewell route …``: simulate routing policies, inspect the latency matrix, run the gateway."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn
from rich.console import Console

from drakewell.core.errors import ConfigError
from drakewell.core.httpguard import parse_named_keys
from drakewell.core.tables import TERMINAL_COLUMNS, chunk_columns, compact_table
from drakewell.routing.fake_backend import fake_backend_app
from drakewell.routing.gateway import Backend, GatewayConfig, create_gateway_app
from drakewell.routing.latency import latency_matrix, load_skyplane
from drakewell.routing.nodes import EdgeNode, emerging_market_nodes
from drakewell.routing.simulator import compare_policies, default_scenario

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from rich.table import Table

    from drakewell.routing.simulator import PolicyResult

app = typer.Typer(help="Edge inference routing: simulate policies and run the gateway.", no_args_is_help=True)

LATENCY_SOURCES = ("auto", "skyplane", "model")

SlaMsOpt = Annotated[float, typer.Option(help="TTFT SLA in milliseconds.")]
PortOpt = Annotated[int, typer.Option(help="Port to listen on.")]


@app.command()
def simulate(
    policy: Annotated[
        list[str] | None, typer.Option("--policy", "-p", help="Policy to run (repeat); default: all.")
    ] = None,
    load: Annotated[float, typer.Option(help="Offered load as a fraction of total capacity.")] = 0.8,
    hours: Annotated[float, typer.Option(help="Simulated hours (from 17:15 UTC, the busy hour).")] = 0.25,
    sla_ms: SlaMsOpt = 800.0,
    seed: Annotated[int, typer.Option(help="Seed of the workload and of random policies.")] = 0,
    latency: Annotated[str, typer.Option(help="RTT source: auto, skyplane or model.")] = "auto",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures as JSON here.")] = None,
    wide: Annotated[bool, typer.Option("--wide", help="Add the p90 columns (needs ~100 columns).")] = False,
) -> None:
    """Run routing policies on one seeded workload over the emerging-market fleet and compare them."""

    if latency not in LATENCY_SOURCES:
        raise ConfigError(f"unknown --latency {latency!r}", hint="use auto, skyplane or model")
    if not hours > 0:
        raise ConfigError(f"--hours must be > 0, got {hours}", hint="e.g. --hours 1")
    scenario = default_scenario(
        load=load, duration_s=hours * 3600.0, sla_ttft_ms=sla_ms, latency_source=latency
    )
    results = compare_policies(scenario, policies=policy or None, seed=seed)
    console = Console()
    m = scenario.matrix
    console.print(
        f"RTTs: {m.source} ({m.n_imputed} of {m.n_pairs} region pairs imputed) · "
        f"{results[0].n_requests:,} requests · load {load:.0%} · SLA TTFT {sla_ms:.0f} ms"
    )
    console.print(results_table(results, wide=wide))
    console.print(utilisation_table(results, [n.name for n in scenario.nodes]))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps([r.summary() for r in results], indent=2))
        console.print(f"wrote {json_out}")


def results_table(results: Sequence[PolicyResult], *, wide: bool = False) -> Table:
    """One row per policy: TTFT and end-to-end latency quantiles (ms), SLA attainment, throughput
    and cost; p90 columns only when ``wide`` (the default fits 80 columns)."""

    qs = ("p50", "p90", "p99") if wide else ("p50", "p99")
    table = compact_table(
        title="latency in ms · SLA: share of requests with TTFT within the SLA · cost: USD per million tokens"
    )
    table.add_column("policy", min_width=max((len(r.policy) for r in results), default=6))
    for head in (*(f"TTFT {q}" for q in qs), *(f"E2E {q}" for q in qs), "SLA", "tok/s", "cost"):
        table.add_column(head, justify="right")
    for r in results:
        ttft = {"p50": r.ttft_ms_p50, "p90": r.ttft_ms_p90, "p99": r.ttft_ms_p99}
        e2e = {"p50": r.e2e_ms_p50, "p90": r.e2e_ms_p90, "p99": r.e2e_ms_p99}
        table.add_row(
            r.policy,
            *(f"{ttft[q]:,.0f}" for q in qs),
            *(f"{e2e[q]:,.0f}" for q in qs),
            f"{r.sla_attainment:.1%}",
            f"{r.tokens_per_s:,.0f}",
            f"{r.cost_usd_per_mtok:.4f}",
        )
    return table


def utilisation_table(results: Sequence[PolicyResult], nodes: Sequence[str]) -> Table:
    """Utilisation of each node (rows) under each policy (columns)."""

    table = compact_table(title="utilisation per node")
    table.add_column("node", min_width=max((len(n) for n in nodes), default=4))
    for r in results:
        table.add_column(r.policy, justify="right")
    for name in nodes:
        table.add_row(name, *(f"{r.utilisation[name]:.0%}" for r in results))
    return table


def latency_tables(
    regions: Sequence[str], rtt_ms: npt.NDArray[np.float64], width: int = TERMINAL_COLUMNS
) -> list[Table]:
    """The RTT matrix (ms) as tables that fit ``width``: columns are numbered like the rows, and
    when the regions do not fit side by side the columns are split over several tables."""

    labels = [f"{i + 1} {name}" for i, name in enumerate(regions)]
    n = len(regions)
    cell = max([len(str(n))] + [len(f"{float(rtt_ms[i, j]):.0f}") for i in range(n) for j in range(n)])
    runs = chunk_columns(regions, cell, max((len(x) for x in labels), default=0) + 1, width)
    tables = []
    for run in runs:
        title = "RTT ms; columns numbered like the rows"
        if len(runs) > 1:
            title += f" (columns {run.start + 1}-{run.stop} of {len(regions)})"
        table = compact_table(title=title)
        table.add_column("region")
        for j in run:
            table.add_column(str(j + 1), justify="right")
        for i, label in enumerate(labels):
            table.add_row(label, *(f"{float(rtt_ms[i, j]):.0f}" for j in run))
        tables.append(table)
    return tables


@app.command("latency")
def show_latency(
    region: Annotated[
        list[str] | None, typer.Option("--region", "-r", help="Region to show (repeat).")
    ] = None,
    source: Annotated[str, typer.Option(help="auto, skyplane or model.")] = "auto",
) -> None:
    """Show the RTT matrix (ms) between regions, and how many pairs were imputed."""

    if source not in LATENCY_SOURCES:
        raise ConfigError(f"unknown --source {source!r}", hint="use auto, skyplane or model")
    regions = region or [n.region for n in emerging_market_nodes()]
    m = latency_matrix(regions, source=source)
    console = Console()
    if m.source != "great-circle model":
        full = load_skyplane()
        console.print(
            f"{full.source}: {len(full.regions)} regions, {full.n_pairs} pairs, "
            f"{full.n_filled_by_symmetry} measured one way only, "
            f"{full.n_imputed} imputed (best one-hop relay)"
        )
    else:
        console.print("great-circle model (no latency data found)")
    for table in latency_tables(m.regions, m.rtt_ms, width=max(console.width, TERMINAL_COLUMNS)):
        console.print(table)


def _parse_backend(spec: str, index: int) -> tuple[str, str, str | None, int, float]:
    """``NAME=URL[,region=R][,slots=N][,price=USD_PER_MWH]`` → fields."""
    head, *opts = spec.split(",")
    name, sep, url = head.partition("=")
    if not sep or not name or not url:
        raise ConfigError(
            f"--backend {spec!r} is not NAME=URL",
            hint="e.g. --backend cpt=http://10.0.0.5:8000,region=aws:af-south-1,slots=8",
        )
    region: str | None = None
    slots, price = 8, 0.0
    for opt in opts:
        key, _, value = opt.partition("=")
        try:
            if key == "region":
                region = value
            elif key == "slots":
                slots = int(value)
            elif key == "price":
                price = float(value)
            else:
                raise ValueError(key)
        except ValueError:
            raise ConfigError(
                f"--backend #{index + 1}: bad option {opt!r}",
                hint="options are region=PROVIDER:REGION, slots=INT, price=USD_PER_MWH",
            ) from None
    return name, url, region, slots, price


@app.command()
def serve(
    backend: Annotated[
        list[str],
        typer.Option("--backend", "-b", help="NAME=URL[,region=R][,slots=N][,price=USD_PER_MWH] (repeat)."),
    ],
    policy: Annotated[str, typer.Option(help="Routing policy.")] = "slo-aware",
    user_region: Annotated[
        str, typer.Option(help="Region of users without an x-user-region header (needs region= on backends).")
    ] = "local",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: PortOpt = 8080,
    sla_ms: SlaMsOpt = 800.0,
    connect_timeout_s: Annotated[float, typer.Option(help="Per-backend connect timeout.")] = 0.5,
    first_byte_timeout_s: Annotated[float, typer.Option(help="Per-backend time to first byte.")] = 10.0,
    latency: Annotated[str, typer.Option(help="RTT source when backends have regions.")] = "auto",
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=KEY a client must send as 'Authorization: Bearer KEY' (repeat); default: open"
        ),
    ] = None,
    admin_key: Annotated[
        str | None,
        typer.Option(
            envvar="DRAKEWELL_GATEWAY_ADMIN_KEY", help="key for GET /v1/gateway/backends (else off)"
        ),
    ] = None,
    rate_limit: Annotated[
        float | None, typer.Option(help="requests per second per client (key, else address); default: none")
    ] = None,
    rate_burst: Annotated[float, typer.Option(help="requests a client may send at once")] = 20.0,
    max_body_bytes: Annotated[int, typer.Option(help="largest request body accepted")] = 1_048_576,
) -> None:
    """Run the OpenAI-compatible gateway (POST /v1/chat/completions) in front of the backends.

    A request that timed out after a backend got it is resent elsewhere only when the client sends
    an Idempotency-Key header."""
    parsed = [_parse_backend(s, k) for k, s in enumerate(backend)]
    regions = [p[2] for p in parsed]
    if all(r is None for r in regions):
        rtt = {user_region: tuple(1.0 for _ in parsed)}
        node_regions = ["local"] * len(parsed)
    elif any(r is None for r in regions):
        raise ConfigError("some backends have region= and some do not", hint="give every backend a region")
    else:
        node_regions = [r for r in regions if r is not None]
        users = sorted({*node_regions, user_region})
        m = latency_matrix(users, source=latency)
        rtt = {u: tuple(m.rtt(u, r) for r in node_regions) for u in users}
    nodes = [
        EdgeNode(name, region, 1, "any", 5000.0, 50.0, slots, price)
        for (name, _, _, slots, price), region in zip(parsed, node_regions, strict=True)
    ]
    config = GatewayConfig(
        backends=tuple(Backend(n, p[1]) for n, p in zip(nodes, parsed, strict=True)),
        rtt_ms=rtt,
        default_user_region=user_region,
        policy=policy,
        sla_ttft_ms=sla_ms,
        connect_timeout_s=connect_timeout_s,
        first_byte_timeout_s=first_byte_timeout_s,
        api_keys=parse_named_keys(api_key or []),
        admin_key=admin_key,
        rate_per_s=rate_limit,
        rate_burst=rate_burst,
        max_body_bytes=max_body_bytes,
    )
    uvicorn.run(create_gateway_app(config), host=host, port=port, log_level="info")


@app.command("fake-backend")
def fake_backend(
    name: Annotated[str, typer.Option(help="Name reported in x-backend.")] = "fake",
    mode: Annotated[str, typer.Option(help="healthy, hang, error or stall.")] = "healthy",
    port: PortOpt = 9001,
    ttft_s: Annotated[float, typer.Option(help="Delay before the first token.")] = 0.05,
    tokens: Annotated[int, typer.Option(help="Tokens per answer.")] = 16,
    token_delay_s: Annotated[float, typer.Option(help="Delay between streamed tokens.")] = 0.02,
) -> None:
    """Run a stand-in OpenAI-compatible backend on loopback (for trying the gateway)."""
    app_ = fake_backend_app(name, mode=mode, ttft_s=ttft_s, tokens=tokens, token_delay_s=token_delay_s)
    uvicorn.run(app_, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    app()
