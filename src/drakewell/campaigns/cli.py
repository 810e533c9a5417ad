"""``drakewell campaign run | commit | verify-draw``.

The lucky draw's inputs live in the data folder unless given as options: ``draw-commitment.json``
(written by ``commit``), ``beacon-header.txt`` (the beacon block's raw 80-byte header, hex) and,
optionally, ``beacon.txt`` (the block hash, checked against the header).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from drakewell.campaigns.data import load_data
from drakewell.campaigns.draw import DrawError, commit_draw, hold_draw, load_commitment
from drakewell.campaigns.engine import run_campaign, select_posts, write_outputs
from drakewell.campaigns.rules import load_rules
from drakewell.core.times import aware_utc

if TYPE_CHECKING:
    from drakewell.campaigns.data import CampaignData
    from drakewell.campaigns.draw import Draw
    from drakewell.campaigns.rules import Rules

app = typer.Typer(help="Incentive campaigns: exact pools, verifiable draws, claimable on chain.")

COMMITMENT_FILE = "draw-commitment.json"
HEADER_FILE = "beacon-header.txt"
BEACON_FILE = "beacon.txt"

HeaderOpt = Annotated[
    str | None,
    typer.Option(help=f"the beacon block's raw 80-byte header (hex); else DATA/{HEADER_FILE}"),
]
BeaconOpt = Annotated[
    str | None,
    typer.Option(help=f"the beacon block's hash (hex), checked against the header; else DATA/{BEACON_FILE}"),
]
CommitmentOpt = Annotated[
    Path | None, typer.Option(help=f"the draw's commitment file; else DATA/{COMMITMENT_FILE}")
]


def _from_file(value: str | None, data: Path, name: str) -> str | None:
    if value:
        return value
    path = data / name
    return path.read_text().strip() if path.exists() else None


def _hold(
    rules: Rules,
    data_dir: Path,
    data: CampaignData,
    header: str | None,
    beacon: str | None,
    commitment: Path | None,
) -> Draw | None:
    """The lucky draw held on the committed entries and the beacon block (``None``: no header yet)."""

    header = _from_file(header, data_dir, HEADER_FILE)
    beacon = _from_file(beacon, data_dir, BEACON_FILE) or rules.beacon or None
    if header is None:
        if beacon:
            raise DrawError(
                "a beacon was given without its block header",
                hint=f"pass --header with the raw 80-byte header of block {rules.beacon_height}",
            )
        return None
    counted, _ = select_posts(rules, data)
    committed = load_commitment(commitment or data_dir / COMMITMENT_FILE)
    return hold_draw(committed, rules, counted, header, beacon)


@app.command("run")
def run(
    rules: Annotated[Path, typer.Argument(help="campaign rules TOML")],
    data: Annotated[Path, typer.Option(help="folder with registrations, posts and interactions")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("out/campaign"),
    header: HeaderOpt = None,
    beacon: BeaconOpt = None,
    commitment: CommitmentOpt = None,
) -> None:
    """Compute every payout with its reason, and the Merkle root for on-chain claims.

    The lucky draw is held only on a commitment and the beacon block's header; without a header it
    stays pending (and pays nothing yet).
    """

    r = load_rules(rules)
    d = load_data(data)
    held = _hold(r, data, d, header, beacon, commitment) if r.pool("lucky_draw") else None
    outcome = run_campaign(r, d, draw=held)
    summary = write_outputs(outcome, d, out)
    console = Console()
    console.print(
        f"[bold]{r.name}[/]: {summary['counted_posts']} of {summary['posts']} posts counted, "
        f"{summary['participants']} participants"
    )
    for name, cents in summary["pools_cents"].items():
        budget = summary["pools_budget_cents"][name]
        if cents or budget:
            console.print(
                f"  {name}: ${cents / 100:,.2f} paid" + (f" of ${budget / 100:,.2f}" if budget else "")
            )
    n_items = sum(len(v) for v in summary["items"].values())
    console.print(f"  items: {n_items} to {len(summary['items'])} users")
    if r.pool("lucky_draw") is not None:
        if held is None:
            pending = f"commit, then pass --header of block {r.beacon_height}"
            console.print(f"  lucky draw: [bold yellow]pending[/] ({pending})")
        else:
            names = ", ".join(held.winners) or "none"
            console.print(f"  lucky draw on block {held.beacon_height} ({held.beacon}): {names}")
    console.print(
        f"  merkle root {summary['merkle_root']}; wrote {out}/payouts.csv, audit.jsonl, claims.json"
    )


@app.command("commit")
def commit(
    rules: Annotated[Path, typer.Argument(help="campaign rules TOML")],
    data: Annotated[Path, typer.Option(help="folder with registrations, posts and interactions")],
    out: Annotated[
        Path | None, typer.Option(help=f"commitment file to write; else DATA/{COMMITMENT_FILE}")
    ] = None,
    now: Annotated[
        str | None, typer.Option(help="the time of the commitment (ISO 8601 with offset); default: now")
    ] = None,
) -> None:
    """Commit the lucky draw's sorted entries and the rules (after the window, before draw.commit_by).

    Publish the printed commitment before the beacon block is mined: the draw is held only on it.
    """

    r = load_rules(rules)
    d = load_data(data)
    now_utc = (
        datetime.now(UTC)
        if now is None
        else aware_utc(
            now,
            f"--now {now!r}",
            DrawError,
            hint="e.g. 2026-01-27T09:00:00+08:00",
            zone_hint="add one, e.g. +00:00",
        )
    )
    target = out or data / COMMITMENT_FILE
    if target.exists():
        raise DrawError(
            f"{target} already holds a commitment",
            hint="a published commitment is never replaced; write elsewhere with --out to inspect",
        )
    counted, _ = select_posts(r, d)
    committed = commit_draw(r, counted, now_utc)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(committed.to_json(), encoding="utf-8")
    typer.echo(
        json.dumps(
            {
                "commitment": committed.digest,
                "entries": len(committed.entries),
                "beacon_height": committed.beacon_height,
                "commit_by_utc": committed.commit_by_utc.isoformat(),
                "file": str(target),
            }
        )
    )


@app.command("verify-draw")
def verify_draw(
    rules: Annotated[Path, typer.Argument(help="campaign rules TOML")],
    data: Annotated[Path, typer.Option(help="folder with registrations, posts and interactions")],
    header: HeaderOpt = None,
    beacon: BeaconOpt = None,
    commitment: CommitmentOpt = None,
    expect: Annotated[str | None, typer.Option(help="comma-separated winners to check against")] = None,
) -> None:
    """Check the beacon block's header (hash = beacon, proof of work meets its bits), the commitment
    (made in time, same rules, same entries), and re-run the draw."""

    r = load_rules(rules)
    d = load_data(data)
    if r.pool("lucky_draw") is None:
        raise typer.BadParameter("these rules have no lucky_draw pool")
    held = _hold(r, data, d, header, beacon, commitment)
    if held is None:
        raise DrawError(
            "no beacon block header to verify", hint=f"pass --header (or write DATA/{HEADER_FILE})"
        )
    typer.echo(
        json.dumps(
            {
                "beacon": held.beacon,
                "beacon_height": held.beacon_height,
                "block_time_utc": held.block_time_utc.isoformat(),
                "commitment": held.commitment,
                "entries": held.entries,
                "winners": list(held.winners),
                "check": f"block {held.beacon_height} of bitcoin's chain has hash {held.beacon}",
            }
        )
    )
    if expect is not None and [w.strip() for w in expect.split(",") if w.strip()] != list(held.winners):
        typer.echo("the published winners do not match the draw", err=True)
        raise typer.Exit(1)
