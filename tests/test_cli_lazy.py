"""The top-level command line loads a package's commands only when they run."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner

from drakewell.cli import _COMMANDS, app, load_command


@pytest.mark.parametrize("name", sorted(_COMMANDS))
def test_the_listed_help_is_the_command_s_own(name: str) -> None:
    entry = _COMMANDS[name]
    module = importlib.import_module(entry.module)
    command = load_command(name)
    assert command is not None and command.name == name
    own = (command.help or "").strip().splitlines()[0]
    assert entry.help == own, f"{name}: the table says {entry.help!r}, {entry.module} says {own!r}"
    if not entry.merged:
        sub = typer.main.get_group(getattr(module, entry.attr))
        assert isinstance(command, TyperGroup)
        assert sorted(command.list_commands(None)) == sorted(sub.list_commands(None))  # type: ignore[arg-type]


def test_help_lists_every_command_without_importing_them() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from drakewell.cli import app\n"
        "out = CliRunner().invoke(app, ['--help'])\n"
        "assert out.exit_code == 0, out.output\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('drakewell.') and m.count('.') >= 1)\n"
        "print(' '.join(loaded))\n"
        "print('PANDAS' if 'pandas' in sys.modules else 'NO-PANDAS')\n"
        "print(out.output)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded, pandas, listing = out.split("\n", 2)
    assert set(loaded.split()) <= {"drakewell.cli", "drakewell.core", "drakewell.core.errors"}, loaded
    assert pandas == "NO-PANDAS"
    for name in [*_COMMANDS, "version"]:
        assert f" {name} " in listing


def test_a_sub_command_runs_and_an_unknown_one_is_refused() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["meter", "--help"])
    assert out.exit_code == 0 and "keygen" in out.output and "--install-completion" not in out.output
    out = runner.invoke(app, ["no-such-command"])
    assert out.exit_code != 0 and "No such command" in out.output
