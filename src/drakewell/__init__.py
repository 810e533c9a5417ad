"""Drakewell: a compute capital market in one package.

Dispatch power at hybrid AI/bitcoin sites, meter what nodes deliver, tokenize compute assets on an
EVM chain, trade GPU time, route inference to edge nodes, and run incentive campaigns.
"""

from drakewell.core.errors import DrakewellError

__version__ = "0.1.0"
__all__ = ["DrakewellError", "__version__"]
