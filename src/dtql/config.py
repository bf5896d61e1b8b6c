"""Typed, frozen configuration: what the learner computes, and how a run is hosted.

- ``LearnerConfig`` is everything the jitted update reads (the algorithm, its schedule, batch
  size and ``AgentConfig``). It is hashable and is the update's static argument, so runs that
  differ only in host settings share compiled code, and the update cannot read a host setting.
- ``RunConfig`` is one training run: task, data, seed, evaluation, logging, output, and its
  ``learner``. Its flags are flat (``--steps``, ``--agent.alpha``): the learner's prefix is
  omitted on the command line.

Defaults are the paper's (and, where the paper is silent, the authors' released code, see
``shared/spec/REFERENCE.md``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Annotated, Literal

import tyro

Algo = Literal["dtql", "kl", "iql", "iql-dtql", "bc", "bc-gaussian"]
PolicyKind = Literal["gaussian", "implicit", "iql_gaussian", "deterministic"]
Critics = Literal["dtql", "iql"]
ImplicitGenerator = Literal["raw", "preconditioned"]
MatmulPrecision = Literal["highest", "default"]
ValueTarget = Literal["target_q", "online_q"]
RewardTransform = Literal["none", "minus_one", "scale_by_return_range"]
ActMode = Literal["mean", "candidates", "diffusion"]


@dataclass(frozen=True)
class EDMConfig:
    """The EDM noise schedule and preconditioning (Appendix C)."""

    sigma_data: float = 0.5
    """Standard deviation of the data the preconditioning assumes."""
    sigma_min: float = 0.002
    """Smallest noise level; sampled sigmas are truncated to [sigma_min, sigma_max]."""
    sigma_max: float = 80.0
    """Largest noise level."""
    log_sigma_loc: float = math.log(0.5)
    """ln(sigma) ~ Logistic(loc, scale); the paper's loc is ln(sigma_data)."""
    log_sigma_scale: float = 0.5
    """Scale of the logistic distribution of ln(sigma)."""
    clamp_denoised: bool = True
    """Clamp the denoiser output D to the action bounds in the losses (released code; the paper
    is silent). --agent.edm.no-clamp-denoised leaves D unclamped."""


@dataclass(frozen=True)
class AgentConfig:
    """Hyperparameters of the learners. Every algorithm reads the fields it needs.

    DTQL (Eq. 5): policy loss = alpha * L_TR - min(Q1, Q2) + entropy_coef * NLL(dataset action).
    Critics (Eqs. 6, 7): IQL with expectile ``expectile`` and soft target-update rate ``tau``
    (the paper writes both as tau; here ``tau`` is only the target-update rate).
    """

    alpha: float = 1.0
    """Weight of the diffusion trust-region loss in the policy loss (Eq. 5)."""
    expectile: float = 0.7
    """IQL expectile of the value loss (Eq. 6); the column Table 4 calls tau."""
    entropy_coef: float = 0.0
    """Weight of the entropy term: NLL of the dataset action under the Gaussian policy (App. E)."""
    discount: float = 0.99
    """Discount gamma of the Q target (Eq. 7)."""
    tau: float = 0.005
    """Soft update rate of the target critics (Algorithm 1, step 4)."""
    lr: float = 3e-4
    """Learning rate of the diffusion model and the one-step policy (Table 4)."""
    critic_lr: float = 3e-4
    """Learning rate of Q1, Q2 and V (fixed in the released code)."""
    lr_decay: bool = False
    """Cosine-anneal the learning rates to 0 over the main phase (Table 4's 'Lr decay')."""
    lr_decay_steps: int | None = None
    """Length of that cosine in main-phase steps; None: the run's --steps. The presets set their
    full schedule (Table 4's epochs x 1000, as the released code's T_max), so a shorter run
    follows the first part of the full run's rate curve."""
    decay_critic_lr: bool = True
    """Whether lr_decay anneals the critics too (released DTQL: every optimiser; IQL: the actor
    only)."""
    policy: PolicyKind = "gaussian"
    """One-step policy: tanh-squashed Gaussian, implicit a = pi(s, eps), IQL's actor (a
    Gaussian around a tanh mean with a state-independent std, density in action space), or
    deterministic a = tanh(MLP(s)) * max_action (the standard BC actor, fitted by MSE)."""
    critics: Critics = "dtql"
    """Critic networks: DTQL's (Q: 3 x Linear-LayerNorm-Mish, V: 3 x Linear-Mish) or IQL's
    (Q and V: 2 x Linear-ReLU, orthogonal initialisation)."""
    value_target: ValueTarget = "target_q"
    """V regresses on min of the target Q (paper, Eq. 6) or of the online Q (released code)."""
    target_update_in_pretrain: bool = True
    """Soft-update the target critics during pretraining too (the released code freezes them)."""
    hidden_dim: int = 256
    """Width of every hidden layer."""
    time_embed_dim: int = 16
    """Size of the sinusoidal embedding of c_noise in the denoiser."""
    mish_after_input_layer: bool = False
    """Diffusion network: a Mish after its first Linear too (the paper's '4-layer MLP with
    Mish'); the released code has none there (default)."""
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    """Clamp of the Gaussian policy's log standard deviation."""
    implicit_noise_scale: float = 2.5
    """Implicit generator's input scale: a = G(scale * z, s, time=scale) (released KL baseline)."""
    implicit_generator: ImplicitGenerator = "raw"
    """The implicit generator as released, the raw network F(scale z, time input scale | s), or
    'preconditioned': the EDM denoiser D(scale z; sigma = scale | s)."""
    kl_train_bc: bool = False
    """KL baseline: keep training the BC model every main step (released code); the default
    freezes it after pretraining, as Algorithm 2 reads."""
    num_candidates: int = 1024
    """Acting by candidate selection: actions drawn from the policy and scored by min target Q."""
    diffusion_candidates: int = 64
    """Acting by diffusion sampling (act_mode diffusion, IDQL's way): actions sampled from the
    behaviour diffusion model per state, the best by min target Q (IDQL uses 32 to 128)."""
    diffusion_sampling_steps: int = 5
    """EDM sampler steps of act_mode diffusion (Heun: 2 steps - 1 denoiser calls); the paper's
    inference comparison is against IDQL's and DQL's 5-step denoising."""
    diffusion_sampling_sigma_max: float = 2.5
    """First noise level of act_mode diffusion's sampler (the implicit generator's scale). The
    model trains on sigma ~ exp(Logistic(ln 0.5, 0.5)), rarely above 15; five steps from
    edm.sigma_max = 80 spend themselves where it never trained (measured on hopper: 26% of
    samples at the action bound, against 9% from 2.5 and 11% with 40 steps from 80)."""
    awr_temperature: float = 3.0
    """IQL baseline: inverse temperature beta of advantage-weighted regression."""
    awr_max_weight: float = 100.0
    """IQL baseline: clip of exp(beta * advantage)."""
    edm: EDMConfig = field(default_factory=EDMConfig)


@dataclass(frozen=True)
class LearnerConfig:
    """What the jitted update sees: the algorithm, its schedule and hyperparameters."""

    algo: Algo = "dtql"
    """dtql, or a baseline on the same networks and critics: kl, iql, bc."""
    pretrain_steps: int = 50_000
    """Steps that train only the diffusion model and the critics."""
    steps: int = 1_000_000
    """Steps of the main phase, after pretraining."""
    batch_size: int = 256
    agent: AgentConfig = field(default_factory=AgentConfig)

    @property
    def total_steps(self) -> int:
        return self.pretrain_steps + self.steps


@dataclass(frozen=True)
class RunConfig:
    """One training run: data, evaluation, output and the learner; flags override every field."""

    task: str = "hopper-medium-v2"
    """Task preset name (`dtql presets` lists them); fixes the eval env and reference scores."""
    dataset: str | None = None
    """D4RL .hdf5 path or name, Minari id or folder, or .npz; None: the task's default."""
    seed: int = 0
    reward_transform: RewardTransform = "none"
    """Applied once to the dataset on the host: 'minus_one' gives r - 1 (AntMaze);
    'scale_by_return_range' gives r * 1000 / (max - min episode return) (IQL, locomotion)."""
    eval_every: int = 50_000
    """Evaluate every this many steps of the whole run; 0 evaluates only at the end."""
    eval_episodes: int = 10
    act_mode: ActMode = "mean"
    """Evaluation: the policy's deterministic action, the released code's candidate selection,
    or (for comparison) iterative sampling from the behaviour diffusion model, IDQL's way."""
    num_eval_envs: int = 10
    """Parallel envs of the vector env used for evaluation."""
    log_every: int = 1000
    """Steps per jitted chunk; metrics are fetched from the device once per chunk."""
    checkpoint_every: int = 50_000
    out: str | None = None
    """Run folder; None: runs/<task>-<algo>-s<seed>-<time>."""
    matmul_precision: MatmulPrecision = "highest"
    """float32 matmuls on a GPU: 'highest' computes them in full float32 (the CPU's numbers and
    PyTorch's default); 'default' lets XLA use TF32 (faster, ~1e-3 relative error). No effect
    on CPU. Recorded in result.json with the device."""
    # name="" keeps the learner's flags flat: --steps, --agent.alpha (not --learner.steps).
    learner: Annotated[LearnerConfig, tyro.conf.arg(name="")] = field(default_factory=LearnerConfig)


LEARNER_FIELDS = tuple(f.name for f in dataclasses.fields(LearnerConfig))


def replace(cfg, **changes):
    """``dataclasses.replace`` that accepts dotted keys for nested configs ('agent.alpha')."""
    nested: dict[str, dict] = {}
    flat = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    for head, sub in nested.items():
        flat[head] = replace(getattr(cfg, head), **sub)
    return dataclasses.replace(cfg, **flat)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls, data: dict):
    """Rebuild a (nested) config dataclass from ``to_dict`` output; unknown keys are an error."""
    kwargs = {}
    hints = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in hints:
            raise ValueError(f"{cls.__name__}: unknown field {key!r}")
        default = (
            hints[key].default_factory
            if hints[key].default_factory is not dataclasses.MISSING
            else None
        )
        if isinstance(value, dict) and default is not None and dataclasses.is_dataclass(default):
            value = from_dict(default, value)
        kwargs[key] = value
    return cls(**kwargs)
