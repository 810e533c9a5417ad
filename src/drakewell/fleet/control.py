"""Fleet control: setpoints in MW → device commands → read-back-verified power, device by device.

``Fleet.apply(setpoint)`` is one control step:

1. *Ramp*: the mining target moves at most as far as the site's ramp limit allows. The limit is a
   token bucket: ``R`` W per interval of ``τ`` s refills at ``R/τ`` W/s up to ``R``; a step may move
   the mining target by the bucket's content and spends what it moves.
2. *Plan*: :mod:`drakewell.fleet.plan` turns the targets into one order per device that must change
   (least efficient miners sleep first, one power limit trims the margin; GPU caps before pausing
   jobs; sleeping miners wake only after the minimum off time).
3. *Carry out*: every order runs concurrently, at most ``concurrency`` device calls in flight. Each
   call has its own deadline (``call_timeout_s``, never past the step's deadline). A command that
   is not acknowledged, or whose read-back shows no change, is retried at most ``max_attempts``
   times in all, after a doubling back-off. A miner is read back when its draw should have settled
   (its swing at the rated ramp of ``miner_ramp_s``), then as its observed ramp suggests.
4. *Verify*: an order counts as done only when a read-back shows it (asleep and drawing at most 5 %
   of rated power; the power limit reported and respected; awake and within 10 % of the expected
   draw; a GPU cap reported and respected). The step returns when every order is verified or the
   deadline passes, with a :class:`DeviceAccount` per order: obeyed, late, refused or unreachable.
   After the first plan, a step orders more only to replace a failing device or, once its orders
   are done, to close a gap larger than half the ``reached`` slack (not to chase a few watts of a
   verified miner).

What the fleet believes about a device changes only through a read-back that completed before its
deadline (a late answer is cancelled with its call; the per-device sequence number discards any
answer older than one already recorded). An unreachable device counts as still drawing its last
known power, and a miner never read counts at its rated power, so ``mining_power_w`` never counts a
curtailment it cannot prove.

Public API (use from one asyncio event loop; the fleet is not thread-safe, but :meth:`Fleet.snapshot`
returns an immutable record that other threads, such as the Prometheus exporter, may read)::

    fleet = await Fleet.connect(inventory, settings=ControlSettings(), nvml=None)  # pyasic + NVML
    fleet = Fleet(inventory, miners={ip: driver}, gpus={id: driver}, jobs={name: hook})  # any drivers
    await fleet.refresh()                    # read every device once → FleetSnapshot
    result = await fleet.apply(Setpoint(mining_mw=2.0))              # → ApplyResult (one at a time)
    result.accounts, result.mining_power_w, result.reached, result.failed
    fleet.snapshot()                         # latest FleetSnapshot, no I/O
    fleet.telemetry                          # TelemetrySeries of every read
    await fleet.close()
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Literal, TypeVar, cast

from drakewell.fleet.devices import (
    Command,
    GpuDriver,
    GpuReading,
    JobHook,
    MinerDriver,
    MinerReading,
    Outcome,
)
from drakewell.fleet.emulator import raise_open_file_limit
from drakewell.fleet.errors import FleetError
from drakewell.fleet.gpus import NvmlGpuDriver, open_gpus
from drakewell.fleet.inventory import GpuEntry, Inventory, JobEntry, MinerEntry
from drakewell.fleet.jobs import hook_for
from drakewell.fleet.miners import PyasicMinerDriver, load_pyasic
from drakewell.fleet.plan import GpuView, JobView, MinerView, Order, plan_gpus, plan_mining
from drakewell.fleet.telemetry import TelemetrySeries

__all__ = [
    "ApplyResult",
    "ControlSettings",
    "DeviceAccount",
    "DeviceState",
    "Fleet",
    "FleetSnapshot",
    "Setpoint",
]

T = TypeVar("T")
_SLEEP_SHARE = 0.05  # asleep: at most this share of rated power
_WAKE_SHARE = 0.90  # awake: at least this share of the expected draw
_LIMIT_SLACK = 0.03  # a limited device may overshoot its limit by 3 % + 50 W (meter noise)
_SLACK_W = 50.0
_ORDERS_PER_DEVICE = 3  # a step re-plans around failures; a device gets at most this many orders
_BOARD_W = 12.0  # assumed control-board draw of a sleeping miner (planning only)
_SETTLE_MARGIN_S = 0.05  # the first read-back comes this long after the draw should have settled


@dataclass(frozen=True)
class Setpoint:
    """MW of IT power per class; ``None`` leaves a class alone."""

    mining_mw: float | None = None
    inference_mw: float | None = None
    training_mw: float | None = None
    spot_mw: float | None = None

    def __post_init__(self) -> None:
        for name in ("mining_mw", "inference_mw", "training_mw", "spot_mw"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise FleetError(
                    f"setpoint {name} = {value} is not a finite MW ≥ 0", hint="give MW, e.g. 2.5"
                )

    def gpu_targets_w(self) -> dict[str, float]:
        pairs = (("inference", self.inference_mw), ("training", self.training_mw), ("spot", self.spot_mw))
        return {role: mw * 1e6 for role, mw in pairs if mw is not None}


@dataclass(frozen=True)
class ControlSettings:
    call_timeout_s: float = 2.0
    deadline_s: float = 10.0
    # device calls in flight; a read-back waits its ramp holding no slot, but a 1,000-miner step sends
    # ~1,000 commands and then ~1,000 reads at once, each held open by the firmware's reply time
    concurrency: int = 1024
    max_attempts: int = 3
    retry_backoff_s: float = 0.25
    # first read-back after an acknowledged command; None: a miner is read when its draw should have
    # settled (the swing at the ramp rate below), a GPU after readback_interval_s
    first_readback_s: float | None = None
    readback_interval_s: float = 0.5
    # seconds a miner takes to swing its full rated power (Whatsminer and Antminer firmware: 1–2 s);
    # a slower miner is simply read again, at the pace its observed ramp suggests
    miner_ramp_s: float = 1.5
    confirm_grace_s: float = 3.0  # acknowledged but unconfirmed this long: plan around the device
    detect_timeout_s: float = 8.0
    # pyasic's detection builds HTTP clients and gives itself 3 s; more at once starves it on few cores
    detect_concurrency: int = 16

    def __post_init__(self) -> None:
        if min(self.concurrency, self.max_attempts, self.detect_concurrency) < 1:
            raise FleetError("concurrency and max_attempts must be at least 1", hint="use e.g. 1024 and 3")
        if min(self.call_timeout_s, self.deadline_s, self.readback_interval_s, self.miner_ramp_s) <= 0:
            raise FleetError("timeouts and intervals must be positive", hint="use seconds > 0")
        if self.first_readback_s is not None and not self.first_readback_s >= 0:
            raise FleetError("first_readback_s must be ≥ 0 s (or None)", hint="use e.g. 1.0, or None")


@dataclass(frozen=True)
class DeviceAccount:
    """What one device did with one order."""

    device: str
    kind: Literal["miner", "gpu", "job"]
    command: Command
    value_w: int | None
    outcome: Outcome
    attempts: int
    power_w: float | None  # last verified draw (None: never read)
    detail: str


@dataclass(frozen=True)
class DeviceState:
    """The fleet's belief about one device (only read-backs change it)."""

    device: str
    kind: Literal["miner", "gpu"]
    model: str
    power_w: float  # counted draw: last read, or rated power if never read
    reading: MinerReading | GpuReading | None
    reachable: bool
    read_at_s: float | None  # wall-clock seconds of the last read-back


@dataclass(frozen=True)
class FleetSnapshot:
    at_s: float
    devices: tuple[DeviceState, ...]

    @property
    def mining_power_w(self) -> float:
        return sum(d.power_w for d in self.devices if d.kind == "miner")

    @property
    def gpu_power_w(self) -> float:
        return sum(d.power_w for d in self.devices if d.kind == "gpu")

    @property
    def hashrate_th_s(self) -> float:
        return sum(d.reading.hashrate_th_s for d in self.devices if isinstance(d.reading, MinerReading))


@dataclass(frozen=True)
class ApplyResult:
    setpoint: Setpoint
    mining_target_w: float | None  # after the ramp limit
    curtailing: bool  # the mining target was below the draw at the start
    mining_power_w: float  # read-back draw of all miners (unreachable: last known)
    gpu_power_w: float
    accounts: tuple[DeviceAccount, ...]
    elapsed_s: float

    @property
    def reached(self) -> bool:
        """Read-back mining power at or below its target when curtailing, at or above it when raising
        (1 % + 1 kW slack; True when mining was not set)."""
        if self.mining_target_w is None:
            return True
        slack = _slack_w(self.mining_target_w)
        if self.curtailing:
            return self.mining_power_w <= self.mining_target_w + slack
        return self.mining_power_w >= self.mining_target_w - slack

    def count(self, outcome: Outcome) -> int:
        return sum(1 for a in self.accounts if a.outcome is outcome)

    @property
    def failed(self) -> tuple[DeviceAccount, ...]:
        return tuple(a for a in self.accounts if a.outcome is not Outcome.OBEYED)


@dataclass
class _Slot:
    """Mutable per-device state, private to the fleet's event loop."""

    entry: MinerEntry | GpuEntry
    driver: MinerDriver | GpuDriver | None
    reading: MinerReading | GpuReading | None = None
    read_at_s: float | None = None
    reachable: bool = True
    asleep_since_s: float | None = None
    recorded_seq: int = -1
    seq: itertools.count[int] = field(default_factory=itertools.count)


class _Timeout:
    pass


_TIMEOUT = _Timeout()


_Kind = Literal["miner", "gpu", "job"]
_CarryOut = Callable[
    [_Kind, Order, float, Callable[[str, bool], None]], Coroutine[object, None, DeviceAccount]
]


class _Step:
    """The orders of one ``apply`` step: at most one in flight per device (and at most
    ``_ORDERS_PER_DEVICE`` in all), and the devices that failed, for the next re-plan."""

    def __init__(self, carry_out: _CarryOut, deadline: float) -> None:
        self._carry_out = carry_out
        self.deadline = deadline
        self.tasks: dict[str, list[asyncio.Task[DeviceAccount]]] = {}
        self.inflight: dict[str, Order] = {}
        self.trouble = asyncio.Event()
        self.troubled: set[str] = set()
        self.curtailing = False

    def report_trouble(self, device: str, final: bool) -> None:
        # curtailing: a device that fails once is replaced at once (over-curtailing is the safe side);
        # raising: only a final failure is replaced (a late success would overshoot the target)
        if final or self.curtailing:
            self.troubled.add(device)
            self.trouble.set()

    def start(self, kind: _Kind, order: Order) -> None:
        previous = self.tasks.setdefault(order.device, [])
        if order.device in self.inflight or len(previous) >= _ORDERS_PER_DEVICE:
            return
        self.inflight[order.device] = order
        task = asyncio.create_task(self._carry_out(kind, order, self.deadline, self.report_trouble))
        task.add_done_callback(lambda _t: self.inflight.pop(order.device, None))
        previous.append(task)

    def busy(self) -> list[asyncio.Task[DeviceAccount]]:
        return [t for ts in self.tasks.values() for t in ts if not t.done()]

    def cancel(self) -> None:
        for ts in self.tasks.values():
            for task in ts:
                task.cancel()


class Fleet:
    """Miners, GPUs and training jobs of one inventory, behind one ``apply``."""

    def __init__(
        self,
        inventory: Inventory,
        *,
        miners: Mapping[str, MinerDriver | None] | None = None,
        gpus: Mapping[str, GpuDriver | None] | None = None,
        jobs: Mapping[str, JobHook] | None = None,
        settings: ControlSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inventory = inventory
        self.settings = settings or ControlSettings()
        self._clock = clock
        miners = miners or {}
        gpus = gpus or {}
        self._miners = {m.ip: _Slot(m, miners.get(m.ip)) for m in inventory.miners}
        self._gpus = {g.id: _Slot(g, gpus.get(g.id)) for g in inventory.gpus}
        for slot in [*self._miners.values(), *self._gpus.values()]:
            slot.reachable = slot.driver is not None
        self._jobs: dict[str, tuple[JobEntry, JobHook | None]] = {
            j.name: (j, (jobs or {}).get(j.name)) for j in inventory.jobs
        }
        self._paused: set[str] = set()
        self._sem = asyncio.Semaphore(self.settings.concurrency)
        self._apply_lock = asyncio.Lock()
        self._ramp_bucket_w = inventory.limits.ramp_w_per_interval
        self._ramp_at_s: float | None = None
        self.telemetry = TelemetrySeries()
        self._snapshot = self._build_snapshot()

    # -- construction from real devices ---------------------------------------------------------
    @classmethod
    async def connect(
        cls,
        inventory: Inventory,
        *,
        settings: ControlSettings | None = None,
        nvml: ModuleType | None = None,
        clock: Callable[[], float] = time.time,
        on_progress: Callable[[int], None] | None = None,
    ) -> Fleet:
        """Detect every inventory miner with pyasic, open NVML for the GPUs, build the job hooks.

        A miner that does not answer detection stays in the fleet as unreachable (counted at its
        rated power). ``nvml`` is the NVML module to use (default: ``pynvml``; tests pass
        :mod:`drakewell.fleet.fake_nvml`).
        """

        settings = settings or ControlSettings()
        if inventory.miners:
            load_pyasic()  # importing pyasic takes seconds: not inside a detection deadline
        raise_open_file_limit(2 * settings.concurrency + 256)
        sem = asyncio.Semaphore(settings.detect_concurrency)

        async def detect(ip: str) -> tuple[str, PyasicMinerDriver | None]:
            async with sem:
                try:
                    driver = await asyncio.wait_for(PyasicMinerDriver.detect(ip), settings.detect_timeout_s)
                    if driver is not None:
                        await asyncio.wait_for(driver.open_session(), settings.call_timeout_s)
                except (TimeoutError, OSError):
                    driver = None
                except Exception:  # pyasic raises its own APIError and others on odd replies
                    driver = None
            if on_progress is not None:
                on_progress(1)
            return ip, driver

        found = dict(await asyncio.gather(*(detect(m.ip) for m in inventory.miners)))
        gpu_drivers: dict[str, GpuDriver | None] = {}
        if inventory.gpus:
            gpu_drivers = dict(open_gpus(inventory.gpus, nvml=nvml))
        hooks = {j.name: hook_for(j) for j in inventory.jobs}
        fleet = cls(inventory, miners=found, gpus=gpu_drivers, jobs=hooks, settings=settings, clock=clock)
        await fleet.refresh()
        return fleet

    async def close(self) -> None:

        for slot in self._gpus.values():
            if isinstance(slot.driver, NvmlGpuDriver):
                slot.driver.close()

    def driver(self, device: str) -> MinerDriver | GpuDriver | None:
        """The driver behind one device (``None``: not connected)."""
        slot = self._miners.get(device) or self._gpus.get(device)
        if slot is None:
            raise FleetError(
                f"no device {device!r} in this fleet", hint="use an IP or GPU id of the inventory"
            )
        return slot.driver

    # -- reading ------------------------------------------------------------------------------
    def snapshot(self) -> FleetSnapshot:
        """The latest belief about every device (immutable; safe to read from other threads)."""
        return self._snapshot

    def _build_snapshot(self) -> FleetSnapshot:
        states = [self._state(dev, "miner", s) for dev, s in self._miners.items()]
        states += [self._state(dev, "gpu", s) for dev, s in self._gpus.items()]
        return FleetSnapshot(self._clock(), tuple(states))

    @staticmethod
    def _state(device: str, kind: Literal["miner", "gpu"], slot: _Slot) -> DeviceState:
        return DeviceState(
            device,
            kind,
            slot.entry.model.model,
            _counted_w(slot),
            slot.reading,
            slot.reachable,
            slot.read_at_s,
        )

    async def refresh(self) -> FleetSnapshot:
        """Read every device once (concurrently, each read with its own deadline)."""
        slots = [s for s in [*self._miners.values(), *self._gpus.values()] if s.driver is not None]
        # each read gets call_timeout_s from the moment it leaves the concurrency queue
        await asyncio.gather(*(self._read(s, math.inf) for s in slots))
        self._snapshot = self._build_snapshot()
        return self._snapshot

    async def _call(self, fn: Callable[[], Awaitable[T]], deadline: float) -> T | _Timeout:
        """One device call under the concurrency bound and its own deadline."""
        async with self._sem:
            left = min(self.settings.call_timeout_s, deadline - asyncio.get_running_loop().time())
            if left <= 0:
                return _TIMEOUT
            try:
                return await asyncio.wait_for(fn(), left)
            except TimeoutError:
                return _TIMEOUT

    async def _read(self, slot: _Slot, deadline: float) -> MinerReading | GpuReading | _Timeout | None:
        """Read one device; record the answer unless a newer one is already recorded."""
        driver = slot.driver
        if driver is None:
            return None
        seq = next(slot.seq)
        try:
            reading = await self._call(driver.read, deadline)
        except Exception:  # a library error on a garbled reply: no usable answer
            reading = None
        if isinstance(reading, _Timeout) or seq <= slot.recorded_seq:
            return reading
        slot.recorded_seq = seq
        if reading is None:
            slot.reachable = False
            return None
        now_s = self._clock()
        slot.reachable = True
        slot.reading = reading
        slot.read_at_s = now_s
        if isinstance(reading, MinerReading):
            if reading.mining:
                slot.asleep_since_s = None
            elif slot.asleep_since_s is None:
                slot.asleep_since_s = now_s
        self.telemetry.record(_device_id(slot), now_s, reading)
        return reading

    # -- control ------------------------------------------------------------------------------
    def preview(self, setpoint: Setpoint) -> tuple[Order, ...]:
        """The first orders ``apply`` would send now (no I/O, no ramp budget spent): a dry run."""
        orders: list[Order] = []
        if setpoint.mining_mw is not None:
            bucket, at = self._ramp_bucket_w, self._ramp_at_s
            target = self._ramp(setpoint.mining_mw * 1e6, self._clock())
            self._ramp_bucket_w, self._ramp_at_s = bucket, at
            views = [self._miner_view(s) for s in self._miners.values()]
            orders += plan_mining(
                views, target, now_s=self._clock(), min_off_s=self.inventory.limits.min_off_s
            )
        gpu_targets = setpoint.gpu_targets_w()
        if gpu_targets:
            orders += plan_gpus(
                [self._gpu_view(s) for s in self._gpus.values()], self._job_views(), gpu_targets
            )
        return tuple(orders)

    def _job_views(self) -> list[JobView]:
        return [
            JobView(name, tuple(g.id for g in self.inventory.gpus if g.job == name), name in self._paused)
            for name in self._jobs
        ]

    async def apply(self, setpoint: Setpoint, *, deadline_s: float | None = None) -> ApplyResult:
        """Carry out one setpoint; returns when read-backs confirm it or the deadline passes.

        Steps run one at a time: a second ``apply`` waits for the first to finish (its deadline
        counts from when it starts).
        """
        async with self._apply_lock:
            return await self._apply(setpoint, deadline_s)

    async def _apply(self, setpoint: Setpoint, deadline_s: float | None) -> ApplyResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + (self.settings.deadline_s if deadline_s is None else deadline_s)
        now_s = self._clock()
        step = _Step(self._carry_out, deadline)
        mining_target: float | None = None
        if setpoint.mining_mw is not None:
            mining_target = self._ramp(setpoint.mining_mw * 1e6, now_s)
            step.curtailing = mining_target < sum(_counted_w(s) for s in self._miners.values())
        gpu_targets = setpoint.gpu_targets_w()
        if gpu_targets:
            gpu_views = [self._gpu_view(s) for s in self._gpus.values()]
            for o in plan_gpus(gpu_views, self._job_views(), gpu_targets):
                step.start("gpu" if o.command is Command.CAP else "job", o)
        first = True
        try:
            while True:
                # after the first plan, new orders only replace failures, or close a real gap once the
                # orders are done (in-flight orders count at their expected draw): a verified miner a
                # few watts off its expected draw is not worth another command, nor is a re-plan of
                # every miner each time one of a thousand orders completes
                if mining_target is not None and (first or step.trouble.is_set() or not step.busy()):
                    self._plan_mining_step(step, mining_target, now_s, first)
                first = False
                step.trouble.clear()
                pending = step.busy()
                if not pending or loop.time() >= deadline:
                    break
                waiter = asyncio.create_task(step.trouble.wait())
                await asyncio.wait(
                    [*pending, waiter], timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
            finals = [ts[-1] for ts in step.tasks.values() if ts]
            accounts = await asyncio.gather(*finals)
        finally:
            step.cancel()
        self._snapshot = self._build_snapshot()
        return ApplyResult(
            setpoint,
            mining_target,
            step.curtailing,
            self._snapshot.mining_power_w,
            self._snapshot.gpu_power_w,
            tuple(accounts),
            loop.time() - started,
        )

    def _plan_mining_step(self, step: _Step, mining_target: float, now_s: float, first: bool) -> None:
        """(Re-)plan the miners towards ``mining_target``, each seen as planned so far; order what the
        plan changes (on the first plan, after a failure, or when the plan is off by half the slack)."""
        views = [
            self._planning_view(s, step.inflight.get(ip), ip in step.troubled)
            for ip, s in self._miners.items()
        ]
        planned = sum(v.power_w for v in views)
        if first or step.trouble.is_set() or abs(planned - mining_target) > _slack_w(mining_target) / 2:
            min_off_s = self.inventory.limits.min_off_s
            for o in plan_mining(views, mining_target, now_s=now_s, min_off_s=min_off_s):
                if o.device not in step.troubled:
                    step.start("miner", o)

    def _planning_view(self, slot: _Slot, order: Order | None, troubled: bool) -> MinerView:
        """A miner as the planner should see it during a step: failed → fixed, ordered → as ordered."""
        view = self._miner_view(slot)
        if troubled:
            return replace(view, reachable=False)
        if order is None:
            return view
        if order.command is Command.SLEEP:
            return replace(view, mining=False, power_w=order.expected_power_w, asleep_since_s=None)
        if order.command is Command.LIMIT:
            return replace(view, power_limit_w=float(order.value_w or 0), power_w=order.expected_power_w)
        limit = view.power_limit_w if order.value_w is None else float(order.value_w)
        return replace(view, mining=True, power_limit_w=limit, power_w=order.expected_power_w)

    def _ramp(self, target_w: float, now_s: float) -> float:
        limits = self.inventory.limits
        if math.isinf(limits.ramp_w_per_interval):
            return target_w
        if self._ramp_at_s is not None:
            refill = limits.ramp_w_per_s * max(0.0, now_s - self._ramp_at_s)
            self._ramp_bucket_w = min(limits.ramp_w_per_interval, self._ramp_bucket_w + refill)
        self._ramp_at_s = now_s
        present = sum(_counted_w(s) for s in self._miners.values())
        allowed = min(max(target_w, present - self._ramp_bucket_w), present + self._ramp_bucket_w)
        self._ramp_bucket_w -= abs(allowed - present)
        return allowed

    def _miner_view(self, slot: _Slot) -> MinerView:
        entry = slot.entry
        assert isinstance(entry, MinerEntry)
        reading = slot.reading if isinstance(slot.reading, MinerReading) else None
        driver = slot.driver
        return MinerView(
            id=entry.ip,
            efficiency_j_per_th=entry.model.efficiency_j_per_th,
            rated_power_w=entry.model.power_w,
            board_power_w=_BOARD_W,
            min_power_limit_w=entry.min_power_limit_w,
            supports_power_limit=bool(driver is not None and driver.supports_power_limit),  # type: ignore[union-attr]
            power_w=_counted_w(slot),
            mining=True if reading is None else reading.mining,
            power_limit_w=None if reading is None else reading.power_limit_w,
            reachable=slot.reachable and driver is not None,  # never read: assumed mining at rated power
            asleep_since_s=slot.asleep_since_s,
        )

    def _gpu_view(self, slot: _Slot) -> GpuView:
        entry = slot.entry
        assert isinstance(entry, GpuEntry)
        reading = slot.reading if isinstance(slot.reading, GpuReading) else None
        rated = entry.model.gpu_power_w
        return GpuView(
            id=entry.id,
            role=entry.role,
            job=entry.job,
            power_w=_counted_w(slot),
            cap_w=rated if reading is None else reading.power_cap_w,
            min_cap_w=rated if reading is None else reading.min_cap_w,
            max_cap_w=rated if reading is None else reading.max_cap_w,
            idle_w=entry.idle_w,
            reachable=slot.reachable and reading is not None,
        )

    async def _carry_out(
        self,
        kind: Literal["miner", "gpu", "job"],
        order: Order,
        deadline: float,
        report_trouble: Callable[[str, bool], None] = lambda device, final: None,
    ) -> DeviceAccount:
        account = await self._carry_out_device(kind, order, deadline, report_trouble)
        if account.outcome is not Outcome.OBEYED:
            report_trouble(order.device, True)
        return account

    async def _carry_out_device(
        self,
        kind: Literal["miner", "gpu", "job"],
        order: Order,
        deadline: float,
        report_trouble: Callable[[str, bool], None],
    ) -> DeviceAccount:
        if kind == "job":
            return await self._carry_out_job(order, deadline)
        slot = self._miners[order.device] if kind == "miner" else self._gpus[order.device]
        s = self.settings
        loop = asyncio.get_running_loop()
        attempts = 0
        acked = False
        answered = False  # any reply from the device (ack, refusal or a read)
        timed_out = False
        detail = ""
        error = ""
        while attempts < s.max_attempts and loop.time() < deadline:
            attempts += 1
            try:
                ack = await self._call(lambda: _send(slot.driver, order), deadline)
            except FleetError as exc:  # the driver knows why (e.g. NVML: no permission)
                ack, error = False, str(exc)
            except Exception as exc:  # a library error on a garbled reply counts as no acknowledgement
                ack, error = False, f"{type(exc).__name__}: {exc}"
            if isinstance(ack, _Timeout):
                timed_out = True
                detail = f"no answer within {s.call_timeout_s:g} s"
            else:
                acked = acked or bool(ack)
                acked_at = loop.time()
                before = (acked_at, slot.reading.power_w if slot.reading is not None else None)
                wait = self._first_readback_s(order, slot) if ack else 0.0
                while loop.time() < deadline:
                    await asyncio.sleep(max(0.0, min(wait, deadline - loop.time())))
                    reading = await self._read(slot, deadline)
                    if isinstance(reading, _Timeout):
                        timed_out = True
                        detail = "read-back timed out"
                        break
                    if reading is None:
                        detail = "no answer to the read-back"
                        break
                    answered = True
                    if _verified(order, slot, reading):
                        return self._account(kind, order, Outcome.OBEYED, attempts, slot, "")
                    if not ack:
                        detail = (error or "command not acknowledged") + "; read-back shows no change"
                        break
                    detail = "read-back does not show the command yet"
                    if loop.time() - acked_at > s.confirm_grace_s:
                        report_trouble(order.device, False)  # acknowledged, but the draw does not follow
                    wait = _next_readback_s(order, before, (loop.time(), reading.power_w), s)
            report_trouble(order.device, False)
            if attempts < s.max_attempts:
                await asyncio.sleep(
                    max(0.0, min(s.retry_backoff_s * 2 ** (attempts - 1), deadline - loop.time()))
                )
        if not answered and not timed_out:
            outcome = Outcome.UNREACHABLE
        elif answered and not acked and not timed_out:
            outcome = Outcome.REFUSED
        else:
            outcome = Outcome.LATE
        return self._account(kind, order, outcome, attempts, slot, detail)

    def _first_readback_s(self, order: Order, slot: _Slot) -> float:
        """When to read first after an acknowledged command: when the draw should have settled.

        A miner's draw moves its rated power in ``miner_ramp_s``; reading before it settles proves
        nothing and costs two connections, and a read that catches the draw just past the
        verification threshold leaves the fleet above its plan (and the step re-planning).
        ``first_readback_s``, when set, overrides this.
        """
        s = self.settings
        if s.first_readback_s is not None:
            return s.first_readback_s
        entry = slot.entry
        if not isinstance(entry, MinerEntry):
            return s.readback_interval_s
        now_w = _counted_w(slot)
        rate = entry.model.power_w / s.miner_ramp_s
        return min(s.deadline_s, abs(now_w - _settle_w(order)) / rate + _SETTLE_MARGIN_S)

    def _account(
        self,
        kind: Literal["miner", "gpu", "job"],
        order: Order,
        outcome: Outcome,
        attempts: int,
        slot: _Slot,
        detail: str,
    ) -> DeviceAccount:
        power = None if slot.reading is None else slot.reading.power_w
        return DeviceAccount(
            order.device, kind, order.command, order.value_w, outcome, attempts, power, detail
        )

    async def _carry_out_job(self, order: Order, deadline: float) -> DeviceAccount:
        """Pause or resume a training job through its hook (the hook's answer is its read-back)."""
        entry, hook = self._jobs[order.device]
        if hook is None:
            return DeviceAccount(
                order.device, "job", order.command, None, Outcome.UNREACHABLE, 0, None, "no hook"
            )
        mw = order.expected_power_w / 1e6
        attempts = 0
        outcome, detail = Outcome.UNREACHABLE, ""
        loop = asyncio.get_running_loop()
        while attempts < self.settings.max_attempts and loop.time() < deadline:
            attempts += 1
            call = hook.pause if order.command is Command.PAUSE else hook.resume
            try:
                ok = await self._call(lambda: call(entry.name, mw), deadline)  # noqa: B023
            except FleetError as exc:
                ok, detail = None, exc.message
            if ok is True:
                if order.command is Command.PAUSE:
                    self._paused.add(entry.name)
                else:
                    self._paused.discard(entry.name)
                return DeviceAccount(
                    order.device, "job", order.command, None, Outcome.OBEYED, attempts, None, ""
                )
            if isinstance(ok, _Timeout):
                outcome, detail = Outcome.LATE, "the scheduler did not answer in time"
            elif ok is False:
                outcome, detail = Outcome.REFUSED, "the scheduler refused"
            await asyncio.sleep(max(0.0, min(self.settings.retry_backoff_s, deadline - loop.time())))
        return DeviceAccount(order.device, "job", order.command, None, outcome, attempts, None, detail)


def _device_id(slot: _Slot) -> str:
    entry = slot.entry
    return entry.ip if isinstance(entry, MinerEntry) else entry.id


def _counted_w(slot: _Slot) -> float:
    """Draw the fleet may claim: the last read-back, or rated power if never read."""
    if slot.reading is not None:
        return slot.reading.power_w
    entry = slot.entry
    return entry.model.power_w if isinstance(entry, MinerEntry) else entry.model.gpu_power_w


async def _send(driver: MinerDriver | GpuDriver | None, order: Order) -> bool:
    """Send one order through its driver (the order's command says which kind of driver it is)."""
    if driver is None:
        return False
    if order.command is Command.CAP:
        return await cast(GpuDriver, driver).set_power_cap(int(order.value_w or 0))
    miner = cast(MinerDriver, driver)
    if order.command is Command.SLEEP:
        return await miner.sleep()
    if order.command is Command.WAKE:
        if order.value_w is not None and not await miner.set_power_limit(order.value_w):
            return False
        return await miner.wake()
    if order.command is Command.LIMIT:
        return await miner.set_power_limit(int(order.value_w or 0))
    raise FleetError(f"{order.command.value} is not a device command", hint="jobs go through their hook")


def _next_readback_s(
    order: Order,
    before: tuple[float, float | None],
    now: tuple[float, float],
    s: ControlSettings,
) -> float:
    """When to read again: when the draw, moving as fast as it did since the command, should arrive.

    A read while a miner still ramps proves nothing and costs two connections; extrapolating the
    observed ramp rate puts the next read where it can confirm (between ``readback_interval_s / 4``
    and ``2 · readback_interval_s``; the plain interval when the draw did not move).
    """
    (t0, p0), (t1, p1) = before, now
    if p0 is None or t1 <= t0 or p1 == p0:
        return s.readback_interval_s
    rate = (p1 - p0) / (t1 - t0)
    goal = _settle_w(order)
    left_s = (goal - p1) / rate
    if left_s <= 0:  # moving away from the goal, or already past it: read at the plain pace
        return s.readback_interval_s
    return min(2 * s.readback_interval_s, max(s.readback_interval_s / 4, left_s * 1.05))


def _settle_w(order: Order) -> float:
    """The draw an order settles at: asleep at board power, awake at the expected draw, or its limit."""
    if order.command in (Command.SLEEP, Command.WAKE) or order.value_w is None:
        return order.expected_power_w
    return float(order.value_w)


def _slack_w(target_w: float) -> float:
    """How far read-back mining power may miss its target and still count as reached."""
    return 0.01 * target_w + 1000.0


def _verified(order: Order, slot: _Slot, reading: MinerReading | GpuReading) -> bool:
    if isinstance(reading, GpuReading):
        cap = float(order.value_w or 0)
        return (
            abs(reading.power_cap_w - cap) <= 1.0 and reading.power_w <= cap * (1 + _LIMIT_SLACK) + _SLACK_W
        )
    assert isinstance(slot.entry, MinerEntry)
    rated = slot.entry.model.power_w
    if order.command is Command.SLEEP:
        return not reading.mining and reading.power_w <= _SLEEP_SHARE * rated
    if order.command is Command.WAKE:
        limit_ok = order.value_w is None or (
            reading.power_limit_w is not None and abs(reading.power_limit_w - order.value_w) <= 1.0
        )
        return reading.mining and limit_ok and reading.power_w >= _WAKE_SHARE * order.expected_power_w
    limit = float(order.value_w or 0)
    return (
        reading.power_limit_w is not None
        and abs(reading.power_limit_w - limit) <= 1.0
        and reading.power_w <= limit * (1 + _LIMIT_SLACK) + _SLACK_W
    )
