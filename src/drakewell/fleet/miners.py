"""Miner drivers: pyasic for real (and emulated) miners, and an in-memory double.

pyasic (0.79) speaks stock Antminer, Braiins OS, LuxOS, VNish, Whatsminer and ePIC firmware. Facts
this driver is built around:

* detection (``pyasic.get_miner``) probes fixed ports (80, 443, 4028, 4433), so a miner is one IP;
* a read takes power, power limit, hashrate and mining state. pyasic's data table
  (``miner.data_locations``) names, per field, the RPC commands and the parser; the driver sends
  each named command once (``rpc.send_command``) and runs pyasic's parsers on the replies — two
  connections on a Whatsminer (``summary``, ``status``). This is what ``get_data`` does, without its
  per-call introspection of the command list (about 7 ms of CPU per read, which dominates a
  1,000-miner curtailment); firmware whose fields need the web API is read with ``get_data``;
* ``stop_mining`` / ``resume_mining`` / ``set_power_limit`` swallow errors and return ``False``;
* the RPC read timeout defaults to 100 s with no retry: the fleet gives every call its own deadline;
* Whatsminer privileged commands need a token (``get_token``, md5-crypt of the password); pyasic
  keeps one for 30 minutes. :meth:`PyasicMinerDriver.open_session` fetches it ahead of time so a
  curtailment costs one round trip per miner, not two.

pyasic's own dependencies emit deprecation warnings on import and on every token (pydantic class
configs, passlib's ``md5_crypt.hash(salt=…)``); those are filtered here, narrowly, by message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, SupportsFloat, TypeAlias

from drakewell.catalog import load_catalog
from drakewell.fleet.devices import MinerReading
from drakewell.fleet.errors import FleetError, import_extra

if TYPE_CHECKING:
    from pyasic.miners.base import BaseMiner
    from pyasic.miners.data import DataOptions

__all__ = [
    "MemoryMinerDriver",
    "PyasicMinerDriver",
    "ScannedMiner",
    "catalog_model_name",
    "load_pyasic",
    "scan_subnet",
]

_PYASIC_WARNINGS = (
    ("ignore", r"passing settings to md5_crypt\.hash\(\) is deprecated", DeprecationWarning),
    ("ignore", r"Support for class-based `config` is deprecated", DeprecationWarning),
    ("ignore", r"'crypt' is deprecated and slated for removal", DeprecationWarning),
)
for _action, _message, _category in _PYASIC_WARNINGS:
    warnings.filterwarnings(_action, message=_message, category=_category)  # type: ignore[arg-type]


_Values: TypeAlias = tuple[SupportsFloat | None, SupportsFloat | None, SupportsFloat | None, object]
"""What a read parses: watts, power limit (W), hashrate (TH/s, pyasic's hashrate object) and mining."""


def _read_fields() -> tuple[DataOptions, ...]:
    from pyasic.miners.data import DataOptions

    return (DataOptions.WATTAGE, DataOptions.WATTAGE_LIMIT, DataOptions.HASHRATE, DataOptions.IS_MINING)


def load_pyasic() -> ModuleType:
    """Import pyasic (slow: seconds) with a clear error when it is missing."""
    return import_extra("pyasic", "pyasic")


def _rpc_read_plan(miner: BaseMiner) -> tuple[list[str], list[tuple[str, list[tuple[str, str]]]]] | None:
    """The RPC commands and parsers pyasic's data table names for the fields a read needs.

    ``None`` when a field needs the miner's web API (then ``get_data`` does the read).
    """
    from pyasic.miners.data import RPCAPICommand

    locations = getattr(miner, "data_locations", None)
    if locations is None or getattr(miner, "rpc", None) is None:
        return None
    commands: list[str] = []
    fields = []
    for option in _read_fields():
        location = getattr(locations, str(option))
        args = []
        for arg in location.kwargs:
            if not isinstance(arg, RPCAPICommand):
                return None
            args.append((arg.name, arg.cmd))
            if arg.cmd not in commands:
                commands.append(arg.cmd)
        fields.append((location.cmd, args))
    return commands, fields


class _Address(ipaddress.IPv4Address):
    """An IPv4 address that renders its text once.

    pyasic formats its RPC object's address into five debug messages and the connect call of every
    request, whether debug logging is on or not; rendering it anew each time is a tenth of the
    controller's CPU in a 1,000-miner curtailment.
    """

    __slots__ = ("_text",)

    def __init__(self, address: ipaddress.IPv4Address) -> None:
        super().__init__(int(address))
        self._text = super().__str__()

    def __str__(self) -> str:
        return self._text


class PyasicMinerDriver:
    """One miner through pyasic (any firmware pyasic detects)."""

    def __init__(self, miner: BaseMiner) -> None:
        from pyasic.miners.base import BaseMiner

        self.miner = miner
        self.ip = str(miner.ip)
        self.model = str(getattr(miner, "model", "") or "")
        self.supports_power_limit = type(miner).set_power_limit is not BaseMiner.set_power_limit
        self._rpc_plan = _rpc_read_plan(miner)
        rpc = getattr(miner, "rpc", None)
        if rpc is not None and type(getattr(rpc, "ip", None)) is ipaddress.IPv4Address:
            rpc.ip = _Address(rpc.ip)

    @classmethod
    async def detect(cls, ip: str) -> PyasicMinerDriver | None:
        """Detect the miner at ``ip`` (``None`` when nothing answers as a miner)."""
        miner = await load_pyasic().get_miner(ip)
        return None if miner is None else cls(miner)

    async def open_session(self) -> None:
        """Fetch the privileged-command token now, where the firmware has one (Whatsminer)."""
        get_token = getattr(getattr(self.miner, "rpc", None), "get_token", None)
        if get_token is not None:
            await get_token()

    async def read(self) -> MinerReading | None:
        values = await (self._read_rpc() if self._rpc_plan is not None else self._read_get_data())
        wattage, limit, hashrate, mining = values
        if wattage is None:
            return None
        return MinerReading(
            power_w=float(wattage),
            power_limit_w=None if limit is None else float(limit),
            hashrate_th_s=float(hashrate) if hashrate is not None else 0.0,
            mining=bool(mining),
        )

    async def _read_get_data(self) -> _Values:
        from pyasic.miners.data import DataOptions

        data = await self.miner.get_data(include=[*_read_fields(), DataOptions.HASHBOARDS])
        return data.wattage, data.wattage_limit, data.hashrate, data.is_mining

    async def _read_rpc(self) -> _Values:
        """pyasic's own data table, minus ``get_data``'s per-call command-list introspection."""
        assert self._rpc_plan is not None
        commands, fields = self._rpc_plan
        replies = await asyncio.gather(
            *(self.miner.rpc.send_command(c) for c in commands), return_exceptions=True
        )
        # an error reply becomes {} so the parser reports "unknown" instead of asking the miner again
        by_command = {c: (r if isinstance(r, dict) else {}) for c, r in zip(commands, replies, strict=True)}
        out = []
        for parser, args in fields:
            out.append(await getattr(self.miner, parser)(**{name: by_command[cmd] for name, cmd in args}))
        return out[0], out[1], out[2], out[3]

    async def sleep(self) -> bool:
        return bool(await self.miner.stop_mining())

    async def wake(self) -> bool:
        return bool(await self.miner.resume_mining())

    async def set_power_limit(self, watts: int) -> bool:
        if not self.supports_power_limit:
            return False
        return bool(await self.miner.set_power_limit(int(watts)))


@dataclass(frozen=True)
class ScannedMiner:
    ip: str
    model: str  # as pyasic names it, e.g. "M30S+ V40"
    firmware: str  # pyasic's firmware family, e.g. "Stock"
    catalog_model: str | None  # the hardware catalogue's name for it, when known


def catalog_model_name(pyasic_model: str, known: Sequence[str]) -> str | None:
    """Map a pyasic model name (``"M30S+ V40"``, ``"S21 XP"``) to a catalogue model, if present."""
    if pyasic_model in known:
        return pyasic_model
    head = pyasic_model.split(" ")[0]
    if head in known:
        return head
    # Antminer names come as "S21 XP" or "S21XP"; compare without spaces
    squashed = {k.replace(" ", ""): k for k in known}
    return squashed.get(pyasic_model.replace(" ", ""))


async def scan_subnet(subnet: str, *, timeout_s: float = 30.0) -> list[ScannedMiner]:
    """Find miners in ``subnet`` with pyasic's network scan, sorted by IP."""

    try:
        network = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise FleetError(f"{subnet!r} is not a subnet", hint="write it like 10.0.1.0/24") from None
    if network.num_addresses > 4096:
        raise FleetError(
            f"subnet {subnet} has {network.num_addresses} addresses (at most 4096 per scan)",
            hint="scan a /20 or smaller at a time",
        )
    pyasic = load_pyasic()
    try:
        found = await asyncio.wait_for(pyasic.MinerNetwork.from_subnet(str(network)).scan(), timeout_s)
    except TimeoutError:
        raise FleetError(
            f"the scan of {subnet} did not finish within {timeout_s:g} s", hint="scan a smaller subnet"
        ) from None
    known = [m.model for m in load_catalog().asics]
    out = [
        ScannedMiner(
            ip=str(m.ip),
            model=str(m.model),
            firmware=str(getattr(m, "firmware", "") or ""),
            catalog_model=catalog_model_name(str(m.model), known),
        )
        for m in found
    ]
    return sorted(out, key=lambda m: ipaddress.ip_address(m.ip))


class MemoryMinerDriver:
    """An in-memory miner for tests: instant or scripted behaviour, every call counted.

    ``reachable=False`` makes reads return ``None``; ``refuses=True`` makes control calls return
    ``False`` without effect; ``delay_s`` delays every call (a slow miner).
    """

    def __init__(
        self,
        *,
        rated_power_w: float = 3400.0,
        rated_hashrate_th_s: float = 100.0,
        board_power_w: float = 12.0,
        min_power_limit_w: float = 1000.0,
        supports_power_limit: bool = True,
        reachable: bool = True,
        refuses: bool = False,
        delay_s: float = 0.0,
    ) -> None:
        self.rated_power_w = rated_power_w
        self.rated_hashrate_th_s = rated_hashrate_th_s
        self.board_power_w = board_power_w
        self.min_power_limit_w = min_power_limit_w
        self.supports_power_limit = supports_power_limit
        self.reachable = reachable
        self.refuses = refuses
        self.delay_s = delay_s
        self.mining = True
        self.power_limit_w = rated_power_w
        self.calls: list[str] = []

    async def _pause(self, name: str) -> None:
        self.calls.append(name)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)

    def power_w(self) -> float:
        return min(self.rated_power_w, self.power_limit_w) if self.mining else self.board_power_w

    async def read(self) -> MinerReading | None:
        await self._pause("read")
        if not self.reachable:
            return None
        power = self.power_w()
        share = (power - self.board_power_w) / (self.rated_power_w - self.board_power_w)
        return MinerReading(
            power, self.power_limit_w, self.rated_hashrate_th_s * max(0.0, share), self.mining
        )

    async def _control(self, name: str) -> bool:
        await self._pause(name)
        return self.reachable and not self.refuses

    async def sleep(self) -> bool:
        ok = await self._control("sleep")
        if ok:
            self.mining = False
        return ok

    async def wake(self) -> bool:
        ok = await self._control("wake")
        if ok:
            self.mining = True
        return ok

    async def set_power_limit(self, watts: int) -> bool:
        ok = await self._control("limit")
        if ok and self.supports_power_limit and self.min_power_limit_w <= watts <= self.rated_power_w:
            self.power_limit_w = float(watts)
            return True
        return False
