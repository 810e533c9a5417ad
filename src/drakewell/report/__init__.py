"""The HTML report of a run: one self-contained file of plotly charts and tables.

``write_report(path, ...)`` takes plain records (the dispatch ledger frame, the dispatch summary's
JSON and lists of rows for leases and investors) and writes one HTML file with plotly.js inlined,
so it opens offline; :func:`chart_sections` and :func:`write_page` are its page parts, shared with
the sweep's report. Charts, each answering one question at a glance:

1. *Where did the power go?* Stacked area of MW to inference, training, spot AI, mining and
   curtailed capacity, with the real-time price on a second axis.
2. *Where did the money come from?* Revenue by source against energy cost and charges.
3. *What did flexibility earn?* Curtailment credits per day.
4. *Did buyers get what they paid for?* Delivered vs contracted GPU-hours per lease.
5. *What do investors hold?* NAV and yield per investor.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pandas as pd

from drakewell.core.jsontypes import JsonMapping

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

__all__ = ["build_figures", "chart_sections", "plotly_modules", "write_page", "write_report"]

Rows = Sequence[JsonMapping]


def plotly_modules() -> tuple[ModuleType, Callable[..., Figure]]:
    """plotly's ``graph_objects`` and ``make_subplots``, imported on first use: plotly takes about
    2 s to import, and this package (its ``RunDir``) is also read by servers that draw nothing."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    return go, make_subplots


_POWER_SERIES = (
    ("ai_inference_mw", "AI inference", "#1f77b4"),
    ("ai_training_mw", "AI training", "#6baed6"),
    ("ai_spot_mw", "AI spot rentals", "#9ecae1"),
    ("mining_mw", "Bitcoin mining", "#f59e0b"),
    ("curtailed_mw", "Curtailed (sold back)", "#9ca3af"),
)


def _power_figure(ledger: pd.DataFrame) -> Figure:
    go, make_subplots = plotly_modules()

    hourly = ledger.set_index("interval_start_utc")
    cols = [c for c, _, _ in _POWER_SERIES if c in hourly.columns]
    agg = hourly[[*cols, "price_usd_per_mwh"]].resample("1h").mean()
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for col, label, colour in _POWER_SERIES:
        if col in agg.columns:
            fig.add_trace(
                go.Scatter(
                    x=agg.index,
                    y=agg[col].round(3),
                    name=label,
                    stackgroup="power",
                    line={"width": 0.5, "color": colour},
                ),
                secondary_y=False,
            )
    fig.add_trace(
        go.Scatter(
            x=agg.index,
            y=agg["price_usd_per_mwh"].round(2),
            name="Real-time price",
            line={"color": "#dc2626", "width": 1},
        ),
        secondary_y=True,
    )
    fig.update_layout(
        title="Power split (MW, hourly mean) against the real-time price",
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.15},
    )
    fig.update_yaxes(title_text="MW (IT power)", secondary_y=False)
    fig.update_yaxes(title_text="USD/MWh", secondary_y=True)
    return fig


def _number(obj: object, key: str) -> float:
    """``obj[key]`` as a float: 0.0 where ``obj`` is no JSON object or holds no number there."""
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return float(value) if isinstance(value, int | float) else 0.0


def _revenue_figure(summary: JsonMapping, ledger: pd.DataFrame) -> Figure:
    go, _ = plotly_modules()

    revenue = summary.get("revenue_usd")
    labels = ["AI", "Mining", "Reserves", "Curtailment credits", "Energy cost", "4CP charge", "Penalties"]
    values = [
        _number(revenue, "ai"),
        _number(revenue, "mining"),
        _number(revenue, "reserves"),
        _number(revenue, "curtailment_credits"),
        -_number(summary, "energy_cost_usd"),
        -float(ledger["four_cp_cost_usd"].sum()) if "four_cp_cost_usd" in ledger else 0.0,
        -float(ledger["penalty_usd"].sum()) if "penalty_usd" in ledger else 0.0,
    ]
    colours = ["#16a34a" if v >= 0 else "#dc2626" for v in values]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=[round(v) for v in values],
            marker_color=colours,
            text=[f"{'-' if v < 0 else ''}${abs(v) / 1e6:,.2f}M" for v in values],
            textposition="outside",
        )
    )
    fig.update_layout(
        title=f"Revenue by source and costs (USD); profit ${_number(summary, 'profit_usd') / 1e6:,.2f}M",
        yaxis_title="USD",
    )
    return fig


def _credits_figure(ledger: pd.DataFrame) -> Figure:
    go, _ = plotly_modules()

    daily = ledger.set_index("interval_start_utc")["curtailment_credits_usd"].resample("1D").sum()
    fig = go.Figure(go.Bar(x=daily.index, y=daily.round(2), marker_color="#9333ea", name="credits"))
    fig.update_layout(
        title=f"Curtailment credits per day (USD); total ${daily.sum():,.0f}", yaxis_title="USD"
    )
    return fig


def _leases_figure(leases: Rows) -> Figure:
    go, _ = plotly_modules()

    names = [str(row["lease"]) for row in leases]
    fig = go.Figure(
        [
            go.Bar(
                x=names,
                y=[row["contracted_gpu_hours"] for row in leases],
                name="Contracted",
                marker_color="#cbd5e1",
            ),
            go.Bar(
                x=names,
                y=[row["delivered_gpu_hours"] for row in leases],
                name="Delivered (proven)",
                marker_color="#2563eb",
            ),
        ]
    )
    fig.update_layout(
        title="Delivered vs contracted GPU-hours per lease",
        barmode="group",
        yaxis_title="GPU-hours",
        xaxis_title="lease",
    )
    return fig


def _investors_figure(investors: Rows) -> Figure:
    go, make_subplots = plotly_modules()

    names = [str(row["investor"]) for row in investors]
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Holding value at NAV (USD)", "Cash yield on cost, annualised")
    )
    fig.add_trace(
        go.Bar(x=names, y=[row["value_usd"] for row in investors], marker_color="#0891b2", name="value"),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=names,
            y=[row["yield"] for row in investors],
            marker_color="#65a30d",
            name="yield",
            text=[f"{_number(row, 'yield'):.1%}" for row in investors],
            textposition="outside",
        ),
        row=1,
        col=2,
    )
    fig.update_layout(title="Investors: NAV and yield", showlegend=False)
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    return fig


def _renewables_figure(ledger: pd.DataFrame) -> Figure:
    """Daily on-site renewable energy: used by the load, exported, curtailed (MWh)."""
    go, _ = plotly_modules()

    frame = ledger.set_index("interval_start_utc")
    h = frame["hours"]
    parts = (
        ("renewable_self_consumed_mw", "Used on site", "#16a34a"),
        ("renewable_export_mw", "Exported at real time", "#0ea5e9"),
        ("renewable_curtailed_mw", "Curtailed", "#9ca3af"),
    )
    fig = go.Figure()
    for col, label, colour in parts:
        daily = (frame[col] * h).resample("1D").sum()
        fig.add_trace(go.Bar(x=daily.index, y=daily.round(2), name=label, marker_color=colour))
    fig.update_layout(
        barmode="stack",
        title="Behind-the-meter renewables (MWh per day)",
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.15},
    )
    fig.update_yaxes(title_text="MWh")
    return fig


def build_figures(
    *,
    ledger: pd.DataFrame,
    summary: JsonMapping,
    leases: Rows = (),
    investors: Rows = (),
) -> dict[str, Figure]:
    """The report's plotly figures by id (empty inputs leave their chart out)."""
    figures = {
        "power": _power_figure(ledger),
        "revenue": _revenue_figure(summary, ledger),
        "credits": _credits_figure(ledger),
    }
    if "renewable_generation_mw" in ledger and float(ledger["renewable_generation_mw"].sum()) > 0:
        figures["renewables"] = _renewables_figure(ledger)
    if leases:
        figures["leases"] = _leases_figure(leases)
    if investors:
        figures["investors"] = _investors_figure(investors)
    return figures


def _table(rows: Rows) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row.values()) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.2f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def chart_sections(figures: Mapping[str, Figure], **layout: object) -> str:
    """The figures as ``<section class="chart">`` blocks (``layout`` applied to each), plotly.js
    inlined once, in the first."""
    parts = []
    for i, (fid, fig) in enumerate(figures.items()):
        fig.update_layout(template="plotly_white", **layout)
        parts.append(
            f'<section class="chart" id="chart-{fid}">'
            + fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"fig-{fid}")
            + "</section>"
        )
    return "".join(parts)


def write_page(path: str | Path, *, title: str, css: str, body: str) -> Path:
    """Write one self-contained HTML page, ``title`` its title and heading, and return its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{css}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>" + body + "</body></html>",
        encoding="utf-8",
    )
    return out


def write_report(
    path: str | Path,
    *,
    ledger: pd.DataFrame,
    summary: JsonMapping,
    leases: Rows = (),
    investors: Rows = (),
    facts: JsonMapping | None = None,
    title: str = "Drakewell run report",
) -> Path:
    """Write the self-contained HTML report and return its path."""
    figures = build_figures(ledger=ledger, summary=summary, leases=leases, investors=investors)
    charts = chart_sections(figures, height=420, margin={"t": 60, "l": 60, "r": 60, "b": 60})
    facts_rows = [{"fact": k, "value": v} for k, v in (facts or {}).items()]
    return write_page(
        path,
        title=title,
        css=_CSS,
        body=f"<p class='lede'>{html.escape(str(summary.get('policy', '')))} dispatch over "
        f"{summary.get('intervals', len(ledger))} intervals. Hover any chart for values.</p>"
        + _table(facts_rows)
        + charts
        + ("<h2>Leases</h2>" + _table(leases) if leases else "")
        + ("<h2>Investors</h2>" + _table(investors) if investors else "")
        + "<script>window.DRAKEWELL_SUMMARY = "
        + json.dumps(summary, default=str)
        + ";</script>",
    )


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #111827; }
h1 { margin-bottom: 0.2rem; } .lede { color: #4b5563; }
section.chart { margin: 1.5rem 0; border: 1px solid #e5e7eb; border-radius: 8px; padding: 0.5rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 0.3rem 0.8rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
"""
