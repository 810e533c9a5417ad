"""Meter readings: the EIP-712 struct a node signs, its domain, and its Merkle leaf.

The shapes are shared with ``MeterRegistry`` and ``LeaseEscrow`` on chain (docs/ARCHITECTURE.md,
"Contracts between packages")::

    Reading(address node,bytes32 asset,uint64 epoch,uint64 seq,uint64 windowStart,uint64 windowEnd,
            uint256 energyWh,uint256 gpuSeconds,uint256 hashesTh,uint256 tokens,uint256 leaseId)
    domain: name "Drakewell Meter", version "1", chainId, verifyingContract = MeterRegistry address

Every field is a static ABI type, so the EIP-712 ``encodeData`` of a reading is its eleven values as
32-byte big-endian words, and the readings-tree leaf is ``keccak256(keccak256(those words))``:

- ``struct_hash = keccak256(TYPEHASH ‖ words)``, ``TYPEHASH = keccak256(READING_TYPE)``;
- ``digest = keccak256(0x1901 ‖ domain_separator ‖ struct_hash)`` (the domain separator is computed
  once per domain);
- ``leaf = keccak256(keccak256(words))`` (OpenZeppelin ``StandardMerkleTree``).

Times are Unix seconds (UTC). ``epoch = window_start // epoch_seconds`` with ``epoch_seconds``
defaulting to one day (:data:`DEFAULT_EPOCH_SECONDS`); a reading's window must lie inside its epoch.
``lease_id`` 0 means mining or unleased work. Addresses are kept as lower-case ``0x`` hex.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter
from typing import TypeAlias

from drakewell.core.errors import MeteringError
from drakewell.core.fields import as_int
from drakewell.core.jsontypes import JsonMapping, JsonObject
from drakewell.core.merkle import keccak256

READING_TYPE = (
    "Reading(address node,bytes32 asset,uint64 epoch,uint64 seq,uint64 windowStart,uint64 windowEnd,"
    "uint256 energyWh,uint256 gpuSeconds,uint256 hashesTh,uint256 tokens,uint256 leaseId)"
)
READING_TYPEHASH = keccak256(READING_TYPE.encode())
# abi.encode of the address, the asset and the nine integer fields, when each integer is below
# 2**64 ("Q" refuses anything else, and encode falls back to 32-byte words)
_WORDS = struct.Struct(">12x20s32s" + "24xQ" * 9)
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
DOMAIN_TYPEHASH = keccak256(DOMAIN_TYPE.encode())
DOMAIN_NAME = "Drakewell Meter"
DOMAIN_VERSION = "1"

# (EIP-712 name, ABI type, Python attribute), in struct order
READING_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("node", "address", "node"),
    ("asset", "bytes32", "asset"),
    ("epoch", "uint64", "epoch"),
    ("seq", "uint64", "seq"),
    ("windowStart", "uint64", "window_start"),
    ("windowEnd", "uint64", "window_end"),
    ("energyWh", "uint256", "energy_wh"),
    ("gpuSeconds", "uint256", "gpu_seconds"),
    ("hashesTh", "uint256", "hashes_th"),
    ("tokens", "uint256", "tokens"),
    ("leaseId", "uint256", "lease_id"),
)
READING_LEAF_TYPES: tuple[str, ...] = tuple(t for _, t, _ in READING_FIELDS)
_JSON_NAMES = tuple(name for name, _, _ in READING_FIELDS)
_ATTRS = tuple(attr for _, _, attr in READING_FIELDS)
_values = attrgetter(*_ATTRS)
_uints = attrgetter(*_ATTRS[2:])  # epoch … leaseId: the integer fields
# one leaf per lease per epoch: (leaseId, asset, epoch, gpuSeconds, energyWh)
DELIVERY_LEAF_TYPES: tuple[str, ...] = ("uint256", "bytes32", "uint64", "uint256", "uint256")

DEFAULT_EPOCH_SECONDS = 86_400  # one day
UINT64_MAX = 2**64 - 1
UINT256_MAX = 2**256 - 1

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BYTES32_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")

AbiValue: TypeAlias = str | bytes | int
"""A static ABI value as held here: an address as ``0x`` text, a ``bytes32`` as bytes, an integer."""


class MalformedReadingError(MeteringError):
    """A reading or signature does not have the shape of the ``Reading`` struct."""


def epoch_of(timestamp_s: int, epoch_seconds: int = DEFAULT_EPOCH_SECONDS) -> int:
    """The epoch holding a Unix time: ``floor(timestamp_s / epoch_seconds)``."""
    return int(timestamp_s) // int(epoch_seconds)


def asset_id(name_or_hex: str | bytes) -> bytes:
    """A ``bytes32`` asset id: 32 raw bytes or ``0x``+64 hex as given, else ``keccak256(name)``."""
    if isinstance(name_or_hex, bytes):
        if len(name_or_hex) != 32:
            raise MalformedReadingError(
                f"asset id is {len(name_or_hex)} bytes", hint="pass 32 bytes, 0x+64 hex or a name"
            )
        return name_or_hex
    if _BYTES32_RE.match(name_or_hex):
        return bytes.fromhex(name_or_hex[2:])
    return keccak256(name_or_hex.encode())


def normalize_address(value: object) -> str:
    """Lower-case ``0x`` hex of a 20-byte address given as hex text or bytes."""
    if isinstance(value, bytes | bytearray) and len(value) == 20:
        return "0x" + bytes(value).hex()
    if isinstance(value, str) and _ADDRESS_RE.match(value):
        return value.lower()
    raise MalformedReadingError(
        f"{value!r} is not an address", hint="use 0x followed by 40 hex digits (20 bytes)"
    )


@dataclass(frozen=True, slots=True)
class Reading:
    """What one node delivered in one window (see the module docstring for units and encoding)."""

    node: str  # lower-case 0x hex address of the signing node
    asset: bytes  # 32-byte asset id (the tokenized pool the node belongs to)
    epoch: int
    seq: int  # per-node sequence number; (node, seq) identifies a reading
    window_start: int  # Unix seconds, inclusive
    window_end: int  # Unix seconds, exclusive
    energy_wh: int
    gpu_seconds: int  # busy GPU-seconds (0 for ASICs)
    hashes_th: int  # terahashes computed (0 for GPUs)
    tokens: int  # tokens served (inference)
    lease_id: int = 0  # 0: mining or unleased

    def values(self) -> tuple[AbiValue, ...]:
        """The field values in struct order (what ``abi.encode`` takes for the leaf)."""
        values: tuple[AbiValue, ...] = _values(self)
        return values

    def encode(self) -> bytes:
        """``abi.encode`` of the fields: eleven 32-byte big-endian words (352 bytes)."""
        node = bytes.fromhex(self.node[2:])
        if len(node) == 20 and len(self.asset) == 32:
            try:  # the common case: every integer is below 2**64 (attributes read inline: the hot path)
                return _WORDS.pack(
                    node,
                    self.asset,
                    self.epoch,
                    self.seq,
                    self.window_start,
                    self.window_end,
                    self.energy_wh,
                    self.gpu_seconds,
                    self.hashes_th,
                    self.tokens,
                    self.lease_id,
                )
            except struct.error:
                pass
        uints: tuple[int, ...] = _uints(self)
        return b"".join((bytes(12), node, self.asset, *(v.to_bytes(32, "big") for v in uints)))

    def struct_hash(self) -> bytes:
        return keccak256(READING_TYPEHASH + self.encode())

    def leaf(self) -> bytes:
        """The readings-tree leaf: ``keccak256(keccak256(abi.encode(fields)))``."""
        return keccak256(keccak256(self.encode()))

    def check(self) -> str | None:
        """``None`` when every field is in range for its type, else what is wrong."""
        try:
            normalize_address(self.node)
        except MalformedReadingError:
            return f"node {self.node!r} is not a 0x address"
        if self.node != self.node.lower():
            return "node address must be lower-case hex (use normalize_address)"
        if not isinstance(self.asset, bytes) or len(self.asset) != 32:
            return "asset must be 32 bytes"
        for name, abi_type, attr in READING_FIELDS[2:]:
            v = getattr(self, attr)
            if type(v) is not int:
                return f"{name} must be an integer, got {type(v).__name__}"
            if v < 0 or v > (UINT64_MAX if abi_type == "uint64" else UINT256_MAX):
                return f"{name}={v} is out of range for {abi_type}"
        if self.window_end <= self.window_start:
            return f"windowEnd {self.window_end} is not after windowStart {self.window_start}"
        return None

    def to_json(self) -> JsonObject:
        """JSON object with the EIP-712 field names; integers as JSON numbers, bytes as 0x hex."""
        out: JsonObject = dict(zip(_JSON_NAMES, _values(self), strict=True))
        out["asset"] = "0x" + self.asset.hex()
        return out

    @classmethod
    def from_json(cls, obj: object) -> Reading:
        """Parse :meth:`to_json`'s shape (integers may also be decimal or 0x strings); anything but
        a JSON object is refused as malformed."""
        if not isinstance(obj, Mapping):
            raise MalformedReadingError(
                f"a reading must be a JSON object, got {type(obj).__name__}",
                hint="send {'node': ..., 'asset': ..., 'epoch': ..., ...}",
            )
        missing = [name for name, _, _ in READING_FIELDS if name not in obj]
        if missing:
            raise MalformedReadingError(
                f"reading lacks field(s) {', '.join(missing)}",
                hint="a reading has node, asset, epoch, seq, windowStart, windowEnd, energyWh, "
                "gpuSeconds, hashesTh, tokens, leaseId",
            )
        asset = obj["asset"]
        if not (isinstance(asset, str) and _BYTES32_RE.match(asset)):
            raise MalformedReadingError(f"asset {asset!r} is not bytes32", hint="use 0x followed by 64 hex")
        ints = {attr: _parse_uint(name, obj[name]) for name, _, attr in READING_FIELDS[2:]}
        reading = cls(node=normalize_address(obj["node"]), asset=bytes.fromhex(asset[2:]), **ints)
        problem = reading.check()
        if problem:
            raise MalformedReadingError(f"malformed reading: {problem}", hint="fix the field and re-sign")
        return reading


def _parse_uint(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise MalformedReadingError(f"{name} is a boolean", hint="send an unsigned integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16) if value[:2] in ("0x", "0X") else int(value, 10)
        except ValueError:
            pass
    raise MalformedReadingError(
        f"{name}={value!r} is not an unsigned integer", hint="send a JSON integer or a decimal string"
    )


@dataclass(frozen=True)
class MeterDomain:
    """The EIP-712 domain readings are bound to (one per chain and ``MeterRegistry``)."""

    chain_id: int
    verifying_contract: str  # MeterRegistry address
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "verifying_contract", normalize_address(self.verifying_contract))
        if not 0 <= self.chain_id <= UINT256_MAX:
            raise MalformedReadingError(f"chain id {self.chain_id} is out of range", hint="use a uint256")

    @cached_property
    def separator(self) -> bytes:
        """``keccak256(abi.encode(DOMAIN_TYPEHASH, keccak(name), keccak(version), chainId, contract))``."""
        return keccak256(
            DOMAIN_TYPEHASH
            + keccak256(self.name.encode())
            + keccak256(self.version.encode())
            + self.chain_id.to_bytes(32, "big")
            + bytes(12)
            + bytes.fromhex(self.verifying_contract[2:])
        )

    def digest(self, reading: Reading) -> bytes:
        """The EIP-712 digest a node signs: ``keccak256(0x1901 ‖ separator ‖ struct_hash)``."""
        return keccak256(b"\x19\x01" + self.separator + keccak256(READING_TYPEHASH + reading.encode()))

    def typed_data(self, reading: Reading) -> dict[str, object]:
        """The full EIP-712 message (for ``eth_account.messages.encode_typed_data(full_message=...)``)."""
        message: dict[str, object] = {**reading.to_json(), "asset": reading.asset}
        return {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Reading": [{"name": n, "type": t} for n, t, _ in READING_FIELDS],
            },
            "primaryType": "Reading",
            "domain": self.to_json(),
            "message": message,
        }

    def to_json(self) -> JsonObject:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }

    @classmethod
    def from_json(cls, obj: JsonMapping) -> MeterDomain:
        try:
            domain = cls(
                chain_id=as_int(obj["chainId"]),
                verifying_contract=normalize_address(obj["verifyingContract"]),
                name=str(obj.get("name", DOMAIN_NAME)),
                version=str(obj.get("version", DOMAIN_VERSION)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedReadingError(
                f"bad meter domain {dict(obj)!r}: {exc}",
                hint="give chainId and verifyingContract (the MeterRegistry address)",
            ) from None
        return domain


@dataclass(frozen=True, slots=True)
class SignedReading:
    """A reading and its 65-byte signature ``r ‖ s ‖ v`` (v = 27 or 28) over the domain digest."""

    reading: Reading
    signature: bytes

    def to_json(self) -> JsonObject:
        out = self.reading.to_json()
        out["signature"] = "0x" + self.signature.hex()
        return out

    @classmethod
    def from_json(cls, obj: object) -> SignedReading:
        """:meth:`to_json`'s object (anything else is refused as malformed)."""
        reading = Reading.from_json(obj)
        sig = obj.get("signature") if isinstance(obj, Mapping) else None
        if not (isinstance(sig, str) and re.fullmatch(r"0x[0-9a-fA-F]{130}", sig)):
            raise MalformedReadingError(
                f"signature {sig!r} is not 65 bytes of hex", hint="send 0x followed by 130 hex digits (r‖s‖v)"
            )
        return cls(reading, bytes.fromhex(sig[2:]))
