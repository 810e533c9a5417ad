"""Terminal tables a user can read in an 80-column terminal.

Rich shrinks a table that is wider than the terminal by cutting cells (``perf…``, ``54.4…``).
The CLI's tables are built so that never happens at :data:`TERMINAL_COLUMNS`: :func:`compact_table`
is the house style (no outer frame, one rule under the header, two spaces between columns), units
go in the title, and a command with more figures than fit shows the rest under ``--wide``.
:func:`cut_cells` checks a table: it renders it at a width and returns every cell or header word
that is not shown whole (empty: nothing is cut).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

#: The terminal width every table of the CLI must fit.
TERMINAL_COLUMNS = 80
ELLIPSIS = "…"


def compact_table(*headers: str, title: str | None = None, caption: str | None = None) -> Table:
    """A table in the CLI's compact style: no outer frame, a rule under the header, two spaces
    between columns (``headers``: columns to add, as ``rich.table.Table`` takes them)."""
    return Table(
        *headers,
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )


def render_text(table: Table, width: int = TERMINAL_COLUMNS) -> str:
    """``table`` as plain text, the way a terminal of ``width`` columns shows it."""
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(table)
    return console.export_text()


def cut_cells(table: Table, width: int = TERMINAL_COLUMNS) -> list[str]:
    """The cells and header words of ``table`` that a ``width``-column terminal does not show whole.

    A cell may wrap between words (a header such as ``ratio to perfect`` over two lines is fine),
    but each word must appear unbroken on one line and no line may end in an ellipsis. The last
    column may fold long words such as paths over several lines (``overflow="fold"``): its cells
    must appear in order once line breaks and padding are taken out.
    """
    text = render_text(table, width)
    lines = text.splitlines()
    joined = re.sub(r"[\s\u2500-\u257f]+", "", text)  # without line breaks, padding and box lines
    words: list[str] = []
    folded: list[str] = []
    for k, column in enumerate(table.columns):
        if table.show_header:
            words += _plain(column.header).split()
        for cell in column.cells:
            if column.overflow == "fold" and k == len(table.columns) - 1:
                folded.append(_plain(cell))
            else:
                words += _plain(cell).split()
    cut = [w for w in dict.fromkeys(words) if not any(w in line for line in lines)]
    cut += [c for c in folded if re.sub(r"\s+", "", c) not in joined]
    cut += [line.strip() for line in lines if ELLIPSIS in line or len(line.rstrip()) > width]
    return cut


def chunk_columns(labels: Sequence[str], cell_width: int, fixed_width: int, width: int) -> list[range]:
    """Split ``labels`` into runs of columns that fit ``width`` beside ``fixed_width`` characters
    of row labels, each column ``cell_width`` characters wide (at least one column per run)."""
    per = max(1, (width - fixed_width) // (cell_width + 2))
    return [range(i, min(i + per, len(labels))) for i in range(0, len(labels), per)]


def _plain(renderable: object) -> str:
    if isinstance(renderable, Text):
        return renderable.plain
    return renderable if isinstance(renderable, str) else ""


def emit_json(obj: object, out: Path | None = None) -> None:
    """A command's JSON answer, indented: printed, or written to ``out`` (its folder made)."""
    text = json.dumps(obj, indent=2)
    if out is None:
        print(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


__all__ = ["TERMINAL_COLUMNS", "chunk_columns", "compact_table", "cut_cells", "emit_json", "render_text"]
