"""The speed reference of `dtql bench --against torch`: dtql's DTQL step, and the released
code's candidate selection, written in eager PyTorch (no ``torch.compile``), timed in the same
process on the same threads as the JAX versions.

``TorchDTQL.step`` mirrors the math of ``dtql.algos.dtql.train_step`` (IQL critics, EDM diffusion
behaviour cloning, the trust-region policy update, the target soft update) and
``TorchDTQL.act_candidates`` the released acting (the state tiled N times, N policy samples, both
critics on all of them, a softmax draw over min Q). They exist to be timed and are never used to
train. torch comes with the ``collect`` extra; this module imports it, so import it only when a
torch measurement is asked for.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dtql.algos.common import Batch
from dtql.bench.timing import Timing, time_calls
from dtql.config import EDMConfig, LearnerConfig

TORCH_WARMUP_STEPS = 10


class TorchBatch(NamedTuple):
    """The dataset (N rows) or a minibatch (B rows) as CPU tensors, laid out like ``Batch``."""

    observations: Tensor  # [N, S]
    actions: Tensor  # [N, A]
    rewards: Tensor  # [N]
    next_observations: Tensor  # [N, S]
    terminals: Tensor  # [N]


# --- networks (dtql.networks) -----------------------------------------------------------------


def _linear(in_dim: int, out_dim: int, orthogonal_gain: float | None = None) -> nn.Linear:
    """nn.Linear initialised like flax's Dense: lecun_normal (or orthogonal) kernel, zero bias."""
    layer = nn.Linear(in_dim, out_dim)
    if orthogonal_gain is None:
        std = math.sqrt(1.0 / in_dim) / 0.87962566103423978  # flax's truncated-normal correction
        nn.init.trunc_normal_(layer.weight, std=std, a=-2.0 * std, b=2.0 * std)
    else:
        nn.init.orthogonal_(layer.weight, gain=orthogonal_gain)
    nn.init.zeros_(layer.bias)
    return layer


class MLP(nn.Module):
    """Linear (-LayerNorm) -activation per hidden layer, then Linear(out_dim) (networks.MLP)."""

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        *,
        activation: str = "mish",
        layer_norm: bool = False,
        orthogonal_init: bool = False,
    ) -> None:
        super().__init__()
        dims = [in_dim, *hidden]
        gain = math.sqrt(2.0) if orthogonal_init else None
        self.layers = nn.ModuleList(
            _linear(i, o, gain) for i, o in zip(dims[:-1], dims[1:], strict=True)
        )
        # flax's LayerNorm epsilon is 1e-6 (torch's default is 1e-5).
        self.norms = (
            nn.ModuleList(nn.LayerNorm(w, eps=1e-6) for w in hidden) if layer_norm else None
        )
        self.out = _linear(dims[-1], out_dim, 1.0 if orthogonal_init else None)
        self.activation: Callable[[Tensor], Tensor] = {"mish": F.mish, "relu": F.relu}[activation]

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if self.norms is not None:
                x = self.norms[i](x)
            x = self.activation(x)
        return self.out(x)


class TwinQ(nn.Module):
    """Two separate Q(s, a) MLPs (Linear-LayerNorm-Mish x3, Linear(1)); returns [2, B]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            MLP(obs_dim + act_dim, (hidden,) * 3, 1, layer_norm=True) for _ in range(2)
        )

    def forward(self, states: Tensor, actions: Tensor) -> Tensor:
        x = torch.cat([states, actions], dim=-1)
        return torch.stack([head(x)[..., 0] for head in self.heads])


class ValueNetwork(nn.Module):
    """V(s): Linear-Mish x3, Linear(1); returns [B]."""

    def __init__(self, obs_dim: int, hidden: int) -> None:
        super().__init__()
        self.mlp = MLP(obs_dim, (hidden,) * 3, 1)

    def forward(self, states: Tensor) -> Tensor:
        return self.mlp(states)[..., 0]


class DiffusionNetwork(nn.Module):
    """The raw network F(c_in a_noisy, c_noise | s): time embedding, then a 4-layer Mish MLP."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, time_embed_dim: int) -> None:
        super().__init__()
        half = time_embed_dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half) / (half - 1))
        self.register_buffer("freqs", freqs, persistent=False)
        self.time_in = _linear(time_embed_dim, 2 * time_embed_dim)
        self.time_out = _linear(2 * time_embed_dim, time_embed_dim)
        self.mlp = MLP(act_dim + obs_dim + time_embed_dim, (hidden,) * 4, act_dim)

    def forward(self, scaled_noisy: Tensor, c_noise: Tensor, states: Tensor) -> Tensor:
        angles = c_noise * self.freqs[None, :]  # sinusoidal_embedding: [B, 1] -> [B, dim]
        t = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
        t = self.time_out(F.mish(self.time_in(t)))
        return self.mlp(torch.cat([scaled_noisy, states, t], dim=-1))


class GaussianPolicyNetwork(nn.Module):
    """Linear-ReLU x3 (orthogonal init), Linear(2 A); (mean, log_std clipped) of the pre-tanh."""

    def __init__(
        self, obs_dim: int, act_dim: int, hidden: int, log_std_min: float, log_std_max: float
    ) -> None:
        super().__init__()
        self.mlp = MLP(obs_dim, (hidden,) * 3, 2 * act_dim, activation="relu", orthogonal_init=True)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, states: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.mlp(states).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)


# --- EDM (dtql.edm) ---------------------------------------------------------------------------


def precondition(sigma: Tensor, sigma_data: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EDM's (c_skip, c_out, c_in, c_noise) for ``sigma`` [B, 1], c_in with the square root."""
    norm = sigma**2 + sigma_data**2
    c_skip = sigma_data**2 / norm
    c_out = sigma * sigma_data / torch.sqrt(norm)
    c_in = 1.0 / torch.sqrt(norm)
    c_noise = torch.log(sigma) / 4.0
    return c_skip, c_out, c_in, c_noise


def sample_sigma(n: int, cfg: EDMConfig, generator: torch.Generator) -> Tensor:
    """ln(sigma) ~ Logistic(loc, scale) truncated to [sigma_min, sigma_max], by inverse CDF."""
    log_lo, log_hi = math.log(cfg.sigma_min), math.log(cfg.sigma_max)

    def cdf(x: float) -> float:
        return 1.0 / (1.0 + math.exp(-(x - cfg.log_sigma_loc) / cfg.log_sigma_scale))

    cdf_lo, cdf_hi = cdf(log_lo), cdf(log_hi)
    u = cdf_lo + (cdf_hi - cdf_lo) * torch.rand((n, 1), generator=generator)
    log_sigma = cfg.log_sigma_loc + cfg.log_sigma_scale * torch.logit(u)
    return torch.exp(log_sigma.clamp(log_lo, log_hi))


def weighted_denoising_loss(
    raw_network: nn.Module,
    actions: Tensor,
    states: Tensor,
    cfg: EDMConfig,
    max_action: float,
    generator: torch.Generator,
) -> Tensor:
    """Per-sample lambda(sigma) ||D(a + sigma eps, sigma | s) - a||^2, mean over dims: [B]."""
    sigma = sample_sigma(actions.shape[0], cfg, generator)
    eps = torch.randn(actions.shape, generator=generator)
    a_noisy = actions + sigma * eps
    c_skip, c_out, c_in, c_noise = precondition(sigma, cfg.sigma_data)
    denoised = c_skip * a_noisy + c_out * raw_network(c_in * a_noisy, c_noise, states)
    if cfg.clamp_denoised:
        denoised = denoised.clamp(-max_action, max_action)
    return torch.mean((denoised - actions) ** 2 / c_out**2, dim=-1)


# --- the step (dtql.algos.dtql.train_step) -----------------------------------------------------


def learning_rate(
    base_lr: float, cfg: LearnerConfig, count: int, *, trains_in_pretrain: bool
) -> float:
    """common.learning_rate at optimiser step ``count``: constant, or cosine to 0 (optax's)."""
    if not cfg.agent.lr_decay:
        return base_lr
    if trains_in_pretrain and cfg.pretrain_steps > 0:
        if count < cfg.pretrain_steps:
            return base_lr
        count -= cfg.pretrain_steps
    horizon = max(cfg.steps, 1)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(count, horizon) / horizon))


class TorchDTQL:
    """Networks, Adam optimisers and RNG of the eager reference; ``step`` is one DTQL update."""

    def __init__(
        self, cfg: LearnerConfig, obs_dim: int, act_dim: int, max_action: float, seed: int = 0
    ) -> None:
        agent = cfg.agent
        if agent.policy != "gaussian":
            raise ValueError("the torch reference implements the Gaussian one-step policy only")
        self.cfg, self.max_action = cfg, max_action
        torch.manual_seed(seed)
        hidden = agent.hidden_dim
        self.q = TwinQ(obs_dim, act_dim, hidden)
        self.target_q = copy.deepcopy(self.q).requires_grad_(False)
        self.value = ValueNetwork(obs_dim, hidden)
        self.denoiser = DiffusionNetwork(obs_dim, act_dim, hidden, agent.time_embed_dim)
        self.policy = GaussianPolicyNetwork(
            obs_dim, act_dim, hidden, agent.log_std_min, agent.log_std_max
        )
        self.policy_params = list(self.policy.parameters())
        self.q_opt = torch.optim.Adam(self.q.parameters(), lr=agent.critic_lr)
        self.value_opt = torch.optim.Adam(self.value.parameters(), lr=agent.critic_lr)
        self.denoiser_opt = torch.optim.Adam(self.denoiser.parameters(), lr=agent.lr)
        self.policy_opt = torch.optim.Adam(self.policy_params, lr=agent.lr)
        self.target_pairs = list(zip(self.target_q.parameters(), self.q.parameters(), strict=True))
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.count = 0  # optimiser steps taken (all four step together), for the schedule

    def _set_learning_rates(self) -> None:
        cfg, count = self.cfg, self.count
        critic_lr = learning_rate(cfg.agent.critic_lr, cfg, count, trains_in_pretrain=True)
        diffusion_lr = learning_rate(cfg.agent.lr, cfg, count, trains_in_pretrain=True)
        policy_lr = learning_rate(cfg.agent.lr, cfg, count, trains_in_pretrain=False)
        for opt, lr in (
            (self.q_opt, critic_lr),
            (self.value_opt, critic_lr),
            (self.denoiser_opt, diffusion_lr),
            (self.policy_opt, policy_lr),
        ):
            for group in opt.param_groups:
                group["lr"] = lr

    def step(self, data: TorchBatch) -> dict[str, Tensor]:
        """Draw a uniform minibatch from ``data`` and apply one DTQL update; returns the losses."""
        cfg, agent, edm, gen = self.cfg, self.cfg.agent, self.cfg.agent.edm, self.generator
        if agent.lr_decay:
            self._set_learning_rates()
        idx = torch.randint(0, data.rewards.shape[0], (cfg.batch_size,), generator=gen)
        batch = TorchBatch(*(x[idx] for x in data))
        states, actions = batch.observations, batch.actions

        # 1. IQL critics (algos.critics.critic_step): V by expectile regression on min target Q ...
        with torch.no_grad():
            q_for_v = self.target_q if agent.value_target == "target_q" else self.q
            q_data = q_for_v(states, actions).min(dim=0).values
        v = self.value(states)
        diff = q_data - v
        v_loss = torch.mean(torch.where(diff < 0, 1.0 - agent.expectile, agent.expectile) * diff**2)
        self.value_opt.zero_grad(set_to_none=True)
        v_loss.backward()
        self.value_opt.step()
        # ... then twin Q on r + gamma (1 - d) V(s') with the updated V, summed over the heads.
        with torch.no_grad():
            next_v = self.value(batch.next_observations)
            target = batch.rewards + agent.discount * (1.0 - batch.terminals) * next_v
        q_pred = self.q(states, actions)
        q_loss = torch.sum(torch.mean((q_pred - target[None, :]) ** 2, dim=-1))
        self.q_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        self.q_opt.step()
        with torch.no_grad():  # target <- (1 - tau) target + tau online
            for target_param, param in self.target_pairs:
                target_param.lerp_(param, agent.tau)

        # 2. Diffusion behaviour cloning (algos.diffusion.diffusion_bc_step, Eq. 2).
        bc_loss = weighted_denoising_loss(
            self.denoiser, actions, states, edm, self.max_action, gen
        ).mean()
        self.denoiser_opt.zero_grad(set_to_none=True)
        bc_loss.backward()
        self.denoiser_opt.step()

        # 3. Policy: alpha L_TR - min Q(s, a_pi) (+ entropy term). Only the policy's parameters
        #    receive gradients (``backward(inputs=...)``), as jax.grad over the policy params does.
        mean, log_std = self.policy(states)
        eps = torch.randn(mean.shape, generator=gen)
        policy_actions = torch.tanh(mean + torch.exp(log_std) * eps) * self.max_action
        tr_loss = weighted_denoising_loss(
            self.denoiser, policy_actions, states, edm, self.max_action, gen
        ).mean()
        q_term = -torch.mean(self.q(states, policy_actions).min(dim=0).values)
        policy_loss = agent.alpha * tr_loss + q_term
        if agent.entropy_coef > 0.0:
            pre_tanh = torch.atanh(actions / (self.max_action + 1e-3))
            z = (pre_tanh - mean) / torch.exp(log_std)
            log_prob = -0.5 * z**2 - log_std - 0.5 * math.log(2.0 * math.pi)
            policy_loss = policy_loss + agent.entropy_coef * torch.mean(-log_prob.sum(dim=-1))
        self.policy_opt.zero_grad(set_to_none=True)
        policy_loss.backward(inputs=self.policy_params)
        self.policy_opt.step()

        self.count += 1
        return {
            "critic/v_loss": v_loss.detach(),
            "critic/q_loss": q_loss.detach(),
            "diffusion/loss": bc_loss.detach(),
            "policy/tr_loss": tr_loss.detach(),
            "policy/q_term": q_term.detach(),
            "policy/loss": policy_loss.detach(),
        }

    @torch.no_grad()
    def act_candidates(self, states: Tensor) -> Tensor:
        """The released acting: each state tiled ``num_candidates`` times, the policy sampled
        on every copy, both critics on all of them, one drawn by softmax over min Q. [n, A]."""
        num = self.cfg.agent.num_candidates
        tiled = states.repeat_interleave(num, dim=0)
        mean, log_std = self.policy(tiled)
        eps = torch.randn(mean.shape, generator=self.generator)
        actions = (torch.tanh(mean + torch.exp(log_std) * eps) * self.max_action).clamp(
            -self.max_action, self.max_action
        )
        q = self.target_q(tiled, actions).min(dim=0).values.reshape(states.shape[0], num)
        choice = torch.multinomial(F.softmax(q, dim=-1), 1, generator=self.generator)
        return actions.reshape(states.shape[0], num, -1)[
            torch.arange(states.shape[0]), choice[:, 0]
        ]


# --- the measurements -------------------------------------------------------------------------


def torch_data(data: Batch) -> TorchBatch:
    """The bench's synthetic JAX dataset as CPU tensors."""
    return TorchBatch(*(torch.from_numpy(np.array(x, dtype=np.float32)) for x in data))


def torch_update_speed(
    cfg: LearnerConfig, data: Batch, steps: int, repeats: int
) -> tuple[Timing, bool]:
    """Seconds per ``steps`` eager DTQL steps (median of ``repeats`` loops after
    ``TORCH_WARMUP_STEPS`` steps), and whether the last losses were all finite."""
    obs_dim, act_dim = data.observations.shape[1], data.actions.shape[1]
    agent = TorchDTQL(cfg, obs_dim, act_dim, max_action=1.0)
    batch = torch_data(data)
    losses: dict[str, Tensor] = {}

    def loop(n: int) -> None:
        nonlocal losses
        for _ in range(n):
            losses = agent.step(batch)

    loop(TORCH_WARMUP_STEPS)
    timing = time_calls(lambda: loop(steps), repeats=repeats, warmup=0)
    return timing, all(bool(torch.isfinite(v)) for v in losses.values())


def torch_candidate_latency(cfg: LearnerConfig, obs_dim: int, act_dim: int, repeats: int) -> Timing:
    """Seconds per released-code candidate selection for one state (``num_candidates``)."""
    agent = TorchDTQL(cfg, obs_dim, act_dim, max_action=1.0)
    state = torch.from_numpy(np.random.default_rng(0).standard_normal((1, obs_dim), np.float32))
    return time_calls(
        lambda: agent.act_candidates(state), repeats=repeats, warmup=max(3, repeats // 10)
    )


def set_torch_threads(threads: int) -> None:
    torch.set_num_threads(threads)
