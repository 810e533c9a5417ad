"""Training-job hooks: pause and resume a job through the site's scheduler.

* :class:`WebhookJobHook` POSTs ``{"job": NAME, "action": "pause" | "resume", "mw": MW}`` (JSON) to
  the configured URL, with ``Authorization: Bearer <token>`` when the inventory names an
  environment variable holding one. Any 2xx reply acknowledges; anything else refuses.
* :class:`SlurmJobHook` runs ``scontrol suspend JOBID`` / ``scontrol resume JOBID``; exit status 0
  acknowledges. The command is run directly (no shell), so a job id cannot inject anything.
* :class:`MemoryJobHook` records calls in memory (the test double).

Deadlines are the fleet's: a hook call is cancelled when its deadline passes (for Slurm the
``scontrol`` process is then killed).
"""

from __future__ import annotations

import asyncio
import os

import httpx

from drakewell.core.jsontypes import JsonObject
from drakewell.fleet.devices import JobHook
from drakewell.fleet.errors import FleetError
from drakewell.fleet.inventory import JobEntry

__all__ = ["MemoryJobHook", "SlurmJobHook", "WebhookJobHook", "hook_for"]


class WebhookJobHook:
    def __init__(
        self, url: str, *, token: str | None = None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._transport = transport

    async def _post(self, job: str, action: str, power_mw: float) -> bool:
        body: JsonObject = {"job": job, "action": action, "mw": round(power_mw, 6)}
        async with httpx.AsyncClient(transport=self._transport, timeout=None) as client:
            try:
                reply = await client.post(self.url, json=body, headers=self._headers)
            except httpx.HTTPError as exc:
                raise FleetError(
                    f"job webhook {self.url} failed: {exc}", hint="check the scheduler URL"
                ) from None
        return 200 <= reply.status_code < 300

    async def pause(self, job: str, power_mw: float) -> bool:
        return await self._post(job, "pause", power_mw)

    async def resume(self, job: str, power_mw: float) -> bool:
        return await self._post(job, "resume", power_mw)


class SlurmJobHook:
    def __init__(self, job_id: str, *, scontrol: str = "scontrol") -> None:
        self.job_id = job_id
        self.scontrol = scontrol

    async def _run(self, action: str) -> bool:
        try:
            proc = await asyncio.create_subprocess_exec(
                self.scontrol,
                action,
                self.job_id,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise FleetError(
                f"{self.scontrol!r} not found",
                hint="install Slurm's scontrol or set scontrol = '/path/to/scontrol'",
            ) from None
        try:
            return await proc.wait() == 0
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise

    async def pause(self, job: str, power_mw: float) -> bool:
        return await self._run("suspend")

    async def resume(self, job: str, power_mw: float) -> bool:
        return await self._run("resume")


class MemoryJobHook:
    def __init__(self, *, accept: bool = True) -> None:
        self.accept = accept
        self.calls: list[tuple[str, str, float]] = []

    async def pause(self, job: str, power_mw: float) -> bool:
        self.calls.append((job, "pause", power_mw))
        return self.accept

    async def resume(self, job: str, power_mw: float) -> bool:
        self.calls.append((job, "resume", power_mw))
        return self.accept


def hook_for(entry: JobEntry) -> JobHook:
    """The hook an inventory job entry configures."""
    if entry.hook == "webhook":
        token = None
        if entry.token_env:
            token = os.environ.get(entry.token_env)
            if not token:
                raise FleetError(
                    f"job {entry.name!r}: environment variable {entry.token_env} is not set",
                    hint=f"export {entry.token_env}=<the scheduler's bearer token>",
                )
        return WebhookJobHook(str(entry.url), token=token)
    return SlurmJobHook(str(entry.slurm_job_id), scontrol=entry.scontrol)
