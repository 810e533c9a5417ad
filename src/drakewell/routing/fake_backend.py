"""A stand-in OpenAI-compatible inference backend, and a helper to serve any ASGI app on loopback.

The fake backend answers ``POST /v1/chat/completions`` like an inference server would — a JSON
completion, or an SSE stream of ``chat.completion.chunk`` events ending in ``data: [DONE]`` — and
reports its live load in the ``x-queue-depth`` response header (requests it holds, this one
included), the header the gateway reads. Its ``mode`` makes it misbehave on purpose:

- ``healthy`` — answers after ``ttft_s``, then streams ``tokens`` tokens ``token_delay_s`` apart;
- ``hang`` — accepts the request and never answers (until the client hangs up);
- ``error`` — answers ``500`` at once;
- ``stall`` — sends headers and the first chunk of a stream, then never sends more.

It serves the gateway's tests, the benchmark and ``drakewell route fake-backend`` demos; it is not
a model server.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from types import TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from drakewell.core.errors import RoutingError
from drakewell.core.jsontypes import JsonMapping, JsonObject

MODES = ("healthy", "hang", "error", "stall")


def _completion(cid: str, model: str, tokens: int) -> JsonObject:
    """A non-streamed OpenAI chat completion of ``tokens`` tokens."""
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": " ".join(["tok"] * tokens)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": tokens + 1},
    }


def fake_backend_app(
    name: str,
    *,
    mode: str = "healthy",
    ttft_s: float = 0.0,
    tokens: int = 4,
    token_delay_s: float = 0.0,
    queue_depth: int | None = None,
) -> Starlette:
    """An ASGI app that behaves as described in the module docstring.

    ``queue_depth`` fixes the reported ``x-queue-depth`` (load from other clients), else it is the
    number of requests in flight."""
    if mode not in MODES:
        raise RoutingError(f"unknown fake backend mode {mode!r}", hint=f"use one of: {', '.join(MODES)}")
    state = {"in_flight": 0, "served": 0}

    def completion_id() -> str:
        return f"chatcmpl-{name}-{state['served']}"

    async def chat(request: Request) -> Response:
        payload: JsonMapping = await request.json()  # an OpenAI chat request, as the gateway checked
        state["in_flight"] += 1
        depth = state["in_flight"] if queue_depth is None else queue_depth
        headers = {"x-queue-depth": str(depth), "x-backend": name}
        streaming = False
        try:
            if mode == "hang":  # never answers; stops waiting only when the client hangs up
                while not await request.is_disconnected():
                    await asyncio.sleep(0.02)
                return Response(status_code=499)
            if mode == "error":
                return JSONResponse({"error": {"message": f"{name} is failing"}}, 500, headers=headers)
            if ttft_s:
                await asyncio.sleep(ttft_s)
            state["served"] += 1
            model = str(payload.get("model", "fake"))
            if payload.get("stream"):
                streaming = True  # the stream releases the slot when it ends
                return StreamingResponse(
                    _stream(completion_id(), model), media_type="text/event-stream", headers=headers
                )
            body = _completion(completion_id(), model, tokens)
            return JSONResponse(body, headers=headers)
        finally:
            if not streaming:
                state["in_flight"] -= 1

    async def _stream(cid: str, model: str) -> AsyncIterator[bytes]:
        try:
            for k in range(tokens):
                chunk = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [{"index": 0, "delta": {"content": f"tok{k} "}, "finish_reason": None}],
                }
                yield f"data: {json.dumps(chunk)}\n\n".encode()
                if mode == "stall":
                    await asyncio.Event().wait()
                if token_delay_s:
                    await asyncio.sleep(token_delay_s)
            yield b"data: [DONE]\n\n"
        finally:
            state["in_flight"] -= 1

    async def show_state(request: Request) -> Response:
        return JSONResponse({"name": name, "mode": mode, **state})

    app = Starlette(
        routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/state", show_state)]
    )
    app.state.counters = state
    return app


class LoopbackServer:
    """Serve an ASGI app with uvicorn on ``127.0.0.1`` in a background thread.

    ``with LoopbackServer(app) as server: server.url`` — the port is chosen by the OS; leaving the
    block (or :meth:`stop`) shuts the server down, dropping open connections, as a crashed backend
    would.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        port: int = 0,
        startup_timeout_s: float = 10.0,
        shutdown_grace_s: int = 1,
        log_level: str = "warning",
    ) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level=log_level,
            lifespan="auto",
            ws="none",
            access_log=False,
            timeout_graceful_shutdown=shutdown_grace_s,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._startup_timeout_s = startup_timeout_s
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RoutingError(
                    "a loopback server did not start", hint="check that the app imports and the port is free"
                )
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10.0)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
