"""Run a sweep: prepare the cells, run them on an executor, keep ``results.parquet`` current.

Protocol:

1. Heavy inputs are loaded once in the driver — every price source (real-time and day-ahead
   frames), every hashprice CSV — checked (each zone a cell uses must be a column of its prices)
   and handed to the executor with ``share`` (Ray: one ``ray.put`` each).
2. Each cell's site is built from the base site's mapping plus its overrides and validated; a cell
   whose combination is not a valid site is recorded as failed with the site error (it has nothing
   to run, so ``attempts`` is 0).
3. Cells with a row of status ``ok`` in ``DIR/results.parquet`` whose ``cell`` key matches are
   skipped (resume). The rest are submitted, at most ``executor.slots`` in flight. An attempt that
   fails — an error in the backtest, a worker or node that died — is submitted once more; a second
   failure is recorded with its error. No cell is dropped: every cell ends as one row.
4. Rows are written to ``results.parquet`` (atomically: a temporary file, then a rename) at most
   every ``flush_s`` seconds and at the end, so an interrupted sweep keeps what it finished.

Row layout: the axis columns (in SPEC order), the backtest summary flattened
(:func:`~drakewell.sweep.task.flatten_summary`; a summary key that repeats an axis column with the
same value is dropped, a different value is kept as ``summary.<key>``), then ``cell`` (identity),
``status`` (``ok`` | ``failed``), ``error``, ``attempts``, ``worker`` (Ray node id, or ``serial``)
and ``task_seconds``. ``worker`` and timings describe the run, not the result.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import pandas as pd

from drakewell.core.errors import DrakewellError, SweepError
from drakewell.inputs.bitcoin import derive_daily_hashprice, load_btc_prices, load_hashprice_csv
from drakewell.inputs.prices import load_ercot_prices
from drakewell.inputs.synthetic import HASHPRICE_MEAN_USD_PER_PH_DAY
from drakewell.site import parse_site
from drakewell.sweep.executors import Executor
from drakewell.sweep.report import write_sweep_report
from drakewell.sweep.spec import Cell, SweepSpec, cell_key, cell_site_data, expand_cells, file_digest
from drakewell.sweep.task import CellTask, PriceFrames

__all__ = [
    "MAX_ATTEMPTS",
    "RESULTS_FILE",
    "RUN_COLUMNS",
    "SweepOutcome",
    "read_results",
    "result_columns",
    "run_sweep",
]

RESULTS_FILE = "results.parquet"
REPORT_FILE = "report.html"
RUN_COLUMNS = ("cell", "status", "error", "attempts", "worker", "task_seconds")
MAX_ATTEMPTS = 2  # a failed attempt is retried once

# (done, failed, total) after each finished cell
ProgressHook = Callable[[int, int, int], None]
Row: TypeAlias = dict[str, object]
"""One row of the results: column -> value."""


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep run did: the results frame (this SPEC's cells) and counts."""

    results: pd.DataFrame
    results_path: Path
    report_path: Path | None
    cells: int
    skipped: int  # already in the results
    ran: int
    failed: int
    seconds: float


@dataclass(frozen=True)
class _Prepared:
    cell: Cell
    key: str
    task: CellTask | None
    error: str | None  # the site error of a cell that cannot run


def _load_inputs(
    spec: SweepSpec, cells: Sequence[Cell], executor: Executor
) -> tuple[dict[str, str], float | pd.Series | None]:
    """Load, check and share the heavy inputs; returns the input digests (path → SHA-256) and the
    hashprice derived for cells that set none (``None`` when every cell sets one)."""

    digests: dict[str, str] = {}
    zones_by_source: dict[str, set[str | None]] = {}
    for cell in cells:
        zones_by_source.setdefault(cell.prices.rt_path, set()).add(cell.zone)
    for source in spec.price_sources():
        rt = load_ercot_prices(source.rt_path)
        da = load_ercot_prices(source.forecast_path) if source.forecast_path else None
        for path in (source.rt_path, source.forecast_path):
            if path:
                digests[path] = file_digest(path)
        site_table = spec.site_data.get("site")
        default_zone = str(site_table.get("zone", "LZ_WEST")) if isinstance(site_table, dict) else "LZ_WEST"
        for zone in sorted(z or default_zone for z in zones_by_source.get(source.rt_path, set())):
            for frame, what in ((rt, "real-time"), (da, "day-ahead")):
                if frame is not None and zone not in frame.columns:
                    raise SweepError(
                        f"{spec.source}: zone {zone!r} is not a column of the {what} prices {source.label}",
                        hint=f"choose zones among {', '.join(map(str, frame.columns))}",
                    )
        executor.share(_prices_key(source.rt_path), PriceFrames(rt, da))
    for path in sorted({c.hashprice for c in cells if isinstance(c.hashprice, str)}):
        digests[path] = file_digest(path)
        executor.share(_hashprice_key(path), load_hashprice_csv(path))
    derived: float | pd.Series | None = None
    if any(c.hashprice is None for c in cells):
        # as ``drakewell backtest``: a daily hashprice from BTC prices, else the calibrated mean
        try:
            derived = derive_daily_hashprice(load_btc_prices())
        except DrakewellError:
            derived = float(HASHPRICE_MEAN_USD_PER_PH_DAY)
        if isinstance(derived, pd.Series):
            executor.share(_hashprice_key(None), derived)
            text = derived.to_json(date_format="iso", double_precision=15)
        else:
            text = repr(derived)
        digests[_hashprice_key(None)] = hashlib.sha256(text.encode()).hexdigest()
    return digests, derived


def _prices_key(path: str) -> str:
    return f"prices:{path}"


def _hashprice_key(path: str | None) -> str:
    return f"hashprice:{path or 'derived'}"


def _prepare(
    spec: SweepSpec, cell: Cell, digests: Mapping[str, str], derived: float | pd.Series | None
) -> _Prepared:

    data = cell_site_data(spec, cell)
    key = cell_key(data, cell, digests)
    try:
        site = parse_site(data, base_dir=Path(spec.site_path).parent, source=spec.site_path)
    except DrakewellError as exc:
        return _Prepared(cell, key, None, f"{type(exc).__name__}: {exc}")
    if isinstance(cell.hashprice, float):
        hp, hp_key = cell.hashprice, None
    elif isinstance(cell.hashprice, str):
        hp, hp_key = None, _hashprice_key(cell.hashprice)
    else:
        hp, hp_key = (float(derived), None) if isinstance(derived, float) else (None, _hashprice_key(None))
    task = CellTask(
        key=key,
        site=site,
        zone=cell.zone,
        policy=cell.policy,
        prices_key=_prices_key(cell.prices.rt_path),
        hashprice=hp,
        hashprice_key=hp_key,
    )
    return _Prepared(cell, key, task, None)


def _row(cell: Cell, key: str, summary: Mapping[str, object] | None, **run: object) -> Row:
    row: Row = dict(cell.values)
    for name, value in (summary or {}).items():
        if name in row:
            if row[name] == value:
                continue
            name = f"summary.{name}"
        row[name] = value
    row["cell"] = key
    for column in RUN_COLUMNS[1:]:
        row[column] = run.get(column)
    return row


def result_columns(frame: pd.DataFrame, axes: Sequence[str]) -> list[str]:
    """Column order: axes, then summary columns (as first seen), then the run columns."""
    head = [a for a in axes if a in frame.columns]
    tail = [c for c in RUN_COLUMNS if c in frame.columns]
    return head + [c for c in frame.columns if c not in head and c not in tail] + tail


def _frame(rows: Sequence[Row], axes: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame(columns=[*axes, *RUN_COLUMNS])
    frame = frame[result_columns(frame, axes)]
    frame["attempts"] = frame["attempts"].astype("int64")
    return frame


def _write(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def read_results(path: str | Path) -> pd.DataFrame:
    """Read a sweep's results file (a clear error if it is not one)."""
    file = Path(path)
    try:
        frame = pd.read_parquet(file)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise SweepError(
            f"{file} is not a readable results file: {exc}", hint="remove it or choose another --out"
        ) from None
    missing = [c for c in RUN_COLUMNS if c not in frame.columns]
    if missing:
        raise SweepError(
            f"{file} lacks the column(s) {', '.join(missing)}: it was not written by a sweep",
            hint="choose another --out folder",
        )
    return frame


def _resume(results_path: Path, keys: set[str]) -> tuple[dict[str, Row], list[Row]]:
    """From an earlier results file: this SPEC's cells that ran (by cell key), and other SPECs'
    rows (kept in the file, left out of this run)."""
    rows: dict[str, Row] = {}
    foreign: list[Row] = []
    if not results_path.exists():
        return rows, foreign
    for record in read_results(results_path).to_dict("records"):
        if record["cell"] in keys and record["status"] == "ok":
            rows[record["cell"]] = record
        elif record["cell"] not in keys:
            foreign.append(record)
    return rows, foreign


@dataclass
class _Tally:
    """Cells finished and failed so far, reported through the progress hook."""

    total: int
    done: int
    progress: ProgressHook | None
    failed: int = 0

    def finished(self, failed: bool) -> None:
        self.done += 1
        self.failed += int(failed)
        if self.progress:
            self.progress(self.done, self.failed, self.total)


def _execute(
    executor: Executor,
    queue: list[tuple[_Prepared, int]],
    rows: dict[str, Row],
    tally: _Tally,
    flush: Callable[[], None],
    flush_s: float,
) -> None:
    """Keep the executor's slots full from ``queue``; a failed attempt goes back to the front until
    :data:`MAX_ATTEMPTS`; each finished cell becomes its row; rows are flushed every ``flush_s``."""
    by_ticket: dict[int, tuple[_Prepared, int]] = {}
    last_flush = time.perf_counter()
    while queue or by_ticket:
        while queue and len(by_ticket) < executor.slots:
            p, attempt = queue.pop(0)
            assert p.task is not None
            by_ticket[executor.submit(p.task)] = (p, attempt)
        ticket, outcome = executor.wait_one()
        p, attempt = by_ticket.pop(ticket)
        if outcome.value is not None:
            rows[p.key] = _row(
                p.cell,
                p.key,
                outcome.value.summary,
                status="ok",
                attempts=attempt,
                worker=outcome.worker,
                task_seconds=float(outcome.value.task_seconds),
            )
        elif attempt < MAX_ATTEMPTS:
            queue.insert(0, (p, attempt + 1))
            continue
        else:
            rows[p.key] = _row(
                p.cell,
                p.key,
                None,
                status="failed",
                error=outcome.error,
                attempts=attempt,
                worker=outcome.worker,
            )
        tally.finished(failed=outcome.value is None)
        if time.perf_counter() - last_flush >= flush_s:
            flush()
            last_flush = time.perf_counter()


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    executor: Executor,
    *,
    progress: ProgressHook | None = None,
    on_start: Callable[[int, int], None] | None = None,
    flush_s: float = 2.0,
    report: bool = True,
) -> SweepOutcome:
    """Run every cell of ``spec`` not already in ``out_dir/results.parquet`` on ``executor``.

    ``on_start(total, skipped)`` is called once the cells are known; ``progress(done, failed,
    total)`` after each finished cell. Writes ``results.parquet`` and (``report``) ``report.html``.
    """
    t0 = time.perf_counter()
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    results_path = folder / RESULTS_FILE
    axes = spec.axis_names
    cells = expand_cells(spec)
    digests, derived = _load_inputs(spec, cells, executor)
    prepared = [_prepare(spec, c, digests, derived) for c in cells]
    rows, foreign = _resume(results_path, {p.key for p in prepared})
    skipped, total = len(rows), len(prepared)
    if on_start:
        on_start(total, skipped)
    tally = _Tally(total, skipped, progress)
    queue: list[tuple[_Prepared, int]] = []
    for p in prepared:
        if p.key in rows:
            continue
        if p.task is None:
            rows[p.key] = _row(p.cell, p.key, None, status="failed", error=p.error, attempts=0, worker="")
            tally.finished(failed=True)
            continue
        queue.append((p, 1))

    def flush() -> None:
        ordered = [rows[p.key] for p in prepared if p.key in rows]
        _write(_frame([*ordered, *foreign], axes), results_path)

    try:
        _execute(executor, queue, rows, tally, flush, flush_s)
    finally:
        flush()
    frame = _frame([rows[p.key] for p in prepared], axes)
    report_path = None
    if report:
        report_path = write_sweep_report(frame, spec, folder / REPORT_FILE)
    return SweepOutcome(
        results=frame,
        results_path=results_path,
        report_path=report_path,
        cells=total,
        skipped=skipped,
        ran=total - skipped - sum(1 for p in prepared if p.task is None),
        failed=int((frame["status"] == "failed").sum()) if not frame.empty else 0,
        seconds=time.perf_counter() - t0,
    )
