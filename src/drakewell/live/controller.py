"""The live site controller: every interval and on every event, decide, command, verify, sign.

One asyncio task consumes one queue of signals (price ticks, demand-response events, watchdog
checks), so decisions and fleet commands never interleave:

- **Price tick for interval t.** The decision of the previous interval is committed (and its
  measured energy signed); intervals that got no price are committed as safe-mode decisions (their
  price taken as the day-ahead forecast); the price is written into the inputs and
  :meth:`MpcPlanner.decide` — the backtest's own ``mpc`` step — decides ``t``. The decision is
  journalled, then the mining setpoint goes to the fleet (scaled from the site's mining IT MW to the
  inventory's rated power), then the read-back result is journalled.
- **Event.** The VEN's handler values it (:func:`~drakewell.live.signals.event_value`), journals it
  with the opt answer and returns the answer at once. An opted-in event caps the facility at its
  target in every interval it overlaps (the backtest's emergency cap); when it touches the current
  interval, that interval is re-decided and re-commanded. Time to target, MWh short and whether the
  event was obeyed are recorded per event.
- **Watchdog.** No price for ``stale_after_intervals`` intervals, or no answer from the VTN for
  ``unreachable_after_s``: safe mode (mining at most ``safe_mining_fraction`` of its capacity) until
  the signal returns.

Measured site power is the read-back mining power (scaled back to the site) × the mining PUE plus
the decided AI power × the AI PUE (GPUs outside the inventory are counted at their decided draw).

**Restart.** The journal is read first: committed intervals are committed again from their
journalled decisions (no re-solve), the open interval and its last command are restored, opted-in
events are remembered (a VTN that re-sends one gets the same answer and nothing is re-commanded). A
command journalled without its result is not re-sent when a read-back shows the fleet at its
target; otherwise it is re-sent once, journalled as a resend. Prices resume after the open interval.

**Horizons.** A live run rolls from one horizon to the next (``continues=True``). Each horizon's
``end`` record carries the planner state it ended in (:meth:`Controller.carried`: the last mining
level, the mining held off for the minimum off time, the 4CP running peaks); the next horizon's
``start`` record repeats it, so a restart anywhere (inside a later horizon, or between two) starts
from the state an uninterrupted run would have had. Events of every horizon, with what was verified
and settled, are read back from the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from drakewell.core.fields import as_float, as_int, as_optional_float, as_str, json_list, json_object
from drakewell.core.jsontypes import JsonMapping, JsonObject, JsonValue
from drakewell.dispatch.policies import MpcPlanner, MpcPolicy, StepDecision
from drakewell.dispatch.types import DispatchInputs
from drakewell.fleet.control import Setpoint
from drakewell.live.config import LiveConfig, LiveError
from drakewell.live.journal import Journal
from drakewell.live.signals import DrEvent, PriceTick, ReplayClock, WallClock, event_target_mw, event_value

if TYPE_CHECKING:
    from drakewell.fleet.control import ApplyResult, Fleet
    from drakewell.live.meter import IntervalMeter
    from drakewell.live.metrics import LiveMetrics
    from drakewell.live.ven import Ven

__all__ = ["Controller", "EventRecord", "PriceSource", "step_from_json", "step_to_json"]


_PRIORITY = {"event": 0, "check": 1, "price": 2, "end": 3}  # queue order: events first
_Item = PriceTick | str | None  # what a queued signal carries: a price, an event id, nothing


class PriceSource(Protocol):
    def ticks(self, after: pd.Timestamp | None = None) -> AsyncIterator[PriceTick]: ...


def step_to_json(step: StepDecision) -> JsonObject:
    plan = step.reserve_plan
    return {
        "t": step.t,
        "mining_mw": step.mining_mw,
        "inference_mw": step.inference_mw,
        "spot_mw": step.spot_mw,
        "training_by_job_mw": {str(k): v for k, v in step.training_by_job_mw.items()},
        "reserve_mw": step.reserve_mw,
        "status": step.status,
        "reserve_plan": None if plan is None else [plan[0], plan[1], [float(x) for x in plan[2]]],
    }


def step_from_json(obj: JsonMapping) -> StepDecision:
    plan = obj.get("reserve_plan")
    if plan is not None and not isinstance(plan, list):
        raise TypeError(f"reserve_plan is not a list: {plan!r}")
    return StepDecision(
        t=as_int(obj["t"]),
        mining_mw=as_float(obj["mining_mw"]),
        inference_mw=as_float(obj["inference_mw"]),
        spot_mw=as_float(obj["spot_mw"]),
        training_by_job_mw={int(k): as_float(v) for k, v in json_object(obj["training_by_job_mw"]).items()},
        reserve_mw=as_float(obj["reserve_mw"]),
        status=str(obj["status"]),
        reserve_plan=None
        if plan is None
        else (as_int(plan[0]), as_int(plan[1]), np.asarray(plan[2], dtype=float)),
    )


@dataclass
class EventRecord:
    event: DrEvent
    opt: str
    target_mw: float | None  # facility MW (None: nothing to do)
    received_s: float  # time.monotonic() when the VEN handed it over
    start: pd.Timestamp  # site time
    end: pd.Timestamp
    verified_s: float | None = None
    mwh_short: float = 0.0
    acted: bool = False
    closed: bool = False

    @property
    def time_to_target_s(self) -> float | None:
        return None if self.verified_s is None else self.verified_s - self.received_s

    def summary(self) -> JsonObject:
        return {
            "event_id": self.event.event_id,
            "opt": self.opt,
            "target_mw": self.target_mw,
            "time_to_target_s": self.time_to_target_s,
            "mwh_short": self.mwh_short,
            "obeyed": self.opt == "optIn" and self.verified_s is not None and self.mwh_short <= 1e-6,
        }


@dataclass
class _State:
    c: int = -1  # the open interval (decided, not committed)
    current: StepDecision | None = None
    last_price_t: int = -1
    cmd_seq: int = 0
    safe: set[str] = field(default_factory=set)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (site mining IT W, TH/s)


class Controller:
    """See the module docstring. ``fleet=None`` decides and journals without commanding (dry run)."""

    def __init__(
        self,
        inputs: DispatchInputs,
        config: LiveConfig,
        journal: Journal,
        *,
        prices: PriceSource,
        clock: ReplayClock | WallClock,
        fleet: Fleet | None = None,
        fleet_rated_mining_w: float | None = None,
        meter: IntervalMeter | None = None,
        metrics: LiveMetrics | None = None,
        policy: MpcPolicy | None = None,
        apply_deadline_s: float | None = None,
        continues: bool = False,
    ) -> None:
        self.site = inputs.site
        # what is known before any price arrives: the day-ahead forecast stands in for each price
        self.inputs = replace(
            inputs,
            price_usd_per_mwh=inputs.forecast_usd_per_mwh.astype(np.float64).copy(),
            emergency_cap_mw=inputs.emergency_cap_mw.astype(np.float64).copy(),
        )
        self.base_cap = inputs.emergency_cap_mw.astype(np.float64).copy()
        self.config, self.journal = config, journal
        self.prices, self.clock, self.fleet = prices, clock, fleet
        self.meter, self.metrics = meter, metrics
        self.apply_deadline_s = apply_deadline_s
        self.planner = MpcPlanner(policy or MpcPolicy(), self.inputs)
        self.index = self.inputs.interval_start_utc
        self.step = pd.Timedelta(hours=self.inputs.hours)
        self.position = {ts: i for i, ts in enumerate(self.index)}
        mining_it = self.site.mining_it_mw
        rated = fleet_rated_mining_w if fleet_rated_mining_w is not None else mining_it * 1e6
        self.scale = (rated / 1e6) / mining_it if mining_it > 0 else 0.0  # fleet MW per site MW
        # GPUs in the inventory: their roles are commanded too, scaled by rated power like mining
        gpus = fleet.inventory.gpus if fleet is not None else ()
        self.gpu_role: dict[str, str] = {g.id: g.role for g in gpus}
        gpu_rated_mw = sum(g.model.power_w_per_gpu for g in gpus) / 1e6
        self.gpu_scale = gpu_rated_mw / self.site.gpu_it_mw if self.site.gpu_it_mw > 0 else 0.0
        self.events: dict[str, EventRecord] = {}
        self.decision_s: list[float] = []
        self.state = _State()
        self.ven: Ven | None = None
        # events first, then watchdog checks, then prices (FIFO within a kind)
        self._queue: asyncio.PriorityQueue[tuple[int, int, str, _Item]] = asyncio.PriorityQueue()
        self._seq = 0
        self._prices_waiting = 0
        self._last_arrived: pd.Timestamp | None = None
        self.finished = False
        self._base = 0
        self.continues = continues
        self._resume()

    # -- journal and restart ------------------------------------------------------------------

    def _resume(self) -> None:
        j, st = self.journal, self.state
        head = {"first": self.index[0].isoformat(), "n": int(self.inputs.n), "hours": self.inputs.hours}
        starts = [i for i, r in enumerate(j.records) if r["kind"] == "start"]
        same = False
        st.cmd_seq = max((as_int(r["seq"]) for r in j.of_kind("command")), default=0)
        for r in j.of_kind("safe_mode"):
            (st.safe.add if r["on"] else st.safe.discard)(as_str(r["why"]))
        if starts:
            last = j.records[starts[-1]]
            same = {k: last[k] for k in head} == head
            ended = any(r["kind"] == "end" for r in j.records[starts[-1] :])
            if not same and not ended:
                raise LiveError(
                    f"journal {j.path} belongs to another horizon ({last['first']}, {last['n']} intervals)",
                    hint="pass the journal of this run, or a new path to start afresh",
                )
        carry: JsonValue = None
        if not starts or not same:  # a new journal, or the next horizon of a live run
            if self.continues and starts:  # the state the previous horizon ended in (journalled at its end)
                carry = next((r.get("carry") for r in reversed(j.records) if r["kind"] == "end"), None)
            self._base = len(j.records)
            j.append({"kind": "start", **head, **({"carry": carry} if carry is not None else {})})
        else:
            self._base = starts[-1]
            carry = j.records[self._base].get("carry")
        if carry is not None:
            self._take_carry(json_object(carry))
        self._restore_events()
        self._apply_caps()
        decided: dict[int, JsonObject] = {}
        for r in self._records("decision"):
            decided[as_int(json_object(r["step"])["t"])] = r
        for t in sorted(decided):
            r = decided[t]
            self.inputs.price_usd_per_mwh[t] = as_float(r["price"])
            if r.get("priced", True):
                st.last_price_t = t
            step = step_from_json(json_object(r["step"]))
            if st.current is not None:
                self.planner.commit(st.current)
            st.current, st.c = step, t
        self.finished = any(True for _ in self._records("end"))

    def _records(self, kind: str | None = None) -> list[JsonObject]:
        """This horizon's journal records (of one kind)."""
        records = self.journal.records[self._base :]
        return records if kind is None else [r for r in records if r["kind"] == kind]

    def _restore_events(self) -> None:
        """Every horizon's events (one may reach into this one), with what was verified and settled. An
        opted-in event counts as acted on once an interval it covers was re-decided for it (as
        :meth:`_on_event_act` does); one the crash came before is acted on when it reaches the open
        interval."""
        first, step = None, self.step
        for r in self.journal.records:
            kind = r["kind"]
            if kind == "start":
                first, step = pd.Timestamp(as_str(r["first"])), pd.Timedelta(hours=as_float(r["hours"]))
            elif kind == "event":
                ev = DrEvent.from_json(json_object(r["event"]))
                self.events[ev.event_id] = EventRecord(
                    ev,
                    as_str(r["opt"]),
                    as_optional_float(r["target_mw"]),
                    time.monotonic(),
                    pd.Timestamp(as_str(r["start"])),
                    pd.Timestamp(as_str(r["end"])),
                    acted=r["opt"] != "optIn" or r["target_mw"] is None,
                    closed=bool(r.get("closed", False)),
                )
            elif kind == "decision" and str(r["reason"]).startswith("event:") and first is not None:
                rec = self.events.get(str(r["reason"]).removeprefix("event:"))
                lo = first + as_int(json_object(r["step"])["t"]) * step
                if rec is not None and rec.start < lo + step and rec.end > lo:
                    rec.acted = True
            elif kind in ("event_verified", "event_result") and r["event_id"] in self.events:
                rec = self.events[as_str(r["event_id"])]
                seconds = r["seconds"] if kind == "event_verified" else r["time_to_target_s"]
                if seconds is not None:
                    rec.verified_s = rec.received_s + as_float(seconds)
                if kind == "event_result":
                    rec.mwh_short, rec.closed = as_float(r["mwh_short"]), True

    def carried(self) -> JsonObject:
        """What the next horizon of a live run starts from (journalled with ``end``): the last mining
        level, the mining held off (minimum off time), the 4CP running peaks per month and the window
        peaks of past days (what a running peak's chance of standing is judged by)."""
        p = self.planner
        return {
            "m_prev": float(p.m_prev),
            "recent": [float(x) for x in p.recent],
            "best": {str(month): float(price) for month, price in p.best.items()},
            "day_peaks": [float(x) for x in p.day_peaks],
            "peak_day": p.peak_day,
            "today_peak": float(p.today_peak),
        }

    def _take_carry(self, carry: JsonMapping) -> None:
        q = self.planner
        q.m_prev = as_float(carry["m_prev"])
        q.best = {int(month): as_float(price) for month, price in json_object(carry["best"]).items()}
        if "day_peaks" in carry:  # journals written before peaks were carried start without them
            q.day_peaks = [as_float(x) for x in json_list(carry["day_peaks"])]
            q.peak_day = None if carry["peak_day"] is None else as_int(carry["peak_day"])
            q.today_peak = as_float(carry["today_peak"])
        recent = np.asarray(carry["recent"], dtype=float)
        if len(recent) == len(q.recent):  # the same minimum off time
            q.recent = recent

    async def _finish_interrupted_command(self) -> None:
        """A command journalled without its result: verify it by read-back; re-send only if needed."""
        j, st = self.journal, self.state
        kinds = [r["kind"] for r in self._records()]
        last_decision = max((i for i, k in enumerate(kinds) if k == "decision"), default=-1)
        last_command = max((i for i, k in enumerate(kinds) if k == "command"), default=-1)
        if last_decision > last_command and st.current is not None:
            await self._command()  # decided, never commanded: command it now (once)
            return
        commands = self._records("command")
        if not commands or self.fleet is None:
            return
        cmd = commands[-1]
        if any(r["seq"] == cmd["seq"] for r in self._records("result")):
            return
        snap = await self.fleet.refresh()
        target_w = as_float(cmd["fleet_mw"]) * 1e6
        if abs(snap.mining_power_w - target_w) <= 0.01 * target_w + 1000.0:
            j.append(
                {
                    "kind": "result",
                    "seq": cmd["seq"],
                    "reached": True,
                    "measured_fleet_mw": snap.mining_power_w / 1e6,
                    "after_restart": True,
                }
            )
            return
        ai = cmd.get("ai_fleet_mw")
        await self._send(
            as_int(cmd["t"]),
            as_float(cmd["mining_mw"]),
            resend_of=as_int(cmd["seq"]),
            ai_fleet_mw=None if ai is None else {role: as_float(mw) for role, mw in json_object(ai).items()},
        )

    # -- site power ---------------------------------------------------------------------------

    def ai_facility_mw(self, step: StepDecision | None) -> float:
        if step is None:
            return 0.0
        return (step.inference_mw + step.training_mw + step.spot_mw) * self.site.ai_pue

    @staticmethod
    def ai_classes(step: StepDecision) -> dict[str, float]:
        return {"inference": step.inference_mw, "training": step.training_mw, "spot": step.spot_mw}

    def measured_ai_mw(self) -> dict[str, float]:
        """Read-back GPU power per role present in the inventory, in site MW."""
        if self.fleet is None or not self.gpu_role or self.gpu_scale <= 0:
            return {}
        out: dict[str, float] = dict.fromkeys(set(self.gpu_role.values()), 0.0)
        for d in self.fleet.snapshot().devices:
            role = self.gpu_role.get(d.device)
            if d.kind == "gpu" and role is not None:
                out[role] += d.power_w / 1e6 / self.gpu_scale
        return out

    def measured_facility_mw(self) -> float:
        """Read-back mining power (site MW) × mining PUE + AI × AI PUE, read back for the GPU roles the
        inventory has and at the decided draw for the rest."""
        step = self.state.current
        if self.fleet is None or self.scale <= 0:
            mining = step.mining_mw if step else 0.0
        else:
            mining = self.fleet.snapshot().mining_power_w / 1e6 / self.scale
        ai = self.ai_classes(step) if step else {}
        ai.update(self.measured_ai_mw())
        return mining * self.site.mining_pue + sum(ai.values()) * self.site.ai_pue

    # -- caps from events ---------------------------------------------------------------------

    def _covers(self, rec: EventRecord, t: int) -> bool:
        lo = self.index[t]
        return rec.start < lo + self.step and rec.end > lo

    def _apply_caps(self) -> None:
        caps = self.base_cap.copy()
        for rec in self.events.values():
            if rec.opt != "optIn" or rec.target_mw is None:
                continue
            covered = np.asarray((self.index < rec.end) & (self.index + self.step > rec.start))
            caps[covered] = np.minimum(caps[covered], rec.target_mw)
        self.inputs.emergency_cap_mw[:] = caps

    # -- the VEN's handler (quick: value, journal, answer) ------------------------------------

    async def on_event(self, event: DrEvent) -> str:
        known = self.events.get(event.event_id)
        if known is not None and known.event.modification == event.modification:
            return known.opt  # a re-sent event: same answer, nothing re-commanded
        received = time.monotonic()
        st = self.state
        step = st.current
        facility = (step.mining_mw * self.site.mining_pue if step else 0.0) + self.ai_facility_mw(step)
        target = event_target_mw(event, self.config.openadr, facility) if self.config.openadr else None
        start, end = self.clock.site_time(event.start_wall), self.clock.site_time(event.end_wall)
        if event.status.lower() == "cancelled":
            opt, value = "optIn", None
            target = None
        elif target is None:
            level0 = event.signal_name.upper() == "SIMPLE" and round(event.value) <= 0
            opt, value = ("optIn" if level0 else "optOut"), None
        else:
            t = max(st.c, 0)
            assert self.config.openadr is not None
            value = event_value(
                target_mw=target,
                hours=max((end - start).total_seconds(), 0.0) / 3600.0,
                price_usd_per_mwh=float(self.inputs.price_usd_per_mwh[t]),
                mining_facility_mw=step.mining_mw * self.site.mining_pue if step else 0.0,
                ai_facility_mw=self.ai_facility_mw(step),
                mining_revenue_usd_per_mwh=float(self.inputs.mining_revenue_usd_per_mwh[t]),
                mining_pue=self.site.mining_pue,
                ai_revenue_usd_per_mwh=self.site.ai_revenue_usd_per_mwh,
                ai_penalty_usd_per_mwh=self.site.shed_penalty_usd_per_mwh,
                ai_pue=self.site.ai_pue,
                payment_usd_per_mwh=self.config.openadr.payment_usd_per_mwh,
            )
            opt = value.opt
        self.journal.append(
            {
                "kind": "event",
                "event": event.to_json(),
                "opt": opt,
                "target_mw": target,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "payment_usd": None if value is None else value.payment_usd,
                "margin_lost_usd": None if value is None else value.margin_lost_usd,
            }
        )
        rec = EventRecord(event, opt, target, received, start, end)
        if known is not None:  # a modified event replaces the old one
            known.closed = True
        self.events[event.event_id] = rec
        self._put("event", event.event_id)
        return opt

    # -- the loop -----------------------------------------------------------------------------

    async def run(self, *, max_wall_s: float | None = None, ven: Ven | None = None) -> None:
        """Run until the horizon's last interval is committed or ``max_wall_s`` passes."""
        if self.finished:
            return
        self.ven = ven
        await self._finish_interrupted_command()
        st = self.state
        after = self.index[st.c] if st.c >= 0 else None
        feeder = asyncio.create_task(self._feed(after))
        watchdog = asyncio.create_task(self._watch())
        deadline = None if max_wall_s is None else time.monotonic() + max_wall_s
        try:
            while not self.finished:
                timeout = None if deadline is None else deadline - time.monotonic()
                if timeout is not None and timeout <= 0:
                    break
                try:
                    _, _, kind, item = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    break
                if kind == "price" and isinstance(item, PriceTick):
                    self._prices_waiting -= 1
                    await self._on_price(item)
                elif kind == "event" and isinstance(item, str):
                    await self._on_event_act(item)
                elif kind == "check":
                    await self._check()
                elif kind == "end":
                    await self._end()
        finally:
            for task in (feeder, watchdog):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _put(self, kind: str, item: _Item) -> None:
        self._seq += 1
        self._queue.put_nowait((_PRIORITY[kind], self._seq, kind, item))

    async def _feed(self, after: pd.Timestamp | None) -> None:
        async for tick in self.prices.ticks(after):
            if tick.interval_start_utc > self.index[-1]:
                break  # a live source runs on: this horizon is over
            self._last_arrived = tick.interval_start_utc
            self._prices_waiting += 1
            self._put("price", tick)
        # the source is done: wait out the last interval, then end
        await self.clock.sleep_until(self.index[-1] + self.step)
        self._put("end", None)

    async def _watch(self) -> None:
        period = min(max(self.clock.wall_seconds(self.step.total_seconds()) / 8, 0.05), 0.25)
        while True:
            await asyncio.sleep(period)
            self._put("check", None)

    def _decide(self, t: int, reason: str, *, priced: bool = True, safe: bool = False) -> StepDecision:
        t0 = time.perf_counter()
        step = self.planner.decide(t)
        if safe:
            step = self._safe_step(step)
        self.journal.append(
            {
                "kind": "decision",
                "reason": reason,
                "price": float(self.inputs.price_usd_per_mwh[t]),
                "priced": priced,
                "cap_mw": None
                if math.isinf(self.inputs.emergency_cap_mw[t])
                else float(self.inputs.emergency_cap_mw[t]),
                "at": self.clock.now().isoformat(),
                "step": step_to_json(step),
            }
        )
        elapsed = time.perf_counter() - t0
        self.decision_s.append(elapsed)
        if self.metrics is not None:
            self.metrics.decision.observe(elapsed)
            self.metrics.price.set(float(self.inputs.price_usd_per_mwh[t]))
            for name, mw in (
                ("mining", step.mining_mw),
                ("inference", step.inference_mw),
                ("training", step.training_mw),
                ("spot", step.spot_mw),
            ):
                self.metrics.setpoint.labels(name).set(mw)
            cap = self.inputs.emergency_cap_mw[t]
            self.metrics.cap.set(float(cap) if math.isfinite(cap) else float("nan"))
        return step

    async def _close_interval(self) -> None:
        """Commit the open interval: sign its measured energy, account events, advance the planner."""
        st = self.state
        if st.current is None:
            return
        t = st.c
        if self.fleet is not None:
            in_event = any(
                r.opt == "optIn" and r.target_mw is not None and self._covers(r, t)
                for r in self.events.values()
            )
            # a fresh read-back where it is signed or settles an event; else the latest one
            snap = await self.fleet.refresh() if self.meter is not None or in_event else self.fleet.snapshot()
            self._sample(snap.mining_power_w, snap.hashrate_th_s)
        samples = st.samples or [(st.current.mining_mw * 1e6, 0.0)]
        mean_mining_mw = sum(w for w, _ in samples) / len(samples) / 1e6
        facility = mean_mining_mw * self.site.mining_pue + self.ai_facility_mw(st.current)
        for rec in self.events.values():
            if rec.opt == "optIn" and rec.target_mw is not None and self._covers(rec, t):
                lo, hi = max(rec.start, self.index[t]), min(rec.end, self.index[t] + self.step)
                hours = max((hi - lo).total_seconds(), 0.0) / 3600.0
                rec.mwh_short += max(facility - rec.target_mw, 0.0) * hours
                if rec.end <= self.index[t] + self.step and not rec.closed:
                    rec.closed = True
                    self.journal.append({"kind": "event_result", **rec.summary()})
        if self.meter is not None and st.samples:
            start_s = int(self.index[t].timestamp())
            signed = self.meter.reading(
                start_s,
                start_s + int(self.step.total_seconds()),
                [(w * self.scale, h) for w, h in st.samples],  # the fleet's own watts
            )
            if signed is not None:
                try:
                    answer = await asyncio.to_thread(self.meter.submit, signed)
                except Exception as exc:  # the sink is down: the reading stays in the journal
                    answer = {"error": str(exc)}
                self.journal.append(
                    {"kind": "reading", "t": t, "reading": signed.to_json(), "answer": answer}
                )
        self.planner.commit(st.current)
        st.current, st.samples = None, []

    def _sample(self, fleet_mining_w: float, hashrate: float) -> None:
        site_w = fleet_mining_w / self.scale if self.scale > 0 else fleet_mining_w
        self.state.samples.append((site_w, hashrate))
        if self.metrics is not None:
            self.metrics.measured.labels("mining").set(site_w / 1e6)

    async def _on_price(self, tick: PriceTick) -> None:
        t = self.position.get(tick.interval_start_utc)
        st = self.state
        if t is None or t <= st.c:
            return
        stale = t - max(st.last_price_t, -1) - 1 >= self.config.stale_after_intervals
        if stale:
            self._safe_on("price")  # the gap is over; the intervals it covered ran safe
        await self._close_interval()
        for k in range(st.c + 1, t):  # intervals without a price: the forecast stands in (safe if stale)
            st.current, st.c = self._decide(k, "no price", priced=False, safe=stale), k
            await self._close_interval()
        self.inputs.price_usd_per_mwh[t] = tick.usd_per_mwh
        st.last_price_t = t
        self._safe_off("price")
        step = self._decide(t, "interval")
        st.current, st.c = step, t
        if self.clock.speed != 0 and self._prices_waiting > 0:
            return  # running behind real time: a newer interval's setpoint supersedes this one
        await self._command()

    def _safe_step(self, step: StepDecision) -> StepDecision:
        limit = self.config.safe_mining_fraction * self.site.mining_it_mw
        return replace(step, mining_mw=min(step.mining_mw, limit))

    def _safe_on(self, why: str) -> bool:
        if why in self.state.safe:
            return False
        self.state.safe.add(why)
        self.journal.append({"kind": "safe_mode", "on": True, "why": why, "at": self.clock.now().isoformat()})
        if self.metrics is not None:
            self.metrics.safe_mode.set(1)
        return True

    def _safe_off(self, why: str) -> None:
        if why not in self.state.safe:
            return
        self.state.safe.discard(why)
        self.journal.append(
            {"kind": "safe_mode", "on": False, "why": why, "at": self.clock.now().isoformat()}
        )
        if self.metrics is not None and not self.state.safe:
            self.metrics.safe_mode.set(0)

    async def _check(self) -> None:
        st = self.state
        now = self.clock.now()
        changed = False
        if self.clock.speed != 0 and now >= self.index[-1] + self.step + self.step / 10:
            self._put("end", None)  # the horizon is over even if its last prices never came
        if self.clock.speed != 0 and (st.last_price_t >= 0 or st.c >= 0):  # unpaced: see _on_price
            ref = self.index[max(st.last_price_t, 0)]
            if self._last_arrived is not None:  # arrived and waiting counts as a price
                ref = max(ref, self._last_arrived)
            grace = self.step / 10
            if now >= ref + self.config.stale_after_intervals * self.step + grace:
                changed |= self._safe_on("price")
        if self.ven is not None and self.config.openadr is not None:
            if not self.ven.reachable():
                changed |= self._safe_on("vtn")
            elif "vtn" in st.safe:
                self._safe_off("vtn")
                changed = True
        # an opted-in event that reaches the open interval only now (it was announced ahead)
        for rec in self.events.values():
            if rec.opt == "optIn" and not rec.acted and st.c >= 0 and self._covers(rec, st.c):
                await self._on_event_act(rec.event.event_id)
        if changed and st.current is not None:
            await self._command()

    async def _on_event_act(self, event_id: str) -> None:
        rec = self.events.get(event_id)
        st = self.state
        if rec is None:
            return
        c = max(st.c, 0)
        before = float(self.inputs.emergency_cap_mw[c])
        self._apply_caps()
        if st.c < 0 or st.current is None:
            return
        binding = rec.opt == "optIn" and rec.target_mw is not None and self._covers(rec, st.c)
        if not binding and before == float(self.inputs.emergency_cap_mw[c]):
            return  # nothing changes now; a later interval it reaches decides with its cap
        rec.acted = rec.acted or binding
        st.current = self._decide(st.c, f"event:{event_id}")
        await self._command(event=rec if binding else None)

    async def _command(self, event: EventRecord | None = None) -> None:
        st = self.state
        if st.current is None:
            return
        mining = st.current.mining_mw
        if st.safe:
            mining = self._safe_step(st.current).mining_mw
        ai = {role: mw * self.gpu_scale for role, mw in self.ai_classes(st.current).items()}
        await self._send(st.c, mining, event=event, ai_fleet_mw=ai)

    async def _send(
        self,
        t: int,
        mining_mw: float,
        *,
        event: EventRecord | None = None,
        resend_of: int | None = None,
        ai_fleet_mw: dict[str, float] | None = None,
    ) -> ApplyResult | None:
        """Journal the command for interval ``t``, apply it to the fleet, journal the read-back and
        verify the opted-in events it serves."""
        fleet_mw = max(mining_mw * self.scale, 0.0)
        roles = set(self.gpu_role.values())
        ai = {r: max(mw, 0.0) for r, mw in (ai_fleet_mw or {}).items() if r in roles}
        seq = self._journal_command(t, mining_mw, fleet_mw, ai, resend_of)
        if self.fleet is None:
            self.journal.append({"kind": "result", "seq": seq, "dry_run": True})
            return None
        setpoint = Setpoint(
            mining_mw=fleet_mw,
            inference_mw=ai.get("inference"),
            training_mw=ai.get("training"),
            spot_mw=ai.get("spot"),
        )
        try:
            result = await self.fleet.apply(setpoint, deadline_s=self.apply_deadline_s)
        except Exception as exc:  # the service keeps running: the failure is journalled and counted
            self.journal.append({"kind": "result", "seq": seq, "reached": False, "error": str(exc)[:500]})
            if self.metrics is not None:
                self.metrics.failures.inc()
            return None
        done = time.monotonic()
        self._journal_result(seq, result, self.fleet.snapshot().hashrate_th_s)
        self._verify_events(t, event, result, done)
        return result

    def _journal_command(
        self, t: int, mining_mw: float, fleet_mw: float, ai: dict[str, float], resend_of: int | None
    ) -> int:
        """Journal a command (before it is sent); returns its sequence number."""
        st = self.state
        st.cmd_seq += 1
        record: JsonObject = {
            "kind": "command",
            "seq": st.cmd_seq,
            "t": t,
            "mining_mw": mining_mw,
            "fleet_mw": fleet_mw,
        }
        if ai:
            record["ai_fleet_mw"] = {role: mw for role, mw in ai.items()}
        if resend_of is not None:
            record["resend_of"] = resend_of
        self.journal.append(record)
        return st.cmd_seq

    def _journal_result(self, seq: int, result: ApplyResult, hashrate_th_s: float) -> None:
        """Sample, count and journal what the read-back after command ``seq`` showed."""
        self._sample(result.mining_power_w, hashrate_th_s)
        if self.metrics is not None:
            for role, mw in self.measured_ai_mw().items():
                self.metrics.measured.labels(role).set(mw)
        failures = len(result.failed)
        self.journal.append(
            {
                "kind": "result",
                "seq": seq,
                "reached": result.reached,
                "measured_fleet_mw": result.mining_power_w / 1e6,
                "elapsed_s": result.elapsed_s,
                "failed": failures,
            }
        )
        if self.metrics is not None and failures:
            self.metrics.failures.inc(failures)

    def _verify_events(self, t: int, event: EventRecord | None, result: ApplyResult, done: float) -> None:
        """Mark verified (at ``done``) each opted-in event, ``event`` or one covering ``t``, that the
        reached setpoint brought the facility down to."""
        for rec in self.events.values():
            if (
                rec.opt == "optIn"
                and rec.target_mw is not None
                and rec.verified_s is None
                and (rec is event or self._covers(rec, t))
                and result.reached
                and self.measured_facility_mw() <= rec.target_mw * 1.01 + 1e-3
            ):
                rec.verified_s = done
                self.journal.append(
                    {
                        "kind": "event_verified",
                        "event_id": rec.event.event_id,
                        "seconds": done - rec.received_s,
                    }
                )
                if self.metrics is not None:
                    self.metrics.dr_response.observe(done - rec.received_s)

    async def _end(self) -> None:
        await self._close_interval()
        for rec in self.events.values():
            if not rec.closed and rec.opt == "optIn":
                rec.closed = True
                self.journal.append({"kind": "event_result", **rec.summary()})
        self.journal.append({"kind": "end", "at": self.clock.now().isoformat(), "carry": self.carried()})
        self.finished = True

    # -- results ------------------------------------------------------------------------------

    def live_state(self, recent: int = 20) -> JsonObject:
        """What the live page shows (read from the exporter's thread: records are only appended)."""
        records = self.journal.records[-400:]
        decisions: list[JsonValue] = [_decision_row(r) for r in records if r["kind"] == "decision"]
        devices = self.fleet.snapshot().devices if self.fleet is not None else ()
        return {
            "site_time": self.clock.now().isoformat(),
            "interval": self.state.c,
            "measured_facility_mw": self.measured_facility_mw(),
            "classes": self.class_mw(),
            "devices": len(devices),
            "devices_up": sum(1 for d in devices if d.reachable and d.reading is not None),
            "safe_mode": sorted(self.state.safe),
            "decisions": decisions[-recent:][::-1],
            "events": [rec.summary() for rec in list(self.events.values())[-recent:]][::-1],
        }

    def class_mw(self) -> list[JsonValue]:
        """IT MW decided and read back per class of the open interval (site MW; ``measured_mw`` is
        ``None`` where nothing is read back: a dry run, or GPU roles the inventory lacks)."""
        step = self.state.current
        decided = {"mining": step.mining_mw, **self.ai_classes(step)} if step is not None else {}
        measured: dict[str, float] = {}
        if self.fleet is not None and self.scale > 0:
            measured["mining"] = self.fleet.snapshot().mining_power_w / 1e6 / self.scale
        measured.update(self.measured_ai_mw())
        return [
            {"class": name, "setpoint_mw": decided.get(name), "measured_mw": measured.get(name)}
            for name in ("mining", "inference", "training", "spot")
        ]

    def decisions(self) -> dict[int, StepDecision]:
        """The last journalled decision of every interval (what was, or will be, committed)."""
        out: dict[int, StepDecision] = {}
        for r in self._records("decision"):
            step = step_from_json(json_object(r["step"]))
            out[step.t] = step
        return out


def _decision_row(r: JsonObject) -> JsonObject:
    """One journalled decision as a row of the live page."""
    step = json_object(r["step"])
    return {
        "t": step["t"],
        "reason": r["reason"],
        "price": r["price"],
        "cap_mw": r["cap_mw"],
        **{k: step[k] for k in ("mining_mw", "inference_mw", "spot_mw")},
        "training_mw": sum(as_float(mw) for mw in json_object(step["training_by_job_mw"]).values()),
    }
