"""The lab's figures: the trust-region loss over a grid of actions (Figure 1) and the matplotlib
drawings (Figure 1's maps, Figure 2, the policy grids of Figures 3 and 6).

Matplotlib is imported inside the drawing functions, so importing the lab does not load it."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dtql.algos.common import build_networks
from dtql.algos.diffusion import bind_raw_network
from dtql.config import AgentConfig
from dtql.edm import denoising_error
from dtql.toylab.scenarios import ACT_DIM, MAX_ACTION, OBS_DIM, Problem

PLOT_LIMIT = 15.0
"""Every panel shows [-PLOT_LIMIT, PLOT_LIMIT]^2."""
FIG1_SIGMAS = (0.1, 0.25, 0.5, 1.0, 2.5)
FIG1_GRID = 80  # grid points per axis over [-PLOT_LIMIT, PLOT_LIMIT]


# --- Figure 1: the trust-region loss over a grid of actions ----------------------------


def action_grid(size: int = FIG1_GRID) -> np.ndarray:
    """``size`` x ``size`` actions evenly over the plotted square, row by row: [size**2, 2]."""
    xs = np.linspace(-PLOT_LIMIT, PLOT_LIMIT, size, dtype=np.float32)
    return np.stack(np.meshgrid(xs, xs), axis=-1).reshape(-1, 2)


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
    raw = bind_raw_network(build_networks(agent, ACT_DIM), diffusion_params)
    states = jnp.zeros((grid.shape[0], OBS_DIM))

    def at_sigma(sigma, key):
        sigma_col = jnp.full((grid.shape[0], 1), sigma)

        def one_eps(key):
            eps = jax.random.normal(key, grid.shape)
            return denoising_error(raw, grid, states, sigma_col, eps, agent.edm, MAX_ACTION)

        return jnp.mean(jax.lax.map(one_eps, jax.random.split(key, num_eps)), axis=0)

    return jax.lax.map(lambda args: at_sigma(*args), (sigmas, jax.random.split(key, len(sigmas))))


# --- drawings -------------------------------------------------------------------------------


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
