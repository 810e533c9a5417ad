"""Where cells run: one narrow seam, a serial executor in this process, and Ray.

An executor takes heavy inputs once (``share(key, value)``), accepts tasks (``submit(task) ->
ticket``) and hands back finished ones one at a time (``wait_one() -> (ticket, outcome)``). It never
retries: the runner does, the same way for every executor. :class:`SerialExecutor` runs each task
when it is collected (the reference, and the double in tests); :class:`RayExecutor` puts shared
inputs in the object store once (``ray.put``) and passes their references to every task, so a
price frame is stored once, not once per cell.

Ray is an optional extra: :func:`require_ray` imports it, or says how to install it.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import ModuleType
from typing import TYPE_CHECKING, Protocol, TypeAlias

import pandas as pd

from drakewell.core.errors import SweepError
from drakewell.sweep.task import CellResult, CellTask, PriceFrames, run_cell

if TYPE_CHECKING:
    from ray import ObjectRef
    from ray.remote_function import RemoteFunction

__all__ = [
    "INSTALL_HINT",
    "CellRunner",
    "Executor",
    "Outcome",
    "RayExecutor",
    "SerialExecutor",
    "SharedInput",
    "describe_error",
    "require_ray",
    "start_ray",
]

INSTALL_HINT = "install the sweep extra: pip install 'drakewell[sweep]'"
DEFAULT_OBJECT_STORE_MB = 256
START_ATTEMPTS = 3

SharedInput: TypeAlias = PriceFrames | pd.Series
"""A heavy input many cells read: a price source's frames, or a daily hashprice series."""
CellRunner: TypeAlias = Callable[[CellTask, PriceFrames, "pd.Series | None"], CellResult]
"""The task body: one cell, its price frames and its hashprice series (``None``: a constant)."""


@dataclass(frozen=True)
class Outcome:
    """A finished attempt: the task's value, or the error it ended with."""

    value: CellResult | None
    error: str | None
    worker: str


class Executor(Protocol):
    """The seam between the sweep runner and the engine that runs cells."""

    name: str
    slots: int  # how many tasks may be in flight

    def share(self, key: str, value: SharedInput) -> None: ...

    def submit(self, task: CellTask) -> int: ...

    def wait_one(self) -> tuple[int, Outcome]: ...

    def close(self) -> None: ...


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception (a Ray task error shows the error raised in the task)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class SerialExecutor:
    """Runs every task in this process, in submission order (``run`` is the task body)."""

    name = "serial"
    slots = 1

    def __init__(self, run: CellRunner = run_cell) -> None:
        self._run = run
        self._shared: dict[str, SharedInput] = {}
        self._queue: list[tuple[int, CellTask]] = []
        self._next = 0

    def share(self, key: str, value: SharedInput) -> None:
        self._shared[key] = value

    def submit(self, task: CellTask) -> int:
        self._next += 1
        self._queue.append((self._next, task))
        return self._next

    def wait_one(self) -> tuple[int, Outcome]:
        ticket, task = self._queue.pop(0)
        prices = self._shared[task.prices_key]
        hp = self._shared[task.hashprice_key] if task.hashprice_key else None
        assert isinstance(prices, PriceFrames) and not isinstance(hp, PriceFrames)
        try:
            value = self._run(task, prices, hp)
        except Exception as exc:  # a failed cell is recorded, never raised
            return ticket, Outcome(None, describe_error(exc), "serial")
        return ticket, Outcome(value, None, "serial")

    def close(self) -> None:
        self._queue.clear()


def require_ray() -> ModuleType:
    """The ``ray`` module, or a :class:`SweepError` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise SweepError("Ray is not installed, and sweeps run on Ray", hint=INSTALL_HINT) from None
    return ray


def start_ray(*, address: str | None = None, workers: int | None = None, object_store_mb: int = 256) -> None:
    """Start a local Ray (``workers`` CPUs, no dashboard, a bounded object store) or join ``address``.

    Ray's raylet gives its metrics and runtime-env processes a fixed window to report their ports;
    on a busy machine a local start can miss it, so a local start is tried :data:`START_ATTEMPTS`
    times.
    """
    ray = require_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet: dict[str, object] = {"logging_level": logging.WARNING, "log_to_driver": False}
    for attempt in range(START_ATTEMPTS):
        try:
            if address:
                ray.init(address=address, **quiet)
            else:
                ray.init(
                    num_cpus=workers or os.cpu_count() or 1,
                    include_dashboard=False,
                    object_store_memory=object_store_mb * 1024 * 1024,
                    **quiet,
                )
            return
        except Exception as exc:  # Ray raises a bare Exception when a node misses its start-up window
            ray.shutdown()
            if attempt + 1 < START_ATTEMPTS and not address:
                continue
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise SweepError(
                f"could not start {where}: {describe_error(exc)}",
                hint="check --address (e.g. 10.0.0.5:6379, from `ray start --head`)"
                if address
                else "check free memory and /tmp space, or retry on a less busy machine",
            ) from None


def _run_on_worker(task: CellTask, prices: PriceFrames, hashprice_series: pd.Series | None) -> CellResult:
    import ray

    value = run_cell(task, prices, hashprice_series)
    return replace(value, worker=ray.get_runtime_context().get_node_id())


class RayExecutor:
    """Cells as Ray tasks (one CPU each, spread over the nodes), inputs shared through the object store.

    Without ``address`` a local Ray starts with ``workers`` CPUs (default: this machine's); with it,
    the driver joins that cluster and keeps at most ``workers`` tasks in flight (default: the
    cluster's CPUs). A Ray already initialised in this process is used as it is. Ray is shut down
    on :meth:`close` only if this executor started it.
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        workers: int | None = None,
        object_store_mb: int = DEFAULT_OBJECT_STORE_MB,
    ) -> None:
        if workers is not None and workers < 1:
            raise SweepError(f"--workers {workers} must be at least 1", hint="e.g. --workers 2")
        ray = require_ray()
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            start_ray(address=address, workers=workers, object_store_mb=object_store_mb)
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.slots = workers or max(cpus, 1)
        self._remote: RemoteFunction = ray.remote(num_cpus=1, max_retries=0, scheduling_strategy="SPREAD")(
            _run_on_worker
        )
        self._refs: dict[str, ObjectRef[SharedInput]] = {}
        self._pending: dict[ObjectRef[CellResult], int] = {}
        self._next = 0

    def share(self, key: str, value: SharedInput) -> None:
        self._refs[key] = self._ray.put(value)

    def submit(self, task: CellTask) -> int:
        self._next += 1
        hp = self._refs[task.hashprice_key] if task.hashprice_key else None
        ref = self._remote.remote(task, self._refs[task.prices_key], hp)
        self._pending[ref] = self._next
        return self._next

    def wait_one(self) -> tuple[int, Outcome]:
        ready, _ = self._ray.wait(list(self._pending), num_returns=1)
        ref = ready[0]
        ticket = self._pending.pop(ref)
        try:
            value = self._ray.get(ref)
        except Exception as exc:  # task error, worker or node died: recorded, and retried by the runner
            logging.getLogger(__name__).debug("cell failed: %s", traceback.format_exc())
            return ticket, Outcome(None, describe_error(exc), "")
        return ticket, Outcome(value, None, value.worker)

    def close(self) -> None:
        for ref in list(self._pending):
            self._ray.cancel(ref, force=True)
        self._pending.clear()
        self._refs.clear()
        if self._started:
            self._ray.shutdown()
            self._started = False
