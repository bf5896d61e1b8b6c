"""`dtql collect`: D4RL-style datasets for the Gymnasium MuJoCo envs, made as D4RL made its own.

Modules (imports run one way: args <- rollout <- sac <- provenance <- levels): ``args`` the
arguments, constants, names and checks; ``rollout`` a policy run in the vector env into
transitions; ``sac`` the SAC run with its snapshots and --resume; ``provenance`` the record of how
a dataset was made; ``levels`` each level's dataset, the writes and `run_collect`.

Protocol (D4RL's Gym locomotion datasets)
-----------------------------------------
1. Train an online SAC agent (stable-baselines3, never our own SAC) for at most ``sac_steps``
   env steps, one env, with rl-baselines3-zoo's MuJoCo settings (SB3 defaults, 10k random warm-up
   steps). Every ``eval_every`` steps the *stochastic* policy (the one that collects the data, as
   in D4RL) is evaluated for ``eval_episodes`` episodes in the evaluation env.
2. Behaviour policies:

   * ``random``: the randomly initialised SAC policy (step 0);
   * ``medium``: the first snapshot whose evaluated return reaches
     ``medium_fraction`` x the D4RL expert reference return (1/3 by default);
   * ``expert``: the final policy after ``sac_steps`` steps, provided its evaluated return reaches
     ``expert_fraction`` x the expert reference return; otherwise it is skipped with a message.

3. Datasets (levels): ``random``, ``medium`` and ``expert`` are ``transitions`` steps of their
   policy's stochastic actions; ``medium-replay`` is SAC's replay buffer up to the medium snapshot
   (random warm-up included, as in D4RL; its size is whatever the buffer held); ``medium-expert``
   is medium followed by expert (2 x ``transitions``). A level that cannot be made is skipped
   with its reason; the run still succeeds (exit 0) when any requested level was written.

When no requested level needs the expert, SAC stops at the medium snapshot.

Collection runs ``num_envs`` copies of the evaluation env with one batched policy call per step;
each env collects its share of ``transitions`` as one stream, its last episode cut at the share
(a timeout). Terminals and timeouts are recorded separately (see ``rollout``).

Evaluation records (state.json, and each behaviour policy in the provenance) use the project's
result vocabulary, `dtql.evaluation.SUMMARY_KEYS`, plus step, SAC wall time, actions and seed.

Names and files (everything is written under ``--out``; nothing goes to ~/.minari)
-------------------------------------------------------------------------------------------
A dataset is named ``dtql/<env>-<level>-v0``, e.g. ``dtql/hopper-medium-v0``: D4RL's
``<env>-<level>`` in the ``dtql`` Minari namespace, with its own version (v0) because the data
come from Gymnasium v5 envs and are not D4RL's v2 datasets. ``<env>`` is hopper, halfcheetah,
walker2d or ant.

    out/summary.json                  what became of each level (written / kept / skipped);
                                      a resume keeps the records of levels it was not asked for
    out/sac/                          the SAC run: checkpoint.zip, replay_buffer.pkl, state.json
                                      (evaluations, snapshots), policy_{random,medium,final}.zip
    out/minari/dtql/<env>-<level>-v0/
        data/                         the Minari dataset: metadata.json, main_data.hdf5
        collect_info.json             how it was made (= metadata.json's "dtql_collect")
    out/d4rl/<env>-<level>-v0.hdf5    with --hdf5: D4RL layout (observations, actions, rewards,
                                      terminals, timeouts, next_observations, and
                                      metadata/dtql_collect as a JSON string), + .json beside it

``dtql.data.load_dataset`` reads ``out/minari/dtql/<env>-<level>-v0`` or the .hdf5 file; with
MINARI_DATASETS_PATH=out/minari the id ``dtql/<env>-<level>-v0`` works too. The writers are
`dtql.data.minari.write_minari` and `dtql.data.d4rl.write_d4rl`, beside the readers.

Minari's metadata.json holds ``eval_env_spec`` (the evaluation env, with D4RL's 1000-step time
limit), ``ref_min_score`` / ``ref_max_score`` (D4RL's random and expert returns, from
`dtql.envs.registry`), ``algorithm_name``, ``description``, ``requirements`` (pins of the
simulator) and the provenance record under ``"dtql_collect"`` (see ``provenance``).

Checkpoints and --resume
------------------------
SAC is checkpointed every ``checkpoint_every`` steps and at its end. ``--resume`` continues from
the last checkpoint (the episode in progress there is cut, so a resumed run is not bit-identical
to an uninterrupted one; see ``sac``) and keeps datasets already written. A larger
``--sac-steps`` on resume trains on, with the replay buffer grown to the new budget. Runs saved
before the evaluation records used SUMMARY_KEYS resume too (`sac.rename_old_eval_keys`).

Seeds: SAC and its env use ``seed``; evaluation envs ``seed + 10_000 (+ i for env i)``;
collection of random / medium / expert uses ``seed + 20_000 / 30_000 / 40_000`` for the envs
(+ i) and the action noise (torch).

stable-baselines3 and torch are the optional extra ``dtql[collect]``, imported only when a run
starts (``import dtql.collect`` does not import torch); torch runs on one thread.
"""

from dtql.collect.args import CollectArgs
from dtql.collect.levels import run_collect

__all__ = ["CollectArgs", "run_collect"]
