"""Fleet benchmark: curtail 1,000 emulated miners to 20 % and prove it by read-back.

**Setup**: ``drakewell emulate miners`` in its own process runs ``--miners`` (default 1,000)
emulated Whatsminer M30S+ (3,400 W, 100 TH/s; power ramps over 1.5 s; each reply after
``--latency-ms`` of firmware time, default 20 ms) on consecutive loopback addresses from
``--first-ip``. This process detects them all with unmodified pyasic (``Fleet.connect``, which also
fetches each miner's privileged-command token), then:

- ``curtail_verified_s``: wall time of ``Fleet.apply(Setpoint(mining_mw = 20 % of rated))`` — plan,
  concurrent commands, and read-backs until every commanded miner is verified (ramps included).
  Goal ≤ 10 s (on the 2-core development machine, emulator and controller sharing it);
- ``serial_s``: the same orders as a plain loop of the same pyasic calls, one miner at a time
  (``stop_mining`` / ``set_power_limit`` for every ordered miner, then a read-back of each until it
  shows the command), after the fleet is woken back to full power; the anchor;
- ``speedup`` = ``serial_s / curtail_verified_s``, goal ≥ 10×;
- ``cpu_ms_per_command``: CPU time of this (controller) process during the apply, divided by the
  device commands sent (read-backs included in the cost);
- ``stages_s``: when the last command was answered and the first and last read-backs ran (seconds
  after the apply began), and the number of read-backs;
- ``failed``: commanded miners not verified by the deadline (goal 0); ``miners``: fleet size.

The controller runs on uvloop, as the fleet CLI does (``--loop asyncio`` for asyncio's own loop).

Usage: ``python benchmarks/fleet.py [--miners N] [--first-ip IP] [--latency-ms MS] [--loop L]
[--concurrency N] [--json OUT]``.
Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from drakewell.fleet import ControlSettings, Fleet, Outcome, Setpoint, parse_inventory
from drakewell.fleet.devices import Command
from drakewell.fleet.emulator import raise_open_file_limit, start_emulator_process
from drakewell.fleet.miners import PyasicMinerDriver, load_pyasic
from drakewell.fleet.runner import run as run_loop

GOAL_CURTAIL_S = 10.0
GOAL_SPEEDUP = 10.0
RATED_W = 3400.0


async def serial_loop(fleet: Fleet, orders: list[Any], deadline_s: float) -> float:
    """The same commands, one miner at a time, then read-backs one miner at a time."""
    t0 = time.perf_counter()
    for o in orders:
        driver = fleet.driver(o.device)
        assert isinstance(driver, PyasicMinerDriver)
        if o.command is Command.SLEEP:
            await driver.miner.stop_mining()
        else:
            await driver.miner.set_power_limit(o.value_w)
    for o in orders:
        driver = fleet.driver(o.device)
        assert isinstance(driver, PyasicMinerDriver)
        while time.perf_counter() - t0 < deadline_s:
            r = await driver.read()
            if r is not None and (
                (o.command is Command.SLEEP and not r.mining and r.power_w <= 0.05 * RATED_W)
                or (
                    o.command is Command.LIMIT
                    and r.power_limit_w == o.value_w
                    and r.power_w <= o.value_w + 50
                )
            ):
                break
            await asyncio.sleep(0.1)
    return time.perf_counter() - t0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_open_file_limit(4 * args.miners + 1024)
    inventory = parse_inventory(
        {"miner_ranges": [{"first_ip": args.first_ip, "count": args.miners, "model": "M30S+"}]},
        source="benchmark",
    )
    settings = ControlSettings(deadline_s=30.0, call_timeout_s=5.0, concurrency=args.concurrency)
    load_pyasic()
    t = time.perf_counter()
    fleet = await Fleet.connect(inventory, settings=settings)
    reachable = sum(1 for d in fleet.snapshot().devices if d.reachable)
    print(f"connect: {reachable}/{args.miners} miners detected and read in {time.perf_counter() - t:.1f} s")
    full_mw = inventory.rated_mining_w / 1e6
    curtail = Setpoint(mining_mw=0.2 * full_mw)
    orders = list(fleet.preview(curtail))

    calls = _time_calls(fleet, [o.device for o in orders])
    cpu0 = time.process_time()
    t0 = time.monotonic()
    result = await fleet.apply(curtail)
    cpu_s = time.process_time() - cpu0
    stages = _stages(calls, t0)
    print("stages (s after apply): " + " ".join(f"{k}={v:.3f}" for k, v in stages.items()))
    commands = sum(a.attempts for a in result.accounts)
    failed = len(result.failed)
    target_mw = (result.mining_target_w or 0.0) / 1e6
    print(
        f"apply: {len(result.accounts)} orders, {commands} commands, "
        f"read-back {result.mining_power_w / 1e6:.3f} MW (target {target_mw:.3f} MW) "
        f"in {result.elapsed_s:.2f} s; " + ", ".join(f"{o.value} {result.count(o)}" for o in Outcome)
    )
    wake = await fleet.apply(Setpoint(mining_mw=full_mw))
    print(
        f"wake: back to {wake.mining_power_w / 1e6:.3f} MW in {wake.elapsed_s:.2f} s "
        f"({len(wake.failed)} failed)"
    )
    await asyncio.sleep(2.0)  # ramps settle
    serial_s = await serial_loop(fleet, orders, deadline_s=900.0)
    await fleet.close()
    return {
        "miners": args.miners,
        "curtail_verified_s": result.elapsed_s if result.reached else float("inf"),
        "serial_s": serial_s,
        "speedup": serial_s / result.elapsed_s,
        "cpu_ms_per_command": 1000.0 * cpu_s / max(1, commands),
        "failed": failed,
        "stages_s": stages,
    }


def _time_calls(fleet: Fleet, devices: list[str]) -> list[tuple[str, float, float]]:
    """Record (kind, start, end) of every command and read-back to these miners (monotonic clock)."""
    calls: list[tuple[str, float, float]] = []

    def wrap(kind: str, fn: Any) -> Any:
        async def timed(*a: Any, **kw: Any) -> Any:
            t = time.monotonic()
            try:
                return await fn(*a, **kw)
            finally:
                calls.append((kind, t, time.monotonic()))

        return timed

    for device in devices:
        driver = fleet.driver(device)
        if driver is not None:
            for name in ("read", "sleep", "set_power_limit"):
                setattr(driver, name, wrap(name, getattr(driver, name)))
    return calls


def _stages(calls: list[tuple[str, float, float]], t0: float) -> dict[str, float]:
    """When the last command was answered and the read-backs ran, seconds after the apply began."""
    cmds = [c for c in calls if c[0] != "read"]
    reads = [c for c in calls if c[0] == "read"]
    nan = float("nan")
    return {
        "last_command": max((c[2] for c in cmds), default=t0 + nan) - t0,
        "first_read": min((c[1] for c in reads), default=t0 + nan) - t0,
        "last_read": max((c[2] for c in reads), default=t0 + nan) - t0,
        "reads": float(len(reads)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--miners", type=int, default=1000)
    ap.add_argument("--first-ip", default="127.0.2.1")
    ap.add_argument("--latency-ms", type=float, default=20.0, help="emulated firmware reply time")
    ap.add_argument(
        "--concurrency", type=int, default=ControlSettings().concurrency, help="device calls in flight"
    )
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop (as the CLI)")
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = ap.parse_args()
    emulator = start_emulator_process(args.miners, args.first_ip, args.latency_ms, duration_s=1200)
    try:
        figures = run_loop(run(args), use_uvloop=args.loop == "uvloop")
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    ok_time = figures["curtail_verified_s"] <= GOAL_CURTAIL_S
    ok_speed = figures["speedup"] >= GOAL_SPEEDUP
    ok_failed = figures["failed"] == 0
    print(f"miners               {figures['miners']:>10,}  (emulated, {args.latency_ms:g} ms firmware reply)")
    print(
        f"curtail_verified_s   {figures['curtail_verified_s']:>10.2f}  goal <= {GOAL_CURTAIL_S:g}"
        f"  ratio to goal {figures['curtail_verified_s'] / GOAL_CURTAIL_S:.2f}  {'ok' if ok_time else 'MISS'}"
    )
    print(
        f"serial_s             {figures['serial_s']:>10.2f}  (anchor: the same pyasic calls, one at a time)"
    )
    speedup = figures["speedup"]
    print(f"speedup              {speedup:>10.1f}x goal >= {GOAL_SPEEDUP:g}x  {'ok' if ok_speed else 'MISS'}")
    print(
        f"cpu_ms_per_command   {figures['cpu_ms_per_command']:>10.2f}  (controller CPU, read-backs included)"
    )
    print(f"failed               {figures['failed']:>10}  goal 0  {'ok' if ok_failed else 'MISS'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    ok = ok_time and ok_speed and ok_failed
    print("goals met" if ok else "goal missed")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
