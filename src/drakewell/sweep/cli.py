"""``drakewell sweep SPEC.toml --out DIR``: run a scenario sweep on Ray, with a progress bar.

A thin layer over :func:`drakewell.sweep.runner.run_sweep` with a
:class:`~drakewell.sweep.executors.RayExecutor`: a local Ray by default, an existing cluster with
``--address``. Ray is imported only here, inside the command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from drakewell.sweep.executors import RayExecutor, require_ray
from drakewell.sweep.runner import ProgressHook, SweepOutcome, run_sweep
from drakewell.sweep.spec import load_spec

app = typer.Typer(help="Scenario sweeps.", no_args_is_help=True)


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="sweep SPEC TOML (see examples/sweeps/)")],
    out: Annotated[Path, typer.Option("--out", help="folder for results.parquet and report.html")],
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address (default: start a local Ray)")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="tasks at once (local Ray: its CPUs; default: all CPUs)"),
    ] = None,
) -> None:
    """Backtest every cell of SPEC on Ray; a rerun skips the cells already in DIR/results.parquet."""

    require_ray()
    console = Console()
    parsed = load_spec(spec)
    console.print(f"sweep [bold]{parsed.name}[/]: {parsed.n_cells:,} cells")
    executor = RayExecutor(address=address, workers=workers)
    try:
        with _ProgressBar(console) as (on_start, on_progress):
            outcome = run_sweep(parsed, out, executor, progress=on_progress, on_start=on_start)
    finally:
        executor.close()
    console.print(render_outcome(outcome))


class _ProgressBar:
    """A Rich bar with cells done, failed and the time left."""

    def __init__(self, console: Console) -> None:

        self._bar = Progress(
            TextColumn("cells"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> tuple[Callable[[int, int], None], ProgressHook]:
        self._bar.__enter__()

        def on_start(total: int, skipped: int) -> None:
            self._task = self._bar.add_task("sweep", total=total, completed=skipped, failed=0)

        def on_progress(done: int, failed: int, total: int) -> None:
            assert self._task is not None, "on_start comes first"
            self._bar.update(self._task, completed=done, failed=failed)

        return on_start, on_progress

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.__exit__(kind, exc, tb)


def render_outcome(outcome: SweepOutcome) -> Table:
    """A small Rich table: what ran, what failed, where the files are, the worst mpc capture."""

    table = Table(title="sweep", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")  # a long path folds over lines instead of being cut
    table.add_row("cells", f"{outcome.cells:,}")
    table.add_row("already in the results", f"{outcome.skipped:,}")
    table.add_row("ran", f"{outcome.ran:,}")
    table.add_row("failed", f"{outcome.failed:,}")
    frame = outcome.results
    if {"policy", "flex_capture"} <= set(frame.columns):
        flex = pd.to_numeric(frame.loc[frame["policy"] == "mpc", "flex_capture"], errors="coerce").dropna()
        if not flex.empty:
            table.add_row("worst mpc flexibility capture", f"{flex.min():.3f}")
    table.add_row("results", str(outcome.results_path))
    if outcome.report_path is not None:
        table.add_row("report", str(outcome.report_path))
    table.add_row("seconds", f"{outcome.seconds:,.1f}")
    return table
