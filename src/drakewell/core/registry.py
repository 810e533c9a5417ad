"""Named factories of one kind (dispatch policies, routing policies): one rule for every registry.

A name is registered once (a second registration under it is refused, so a plug-in cannot silently
replace a built-in); asking for an unknown name raises the registry's error with the known names in
its hint; ``make(name, **params)`` calls the factory and turns a wrong keyword into the same error.
A registry is a ``dict`` of its factories in registration order, so tests can add one temporarily
(``monkeypatch.setitem``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from drakewell.core.errors import DrakewellError

T = TypeVar("T")


class Registry(dict[str, Callable[..., T]], Generic[T]):
    """Factories of ``kind`` by name. ``unknown`` is raised for a name nobody registered, ``refused``
    for a taken name or parameters the factory does not take; ``choices`` ends the hint that lists
    the names (e.g. ``" or 'all'"`` where a command accepts that too)."""

    def __init__(
        self,
        kind: str,
        *,
        unknown: type[DrakewellError],
        refused: type[DrakewellError] | None = None,
        choices: str = "",
    ) -> None:
        super().__init__()
        self.kind = kind
        self.unknown = unknown
        self.refused = refused or unknown
        self.choices = choices

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: make ``factory`` available under ``name`` (refused when the name is taken)."""

        def wrap(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self:
                taken = f"a {self.kind} named {name!r} is already registered"
                raise self.refused(taken, hint="pick another name")
            self[name] = factory
            return factory

        return wrap

    def factory(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name``; ``unknown`` with the known names otherwise."""
        try:
            return self[name]
        except KeyError:
            raise self.unknown(
                f"unknown {self.kind} {name!r}", hint=f"use one of: {', '.join(self)}{self.choices}"
            ) from None

    def make(self, name: str, **params: object) -> T:
        """A fresh object from the factory under ``name``, given ``params``."""
        factory = self.factory(name)
        try:
            return factory(**params)
        except TypeError as exc:
            if params:
                raise self.refused(
                    f"bad parameters for {self.kind} {name!r}: {exc}", hint="check the parameter names"
                ) from None
            raise
