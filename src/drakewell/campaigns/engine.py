"""Run a campaign: eligibility → pools → payout table, audit trail and a Merkle root for claims.

Eligibility of a post (each failure is recorded with its reason):

1. made inside ``[start, end)`` of the window (UTC, converted from the stated zone);
2. by a registered user whose registration (through the form) is before the deadline;
3. at least ``min_characters`` characters of text (after trimming);
4. through an allowed posting widget;
5. not a near-duplicate of the same user's earlier counted post: texts are normalised
   (lower case, non-alphanumerics to spaces, whitespace collapsed) and compared by Jaccard
   similarity of word 3-shingles; ``≥ near_duplicate_jaccard`` counts once (the earliest).

Pools: ``pro_rata`` shares cash by eligible posts; ``newcomer_bonus`` pays each newcomer a fixed
amount for a first eligible post, in order of that post's time (then user id) until the budget
runs out; ``newcomer_pool`` shares cash pro rata by newcomers' later eligible posts;
``lucky_draw`` pays the winners of a draw held on committed entries and a bitcoin block
(:mod:`~drakewell.campaigns.draw`; without one the draw is pending and pays nothing yet);
``leaderboard`` ranks users by score = eligible posts + weight × interactions on them, ties
broken by the earlier last counted post, then user id. Cash is split exactly
(:mod:`~drakewell.campaigns.payouts`) in cents; on-chain amounts are cents × 10⁴ stablecoin
base units (6 decimals).
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from drakewell.campaigns.data import CampaignData, Post
from drakewell.campaigns.draw import Draw, entries_digest
from drakewell.campaigns.payouts import largest_remainder
from drakewell.campaigns.rules import Pool, Rules
from drakewell.core.errors import CampaignError
from drakewell.core.jsontypes import JsonObject
from drakewell.core.merkle import MerkleTree, leaf_hash

CLAIM_LEAF_TYPES = ("uint256", "address", "uint256")
BASE_UNITS_PER_CENT = 10_000


class Claim(TypedDict):
    """One row of ``claims.json``: what ``MerkleDistributor.claim`` takes, and whose it is."""

    index: int
    user_id: str
    account: str  # the user's wallet
    amount: int  # stablecoin base units
    proof: list[str]  # 0x-hex sibling hashes


class Summary(TypedDict):
    """``summary.json``."""

    campaign: str
    window_utc: list[str]
    posts: int
    counted_posts: int
    participants: int
    pools_cents: dict[str, int]
    pools_budget_cents: dict[str, int]
    items: dict[str, list[str]]
    cash_total_cents: int
    draw_winners: list[str]
    draw: JsonObject | None  # no lucky_draw pool: None
    merkle_root: str | None
    assumptions: list[str]


@dataclass
class Outcome:
    rules: Rules
    counted: dict[str, list[Post]]  # user -> counted posts in time order
    audit: list[JsonObject] = field(default_factory=list)
    cash: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(dict)
    )  # user -> pool -> cents
    items: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    pools_paid: dict[str, int] = field(default_factory=dict)
    draw: list[str] = field(default_factory=list)
    held: Draw | None = None  # the lucky draw, once held (None: pending or no draw)

    def total_cents(self, user: str) -> int:
        return sum(self.cash.get(user, {}).values())


def _shingles(text: str) -> set[str]:
    words = re.sub(r"[^0-9a-z]+", " ", text.lower()).split()
    if len(words) < 3:
        return {" ".join(words)}
    return {" ".join(words[i : i + 3]) for i in range(len(words) - 2)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def select_posts(rules: Rules, data: CampaignData) -> tuple[dict[str, list[Post]], list[JsonObject]]:
    """The counted posts per user and an audit entry for every post."""
    audit: list[JsonObject] = []
    counted: dict[str, list[Post]] = defaultdict(list)
    shingles: dict[str, list[set[str]]] = defaultdict(list)
    for post in sorted(data.posts, key=lambda p: (p.created_at_utc, p.post_id)):
        reg = data.registrations.get(post.user_id)
        reason = None
        if not rules.start_utc <= post.created_at_utc < rules.end_utc:
            reason = "outside the campaign window"
        elif rules.registration_required and reg is None:
            reason = "user did not register through the form"
        elif (
            rules.registration_required
            and reg is not None
            and reg.registered_at_utc >= rules.registration_deadline_utc
        ):
            reason = "registered after the deadline"
        elif len(post.text.strip()) < rules.min_characters:
            reason = f"shorter than {rules.min_characters} characters"
        elif rules.allowed_widgets and post.widget not in rules.allowed_widgets:
            reason = f"posted through {post.widget or 'no widget'!r}, not an allowed widget"
        else:
            sh = _shingles(post.text)
            if any(jaccard(sh, prev) >= rules.near_duplicate_jaccard for prev in shingles[post.user_id]):
                reason = "near-duplicate of the user's earlier post"
            else:
                shingles[post.user_id].append(sh)
                counted[post.user_id].append(post)
        audit.append(
            {
                "kind": "post",
                "post_id": post.post_id,
                "user_id": post.user_id,
                "counted": reason is None,
                "reason": reason or "eligible",
            }
        )
    return dict(counted), audit


def _pay(out: Outcome, pool: Pool, shares: dict[str, int], why: str) -> None:
    for user, cents in sorted(shares.items()):
        if cents:
            out.cash[user][pool.name] = out.cash[user].get(pool.name, 0) + cents
            out.audit.append(
                {"kind": "payout", "pool": pool.name, "user_id": user, "cents": cents, "reason": why}
            )
    out.pools_paid[pool.name] = out.pools_paid.get(pool.name, 0) + sum(shares.values())


def _pro_rata(out: Outcome, pool: Pool, data: CampaignData, newcomers: set[str], draw: Draw | None) -> None:
    shares = largest_remainder(pool.amount_cents, {u: len(p) for u, p in out.counted.items()})
    _pay(out, pool, shares, "share of the pool pro rata to eligible posts")


def _newcomer_pool(
    out: Outcome, pool: Pool, data: CampaignData, newcomers: set[str], draw: Draw | None
) -> None:
    later = {u: len(out.counted[u]) - 1 for u in newcomers}
    _pay(
        out,
        pool,
        largest_remainder(pool.amount_cents, later),
        "newcomer pool pro rata to posts after the first",
    )


def _newcomer_bonus(
    out: Outcome, pool: Pool, data: CampaignData, newcomers: set[str], draw: Draw | None
) -> None:
    """A fixed bonus per newcomer in first-post order, while the budget lasts."""
    counted = out.counted
    order = sorted(newcomers, key=lambda u: (counted[u][0].created_at_utc, u))
    budget = pool.budget_cents
    shares = {}
    for user in order:
        if budget < pool.amount_cents:
            out.audit.append(
                {
                    "kind": "no_payout",
                    "pool": pool.name,
                    "user_id": user,
                    "reason": "newcomer bonus budget exhausted",
                }
            )
            continue
        shares[user] = pool.amount_cents
        budget -= pool.amount_cents
    _pay(out, pool, shares, "newcomer first-post bonus")


def _lucky_draw(out: Outcome, pool: Pool, data: CampaignData, newcomers: set[str], draw: Draw | None) -> None:
    """The winners of the draw held on these entries (pending until one is held)."""
    if draw is None:
        out.audit.append(
            {"kind": "draw_pending", "pool": pool.name, "reason": "no draw held on a committed beacon yet"}
        )
        return
    if draw.entries_sha256 != entries_digest(out.counted):
        raise CampaignError(
            "the lucky draw was held on other entries than this data's eligible users",
            hint="run with the data the draw was committed on",
        )
    out.held = draw
    out.draw = list(draw.winners)
    for rank, user in enumerate(out.draw, 1):
        for prize in pool.prizes:
            if prize.item:
                out.items[user].append(prize.item)
        _pay(out, pool, {user: sum(p.cash_cents for p in pool.prizes)}, f"lucky draw winner #{rank}")


def _leaderboard(
    out: Outcome, pool: Pool, data: CampaignData, newcomers: set[str], draw: Draw | None
) -> None:
    """Prizes by rank of posts plus weighted interactions (ties: earlier last post, then user id)."""
    counted = out.counted
    scores = {
        u: len(ps) + pool.interaction_weight * sum(data.interactions.get(p.post_id, 0) for p in ps)
        for u, ps in counted.items()
    }
    ranked = sorted(scores, key=lambda u: (-scores[u], counted[u][-1].created_at_utc, u))
    for rank, user in enumerate(ranked, 1):
        tier = next((t for t in pool.tiers if t.first_rank <= rank <= t.last_rank), None)
        if tier is None:
            break
        if tier.prize.item:
            out.items[user].append(tier.prize.item)
        why = f"leaderboard rank {rank} (score {scores[user]})"
        _pay(out, pool, {user: tier.prize.cash_cents}, why)
        if not tier.prize.cash_cents:
            out.audit.append(
                {"kind": "item", "pool": pool.name, "user_id": user, "item": tier.prize.item, "reason": why}
            )


_POOLS = {
    "pro_rata": _pro_rata,
    "newcomer_pool": _newcomer_pool,
    "newcomer_bonus": _newcomer_bonus,
    "lucky_draw": _lucky_draw,
    "leaderboard": _leaderboard,
}


def run_campaign(rules: Rules, data: CampaignData, *, draw: Draw | None = None) -> Outcome:
    """Apply ``rules`` to ``data``; ``draw`` is the lucky draw held on these entries
    (:func:`drakewell.campaigns.draw.hold_draw`), or ``None`` while it is pending."""
    counted, audit = select_posts(rules, data)
    out = Outcome(rules, counted, audit)
    newcomers = {u for u in counted if data.registrations[u].newcomer}
    for pool in rules.pools:
        _POOLS[pool.kind](out, pool, data, newcomers, draw)
    return out


def claims_tree(out: Outcome, data: CampaignData) -> tuple[MerkleTree | None, list[Claim]]:
    """(index, wallet, amount in base units) per paid user, sorted by user id, and their tree."""
    paid = sorted(u for u in out.cash if out.total_cents(u) > 0)
    if not paid:
        return None, []
    leaves = [
        (i, user, data.registrations[user].wallet, out.total_cents(user) * BASE_UNITS_PER_CENT)
        for i, user in enumerate(paid)
    ]
    values = [[i, account, amount] for i, _, account, amount in leaves]
    tree = MerkleTree.of(CLAIM_LEAF_TYPES, values)
    claims = [
        Claim(
            index=i,
            user_id=user,
            account=account,
            amount=amount,
            proof=["0x" + p.hex() for p in tree.proof(leaf_hash(CLAIM_LEAF_TYPES, v))],
        )
        for (i, user, account, amount), v in zip(leaves, values, strict=True)
    ]
    return tree, claims


def _draw_summary(out: Outcome) -> JsonObject | None:
    if out.rules.pool("lucky_draw") is None:
        return None
    held = out.held
    if held is None:
        return {"status": "pending", "beacon_height": out.rules.beacon_height}
    return {
        "status": "held",
        "beacon_height": held.beacon_height,
        "beacon": held.beacon,
        "block_time_utc": held.block_time_utc.isoformat(),
        "commitment": held.commitment,
        "entries": held.entries,
    }


def write_outputs(out: Outcome, data: CampaignData, folder: str | Path) -> Summary:
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    pool_names = [p.name for p in out.rules.pools]
    users = sorted(set(out.cash) | set(out.items))
    with (root / "payouts.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "wallet", *[f"{n} (USD)" for n in pool_names], "total (USD)", "items"])
        for u in users:
            cents = out.cash.get(u, {})
            w.writerow(
                [
                    u,
                    data.registrations[u].wallet,
                    *[f"{cents.get(n, 0) / 100:.2f}" for n in pool_names],
                    f"{out.total_cents(u) / 100:.2f}",
                    "; ".join(out.items.get(u, [])),
                ]
            )
    with (root / "audit.jsonl").open("w", encoding="utf-8") as f:
        for entry in out.audit:
            f.write(json.dumps(entry) + "\n")
    tree, claims = claims_tree(out, data)
    summary: Summary = {
        "campaign": out.rules.name,
        "window_utc": [out.rules.start_utc.isoformat(), out.rules.end_utc.isoformat()],
        "posts": len(data.posts),
        "counted_posts": sum(len(v) for v in out.counted.values()),
        "participants": len(out.counted),
        "pools_cents": {p.name: out.pools_paid.get(p.name, 0) for p in out.rules.pools},
        "pools_budget_cents": {
            p.name: p.budget_cents if p.kind == "newcomer_bonus" else p.amount_cents for p in out.rules.pools
        },
        "items": {u: items for u, items in sorted(out.items.items())},
        "cash_total_cents": sum(out.total_cents(u) for u in out.cash),
        "draw_winners": out.draw,
        "draw": _draw_summary(out),
        "merkle_root": "0x" + tree.root.hex() if tree else None,
        "assumptions": list(out.rules.assumptions),
    }
    (root / "claims.json").write_text(
        json.dumps({"root": summary["merkle_root"], "claims": claims}, indent=1)
    )
    (root / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
