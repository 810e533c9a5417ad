"""Constants shared by the metering tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from drakewell.metering.readings import asset_id

EPOCH = 20_270  # 2025-07-01 UTC with day epochs
DAY = 86_400
GPU_ASSET = asset_id("test:gpu-pool")
ASIC_ASSET = asset_id("test:asic-pool")

# leases the tests' readings name, registered by the ``store`` fixture: 8 GPUs over EPOCH and the
# days either side of it
TEST_LEASE_IDS = (1, 2, 3, 4, 5, 9, 11, 22, 2**63 - 1, 2**90, 2**100, *(2**256 - s for s in range(1, 6)))

OPERATOR_KEY = "operator-" + "k" * 32
GATEWAY_KEY = "gateway-" + "g" * 32  # bound to the gpu node of the fixtures
ANY_GATEWAY_KEY = "any-gateway-" + "a" * 32  # bound to no node: may relay any node's readings


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port (its thread pool runs sync handlers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the test server did not start within 20 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
