"""The sweep report: one self-contained HTML file (plotly.js inlined) over ``results.parquet``.

What a reader of a sweep wants to see, each answering one question:

1. *Where does flexibility pay?* Flexibility capture, ``(profit − always) / (perfect − always)``,
   as a heatmap over two chosen axes (``[report] heatmap``; default: the first two axes with more
   than one value, policy aside), one panel per policy. ``perfect`` (1 by definition) and
   ``always`` (0) are left out when other policies are present. Where more axes vary, a tile is
   the mean over them (the title says so).
2. *Where is the money?* Profit (USD million) on the same axes, one panel per policy.
3. *What is the money made of?* The revenue mix (every ``revenue_usd.*`` column) per cell.
4. *Where does mpc fall short?* The mpc cells whose flexibility capture is below
   ``[report] mpc_flex_capture_bar``, with the threshold rule's capture in the same scenario.
5. *What failed?* Every failed cell with its error and attempts.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from drakewell.report import chart_sections, plotly_modules, write_page
from drakewell.sweep.spec import PriceSource, Scalar, SweepSpec

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

__all__ = ["below_bar", "build_figures", "heatmap_axes", "write_sweep_report"]

REFERENCE_POLICIES = ("perfect", "always")


def heatmap_axes(spec: SweepSpec) -> tuple[str, str] | None:
    """The two axes of the heatmaps: the SPEC's choice, else the first two varied axes (policy last)."""
    if spec.heatmap is not None:
        return spec.heatmap
    varied = [name for name, values in spec.axes if len(values) > 1 and name != "policy"]
    if len(varied) >= 2:
        return varied[0], varied[1]
    if len(varied) == 1 and "policy" in spec.axis_names:
        return varied[0], "policy"
    return None


def _levels(spec: SweepSpec, axis: str) -> list[Scalar]:
    for name, values in spec.axes:
        if name == axis:
            return [v.label if isinstance(v, PriceSource) else v for v in values]
    return []


def _heatmap(frame: pd.DataFrame, spec: SweepSpec, column: str, title: str, scale: float, fmt: str) -> Figure:
    go, make_subplots = plotly_modules()

    axes = heatmap_axes(spec)
    assert axes is not None
    x_axis, y_axis = axes
    ok = frame[frame["status"] == "ok"]
    panels: list[str | None] = [None]
    if "policy" in spec.axis_names and "policy" not in axes:
        panels = [str(p) for p in _levels(spec, "policy")]
        if column == "flex_capture" and any(p not in REFERENCE_POLICIES for p in panels):
            panels = [p for p in panels if p not in REFERENCE_POLICIES]
    others = [a for a in spec.axis_names if a not in (*axes, "policy") and len(_levels(spec, a)) > 1]
    suffix = f" (mean over {', '.join(others)})" if others else ""
    xs, ys = _levels(spec, x_axis), _levels(spec, y_axis)
    cols = min(len(panels), 2)
    rows = -(-len(panels) // cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[f"policy {p}" if p else "" for p in panels],
        horizontal_spacing=0.12,
        vertical_spacing=0.18,
    )
    values = pd.to_numeric(ok[column], errors="coerce") / scale if column in ok.columns else pd.Series()
    data = ok.assign(_v=values) if column in ok.columns else ok.assign(_v=float("nan"))
    for i, panel in enumerate(panels):
        part = data if panel is None else data[data["policy"].astype(str) == panel]
        grid = part.groupby([y_axis, x_axis], sort=False)["_v"].mean()
        z = [[grid.get((y, x), float("nan")) for x in xs] for y in ys]
        fig.add_trace(
            go.Heatmap(
                x=[str(x) for x in xs],
                y=[str(y) for y in ys],
                z=z,
                coloraxis="coloraxis",
                texttemplate=f"%{{z:{fmt}}}",
                hovertemplate=f"{x_axis}=%{{x}}<br>{y_axis}=%{{y}}<br>{title}: %{{z:{fmt}}}<extra></extra>",
            ),
            row=i // cols + 1,
            col=i % cols + 1,
        )
    fig.update_xaxes(title_text=x_axis, type="category")
    fig.update_yaxes(title_text=y_axis, type="category")
    fig.update_layout(
        title=f"{title} over {x_axis} × {y_axis}{suffix}",
        coloraxis={"colorscale": "Viridis"},
        height=max(360, 320 * rows),
    )
    return fig


def _revenue_mix(frame: pd.DataFrame, spec: SweepSpec) -> Figure:
    go, _ = plotly_modules()

    ok = frame[frame["status"] == "ok"]
    columns = [c for c in ok.columns if c.startswith("revenue_usd.")]
    labels = [", ".join(f"{a}={row[a]}" for a in spec.axis_names) or "base" for _, row in ok.iterrows()]
    fig = go.Figure()
    for column in columns:
        fig.add_trace(
            go.Bar(x=labels, y=(pd.to_numeric(ok[column]) / 1e6).round(4), name=column.split(".", 1)[1])
        )
    fig.update_layout(
        barmode="stack",
        title="Revenue mix per cell (USD million)",
        yaxis_title="USD million",
        xaxis={"tickangle": -60, "automargin": True},
        legend={"orientation": "h", "y": 1.08},
        height=520,
    )
    return fig


def below_bar(frame: pd.DataFrame, spec: SweepSpec) -> pd.DataFrame:
    """The mpc cells whose flexibility capture is below the bar, with threshold's in the same scenario."""
    if "policy" not in frame.columns or "flex_capture" not in frame.columns:
        return pd.DataFrame()
    ok = frame[frame["status"] == "ok"]
    flex = pd.to_numeric(ok["flex_capture"], errors="coerce")
    mpc = ok[(ok["policy"] == "mpc") & (flex < spec.mpc_flex_capture_bar)]
    scenario = [a for a in spec.axis_names if a != "policy"]
    out = mpc[[*scenario, "flex_capture", "profit_usd"]].copy() if "profit_usd" in mpc.columns else mpc
    if "policy" in spec.axis_names and "threshold" in set(ok["policy"]):
        rule = ok[ok["policy"] == "threshold"][[*scenario, "flex_capture"]]
        rule = rule.rename(columns={"flex_capture": "threshold_flex_capture"})
        out = (
            out.merge(rule, on=scenario, how="left")
            if scenario
            else out.assign(
                threshold_flex_capture=rule["threshold_flex_capture"].iloc[0] if len(rule) else None
            )
        )
    return out.sort_values("flex_capture").reset_index(drop=True)


def build_figures(frame: pd.DataFrame, spec: SweepSpec) -> dict[str, Figure]:
    """The report's figures by id (a chart without data is left out)."""
    figures: dict[str, Figure] = {}
    ok = frame[frame["status"] == "ok"] if not frame.empty else frame
    if heatmap_axes(spec) is not None and not ok.empty:
        if "flex_capture" in ok.columns:
            figures["flex"] = _heatmap(frame, spec, "flex_capture", "Flexibility capture", 1.0, ".3f")
        if "profit_usd" in ok.columns:
            figures["profit"] = _heatmap(frame, spec, "profit_usd", "Profit (USD million)", 1e6, ".2f")
    if not ok.empty and any(c.startswith("revenue_usd.") for c in ok.columns):
        figures["revenue"] = _revenue_mix(frame, spec)
    return figures


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p class='none'>none</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: object) -> str:
    if isinstance(v, float):
        if pd.isna(v):
            return "—"
        return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.0f}"
    return str(v)


def write_sweep_report(frame: pd.DataFrame, spec: SweepSpec, path: str | Path) -> Path:
    """Write the sweep's HTML report and return its path."""
    figures = build_figures(frame, spec)
    charts = chart_sections(figures, margin={"t": 70, "l": 70, "r": 40, "b": 60})
    failed = frame[frame["status"] == "failed"] if not frame.empty else frame
    failed_cols: Sequence[str] = [*spec.axis_names, "error", "attempts"]
    below = below_bar(frame, spec)
    bar = spec.mpc_flex_capture_bar
    ok = int((frame["status"] == "ok").sum()) if not frame.empty else 0
    facts = pd.DataFrame(
        [
            {"fact": "SPEC", "value": spec.source},
            {"fact": "cells", "value": f"{len(frame):,}"},
            {"fact": "ok / failed", "value": f"{ok:,} / {len(failed):,}"},
            {"fact": "axes", "value": " × ".join(f"{n} ({len(v)})" for n, v in spec.axes) or "none"},
        ]
    )
    return write_page(
        path,
        title=f"Sweep {spec.name}",
        css=_CSS,
        body="<p class='lede'>One backtest per cell; hover any chart for values.</p>"
        + _table(facts)
        + charts
        + f"<h2 id='below-bar'>mpc below the bar (flexibility capture &lt; {bar:g})</h2>"
        + _table(below)
        + "<h2 id='failed'>Failed cells</h2>"
        + _table(failed[[c for c in failed_cols if c in failed.columns]]),
    )


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #111827; }
h1 { margin-bottom: 0.2rem; } .lede, .none { color: #4b5563; }
section.chart { margin: 1.5rem 0; border: 1px solid #e5e7eb; border-radius: 8px; padding: 0.5rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 0.3rem 0.8rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
"""
