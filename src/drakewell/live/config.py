"""The live controller's settings: the ``[live]`` table of a site TOML.

Schema (every key optional; see ``examples/sites/emulated-live.toml``)::

    [live]
    stale_after_intervals = 2        # no price for this many intervals → safe mode
    safe_mining_fraction = 0.0       # safe mode: miners at most this share of their rated power
    hashprice_usd_per_ph_day = 55.0  # live prices only: hashprice persisted (replay derives it)
    price_poll_s = 30.0              # live prices only: how often gridstatus is asked

    [live.openadr]                   # the site's OpenADR 2.0b VEN (absent: no demand response)
    vtn_url = "http://127.0.0.1:8080/OpenADR2/Simple/2.0b"
    ven_name = "drakewell-site"
    poll_s = 1.0                     # requested poll period
    unreachable_after_s = 30.0       # no answer from the VTN this long → safe mode
    simple_level_reduction_mw = [5.0, 10.0, 20.0]   # SIMPLE level 1, 2, 3 → facility MW to shed
    payment_usd_per_mwh = 500.0      # what the programme pays per MWh shed (opt in when it beats
                                     # the mining and AI margin given up)
    report_s = 1.0                   # powerReal report sampling period

    [live.meter]                     # sign the measured energy every interval (absent: no readings)
    asset = "site-mining"            # asset name (hashed to the 32-byte id) the node meters
    chain_id = 31337
    verifying_contract = "0x…"       # the MeterRegistry address of the EIP-712 domain
    node_key_env = "DRAKEWELL_NODE_KEY"   # environment variable holding the node's private key
    endpoint = "http://127.0.0.1:8000/meter/readings"  # POST with a Bearer key, or
    store = "sqlite:///meter.sqlite"                    # ingest into a local meter store
    key_env = "DRAKEWELL_METER_KEY"  # environment variable holding the meter API key

    [live.metrics]
    host = "127.0.0.1"
    port = 9109                      # 0: no /metrics endpoint

Power convention: DR targets and reductions are facility MW at the site's meter, as in the site
file; the fleet is commanded in IT MW.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drakewell.core.errors import DrakewellError
from drakewell.core.jsontypes import JsonMapping

__all__ = ["LiveConfig", "LiveError", "MeterConfig", "MetricsConfig", "OpenAdrConfig", "load_live_config"]


class LiveError(DrakewellError):
    """The live controller cannot run as configured (settings, signals, journal)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Pos = Annotated[float, Field(gt=0)]


class OpenAdrConfig(_Model):
    vtn_url: str
    ven_name: str = "drakewell-site"
    poll_s: Pos = 1.0
    unreachable_after_s: Pos = 30.0
    simple_level_reduction_mw: tuple[Annotated[float, Field(ge=0)], ...] = (0.0, 0.0, 0.0)
    payment_usd_per_mwh: Annotated[float, Field(ge=0)] = 0.0
    report_s: Pos = 1.0


class MeterConfig(_Model):
    asset: str = "site-mining"
    chain_id: Annotated[int, Field(ge=0)] = 31337
    verifying_contract: str = "0x" + "00" * 20
    node_key_env: str = "DRAKEWELL_NODE_KEY"
    endpoint: str | None = None
    store: str | None = None
    key_env: str = "DRAKEWELL_METER_KEY"

    @model_validator(mode="after")
    def _one_sink(self) -> MeterConfig:
        if (self.endpoint is None) == (self.store is None):
            raise ValueError("give exactly one of endpoint (meter API URL) or store (database URL)")
        return self


class MetricsConfig(_Model):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 0


class LiveConfig(_Model):
    stale_after_intervals: Annotated[int, Field(ge=1)] = 2
    safe_mining_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0
    hashprice_usd_per_ph_day: Annotated[float, Field(ge=0)] | None = None
    price_poll_s: Pos = 30.0
    openadr: OpenAdrConfig | None = None
    meter: MeterConfig | None = None
    metrics: MetricsConfig = MetricsConfig()


def parse_live_config(data: JsonMapping | None, *, source: str = "site") -> LiveConfig:
    """Validate a ``[live]`` table (``None``: every default)."""
    try:
        return LiveConfig.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in ("live", *first["loc"]))
        raise LiveError(
            f"{source}: {key}: {first['msg']}",
            hint="fix the [live] table (schema in drakewell.live.config)",
        ) from None


def load_live_config(site_path: str | Path) -> LiveConfig:
    """The ``[live]`` table of a site TOML (the rest of the file is validated by ``load_site``)."""
    file = Path(site_path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LiveError(f"cannot read site file {file}: {exc}", hint="pass a readable site TOML") from None
    return parse_live_config(data.get("live"), source=str(file))
