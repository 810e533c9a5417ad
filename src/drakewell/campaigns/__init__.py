"""Incentive campaigns: rules (TOML) → eligibility → exact pools → payouts, audit and claim tree.

``load_rules`` and ``load_data`` read the inputs, ``run_campaign`` applies the rules,
``write_outputs`` writes ``payouts.csv``, ``audit.jsonl``, ``claims.json`` (Merkle root and
proofs for ``MerkleDistributor``) and ``summary.json``.
"""

from drakewell.campaigns.data import load_data
from drakewell.campaigns.engine import claims_tree, run_campaign, write_outputs
from drakewell.campaigns.rules import load_rules

__all__ = ["claims_tree", "load_data", "load_rules", "run_campaign", "write_outputs"]
