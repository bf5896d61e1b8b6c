"""dtql: Diffusion Trusted Q-Learning for offline RL, in JAX."""

__version__ = "0.1.0"
