"""HTTP hardening shared by Drakewell's servers: body caps, API keys, rate limits, trusted hosts.

- **Body cap.** :class:`BodyLimit` (ASGI middleware) reads a request's body before the app does
  and answers ``413`` once it exceeds ``max_body_bytes`` (declared ``Content-Length`` or bytes
  actually sent), so no handler ever holds more than the cap in memory.
- **API keys.** Keys travel in a header (``Authorization: Bearer KEY``, or ``X-API-Key``), never
  in a cookie: a page on another site can make a browser send cookies, but not set these headers
  without a CORS preflight, which these servers do not grant. Keys are compared by their SHA-256
  with :func:`hmac.compare_digest` (:class:`KeyRing`), so a server holds no key in clear and
  timing says nothing about a key.
- **Rate limits.** :class:`RateLimiter` is a token bucket per caller: ``tokens ← min(burst,
  tokens + rate · (now − last))``; a request spends one token, and with less than one left it is
  refused (``429``, ``Retry-After = ⌈(1 − tokens) / rate⌉``). The clock is a parameter.
- **Trusted hosts.** :func:`trusted_hosts` wraps Starlette's ``TrustedHostMiddleware``: a request
  whose ``Host`` is not one of the server's names (a DNS-rebinding page) gets ``400``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 1_048_576  # 1 MiB: every JSON body of the product API fits
METER_MAX_BODY_BYTES = 64 * 1_048_576  # a full ingest batch (50,000 readings of ~1.2 kB)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]", "testserver", "test")

T = TypeVar("T")


def _json_error(status: int, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"detail": message}).encode()


class BodyLimit:
    """ASGI middleware: refuse (``413``) any request body larger than ``max_body_bytes``.

    The body is read here, up to the cap, and handed to the app whole: the app never sees a
    partial body, and a client that streams without ``Content-Length`` is stopped at the cap.
    ``path_caps`` gives other caps to paths under a prefix (the longest matching prefix wins);
    ``error`` builds the refusal body (``(status, bytes)``) from a message.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        error: Callable[[int, str], tuple[int, bytes]] = _json_error,
        path_caps: dict[str, int] | None = None,
    ) -> None:
        caps = dict(path_caps or {})
        if max_body_bytes <= 0 or any(c <= 0 for c in caps.values()):
            raise ValueError("body caps must be positive")
        self.app = app
        self.max_body_bytes = int(max_body_bytes)
        self.path_caps = sorted(caps.items(), key=lambda kv: -len(kv[0]))
        self.error = error

    def cap_for(self, path: str) -> int:
        for prefix, cap in self.path_caps:
            if path.startswith(prefix):
                return cap
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            await self._refuse(send, f"the request body of {declared} bytes exceeds the {cap}-byte limit")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                await self._refuse(send, f"the request body exceeds the {cap}-byte limit; send less")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the client to disconnect

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, message: str) -> None:
        status, body = self.error(413, message)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def trusted_hosts(app: ASGIApp, hosts: Sequence[str] | None) -> ASGIApp:
    """``app`` behind Starlette's ``TrustedHostMiddleware`` (``None``: the loopback names)."""
    return TrustedHostMiddleware(app, allowed_hosts=list(hosts if hosts is not None else LOOPBACK_HOSTS))


def key_digest(key: str) -> bytes:
    """SHA-256 of a key (what a :class:`KeyRing` keeps)."""
    return hashlib.sha256(key.encode()).digest()


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request presents: ``Authorization: Bearer KEY``, else ``X-API-Key``; never a cookie."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def key_holder(headers: Mapping[str, str], holder_of: Callable[[str | None], T | None], required: str) -> T:
    """Who calls: ``holder_of`` the key the request presents (:func:`presented_key`).

    A missing key, or one ``holder_of`` does not know (``None``), answers ``401`` with the message
    ``required`` and ``WWW-Authenticate: Bearer``.
    """
    holder = holder_of(presented_key(headers))
    if holder is None:
        raise HTTPException(401, required, headers={"WWW-Authenticate": "Bearer"})
    return holder


class KeyRing:
    """Named keys, kept as SHA-256 digests; :meth:`name_of` finds a presented key's name."""

    def __init__(self, keys: dict[str, str] | None = None) -> None:
        self._digests: list[tuple[bytes, str]] = []
        for name, key in (keys or {}).items():
            self.add(name, key)

    def add(self, name: str, key: str) -> None:
        if len(key) < 16:
            raise ValueError(f"key {name!r} is shorter than 16 characters; use secrets.token_urlsafe(32)")
        self._digests.append((key_digest(key), name))

    def __bool__(self) -> bool:
        return bool(self._digests)

    def name_of(self, key: str | None) -> str | None:
        """The name of ``key``, or ``None``; every stored digest is compared (constant time each)."""
        if key is None:
            return None
        digest = key_digest(key)
        found = None
        for stored, name in self._digests:
            if hmac.compare_digest(stored, digest):
                found = name
        return found


class RateLimiter:
    """A token bucket per caller (see the module docstring); thread-safe (one lock)."""

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_callers: int = 100_000,
    ) -> None:
        if not (rate_per_s > 0 and burst >= 1):
            raise ValueError("a rate limit needs rate_per_s > 0 and burst >= 1")
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self.clock = clock
        self.max_callers = max_callers
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at)
        self._lock = threading.Lock()  # sync handlers run on threads

    def retry_after_s(self, caller: str) -> int | None:
        """Spend a token for ``caller``: ``None`` if allowed, else seconds until one is due."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(caller, (self.burst, now))
            tokens = min(self.burst, tokens + self.rate_per_s * max(0.0, now - at))
            if tokens >= 1.0:
                if len(self._buckets) >= self.max_callers and caller not in self._buckets:
                    self._buckets.clear()  # bounded memory: a flood of new callers resets every bucket
                self._buckets[caller] = (tokens - 1.0, now)
                return None
            self._buckets[caller] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate_per_s))


def parse_named_keys(entries: Iterable[str]) -> dict[str, str]:
    """``NAME=KEY`` strings (CLI options) as a dict; a bare ``KEY`` is named ``key-N``."""
    out: dict[str, str] = {}
    for i, entry in enumerate(entries):
        name, sep, key = entry.partition("=")
        out[name if sep else f"key-{i + 1}"] = key if sep else entry
    return out
