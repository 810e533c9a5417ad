"""Campaign inputs: registrations, posts and interactions as CSV or JSON, validated row by row.

A data folder holds ``registrations.csv|json`` (``user_id, registered_at, wallet, newcomer``),
``posts.csv|json`` (``post_id, user_id, created_at, widget, text``) and optionally
``interactions.csv|json`` (``post_id, likes, comments, shares``). Times are ISO 8601 with an
offset (``2026-01-10T12:00:00+08:00``) and become UTC. Every error names the file and the row
(CSV: the line number, header = line 1; JSON: the item index).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from drakewell.core.errors import CampaignError
from drakewell.core.times import aware_utc


class DataError(CampaignError):
    """An input file or row is invalid."""


_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True)
class Registration:
    user_id: str
    registered_at_utc: datetime
    wallet: str
    newcomer: bool


@dataclass(frozen=True)
class Post:
    post_id: str
    user_id: str
    created_at_utc: datetime
    widget: str
    text: str


@dataclass(frozen=True)
class CampaignData:
    registrations: dict[str, Registration]
    posts: tuple[Post, ...]
    interactions: dict[str, int]  # post id -> likes + comments + shares


Row = tuple[str, Mapping[str, object]]
"""Where a row stands (``posts.csv line 3``, ``posts.json item 0``) and its fields."""


def _rows(folder: Path, stem: str, *, required: bool = True) -> list[Row]:
    """The rows of ``stem.csv`` (preferred) or ``stem.json``; none when neither exists and the file
    is optional."""
    csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
    if csv_path.exists():
        with csv_path.open(newline="", encoding="utf-8") as f:
            return [(f"{csv_path.name} line {i + 2}", row) for i, row in enumerate(csv.DictReader(f))]
    if json_path.exists():
        try:
            items = json.loads(json_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{json_path.name} is not valid JSON: {exc}", hint="fix the file") from None
        if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
            raise DataError(f"{json_path.name} must be a list of objects", hint="[{...}, {...}]")
        return [(f"{json_path.name} item {i}", x) for i, x in enumerate(items)]
    if required:
        raise DataError(f"no {stem}.csv or {stem}.json in {folder}", hint=f"provide the {stem} export")
    return []


def _field(row: Mapping[str, object], name: str, where: str) -> str:
    value = row.get(name)
    if value is None or str(value).strip() == "":
        raise DataError(f"{where}: missing {name}", hint=f"every row needs {name}")
    return str(value).strip()


def _new_id(row: Mapping[str, object], name: str, seen: Container[str], where: str, hint: str) -> str:
    """The row's ``name`` field, refused when an earlier row had the same value."""
    value = _field(row, name, where)
    if value in seen:
        raise DataError(f"{where}: duplicate {name} {value!r}", hint=hint)
    return value


def parse_time(text: str, where: str) -> datetime:
    return aware_utc(
        text,
        f"{where}: {text!r}",
        DataError,
        hint="e.g. 2026-01-10T12:00:00+08:00",
        zone_hint="append the zone, e.g. +08:00 or Z",
    )


def _bool(text: str, where: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "1", "yes"):
        return True
    if t in ("false", "0", "no"):
        return False
    raise DataError(f"{where}: newcomer = {text!r} is not true/false", hint="write true or false")


def load_data(folder: str | Path) -> CampaignData:
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist", hint="pass --data DIR with the exports")
    registrations = _registrations(_rows(root, "registrations"))
    posts = _posts(_rows(root, "posts"))
    interactions = _interactions(_rows(root, "interactions", required=False), {p.post_id for p in posts})
    return CampaignData(registrations, posts, interactions)


def _registrations(rows: list[Row]) -> dict[str, Registration]:
    regs: dict[str, Registration] = {}
    for where, row in rows:
        uid = _new_id(row, "user_id", regs, where, "one registration per user")
        wallet = _field(row, "wallet", where)
        if not _ADDRESS.match(wallet):
            raise DataError(
                f"{where}: wallet {wallet!r} is not an EVM address", hint="0x followed by 40 hex digits"
            )
        regs[uid] = Registration(
            uid,
            parse_time(_field(row, "registered_at", where), where),
            wallet,
            _bool(str(row.get("newcomer", "false")), where),
        )
    return regs


def _posts(rows: list[Row]) -> tuple[Post, ...]:
    posts: list[Post] = []
    seen: set[str] = set()
    for where, row in rows:
        pid = _new_id(row, "post_id", seen, where, "post ids must be unique")
        seen.add(pid)
        uid = _field(row, "user_id", where)
        posts.append(
            Post(
                pid,
                uid,
                parse_time(_field(row, "created_at", where), where),
                str(row.get("widget", "") or "").strip(),
                str(row.get("text", "") or ""),
            )
        )
    return tuple(posts)


def _interactions(rows: list[Row], post_ids: Container[str]) -> dict[str, int]:
    """Likes + comments + shares per post."""
    interactions: dict[str, int] = {}
    for where, row in rows:
        pid = _new_id(row, "post_id", interactions, where, "one interactions row per post")
        if pid not in post_ids:
            raise DataError(
                f"{where}: interactions for unknown post {pid!r}", hint="post ids must match posts"
            )
        total = 0
        for k in ("likes", "comments", "shares"):
            raw = str(row.get(k, "0") or "0").strip()
            if not raw.isdigit():
                raise DataError(f"{where}: {k} = {raw!r} is not a whole number", hint="counts are >= 0")
            total += int(raw)
        interactions[pid] = total
    return interactions
