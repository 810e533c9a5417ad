"""Proofs of capacity: challenge the machines, not only their signatures.

- :mod:`~drakewell.proofs.gpu`: GPU challenges — a seeded int8 matrix product committed row by row
  in a Merkle tree and spot-checked by recomputing ``k`` random rows; the time to commit bounds
  the node's TOPS from below. :mod:`~drakewell.proofs.arrays` runs the product on NumPy, PyTorch
  or CuPy.
- :mod:`~drakewell.proofs.stratum` and :mod:`~drakewell.proofs.proxy`: miners' hashrate from the
  shares they submit, verified by a Stratum V1 proxy between them and their pool, with an exact
  Poisson interval; :mod:`~drakewell.proofs.emulate` holds an emulated pool and miners.
- What the checks prove becomes per-epoch capacity leaves (verified beside declared) in
  :mod:`drakewell.metering.capacity`: metering closes epochs with their Merkle root and flags the
  nodes that failed a check; :mod:`~drakewell.proofs.rounds` runs the checks of a round.
"""
