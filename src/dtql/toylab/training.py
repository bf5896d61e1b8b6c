"""Training the lab's variants with the package's own algorithms (``dtql.algos``): the config of
a variant, Algorithm 2's BC-only fit, pretraining, the main phase and the policy's samples.

"No Q term" (Figure 2) needs no switch in the algorithms and is exact: the critics get all-zero
parameters and the rewards are zero. Then Q = V = 0 everywhere, every critic gradient is exactly
0 (targets equal predictions), Adam leaves zero parameters at zero, and the Q term adds exactly
nothing to the policy gradient.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from dtql.algos import get_algorithm
from dtql.algos.common import build_networks, run_steps_jit
from dtql.algos.diffusion import bc_only_step
from dtql.algos.policies import sample_actions
from dtql.config import AgentConfig, LearnerConfig, replace
from dtql.toylab.scenarios import ACT_DIM, MAX_ACTION, NUM_POLICY_SAMPLES, OBS_DIM, Problem, Variant
from dtql.toylab.toy_args import ToyArgs

Phase = Literal["pretrain", "main"]


def toy_config(variant: Variant, args: ToyArgs, phase: Phase = "main") -> LearnerConfig:
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
        LearnerConfig(),
        algo="dtql" if tr else "kl",
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
            # The settings the lab's figures and metrics were measured with: the paper's
            # reading of the networks and losses, not the released code's later defaults.
            "agent.mish_after_input_layer": True,
            "agent.edm.clamp_denoised": False,
            "agent.implicit_generator": "preconditioned",
        },
    )


def fit_bc(problem: Problem, cfg: LearnerConfig, steps: int, key: jax.Array) -> Any:
    """A fresh state of ``cfg.algo`` whose BC model has had ``steps`` steps of ``bc_only_step``.

    It depends on the dataset only (not the reward), so a suite fits it once per dataset."""
    key_init, key_run = jax.random.split(key)
    state = get_algorithm(cfg.algo).init(key_init, cfg, OBS_DIM, ACT_DIM, MAX_ACTION)
    if steps > 0:
        state, _ = run_steps_jit(bc_only_step, state, problem.data, key_run, cfg, steps)
    return state


def pretrain(problem: Problem, cfg: LearnerConfig, key: jax.Array, start: Any = None) -> Any:
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


def train_variant(
    pretrained: Any, problem: Problem, variant: Variant, cfg: LearnerConfig, key: jax.Array
) -> tuple[Any, dict[str, float]]:
    """The main phase from a pretrained state of the same algorithm: (final state, mean metrics).

    Goes through the algorithm's ``start_main_phase`` (KL: generator and fake model copy the BC
    weights). Without the Q term, critics and rewards are zeroed first (exact, see the module
    docstring).
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
    state: Any, cfg: LearnerConfig, key: jax.Array, num: int = NUM_POLICY_SAMPLES
) -> np.ndarray:
    """``num`` stochastic actions of the one-step policy at the state: [num, 2] (unclipped)."""
    return np.asarray(_policy_samples(state.policy.params, key, cfg.agent, num), dtype=np.float64)
