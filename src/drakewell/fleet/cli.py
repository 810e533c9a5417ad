"""``drakewell fleet …`` (scan, status, set) and ``drakewell emulate miners``."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from drakewell.catalog import load_catalog
from drakewell.core.cliopts import DurationOpt
from drakewell.core.jsontypes import JsonObject
from drakewell.core.tables import compact_table
from drakewell.fleet.control import Fleet, Setpoint
from drakewell.fleet.devices import GpuReading, MinerReading, Outcome
from drakewell.fleet.emulator import EmulatedFleet, EmulatorConfig, Fault, emulated_ips, run_emulator
from drakewell.fleet.errors import FleetError
from drakewell.fleet.inventory import load_inventory
from drakewell.fleet.miners import catalog_model_name, load_pyasic, scan_subnet
from drakewell.fleet.runner import run as run_loop

if TYPE_CHECKING:
    from rich.table import Table

    from drakewell.fleet.control import ApplyResult, Fleet
    from drakewell.fleet.inventory import Inventory
    from drakewell.fleet.plan import Order

app = typer.Typer(help="Fleet control: scan, read and command miners and GPUs.", no_args_is_help=True)
emulate_app = typer.Typer(
    help="Emulated devices on loopback, for trying Drakewell without hardware.", no_args_is_help=True
)

InventoryOpt = Annotated[Path, typer.Option(help="Fleet inventory TOML.")]


def _write_json(path: Path | None, payload: object) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


@app.command()
def scan(
    subnet: Annotated[str, typer.Argument(help="Subnet to scan, e.g. 10.0.1.0/24 (at most 4096 addresses).")],
    timeout_s: Annotated[
        float, typer.Option(help="Give up on the whole scan after this many seconds.")
    ] = 60.0,
    inventory_out: Annotated[
        Path | None, typer.Option(help="Write the miners found as an inventory TOML here.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the miners found as JSON here.")
    ] = None,
) -> None:
    """Find miners in a subnet with pyasic (one miner per IP; ports 80, 443, 4028, 4433 probed)."""

    console = Console()
    with console.status(f"scanning {subnet} …"):
        load_pyasic()
        found = asyncio.run(scan_subnet(subnet, timeout_s=timeout_s))
    table = compact_table(
        "ip", "model (pyasic)", "firmware", "catalogue model", title=f"{len(found)} miner(s) in {subnet}"
    )
    for m in found:
        table.add_row(m.ip, m.model, m.firmware, m.catalog_model or "[yellow]not in catalogue[/]")
    console.print(table)
    _write_json(json_out, [m.__dict__ for m in found])
    if inventory_out is not None:
        lines = [f"# miners found by `drakewell fleet scan {subnet}`", ""]
        for m in found:
            lines += [
                "[[miners]]",
                f'ip = "{m.ip}"',
                f'model = "{m.catalog_model or m.model}"',
                f'firmware = "{m.firmware}"',
                "",
            ]
        inventory_out.write_text("\n".join(lines), encoding="utf-8")
        console.print(f"inventory written to {inventory_out}")


async def _connect(inventory: Inventory, *, console: Console) -> Fleet:
    if inventory.miners:
        with console.status("loading pyasic …"):
            load_pyasic()
    with Progress(TextColumn("detecting devices"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task("detect", total=len(inventory.miners))
        return await Fleet.connect(inventory, on_progress=lambda n: bar.advance(task, n))


@dataclass(frozen=True)
class _DeviceRow:
    """One device's reading as ``fleet status`` shows and writes it (``None``: not read, or not this
    kind of device)."""

    device: str
    kind: str
    model: str
    reachable: bool
    power_w: float
    limit_w: float | None
    hashrate_th_s: float | None
    mining: bool | None
    energy_mj: int | None

    def to_json(self) -> JsonObject:
        return asdict(self)


def _device_rows(fleet: Fleet) -> list[_DeviceRow]:
    rows = []
    for d in fleet.snapshot().devices:
        miner = d.reading if isinstance(d.reading, MinerReading) else None
        gpu = d.reading if isinstance(d.reading, GpuReading) else None
        limit_w = miner.power_limit_w if miner is not None else (gpu.power_cap_w if gpu is not None else None)
        hashrate, mining = (None, None) if miner is None else (miner.hashrate_th_s, miner.mining)
        energy = None if gpu is None else gpu.energy_mj
        rows.append(
            _DeviceRow(d.device, d.kind, d.model, d.reachable, d.power_w, limit_w, hashrate, mining, energy)
        )
    return rows


@app.command()
def status(
    inventory: InventoryOpt,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write every device's reading as JSON.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many devices in the table.")] = 50,
) -> None:
    """Read every device of an inventory once and show what it draws."""

    inv = load_inventory(inventory)
    console = Console()

    async def run() -> list[_DeviceRow]:
        fleet = await _connect(inv, console=console)
        try:
            return _device_rows(fleet)
        finally:
            await fleet.close()

    rows = run_loop(run())
    table = compact_table("device", "kind", "model", "reachable", "W", "limit W", "TH/s", "mining")
    for row in rows[:limit]:
        table.add_row(
            row.device,
            row.kind,
            row.model,
            "yes" if row.reachable else "[red]no[/]",
            f"{row.power_w:,.0f}",
            "" if row.limit_w is None else f"{row.limit_w:,.0f}",
            "" if row.hashrate_th_s is None else f"{row.hashrate_th_s:,.1f}",
            "" if row.mining is None else ("yes" if row.mining else "asleep"),
        )
    console.print(table)
    if len(rows) > limit:
        console.print(f"… and {len(rows) - limit} more (use --limit or --json)")
    miners = [r for r in rows if r.kind == "miner"]
    reachable = sum(1 for r in miners if r.reachable)
    console.print(
        f"miners: {reachable}/{len(miners)} reachable · "
        f"{sum(r.power_w for r in miners) / 1e6:,.3f} MW (unreachable counted at last known or rated) · "
        f"{sum(r.hashrate_th_s or 0 for r in miners) / 1000:,.2f} PH/s"
    )
    _write_json(json_out, [row.to_json() for row in rows])


def _orders_table(orders: tuple[Order, ...]) -> Table:
    table = compact_table("device", "command", "value W", "expected W", title=f"{len(orders)} order(s)")
    for o in orders:
        table.add_row(
            o.device,
            o.command.value,
            "" if o.value_w is None else str(o.value_w),
            f"{o.expected_power_w:,.0f}",
        )
    return table


def _result_payload(result: ApplyResult) -> JsonObject:
    return {
        "mining_target_w": result.mining_target_w,
        "mining_power_w": result.mining_power_w,
        "reached": result.reached,
        "elapsed_s": result.elapsed_s,
        "outcomes": {o.value: result.count(o) for o in Outcome},
        "accounts": [
            {
                "device": a.device,
                "kind": a.kind,
                "command": a.command.value,
                "value_w": a.value_w,
                "outcome": a.outcome.value,
                "attempts": a.attempts,
                "power_w": a.power_w,
                "detail": a.detail,
            }
            for a in result.accounts
        ],
    }


@app.command("set")
def set_power(
    inventory: InventoryOpt,
    mining_mw: Annotated[float | None, typer.Option(help="Mining power target, MW (IT).")] = None,
    inference_mw: Annotated[float | None, typer.Option(help="Inference GPUs' power target, MW.")] = None,
    training_mw: Annotated[float | None, typer.Option(help="Training GPUs' power target, MW.")] = None,
    spot_mw: Annotated[float | None, typer.Option(help="Spot GPUs' power target, MW.")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Send the commands (default: dry run).")] = False,
    deadline_s: Annotated[float, typer.Option(help="Time for read-backs to confirm the setpoint.")] = 10.0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the plan or the result as JSON.")
    ] = None,
) -> None:
    """Plan (dry run) or carry out (--apply) a power setpoint, and show each device's account."""

    setpoint = Setpoint(mining_mw, inference_mw, training_mw, spot_mw)
    if all(v is None for v in (mining_mw, inference_mw, training_mw, spot_mw)):
        raise FleetError(
            "no target given", hint="pass --mining-mw X (and/or --inference-mw, --training-mw, --spot-mw)"
        )
    if not deadline_s > 0:
        raise FleetError(f"--deadline-s must be > 0, got {deadline_s}", hint="e.g. --deadline-s 10")
    inv = load_inventory(inventory)
    console = Console()

    async def run() -> tuple[tuple[Order, ...], ApplyResult | None, float]:
        fleet = await _connect(inv, console=console)
        try:
            before = fleet.snapshot().mining_power_w
            if not apply:
                return fleet.preview(setpoint), None, before
            return (), await fleet.apply(setpoint, deadline_s=deadline_s), before
        finally:
            await fleet.close()

    orders, result, before = run_loop(run())
    if result is None:
        console.print(_orders_table(orders))
        console.print(f"mining now {before / 1e6:,.3f} MW · dry run: nothing sent (add --apply to send)")
        _write_json(
            json_out,
            [
                {
                    "device": o.device,
                    "command": o.command.value,
                    "value_w": o.value_w,
                    "expected_power_w": o.expected_power_w,
                }
                for o in orders
            ],
        )
        return
    table = compact_table("device", "command", "value W", "outcome", "tries", "read-back W", "detail")
    colour = {
        Outcome.OBEYED: "green",
        Outcome.LATE: "yellow",
        Outcome.REFUSED: "red",
        Outcome.UNREACHABLE: "red",
    }
    for a in sorted(result.accounts, key=lambda a: (a.outcome is Outcome.OBEYED, a.device))[:60]:
        table.add_row(
            a.device,
            a.command.value,
            "" if a.value_w is None else str(a.value_w),
            f"[{colour[a.outcome]}]{a.outcome.value}[/]",
            str(a.attempts),
            "" if a.power_w is None else f"{a.power_w:,.0f}",
            a.detail,
        )
    console.print(table)
    counts = " · ".join(f"{o.value} {result.count(o)}" for o in Outcome)
    target = "" if result.mining_target_w is None else f" → target {result.mining_target_w / 1e6:,.3f} MW"
    console.print(
        f"mining {before / 1e6:,.3f} MW{target} · read-back {result.mining_power_w / 1e6:,.3f} MW "
        f"in {result.elapsed_s:.2f} s · {counts} · "
        + ("[green]setpoint reached[/]" if result.reached else "[red]setpoint NOT reached[/]")
    )
    _write_json(json_out, _result_payload(result))
    if not result.reached:
        raise typer.Exit(1)


_VARIANT = re.compile(r"^(?P<base>.+?)V[A-Z]*\d+$")


def _rated_from_catalog(model: str) -> tuple[float, float] | None:

    asics = {m.model: m for m in load_catalog().asics}
    name = catalog_model_name(model, list(asics))
    match = _VARIANT.match(model)
    if name is None and match is not None:
        name = catalog_model_name(match["base"], list(asics))
    if name is None:
        return None
    return asics[name].power_w, asics[name].hashrate_th_s


@emulate_app.command()
def miners(
    count: Annotated[int, typer.Option(help="Number of miners, one per loopback address.")] = 10,
    first_ip: Annotated[str, typer.Option(help="Address of the first miner (127.0.0.0/8).")] = "127.0.1.1",
    model: Annotated[str, typer.Option(help="Whatsminer model the firmware reports.")] = "M30S+V40",
    rated_w: Annotated[
        float | None, typer.Option(help="Rated power, W (default: hardware catalogue).")
    ] = None,
    rated_th_s: Annotated[
        float | None, typer.Option(help="Rated hashrate, TH/s (default: catalogue).")
    ] = None,
    ramp_s: Annotated[float, typer.Option(help="Seconds for a full power swing.")] = 1.5,
    latency_ms: Annotated[float, typer.Option(help="Firmware time to answer each request, ms.")] = 0.0,
    dead: Annotated[float, typer.Option(help="Share of miners that stop answering.")] = 0.0,
    slow: Annotated[float, typer.Option(help="Share of miners that answer after --slow-delay-s.")] = 0.0,
    refusing: Annotated[float, typer.Option(help="Share of miners that refuse commands.")] = 0.0,
    stale: Annotated[float, typer.Option(help="Share of miners whose reports freeze.")] = 0.0,
    slow_delay_s: Annotated[float, typer.Option(help="Reply delay of slow miners, s.")] = 20.0,
    fault_after_s: Annotated[float, typer.Option(help="Faults begin this many seconds after start.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed choosing which miners are faulty.")] = 0,
    duration_s: DurationOpt = 3600.0,
) -> None:
    """Run N emulated Whatsminers (BTMiner API v2 on TCP 4028) that pyasic detects and controls."""

    rated = _rated_from_catalog(model)
    if (rated_w is None or rated_th_s is None) and rated is None:
        raise FleetError(
            f"model {model!r} is not in the hardware catalogue",
            hint="pass --rated-w and --rated-th-s, or use e.g. --model M30S+V40",
        )
    if not duration_s > 0:
        raise FleetError(f"--duration-s must be > 0, got {duration_s}", hint="e.g. --duration-s 600")
    power_w = rated_w if rated_w is not None else rated[0]  # type: ignore[index]
    hashrate = rated_th_s if rated_th_s is not None else rated[1]  # type: ignore[index]
    config = EmulatorConfig(
        count=count,
        first_ip=first_ip,
        model=model,
        rated_power_w=power_w,
        rated_hashrate_th_s=hashrate,
        min_power_limit_w=0.3 * power_w,
        ramp_s=ramp_s,
        reply_latency_s=latency_ms / 1000.0,
        dead=dead,
        slow=slow,
        refusing=refusing,
        stale=stale,
        slow_delay_s=slow_delay_s,
        fault_after_s=fault_after_s,
        seed=seed,
    )
    ips = emulated_ips(first_ip, count)
    console = Console()

    def ready(fleet: EmulatedFleet) -> None:
        faults = ", ".join(f"{f.value} {len(fleet.by_fault(f))}" for f in Fault if f is not Fault.NONE)
        console.print(
            f"emulating {count} {model} miner(s) ({power_w:,.0f} W, {hashrate:g} TH/s) "
            f"on {ips[0]} … {ips[-1]}, TCP 4028 · faults: {faults} · "
            f"stopping after {duration_s:g} s (Ctrl-C stops sooner)"
        )
        print("ready", flush=True)

    try:
        asyncio.run(run_emulator(config, duration_s=duration_s, on_ready=ready))
    except KeyboardInterrupt:
        console.print("stopped")
    except OSError as exc:
        raise FleetError(
            f"cannot listen on {first_ip}…:4028: {exc}",
            hint="another emulator may hold these addresses; pick another --first-ip",
        ) from None
