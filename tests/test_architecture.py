"""The package's import graph follows the data flow: every import points to an earlier layer.

The layers are those of docs/ARCHITECTURE.md. A module may import its own package and any package of
a lower layer, never one of its own layer or above, at module level or inside a function (a late
import hides a dependency; it does not remove it). A package's ``cli.py`` is its command-line edge
and may also import packages of its own layer or below the application layer (the shared site file
is an input of every command).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import drakewell

ROOT = Path(drakewell.__file__).parent

LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),  # errors, units, the data setting, Merkle trees, tables, the HTTP guard
    ("store",),  # one database schema
    ("catalog",),  # hardware as data
    ("inputs",),  # the outside world's data
    ("site",),  # one site, validated, with its on-site plants
    (
        "dispatch",
        "metering",
        "chain",
        "routing",
        "campaigns",
        "report",
    ),  # decide, measure, settle, route, pay
    ("exchange", "fleet", "proofs", "finance", "sweep"),  # build on one stage each
    ("live",),  # several stages at once
    ("demo", "api"),  # whole runs and the services that show them
    ("cli", "__init__", "__main__"),  # the front door
)
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}
APPLICATION = LAYER_OF["demo"]


def _unit(path: Path) -> str:
    """``dispatch`` for ``dispatch/model.py``, ``core`` for ``core/units.py``."""
    return path.relative_to(ROOT).with_suffix("").parts[0]


def _imported_units(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level drakewell unit) of every drakewell import in the tree, at any depth."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "drakewell":
                continue
            if len(parts) > 1:
                found.append((node.lineno, parts[1]))
            else:  # from drakewell import x
                found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "drakewell" and len(parts) > 1:
                    found.append((node.lineno, parts[1]))
    return found


def _violations() -> list[str]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        unit = _unit(path)
        if unit not in LAYER_OF:
            out.append(f"{path.relative_to(ROOT)}: {unit!r} has no layer in LAYERS")
            continue
        mine = LAYER_OF[unit]
        is_cli = path.name == "cli.py"
        for line, target in _imported_units(ast.parse(path.read_text(encoding="utf-8"))):
            if target == unit or target == "__version__":
                continue
            theirs = LAYER_OF.get(target)
            if theirs is None:
                out.append(f"{path.relative_to(ROOT)}:{line}: imports unknown unit {target!r}")
            elif theirs < mine or (is_cli and theirs < APPLICATION):
                continue
            else:
                where = f"{path.relative_to(ROOT)}:{line}"
                out.append(f"{where}: {unit} (layer {mine}) imports {target} (layer {theirs})")
    return out


def test_every_unit_has_a_layer() -> None:
    units = {_unit(p) for p in ROOT.rglob("*.py")}
    assert units <= set(LAYER_OF), sorted(units - set(LAYER_OF))


def test_imports_point_to_earlier_layers() -> None:
    bad = _violations()
    assert not bad, "imports against the data flow:\n" + "\n".join(bad)


def test_the_check_sees_a_back_reference() -> None:
    tree = ast.parse("def f():\n    from drakewell.exchange import Engine\n")
    assert _imported_units(tree) == [(2, "exchange")]
    assert LAYER_OF["metering"] < LAYER_OF["exchange"]  # so metering importing it would be reported


@pytest.mark.parametrize("module", sorted(p.name for p in (ROOT / "core").glob("*.py")))
def test_core_imports_nothing_else_of_drakewell(module: str) -> None:
    tree = ast.parse((ROOT / "core" / module).read_text(encoding="utf-8"))
    targets = {target for _, target in _imported_units(tree)}
    assert targets <= {"core"}, targets
