"""dtql: Diffusion Trusted Q-Learning for offline RL, in JAX.

Maths at the bottom (``config``, ``presets``, ``edm``, ``networks``, ``losses``), the algorithms
on it (``algos``), then data, environments and evaluation (``data``, ``envs``, ``evaluation``),
then the apps (``run``, ``toylab``, ``collect``) and the command line (``cli``). Imports point
down only; the README's Layout section maps every module.
"""

__version__ = "0.1.0"
