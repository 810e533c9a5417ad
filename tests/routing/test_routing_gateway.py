"""The gateway against real backends on loopback: pass-through, failover, live load, bounded time.

Every backend is a real uvicorn server on a loopback port (healthy, hanging, failing, stalling
mid-stream, or stopped mid-test), and so is the gateway.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Unpack

import httpx
import pytest

from drakewell.core.errors import ConfigError
from drakewell.routing.cli import _parse_backend
from drakewell.routing.fake_backend import LoopbackServer, fake_backend_app
from drakewell.routing.gateway import (
    Backend,
    GatewayConfig,
    GatewayConfigError,
    create_gateway_app,
    loopback_config,
)
from drakewell.routing.nodes import EdgeNode

if TYPE_CHECKING:
    from drakewell.routing.gateway import GatewayLimits

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}
FIRST_BYTE_S = 0.4
ADMIN_KEY = "admin-" + "z" * 30
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
RETRYABLE = {"Idempotency-Key": "req-1"}  # the client allows a resend after a first-byte timeout


@pytest.fixture(scope="module")
def healthy() -> Iterator[LoopbackServer]:
    with LoopbackServer(fake_backend_app("healthy", tokens=5), log_level="error") as server:
        yield server


@pytest.fixture(scope="module")
def hanging() -> Iterator[LoopbackServer]:
    with LoopbackServer(fake_backend_app("hang", mode="hang"), log_level="error") as server:
        yield server


@pytest.fixture(scope="module")
def failing() -> Iterator[LoopbackServer]:
    with LoopbackServer(fake_backend_app("error", mode="error"), log_level="error") as server:
        yield server


def gateway(urls: list[str], policy: str = "nearest", **limits: Unpack[GatewayLimits]) -> LoopbackServer:
    """A gateway whose ``nearest`` policy tries backends in the order given (RTT 1, 2, 3 … ms)."""
    settings: GatewayLimits = {"first_byte_timeout_s": FIRST_BYTE_S, "admin_key": ADMIN_KEY, **limits}
    config = loopback_config(urls, policy=policy, **settings)
    config = GatewayConfig(
        **{**config.__dict__, "rtt_ms": {"local": tuple(float(k + 1) for k in range(len(urls)))}}
    )
    return LoopbackServer(create_gateway_app(config), log_level="error")


def post(client: httpx.Client, body: dict[str, object] | None = None, **headers: str) -> httpx.Response:
    return client.post("/v1/chat/completions", json=body or CHAT, headers=headers)


def test_json_answer_is_passed_through_with_the_backend_named(healthy: LoopbackServer) -> None:
    with gateway([healthy.url]) as gw, httpx.Client(base_url=gw.url, timeout=5) as client:
        r = post(client)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "tok tok tok tok tok"
    assert r.headers["x-drakewell-backend"] == "backend-0"
    assert r.headers["x-drakewell-attempts"] == "1"


def test_stream_is_passed_through_chunk_by_chunk(healthy: LoopbackServer) -> None:
    with (
        gateway([healthy.url]) as gw,
        httpx.Client(base_url=gw.url, timeout=5) as client,
        client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    deltas = [json.loads(e[6:])["choices"][0]["delta"]["content"] for e in events[:-1]]
    assert deltas == [f"tok{k} " for k in range(5)]


def test_hanging_backend_fails_over_within_the_first_byte_timeout(
    hanging: LoopbackServer, healthy: LoopbackServer
) -> None:
    with gateway([hanging.url, healthy.url]) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        started = time.perf_counter()
        r = post(client, **RETRYABLE)
        elapsed = time.perf_counter() - started
        assert r.status_code == 200
        assert r.headers["x-drakewell-attempts"] == "2"
        assert r.headers["x-drakewell-backend"] == "backend-1"
        assert FIRST_BYTE_S * 0.9 <= elapsed < FIRST_BYTE_S + 1.5
        # the hanging backend is now marked down: the next request goes straight to the healthy one
        started = time.perf_counter()
        r = post(client)
        assert r.headers["x-drakewell-attempts"] == "1"
        assert time.perf_counter() - started < FIRST_BYTE_S
        state = client.get("/v1/gateway/backends", headers=ADMIN).json()["backends"]
        assert [b["up"] for b in state] == [False, True]
        assert all(b["in_flight"] == 0 for b in state)


def test_stream_from_a_hanging_backend_fails_over_too(
    hanging: LoopbackServer, healthy: LoopbackServer
) -> None:
    with gateway([hanging.url, healthy.url]) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        r = post(client, {**CHAT, "stream": True}, **RETRYABLE)
    assert r.status_code == 200
    assert r.text.rstrip().endswith("data: [DONE]")
    assert r.headers["x-drakewell-backend"] == "backend-1"


def test_erroring_backend_fails_over(failing: LoopbackServer, healthy: LoopbackServer) -> None:
    with gateway([failing.url, healthy.url]) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        started = time.perf_counter()
        r = post(client)
        assert time.perf_counter() - started < 1.0
    assert r.status_code == 200
    assert r.headers["x-drakewell-attempts"] == "2"


def test_backend_that_disappears_mid_test_is_routed_around(healthy: LoopbackServer) -> None:
    doomed = LoopbackServer(fake_backend_app("doomed"), log_level="error").start()
    try:
        with gateway([doomed.url, healthy.url]) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
            assert post(client).headers["x-drakewell-backend"] == "backend-0"
            doomed.stop()
            started = time.perf_counter()
            r = post(client)
            assert r.status_code == 200
            assert r.headers["x-drakewell-backend"] == "backend-1"
            assert time.perf_counter() - started < 1.0
    finally:
        doomed.stop()


def test_every_backend_bad_gives_503_in_bounded_time(
    hanging: LoopbackServer, failing: LoopbackServer
) -> None:
    with gateway([hanging.url, failing.url]) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        started = time.perf_counter()
        r = post(client, **RETRYABLE)
        elapsed = time.perf_counter() - started
    assert r.status_code == 503
    assert r.json()["error"]["type"] == "backend_unavailable"
    assert "backend-0" in r.json()["error"]["message"]
    assert r.headers["x-drakewell-attempts"] == "2"
    assert elapsed < 2 * FIRST_BYTE_S + 1.5


def test_stream_that_stalls_after_the_first_chunk_ends_with_an_error_event() -> None:
    with (
        LoopbackServer(fake_backend_app("stall", mode="stall"), log_level="error") as stall,
        gateway([stall.url], idle_timeout_s=0.5) as gw,
        httpx.Client(base_url=gw.url, timeout=10) as client,
    ):
        started = time.perf_counter()
        r = post(client, {**CHAT, "stream": True})
        elapsed = time.perf_counter() - started
    assert r.status_code == 200
    assert r.text.startswith("data: ")  # the first chunk made it through
    assert "event: error" in r.text
    assert "[DONE]" not in r.text
    assert elapsed < 3.0


def test_live_queue_depth_steers_least_load_away_from_a_busy_backend() -> None:
    with (
        LoopbackServer(fake_backend_app("busy", queue_depth=50), log_level="error") as busy,
        LoopbackServer(fake_backend_app("idle"), log_level="error") as idle,
        gateway([busy.url, idle.url], policy="least-load") as gw,
        httpx.Client(base_url=gw.url, timeout=5) as client,
    ):
        first = post(client)  # equal load, least RTT: the busy one; it reports 50 queued
        assert first.headers["x-drakewell-backend"] == "backend-0"
        served = {post(client).headers["x-drakewell-backend"] for _ in range(5)}
        state = client.get("/v1/gateway/backends", headers=ADMIN).json()["backends"]
    assert served == {"backend-1"}
    assert state[0]["external"] == 49  # it held 50, one of them ours


@pytest.mark.parametrize(
    ("content", "headers", "message"),
    [
        (b"{not json", {}, "not valid JSON"),
        (b'{"model": "m"}', {}, "messages"),
        (b'{"messages": []}', {}, "messages"),
        (b'["a"]', {}, "messages"),
        (json.dumps(CHAT).encode(), {"x-user-region": "mars"}, "unknown user region"),
    ],
)
def test_bad_requests_get_400_without_touching_backends(
    healthy: LoopbackServer, content: bytes, headers: dict[str, str], message: str
) -> None:
    with gateway([healthy.url]) as gw, httpx.Client(base_url=gw.url, timeout=5) as client:
        r = client.post(
            "/v1/chat/completions", content=content, headers={"content-type": "application/json", **headers}
        )
        assert r.status_code == 400
        assert message in r.json()["error"]["message"]
        assert client.get("/healthz").json() == {"ok": True}


def test_gateway_config_is_validated() -> None:
    node = EdgeNode("a", "local", 1, "m", 1.0, 1.0, 1, 0.0)
    with pytest.raises(GatewayConfigError, match="not http"):
        Backend(node, "ftp://x")
    ok = Backend(node, "http://127.0.0.1:1")
    with pytest.raises(GatewayConfigError, match="no backends"):
        GatewayConfig((), {"local": ()}, "local")
    with pytest.raises(GatewayConfigError, match="default user region"):
        GatewayConfig((ok,), {"local": (1.0,)}, "elsewhere")
    with pytest.raises(GatewayConfigError, match="first_byte_timeout_s"):
        GatewayConfig((ok,), {"local": (1.0,)}, "local", first_byte_timeout_s=0.0)
    with pytest.raises(GatewayConfigError, match="down_for_s"):
        GatewayConfig((ok,), {"local": (1.0,)}, "local", down_for_s=-1.0)


def test_backend_option_parsing() -> None:
    assert _parse_backend("cpt=http://h:1,region=aws:af-south-1,slots=16,price=70", 0) == (
        "cpt",
        "http://h:1",
        "aws:af-south-1",
        16,
        70.0,
    )
    assert _parse_backend("a=http://h:1", 0) == ("a", "http://h:1", None, 8, 0.0)
    for bad in ("http://h:1", "a=http://h:1,slots=many", "a=http://h:1,colour=red"):
        with pytest.raises(ConfigError):
            _parse_backend(bad, 0)


def test_user_region_header_routes_each_user_to_its_nearest_backend() -> None:
    with (
        LoopbackServer(fake_backend_app("east"), log_level="error") as east,
        LoopbackServer(fake_backend_app("west"), log_level="error") as west,
    ):
        nodes = [EdgeNode(n, n, 1, "m", 1000.0, 50.0, 4, 0.0) for n in ("east", "west")]
        config = GatewayConfig(
            backends=(Backend(nodes[0], east.url), Backend(nodes[1], west.url)),
            rtt_ms={"east": (5.0, 150.0), "west": (150.0, 5.0)},
            default_user_region="east",
            policy="nearest",
        )
        with (
            LoopbackServer(create_gateway_app(config), log_level="error") as gw,
            httpx.Client(base_url=gw.url, timeout=5) as client,
        ):
            assert post(client).headers["x-backend"] == "east"
            assert post(client, **{"x-user-region": "west"}).headers["x-backend"] == "west"
            assert post(client, **{"x-user-region": "east"}).headers["x-backend"] == "east"


def test_client_hanging_up_mid_stream_releases_the_backend_slot() -> None:
    with (
        LoopbackServer(fake_backend_app("slow", tokens=200, token_delay_s=0.02), log_level="error") as slow,
        gateway([slow.url]) as gw,
        httpx.Client(base_url=gw.url, timeout=5) as client,
    ):
        with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as r:
            lines = r.iter_lines()
            assert next(lines).startswith("data: ")
            busy = client.get("/v1/gateway/backends", headers=ADMIN).json()["backends"][0]["in_flight"]
        # leaving the block closes the connection with ~190 tokens still to come
        deadline = time.monotonic() + 3.0
        while (
            client.get("/v1/gateway/backends", headers=ADMIN).json()["backends"][0]["in_flight"]
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert busy == 1
        assert client.get("/v1/gateway/backends", headers=ADMIN).json()["backends"][0]["in_flight"] == 0


def test_backend_dying_mid_stream_ends_the_stream_promptly() -> None:
    dying = LoopbackServer(
        fake_backend_app("dying", tokens=500, token_delay_s=0.01), log_level="critical"
    ).start()
    try:
        with (
            gateway([dying.url], idle_timeout_s=5.0) as gw,
            httpx.Client(base_url=gw.url, timeout=10) as client,
            client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as r,
        ):
            lines = r.iter_lines()
            assert next(lines).startswith("data: ")
            started = time.perf_counter()
            dying.stop()
            rest = list(lines)
            assert time.perf_counter() - started < 4.0  # well inside the 5 s idle timeout
        assert "data: [DONE]" not in rest
        assert any("event: error" in line for line in rest)
    finally:
        dying.stop()


def test_other_methods_and_paths_get_json_errors(healthy: LoopbackServer) -> None:
    with gateway([healthy.url]) as gw, httpx.Client(base_url=gw.url, timeout=5) as client:
        assert client.get("/v1/chat/completions").status_code == 405
        assert client.get("/v1/nothing").status_code == 404
