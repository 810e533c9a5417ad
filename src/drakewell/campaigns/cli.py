"""``drakewell campaign run | verify-draw``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Incentive campaigns: exact pools, verifiable draws, claimable on chain.")


def _beacon(beacon: str | None, data: Path) -> str | None:
    if beacon:
        return beacon
    path = data / "beacon.txt"
    return path.read_text().strip() if path.exists() else None


@app.command("run")
def run(
    rules: Annotated[Path, typer.Argument(help="campaign rules TOML")],
    data: Annotated[Path, typer.Option(help="folder with registrations, posts and interactions")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("out/campaign"),
    beacon: Annotated[
        str | None, typer.Option(help="the draw's beacon (hex block hash); else data/beacon.txt")
    ] = None,
) -> None:
    """Compute every payout with its reason, and the Merkle root for on-chain claims."""
    from rich.console import Console

    from drakewell.campaigns.data import load_data
    from drakewell.campaigns.engine import run_campaign, write_outputs
    from drakewell.campaigns.rules import load_rules

    r = load_rules(rules)
    d = load_data(data)
    outcome = run_campaign(r, d, beacon=_beacon(beacon, data))
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
    console.print(f"  lucky draw: {', '.join(summary['draw_winners']) or 'none'}")
    console.print(
        f"  merkle root {summary['merkle_root']}; wrote {out}/payouts.csv, audit.jsonl, claims.json"
    )


@app.command("verify-draw")
def verify_draw(
    rules: Annotated[Path, typer.Argument(help="campaign rules TOML")],
    data: Annotated[Path, typer.Option(help="folder with registrations, posts and interactions")],
    beacon: Annotated[str | None, typer.Option(help="the beacon (hex); else data/beacon.txt")] = None,
    expect: Annotated[str | None, typer.Option(help="comma-separated winners to check against")] = None,
) -> None:
    """Re-run the lucky draw from the public beacon and the eligible entries."""
    from drakewell.campaigns.data import load_data
    from drakewell.campaigns.draw import draw_winners
    from drakewell.campaigns.engine import select_posts
    from drakewell.campaigns.rules import load_rules

    r = load_rules(rules)
    d = load_data(data)
    pool = r.pool("lucky_draw")
    if pool is None:
        raise typer.BadParameter("these rules have no lucky_draw pool")
    counted, _ = select_posts(r, d)
    used = _beacon(beacon, data) or r.beacon
    winners = draw_winners(counted, pool.winners, used, r.name)
    typer.echo(json.dumps({"beacon": used, "entries": len(counted), "winners": winners}))
    if expect is not None and [w.strip() for w in expect.split(",") if w.strip()] != winners:
        typer.echo("the published winners do not match the draw", err=True)
        raise typer.Exit(1)
