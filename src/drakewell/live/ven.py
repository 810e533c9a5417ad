"""The site's OpenADR 2.0b VEN (openleadr): registers with the VTN, hands events to the controller,
answers opt-in or opt-out, and reports ``powerReal`` (W, the measured site power).

openleadr's VEN polls the VTN (``oadrPoll`` every requested period); the answer to an event is sent
when ``on_event`` returns, so the controller decides the opt answer at once (value test, journal)
and acts on the fleet afterwards. Every message received from the VTN marks it reachable; when
registration fails the VEN retries every poll period until :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from drakewell.live.config import OpenAdrConfig
from drakewell.live.signals import DrEvent

if TYPE_CHECKING:
    from openleadr import OpenADRClient

__all__ = ["Ven"]

log = logging.getLogger(__name__)

OnEvent = Callable[[DrEvent], Awaitable[str]]


class Ven:
    def __init__(self, config: OpenAdrConfig, on_event: OnEvent, read_power_w: Callable[[], float]) -> None:
        self.config = config
        self._on_event = on_event
        self._read_power_w = read_power_w
        self.client: OpenADRClient | None = None
        self.last_contact_s: float | None = None  # time.monotonic() of the last message from the VTN
        self.started_s = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        # event id → (time.monotonic() of the VTN message that brought it, of its hand-over to on_event)
        self.handed_over_s: dict[str, tuple[float, float]] = {}

    def reachable(self, now_s: float | None = None) -> bool:
        """Heard from the VTN within ``unreachable_after_s`` (counting from start before first contact)."""
        now = time.monotonic() if now_s is None else now_s
        last = self.last_contact_s if self.last_contact_s is not None else self.started_s
        return now - last <= self.config.unreachable_after_s

    async def start(self) -> None:
        self.started_s = time.monotonic()
        self._task = asyncio.create_task(self._register_loop())

    async def _register_loop(self) -> None:
        from openleadr import OpenADRClient

        while True:
            client = OpenADRClient(
                ven_name=self.config.ven_name, vtn_url=self.config.vtn_url, allow_jitter=False
            )
            client.add_handler("on_event", self._event)
            client.add_handler("on_update_event", self._event)
            client.add_report(
                callback=self._report,
                resource_id="site-meter",
                measurement="powerReal",
                unit="W",
                sampling_rate=timedelta(seconds=self.config.report_s),
            )
            client.add_hook("after_receive_xml", self._touch)
            self.client = client
            await client.run()
            if client.registration_id:
                return
            await asyncio.sleep(self.config.poll_s)

    async def _touch(self, _xml: str) -> None:
        self.last_contact_s = time.monotonic()

    async def _event(self, event: Mapping[str, Any]) -> str:  # openleadr's (untyped) event dict
        try:
            parsed = DrEvent.from_openadr(event)
        except Exception as exc:  # an event this site cannot read: say no rather than guess
            log.warning("unreadable OpenADR event: %s", exc)
            return "optOut"
        now = time.monotonic()
        self.handed_over_s.setdefault(parsed.event_id, (self.last_contact_s or now, now))
        return await self._on_event(parsed)

    async def _report(self) -> float:
        return float(self._read_power_w())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.stop()
