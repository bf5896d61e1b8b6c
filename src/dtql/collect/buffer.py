"""SAC's replay buffer (stable-baselines3's, read as arrays): its first rows as transitions
(medium-replay), how many rows medium-replay takes, and a copy grown for a larger budget."""

from __future__ import annotations

from typing import Any

from dtql.collect.args import CollectArgs
from dtql.data.transitions import Transitions, transitions_from_rows


def replay_rows(args: CollectArgs, medium: dict[str, Any]) -> int:
    """The replay buffer rows medium-replay takes: --replay-steps, else up to the medium."""
    return args.replay_steps if args.replay_steps is not None else int(medium["step"])


def replay_description(args: CollectArgs) -> str:
    """What medium-replay is, for its provenance."""
    if args.replay_steps is not None:
        return f"SAC replay buffer, its first {args.replay_steps} rows (--replay-steps)"
    return "SAC replay buffer up to the medium snapshot"


def buffer_transitions(buffer: Any, steps: int, unscale: Any) -> Transitions:
    """The first `steps` rows of an SB3 replay buffer as episodes (the last one cut: timeout);
    `unscale` maps the buffer's [-1, 1] actions to the env's (the policy's unscale_action)."""
    if buffer_rows(buffer) < steps:
        raise RuntimeError(f"replay buffer holds {buffer_rows(buffer)} rows, expected >= {steps}")
    dones = buffer.dones[:steps, 0] > 0
    timeouts = dones & (buffer.timeouts[:steps, 0] > 0)
    terminals = dones & ~timeouts
    timeouts[-1] = not terminals[-1]
    return transitions_from_rows(
        observations=buffer.observations[:steps, 0],
        actions=unscale(buffer.actions[:steps, 0]),
        rewards=buffer.rewards[:steps, 0],
        next_observations=buffer.next_observations[:steps, 0],
        terminals=terminals,
        timeouts=timeouts,
        source="sac replay buffer",
    )


def grown_buffer(buffer: Any, size: int) -> Any:
    """A copy of an SB3 replay buffer with room for `size` rows, holding the same rows."""
    grown = type(buffer)(
        size,
        buffer.observation_space,
        buffer.action_space,
        device=buffer.device,
        n_envs=buffer.n_envs,
        optimize_memory_usage=buffer.optimize_memory_usage,
        handle_timeout_termination=buffer.handle_timeout_termination,
    )
    rows = buffer_rows(buffer)
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        getattr(grown, name)[:rows] = getattr(buffer, name)[:rows]
    grown.pos = rows
    return grown


def buffer_rows(buffer: Any) -> int:
    """Rows an SB3 replay buffer holds from its start; -1 once it has wrapped (rows overwritten).

    The buffer is sized sac_steps (grown on a resume with more), so it never wraps.
    """
    if not buffer.full:
        return int(buffer.pos)
    return int(buffer.buffer_size) if buffer.pos == 0 else -1
