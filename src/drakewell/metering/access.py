"""Who may change the meter store over HTTP: the operator key and gateway (ingest) keys.

- The **operator key** may close epochs and ingest readings of any node.
- A **gateway key** may ingest readings only: of the nodes it is bound to, or of any registered
  node when it is bound to none (a site gateway relaying its whole fleet).

Anyone may read (epochs, proofs, KPIs) and check a proof. Keys travel as ``Authorization: Bearer
KEY`` (or ``X-API-Key``), never in cookies, so a web page the operator visits cannot make the
browser close an epoch (:mod:`drakewell.core.httpguard`). Readings are signed by their nodes whatever
key carried them: a key decides who may *submit*, the signature what is true.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from drakewell.core.errors import MeteringError
from drakewell.core.httpguard import KeyRing
from drakewell.metering.readings import normalize_address

Role = Literal["operator", "gateway"]


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its role, key name, and the nodes it may ingest for (``None``: any)."""

    role: Role
    name: str
    nodes: frozenset[str] | None = None

    def may_ingest_for(self, node: str) -> bool:
        return self.role == "operator" or self.nodes is None or node in self.nodes


@dataclass
class MeterAccess:
    """The meter API's keys (kept as SHA-256 digests)."""

    _ring: KeyRing = field(default_factory=KeyRing)
    _roles: dict[str, Caller] = field(default_factory=dict)

    @classmethod
    def of(
        cls, operator_key: str, gateway_keys: Mapping[str, tuple[str, Iterable[str] | None]] | None = None
    ) -> MeterAccess:
        """``gateway_keys``: name -> (key, nodes it may ingest for, or ``None`` for any node)."""
        access = cls()
        access._add(Caller("operator", "operator"), operator_key)
        for name, (key, nodes) in (gateway_keys or {}).items():
            bound = None if nodes is None else frozenset(normalize_address(n) for n in nodes)
            access._add(Caller("gateway", name, bound), key)
        return access

    def _add(self, caller: Caller, key: str) -> None:
        if caller.name in self._roles:
            raise MeteringError(f"two meter keys are named {caller.name!r}", hint="name each key once")
        try:
            self._ring.add(caller.name, key)
        except ValueError as exc:
            raise MeteringError(str(exc), hint="generate keys with secrets.token_urlsafe(32)") from None
        self._roles[caller.name] = caller

    def caller(self, key: str | None) -> Caller | None:
        """Who presents ``key`` (``None``: nobody we know)."""
        name = self._ring.name_of(key)
        return None if name is None else self._roles[name]
