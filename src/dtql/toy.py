"""The 2D bandit lab: the paper's toy experiments (Figures 1, 2, 3, 6), drawn and measured.

A bandit has one constant state s = 0 (next state = state, never terminal), 10,000 dataset actions
in 2-D (``dtql.data.toy``) and a reward on actions. Training uses the package's own algorithms
(``dtql.algos``): the same losses, networks, update steps and ``run_steps_jit`` as a D4RL run.

- trust region (``reg='tr'``): DTQL, policy loss alpha * L_TR - min(Q1, Q2) (Eqs. 4, 5), with the
  Gaussian or the implicit one-step policy. As in the authors' toy code, nothing is pretrained:
  critics, diffusion BC model and policy train together from the first step. (With 1000 steps
  of pretraining, the implicit policy stayed on the centre mode where it starts, for every
  reward: the trust region is already sharp before the critic can pull the policy anywhere.)
- KL (``reg='kl'``): the KL baseline (Appendix D, Algorithm 2): the BC model is fitted alone
  (Algorithm 2's first loop, ``kl_bc_steps``, once per dataset), then BC model and critics are
  pretrained on the scenario, then the implicit generator and the fake-score model start from
  the BC weights. (With only 1000 steps of BC fitting, the BC model's own samples were 55%
  off the data manifold, and KL alone diverged to |a| ~ 1e8 within 1250 steps: the real score
  it distils must know the modes first.)

Both use the IQL critics (Eqs. 6, 7). "No Q term" (Figure 2) needs no switch in the algorithms
and is exact: the critics get all-zero parameters and the rewards are zero. Then Q = V = 0
everywhere, every critic gradient is exactly 0 (targets equal predictions), Adam leaves zero
parameters at zero, and the Q term adds exactly nothing to the policy gradient.

Settings (REFERENCE.md, "2D bandit toys"): expectile 0.95, discount 0.99, hidden 128, Adam lr 3e-3,
alpha 1 (the released toy code's weight). Departures, for the time budget (whole suite within 10
minutes on 2 CPU cores) and stability, all flags of ``ToyArgs``: minibatches of ``batch_size`` (128)
drawn with replacement instead of the full 10,000 actions per step; 1500 steps for the
implicit trust-region policy (``tr_implicit_steps``; the Gaussian gets the paper's 3500) and
4000 + 1000 + 1000 for KL (``kl_bc_steps`` + ``kl_pretrain_steps`` + ``kl_steps``); the KL
generator and fake model at ``kl_lr`` = 3e-4 (at 3e-3 the generator collapsed to one point
within 50 steps in our runs).
``MAX_ACTION`` = 15 bounds the Gaussian policy, a = tanh(.) * 15: both datasets lie within it.

Outputs of the suite (``run_toy`` without ``scenario``), in ``out``:
``fig1_trust_region_loss.png``, ``fig2_kl_no_q.png``, ``fig3_tr_vs_kl.png`` (Figures 3 and 6),
``fig_tr_implicit.png``, ``metrics.json`` (settings, definitions, one record per run) and
``metrics.md`` (the table).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dtql.algos import get_algorithm
from dtql.algos.common import (
    Batch,
    Metrics,
    bind_denoiser,
    build_networks,
    run_steps_jit,
    update_denoiser,
)
from dtql.algos.policies import sample_actions
from dtql.config import AgentConfig, PolicyKind, TrainConfig, replace
from dtql.data.toy import DATASETS, GAUSSIAN_STD, gaussian_means, make_actions, make_reward
from dtql.edm import denoise, loss_weight

Reg = Literal["tr", "kl"]

OBS_DIM = 1
ACT_DIM = 2
MAX_ACTION = 15.0
"""Action bound of the Gaussian policy; the data lie within |a_i| < 11.5 (25 Gaussians) and
radius 14.5 (Swiss roll)."""
NUM_POLICY_SAMPLES = 1000
PLOT_LIMIT = 15.0

# --- metric definitions -----------------------------------------------------------------------
OFF_MANIFOLD_DISTANCE = 0.5
"""A sample is off the data manifold if its nearest dataset action is farther than this."""
MODE_RADIUS = 3.0 * GAUSSIAN_STD
"""A sample belongs to a 25-Gaussians mode if it lies within 3 standard deviations (0.9) of the
mode's mean; modes are 5 apart, so a sample belongs to at most one mode."""
MIN_MODE_SHARE = 0.05
"""A mode is covered if at least this share of the samples belongs to it (the issue's metric; an
even spread over all 25 modes gives each 4%, so it counts at most 20 modes)."""
MIN_REACHED_SHARE = 0.01
"""A mode is reached if at least this share (10 of 1000 samples) belongs to it: counts all 25
modes under an even spread, which is what Figure 2's 'covers all modes' claim needs."""
TOP_MODE_TOLERANCE = 0.02
"""Top modes: modes whose mean dataset reward is within this fraction of the between-mode reward
range of the best mode (the four 'far' corners tie)."""


# --- scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    dataset: Literal["25gaussians", "swissroll"]
    reward: Literal["far", "near", "hard"]
    title: str


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("25g-far", "25gaussians", "far", "25 Gaussians, far"),
        Scenario("25g-hard", "25gaussians", "hard", "25 Gaussians, hard"),
        Scenario("25g-near", "25gaussians", "near", "25 Gaussians, near"),
        Scenario("swiss-far", "swissroll", "far", "Swiss roll, far"),
        Scenario("swiss-near", "swissroll", "near", "Swiss roll, near"),
    )
}
"""In the column order of Figures 3 and 6."""


@dataclass(frozen=True)
class Variant:
    """A behaviour regulariser with a one-step policy; ``q_term=False``: regulariser alone."""

    reg: Reg
    policy: PolicyKind
    q_term: bool = True

    @property
    def name(self) -> str:
        return f"{self.reg}-{self.policy}" + ("" if self.q_term else "-noq")

    @property
    def title(self) -> str:
        reg = "trust region" if self.reg == "tr" else "KL"
        return f"{reg} ({self.policy})" + ("" if self.q_term else ", no Q")


TR_GAUSSIAN = Variant("tr", "gaussian")
KL_IMPLICIT = Variant("kl", "implicit")
TR_IMPLICIT = Variant("tr", "implicit")


class Problem(NamedTuple):
    """A scenario's data: the dataset actions [N, 2], rewards [N], the reward on any actions,
    and the dataset as device transitions (constant state 0, never terminal)."""

    scenario: Scenario
    actions: np.ndarray
    rewards: np.ndarray
    reward_fn: Any
    data: Batch


def make_problem(scenario: Scenario, seed: int = 0) -> Problem:
    actions = make_actions(scenario.dataset, seed=seed)
    reward_fn = make_reward(scenario.reward, actions)
    rewards = reward_fn(actions).astype(np.float32)
    n = actions.shape[0]
    states = jnp.zeros((n, OBS_DIM), jnp.float32)
    data = Batch(states, jnp.asarray(actions), jnp.asarray(rewards), states, jnp.zeros(n))
    return Problem(scenario, actions, rewards, reward_fn, data)


# --- configuration and training -------------------------------------------------------------

Phase = Literal["pretrain", "main"]


def toy_config(variant: Variant, args: ToyArgs, phase: Phase = "main") -> TrainConfig:
    """The training config of a variant and phase. It does not depend on the scenario, so one
    compiled update serves every scenario. The KL main phase uses ``args.kl_lr`` for the
    generator and the fake model, the only networks ``agent.lr`` reaches there (Algorithm 2
    does not train the BC model after pretraining); its pretraining uses ``args.lr``."""
    tr = variant.reg == "tr"
    if tr:
        pretrain_steps = args.tr_pretrain_steps
        steps = args.tr_steps if variant.policy == "gaussian" else args.tr_implicit_steps
    else:
        pretrain_steps, steps = args.kl_pretrain_steps, args.kl_steps
    return replace(
        TrainConfig(),
        task="toy-bandit",
        algo="dtql" if tr else "kl",
        seed=args.seed,
        batch_size=args.batch_size,
        pretrain_steps=pretrain_steps,
        steps=steps,
        **{
            "agent.policy": variant.policy,
            "agent.alpha": args.alpha,
            "agent.expectile": 0.95,
            "agent.discount": 0.99,
            "agent.lr": args.lr if tr or phase == "pretrain" else args.kl_lr,
            "agent.critic_lr": args.lr,
            "agent.hidden_dim": 128,
        },
    )


def bc_step(state: Any, batch: Batch, key: jax.Array, cfg: TrainConfig) -> tuple[Any, Metrics]:
    """Algorithm 2's first loop: one step of the BC model alone (Eq. 2); critics untouched."""
    nets = build_networks(cfg.agent, state.act_dim)
    diffusion, loss = update_denoiser(
        state.diffusion, batch.actions, batch.observations, key, nets, cfg, state.max_action
    )
    return state.replace(diffusion=diffusion), {"diffusion/loss": loss}


def fit_bc(problem: Problem, cfg: TrainConfig, steps: int, key: jax.Array) -> Any:
    """A fresh state of ``cfg.algo`` whose BC model has had ``steps`` steps of ``bc_step``.

    It depends on the dataset only (not the reward), so a suite fits it once per dataset."""
    key_init, key_run = jax.random.split(key)
    state = get_algorithm(cfg.algo).init(key_init, cfg, OBS_DIM, ACT_DIM, MAX_ACTION)
    if steps > 0:
        state, _ = run_steps_jit(bc_step, state, problem.data, key_run, cfg, steps)
    return state


def pretrain(problem: Problem, cfg: TrainConfig, key: jax.Array, start: Any = None) -> Any:
    """``start`` (default: a fresh state of ``cfg.algo``) after ``cfg.pretrain_steps``
    pretraining steps (BC model and critics only; none when 0)."""
    algo = get_algorithm(cfg.algo)
    key_init, key_run = jax.random.split(key)
    state = start if start is not None else algo.init(key_init, cfg, OBS_DIM, ACT_DIM, MAX_ACTION)
    if cfg.pretrain_steps > 0:
        state, _ = run_steps_jit(
            algo.pretrain_step, state, problem.data, key_run, cfg, cfg.pretrain_steps
        )
    return state


def train(
    pretrained: Any, problem: Problem, variant: Variant, cfg: TrainConfig, key: jax.Array
) -> tuple[Any, dict[str, float]]:
    """The main phase from a pretrained state of the same algorithm: (final state, mean metrics).

    Goes through the algorithm's ``start_main_phase`` (KL: generator and fake model copy the BC
    weights). Without the Q term, critics and rewards are zeroed first (exact, see above).
    """
    algo = get_algorithm(cfg.algo)
    state, data = pretrained, problem.data
    if not variant.q_term:
        state = state.replace(critics=jax.tree.map(jnp.zeros_like, state.critics))
        data = data._replace(rewards=jnp.zeros_like(data.rewards))
    state = algo.start_main_phase(state, cfg)
    state, metrics = run_steps_jit(algo.train_step, state, data, key, cfg, cfg.steps)
    return state, {k: float(v) for k, v in jax.device_get(metrics).items()}


@partial(jax.jit, static_argnums=(2, 3))
def _policy_samples(policy_params: Any, key: jax.Array, agent: AgentConfig, num: int) -> jax.Array:
    nets = build_networks(agent, ACT_DIM)
    states = jnp.zeros((num, OBS_DIM))
    actions, _ = sample_actions(nets, policy_params, states, key, agent, MAX_ACTION)
    return actions


def policy_samples(
    state: Any, cfg: TrainConfig, key: jax.Array, num: int = NUM_POLICY_SAMPLES
) -> np.ndarray:
    """``num`` stochastic actions of the one-step policy at the state: [num, 2] (unclipped)."""
    return np.asarray(_policy_samples(state.policy.params, key, cfg.agent, num), dtype=np.float64)


# --- metrics ----------------------------------------------------------------------------------


def nearest_distance(points: np.ndarray, reference: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Distance from each of ``points`` [n, 2] to its nearest row of ``reference`` [m, 2]: [n]."""
    points = np.asarray(points, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    out = np.empty(points.shape[0])
    for start in range(0, points.shape[0], chunk):
        block = points[start : start + chunk]
        sq = ((block[:, None, :] - reference[None, :, :]) ** 2).sum(-1)
        out[start : start + chunk] = np.sqrt(sq.min(axis=1))
    return out


def mean_reward_ratio(samples: np.ndarray, reward_fn: Any, data_rewards: np.ndarray) -> float:
    """Mean reward of the samples divided by the dataset's maximum reward (1 = best data action)."""
    return float(np.mean(reward_fn(samples)) / np.max(data_rewards))


def off_manifold_share(
    samples: np.ndarray, data_actions: np.ndarray, threshold: float = OFF_MANIFOLD_DISTANCE
) -> float:
    """Share of samples farther than ``threshold`` from every dataset action."""
    return float(np.mean(nearest_distance(samples, data_actions) > threshold))


def mode_shares(samples: np.ndarray, means: np.ndarray, radius: float = MODE_RADIUS) -> np.ndarray:
    """Share of the samples within ``radius`` of each mode mean: [num_modes]."""
    dist = np.linalg.norm(np.asarray(samples)[:, None, :] - means[None, :, :], axis=-1)
    return (dist <= radius).mean(axis=0)


def modes_covered(
    samples: np.ndarray,
    means: np.ndarray,
    radius: float = MODE_RADIUS,
    min_share: float = MIN_MODE_SHARE,
) -> int:
    """Number of modes that receive at least ``min_share`` of the samples."""
    return int(np.sum(mode_shares(samples, means, radius) >= min_share))


def top_modes(
    data_actions: np.ndarray,
    data_rewards: np.ndarray,
    means: np.ndarray,
    tolerance: float = TOP_MODE_TOLERANCE,
) -> np.ndarray:
    """Indices of the modes with the highest mean dataset reward (ties within ``tolerance`` of
    the between-mode range). Each dataset action belongs to the mode of the nearest mean."""
    labels = np.argmin(np.linalg.norm(data_actions[:, None, :] - means[None], axis=-1), axis=1)
    mode_reward = np.array([data_rewards[labels == m].mean() for m in range(len(means))])
    spread = mode_reward.max() - mode_reward.min()
    return np.flatnonzero(mode_reward >= mode_reward.max() - tolerance * spread)


def top_mode_share(
    samples: np.ndarray, means: np.ndarray, top: np.ndarray, radius: float = MODE_RADIUS
) -> float:
    """Share of the samples within ``radius`` of one of the ``top`` modes."""
    return float(mode_shares(samples, means, radius)[top].sum())


def toy_metrics(samples: np.ndarray, problem: Problem) -> dict[str, Any]:
    """The metrics of one run (definitions in the functions above and the module constants).

    ``top_mode_share``, ``modes_covered`` and ``modes_reached`` are None for the Swiss roll,
    which has no modes.
    """
    record: dict[str, Any] = {
        "mean_reward_ratio": mean_reward_ratio(samples, problem.reward_fn, problem.rewards),
        "top_mode_share": None,
        "off_manifold_share": off_manifold_share(samples, problem.actions),
        "modes_covered": None,
        "modes_reached": None,
    }
    if problem.scenario.dataset == "25gaussians":
        means = gaussian_means()
        top = top_modes(problem.actions, problem.rewards, means)
        record["top_mode_share"] = top_mode_share(samples, means, top)
        record["modes_covered"] = modes_covered(samples, means)
        record["modes_reached"] = modes_covered(samples, means, min_share=MIN_REACHED_SHARE)
    return record


METRIC_KEYS = (
    "mean_reward_ratio",
    "top_mode_share",
    "off_manifold_share",
    "modes_covered",
    "modes_reached",
)


def format_table(records: list[dict[str, Any]]) -> str:
    """The metrics as a Markdown table, one row per run."""
    head = ["scenario", "variant", *METRIC_KEYS, "seconds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        cells = [r["scenario"], r["variant"]]
        for key in (*METRIC_KEYS, "seconds"):
            value = r.get(key)
            if value is None:
                cells.append("-")
            elif isinstance(value, float):
                cells.append(f"{value:.3f}" if key != "seconds" else f"{value:.1f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- Figure 1: the trust-region loss over a grid of actions ----------------------------


def trust_region_loss_map(
    diffusion_params: Any,
    grid: np.ndarray,
    sigmas: tuple[float, ...],
    key: jax.Array,
    agent: AgentConfig,
    num_eps: int = 8,
) -> np.ndarray:
    """The trust-region loss (Eq. 4) at fixed noise levels: [len(sigmas), G] for ``grid`` [G, 2].

    For each sigma: lambda(sigma) * mean over dims of ||D(a + sigma eps, sigma | s) - a||^2,
    averaged over ``num_eps`` draws of eps, with D the BC denoiser (Figure 1).
    """
    return np.asarray(
        _loss_map(diffusion_params, jnp.asarray(grid), jnp.asarray(sigmas), key, agent, num_eps)
    )


@partial(jax.jit, static_argnums=(4, 5))
def _loss_map(
    diffusion_params: Any,
    grid: jax.Array,
    sigmas: jax.Array,
    key: jax.Array,
    agent: AgentConfig,
    num_eps: int,
) -> jax.Array:
    raw = bind_denoiser(build_networks(agent, ACT_DIM), diffusion_params)
    states = jnp.zeros((grid.shape[0], OBS_DIM))

    def at_sigma(sigma, key):
        sigma_col = jnp.full((grid.shape[0], 1), sigma)

        def one_eps(key):
            eps = jax.random.normal(key, grid.shape)
            denoised = denoise(raw, grid + sigma * eps, sigma_col, states, agent.edm.sigma_data)
            weight = loss_weight(sigma_col, agent.edm.sigma_data)
            return jnp.mean(weight * (denoised - grid) ** 2, axis=-1)

        return jnp.mean(jax.lax.map(one_eps, jax.random.split(key, num_eps)), axis=0)

    return jax.lax.map(lambda args: at_sigma(*args), (sigmas, jax.random.split(key, len(sigmas))))


# --- figures --------------------------------------------------------------------------------


def _new_figure(rows: int, cols: int, size: float = 3.0):
    """A matplotlib Figure on the Agg canvas (no pyplot, no global backend) and its axes grid."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size * cols + 1.2, size * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for ax in axes.flat:
        ax.set_xlim(-PLOT_LIMIT, PLOT_LIMIT)
        ax.set_ylim(-PLOT_LIMIT, PLOT_LIMIT)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    return fig, axes


def _metrics_text(record: dict[str, Any], samples: np.ndarray) -> str:
    """Two short lines under a panel: the metrics, and how many samples lie off the axes."""
    first = [f"reward {record['mean_reward_ratio']:.2f}"]
    if record["top_mode_share"] is not None:
        first.append(f"top {record['top_mode_share']:.2f}")
    if record["modes_covered"] is not None:
        first.append(f"modes {record['modes_covered']} (>=1%: {record['modes_reached']})")
    second = [f"off-manifold {record['off_manifold_share']:.2f}"]
    outside = int(np.sum(np.abs(samples).max(axis=1) > PLOT_LIMIT))
    if outside:
        second.append(f"{outside} beyond axes")
    return "  ".join(first) + "\n" + "  ".join(second)


def _normalized_rewards(problem: Problem) -> np.ndarray:
    r = problem.rewards
    return (r - r.min()) / max(float(r.max() - r.min()), 1e-12)


def plot_policy_grid(
    path: Path,
    problems: list[Problem],
    rows: list[tuple[str, list[np.ndarray], list[dict[str, Any]]]],
    title: str,
) -> None:
    """Rows of panels, one column per problem: the dataset coloured by its reward (normalised to
    [0, 1] per scenario, one shared colour bar) and the policy samples in red, with the metrics
    under each panel. ``rows``: (row label, samples per problem, metric record per problem)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig, axes = _new_figure(len(rows), len(problems))
    for i, (label, samples, records) in enumerate(rows):
        for j, problem in enumerate(problems):
            ax = axes[i, j]
            ax.scatter(
                *problem.actions.T,
                c=_normalized_rewards(problem),
                cmap="viridis",
                s=1,
                vmin=0.0,
                vmax=1.0,
                rasterized=True,
            )
            ax.scatter(*samples[j].T, c="red", s=2, alpha=0.6, rasterized=True)
            if i == 0:
                ax.set_title(problem.scenario.title, fontsize=10)
            if j == 0:
                ax.set_ylabel(label, fontsize=10)
            ax.set_xlabel(_metrics_text(records[j], samples[j]), fontsize=7)
    fig.colorbar(
        ScalarMappable(Normalize(0.0, 1.0), "viridis"),
        ax=axes,
        shrink=0.8,
        label="dataset reward (normalised per scenario)",
    )
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=110)


def plot_trust_region_maps(
    path: Path,
    problems: list[Problem],
    maps: list[np.ndarray],
    sigmas: tuple[float, ...],
    grid_size: int,
) -> None:
    """Figure 1: per dataset, the data, then log10 of the trust-region loss on a grid of actions
    at each noise level (one colour bar for all panels)."""
    from matplotlib.colors import Normalize

    fig, axes = _new_figure(len(problems), 1 + len(sigmas), size=2.4)
    log_maps = [np.log10(np.maximum(m, 1e-6)) for m in maps]
    values = np.concatenate([m.ravel() for m in log_maps])
    norm = Normalize(*np.percentile(values, [1.0, 99.0]))
    extent = (-PLOT_LIMIT, PLOT_LIMIT, -PLOT_LIMIT, PLOT_LIMIT)
    image = None
    for i, (problem, log_map) in enumerate(zip(problems, log_maps, strict=True)):
        axes[i, 0].scatter(*problem.actions.T, s=1, c="tab:green", rasterized=True)
        axes[i, 0].set_ylabel(problem.scenario.title.split(",")[0], fontsize=10)
        if i == 0:
            axes[i, 0].set_title("dataset", fontsize=10)
        for k, sigma in enumerate(sigmas):
            image = axes[i, k + 1].imshow(
                log_map[k].reshape(grid_size, grid_size),
                origin="lower",
                extent=extent,
                cmap="magma",
                norm=norm,
                interpolation="nearest",
            )
            if i == 0:
                axes[i, k + 1].set_title(f"sigma = {sigma:g}", fontsize=10)
    fig.colorbar(image, ax=axes, shrink=0.8, label="log10 trust-region loss")
    fig.suptitle("Figure 1: diffusion trust-region loss (Eq. 4) at fixed noise levels", fontsize=11)
    fig.savefig(path, dpi=110)


def plot_no_q(
    path: Path, problems: list[Problem], samples: list[np.ndarray], records: list[dict[str, Any]]
) -> None:
    """Figure 2: data in green, samples of the KL-distilled implicit policy (no Q term) in red."""
    fig, axes = _new_figure(1, len(problems))
    for j, problem in enumerate(problems):
        ax = axes[0, j]
        ax.scatter(*problem.actions.T, s=1, c="tab:green", rasterized=True)
        ax.scatter(*samples[j].T, s=2, c="red", alpha=0.6, rasterized=True)
        ax.set_title(problem.scenario.title.split(",")[0], fontsize=10)
        ax.set_xlabel(_metrics_text(records[j], samples[j]), fontsize=7)
    fig.suptitle("Figure 2: KL distillation alone (no Q term), implicit policy", fontsize=11)
    fig.savefig(path, dpi=110)


# --- the runner -----------------------------------------------------------------------------

FIG1_SIGMAS = (0.1, 0.25, 0.5, 1.0, 2.5)
FIG1_GRID = 80  # grid points per axis over [-PLOT_LIMIT, PLOT_LIMIT]
KL_NO_Q = Variant("kl", "implicit", q_term=False)
SUITE_VARIANTS = (TR_GAUSSIAN, KL_IMPLICIT, TR_IMPLICIT)


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


def _keys(seed: int, scenario: Scenario, variant: Variant) -> tuple[jax.Array, jax.Array]:
    """(pretraining key, run key), from (seed, scenario, variant) only, so that a run alone
    repeats its suite row. Pretraining ignores ``q_term``: KL alone reuses KL's pretraining."""
    key = jax.random.fold_in(jax.random.key(seed), list(SCENARIOS).index(scenario.name))
    code = 2 * ("tr", "kl").index(variant.reg) + ("gaussian", "implicit").index(variant.policy)
    key_pretrain = jax.random.fold_in(key, code)
    return key_pretrain, jax.random.fold_in(key_pretrain, 1 + int(not variant.q_term))


def _log(message: str) -> None:
    print(f"[toy] {message}", file=sys.stderr, flush=True)


PretrainCache = dict[tuple[str, str, str], Any]
"""Pretrained states by (scenario, reg, policy), and KL's BC fits by ('bc', dataset, policy)."""


def run_variant(
    problem: Problem, variant: Variant, args: ToyArgs, cache: PretrainCache | None = None
) -> tuple[np.ndarray, dict[str, Any], Any]:
    """Pretrain (or reuse ``cache``), train and sample one variant on one scenario.

    Returns the policy samples [1000, 2], the metric record and the final state; ``seconds`` is
    the wall time of this call, its pretraining included unless it came from the cache.
    """
    start = time.perf_counter()
    cfg = toy_config(variant, args)
    key_pretrain, key_run = _keys(args.seed, problem.scenario, variant)
    cache = {} if cache is None else cache
    cache_key = (problem.scenario.name, variant.reg, variant.policy)
    if cache_key not in cache:
        pretrain_cfg = toy_config(variant, args, "pretrain")
        bc_fitted = None
        if variant.reg == "kl":
            bc_key = ("bc", problem.scenario.dataset, variant.policy)
            if bc_key not in cache:
                dataset_code = 1000 + DATASETS.index(problem.scenario.dataset)
                dataset_key = jax.random.fold_in(jax.random.key(args.seed), dataset_code)
                cache[bc_key] = fit_bc(problem, pretrain_cfg, args.kl_bc_steps, dataset_key)
            bc_fitted = cache[bc_key]
        cache[cache_key] = pretrain(problem, pretrain_cfg, key_pretrain, bc_fitted)
    pretrained = cache[cache_key]
    key_train, key_sample = jax.random.split(key_run)
    state, _ = train(pretrained, problem, variant, cfg, key_train)
    samples = policy_samples(state, cfg, key_sample)
    seconds = time.perf_counter() - start
    record = {
        "scenario": problem.scenario.name,
        "variant": variant.name,
        "reg": variant.reg,
        "policy": variant.policy,
        "q_term": variant.q_term,
        **toy_metrics(samples, problem),
        "seconds": round(seconds, 2),
    }
    steps = f"{cfg.pretrain_steps} + {cfg.steps} steps of batch {cfg.batch_size}"
    if variant.reg == "kl":
        steps = f"{args.kl_bc_steps} BC-only (once per dataset) + {steps}"
    _log(f"{problem.scenario.name} {variant.name}: {steps} in {seconds:.1f} s")
    return samples, record, state


RUN_FIELDS = ("scenario", "reg", "policy", "q_term", "json", "out")
"""ToyArgs fields that pick a run or an output, not a setting (each record names its run)."""


def settings_record(args: ToyArgs) -> dict[str, Any]:
    """The settings and metric definitions written beside the metrics."""
    return {
        "settings": {
            **{k: v for k, v in dataclasses.asdict(args).items() if k not in RUN_FIELDS},
            "max_action": MAX_ACTION,
            "expectile": 0.95,
            "discount": 0.99,
            "hidden_dim": 128,
        },
        "definitions": {
            "mean_reward_ratio": f"mean reward of {NUM_POLICY_SAMPLES} policy samples / the "
            "dataset's maximum reward",
            "top_mode_share": f"share of samples within {MODE_RADIUS:g} (3 std) of a mode with "
            f"the highest mean reward (ties within {TOP_MODE_TOLERANCE:.0%} of the range of "
            "mode rewards); 25 Gaussians only",
            "off_manifold_share": f"share of samples farther than {OFF_MANIFOLD_DISTANCE:g} from "
            "every dataset action",
            "modes_covered": f"modes with >= {MIN_MODE_SHARE:.0%} of the samples within "
            f"{MODE_RADIUS:g} of their mean; 25 Gaussians only",
            "modes_reached": f"the same with >= {MIN_REACHED_SHARE:.0%} of the samples",
            "seconds": "wall time of the run, its pretraining included unless shared",
        },
    }


def run_suite(args: ToyArgs) -> list[dict[str, Any]]:
    """Every scenario with every suite variant, Figure 2's KL-alone runs, Figure 1's loss maps;
    writes the figures, metrics.json and metrics.md into ``args.out``; returns the records."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suite_start = time.perf_counter()
    problems = [make_problem(s, args.seed) for s in SCENARIOS.values()]
    cache: PretrainCache = {}
    samples: dict[tuple[str, str], np.ndarray] = {}
    records: dict[tuple[str, str], dict[str, Any]] = {}
    # Figures 1 and 2 use each dataset's first scenario (25g-far, swiss-far).
    firsts = [next(p for p in problems if p.scenario.dataset == d) for d in DATASETS]
    bc_models: dict[str, Any] = {}

    def run(problem: Problem, variant: Variant) -> None:
        key = (problem.scenario.name, variant.name)
        samples[key], records[key], state = run_variant(problem, variant, args, cache)
        if variant == TR_GAUSSIAN and any(problem is p for p in firsts):
            bc_models[problem.scenario.name] = state.diffusion.params

    for problem in problems:
        for variant in SUITE_VARIANTS:
            run(problem, variant)
    for problem in firsts:
        run(problem, KL_NO_Q)  # Figure 2, from the KL pretraining of the same scenario
    # Figure 1: the trust-region loss under the BC model at the end of the trust-region run.
    xs = np.linspace(-PLOT_LIMIT, PLOT_LIMIT, FIG1_GRID, dtype=np.float32)
    grid = np.stack(np.meshgrid(xs, xs), axis=-1).reshape(-1, 2)
    agent = toy_config(TR_GAUSSIAN, args).agent
    maps = [
        trust_region_loss_map(
            bc_models[p.scenario.name], grid, FIG1_SIGMAS, jax.random.key(args.seed), agent
        )
        for p in firsts
    ]

    def row(variant: Variant, group: list[Problem]):
        keys = [(p.scenario.name, variant.name) for p in group]
        return variant.title, [samples[k] for k in keys], [records[k] for k in keys]

    plot_trust_region_maps(out / "fig1_trust_region_loss.png", firsts, maps, FIG1_SIGMAS, FIG1_GRID)
    _, no_q_samples, no_q_records = row(KL_NO_Q, firsts)
    plot_no_q(out / "fig2_kl_no_q.png", firsts, no_q_samples, no_q_records)
    plot_policy_grid(
        out / "fig3_tr_vs_kl.png",
        problems,
        [row(TR_GAUSSIAN, problems), row(KL_IMPLICIT, problems)],
        "Figures 3 and 6: trust region (top) vs KL (bottom), 1000 policy samples in red",
    )
    plot_policy_grid(
        out / "fig_tr_implicit.png",
        problems,
        [row(TR_IMPLICIT, problems)],
        "Trust region with the implicit one-step policy, 1000 policy samples in red",
    )

    ordered = [records[(p.scenario.name, v.name)] for p in problems for v in SUITE_VARIANTS]
    ordered += [records[(p.scenario.name, KL_NO_Q.name)] for p in firsts]
    total = time.perf_counter() - suite_start
    summary = {**settings_record(args), "suite_seconds": round(total, 1), "runs": ordered}
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = format_table(ordered)
    (out / "metrics.md").write_text(table + "\n")
    _log(f"suite done in {total:.1f} s; figures and metrics in {out}")
    print(table)
    return ordered


def run_scenario(args: ToyArgs, variant: Variant) -> dict[str, Any]:
    """One scenario and one variant: its figure and metrics in ``args.out``; returns the record."""
    assert args.scenario is not None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    problem = make_problem(SCENARIOS[args.scenario], args.seed)
    samples, record, _ = run_variant(problem, variant, args)
    stem = f"{problem.scenario.name}-{variant.name}"
    plot_policy_grid(
        out / f"{stem}.png",
        [problem],
        [(variant.title, [samples], [record])],
        f"{problem.scenario.title}: {variant.title}",
    )
    (out / f"{stem}.json").write_text(
        json.dumps({**settings_record(args), "runs": [record]}, indent=2) + "\n"
    )
    return record


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


def run_toy(args: ToyArgs) -> int:
    """Entry point of `dtql toy`: 0 on success, 2 on bad arguments (one line on stderr)."""
    problem = check_args(args)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.scenario is None:
        run_suite(args)
        return 0
    policy = args.policy or ("gaussian" if args.reg == "tr" else "implicit")
    record = run_scenario(args, Variant(args.reg, policy, args.q_term))
    print(json.dumps(record) if args.json else format_table([record]))
    return 0
