"""dtql: Diffusion Trusted Q-Learning for offline RL, in JAX.

From Python (docs/api.md)::

    import dtql
    run = dtql.train("hopper-medium-v2", algo="dtql", steps=20_000)
    policy = dtql.load_policy(run.run_dir)   # numpy observations -> numpy actions
    data = dtql.load_dataset("hopper-medium-v2")

Maths at the bottom (``config``, ``presets``, ``edm``, ``networks``, ``losses``), the algorithms
on it (``algos``), then data, environments and evaluation (``data``, ``envs``, ``evaluation``),
then the apps (``run``, ``toylab``, ``collect``, ``sweeps``, ``reports``), the Python API
(``api``) and the command line (``cli``) over it. Imports point down only; the README's Layout
section maps every module.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# The API, imported on first use: `import dtql` (and every `dtql` command) stays quick.
_API = (
    "Policy",
    "TrainedRun",
    "evaluate",
    "load_dataset",
    "load_policy",
    "report",
    "resume",
    "sweep",
    "train",
    "train_config",
)
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from dtql import api

        return getattr(api, name)
    raise AttributeError(f"module 'dtql' has no attribute {name!r}")
