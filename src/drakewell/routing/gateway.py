"""An OpenAI-compatible HTTP gateway that routes each chat completion to an inference backend.

``POST /v1/chat/completions`` takes an OpenAI chat request and forwards it unchanged to the backend
a routing policy picks (:mod:`drakewell.routing.policies`, the same seam the simulator uses). The
backend's answer — a JSON body, or a ``text/event-stream`` of chunks when ``"stream": true`` — is
passed back as it arrives.

**Bounded time.** Every attempt has a connect timeout and a *first-byte* timeout: the backend must
send its status and headers (and, for a stream, the first chunk) within ``first_byte_timeout_s``.
After that a JSON body must arrive within ``body_timeout_s`` and a stream may go quiet for at most
``idle_timeout_s`` between chunks. An attempt that fails (refused, timed out, or status ≥ 500) marks
its backend down for ``down_for_s`` and the request fails over to the next candidate the policy
picks among the healthy, untried backends (then the down ones, as a last resort). Each backend is
tried at most once, so a request takes at most ``n · (connect + first byte)`` before the gateway
answers ``503``. A 4xx answer is the client's fault and is passed back without failover. Once a
stream's first chunk has been passed on, the gateway is committed: if the backend dies mid-stream,
it ends the stream with an SSE ``error`` event (replaying on another backend would duplicate text).

**Live load.** The gateway counts its own requests in flight to each backend (``own``) and reads
the backend's ``x-queue-depth`` header (requests it holds, ours included) from every answer. The
load a policy sees is ``own + external``, where ``external = max(0, depth − own)`` at the last answer
is the traffic other clients put on that backend. The slot time estimate is a moving average of
each request's duration at the backend.

**Routing inputs.** The user's region comes from the ``x-user-region`` header (default: the
gateway's); the prompt length is estimated as characters / 4. Answers carry ``x-drakewell-backend``
(who served) and ``x-drakewell-attempts``.

**No double execution.** An attempt that failed before the backend had the request (connection
refused or not made in time) fails over freely. One that failed *after* sending it (no first byte
in time, the connection dropped, the body never came) may still be running on that backend, so it
is resent elsewhere only when the client marked the request idempotent with an
``Idempotency-Key`` header (passed on to the backend); otherwise the gateway answers ``504``. A
backend's own ``5xx`` answer says it failed, and fails over.

**Who may call.** With ``api_keys`` set, ``POST /v1/chat/completions`` needs one of them
(``Authorization: Bearer KEY``, as OpenAI clients send it; ``401`` otherwise); with
``rate_per_s`` set, each caller (key name, or client address without keys) has a token bucket of
``rate_burst`` requests refilled at ``rate_per_s`` (``429`` with ``Retry-After`` when empty,
:class:`drakewell.core.httpguard.RateLimiter`). ``GET /v1/gateway/backends`` (backend URLs, load and
health) needs ``admin_key`` and answers ``403`` when none is set; ``GET /healthz`` is public.
Request bodies above ``max_body_bytes`` are refused (``413``) before they are read whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from drakewell.core.errors import RoutingError
from drakewell.core.httpguard import KeyRing, RateLimiter, presented_key
from drakewell.core.jsontypes import JsonMapping
from drakewell.routing.nodes import EdgeNode
from drakewell.routing.policies import FleetView, RouteRequest, RoutingPolicy, make_policy

CHAT_PATH = "/v1/chat/completions"
QUEUE_DEPTH_HEADER = "x-queue-depth"
USER_REGION_HEADER = "x-user-region"
IDEMPOTENCY_HEADER = "idempotency-key"
DEFAULT_MAX_BODY_BYTES = 1_048_576
CHARS_PER_TOKEN = 4
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "date", "server"}
)


class GatewayConfigError(RoutingError):
    """The gateway's backends or timeouts are misconfigured."""


@dataclass(frozen=True)
class Backend:
    """One upstream: the node it runs on and its base URL (``http://host:port``)."""

    node: EdgeNode
    url: str

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise GatewayConfigError(
                f"backend {self.node.name!r}: URL {self.url!r} is not http(s)",
                hint="give a base URL such as http://10.0.0.5:8000",
            )


@dataclass(frozen=True)
class GatewayConfig:
    """Backends, the policy, RTTs from each user region (ms, one per backend) and the time limits."""

    backends: tuple[Backend, ...]
    rtt_ms: dict[str, tuple[float, ...]]
    default_user_region: str
    policy: str = "slo-aware"
    sla_ttft_ms: float = 800.0
    connect_timeout_s: float = 0.5
    first_byte_timeout_s: float = 10.0
    body_timeout_s: float = 120.0
    idle_timeout_s: float = 30.0
    down_for_s: float = 5.0
    typical_slot_s: float = 2.0
    seed: int = 0
    policy_params: dict[str, float] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)  # name -> key; empty: open gateway
    admin_key: str | None = None  # for GET /v1/gateway/backends; None: that route is off
    rate_per_s: float | None = None  # per caller; None: no rate limit
    rate_burst: float = 20.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if not self.backends:
            raise GatewayConfigError("the gateway has no backends", hint="pass at least one --backend")
        if self.default_user_region not in self.rtt_ms:
            raise GatewayConfigError(
                f"no RTTs for the default user region {self.default_user_region!r}",
                hint="add a row for it to rtt_ms",
            )
        limits = {
            "connect_timeout_s": self.connect_timeout_s,
            "first_byte_timeout_s": self.first_byte_timeout_s,
            "body_timeout_s": self.body_timeout_s,
            "idle_timeout_s": self.idle_timeout_s,
            "sla_ttft_ms": self.sla_ttft_ms,
            "typical_slot_s": self.typical_slot_s,
        }
        for name, value in limits.items():
            if not value > 0:
                raise GatewayConfigError(
                    f"{name} must be > 0, got {value!r}", hint=f"set {name} to a positive value"
                )
        if self.down_for_s < 0:
            raise GatewayConfigError("down_for_s must be ≥ 0", hint="use 0 to never mark backends down")
        if self.max_body_bytes <= 0:
            raise GatewayConfigError("max_body_bytes must be > 0", hint="e.g. 1048576 (1 MiB)")
        if self.rate_per_s is not None and not (self.rate_per_s > 0 and self.rate_burst >= 1):
            raise GatewayConfigError(
                f"rate limit {self.rate_per_s}/s with burst {self.rate_burst} is not usable",
                hint="give rate_per_s > 0 and rate_burst >= 1, or no rate limit",
            )
        short = [n for n, k in self.api_keys.items() if len(k) < 16]
        if short or (self.admin_key is not None and len(self.admin_key) < 16):
            raise GatewayConfigError(
                f"keys shorter than 16 characters: {', '.join(short) or 'admin'}",
                hint="generate keys with secrets.token_urlsafe(32)",
            )


class GatewayLimits(TypedDict, total=False):
    """The settings of a :class:`GatewayConfig` besides its backends, RTTs and policy."""

    sla_ttft_ms: float
    connect_timeout_s: float
    first_byte_timeout_s: float
    body_timeout_s: float
    idle_timeout_s: float
    down_for_s: float
    typical_slot_s: float
    seed: int
    policy_params: dict[str, float]
    api_keys: dict[str, str]
    admin_key: str | None
    rate_per_s: float | None
    rate_burst: float
    max_body_bytes: int


class BackendHealth(TypedDict):
    """One backend in ``GET /v1/gateway/backends``."""

    name: str
    url: str
    up: bool
    in_flight: int  # the gateway's own requests
    external: int  # other clients' requests, from the backend's x-queue-depth
    slot_s: float  # moving average of a request's time at the backend


def _error(status: int, message: str, kind: str, **extra: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status, headers=extra)


def _estimate_prompt_tokens(payload: JsonMapping) -> int:
    chars = 0
    messages = payload.get("messages")
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):  # content parts
            chars += sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
    return max(1, chars // CHARS_PER_TOKEN)


class _Upstream(Exception):
    """An attempt failed; ``sent``: the backend may have the request (and be running it)."""

    def __init__(self, why: str, *, sent: bool) -> None:
        super().__init__(why)
        self.sent = sent


# failures before the backend could have the request: safe to send it elsewhere
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class _BodyTooLarge(Exception):
    pass


class Gateway:
    """The routing state behind the HTTP app: policy, fleet view, backend health, HTTP client."""

    def __init__(self, config: GatewayConfig, policy: RoutingPolicy | None = None) -> None:
        self.config = config
        self.policy = policy if policy is not None else make_policy(config.policy, **config.policy_params)
        n = len(config.backends)
        self.view = FleetView([b.node for b in config.backends], config.rtt_ms, [config.typical_slot_s] * n)
        self.own = [0] * n
        self.external = [0] * n
        self.down_until = [0.0] * n
        self.rng = random.Random(config.seed)
        self.keys = KeyRing(dict(config.api_keys))
        self.admin = KeyRing({"admin": config.admin_key}) if config.admin_key is not None else None
        self.limiter = (
            RateLimiter(config.rate_per_s, config.rate_burst) if config.rate_per_s is not None else None
        )
        self._transport: httpx.AsyncHTTPTransport | None = None
        self._urls = tuple(httpx.URL(b.url.rstrip("/") + CHAT_PATH) for b in config.backends)
        self._timeouts = {
            "connect": config.connect_timeout_s,
            "read": config.idle_timeout_s,
            "write": config.connect_timeout_s,
            "pool": config.connect_timeout_s,
        }

    @property
    def transport(self) -> httpx.AsyncHTTPTransport:
        # httpx's transport seam directly: the client layer (redirects, cookies, auth, hooks) is
        # not needed for a proxy hop and costs about a quarter of a millisecond per request.
        if self._transport is None:
            self._transport = httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100)
            )
        return self._transport

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    # --- load bookkeeping -------------------------------------------------------------------
    def _dispatch(self, i: int) -> None:
        self.own[i] += 1
        self.view.outstanding[i] = self.own[i] + self.external[i]

    def _finish(self, i: int, started: float, ok: bool) -> None:
        self.own[i] -= 1
        self.view.outstanding[i] = self.own[i] + self.external[i]
        if ok:
            self.view.observe_slot_s(i, time.perf_counter() - started)

    def _report(self, i: int, headers: httpx.Headers) -> None:
        raw = headers.get(QUEUE_DEPTH_HEADER)
        if raw is None:
            return
        try:
            depth = int(raw)
        except ValueError:
            return  # a backend that reports nonsense keeps its last estimate
        self.external[i] = max(0, depth - self.own[i])
        self.view.outstanding[i] = self.own[i] + self.external[i]

    def _mark_down(self, i: int) -> None:
        self.down_until[i] = time.monotonic() + self.config.down_for_s

    def candidates(self, tried: set[int]) -> list[int]:
        """Healthy untried backends, else any untried one."""
        now = time.monotonic()
        untried = [i for i in range(len(self.config.backends)) if i not in tried]
        healthy = [i for i in untried if self.down_until[i] <= now]
        return healthy or untried

    def health(self) -> list[BackendHealth]:
        now = time.monotonic()
        return [
            {
                "name": b.node.name,
                "url": b.url,
                "up": self.down_until[i] <= now,
                "in_flight": self.own[i],
                "external": self.external[i],
                "slot_s": round(self.view.slot_s[i], 4),
            }
            for i, b in enumerate(self.config.backends)
        ]

    # --- one request -----------------------------------------------------------------------
    async def _open(
        self, i: int, body: bytes, stream: bool, idempotency_key: str | None = None
    ) -> tuple[httpx.Response, AsyncIterator[bytes], bytes]:
        """Send to backend ``i``; return its response, its chunk iterator and the first chunk (for a
        stream), all within the first-byte limit."""
        headers = {"content-type": "application/json"}
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        request = httpx.Request(
            "POST",
            self._urls[i],
            content=body,
            headers=headers,
            extensions={"timeout": self._timeouts},
        )
        response: httpx.Response | None = None
        chunks: AsyncIterator[bytes] | None = None

        async def first_byte() -> bytes:
            nonlocal response, chunks
            response = await self.transport.handle_async_request(request)
            if response.status_code >= 400 or not stream:
                return b""
            chunks = response.aiter_raw()
            async for chunk in chunks:
                if chunk:
                    return chunk
            return b""

        try:
            async with asyncio.timeout(self.config.first_byte_timeout_s):  # no extra task, unlike wait_for
                first = await first_byte()
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            if response is not None:
                await response.aclose()
            raise _Upstream(type(exc).__name__, sent=not isinstance(exc, _NOT_SENT)) from exc
        assert response is not None
        if response.status_code >= 500:
            await response.aclose()
            raise _Upstream(f"status {response.status_code}", sent=False)  # the backend said it failed
        return response, chunks if chunks is not None else response.aiter_raw(), first

    async def _read_body(self, request: Request) -> bytes:
        cap = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise _BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise _BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def _admit(self, request: Request) -> Response | None:
        """The key and rate checks: ``None`` to go on, else the refusal."""
        caller: str | None = None
        if self.keys:
            caller = self.keys.name_of(presented_key(request.headers))
            if caller is None:
                return _error(
                    401,
                    "an API key is required: send 'Authorization: Bearer KEY'",
                    "invalid_api_key",
                    **{"www-authenticate": "Bearer"},
                )
        if self.limiter is not None:
            who = caller or (request.client.host if request.client else "unknown")
            wait = self.limiter.retry_after_s(who)
            if wait is not None:
                return _error(
                    429,
                    f"rate limit of {self.config.rate_per_s:g} requests/s exceeded; retry in {wait} s",
                    "rate_limit_exceeded",
                    **{"retry-after": str(wait)},
                )
        return None

    def backends_allowed(self, request: Request) -> Response | None:
        """``GET /v1/gateway/backends`` is for the admin key only."""
        if self.admin is None:
            return _error(403, "the backends view is off (no admin key configured)", "forbidden")
        if self.admin.name_of(presented_key(request.headers)) is None:
            return _error(
                401, "the admin key is required: send 'Authorization: Bearer KEY'", "invalid_api_key"
            )
        return None

    async def _validated(self, request: Request) -> tuple[bytes, JsonMapping, str] | Response:
        """The request's body, its JSON and the user's region, or the error answer to send."""
        refused = self._admit(request)
        if refused is not None:
            return refused
        try:
            body = await self._read_body(request)
        except _BodyTooLarge:
            return _error(
                413,
                f"the request body exceeds the {self.config.max_body_bytes}-byte limit; send a shorter one",
                "invalid_request",
            )
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(
                400, "the request body is not valid JSON; send an OpenAI chat request", "invalid_request"
            )
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("messages"), list)
            or not payload["messages"]
        ):
            return _error(
                400, "the request needs a non-empty 'messages' list (OpenAI chat format)", "invalid_request"
            )
        region = request.headers.get(USER_REGION_HEADER, self.config.default_user_region)
        if region not in self.config.rtt_ms:
            return _error(
                400,
                f"unknown user region {region!r} in {USER_REGION_HEADER}; use one of: "
                + ", ".join(sorted(self.config.rtt_ms)),
                "invalid_request",
            )
        return body, payload, region

    async def handle(self, request: Request) -> Response:
        checked = await self._validated(request)
        if isinstance(checked, Response):
            return checked
        body, payload, region = checked
        stream = bool(payload.get("stream"))
        idempotency_key = request.headers.get(IDEMPOTENCY_HEADER)
        route = RouteRequest(region, _estimate_prompt_tokens(payload), self.config.sla_ttft_ms)
        tried: set[int] = set()
        failures: list[str] = []
        while True:
            candidates = self.candidates(tried)
            if not candidates:
                break
            i = self.policy.choose(self.view, route, candidates, self.rng)
            tried.add(i)
            started = time.perf_counter()
            self._dispatch(i)
            try:
                response, chunks, first = await self._open(i, body, stream, idempotency_key)
            except _Upstream as exc:
                self._finish(i, started, ok=False)
                self._mark_down(i)
                failures.append(f"{self.config.backends[i].node.name}: {exc}")
                if exc.sent and idempotency_key is None:
                    return self._not_resent(i, str(exc), len(tried))
                continue
            except BaseException:  # cancelled (shutdown): keep the in-flight count true
                self._finish(i, started, ok=False)
                raise
            self._report(i, response.headers)
            headers = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["x-drakewell-backend"] = self.config.backends[i].node.name
            headers["x-drakewell-attempts"] = str(len(tried))
            if not stream or response.status_code >= 400:
                try:
                    async with asyncio.timeout(self.config.body_timeout_s):
                        content = await response.aread()
                except (httpx.HTTPError, TimeoutError, OSError) as exc:
                    self._finish(i, started, ok=False)
                    self._mark_down(i)
                    failures.append(f"{self.config.backends[i].node.name}: body {type(exc).__name__}")
                    if idempotency_key is None:
                        return self._not_resent(i, f"body {type(exc).__name__}", len(tried))
                    continue
                finally:
                    await response.aclose()
                self._finish(i, started, ok=response.status_code < 400)
                return Response(content, response.status_code, headers=headers)
            return StreamingResponse(
                self._relay(i, response, chunks, first, started), response.status_code, headers=headers
            )
        return _error(
            503,
            "no backend answered in time (" + "; ".join(failures) + "); retry later or check the backends",
            "backend_unavailable",
            **{"x-drakewell-attempts": str(len(tried))},
        )

    def _not_resent(self, i: int, why: str, attempts: int) -> Response:
        name = self.config.backends[i].node.name
        return _error(
            504,
            f"backend {name} failed after it got the request ({why}) and may still be running it, so "
            f"it was not sent elsewhere; retry, or send an {IDEMPOTENCY_HEADER} header to let the "
            "gateway resend it",
            "backend_timeout",
            **{"x-drakewell-attempts": str(attempts)},
        )

    async def _relay(
        self, i: int, response: httpx.Response, chunks: AsyncIterator[bytes], first: bytes, started: float
    ) -> AsyncIterator[bytes]:
        ok = False
        try:
            yield first
            try:
                async for chunk in chunks:
                    yield chunk
                ok = True
            except (httpx.HTTPError, OSError) as exc:
                self._mark_down(i)
                event = {
                    "error": {"message": f"backend stream broke: {type(exc).__name__}", "type": "upstream"}
                }
                yield f"event: error\ndata: {json.dumps(event)}\n\n".encode()
        finally:
            with contextlib.suppress(Exception):
                await response.aclose()
            self._finish(i, started, ok)


class GatewayApp:
    """The ASGI app. ``POST /v1/chat/completions`` is served straight from the ASGI scope (Starlette's
    router and middleware stack cost tens of microseconds a request on the hot path); everything else
    — ``GET /healthz``, ``GET /v1/gateway/backends``, the lifespan — goes through a Starlette app."""

    def __init__(self, gateway: Gateway, fallback: Starlette) -> None:
        self.gateway = gateway
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == CHAT_PATH and scope["method"] == "POST":
            response = await self.gateway.handle(Request(scope, receive))
            await response(scope, receive, send)
            return
        await self.fallback(scope, receive, send)


def create_gateway_app(config: GatewayConfig, policy: RoutingPolicy | None = None) -> GatewayApp:
    """The gateway as an ASGI app (serve it with uvicorn)."""
    gateway = Gateway(config, policy)

    async def chat_get(request: Request) -> Response:
        return _error(405, f"use POST {CHAT_PATH}", "invalid_request")

    async def healthz(request: Request) -> Response:
        up = any(b["up"] for b in gateway.health())
        return JSONResponse({"ok": up}, 200 if up else 503)

    async def backends(request: Request) -> Response:
        refused = gateway.backends_allowed(request)
        if refused is not None:
            return refused
        return JSONResponse({"policy": gateway.policy.name, "backends": gateway.health()})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.aclose()

    fallback = Starlette(
        routes=[
            Route(CHAT_PATH, chat_get),
            Route("/healthz", healthz),
            Route("/v1/gateway/backends", backends),
        ],
        lifespan=lifespan,
    )
    return GatewayApp(gateway, fallback)


def loopback_config(
    urls: Sequence[str], *, policy: str = "least-load", concurrency: int = 8, **limits: Unpack[GatewayLimits]
) -> GatewayConfig:
    """A gateway config for backends on one machine (all RTTs 1 ms, one user region ``local``)."""
    nodes = [
        EdgeNode(f"backend-{k}", "local", 1, "any", 5000.0, 50.0, concurrency, 0.0) for k in range(len(urls))
    ]
    return GatewayConfig(
        backends=tuple(Backend(n, u) for n, u in zip(nodes, urls, strict=True)),
        rtt_ms={"local": tuple(1.0 for _ in urls)},
        default_user_region="local",
        policy=policy,
        **limits,
    )
