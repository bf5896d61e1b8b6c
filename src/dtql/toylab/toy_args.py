"""The flags of `dtql toy` (``ToyArgs``: which run, and the training settings) and their check.

Its own module because both the training (``toy_config``) and the runner read it."""

from __future__ import annotations

from dataclasses import dataclass

from dtql.config import PolicyKind
from dtql.toylab.scenarios import SCENARIOS, Reg


@dataclass(frozen=True)
class ToyArgs:
    """`dtql toy`: the 2D bandit experiments. Without --scenario, the whole suite (Figures 1, 2,
    3/6, the implicit-policy trust-region grid, metrics.json and metrics.md in --out)."""

    scenario: str | None = None
    """Run one scenario only: 25g-far, 25g-hard, 25g-near, swiss-far or swiss-near."""
    reg: Reg = "tr"
    """With --scenario: behaviour regulariser, trust region (DTQL, Eq. 4) or KL (Appendix D)."""
    policy: PolicyKind | None = None
    """With --scenario: one-step policy; default gaussian for tr, implicit for kl (kl needs it)."""
    q_term: bool = True
    """With --scenario: False trains the regulariser alone, without the Q term (Figure 2)."""
    json: bool = False
    """With --scenario: print only the run's metrics, as one JSON object."""
    out: str = "toy_out"
    """Folder for the figures and metrics files (created if missing)."""
    seed: int = 0
    """Seed of the datasets and of every run; a scenario run alone repeats its suite row."""
    batch_size: int = 128
    """Minibatch drawn with replacement from the 10,000 actions (the paper: full batch)."""
    tr_pretrain_steps: int = 0
    """Trust region: steps training only the BC model and critics first (released toy code: 0)."""
    tr_steps: int = 3500
    """Trust region, Gaussian policy: steps training critics, BC model and policy together."""
    tr_implicit_steps: int = 1500
    """Trust region, implicit policy: the same, shorter (it settles on one mode early)."""
    kl_bc_steps: int = 4000
    """KL: steps fitting the BC model alone, once per dataset (Algorithm 2's first loop); the
    real score must see all modes before the generator copies it."""
    kl_pretrain_steps: int = 1000
    """KL: steps training only the BC model and critics before the generator copies them."""
    kl_steps: int = 1000
    """KL: steps of the main phase (critics, generator, fake model)."""
    alpha: float = 1.0
    """Weight of the regulariser against the Q term (Eq. 5); the released toy code uses 1."""
    lr: float = 3e-3
    """Adam learning rate of the BC model, the critics and the trust-region policies."""
    kl_lr: float = 3e-4
    """Adam learning rate of the KL generator and fake model (3e-3 collapsed the generator)."""


RUN_FIELDS = ("scenario", "reg", "policy", "q_term", "json", "out")
"""ToyArgs fields that pick a run or an output, not a setting (each record names its run)."""


def check_args(args: ToyArgs) -> str | None:
    """The first problem with ``args`` as a one-line message, or None."""
    if args.scenario is not None and args.scenario not in SCENARIOS:
        return f"unknown scenario {args.scenario!r}; expected one of {', '.join(SCENARIOS)}"
    if args.reg == "kl" and args.policy == "gaussian":
        return "--reg kl needs the implicit policy (--policy implicit)"
    for name in ("batch_size", "tr_steps", "tr_implicit_steps", "kl_steps"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')} must be at least 1"
    for name in ("tr_pretrain_steps", "kl_bc_steps", "kl_pretrain_steps"):
        if getattr(args, name) < 0:
            return f"--{name.replace('_', '-')} must be at least 0"
    return None
