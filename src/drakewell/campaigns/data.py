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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drakewell.core.errors import CampaignError


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


def _rows(folder: Path, stem: str, required: bool) -> tuple[list[tuple[str, dict[str, Any]]], str] | None:
    csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
    if csv_path.exists():
        with csv_path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            return [
                (f"{csv_path.name} line {i + 2}", dict(row)) for i, row in enumerate(reader)
            ], csv_path.name
    if json_path.exists():
        try:
            items = json.loads(json_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{json_path.name} is not valid JSON: {exc}", hint="fix the file") from None
        if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
            raise DataError(f"{json_path.name} must be a list of objects", hint="[{...}, {...}]")
        return [(f"{json_path.name} item {i}", dict(x)) for i, x in enumerate(items)], json_path.name
    if required:
        raise DataError(f"no {stem}.csv or {stem}.json in {folder}", hint=f"provide the {stem} export")
    return None


def _field(row: dict[str, Any], name: str, where: str) -> str:
    value = row.get(name)
    if value is None or str(value).strip() == "":
        raise DataError(f"{where}: missing {name}", hint=f"every row needs {name}")
    return str(value).strip()


def parse_time(text: str, where: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(
            f"{where}: {text!r} is not an ISO 8601 time", hint="e.g. 2026-01-10T12:00:00+08:00"
        ) from None
    if ts.tzinfo is None:
        raise DataError(f"{where}: {text!r} has no UTC offset", hint="append the zone, e.g. +08:00 or Z")
    return ts.astimezone(UTC)


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
    regs: dict[str, Registration] = {}
    reg_rows = _rows(root, "registrations", True)
    assert reg_rows is not None
    for where, row in reg_rows[0]:
        uid = _field(row, "user_id", where)
        if uid in regs:
            raise DataError(f"{where}: duplicate user_id {uid!r}", hint="one registration per user")
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
    posts: list[Post] = []
    seen: set[str] = set()
    post_rows = _rows(root, "posts", True)
    assert post_rows is not None
    for where, row in post_rows[0]:
        pid = _field(row, "post_id", where)
        if pid in seen:
            raise DataError(f"{where}: duplicate post_id {pid!r}", hint="post ids must be unique")
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
    interactions: dict[str, int] = {}
    inter_rows = _rows(root, "interactions", False)
    for where, row in inter_rows[0] if inter_rows else []:
        pid = _field(row, "post_id", where)
        if pid not in seen:
            raise DataError(
                f"{where}: interactions for unknown post {pid!r}", hint="post ids must match posts"
            )
        if pid in interactions:
            raise DataError(f"{where}: duplicate post_id {pid!r}", hint="one interactions row per post")
        total = 0
        for k in ("likes", "comments", "shares"):
            raw = str(row.get(k, "0") or "0").strip()
            if not raw.isdigit():
                raise DataError(f"{where}: {k} = {raw!r} is not a whole number", hint="counts are >= 0")
            total += int(raw)
        interactions[pid] = total
    return CampaignData(regs, tuple(posts), interactions)
