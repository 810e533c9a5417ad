"""Foundations every stage shares: errors with hints, money and units, the data setting, the
OpenZeppelin Merkle tree, typed field readers, named registries, shared CLI options, table printing
and the HTTP guard. Imports nothing else of drakewell."""
