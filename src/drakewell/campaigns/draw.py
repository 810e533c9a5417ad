"""A verifiable lucky draw: committed entries, a bitcoin block as the beacon, a deterministic pick.

**Timeline.** The campaign's posting window ``[start, end)`` fixes who is eligible. The rules name
the beacon in advance by block height (``draw.beacon_height``) and a commitment deadline
``draw.commit_by`` (after ``end``). Between ``end`` and ``commit_by`` the operator runs
``drakewell campaign commit``, which writes a :class:`Commitment`: the sorted entries, the digest of
the rules and the beacon height, all bound by one SHA-256 (``commitment``) that is published. The
draw refuses to run without a commitment, with one made outside ``[end, commit_by)``, or with one
whose entries or rules differ from the ones it recomputes; and it refuses a beacon block whose
header time is not after ``commit_by`` (it could have been known when the entries were fixed).

**Beacon.** The beacon is the hash of bitcoin block ``beacon_height``, given with its 80-byte header
``version ‖ prev_hash ‖ merkle_root ‖ time ‖ bits ‖ nonce`` (little-endian fields). The header is
accepted when

- ``SHA256(SHA256(header))``, byte-reversed as bitcoin displays it, equals the beacon;
- the target encoded in ``bits`` (compact form: ``mantissa · 256^(exponent − 3)``, with bitcoin's
  sign and overflow rules) is positive and at most ``POW_LIMIT // min_difficulty`` (mainnet's
  proof-of-work limit, ``bits = 0x1d00ffff``, is difficulty 1);
- the double SHA-256 read as a little-endian integer is at most that target.

So a beacon of the operator's choosing needs a header with real proof of work: grinding the draw
costs ``min_difficulty · 2^32`` hashes per try, and at mainnet's difficulty means mining a block.
That the header is the one at ``beacon_height`` (not another real block) is checked against any
public copy of the chain; :func:`verify_header` cannot know heights, so the verifier prints it.

**Pick** (anyone can re-run it): entries are the eligible user ids, sorted ascending (one entry per
user). With ``seed = sha256(beacon_bytes ‖ campaign_name_utf8)``, for round ``k = 0, 1, …`` draw
``r = int(sha256(seed ‖ k as 8-byte big-endian)) mod len(remaining)`` and take
``remaining.pop(r)``, until ``winners`` are drawn or no entries remain.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from drakewell.campaigns.rules import Rules
from drakewell.core.errors import CampaignError
from drakewell.core.jsontypes import JsonObject
from drakewell.core.times import aware_utc

#: Mainnet's proof-of-work limit (difficulty 1, ``bits = 0x1d00ffff``).
POW_LIMIT = 0xFFFF << 208
HEADER_BYTES = 80


class DrawError(CampaignError):
    """The beacon, its block header or the draw's commitment is missing, malformed or refused."""


def beacon_bytes(beacon: str) -> bytes:
    text = beacon.strip().lower().removeprefix("0x")
    if not text:
        raise DrawError("no beacon given for the lucky draw", hint="pass --beacon with the stated block hash")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise DrawError(
            f"beacon {beacon!r} is not hex", hint="pass the block hash as 64 hex digits"
        ) from None
    if len(raw) != 32:
        raise DrawError(f"beacon is {len(raw)} bytes, not 32", hint="a bitcoin block hash is 32 bytes")
    return raw


def draw_winners(entries: Iterable[str], winners: int, beacon: str, campaign: str) -> list[str]:
    """The pick of the module docstring (no checks of where the beacon came from)."""
    remaining = sorted(set(entries))
    seed = hashlib.sha256(beacon_bytes(beacon) + campaign.encode()).digest()
    out: list[str] = []
    k = 0
    while remaining and len(out) < winners:
        r = int.from_bytes(hashlib.sha256(seed + k.to_bytes(8, "big")).digest(), "big") % len(remaining)
        out.append(remaining.pop(r))
        k += 1
    return out


# --- bitcoin block headers -------------------------------------------------------------------------


def target_from_bits(bits: int) -> int:
    """The target a compact ``bits`` field encodes (bitcoin's ``arith_uint256::SetCompact``)."""
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    if bits & 0x00800000 and mantissa:
        raise DrawError(f"bits 0x{bits:08x} encode a negative target", hint="no valid block has them")
    if mantissa and (
        exponent > 34 or (mantissa > 0xFF and exponent > 33) or (mantissa > 0xFFFF and exponent > 32)
    ):
        raise DrawError(f"bits 0x{bits:08x} overflow 256 bits", hint="no valid block has them")
    target = mantissa >> 8 * (3 - exponent) if exponent <= 3 else mantissa << 8 * (exponent - 3)
    if target == 0:
        raise DrawError(f"bits 0x{bits:08x} encode a zero target", hint="no valid block has them")
    return target


@dataclass(frozen=True)
class BlockHeader:
    """A parsed 80-byte bitcoin block header (hashes as displayed: byte-reversed hex)."""

    version: int
    prev_hash: str
    merkle_root: str
    time: int  # Unix seconds, as the miner stated it
    bits: int
    nonce: int
    hash: str  # double SHA-256, byte-reversed hex
    pow_value: int  # double SHA-256 as a little-endian integer (compared with the target)

    @property
    def target(self) -> int:
        return target_from_bits(self.bits)

    @property
    def time_utc(self) -> datetime:
        return datetime.fromtimestamp(self.time, UTC)


def parse_header(header_hex: str) -> BlockHeader:
    """Parse an 80-byte header given as hex (with or without ``0x``)."""
    text = header_hex.strip().lower().removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise DrawError(
            "the block header is not hex", hint="pass the raw 80-byte header as 160 hex digits"
        ) from None
    if len(raw) != HEADER_BYTES:
        raise DrawError(
            f"the block header is {len(raw)} bytes, not {HEADER_BYTES}",
            hint="pass the raw header (e.g. bitcoin-cli getblockheader HASH false)",
        )
    digest = hashlib.sha256(hashlib.sha256(raw).digest()).digest()
    return BlockHeader(
        version=int.from_bytes(raw[0:4], "little"),
        prev_hash=raw[4:36][::-1].hex(),
        merkle_root=raw[36:68][::-1].hex(),
        time=int.from_bytes(raw[68:72], "little"),
        bits=int.from_bytes(raw[72:76], "little"),
        nonce=int.from_bytes(raw[76:80], "little"),
        hash=digest[::-1].hex(),
        pow_value=int.from_bytes(digest, "little"),
    )


def verify_header(header_hex: str, beacon: str, *, min_difficulty: int = 1) -> BlockHeader:
    """The header, once its hash equals ``beacon`` and it carries the proof of work it claims."""
    header = parse_header(header_hex)
    expected = beacon_bytes(beacon).hex()
    if header.hash != expected:
        raise DrawError(
            f"the block header hashes to {header.hash}, not to the beacon {expected}",
            hint="pass the header of the beacon block itself",
        )
    target = header.target
    max_target = POW_LIMIT // max(1, min_difficulty)
    if target > max_target:
        raise DrawError(
            f"the header's bits 0x{header.bits:08x} ask for less work than difficulty {min_difficulty}",
            hint="the beacon must be a real bitcoin block, mined at the stated difficulty",
        )
    if header.pow_value > target:
        raise DrawError(
            f"block hash {header.hash} does not meet the target of its bits 0x{header.bits:08x}",
            hint="the header was altered or never mined; take it from the bitcoin chain",
        )
    return header


# --- the commitment --------------------------------------------------------------------------------


def _sha256_json(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def rules_digest(rules: Rules) -> str:
    """SHA-256 of the rules as parsed (every field but where they were read from and the beacon
    value, which is only known later)."""
    fields = dataclasses.asdict(rules)
    for key in ("source", "beacon"):
        fields.pop(key)
    return _sha256_json({k: str(v) if isinstance(v, Decimal) else v for k, v in fields.items()})


def entries_digest(entries: Iterable[str]) -> str:
    """SHA-256 of the sorted, de-duplicated entries as a JSON array."""
    return _sha256_json(sorted(set(entries)))


@dataclass(frozen=True)
class Commitment:
    """What the operator fixes before the beacon exists; ``digest`` binds every other field."""

    campaign: str
    rules_sha256: str
    entries: tuple[str, ...]  # sorted
    entries_sha256: str
    winners: int
    beacon_height: int
    commit_by_utc: datetime
    committed_at_utc: datetime

    def _bound(self) -> JsonObject:
        """Every field but the entries (bound through ``entries_sha256``), in order; times in ISO 8601."""
        values = ((f.name, getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "entries")
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values}

    @property
    def digest(self) -> str:
        return _sha256_json(self._bound())

    def to_json(self) -> str:
        """The commitment file: the campaign, the digest, the bound fields, then the entries."""
        body = {
            "campaign": self.campaign,
            "commitment": self.digest,
            **self._bound(),
            "entries": list(self.entries),
        }
        return json.dumps(body, indent=1, ensure_ascii=False) + "\n"


class _CommitmentFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    campaign: str
    commitment: str
    rules_sha256: str
    entries_sha256: str
    winners: int
    beacon_height: int
    commit_by_utc: str
    committed_at_utc: str
    entries: list[str]


def _stated_utc(text: str, key: str) -> datetime:
    return aware_utc(text, f"{key} = {text!r}", DrawError, hint="write the commitment again")


def load_commitment(path: str | Path) -> Commitment:
    """Read a commitment file; refuses one whose fields no longer hash to its ``commitment``."""
    p = Path(path)
    try:
        raw = _CommitmentFile.model_validate_json(p.read_bytes())
    except FileNotFoundError:
        raise DrawError(
            f"no draw commitment at {p}",
            hint="run `drakewell campaign commit` after the window ends and before draw.commit_by",
        ) from None
    except ValidationError as exc:
        raise DrawError(
            f"{p} is not a draw commitment: {exc.errors()[0]['msg']}", hint="write it again"
        ) from None
    c = Commitment(
        campaign=raw.campaign,
        rules_sha256=raw.rules_sha256,
        entries=tuple(raw.entries),
        entries_sha256=raw.entries_sha256,
        winners=raw.winners,
        beacon_height=raw.beacon_height,
        commit_by_utc=_stated_utc(raw.commit_by_utc, "commit_by_utc"),
        committed_at_utc=_stated_utc(raw.committed_at_utc, "committed_at_utc"),
    )
    if (
        c.digest != raw.commitment
        or entries_digest(c.entries) != c.entries_sha256
        or list(c.entries) != sorted(set(c.entries))
    ):
        raise DrawError(
            f"{p} was edited: its fields no longer hash to its commitment {raw.commitment}",
            hint="use the commitment file as published",
        )
    return c


def _draw_settings(rules: Rules) -> tuple[int, int, datetime]:
    pool = rules.pool("lucky_draw")
    if pool is None:
        raise DrawError(f"campaign {rules.name!r} has no lucky_draw pool", hint="nothing to commit or draw")
    if rules.beacon_height is None or rules.commit_by_utc is None:
        raise DrawError(
            "the rules do not name the beacon block and the commitment deadline",
            hint="add draw.beacon_height (a bitcoin block height) and draw.commit_by (after campaign.end)",
        )
    return pool.winners, rules.beacon_height, rules.commit_by_utc


def commit_draw(rules: Rules, entries: Iterable[str], now_utc: datetime) -> Commitment:
    """Fix the sorted entries and the rules at ``now_utc``, inside ``[campaign end, commit_by)``."""
    winners, height, commit_by = _draw_settings(rules)
    if now_utc < rules.end_utc:
        raise DrawError(
            f"the campaign window is open until {rules.end_utc.isoformat()}: entries can still change",
            hint="commit after the window ends",
        )
    if now_utc >= commit_by:
        raise DrawError(
            f"the commitment deadline {commit_by.isoformat()} has passed ({now_utc.isoformat()})",
            hint="a late commitment could follow the beacon; the draw cannot be held on these rules",
        )
    ordered = tuple(sorted(set(entries)))
    return Commitment(
        campaign=rules.name,
        rules_sha256=rules_digest(rules),
        entries=ordered,
        entries_sha256=entries_digest(ordered),
        winners=winners,
        beacon_height=height,
        commit_by_utc=commit_by,
        committed_at_utc=now_utc.astimezone(UTC),
    )


@dataclass(frozen=True)
class Draw:
    """A held draw: the winners, and what anyone needs to check them."""

    winners: tuple[str, ...]
    beacon: str  # the block hash, displayed form
    beacon_height: int
    block_time_utc: datetime
    commitment: str  # the commitment's digest
    entries: int
    entries_sha256: str


def check_commitment(commitment: Commitment, rules: Rules, entries: Iterable[str]) -> None:
    """Refuse a commitment that is late, early, or for other rules or other entries."""
    winners, height, commit_by = _draw_settings(rules)
    if commitment.campaign != rules.name or commitment.rules_sha256 != rules_digest(rules):
        raise DrawError(
            "the commitment was made for other rules than these",
            hint="draw with the rules file that was committed",
        )
    if (commitment.winners, commitment.beacon_height, commitment.commit_by_utc) != (
        winners,
        height,
        commit_by,
    ):
        raise DrawError("the commitment names another draw than the rules", hint="commit again")
    if not rules.end_utc <= commitment.committed_at_utc < commit_by:
        raise DrawError(
            f"the commitment was made at {commitment.committed_at_utc.isoformat()}, outside "
            f"[{rules.end_utc.isoformat()}, {commit_by.isoformat()})",
            hint="only a commitment made after the window and before draw.commit_by counts",
        )
    if commitment.entries_sha256 != entries_digest(entries):
        raise DrawError(
            "the eligible entries differ from the committed ones",
            hint="the data changed after the commitment; draw from the committed data",
        )


def hold_draw(
    commitment: Commitment, rules: Rules, entries: Iterable[str], header_hex: str, beacon: str | None = None
) -> Draw:
    """Check the commitment and the beacon block, then pick the winners from the committed entries.

    ``beacon`` (optional) must equal the header's hash; without it the header's hash is the beacon.
    """
    check_commitment(commitment, rules, entries)
    header = parse_header(header_hex)
    header = verify_header(header_hex, beacon or header.hash, min_difficulty=rules.min_difficulty)
    if header.time_utc <= commitment.commit_by_utc:
        raise DrawError(
            f"beacon block {header.hash} was mined at {header.time_utc.isoformat()}, not after the "
            f"commitment deadline {commitment.commit_by_utc.isoformat()}",
            hint=f"use block {commitment.beacon_height}, which the rules name and which comes later",
        )
    winners = draw_winners(commitment.entries, commitment.winners, header.hash, rules.name)
    return Draw(
        winners=tuple(winners),
        beacon=header.hash,
        beacon_height=commitment.beacon_height,
        block_time_utc=header.time_utc,
        commitment=commitment.digest,
        entries=len(commitment.entries),
        entries_sha256=commitment.entries_sha256,
    )
