"""Behaviour policies as small files that act with numpy alone (no torch, no stable-baselines3).

A behaviour policy is one of two kinds:

* ``uniform``: actions uniform in the env's action bounds (the ``random`` level). Its file is the
  json record alone (bounds, evaluation, provenance);
* ``sac-actor``: the actor of a stable-baselines3 SAC snapshot: ``<stem>.safetensors`` holds its
  tensors under SB3's own state_dict names (``latent_pi.0.weight``, ..., ``mu.*``,
  ``log_std.*``; float32, torch's [out, in] layout, so they also load into an SB3 actor) and
  ``<stem>.json`` the architecture, action bounds, the tensors file's sha256 and the provenance.

`BehaviourPolicy.act` draws actions as SB3 2.9's SAC does with ``deterministic=False``
(`sac.policies.Actor` then `BasePolicy.predict`): latent = ``latent_pi`` (Linear + ReLU layers),
mean = ``mu``(latent), log_std = clamp(``log_std``(latent), -20, 2), a Gaussian sample
mean + exp(log_std) * N(0, 1), tanh, then the rescale from [-1, 1] to the bounds,
low + (a + 1) / 2 * (high - low). The noise comes from a numpy Generator (`action_rng`), so a seed
gives the same actions every time (same numpy and BLAS), with no torch at all.

Files are named ``<env>-<level>`` (e.g. ``hopper-medium.json``); the package ships its own under
``dtql/assets/policies`` (see its README). Loading reads json and safetensors only (never pickle);
`save_behaviour_policy` needs torch and SB3 (the ``collect`` extra) because it reads an SB3 zip.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as dump_safetensors

from dtql.assets import ASSETS
from dtql.collect.rollout import ActFn
from dtql.collect.sac import import_sb3
from dtql.envs.registry import TaskSpec, get_task
from dtql.files import write_bytes_atomic, write_json_atomic

FORMAT_VERSION = 1
UNIFORM, SAC_ACTOR = "uniform", "sac-actor"
POLICY_LEVELS = ("random", "medium", "expert")  # the levels that have a policy of their own
SHIPPED_POLICIES = ASSETS / "policies"
# SB3 SAC's clamp of the actor's log std (stable_baselines3/sac/policies.py LOG_STD_MIN/MAX).
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
# Spawn key of the action noise's SeedSequence: a child of the seed, so it never replays the
# stream of an env seeded with the same number (Gymnasium seeds envs with SeedSequence(seed)).
ACTION_NOISE_KEY = (1,)


class PolicyFileError(ValueError):
    """A behaviour-policy file that cannot be read or does not fit; the message is one line."""


def action_rng(seed: int) -> np.random.Generator:
    """The numpy Generator of a collection's action noise for `seed`."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=ACTION_NOISE_KEY))
    )


def unscale_action(low: np.ndarray, high: np.ndarray, scaled: np.ndarray) -> np.ndarray:
    """[-1, 1] -> [low, high] as SB3's `BasePolicy.unscale_action` computes it (float32)."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    return low + np.float32(0.5) * (np.asarray(scaled, np.float32) + np.float32(1)) * (high - low)


def policy_stem(folder: str | Path, env_name: str, level: str) -> Path:
    """folder/<env>-<level>: the path of a policy's files without their suffix."""
    return Path(folder) / f"{env_name}-{level}"


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class Dense:
    """y = x @ weight.T + bias, weight [out, in] as in torch's Linear."""

    weight: np.ndarray
    bias: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # numpy's own loops, not BLAS: OpenBLAS sums in an order that depends on its thread
        # count, and a last-bit difference grows into another trajectory in MuJoCo. einsum sums
        # every row alike in any process and batch (3x matmul's time, ~10% of a Hopper step).
        return np.einsum("ni,oi->no", x, self.weight) + self.bias


@dataclass(frozen=True)
class BehaviourPolicy:
    """A behaviour policy that acts on batches of observations with numpy (float32)."""

    record: dict[str, Any]
    """The json record: kind, env_id, level, obs_dim, act_dim, bounds, network, provenance."""
    low: np.ndarray
    high: np.ndarray
    hidden: tuple[Dense, ...] = ()
    mu: Dense | None = None
    log_std: Dense | None = None
    files: dict[str, str] = field(default_factory=dict)
    """For a loaded policy: its files and their sha256 (recorded in the datasets made from it)."""

    @property
    def kind(self) -> str:
        return str(self.record["kind"])

    @property
    def provenance(self) -> dict[str, Any]:
        return dict(self.record.get("provenance", {}))

    def gaussian(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and clamped log std of the pre-tanh Gaussian, each [n, act_dim] (sac-actor)."""
        if self.mu is None or self.log_std is None:
            raise ValueError(f"a {self.kind} policy has no Gaussian")
        x = np.asarray(obs, dtype=np.float32)
        for layer in self.hidden:
            x = np.maximum(layer(x), np.float32(0))
        return self.mu(x), np.clip(self.log_std(x), LOG_STD_MIN, LOG_STD_MAX)

    def mean_action(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic action (SB3's ``predict(deterministic=True)``); for uniform, the
        middle of the bounds."""
        n = len(obs)
        if self.kind == UNIFORM:
            return np.tile((self.low + self.high) / 2, (n, 1)).astype(np.float32)
        mean, _ = self.gaussian(obs)
        return self._unscale(np.tanh(mean))

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Stochastic actions [n, act_dim] in the bounds, for observations [n, obs_dim]."""
        n = len(obs)
        if self.kind == UNIFORM:
            return rng.uniform(self.low, self.high, (n, len(self.low))).astype(np.float32)
        mean, log_std = self.gaussian(obs)
        noise = rng.standard_normal(mean.shape, dtype=np.float32)
        return self._unscale(np.tanh(mean + np.exp(log_std) * noise))

    def act_fn(self, rng: np.random.Generator) -> ActFn:
        """`act` with its Generator bound: the act function of a rollout or an evaluation."""
        return partial(self.act, rng=rng)

    def _unscale(self, scaled: np.ndarray) -> np.ndarray:
        return unscale_action(self.low, self.high, scaled)

    def tensors(self) -> dict[str, np.ndarray]:
        """The actor's tensors under SB3's state_dict names, torch's [out, in] layout."""
        named = [(f"latent_pi.{2 * i}", layer) for i, layer in enumerate(self.hidden)]
        named += [("mu", self.mu), ("log_std", self.log_std)]
        out: dict[str, np.ndarray] = {}
        for name, layer in named:
            if layer is not None:
                out[f"{name}.weight"] = np.ascontiguousarray(layer.weight)
                out[f"{name}.bias"] = np.ascontiguousarray(layer.bias)
        return out


def uniform_policy(
    task: TaskSpec, low: np.ndarray, high: np.ndarray, provenance: dict[str, Any]
) -> BehaviourPolicy:
    """The random level: actions uniform in [low, high] (the task's action bounds)."""
    record = _base_record(UNIFORM, task, "random", low, high)
    return build_policy({**record, "provenance": provenance}, {}, where="uniform policy")


def _base_record(kind: str, task: TaskSpec, level: str, low: Any, high: Any) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "env_id": task.env_id,
        "level": level,
        "obs_dim": task.obs_dim,
        "act_dim": task.act_dim,
        "action_low": [float(v) for v in np.asarray(low).ravel()],
        "action_high": [float(v) for v in np.asarray(high).ravel()],
    }


def build_policy(
    record: dict[str, Any],
    tensors: dict[str, np.ndarray],
    where: str,
    files: dict[str, str] | None = None,
) -> BehaviourPolicy:
    """A policy from its json record and tensors, every field checked (errors name `where`)."""

    def need(name: str, ok: bool, expected: str) -> None:
        if not ok:
            raise PolicyFileError(
                f"{where}: field {name!r} is {record.get(name)!r}, expected {expected}"
            )

    need("format_version", record.get("format_version") == FORMAT_VERSION, str(FORMAT_VERSION))
    need("kind", record.get("kind") in (UNIFORM, SAC_ACTOR), f"{UNIFORM!r} or {SAC_ACTOR!r}")
    need("level", record.get("level") in POLICY_LEVELS, f"one of {', '.join(POLICY_LEVELS)}")
    for name in ("obs_dim", "act_dim"):
        need(name, isinstance(record.get(name), int) and record[name] >= 1, "an integer >= 1")
    act_dim = record["act_dim"]
    low = np.asarray(record.get("action_low", []), dtype=np.float32)
    high = np.asarray(record.get("action_high", []), dtype=np.float32)
    for name, bound in (("action_low", low), ("action_high", high)):
        need(
            name,
            bound.shape == (act_dim,) and bool(np.all(np.isfinite(bound))),
            f"{act_dim} finite numbers",
        )
    need("action_high", bool(np.all(high > low)), "each above action_low")
    if record["kind"] == UNIFORM:
        return BehaviourPolicy(record, low, high, files=files or {})

    network = record.get("network") or {}
    sizes = network.get("hidden_sizes")
    need(
        "network",
        isinstance(sizes, list)
        and all(isinstance(s, int) and s > 0 for s in sizes)
        and network.get("activation") == "relu"
        and network.get("log_std_clamp") == [LOG_STD_MIN, LOG_STD_MAX],
        f"hidden_sizes (positive integers), activation 'relu', log_std_clamp "
        f"[{LOG_STD_MIN}, {LOG_STD_MAX}]",
    )
    dims = [record["obs_dim"], *sizes]
    expected = {f"latent_pi.{2 * i}.weight": (out, dims[i]) for i, out in enumerate(sizes)}
    expected |= {f"latent_pi.{2 * i}.bias": (out,) for i, out in enumerate(sizes)}
    for head in ("mu", "log_std"):
        expected |= {f"{head}.weight": (act_dim, dims[-1]), f"{head}.bias": (act_dim,)}
    if set(tensors) != set(expected):
        raise PolicyFileError(
            f"{where}: tensors {sorted(tensors)}, expected exactly {sorted(expected)}"
        )
    for name, shape in expected.items():
        if tensors[name].shape != shape:
            raise PolicyFileError(
                f"{where}: tensor {name!r} has shape {tensors[name].shape}, expected {shape}"
            )

    def dense(name: str) -> Dense:
        return Dense(
            np.ascontiguousarray(tensors[f"{name}.weight"], dtype=np.float32),
            np.asarray(tensors[f"{name}.bias"], dtype=np.float32),
        )

    return BehaviourPolicy(
        record,
        low,
        high,
        hidden=tuple(dense(f"latent_pi.{2 * i}") for i in range(len(sizes))),
        mu=dense("mu"),
        log_std=dense("log_std"),
        files=files or {},
    )


# --------------------------------------------------------------------------- files


def write_behaviour_policy(policy: BehaviourPolicy, stem: str | Path) -> list[Path]:
    """Write `policy` as <stem>.json (+ <stem>.safetensors for a sac-actor), the json last."""
    tensors = policy.tensors() if policy.kind == SAC_ACTOR else {}
    return write_tensors_and_record(policy.record, tensors, stem)


def read_policy_files(stem: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict]:
    """The json record of <stem>.json, the tensors of the safetensors file it names (checked
    against its sha256; none for a uniform policy) and the files with their sha256."""
    path = Path(f"{stem}.json")
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise PolicyFileError(f"{path}: no such behaviour-policy file") from None
    except (OSError, ValueError) as e:
        raise PolicyFileError(f"{path}: unreadable ({type(e).__name__}: {e}), expected json") from e
    if not isinstance(record, dict):
        raise PolicyFileError(f"{path}: holds a {type(record).__name__}, expected a json object")
    files = {"json": str(path), "json_sha256": file_sha256(path)}
    if "tensors_file" not in record:
        return record, {}, files
    tensors_path = path.parent / str(record["tensors_file"])
    if (
        not tensors_path.is_file()
        or Path(str(record["tensors_file"])).name != record["tensors_file"]
    ):
        raise PolicyFileError(
            f"{path}: field 'tensors_file' is {record['tensors_file']!r}, expected the name of a "
            "file beside it"
        )
    data = tensors_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != record.get("tensors_sha256"):
        raise PolicyFileError(
            f"{tensors_path}: sha256 {digest}, expected {record.get('tensors_sha256')} "
            f"(field 'tensors_sha256' of {path.name})"
        )
    try:
        tensors = load_safetensors(data)
    except SafetensorError as e:
        raise PolicyFileError(f"{tensors_path}: unreadable safetensors ({e})") from e
    return record, tensors, files | {"tensors": str(tensors_path), "tensors_sha256": digest}


def write_tensors_and_record(
    record: dict[str, Any], tensors: dict[str, np.ndarray], stem: str | Path
) -> list[Path]:
    """<stem>.safetensors (when there are tensors) and <stem>.json naming it, the json last."""
    record, written = dict(record), []
    if tensors:
        tensors_path = Path(f"{stem}.safetensors")
        data = dump_safetensors(tensors)
        write_bytes_atomic(tensors_path, data)
        record["tensors_file"] = tensors_path.name
        record["tensors_sha256"] = hashlib.sha256(data).hexdigest()
        written.append(tensors_path)
    # The provenance goes last: the fields a reader checks come first in the file.
    provenance = record.pop("provenance", {})
    write_json_atomic(f"{stem}.json", {**record, "provenance": provenance})
    return [*written, Path(f"{stem}.json")]


def load_behaviour_policy(stem: str | Path) -> BehaviourPolicy:
    """The policy in <stem>.json (+ the safetensors file it names); json and safetensors only."""
    record, tensors, files = read_policy_files(stem)
    return build_policy(record, tensors, where=files["json"], files=files)


# --------------------------------------------------------------------------- from SB3


def policy_from_sb3(
    model: Any, task: TaskSpec, level: str, provenance: dict[str, Any]
) -> BehaviourPolicy:
    """The actor of a loaded SB3 SAC model as a sac-actor policy (checks it is the plain
    Gaussian MLP actor this module reproduces)."""
    from stable_baselines3.common.torch_layers import FlattenExtractor
    from torch import nn

    actor, where = model.actor, f"SB3 SAC actor of {task.env_id} ({level})"
    space = actor.action_space
    checks = {
        "use_sde": (actor.use_sde is False, "False (gSDE is not reproduced)"),
        "activation_fn": (actor.activation_fn is nn.ReLU, "torch.nn.ReLU"),
        "features_extractor": (
            isinstance(actor.features_extractor, FlattenExtractor),
            "FlattenExtractor",
        ),
        "observation_space.shape": (
            actor.observation_space.shape == (task.obs_dim,),
            f"({task.obs_dim},)",
        ),
        "action_space.shape": (space.shape == (task.act_dim,), f"({task.act_dim},)"),
    }
    for name, (ok, expected) in checks.items():
        if not ok:
            raise PolicyFileError(f"{where}: {name} is not {expected}")
    tensors = {
        k: v.detach().cpu().numpy().astype(np.float32) for k, v in actor.state_dict().items()
    }
    record = {
        **_base_record(SAC_ACTOR, task, level, space.low, space.high),
        "network": {
            "hidden_sizes": [int(s) for s in actor.net_arch],
            "activation": "relu",
            "log_std_clamp": [LOG_STD_MIN, LOG_STD_MAX],
            "squash": "tanh, then low + (a + 1) / 2 * (high - low)",
        },
        "provenance": provenance,
    }
    return build_policy(record, tensors, where=where)


def save_behaviour_policy(
    sb3_zip_path: str | Path, out_stem: str | Path, provenance: dict[str, Any]
) -> list[Path]:
    """Load an SB3 SAC snapshot (zip) and write its actor as <out_stem>.safetensors + .json.

    `provenance` must name the task (``env_id``, a registry name) and the ``level``; it is
    stored as the json's provenance. Returns the files written.
    """
    for key in ("env_id", "level"):
        if key not in provenance:
            raise PolicyFileError(f"provenance of {sb3_zip_path}: no field {key!r}, expected it")
    _, sac_cls = import_sb3()
    model = sac_cls.load(sb3_zip_path, device="cpu")
    policy = policy_from_sb3(model, get_task(provenance["env_id"]), provenance["level"], provenance)
    return write_behaviour_policy(policy, out_stem)
