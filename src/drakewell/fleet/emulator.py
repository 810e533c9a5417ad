"""Emulated Whatsminer fleet: the BTMiner API v2 on TCP 4028, one loopback address per miner.

Unmodified pyasic detects and controls these miners exactly as it does real MicroBT Whatsminers with
firmware up to 2024.11 (newer firmware makes pyasic switch to the v3 protocol on port 4433, which is
not emulated).

Wire protocol (one request and one reply per TCP connection; the client sends one JSON object with no
delimiter and reads the reply until the server closes the connection):

* plain commands ``{"command": NAME}`` (``{"cmd": NAME}`` is accepted too): ``version`` and
  ``devdetails`` (detection: the reply names ``btminer``/``bitmicro`` and the model, e.g. ``M30S+V40``),
  ``get_version`` (``fw_ver`` ``YYYYMMDD…``, at most 2024.11), ``summary``, ``devs``, ``pools`` (and
  their ``+`` joins, answered as ``{name: [reply], …}``), ``get_miner_info``, ``get_psu``,
  ``get_error_code``, ``status`` (``mineroff``) and ``get_token``;
* privileged commands ``{"enc": 1, "data": base64(AES-256-ECB(json, zero-padded to 16 bytes))}``.
  The key is ``sha256(md5crypt(password, salt))``, where ``salt`` comes from ``get_token``; the inner
  JSON carries ``cmd`` (``power_off``, ``power_on``, ``adjust_power_limit`` with ``power_limit``) and
  ``token`` = ``md5crypt(md5crypt(password, salt) + time, newsalt)`` (the hash part of each
  ``$1$salt$hash`` string). Replies to privileged commands are encrypted the same way,
  ``{"enc": base64(…)}``. A token stays valid for 30 minutes (pyasic reuses one that long).

Physics of one miner (rated power ``P`` W, rated hashrate ``H`` TH/s, control-board draw ``p0`` W):
the power target is ``p0`` when asleep and ``min(P, limit)`` when mining; the drawn power moves toward
its target at ``P / ramp_s`` W/s (full swing in ``ramp_s`` seconds), and hashrate follows power,
``H · max(0, p − p0) / (P − p0)``.

Faults (a share of the fleet each, drawn with a seeded generator so a run is repeatable):

* ``dead``: the address stops listening (connection refused);
* ``slow``: every reply waits ``slow_delay_s`` first, and a command takes effect only when its reply
  is sent;
* ``refusing``: privileged commands are answered ``can't access write cmd`` (API writes disabled);
* ``stale``: reads report the values frozen when the fault began, whatever the miner does.

Faults start ``fault_after_s`` seconds after the fleet starts (0: at once), so a controller can first
see a healthy fleet and then lose part of it. Every loop here is bounded: a connection gives up after
``read_timeout_s``, and :func:`run_emulator` stops after ``duration_s``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import hashlib
import ipaddress
import json
import os
import random
import resource
import string
import subprocess
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from passlib.hash import md5_crypt

from drakewell.core.jsontypes import JsonObject, JsonValue
from drakewell.fleet.errors import FleetError

__all__ = [
    "MINER_PORT",
    "EmulatedFleet",
    "EmulatedMiner",
    "EmulatorConfig",
    "Fault",
    "emulated_ips",
    "raise_open_file_limit",
    "run_emulator",
]

MINER_PORT = 4028
_TOKEN_LIFETIME_S = 30 * 60
_TOKENS_KEPT = 16
_FIRMWARE = "20240510.22.Rel"  # ≤ 2024.11: pyasic keeps the v2 protocol


class Fault(enum.Enum):
    NONE = "none"
    DEAD = "dead"
    SLOW = "slow"
    REFUSING = "refusing"
    STALE = "stale"


@dataclass(frozen=True)
class EmulatorConfig:
    """How many miners, where, which model, and which share of them misbehaves."""

    count: int
    first_ip: str = "127.0.1.1"
    model: str = "M30S+V40"  # as the firmware reports it (pyasic maps it to a class)
    rated_power_w: float = 3400.0
    rated_hashrate_th_s: float = 100.0
    board_power_w: float = 12.0  # control board and fans when asleep
    min_power_limit_w: float = 1000.0
    ramp_s: float = 1.5
    reply_latency_s: float = 0.0  # firmware's own time to answer a request
    password: str = "admin"
    dead: float = 0.0
    slow: float = 0.0
    refusing: float = 0.0
    stale: float = 0.0
    slow_delay_s: float = 20.0
    fault_after_s: float = 0.0
    read_timeout_s: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise FleetError(f"miner count must be at least 1, got {self.count}", hint="pass --count N")
        shares = {"dead": self.dead, "slow": self.slow, "refusing": self.refusing, "stale": self.stale}
        for name, share in shares.items():
            if not 0.0 <= share <= 1.0:
                raise FleetError(f"{name} share {share} is outside [0, 1]", hint="give a fraction, e.g. 0.05")
        if sum(shares.values()) > 1.0:
            raise FleetError(
                f"fault shares add up to {sum(shares.values()):.2f} > 1", hint="lower the fault shares"
            )
        if not self.board_power_w < self.min_power_limit_w <= self.rated_power_w:
            raise FleetError(
                "power levels must satisfy board < minimum limit ≤ rated power",
                hint=f"got {self.board_power_w}, {self.min_power_limit_w}, {self.rated_power_w} W",
            )
        emulated_ips(self.first_ip, self.count)  # validates the address range


def emulated_ips(first_ip: str, count: int) -> list[str]:
    """``count`` consecutive loopback addresses from ``first_ip`` (all inside 127.0.0.0/8)."""
    try:
        first = ipaddress.IPv4Address(first_ip)
    except ValueError:
        raise FleetError(f"{first_ip!r} is not an IPv4 address", hint="use e.g. 127.0.1.1") from None
    last = first + (count - 1) if int(first) + count - 1 <= 0xFFFFFFFF else None
    loopback = ipaddress.IPv4Network("127.0.0.0/8")
    if last is None or first not in loopback or last not in loopback or first == loopback[0]:
        raise FleetError(
            f"{count} miners from {first_ip} do not fit in the loopback network 127.0.0.0/8",
            hint="emulated miners listen on loopback addresses only; start at e.g. 127.0.1.1",
        )
    return [str(first + i) for i in range(count)]


def raise_open_file_limit(needed: int) -> int:
    """Raise this process's soft open-file limit to at least ``needed`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise FleetError(
            f"this process may open {soft} files but needs about {needed}",
            hint="raise the hard limit (ulimit -Hn) or emulate fewer miners",
        )
    return int(soft)


def _md5crypt_hash(word: str, salt: str) -> str:
    """The hash part of ``$1$<salt>$<hash>``."""
    return str(md5_crypt.using(salt=salt).hash(word)).split("$")[3]


def _cipher(passwd_md5: str) -> Cipher[modes.ECB]:
    return Cipher(algorithms.AES(hashlib.sha256(passwd_md5.encode()).digest()), modes.ECB())


def _status(msg: JsonValue, code: int | None = None, *, ok: bool = True) -> JsonObject:
    out: JsonObject = {"STATUS": "S" if ok else "E", "When": int(time.time()), "Msg": msg}
    if code is not None:
        out["Code"] = code
    out["Description"] = ""
    return out


def _cgminer(name: str, body: list[JsonValue]) -> JsonObject:
    head: JsonObject = {
        "STATUS": "S",
        "When": int(time.time()),
        "Code": 11,
        "Msg": name,
        "Description": "btminer",
    }
    return {"STATUS": [head], name.upper(): body, "id": 1}


@dataclass
class EmulatedMiner:
    """One emulated Whatsminer: its state, its physics and its answers to the BTMiner v2 API."""

    ip: str
    config: EmulatorConfig
    fault: Fault = Fault.NONE
    clock: Callable[[], float] = time.monotonic
    salt: str = "BQ5hoXV9"
    mining: bool = True
    power_limit_w: float = 0.0
    commands: list[str] = field(default_factory=list)  # every command name received, in order
    _from_w: float = 0.0
    _since_s: float = 0.0
    _started_s: float = 0.0
    _fault_active: bool = False
    _frozen: dict[str, JsonObject] = field(default_factory=dict)
    _tokens: OrderedDict[str, float] = field(default_factory=OrderedDict)
    _passwd_md5: str = ""

    def __post_init__(self) -> None:
        now = self.clock()
        self.power_limit_w = self.config.rated_power_w
        self._from_w = self.config.rated_power_w
        self._since_s = now
        self._started_s = now
        self._passwd_md5 = _md5crypt_hash(self.config.password, self.salt)

    # -- physics ----------------------------------------------------------------------------
    def target_w(self) -> float:
        if not self.mining:
            return self.config.board_power_w
        return min(self.config.rated_power_w, self.power_limit_w)

    def power_w(self, now: float | None = None) -> float:
        now = self.clock() if now is None else now
        target = self.target_w()
        rate = self.config.rated_power_w / self.config.ramp_s if self.config.ramp_s > 0 else float("inf")
        step = rate * max(0.0, now - self._since_s)
        if abs(target - self._from_w) <= step:
            return target
        return self._from_w + step if target > self._from_w else self._from_w - step

    def hashrate_th_s(self, now: float | None = None) -> float:
        c = self.config
        share = (self.power_w(now) - c.board_power_w) / (c.rated_power_w - c.board_power_w)
        return c.rated_hashrate_th_s * max(0.0, share)

    def _retarget(self, change: Callable[[], None]) -> None:
        now = self.clock()
        self._from_w = self.power_w(now)
        self._since_s = now
        change()

    def power_off(self) -> None:
        self._retarget(lambda: setattr(self, "mining", False))

    def power_on(self) -> None:
        self._retarget(lambda: setattr(self, "mining", True))

    def set_limit(self, watts: float) -> None:
        self._retarget(lambda: setattr(self, "power_limit_w", watts))

    # -- faults -----------------------------------------------------------------------------
    def activate_fault(self) -> None:
        """Start misbehaving as configured (stale miners freeze their current reports)."""
        if self.fault is Fault.STALE:
            self._frozen = {n: self._read(n) for n in ("summary", "devs", "pools", "status")}
        self._fault_active = True

    def misbehaves(self, fault: Fault) -> bool:
        return self._fault_active and self.fault is fault

    # -- replies ----------------------------------------------------------------------------
    def _read(self, name: str) -> JsonObject:
        now = self.clock()
        c = self.config
        mhs = self.hashrate_th_s(now) * 1e6
        power = round(self.power_w(now))
        mac = "C6:07:" + ":".join(f"{int(o):02X}" for o in self.ip.split("."))
        if name == "summary":
            return _cgminer(
                "summary",
                [
                    {
                        "Elapsed": int(now - self._started_s),
                        "MHS av": mhs,
                        "MHS 5s": mhs,
                        "MHS 1m": mhs,
                        "MHS 5m": mhs,
                        "Temperature": 35.0 + 35.0 * power / c.rated_power_w,
                        "Fan Speed In": 4000 if self.mining else 0,
                        "Fan Speed Out": 4000 if self.mining else 0,
                        "Power": power,
                        "Power Limit": round(self.power_limit_w),
                        "Factory GHS": c.rated_hashrate_th_s * 1000,
                        "Env Temp": 25.0,
                        "MAC": mac,
                        "Error Code Count": 0,
                        "Power Fanspeed": 6000,
                        "Firmware Version": f"'{_FIRMWARE}'",
                    }
                ],
            )
        if name == "devs":
            return _cgminer(
                "devs",
                [
                    {
                        "ASC": i,
                        "Slot": i,
                        "Enabled": "Y",
                        "Status": "Alive",
                        "Temperature": 60.0,
                        "Chip Temp Avg": 70.0,
                        "MHS 1m": mhs / 3,
                        "Effective Chips": 148,
                        "PCB SN": f"EMU{self.ip}-{i}",
                    }
                    for i in range(3)
                ],
            )
        if name == "pools":
            pool: JsonObject = {
                "POOL": 0,
                "URL": "stratum+tcp://pool.invalid:3333",
                "Status": "Alive",
                "Stratum Active": True,
                "User": "site.worker",
                "Accepted": 1,
                "Rejected": 0,
                "Get Failures": 0,
                "Remote Failures": 0,
            }
            return _cgminer("pools", [pool])
        if name == "status":
            return _status({"mineroff": "false" if self.mining else "true", "FirmwareVersion": _FIRMWARE})
        raise KeyError(name)

    def answer(self, name: str) -> JsonObject:
        """The reply to one plain (unencrypted) command."""
        self.commands.append(name)
        if name in ("summary", "devs", "pools", "status"):
            return self._frozen[name] if self.misbehaves(Fault.STALE) else self._read(name)
        if name == "version":
            return _cgminer("version", [{"API": "2.0.5", "BTMiner": "2.0.5"}])
        if name == "devdetails":
            return _cgminer(
                "devdetails",
                [
                    {
                        "DEVDETAILS": i,
                        "Name": "SM",
                        "ID": i,
                        "Driver": "bitmicro",
                        "Kernel": "",
                        "Model": self.config.model,
                    }
                    for i in range(3)
                ],
            )
        if name == "get_version":
            msg: JsonObject = {
                "api_ver": "whatsminer v2.0.5",
                "fw_ver": _FIRMWARE,
                "platform": "H6OS",
                "chip": "K210",
            }
            return _status(msg, 131)
        if name == "get_miner_info":
            msg = {
                "ip": self.ip,
                "proto": "dhcp",
                "netmask": "255.0.0.0",
                "dns": "",
                "hostname": "wm-" + self.ip.replace(".", "-"),
                "mac": "",
                "ledstat": "auto",
                "minersn": "EMU" + self.ip.replace(".", ""),
            }
            return _status(msg, 131)
        if name == "get_psu":
            return _status({"name": "P221B", "fan_speed": "6000"}, 131)
        if name == "get_error_code":
            return _status({"error_code": []}, 131)
        if name == "get_token":
            return self._issue_token()
        return _status("invalid cmd", 14, ok=False)

    def _issue_token(self) -> JsonObject:
        newsalt = "".join(random.choices(string.ascii_letters + string.digits, k=8))
        stamp = str(int(time.time()) % 10000)
        sign = _md5crypt_hash(self._passwd_md5 + stamp, newsalt)
        self._tokens[sign] = self.clock() + _TOKEN_LIFETIME_S
        while len(self._tokens) > _TOKENS_KEPT:
            self._tokens.popitem(last=False)
        return _status({"time": stamp, "salt": self.salt, "newsalt": newsalt}, 134)

    def privileged(self, envelope: str) -> JsonObject:
        """Decrypt, authenticate and run one privileged command; the reply (encrypted if accepted)."""
        cipher = _cipher(self._passwd_md5)
        try:
            plain = cipher.decryptor().update(base64.b64decode(envelope))
            inner = json.loads(plain.rstrip(b"\0").decode())
        except (ValueError, UnicodeDecodeError):
            self.commands.append("priv:undecryptable")
            return _status("decrypt error", 22, ok=False)
        name = str(inner.get("cmd"))
        self.commands.append("priv:" + name)
        expiry = self._tokens.get(str(inner.get("token")))
        if expiry is None or expiry < self.clock():
            return _status("invalid token", 23, ok=False)
        if self.misbehaves(Fault.REFUSING):
            return _status("can't access write cmd", 45, ok=False)
        if name == "power_off":
            self.power_off()
        elif name == "power_on":
            self.power_on()
        elif name == "adjust_power_limit":
            try:
                watts = float(inner["power_limit"])
            except (KeyError, ValueError):
                return _status("invalid power limit", 14, ok=False)
            if not self.config.min_power_limit_w <= watts <= self.config.rated_power_w:
                return _status("power limit out of range", 14, ok=False)
            self.set_limit(watts)
        else:
            return _status("invalid cmd", 14, ok=False)
        text = json.dumps(_status("API command OK", 131))
        text += "\0" * (-len(text) % 16)
        sealed = cipher.encryptor().update(text.encode())
        return {"enc": base64.b64encode(sealed).decode()}

    def handle(self, request: bytes) -> bytes:
        """One request (a JSON object) → one reply."""
        req = json.loads(request.decode())
        if not isinstance(req, dict):
            return json.dumps(_status("invalid cmd", 14, ok=False)).encode()
        if req.get("enc") == 1:
            return json.dumps(self.privileged(str(req.get("data", "")))).encode()
        name = str(req.get("command") or req.get("cmd") or "")
        if "+" in name:
            return json.dumps({n: [self.answer(n)] for n in name.split("+")}).encode()
        return json.dumps(self.answer(name)).encode()


class EmulatedFleet:
    """``config.count`` emulated miners, one asyncio listener each on ``<ip>:4028``.

    Use as ``async with EmulatedFleet(config) as fleet:``; ``fleet.miners[ip]`` is each miner's state.
    """

    def __init__(self, config: EmulatorConfig, *, port: int = MINER_PORT) -> None:
        self.config = config
        self.port = port
        rng = random.Random(config.seed)
        ips = emulated_ips(config.first_ip, config.count)
        faults = _assign_faults(config, rng)
        self.miners: dict[str, EmulatedMiner] = {
            ip: EmulatedMiner(ip, config, fault=fault, salt="".join(rng.choices(string.ascii_letters, k=8)))
            for ip, fault in zip(ips, faults, strict=True)
        }
        self._servers: dict[str, asyncio.Server] = {}
        self._fault_task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    def by_fault(self, fault: Fault) -> list[str]:
        return [ip for ip, m in self.miners.items() if m.fault is fault]

    async def start(self) -> None:
        raise_open_file_limit(len(self.miners) + 1024)
        for ip, miner in self.miners.items():
            self._servers[ip] = await asyncio.start_server(self._on_connection(miner), ip, self.port)
        if self.config.fault_after_s > 0:
            self._fault_task = asyncio.create_task(self._faults_later(self.config.fault_after_s))
        else:
            await self.activate_faults()

    async def _faults_later(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await self.activate_faults()

    async def activate_faults(self) -> None:
        """Make the faulty share misbehave now (dead miners stop listening)."""
        for ip, miner in self.miners.items():
            if miner.fault is Fault.NONE:
                continue
            miner.activate_fault()
            if miner.fault is Fault.DEAD:
                await self.kill(ip)

    async def kill(self, ip: str) -> None:
        """Stop one miner's listener (connections are then refused)."""
        server = self._servers.pop(ip, None)
        if server is not None:
            server.close()
            await server.wait_closed()

    async def stop(self) -> None:
        if self._fault_task is not None:
            self._fault_task.cancel()
        for ip in list(self._servers):
            self._servers[ip].close()
        for task in list(self._handlers):
            task.cancel()
        for ip in list(self._servers):
            await self._servers.pop(ip).wait_closed()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def __aenter__(self) -> EmulatedFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _on_connection(
        self, miner: EmulatedMiner
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._handlers.add(task)
            try:
                request = await _read_request(reader, self.config.read_timeout_s)
                if request is None:
                    return
                if self.config.reply_latency_s > 0:
                    await asyncio.sleep(self.config.reply_latency_s)
                if miner.misbehaves(Fault.SLOW):
                    await asyncio.sleep(self.config.slow_delay_s)
                writer.write(miner.handle(request))
                await writer.drain()
            except (ConnectionError, ValueError, asyncio.CancelledError):
                pass  # the client went away, sent garbage, or the fleet is stopping
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                    await writer.wait_closed()
                if task is not None:
                    self._handlers.discard(task)

        return serve


async def _read_request(reader: asyncio.StreamReader, timeout_s: float) -> bytes | None:
    """Read until the bytes received parse as one JSON object (clients send no delimiter)."""
    buf = b""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(buf) < 65536:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return None
        try:
            chunk = await asyncio.wait_for(reader.read(4096), remaining)
        except TimeoutError:
            return None
        if not chunk:
            break
        buf += chunk
        try:
            json.loads(buf.decode())
        except (ValueError, UnicodeDecodeError):
            continue
        return buf
    return None


def _assign_faults(config: EmulatorConfig, rng: random.Random) -> list[Fault]:
    n = config.count
    counts = [
        (Fault.DEAD, round(config.dead * n)),
        (Fault.SLOW, round(config.slow * n)),
        (Fault.REFUSING, round(config.refusing * n)),
        (Fault.STALE, round(config.stale * n)),
    ]
    faults = [f for f, k in counts for _ in range(k)][:n]
    faults += [Fault.NONE] * (n - len(faults))
    rng.shuffle(faults)
    return faults


async def run_emulator(
    config: EmulatorConfig,
    *,
    duration_s: float,
    on_ready: Callable[[EmulatedFleet], None] | None = None,
) -> None:
    """Run an emulated fleet for ``duration_s`` seconds, then stop it."""
    async with EmulatedFleet(config) as fleet:
        if on_ready is not None:
            on_ready(fleet)
        await asyncio.sleep(duration_s)


def start_emulator_process(
    count: int, first_ip: str, latency_ms: float, duration_s: float, start_timeout_s: float = 180.0
) -> subprocess.Popen[str]:
    """Run ``drakewell emulate miners`` in its own process and return it once it prints ``ready``
    (benchmarks keep the emulator off the controller's core); it stops by itself after ``duration_s``."""
    cmd = [sys.executable, "-m", "drakewell.cli", "emulate", "miners", "--count", str(count)]
    cmd += ["--first-ip", first_ip, "--latency-ms", str(latency_ms), "--duration-s", str(duration_s)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    deadline = time.monotonic() + start_timeout_s
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "ready":
            return proc
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise FleetError("the emulator did not start", hint=proc.stdout.read() if proc.stdout else "")
