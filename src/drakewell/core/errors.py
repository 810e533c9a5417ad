"""One exception hierarchy for the whole package.

Every Drakewell error says what was wrong and how to fix it: ``DrakewellError(message, hint=...)``
renders as ``"<message> (hint: <hint>)"``. Each package raises its own subclass so callers can catch
one area without string matching.
"""

from __future__ import annotations


class DrakewellError(Exception):
    """Root of every error Drakewell raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} (hint: {hint})" if hint else message)


class ConfigError(DrakewellError):
    """A setting, environment variable or command-line value is wrong."""


class SiteError(DrakewellError):
    """A site or hardware catalogue file is invalid."""


class InputDataError(DrakewellError):
    """A price, hashprice or other input file is malformed (the message names file and line)."""


class DispatchError(DrakewellError):
    """The dispatch model could not be built or solved."""


class MeteringError(DrakewellError):
    """A reading, epoch or proof is invalid."""


class ChainError(DrakewellError):
    """A contract call reverted, a deployment failed, or a node is unreachable."""


class ExchangeError(DrakewellError):
    """An order, instrument or account operation was refused."""


class RoutingError(DrakewellError):
    """A routing node, latency matrix or gateway request failed."""


class CampaignError(DrakewellError):
    """A campaign rules file or its input data is invalid."""


class StoreError(DrakewellError):
    """The database could not be opened, migrated or written."""


class ProofError(DrakewellError):
    """A capacity challenge, its answer, a share or a capacity record is invalid."""


class SweepError(DrakewellError):
    """A sweep SPEC is invalid, or a sweep could not start (the message names the SPEC key)."""
