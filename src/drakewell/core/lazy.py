"""Package front doors that import on first use.

A package's ``__init__`` lists its public names in ``__all__`` and says, in one table, which module
defines each; :func:`lazy_exports` turns that table into the package's module-level ``__getattr__``
(PEP 562), so ``import drakewell.sweep`` (which every ``drakewell`` start does through the CLI) costs
nothing until a name is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], object]:
    """``__getattr__`` for ``package``: ``where[name]`` is the module that defines ``name``."""

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__


__all__ = ["lazy_exports"]
