"""Edge inference nodes: what each one serves, how fast, how many at once, and at what energy price.

A node is a frozen :class:`EdgeNode`. Its service model is deliberately small:

- it runs ``concurrency`` requests at once (batch slots); further requests wait in one FIFO queue;
- a request holds one slot for ``prefill_s + decode_s`` where ``prefill_s = prompt_tokens /
  prefill_tokens_per_s`` and ``decode_s = output_tokens / decode_tokens_per_s`` (per-stream speeds
  measured at the node's usual batch size, so slots do not slow each other further);
- the node draws ``gpu_power_w`` per GPU while serving, so a request's energy is its share of the
  node: ``gpus · gpu_power_w · slot_s / concurrency`` (W·s), priced at ``energy_price_usd_per_mwh``.

:func:`emerging_market_nodes` is the default fleet: five small nodes in emerging-market cloud
regions (Cape Town, Bahrain, Mumbai, São Paulo, Jakarta) and one large hyperscaler node in
N. Virginia. Each edge node is one 8-GPU server running 32 streams; the hyperscaler node is
64 GPUs running 256. Speeds are typical of an 8-billion-parameter model on H100-class GPUs; energy prices
are stated per node and are illustrative, not quotes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from drakewell.core.errors import RoutingError
from drakewell.core.units import WH_PER_MWH


class NodeConfigError(RoutingError):
    """An edge node's configuration is invalid."""


@dataclass(frozen=True)
class EdgeNode:
    """One inference node (see module docstring for the service model)."""

    name: str
    region: str  # provider:region, as in the latency matrix
    gpus: int
    model: str
    prefill_tokens_per_s: float  # per slot
    decode_tokens_per_s: float  # per stream
    concurrency: int  # slots served at once
    energy_price_usd_per_mwh: float
    gpu_power_w: float = 700.0

    def __post_init__(self) -> None:
        if not self.name:
            raise NodeConfigError("an edge node has an empty name", hint="give every node a unique name")
        for field in ("gpus", "concurrency"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise NodeConfigError(
                    f"node {self.name!r}: {field} must be a positive integer, got {value!r}",
                    hint=f"set {field} to 1 or more",
                )
        for field in ("prefill_tokens_per_s", "decode_tokens_per_s", "gpu_power_w"):
            value = getattr(self, field)
            if not math.isfinite(value) or value <= 0:
                raise NodeConfigError(
                    f"node {self.name!r}: {field} must be a positive number, got {value!r}",
                    hint=f"set {field} to the measured speed or power (> 0)",
                )
        if not math.isfinite(self.energy_price_usd_per_mwh) or self.energy_price_usd_per_mwh < 0:
            raise NodeConfigError(
                f"node {self.name!r}: energy_price_usd_per_mwh must be ≥ 0, "
                f"got {self.energy_price_usd_per_mwh!r}",
                hint="use the node's average power price in USD per MWh",
            )

    def slot_seconds(self, prompt_tokens: float, output_tokens: float) -> float:
        """Seconds one request holds a slot (prefill then decode)."""
        return prompt_tokens / self.prefill_tokens_per_s + output_tokens / self.decode_tokens_per_s

    @property
    def cost_usd_per_slot_s(self) -> float:
        """Energy cost of holding one slot for one second, in USD."""
        watts_per_slot = self.gpus * self.gpu_power_w / self.concurrency
        return watts_per_slot / 3600.0 * self.energy_price_usd_per_mwh / WH_PER_MWH


def check_unique_names(nodes: tuple[EdgeNode, ...]) -> None:
    """Refuse an empty fleet or two nodes with one name."""
    if not nodes:
        raise NodeConfigError("the fleet has no nodes", hint="configure at least one edge node")
    seen: set[str] = set()
    for node in nodes:
        if node.name in seen:
            raise NodeConfigError(f"two nodes are named {node.name!r}", hint="give every node a unique name")
        seen.add(node.name)


def emerging_market_nodes() -> tuple[EdgeNode, ...]:
    """The default fleet: five emerging-market edge nodes and one hyperscaler node."""
    model = "llama-3.1-8b-instruct"

    def edge(name: str, region: str, price: float) -> EdgeNode:
        return EdgeNode(name, region, 8, model, 6000.0, 60.0, 32, price)

    return (
        edge("cpt-edge", "aws:af-south-1", 75.0),
        edge("bah-edge", "aws:me-south-1", 45.0),
        edge("bom-edge", "aws:ap-south-1", 85.0),
        edge("gru-edge", "aws:sa-east-1", 65.0),
        edge("cgk-edge", "aws:ap-southeast-3", 90.0),
        EdgeNode("iad-hyperscale", "aws:us-east-1", 64, model, 8000.0, 60.0, 256, 110.0),
    )
