from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drakewell.campaigns.data import DataError, load_data
from drakewell.campaigns.draw import DrawError, draw_winners
from drakewell.campaigns.engine import CLAIM_LEAF_TYPES, claims_tree, run_campaign, write_outputs
from drakewell.campaigns.payouts import largest_remainder
from drakewell.campaigns.rules import RulesError, load_rules, parse_local_time, parse_offset, parse_rules

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "campaigns"
BEACON = "0x" + "ab" * 32

RULES = {
    "campaign": {"name": "t", "timezone": "+08:00", "start": "2026-01-08 16:00", "end": "2026-01-26 24:00"},
    "eligibility": {"min_characters": 10, "allowed_widgets": ["w"], "near_duplicate_jaccard": 0.9},
    "pools": [
        {"kind": "pro_rata", "name": "posting", "amount_usd": 100},
        {"kind": "newcomer_bonus", "name": "bonus", "amount_usd": 5, "budget_usd": 10},
        {"kind": "newcomer_pool", "name": "npool", "amount_usd": 10},
        {"kind": "lucky_draw", "name": "draw", "winners": 2, "prizes": [{"item": "cap"}]},
        {
            "kind": "leaderboard",
            "name": "top",
            "interaction_weight": 0.5,
            "tiers": [{"ranks": "1", "cash_usd": 7}, {"ranks": "2-3", "item": "bag"}],
        },
    ],
}


def _write(folder: Path, regs: list[str], posts: list[str], inter: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registrations.csv").write_text(
        "user_id,registered_at,wallet,newcomer\n" + "\n".join(regs) + "\n"
    )
    (folder / "posts.csv").write_text("post_id,user_id,created_at,widget,text\n" + "\n".join(posts) + "\n")
    if inter is not None:
        (folder / "interactions.csv").write_text("post_id,likes,comments,shares\n" + "\n".join(inter) + "\n")
    return folder


W = "0x" + "11" * 20
REGS = [
    f"a,2026-01-01T00:00:00Z,{W},false",
    f"b,2026-01-01T00:00:00Z,{W[:-1]}2,true",
    f"c,2026-01-01T00:00:00Z,{W[:-1]}3,true",
]


def test_window_is_converted_from_its_zone_to_the_second() -> None:
    tz = parse_offset("+08:00")
    assert parse_local_time("2026-01-26 24:00", tz, "k") == datetime(2026, 1, 26, 16, 0, tzinfo=UTC)
    assert parse_local_time("2026-01-08 16:00", tz, "k") == datetime(2026, 1, 8, 8, 0, tzinfo=UTC)
    with pytest.raises(RulesError, match=re.escape("campaign.start")):
        parse_local_time("2026-13-01 10:00", tz, "campaign.start")


def test_boundaries_to_the_second(tmp_path: Path) -> None:
    rules = parse_rules(RULES)
    posts = [
        "p1,a,2026-01-08T15:59:59+08:00,w,just before the window opens",
        "p2,a,2026-01-08T16:00:00+08:00,w,exactly when the window opens",
        "p3,a,2026-01-26T23:59:59+08:00,w,one second before the end",
        "p4,a,2026-01-27T00:00:00+08:00,w,the first second after the end",
    ]
    out = run_campaign(rules, load_data(_write(tmp_path, REGS, posts)))
    counted = {e["post_id"] for e in out.audit if e.get("counted")}
    assert counted == {"p2", "p3"}


def test_each_eligibility_rule_has_its_reason(tmp_path: Path) -> None:
    rules = parse_rules(
        {**RULES, "eligibility": {**RULES["eligibility"], "registration_deadline": "2026-01-10 00:00"}}
    )
    regs = [*REGS, f"late,2026-01-20T00:00:00Z,{W[:-1]}9,false"]
    posts = [
        "p1,a,2026-01-10T10:00:00+08:00,w,a long enough post about GPUs",
        "p2,ghost,2026-01-10T10:00:00+08:00,w,from someone who never registered",
        "p3,a,2026-01-10T11:00:00+08:00,w,short",
        "p4,a,2026-01-10T12:00:00+08:00,other,through the wrong widget entirely",
        "p5,a,2026-01-10T13:00:00+08:00,w,A long enough post about GPUs!",
        "p6,late,2026-01-21T10:00:00+08:00,w,registered after the deadline passed",
        "p7,a,2026-01-10T14:00:00+08:00,w,a completely different post on mining",
    ]
    out = run_campaign(rules, load_data(_write(tmp_path, regs, posts)))
    reasons = {e["post_id"]: e["reason"] for e in out.audit if e["kind"] == "post"}
    assert reasons["p1"] == "eligible" and reasons["p7"] == "eligible"
    assert reasons["p2"] == "user did not register through the form"
    assert reasons["p3"].startswith("shorter than 10")
    assert "not an allowed widget" in reasons["p4"]
    assert reasons["p5"] == "near-duplicate of the user's earlier post"
    assert reasons["p6"] == "registered after the deadline"


def test_pools_pay_exactly_and_bonus_budget_runs_out_in_order(tmp_path: Path) -> None:
    rules = parse_rules(RULES)
    posts = [
        "p1,a,2026-01-10T10:00:00+08:00,w,first post by a about things",
        "p2,b,2026-01-10T09:00:00+08:00,w,first post by b about other things",
        "p3,c,2026-01-10T11:00:00+08:00,w,first post by c on some topic",
        "p4,b,2026-01-11T10:00:00+08:00,w,second post by b with new content",
        "p5,c,2026-01-12T10:00:00+08:00,w,second post by c with fresh ideas",
        "p6,c,2026-01-13T10:00:00+08:00,w,third post by c on a new subject",
    ]
    out = run_campaign(rules, load_data(_write(tmp_path, REGS, posts, ["p1,10,0,0", "p2,0,0,0"])))
    posting = {u: out.cash[u].get("posting", 0) for u in "abc"}
    assert sum(posting.values()) == 100_00  # cents, exactly the pool
    assert posting == {"a": 16_67, "b": 33_33, "c": 50_00}  # 1:2:3 posts, largest remainder to a
    # bonus: $5 each, $10 budget, newcomers b (09:00) and c (11:00) both fit
    assert out.cash["b"]["bonus"] == 5_00 and out.cash["c"]["bonus"] == 5_00
    # newcomer pool: later posts b=1, c=2
    assert out.cash["b"]["npool"] == 3_33 and out.cash["c"]["npool"] == 6_67
    # leaderboard: a = 1 + 0.5*10 = 6, c = 3, b = 2
    assert out.cash["a"]["top"] == 7_00 and out.items["c"] == [*out.items["c"]] and "bag" in out.items["c"]


def test_bonus_budget_exhaustion_is_audited(tmp_path: Path) -> None:
    rules = parse_rules(
        {**RULES, "pools": [{"kind": "newcomer_bonus", "name": "bonus", "amount_usd": 5, "budget_usd": 5}]}
    )
    posts = [
        "p1,b,2026-01-10T10:00:00+08:00,w,b posts later than c here",
        "p2,c,2026-01-10T09:00:00+08:00,w,c posts first of everyone",
    ]
    out = run_campaign(rules, load_data(_write(tmp_path, REGS, posts)))
    assert out.cash["c"]["bonus"] == 5_00 and "b" not in out.cash
    assert any(e["kind"] == "no_payout" and e["user_id"] == "b" for e in out.audit)


@given(
    pool=st.integers(0, 10**9),
    weights=st.dictionaries(st.text(min_size=1, max_size=4), st.integers(0, 10**6), max_size=30),
)
def test_largest_remainder_conserves_the_pool_exactly(pool: int, weights: dict[str, int]) -> None:
    shares = largest_remainder(pool, weights)
    if any(w > 0 for w in weights.values()):
        assert sum(shares.values()) == pool
        total = sum(weights.values())
        for k, v in shares.items():
            exact = Fraction(pool * weights[k], total)
            assert exact - 1 < v < exact + 1  # never more than one cent from the exact share
    else:
        assert shares == {}


def test_draw_is_deterministic_and_depends_on_the_beacon() -> None:
    entries = [f"u{i}" for i in range(50)]
    a = draw_winners(entries, 10, BEACON, "c")
    assert a == draw_winners(list(reversed(entries)), 10, BEACON, "c")  # order of input does not matter
    assert len(set(a)) == 10
    assert a != draw_winners(entries, 10, "0x" + "ac" * 32, "c")
    assert draw_winners(entries[:3], 10, BEACON, "c") and len(draw_winners(entries[:3], 10, BEACON, "c")) == 3
    with pytest.raises(DrawError, match="not hex"):
        draw_winners(entries, 1, "block 931000", "c")
    with pytest.raises(DrawError, match="no beacon"):
        draw_winners(entries, 1, "", "c")


def test_bad_input_names_the_file_and_row(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=re.escape("registrations.csv line 3: duplicate user_id 'a'")):
        load_data(_write(tmp_path / "1", [REGS[0], REGS[0]], []))
    with pytest.raises(DataError, match=re.escape("posts.csv line 2: 'yesterday' is not an ISO 8601 time")):
        load_data(_write(tmp_path / "2", REGS, ["p1,a,yesterday,w,text"]))
    with pytest.raises(DataError, match="no UTC offset"):
        load_data(_write(tmp_path / "3", REGS, ["p1,a,2026-01-10T10:00:00,w,text"]))
    with pytest.raises(DataError, match="duplicate post_id"):
        load_data(
            _write(tmp_path / "4", REGS, ["p1,a,2026-01-10T10:00:00Z,w,x", "p1,a,2026-01-10T10:00:00Z,w,y"])
        )
    with pytest.raises(DataError, match="interactions for unknown post"):
        load_data(_write(tmp_path / "5", REGS, ["p1,a,2026-01-10T10:00:00Z,w,x"], ["p9,1,1,1"]))
    with pytest.raises(DataError, match="not an EVM address"):
        load_data(_write(tmp_path / "6", ["a,2026-01-01T00:00:00Z,0x12,false"], []))
    with pytest.raises(RulesError, match=re.escape("unknown key pools[0].colour")):
        parse_rules({**RULES, "pools": [{"kind": "pro_rata", "colour": "red"}]})
    with pytest.raises(RulesError, match="whole cents"):
        parse_rules({**RULES, "pools": [{"kind": "pro_rata", "amount_usd": "1.005"}]})


def test_example_campaign_runs_and_pays_every_cash_pool_exactly(tmp_path: Path) -> None:
    rules = load_rules(EXAMPLE / "creator-new-year.toml")
    data = load_data(EXAMPLE / "creator-new-year-data")
    out = run_campaign(rules, data)
    summary = write_outputs(out, data, tmp_path)
    assert summary["pools_cents"]["posting pool"] == 25_000_00
    assert summary["pools_cents"]["newcomer pool"] == 10_000_00
    assert summary["pools_cents"]["newcomer first-post bonus"] <= 15_000_00
    # the lucky draw waits for its commitment and beacon block (tests/campaigns/test_campaign_draw.py)
    assert summary["draw"] == {"status": "pending", "beacon_height": rules.beacon_height}
    assert summary["draw_winners"] == [] and summary["pools_cents"]["lucky draw"] == 0
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert claims["root"] == summary["merkle_root"]
    assert sum(c["amount"] for c in claims["claims"]) == summary["cash_total_cents"] * 10_000


def test_claims_through_the_merkle_distributor_on_chain(tmp_path: Path) -> None:
    from drakewell.chain import AssetSpec, Chain, ContractReverted

    rules = load_rules(EXAMPLE / "creator-new-year.toml")
    data = load_data(EXAMPLE / "creator-new-year-data")
    out = run_campaign(rules, data)
    tree, claims = claims_tree(out, data)
    assert tree is not None
    chain = Chain.embedded()
    market = chain.deploy_market(AssetSpec("campaign stablecoin"))
    dist = chain.deploy_distributor(market.usd.address, tree.root)
    market.usd.mint(dist.address, sum(c["amount"] for c in claims))
    payer = chain.new_account()
    for c in claims[:5]:
        proof = [bytes.fromhex(p[2:]) for p in c["proof"]]
        dist.claim(c["index"], c["account"], c["amount"], proof, sender=payer)
        assert market.usd.balance_of(c["account"]) == c["amount"]
    c = claims[0]
    with pytest.raises(ContractReverted, match="already claimed"):
        dist.claim(
            c["index"], c["account"], c["amount"], [bytes.fromhex(p[2:]) for p in c["proof"]], sender=payer
        )
    assert CLAIM_LEAF_TYPES == ("uint256", "address", "uint256")


def test_cli_runs_the_example_with_its_draw_pending(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from drakewell.cli import app

    runner = CliRunner()
    args = [str(EXAMPLE / "creator-new-year.toml"), "--data", str(EXAMPLE / "creator-new-year-data")]
    r = runner.invoke(app, ["campaign", "run", *args, "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "pending" in r.output and "935000" in r.output
    assert json.loads((tmp_path / "summary.json").read_text())["draw_winners"] == []
    # a bare beacon, without its block header and a commitment, draws nothing
    bare = runner.invoke(app, ["campaign", "run", *args, "--out", str(tmp_path), "--beacon", BEACON])
    assert bare.exit_code != 0 and "without its block header" in str(bare.exception)
    verify = runner.invoke(app, ["campaign", "verify-draw", *args])
    assert verify.exit_code != 0 and "no beacon block header" in str(verify.exception)
