"""One shared tester for DTQL, KL, IQL and BC on a tiny config (CPU)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dtql.algos import get_algorithm
from dtql.algos.common import Batch, build_networks, run_steps, run_steps_jit
from dtql.algos.policies import (
    act_mean,
    acting_params,
    actions_from_noise,
    sample_candidates,
    select_by_q,
)
from dtql.config import LearnerConfig, replace
from dtql.run.setup import RunError, check_act_mode

OBS_DIM, ACT_DIM, N = 4, 2, 128


def tiny_config(algo: str, **changes) -> LearnerConfig:
    cfg = LearnerConfig(algo=algo, batch_size=16, pretrain_steps=3, steps=5)
    agent = {
        "agent.hidden_dim": 16,
        "agent.num_candidates": 4,
        "agent.policy": "implicit" if algo == "kl" else "gaussian",
    }
    return replace(cfg, **{**agent, **changes})


def tiny_data(seed: int = 0) -> Batch:
    keys = jax.random.split(jax.random.key(seed), 4)
    return Batch(
        observations=jax.random.normal(keys[0], (N, OBS_DIM)),
        actions=0.9 * jnp.tanh(jax.random.normal(keys[1], (N, ACT_DIM))),
        rewards=jax.random.normal(keys[2], (N,)),
        next_observations=jax.random.normal(keys[3], (N, OBS_DIM)),
        terminals=(jnp.arange(N) % 10 == 0).astype(jnp.float32),
    )


def leaves_changed(before, after) -> bool:
    return any(
        not np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True)
    )


IQL_NETWORKS = {"agent.policy": "iql_gaussian", "agent.critics": "iql"}


@pytest.mark.parametrize(
    "name, changes",
    [
        ("dtql", {}),
        ("dtql", {"agent.mish_after_input_layer": True, "agent.edm.clamp_denoised": False}),
        ("kl", {}),
        ("kl", {"agent.implicit_generator": "preconditioned", "agent.kl_train_bc": True}),
        ("iql", {}),
        ("iql", IQL_NETWORKS),
        ("bc", {}),
        ("bc", {"agent.policy": "iql_gaussian"}),
        ("bc", {"agent.policy": "deterministic"}),
        ("bc-gaussian", {}),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(str(x) for x in v.values()) or "default",
)
def test_steps_give_finite_metrics_and_move_the_right_parameters(name, changes):
    algo, cfg, data = get_algorithm(name), tiny_config(name, **changes), tiny_data()
    state = algo.init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)
    pre, metrics = run_steps_jit(algo.pretrain_step, state, data, jax.random.key(1), cfg, 2)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    if name in ("dtql", "iql", "kl"):
        # The policy waits during pretraining.
        assert not leaves_changed(state.policy.params, pre.policy.params)
        assert leaves_changed(state.critics.q.params, pre.critics.q.params)
    main = algo.start_main_phase(pre, cfg)
    post, metrics = run_steps_jit(algo.train_step, main, data, jax.random.key(2), cfg, 2)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert leaves_changed(main.policy.params, post.policy.params)
    if name == "dtql":
        assert leaves_changed(main.diffusion.params, post.diffusion.params)
        assert {"policy/tr_loss", "policy/q_term", "diffusion/loss", "critic/q_loss"} <= set(
            metrics
        )
    if name == "kl":
        # Algorithm 2: the BC model is frozen after pretraining (unless kl_train_bc, as
        # released); the fake model learns.
        bc_moved = leaves_changed(main.diffusion.params, post.diffusion.params)
        assert bc_moved == cfg.agent.kl_train_bc
        assert leaves_changed(main.fake.params, post.fake.params)
    acting = acting_params(post)
    actions = algo.act_mean(acting, data.observations[:5], cfg)
    assert actions.shape == (5, ACT_DIM) and float(jnp.abs(actions).max()) <= 1.0
    for act in (algo.act_candidates, algo.act_diffusion):
        if act is not None:
            chosen = act(acting, data.observations[:5], jax.random.key(3), cfg)
            assert chosen.shape == (5, ACT_DIM) and float(jnp.abs(chosen).max()) <= 1.0


def test_kl_main_phase_starts_from_the_bc_weights():
    algo, cfg = get_algorithm("kl"), tiny_config("kl")
    state = algo.init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)
    state, _ = run_steps_jit(algo.pretrain_step, state, tiny_data(), jax.random.key(1), cfg, 2)
    main = algo.start_main_phase(state, cfg)
    assert not leaves_changed(main.diffusion.params, main.policy.params)
    assert not leaves_changed(main.diffusion.params, main.fake.params)


def test_target_critic_moves_by_tau():
    algo, cfg, data = get_algorithm("dtql"), tiny_config("dtql"), tiny_data()
    state = algo.init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)
    post, _ = run_steps_jit(algo.train_step, state, data, jax.random.key(2), cfg, 1)
    tau = cfg.agent.tau
    for old_target, online, new_target in zip(
        jax.tree.leaves(state.critics.target_q_params),
        jax.tree.leaves(post.critics.q.params),
        jax.tree.leaves(post.critics.target_q_params),
        strict=True,
    ):
        np.testing.assert_allclose(new_target, (1 - tau) * old_target + tau * online, atol=1e-6)


def test_target_can_be_frozen_during_pretraining():
    cfg = tiny_config("dtql", **{"agent.target_update_in_pretrain": False})
    algo = get_algorithm("dtql")
    state = algo.init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)
    pre, _ = run_steps_jit(algo.pretrain_step, state, tiny_data(), jax.random.key(1), cfg, 2)
    assert not leaves_changed(state.critics.target_q_params, pre.critics.target_q_params)


def test_same_seed_gives_identical_parameters():
    algo, cfg, data = get_algorithm("dtql"), tiny_config("dtql"), tiny_data()
    runs = []
    for _ in range(2):
        state = algo.init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)
        state, _ = run_steps_jit(algo.train_step, state, data, jax.random.key(5), cfg, 2)
        runs.append(state)
    assert not leaves_changed(runs[0], runs[1])


def test_chunks_of_any_length_share_one_compilation():
    algo, cfg, data = get_algorithm("bc"), tiny_config("bc"), tiny_data()
    state = algo.init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)
    traces = []

    def counting_step(state, batch, key, cfg):
        traces.append(1)
        return algo.train_step(state, batch, key, cfg)

    jitted = jax.jit(run_steps, static_argnums=(0, 4))
    state, _ = jitted(counting_step, state, data, jax.random.key(1), cfg, 2)
    traced = len(traces)
    state, _ = jitted(counting_step, state, data, jax.random.key(2), cfg, 3)  # other length
    assert traced > 0 and len(traces) == traced


def test_entropy_term_enters_the_dtql_policy_loss():
    cfg = tiny_config("dtql", **{"agent.entropy_coef": 1.0})
    algo = get_algorithm("dtql")
    state = algo.init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)
    _, metrics = run_steps_jit(algo.train_step, state, tiny_data(), jax.random.key(1), cfg, 1)
    nll = float(metrics["policy/nll_term"])
    assert nll != 0.0
    expected = (
        cfg.agent.alpha * float(metrics["policy/tr_loss"]) + float(metrics["policy/q_term"]) + nll
    )
    assert float(metrics["policy/loss"]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "name,policy", [("kl", "gaussian"), ("iql", "implicit"), ("bc", "implicit")]
)
def test_algorithms_reject_a_policy_they_cannot_use(name, policy):
    cfg = replace(tiny_config(name), **{"agent.policy": policy})
    with pytest.raises(ValueError, match="agent.policy"):
        get_algorithm(name).init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)


def test_unknown_algorithm_lists_the_known_ones():
    with pytest.raises(ValueError, match="dtql, kl, iql, bc"):
        get_algorithm("sac")


def trainables(state) -> dict[str, object]:
    """Every network of a state that has an optimiser: name -> parameters."""
    names = ("diffusion", "policy", "fake")
    found = {name: getattr(state, name).params for name in names if hasattr(state, name)}
    if hasattr(state, "critics"):
        found |= {"q": state.critics.q.params, "value": state.critics.value.params}
    return found


@pytest.mark.parametrize("name", ["dtql", "kl", "iql", "bc"])
def test_every_optimiser_anneals_to_zero_at_the_end_of_its_decay(name):
    # With lr_decay_steps = steps, every learning rate reaches 0 after the run's last main step,
    # so one more step moves no parameter; with a longer decay they all still move. (Before
    # the fix, KL's fake model kept a constant rate for pretrain_steps main steps.)
    decay = {"agent.lr_decay": True}
    if name == "kl":
        decay["agent.kl_train_bc"] = True  # so that the BC model's optimiser steps too
    for decay_steps, moves in ((5, False), (50, True)):
        cfg = tiny_config(name, **decay, **{"agent.lr_decay_steps": decay_steps})
        algo, data = get_algorithm(name), tiny_data()
        state = algo.init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)
        state, _ = run_steps_jit(algo.pretrain_step, state, data, jax.random.key(1), cfg, 3)
        state = algo.start_main_phase(state, cfg)
        state, _ = run_steps_jit(algo.train_step, state, data, jax.random.key(2), cfg, 5)
        after, _ = run_steps_jit(algo.train_step, state, data, jax.random.key(3), cfg, 1)
        for part, params in trainables(state).items():
            assert leaves_changed(params, trainables(after)[part]) == moves, (part, decay_steps)


def test_decay_can_spare_the_critics():
    cfg = tiny_config("iql", **{"agent.lr_decay": True, "agent.lr_decay_steps": 5})
    cfg = replace(cfg, **{"agent.decay_critic_lr": False})
    algo, data = get_algorithm("iql"), tiny_data()
    state = algo.init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)
    state, _ = run_steps_jit(algo.train_step, state, data, jax.random.key(2), cfg, 5)
    after, _ = run_steps_jit(algo.train_step, state, data, jax.random.key(3), cfg, 1)
    assert leaves_changed(state.critics.q.params, after.critics.q.params)
    assert not leaves_changed(state.policy.params, after.policy.params)


def test_deterministic_bc_fits_the_dataset_actions_by_mean_squared_error():
    cfg = tiny_config("bc", **{"agent.policy": "deterministic", "agent.lr": 3e-3})
    data = tiny_data()
    # Actions that are a function of the state, as a behaviour policy's are.
    weights = jax.random.normal(jax.random.key(9), (OBS_DIM, ACT_DIM))
    data = data._replace(actions=0.8 * jnp.tanh(data.observations @ weights))
    algo = get_algorithm("bc")
    state = algo.init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)
    _, first = run_steps_jit(algo.train_step, state, data, jax.random.key(1), cfg, 1)
    state, _ = run_steps_jit(algo.train_step, state, data, jax.random.key(1), cfg, 300)
    predicted = algo.act_mean(acting_params(state), data.observations, cfg)
    mse = float(jnp.mean((predicted - data.actions) ** 2))
    # The logged loss is the MSE of the acting policy, and training lowers it.
    assert float(first["policy/loss"]) > mse
    assert mse < 0.5 * float(jnp.mean(data.actions**2))


@pytest.mark.parametrize("policy", ["gaussian", "implicit"])
def test_candidates_share_their_state_and_are_scored_like_tiled_ones(policy):
    # N candidates per state are drawn with the state's work done once (broadcast), and
    # scored by min target Q; the result is what tiling the state N times gives.
    cfg = tiny_config("dtql", **{"agent.policy": policy, "agent.num_candidates": 8})
    state = get_algorithm("dtql").init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)
    nets, agent = build_networks(cfg.agent, ACT_DIM), cfg.agent
    obs = tiny_data().observations[:3]
    key = jax.random.key(5)
    candidates = sample_candidates(nets, state.policy.params, obs, key, agent, 1.0)
    noise = jax.random.normal(key, (3, 8, ACT_DIM))
    tiled_obs = jnp.repeat(obs, 8, axis=0)
    tiled, _ = actions_from_noise(
        nets, state.policy.params, tiled_obs, noise.reshape(24, -1), agent, 1.0
    )
    np.testing.assert_allclose(
        candidates, jnp.clip(tiled, -1, 1).reshape(3, 8, -1), rtol=1e-5, atol=1e-6
    )
    q_params = state.critics.target_q_params
    q = jnp.min(nets.q.apply(q_params, tiled_obs, candidates.reshape(24, -1)), axis=0)
    best = jnp.take_along_axis(candidates, jnp.argmax(q.reshape(3, 8), -1)[:, None, None], 1)
    chosen = select_by_q(nets, q_params, obs, candidates, key=None)
    np.testing.assert_allclose(chosen, best[:, 0])


def test_diffusion_acting_needs_a_behaviour_model_and_critics():
    assert get_algorithm("dtql").act_diffusion is not None
    assert get_algorithm("kl").act_diffusion is not None
    for name in ("iql", "bc"):
        with pytest.raises(RunError, match="act_mode=diffusion needs a behaviour diffusion"):
            check_act_mode(get_algorithm(name), "diffusion")


def test_each_way_of_acting_is_passed_only_the_parameters_it_reads():
    cfg = tiny_config("dtql")
    acting = acting_params(
        get_algorithm("dtql").init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)
    )
    assert acting.policy is not None and acting.target_q is not None
    mean = acting.needed_for("mean")
    assert mean.target_q is None and mean.diffusion is None and mean.policy is acting.policy
    diffusion = acting.needed_for("diffusion")
    assert diffusion.policy is None and diffusion.diffusion is acting.diffusion
    obs = tiny_data().observations[:3]
    np.testing.assert_array_equal(act_mean(mean, obs, cfg), act_mean(acting, obs, cfg))
