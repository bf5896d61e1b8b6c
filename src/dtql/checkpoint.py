"""Checkpoints of training state as safetensors files: no code runs on load, writes are atomic.

A checkpoint holds one pytree (networks, optimizer states, PRNG keys, step counters) and a
JSON-serialisable metadata dict (config, step, ...). Layout of one file:

* every leaf of the pytree is one tensor, named by its path as ``jax.tree_util.keystr`` writes
  it, for example ``.opt[0].mu['params']['Dense_0']['kernel']``;
* the safetensors header's string-to-string metadata map holds ``format``, ``format_version``,
  ``leaf_count``, ``sha256`` (of every leaf's name and bytes, checked on load: a damaged file
  is refused, never restored) and ``metadata`` (the caller's dict, as JSON).

Safetensors is a flat header plus raw bytes, so loading a file cannot run code (unlike pickle).
The tree structure is not stored: ``load_checkpoint`` takes a *template*, a state built fresh
with the same config, and checks that every leaf of the file fits it.

Checkpoints of a run live at ``run_dir/checkpoints/step_{step:09d}.safetensors``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import safetensors.numpy
from safetensors import SafetensorError, safe_open

from dtql.files import write_bytes_atomic

FORMAT_NAME = "dtql-checkpoint"
FORMAT_VERSION = 1

# Keys that save_checkpoint computes itself; read_checkpoint_metadata adds them to the dict.
_RESERVED_METADATA_KEYS = ("format_version", "leaf_count", "sha256")

_CHECKPOINT_NAME = re.compile(r"step_(\d+)\.safetensors")


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or does not fit the state it is loaded into."""


# --- Paths -------------------------------------------------------------------------------------


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    """The file of the checkpoint at ``step``: ``run_dir/checkpoints/step_{step:09d}.safetensors``.

    Zero-padding makes the names sort by step in a file listing.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return Path(run_dir) / "checkpoints" / f"step_{step:09d}.safetensors"


def checkpoints_by_step(run_dir: str | Path) -> dict[int, Path]:
    """Every checkpoint file in ``run_dir/checkpoints`` by its step, newest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return {}
    steps = {}
    for path in folder.iterdir():
        # fullmatch skips the hidden temp files of writes in progress (".step_....tmp").
        match = _CHECKPOINT_NAME.fullmatch(path.name)
        if match and path.is_file():
            steps[int(match.group(1))] = path
    return dict(sorted(steps.items(), reverse=True))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step in ``run_dir/checkpoints``, or None if there is none."""
    return next(iter(checkpoints_by_step(run_dir).values()), None)


# --- Saving ------------------------------------------------------------------------------------


def save_checkpoint(path: str | Path, state: Any, metadata: dict) -> None:
    """Write ``state`` (any JAX/NumPy pytree) and ``metadata`` to ``path`` atomically.

    ``metadata`` must be JSON-serialisable. Its keys ``format_version`` and ``leaf_count`` are
    ignored: the file's own values are returned on load. The file is written to a temp file in
    the same folder and renamed over ``path``, so ``path`` holds either the previous checkpoint or
    the complete new one, never a partial file. The folder is created if needed.
    """
    path = Path(path)
    tensors: dict[str, np.ndarray] = {}
    for key_path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        name = jax.tree_util.keystr(key_path)
        if name in tensors:
            raise ValueError(f"two leaves of the state share the path {name}")
        tensors[name] = _leaf_to_numpy(name, leaf)

    user_metadata = {k: v for k, v in metadata.items() if k not in _RESERVED_METADATA_KEYS}
    header = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "leaf_count": str(len(tensors)),
        "sha256": tensors_sha256(tensors),
        # json.dumps raises TypeError on a non-serialisable value before anything is written.
        "metadata": json.dumps(user_metadata),
    }
    write_bytes_atomic(path, safetensors.numpy.save(tensors, metadata=header))


def tensors_sha256(tensors: dict[str, np.ndarray]) -> str:
    """sha256 over the leaves in name order: each name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _leaf_to_numpy(name: str, leaf: Any) -> np.ndarray:
    """The array stored for one leaf: a host copy with the leaf's exact dtype and bytes."""
    if _is_typed_key(leaf):
        # Typed PRNG keys (jax.random.key) have no NumPy dtype; store their uint32 key data.
        leaf = jax.random.key_data(leaf)
    array = np.asarray(leaf)
    if array.dtype.kind in "OUS":
        raise TypeError(f"leaf {name} is not numeric (dtype {array.dtype}); cannot checkpoint it")
    if not array.flags.c_contiguous:
        # safetensors copies raw memory; a strided view must be made dense first.
        array = array.copy(order="C")
    return array


def _is_typed_key(leaf: Any) -> bool:
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


# --- Loading -----------------------------------------------------------------------------------


def read_checkpoint_metadata(path: str | Path) -> dict:
    """The metadata dict saved with the checkpoint, plus ``format_version`` and ``leaf_count``.

    Reads only the header, not the arrays.
    """
    path = Path(path)
    try:
        with safe_open(path, framework="numpy") as file:
            header = file.metadata() or {}
    except SafetensorError as error:
        raise CheckpointError(f"{path}: not a valid safetensors file ({error})") from error
    return _parse_header(path, header)


def load_checkpoint(path: str | Path, template: Any) -> tuple[Any, dict]:
    """Restore the state saved at ``path`` into the structure of ``template``.

    ``template`` is a state built fresh with the same config. Every leaf path of the template
    must be in the file with the same shape and dtype, and the file must hold no other leaves;
    otherwise CheckpointError names the file, the first offending leaf and what differs.

    Leaves come back as the template's leaf types: JAX arrays (on the default device), NumPy
    arrays, typed PRNG keys, or Python scalars. A Python-scalar leaf in the template (say a step
    counter ``0``) accepts any 0-d array of the same kind, because a jitted update turns such a
    counter into an int32 JAX array before it is saved.

    Returns ``(state, metadata)``, metadata as ``read_checkpoint_metadata`` gives it.
    """
    path = Path(path)
    try:
        with safe_open(path, framework="numpy") as file:
            header = file.metadata() or {}
            metadata = _parse_header(path, header)
            stored = {name: file.get_tensor(name) for name in file.keys()}
    except SafetensorError as error:
        raise CheckpointError(f"{path}: not a valid safetensors file ({error})") from error
    if len(stored) != metadata["leaf_count"]:
        raise CheckpointError(
            f"{path}: header says {metadata['leaf_count']} leaves, file holds {len(stored)}"
        )
    # Files written before the checksum have none; every file written since is checked.
    if "sha256" in header and tensors_sha256(stored) != header["sha256"]:
        raise CheckpointError(f"{path}: checksum mismatch (the file is damaged)")

    template_leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    problems: list[str] = []
    restored: list[Any] = []
    for key_path, template_leaf in template_leaves:
        name = jax.tree_util.keystr(key_path)
        if name not in stored:
            problems.append(f"leaf {name} is missing from the file")
            continue
        mismatch = _mismatch(stored[name], template_leaf)
        if mismatch:
            problems.append(f"leaf {name}: {mismatch}")
            continue
        restored.append(_restore_leaf(stored[name], template_leaf))

    template_names = {jax.tree_util.keystr(key_path) for key_path, _ in template_leaves}
    for name in sorted(stored.keys() - template_names):
        problems.append(f"leaf {name} is in the file but not in the template")

    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise CheckpointError(f"{path}: {problems[0]}{more}")
    return jax.tree_util.tree_unflatten(treedef, restored), metadata


def _parse_header(path: Path, header: dict[str, str]) -> dict:
    """Check the header's format fields and return the metadata dict."""
    if header.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not a dtql checkpoint (header lacks format={FORMAT_NAME})")
    if header.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{path}: format version {header.get('format_version')!r}, "
            f"this code reads version {FORMAT_VERSION}"
        )
    try:
        metadata = json.loads(header["metadata"])
        leaf_count = int(header["leaf_count"])
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{path}: damaged header metadata ({error!r})") from error
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: header metadata is not a JSON object")
    return {**metadata, "format_version": FORMAT_VERSION, "leaf_count": leaf_count}


def _mismatch(stored: np.ndarray, template_leaf: Any) -> str | None:
    """Why ``stored`` cannot restore ``template_leaf``, or None when it can."""
    if isinstance(template_leaf, bool | int | float):
        # bool before int: bool is a subclass of int.
        if isinstance(template_leaf, bool):
            kinds = "b"
        elif isinstance(template_leaf, int):
            kinds = "iu"
        else:
            kinds = "f"
        if stored.ndim == 0 and stored.dtype.kind in kinds:
            return None
        expected = f"a 0-d array of a {type(template_leaf).__name__} dtype"
        return f"expected {expected}, found shape {stored.shape} {stored.dtype}"

    if _is_typed_key(template_leaf):
        # eval_shape gives the key data's shape and dtype without computing anything.
        template_leaf = jax.eval_shape(jax.random.key_data, template_leaf)
    if not hasattr(template_leaf, "shape"):
        template_leaf = np.asarray(template_leaf)
    expected_shape, expected_dtype = tuple(template_leaf.shape), np.dtype(template_leaf.dtype)
    if stored.shape == expected_shape and stored.dtype == expected_dtype:
        return None
    return (
        f"expected shape {expected_shape} {expected_dtype}, "
        f"found shape {stored.shape} {stored.dtype}"
    )


def _restore_leaf(stored: np.ndarray, template_leaf: Any) -> Any:
    """``stored`` as the same kind of object as ``template_leaf``."""
    if isinstance(template_leaf, bool | int | float):
        return type(template_leaf)(stored.item())
    if _is_typed_key(template_leaf):
        return jax.random.wrap_key_data(stored, impl=jax.random.key_impl(template_leaf))
    if isinstance(template_leaf, np.ndarray):
        return stored
    if isinstance(template_leaf, np.generic):
        return stored[()]
    return jnp.asarray(stored)
