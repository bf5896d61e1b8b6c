"""Where the chunks of a run end. Pure functions of the config and the step.

The run is cut into chunks at fixed steps (every ``log_every``, the end of pretraining, every
evaluation and checkpoint), and chunk ``k`` draws its randomness from ``fold_in(key, start step)``.
Both depend only on the config, so a resumed run replays exactly the chunks an uninterrupted run
would have, and on CPU logs the same numbers.
"""

from __future__ import annotations

from dtql.config import RunConfig


def is_eval_step(cfg: RunConfig, step: int) -> bool:
    """Evaluate every ``eval_every`` steps after pretraining, and always at the end."""
    if step == cfg.learner.total_steps:
        return True
    return cfg.eval_every > 0 and step % cfg.eval_every == 0 and step > cfg.learner.pretrain_steps


def is_checkpoint_step(cfg: RunConfig, step: int) -> bool:
    return step == cfg.learner.total_steps or step % cfg.checkpoint_every == 0


def next_boundary(cfg: RunConfig, step: int) -> int:
    """The end of the chunk that starts at ``step``."""

    def next_multiple(every: int) -> int:
        return (step // every + 1) * every

    candidates = [
        cfg.learner.total_steps,
        next_multiple(cfg.log_every),
        next_multiple(cfg.checkpoint_every),
    ]
    if cfg.eval_every > 0:
        candidates.append(next_multiple(cfg.eval_every))
    if step < cfg.learner.pretrain_steps:
        candidates.append(cfg.learner.pretrain_steps)
    return min(candidates)
