"""The runner of `dtql toy`: one variant on one scenario (``run_variant``), the whole suite with
its figures and metrics files (``run_suite``), a single scenario (``run_scenario``), and the
entry point ``run_toy``. Keys derive from (seed, scenario, variant) only, so a run alone
repeats its suite row."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from dtql.data.toy import DATASETS
from dtql.toylab.figures import (
    FIG1_GRID,
    FIG1_SIGMAS,
    action_grid,
    plot_no_q,
    plot_policy_grid,
    plot_trust_region_maps,
    trust_region_loss_map,
)
from dtql.toylab.metrics import format_table, metric_definitions, toy_metrics
from dtql.toylab.scenarios import (
    KL_IMPLICIT,
    KL_NO_Q,
    MAX_ACTION,
    SCENARIOS,
    TR_GAUSSIAN,
    TR_IMPLICIT,
    Problem,
    Scenario,
    Variant,
    make_problem,
)
from dtql.toylab.toy_args import RUN_FIELDS, ToyArgs, check_args
from dtql.toylab.training import fit_bc, policy_samples, pretrain, toy_config, train_variant

SUITE_VARIANTS = (TR_GAUSSIAN, KL_IMPLICIT, TR_IMPLICIT)
"""The variants run on every scenario; KL_NO_Q runs on each dataset's first scenario."""

PretrainCache = dict[tuple[str, str, str], Any]
"""Pretrained states by (scenario, reg, policy), and KL's BC fits by ('bc', dataset, policy)."""


def _keys(seed: int, scenario: Scenario, variant: Variant) -> tuple[jax.Array, jax.Array]:
    """(pretraining key, run key), from (seed, scenario, variant) only, so that a run alone
    repeats its suite row. Pretraining ignores ``q_term``: KL alone reuses KL's pretraining."""
    key = jax.random.fold_in(jax.random.key(seed), list(SCENARIOS).index(scenario.name))
    code = 2 * ("tr", "kl").index(variant.reg) + ("gaussian", "implicit").index(variant.policy)
    key_pretrain = jax.random.fold_in(key, code)
    return key_pretrain, jax.random.fold_in(key_pretrain, 1 + int(not variant.q_term))


def _log(message: str) -> None:
    print(f"[toy] {message}", file=sys.stderr, flush=True)


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
    state, _ = train_variant(pretrained, problem, variant, cfg, key_train)
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
        "definitions": metric_definitions(),
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
    grid = action_grid(FIG1_GRID)
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
