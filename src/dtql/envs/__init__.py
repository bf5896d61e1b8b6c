"""Tasks and their simulators.

- ``registry``: every task name, its evaluation env id, reference returns and the normalized
  score; no gymnasium import, so name checks and scores are cheap.
- ``make``: the Gymnasium environments (vector or single) and the adapters that turn their
  observations into D4RL's flat layout.
"""
