"""`dtql collect`: D4RL-style datasets for the Gymnasium MuJoCo envs, made as D4RL made its own.

Modules (imports run one way: args <- rollout <- buffer <- sac <- policies <- replay <- provenance
<- sources <- snapshots <- export <- levels, catalogue): ``args`` the arguments, constants, names
and checks; ``rollout`` a policy run in the vector env into transitions; ``buffer`` SAC's replay
buffer read as transitions; ``sac`` the SAC run with its snapshots and --resume; ``policies``
behaviour policies as files that act with numpy alone; ``replay`` medium-replay as the SAC run's
actions; ``provenance`` the record of how a dataset was made; ``sources`` where a run's behaviour
policies come from (its SAC run, or policy files); ``snapshots`` the medium chosen by its
stochastic and mean-action scores; ``export`` --save-policies; ``levels`` each level's dataset,
the writes and `run_collect`; ``catalogue`` `dtql data list` (what is local, what the shipped
files make).

Protocol (D4RL's Gym locomotion datasets)
-----------------------------------------
1. Train an online SAC agent (stable-baselines3, never our own SAC) for at most ``sac_steps``
   env steps, one env, with rl-baselines3-zoo's MuJoCo settings (SB3 defaults, 10k random warm-up
   steps). Every ``eval_every`` steps the *stochastic* policy (the one that collects the data, as
   in D4RL) is evaluated for ``eval_episodes`` episodes in the evaluation env.
2. Behaviour policies:

   * ``random``: actions uniform in the action bounds (no SAC needed; SAC's own warm-up acts so);
   * ``medium``: the first snapshot whose evaluated return reaches
     ``medium_fraction`` x the D4RL expert reference return (1/3 by default);
   * ``expert``: the final policy: the first evaluated snapshot whose return reaches
     ``expert_stop_fraction`` x the expert reference return (0.9: D4RL trained its experts to
     within about 10%), where SAC stops, or else the policy after ``sac_steps`` steps. It is used
     when its evaluated return reaches ``expert_fraction`` x the expert return (0.7); otherwise
     it is skipped with a message. After the medium snapshot, evaluations run every
     ``expert_eval_every`` steps.

3. Datasets (levels): ``random``, ``medium`` and ``expert`` are ``transitions`` steps of their
   policy's stochastic actions; ``medium-replay`` is SAC's replay buffer up to the medium snapshot
   (random warm-up included, as in D4RL; its size is whatever the buffer held); ``medium-expert``
   is medium followed by expert (2 x ``transitions``). A level that cannot be made is skipped
   with its reason; the run still succeeds (exit 0) when any requested level was written.

When no requested level needs the expert, SAC stops at the medium snapshot.

Collection runs ``num_envs`` copies of the evaluation env with one batched policy call per step;
each env collects its share of ``transitions`` as one stream, its last episode cut at the share
(a timeout). Terminals and timeouts are recorded separately (see ``rollout``). The policy acts
with numpy (`policies.BehaviourPolicy`: SB3's SAC actor and its sampling, reproduced), its noise
drawn from a numpy Generator of the level's seed, so a dataset is a function of the policy and
the seed: the same whether the policy came from this run's SAC or from a policy file. Hopper-v5
collects about 10,000 transitions per CPU-second with the medium policy (MuJoCo and Gymnasium's
env code are most of it; SB3's predict() was 5-25% slower): 1M medium transitions took 181 s
wall on one core of a busy 2-core machine, 2 min of CPU.

Behaviour-policy files and --from-policies (no SAC, no torch)
-------------------------------------------------------------
The package ships the behaviour policies (``dtql/assets/policies``, see its README): per env
``<env>-random.json`` (uniform: bounds and evaluation) and, once a SAC run has made them,
``<env>-medium`` / ``<env>-expert`` (``.safetensors`` actor weights + ``.json`` provenance:
snapshot step, evaluated return and normalized score, seeds, SAC settings, library versions, the
command that wrote it and the command that reruns its SAC) and ``<env>-medium-replay``. From
them::

    dtql collect Hopper-v5 --from-policies                 # every level whose file is there
    dtql collect Hopper-v5 --from-policies --policies DIR  # policy files of your own

regenerates the datasets in minutes, deterministic for ``--seed`` (same seed: identical arrays),
with a provenance record naming each file and its sha256. ``medium-replay`` is SAC's replay
buffer up to the medium snapshot (200 MB pickled per run). It ships compactly as the actions SAC
took (``replay``: 12 bytes a step for Hopper): MuJoCo is deterministic, so replaying them from
the run's seed rebuilds the buffer's transitions bit for bit, checked against their recorded
sha256. Without that file, --from-policies skips medium-replay with the command of a seeded SAC
rerun (the medium policy's ``sac_rerun_command``, e.g. ``dtql collect Hopper-v5 --levels
medium-replay --eval-every 1000``), which trains SAC to the medium snapshot again (hours on one
core; the same snapshot only where SB3/torch are deterministic and the run is not resumed).

Policy files come from a SAC run folder with ``--save-policies``, which trains nothing::

    dtql collect Hopper-v5 --out SAC_OUT --save-policies src/dtql/assets/policies

Evaluation records (state.json, and each behaviour policy in the provenance) use the project's
result vocabulary, `dtql.evaluation.SUMMARY_KEYS`, plus step, SAC wall time, actions and seed.

Names and files (everything is written under ``--out``; nothing goes to ~/.minari)
-------------------------------------------------------------------------------------------
``--out`` defaults to ``$DTQL_DATASETS_DIR/<env>`` (``~/.dtql/datasets/<env>``), where names find
the datasets: ``dtql train --task walker2d-medium-replay-v2`` and ``dtql data info
walker2d-medium-replay-v2`` (or ``dtql/walker2d-medium-replay-v0``) read the local dataset when
D4RL's and Minari's own folders do not hold that name (`dtql.data.load`).

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
before the evaluation records used SUMMARY_KEYS resume too (`dtql.upgrade.upgrade_sac_state`).

Seeds: SAC and its env use ``seed``; evaluation envs ``seed + 10_000 (+ i for env i)``;
collection of random / medium / expert uses ``seed + 20_000 / 30_000 / 40_000`` for the envs
(+ i) and the action noise (numpy PCG64 of SeedSequence(that seed, spawn_key=(1,)), a stream
apart from every env's).

stable-baselines3 and torch are the optional extra ``dtql[collect]``, imported only when a SAC
run starts or --save-policies reads a snapshot (``import dtql.collect`` and --from-policies do
not import torch); torch runs on one thread.
"""

from dtql.collect.args import CollectArgs
from dtql.collect.levels import run_collect

__all__ = ["CollectArgs", "run_collect"]
