"""Campaign rules: a TOML file validated at the edge into frozen records.

Times in the file are local to the campaign's stated UTC offset (``timezone = "+08:00"``) and
are converted to UTC here; ``"24:00"`` means the end of that day (the next day's 00:00). Money
is in US dollars with at most two decimals (cents) and becomes integer cents.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar

from drakewell.core.errors import CampaignError


class RulesError(CampaignError):
    """The rules file is invalid (the message names the key)."""


POOL_KINDS = ("pro_rata", "lucky_draw", "leaderboard", "newcomer_bonus", "newcomer_pool")
_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$")
_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{2}):?(\d{2})$")
_N = TypeVar("_N", int, float)


@dataclass(frozen=True)
class Prize:
    item: str | None = None
    cash_cents: int = 0


@dataclass(frozen=True)
class Tier:
    first_rank: int
    last_rank: int
    prize: Prize


@dataclass(frozen=True)
class Pool:
    kind: str
    name: str
    amount_cents: int = 0  # pro_rata, newcomer_pool: the pool; newcomer_bonus: per newcomer
    budget_cents: int = 0  # newcomer_bonus
    winners: int = 0  # lucky_draw
    prizes: tuple[Prize, ...] = ()  # lucky_draw: what each winner gets
    tiers: tuple[Tier, ...] = ()  # leaderboard
    interaction_weight: Decimal = Decimal(0)  # leaderboard


@dataclass(frozen=True)
class Rules:
    name: str
    tz: timezone
    start_utc: datetime
    end_utc: datetime  # exclusive
    registration_required: bool
    registration_deadline_utc: datetime
    min_characters: int
    allowed_widgets: tuple[str, ...]
    near_duplicate_jaccard: float
    beacon_source: str  # what the beacon is, e.g. "hash of the first bitcoin block after ..."
    beacon: str  # its value once known (hex), else ""
    pools: tuple[Pool, ...]
    assumptions: tuple[str, ...]
    source: str
    beacon_height: int | None = None  # the bitcoin block whose hash is the draw's beacon
    commit_by_utc: datetime | None = None  # the draw's entries are committed before this
    min_difficulty: int = 1  # the beacon block's least accepted difficulty (1 = any mainnet block)

    def pool(self, kind: str) -> Pool | None:
        return next((p for p in self.pools if p.kind == kind), None)


def parse_offset(text: str, key: str = "campaign.timezone") -> timezone:
    m = _OFFSET.match(text.strip())
    if not m:
        raise RulesError(f"{key} = {text!r} is not a UTC offset", hint='write e.g. "+08:00" or "UTC-05:00"')
    sign = 1 if m.group(1) == "+" else -1
    return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))


def parse_local_time(text: object, tz: timezone, key: str) -> datetime:
    """``YYYY-MM-DD HH:MM[:SS]`` (text, or a TOML local date-time) in ``tz`` → aware UTC; ``24:00``
    is the end of that day."""
    m = _TIME.match(str(text).strip())
    if not m:
        raise RulesError(
            f"{key} = {text!r} is not a local time", hint='write "YYYY-MM-DD HH:MM", e.g. "2026-01-26 24:00"'
        )
    y, mo, d, h, mi = (int(m.group(i)) for i in range(1, 6))
    s = int(m.group(6) or 0)
    try:
        if h == 24 and mi == 0 and s == 0:
            local = datetime(y, mo, d, tzinfo=tz) + timedelta(days=1)
        else:
            local = datetime(y, mo, d, h, mi, s, tzinfo=tz)
    except ValueError as exc:
        raise RulesError(f"{key} = {text!r}: {exc}", hint="use a real calendar date and time") from None
    return local.astimezone(UTC)


def usd_to_cents(value: object, key: str) -> int:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise RulesError(
            f"{key} = {value!r} is not an amount", hint="write dollars, e.g. 25000 or 49.99"
        ) from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise RulesError(
            f"{key} = {value!r} must be a non-negative amount in whole cents", hint="e.g. 50 or 12.34"
        )
    return int(amount * 100)


def _table(value: object, message: str, hint: str) -> Mapping[str, object]:
    """``value`` when it is a TOML table, else :class:`RulesError` ``(message, hint)``."""
    if not isinstance(value, dict):
        raise RulesError(message, hint=hint)
    return value


def _array(value: object, key: str) -> list[object]:
    """``value`` when it is a TOML array (absent: empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RulesError(f"{key} must be an array", hint=f"write {key} = [...]")
    return value


def _number(value: object, key: str, kind: type[_N]) -> _N:
    """``kind(value)`` for a number or numeric text (``int`` truncates, as Python's does)."""
    if isinstance(value, int | float | str):
        try:
            return kind(value)
        except ValueError:
            pass
    raise RulesError(f"{key} = {value!r} is not a number", hint=f"write {key.rsplit('.', 1)[-1]} = 1")


def _whole(value: object, least: int) -> int | None:
    """``value`` when it is an integer (not a boolean) of at least ``least``, else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= least else None


def _check_keys(table: Mapping[str, object], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise RulesError(f"unknown key {where}.{unknown[0]}", hint=f"allowed: {', '.join(sorted(allowed))}")


def _prize(obj: object, key: str) -> Prize:
    table = _table(obj, f'{key} must be a table like {{ item = "cap" }}', "or { cash_usd = 10 }")
    _check_keys(table, {"item", "cash_usd"}, key)
    item = table.get("item")
    if item is not None and not isinstance(item, str):
        raise RulesError(f"{key}.item = {item!r} is not text", hint='write e.g. item = "cap"')
    return Prize(item=item, cash_cents=usd_to_cents(table.get("cash_usd", 0), f"{key}.cash_usd"))


def _tiers(items: object, key: str) -> tuple[Tier, ...]:
    out = []
    last = 0
    for i, t in enumerate(_array(items, key)):
        k = f"{key}[{i}]"
        if not isinstance(t, dict) or "ranks" not in t:
            raise RulesError(
                f'{k} needs ranks = "1-3" and a prize', hint='e.g. { ranks = "1-3", item = "merch" }'
            )
        _check_keys(t, {"ranks", "item", "cash_usd"}, k)
        m = re.match(r"^(\d+)(?:-(\d+))?$", str(t["ranks"]))
        if not m:
            raise RulesError(f"{k}.ranks = {t['ranks']!r} is not a rank range", hint='write "4-10" or "1"')
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo != last + 1 or hi < lo:
            raise RulesError(
                f"{k}.ranks = {t['ranks']!r} must continue from rank {last + 1}", hint="tiers in order"
            )
        last = hi
        out.append(Tier(lo, hi, _prize({kk: v for kk, v in t.items() if kk != "ranks"}, k)))
    return tuple(out)


def _pool(obj: object, i: int) -> Pool:
    key = f"pools[{i}]"
    table = _table(obj, f"{key} must be a table", "write [[pools]] sections")
    kind = table.get("kind")
    if not isinstance(kind, str) or kind not in POOL_KINDS:
        raise RulesError(f"{key}.kind = {kind!r} is unknown", hint=f"one of {', '.join(POOL_KINDS)}")
    allowed = {
        "kind",
        "name",
        "amount_usd",
        "budget_usd",
        "winners",
        "prizes",
        "tiers",
        "interaction_weight",
        "order",
        "tie_break",
    }
    _check_keys(table, allowed, key)
    winners = _number(table.get("winners", 0), f"{key}.winners", int)
    if kind == "lucky_draw" and winners <= 0:
        raise RulesError(f"{key}.winners must be a positive count", hint="e.g. winners = 10")
    weight = Decimal(str(table.get("interaction_weight", 0)))
    if weight < 0:
        raise RulesError(f"{key}.interaction_weight is negative", hint="use a weight >= 0")
    prizes = _array(table.get("prizes"), f"{key}.prizes")
    return Pool(
        kind=kind,
        name=str(table.get("name", kind)),
        amount_cents=usd_to_cents(table.get("amount_usd", 0), f"{key}.amount_usd"),
        budget_cents=usd_to_cents(table.get("budget_usd", 0), f"{key}.budget_usd"),
        winners=winners,
        prizes=tuple(_prize(p, f"{key}.prizes[{j}]") for j, p in enumerate(prizes)),
        tiers=_tiers(table.get("tiers"), f"{key}.tiers"),
        interaction_weight=weight,
    )


def parse_rules(data: Mapping[str, object], source: str = "rules") -> Rules:
    """Validate a parsed rules file (``tomllib``'s tables) into :class:`Rules`."""
    _check_keys(data, {"campaign", "eligibility", "draw", "pools", "assumptions"}, "")
    c = _table(data.get("campaign"), "missing [campaign] table", "add name, timezone, start and end")
    _check_keys(c, {"name", "timezone", "start", "end", "total_prize_pool_usd"}, "campaign")
    for k in ("name", "timezone", "start", "end"):
        if k not in c:
            raise RulesError(f"missing campaign.{k}", hint="see examples/campaigns/creator-new-year.toml")
    tz = parse_offset(str(c["timezone"]))
    start = parse_local_time(c["start"], tz, "campaign.start")
    end = parse_local_time(c["end"], tz, "campaign.end")
    if end <= start:
        raise RulesError("campaign.end is not after campaign.start", hint="check the dates")
    e = _table(data.get("eligibility", {}), "[eligibility] must be a table", "write an [eligibility] section")
    _check_keys(
        e,
        {
            "registration_required",
            "registration_deadline",
            "min_characters",
            "allowed_widgets",
            "near_duplicate_jaccard",
        },
        "eligibility",
    )
    jac = _number(e.get("near_duplicate_jaccard", 0.9), "eligibility.near_duplicate_jaccard", float)
    if not 0 < jac <= 1:
        raise RulesError("eligibility.near_duplicate_jaccard must be in (0, 1]", hint="0.9 is usual")
    min_chars = _number(e.get("min_characters", 0), "eligibility.min_characters", int)
    if min_chars < 0:
        raise RulesError("eligibility.min_characters is negative", hint="use 0 or more")
    draw = _table(data.get("draw", {}), "[draw] must be a table", "write a [draw] section")
    _check_keys(draw, {"beacon", "beacon_source", "beacon_height", "commit_by", "min_difficulty"}, "draw")
    beacon_height, commit_by, min_difficulty = _draw_keys(draw, tz, end)
    pools = tuple(_pool(p, i) for i, p in enumerate(_array(data.get("pools"), "pools")))
    if not pools:
        raise RulesError("no [[pools]]", hint="add at least one pool")
    widgets = _array(e.get("allowed_widgets"), "eligibility.allowed_widgets")
    return Rules(
        name=str(c["name"]),
        tz=tz,
        start_utc=start,
        end_utc=end,
        registration_required=bool(e.get("registration_required", True)),
        registration_deadline_utc=parse_local_time(
            e.get("registration_deadline", c["end"]), tz, "eligibility.registration_deadline"
        ),
        min_characters=min_chars,
        allowed_widgets=tuple(str(w) for w in widgets),
        near_duplicate_jaccard=jac,
        beacon_source=str(draw.get("beacon_source", "")),
        beacon=str(draw.get("beacon", "")),
        pools=pools,
        assumptions=tuple(str(a) for a in _array(data.get("assumptions"), "assumptions")),
        source=source,
        beacon_height=beacon_height,
        commit_by_utc=commit_by,
        min_difficulty=min_difficulty,
    )


def _draw_keys(
    draw: Mapping[str, object], tz: timezone, end: datetime
) -> tuple[int | None, datetime | None, int]:
    """``draw.beacon_height`` (a block height), ``draw.commit_by`` (local time, after the campaign's
    end) and ``draw.min_difficulty`` (a whole number, at least 1)."""
    given_height = draw.get("beacon_height")
    height = _whole(given_height, 0)
    if given_height is not None and height is None:
        raise RulesError(
            f"draw.beacon_height = {given_height!r} is not a block height", hint="e.g. beacon_height = 934000"
        )
    commit_by = None
    if "commit_by" in draw:
        commit_by = parse_local_time(draw["commit_by"], tz, "draw.commit_by")
        if commit_by <= end:
            raise RulesError(
                "draw.commit_by is not after campaign.end",
                hint="entries are final only when the window ends; commit after it",
            )
    given_difficulty = draw.get("min_difficulty", 1)
    difficulty = _whole(given_difficulty, 1)
    if difficulty is None:
        raise RulesError(
            f"draw.min_difficulty = {given_difficulty!r} is not a whole number >= 1",
            hint="1 accepts any mainnet block",
        )
    return height, commit_by, difficulty


def load_rules(path: str | Path) -> Rules:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"no rules file at {p}", hint="pass the path of a campaign TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{p} is not valid TOML: {exc}", hint="fix the syntax at the line shown") from None
    return parse_rules(data, str(p))
