"""The lucky draw against grinding: committed entries, a real bitcoin block header as the beacon.

Headers are rebuilt from the published fields of mainnet blocks (genesis, 100,000 and 125,552);
their hashes are the ones every block explorer shows.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import pytest
from typer.testing import CliRunner

from drakewell.cli import app

if TYPE_CHECKING:
    from typer.testing import Result

    from drakewell.campaigns.engine import Summary
    from drakewell.campaigns.rules import Rules


class HeaderFields(TypedDict):
    """A block header's fields as block explorers display them."""

    version: int
    prev: str
    merkle: str
    time: int
    bits: int
    nonce: int


def header_hex(version: int, prev: str, merkle: str, time: int, bits: int, nonce: int) -> str:
    """An 80-byte header from its fields as block explorers display them (hashes byte-reversed)."""
    raw = (
        version.to_bytes(4, "little")
        + bytes.fromhex(prev)[::-1]
        + bytes.fromhex(merkle)[::-1]
        + time.to_bytes(4, "little")
        + bits.to_bytes(4, "little")
        + nonce.to_bytes(4, "little")
    )
    return raw.hex()


GENESIS = HeaderFields(
    version=1,
    prev="00" * 32,
    merkle="4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
    time=1231006505,
    bits=0x1D00FFFF,
    nonce=2083236893,
)
GENESIS_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
BLOCK_100000 = HeaderFields(
    version=1,
    prev="000000000002d01c1fccc21636b607dfd930d31d01c3a62104612a1719011250",
    merkle="f3e94742aca4b5ef85488dc37c06c3282295ffec960994b2c0d5ac2a25a95766",
    time=1293623863,  # 2010-12-29 11:57:43 UTC
    bits=0x1B04864C,
    nonce=274148111,
)
BLOCK_100000_HASH = "000000000003ba27aa200b1cecaad478d2b00432346c3f1f3986da1afd33e506"
BLOCK_125552 = HeaderFields(
    version=1,
    prev="00000000000008a3a41b85b8b29ad444def299fee21793cd8b9e567eab02cd81",
    merkle="2b12fcf1b09288fcaff797d71e950e71ae42b91e8bdb2304758dfcffc2b620e3",
    time=1305998791,
    bits=0x1A44B9F2,
    nonce=2504433986,
)
BLOCK_125552_HASH = "00000000000000001e8d6829a8a21adc5d38d0a473b144b6765798e61f98bd1d"

# a campaign in December 2010 whose draw is on block 100,000 (mined after the commitment deadline)
RULES_TOML = """
[campaign]
name = "Winter posting"
timezone = "+00:00"
start = "2010-12-01 00:00"
end = "2010-12-28 00:00"

[eligibility]
min_characters = 5

[draw]
beacon_source = "bitcoin block 100000"
{draw_keys}

[[pools]]
kind = "lucky_draw"
name = "draw"
winners = 3
prizes = [{{ cash_usd = 10 }}]
"""
DRAW_KEYS = 'beacon_height = 100000\ncommit_by = "2010-12-29 00:00"'
IN_WINDOW = "2010-12-28T12:00:00+00:00"  # after the campaign, before commit_by
USERS = [f"u{i:02d}" for i in range(20)]


def _campaign(folder: Path, draw_keys: str = DRAW_KEYS, users: list[str] = USERS) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rules = folder / "rules.toml"
    rules.write_text(RULES_TOML.format(draw_keys=draw_keys))
    data = folder / "data"
    data.mkdir(exist_ok=True)
    regs = [f"{u},2010-11-01T00:00:00Z,0x{i + 1:040x},false" for i, u in enumerate(users)]
    posts = [f"p{i},{u},2010-12-10T10:00:00Z,,a post by {u}" for i, u in enumerate(users)]
    (data / "registrations.csv").write_text(
        "user_id,registered_at,wallet,newcomer\n" + "\n".join(regs) + "\n"
    )
    (data / "posts.csv").write_text("post_id,user_id,created_at,widget,text\n" + "\n".join(posts) + "\n")
    return rules, data


def _cli(*args: str) -> Result:
    return CliRunner().invoke(app, ["campaign", *args])


def _summary(out: Path) -> Summary:
    summary: Summary = json.loads((out / "summary.json").read_text())
    return summary


# --- the exploit ------------------------------------------------------------------------------------


def test_exploit_operator_grinds_beacons_until_a_chosen_user_wins(tmp_path: Path) -> None:
    """The attack: the operator re-runs the draw with made-up beacons until a friend wins.

    Before the fix any hex passed as ``--beacon`` was accepted, and one in a few tries made ``u07``
    a winner. Now a beacon needs the header of a mined block, matching a commitment made before the
    block existed; made-up beacons, cheaply "mined" headers and other real blocks are all refused.
    """
    rules, data = _campaign(tmp_path, draw_keys="")
    friend_won = []
    for i in range(40):
        beacon = hashlib.sha256(f"try {i}".encode()).hexdigest()
        out = tmp_path / f"out{i}"
        r = _cli("run", str(rules), "--data", str(data), "--out", str(out), "--beacon", beacon)
        if r.exit_code == 0 and "u07" in _summary(out)["draw_winners"]:
            friend_won.append(beacon)
            break
    assert friend_won == [], f"a made-up beacon {friend_won} chose the winner"

    # with a commitment in place, the operator still cannot pick the beacon
    rules, data = _campaign(tmp_path / "committed")
    assert _cli("commit", str(rules), "--data", str(data), "--now", IN_WINDOW).exit_code == 0
    real = header_hex(**BLOCK_100000)
    out = tmp_path / "fair"
    fair = _cli("run", str(rules), "--data", str(data), "--out", str(out), "--header", real)
    assert fair.exit_code == 0, fair.output
    winners = _summary(out)["draw_winners"]
    assert len(winners) == 3
    # a header "mined" at a target easier than any mainnet block (regtest's) takes a few hashes
    easy = _mine_easy_header(BLOCK_100000)
    r = _cli("run", str(rules), "--data", str(data), "--out", str(tmp_path / "x"), "--header", easy)
    assert r.exit_code != 0 and "less work than difficulty" in str(r.exception)
    # a real block mined before the commitment deadline (known when the entries were fixed)
    r = _cli(
        "run",
        str(rules),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "y"),
        "--header",
        header_hex(**GENESIS),
    )
    assert r.exit_code != 0 and "not after the commitment deadline" in str(r.exception)
    # and the published result is what anyone re-derives
    check = _cli(
        "verify-draw", str(rules), "--data", str(data), "--header", real, "--expect", ",".join(winners)
    )
    assert check.exit_code == 0, check.output
    shown = json.loads(check.output.splitlines()[0])
    assert shown["beacon"] == BLOCK_100000_HASH and shown["beacon_height"] == 100000


def _mine_easy_header(fields: HeaderFields) -> str:
    from drakewell.campaigns.draw import parse_header, target_from_bits

    easy_bits = 0x207FFFFF  # regtest's proof-of-work limit: half of all hashes meet it
    for nonce in range(1000):
        easy: HeaderFields = {**fields, "bits": easy_bits, "nonce": nonce}
        h = header_hex(**easy)
        if parse_header(h).pow_value <= target_from_bits(easy_bits):
            return h
    raise AssertionError("no easy header in 1000 nonces")


# --- block headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "block_hash"),
    [(GENESIS, GENESIS_HASH), (BLOCK_100000, BLOCK_100000_HASH), (BLOCK_125552, BLOCK_125552_HASH)],
    ids=["genesis", "100000", "125552"],
)
def test_real_mainnet_headers_verify(fields: HeaderFields, block_hash: str) -> None:
    from drakewell.campaigns.draw import verify_header

    header = verify_header(header_hex(**fields), "0x" + block_hash)
    assert header.hash == block_hash and header.nonce == fields["nonce"] and header.bits == fields["bits"]
    assert header.pow_value <= header.target


def test_a_tampered_nonce_fails_the_target() -> None:
    from drakewell.campaigns.draw import DrawError, parse_header, verify_header

    fields: HeaderFields = {**GENESIS, "nonce": GENESIS["nonce"] + 1}
    tampered = header_hex(**fields)
    forged = parse_header(tampered).hash  # the operator claims the tampered header's own hash
    with pytest.raises(DrawError, match="does not meet the target"):
        verify_header(tampered, forged)


def test_a_beacon_not_matching_the_header_is_refused() -> None:
    from drakewell.campaigns.draw import DrawError, verify_header

    with pytest.raises(DrawError, match="not to the beacon"):
        verify_header(header_hex(**GENESIS), BLOCK_100000_HASH)
    with pytest.raises(DrawError, match="not 80"):
        verify_header(header_hex(**GENESIS)[:-2], GENESIS_HASH)
    with pytest.raises(DrawError, match="not hex"):
        verify_header("zz" * 80, GENESIS_HASH)


def test_bits_decode_like_bitcoin_and_difficulty_floors_the_work() -> None:
    from drakewell.campaigns.draw import POW_LIMIT, DrawError, target_from_bits, verify_header

    assert target_from_bits(0x1D00FFFF) == POW_LIMIT == 0xFFFF << 208
    assert target_from_bits(0x1B04864C) == 0x04864C << (8 * 24)
    assert target_from_bits(0x03123456) == 0x123456 and target_from_bits(0x02123456) == 0x1234
    for bad, words in ((0x04923456, "negative"), (0xFF123456, "overflow"), (0x1D000000, "zero")):
        with pytest.raises(DrawError, match=words):
            target_from_bits(bad)
    # block 100,000 was mined at difficulty ~14,484: a rule asking for more refuses it
    verify_header(header_hex(**BLOCK_100000), BLOCK_100000_HASH, min_difficulty=14_000)
    with pytest.raises(DrawError, match="less work than difficulty 15000"):
        verify_header(header_hex(**BLOCK_100000), BLOCK_100000_HASH, min_difficulty=15_000)


# --- the commitment ---------------------------------------------------------------------------------


def _load(rules: Path, data: Path) -> tuple[Rules, list[str]]:
    from drakewell.campaigns.data import load_data
    from drakewell.campaigns.engine import select_posts
    from drakewell.campaigns.rules import load_rules

    r = load_rules(rules)
    counted, _ = select_posts(r, load_data(data))
    return r, list(counted)


def test_a_draw_with_no_or_a_late_commitment_is_refused(tmp_path: Path) -> None:
    from drakewell.campaigns.draw import DrawError, commit_draw, hold_draw

    rules, data = _campaign(tmp_path)
    r, entries = _load(rules, data)
    real = header_hex(**BLOCK_100000)
    out = tmp_path / "out"
    none = _cli("run", str(rules), "--data", str(data), "--out", str(out), "--header", real)
    assert none.exit_code != 0 and "no draw commitment" in str(none.exception)
    with pytest.raises(DrawError, match=r"deadline .* has passed"):
        commit_draw(r, entries, datetime(2010, 12, 29, 0, 0, tzinfo=UTC))
    with pytest.raises(DrawError, match="window is open"):
        commit_draw(r, entries, datetime(2010, 12, 27, 23, 59, 59, tzinfo=UTC))
    late = _cli("commit", str(rules), "--data", str(data), "--now", "2010-12-29T13:00:00+00:00")
    assert late.exit_code != 0 and "has passed" in str(late.exception)
    # a commitment written late and back-dated in the file no longer hashes to itself
    ok = commit_draw(r, entries, datetime(2010, 12, 28, 12, tzinfo=UTC))
    path = data / "draw-commitment.json"
    body = json.loads(ok.to_json())
    body["committed_at_utc"] = "2010-12-29T13:00:00+00:00"
    path.write_text(json.dumps(body))
    edited = _cli("run", str(rules), "--data", str(data), "--out", str(out), "--header", real)
    assert edited.exit_code != 0 and "was edited" in str(edited.exception)
    # and a commitment made outside its window is refused even when consistent
    from dataclasses import replace

    with pytest.raises(DrawError, match="outside"):
        hold_draw(replace(ok, committed_at_utc=datetime(2010, 12, 29, 13, tzinfo=UTC)), r, entries, real)


def test_rerunning_with_another_beacon_cannot_change_the_committed_entries(tmp_path: Path) -> None:
    from drakewell.campaigns.draw import DrawError, commit_draw, hold_draw

    rules, data = _campaign(tmp_path)
    r, entries = _load(rules, data)
    committed = commit_draw(r, entries, datetime(2010, 12, 28, 12, tzinfo=UTC))
    real = header_hex(**BLOCK_100000)
    draw = hold_draw(committed, r, entries, real)
    assert set(draw.winners) <= set(entries) and draw.commitment == committed.digest
    # a sock puppet added to the data after the commitment
    with pytest.raises(DrawError, match="differ from the committed ones"):
        hold_draw(committed, r, [*entries, "sock-puppet"], real)
    # the same entries under other rules (more winners)
    more = tmp_path / "more.toml"
    more.write_text(rules.read_text().replace("winners = 3", "winners = 4"))
    r4, _ = _load(more, data)
    with pytest.raises(DrawError, match="other rules"):
        hold_draw(committed, r4, entries, real)
    # another beacon: a block from before the deadline is refused; the draw stays on the committed entries
    with pytest.raises(DrawError, match="not after the commitment deadline"):
        hold_draw(committed, r, entries, header_hex(**GENESIS))
    other = hold_draw(committed, r, entries, header_hex(**BLOCK_125552))
    assert other.entries_sha256 == draw.entries_sha256 == committed.entries_sha256
    assert other.beacon_height == 100000  # what a verifier checks against the chain: 125,552 is not it


def test_cli_commit_run_verify_and_no_overwrite(tmp_path: Path) -> None:
    rules, data = _campaign(tmp_path)
    c = _cli("commit", str(rules), "--data", str(data), "--now", IN_WINDOW)
    assert c.exit_code == 0, c.output
    digest = json.loads(c.output)["commitment"]
    again = _cli("commit", str(rules), "--data", str(data), "--now", IN_WINDOW)
    assert again.exit_code != 0 and "already holds a commitment" in str(again.exception)
    (data / "beacon-header.txt").write_text(header_hex(**BLOCK_100000))
    out = tmp_path / "out"
    r = _cli("run", str(rules), "--data", str(data), "--out", str(out))
    assert r.exit_code == 0, r.output
    summary = _summary(out)
    assert summary["draw"] is not None
    assert summary["draw"]["status"] == "held" and summary["draw"]["commitment"] == digest
    assert summary["pools_cents"]["draw"] == 3 * 10_00
    v = _cli("verify-draw", str(rules), "--data", str(data), "--expect", ",".join(summary["draw_winners"]))
    assert v.exit_code == 0, v.output
    wrong = _cli("verify-draw", str(rules), "--data", str(data), "--beacon", GENESIS_HASH)
    assert wrong.exit_code != 0 and "not to the beacon" in str(wrong.exception)


def test_draw_rules_keys_are_checked(tmp_path: Path) -> None:
    from drakewell.campaigns.draw import DrawError, commit_draw
    from drakewell.campaigns.rules import RulesError, load_rules

    for keys, words in (
        ('beacon_height = "soon"', "not a block height"),
        ('commit_by = "2010-12-27 00:00"', "not after campaign.end"),
        ("min_difficulty = 0", "whole number >= 1"),
    ):
        rules, _ = _campaign(tmp_path / words.replace(" ", "-"), draw_keys=keys)
        with pytest.raises(RulesError, match=words):
            load_rules(rules)
    rules, data = _campaign(tmp_path / "unnamed", draw_keys="")
    r, entries = _load(rules, data)
    with pytest.raises(DrawError, match="do not name the beacon block"):
        commit_draw(r, entries, datetime(2010, 12, 28, 12, tzinfo=UTC))
