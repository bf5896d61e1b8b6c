"""Checkpoints: bitwise round trips, clear errors on mismatch or damage, atomic writes."""

from __future__ import annotations

import json
import os
import struct
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import safetensors.numpy
from flax import struct as flax_struct

from dtql.checkpoint import (
    CheckpointError,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)


class Counters(NamedTuple):
    step: jax.Array
    done: jax.Array


@flax_struct.dataclass
class Target:
    params: dict
    updates: jax.Array


def make_state(seed: int, features: int = 3, dtype=jnp.float32) -> dict:
    """A state shaped like a training state: params, an Adam state, keys, counters."""
    key = jax.random.key(seed)
    params = nn.Dense(features, param_dtype=dtype).init(key, jnp.zeros((1, 2), dtype))
    return {
        "params": params,
        "opt_state": optax.adam(1e-3).init(params),
        "empty_opt_state": optax.sgd(1e-3).init(params),  # no leaves at all
        "target": Target(params=params, updates=jnp.uint32(seed)),
        "key": jax.random.key(seed + 1),  # typed key
        "raw_key": jax.random.PRNGKey(seed + 2),  # uint32 key data
        "step": 0,  # Python int, as a fresh template has it
        "counters": Counters(jnp.int32(seed), jnp.array([True, False])),
        "host": np.arange(4, dtype=np.float32) + seed,
    }


def as_numpy(leaf) -> np.ndarray:
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    return np.asarray(leaf)


def assert_bitwise_equal(a, b) -> None:
    a_leaves, a_def = jax.tree_util.tree_flatten(a)
    b_leaves, b_def = jax.tree_util.tree_flatten(b)
    assert a_def == b_def
    for x, y in zip(a_leaves, b_leaves, strict=True):
        x, y = as_numpy(x), as_numpy(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def test_round_trip_is_bitwise(tmp_path):
    state = make_state(seed=0)
    # Values a fresh state would not have: a few Adam updates and a step counter that jit made
    # into an int32 array (the template still has the Python int 0).
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 0.37), state["params"])
    updates, opt_state = optax.adam(1e-3).update(grads, state["opt_state"])
    state["params"] = optax.apply_updates(state["params"], updates)
    state["opt_state"] = opt_state
    state["step"] = jnp.int32(1234)
    state["counters"] = Counters(jnp.int32(7), jnp.array([False, True]))
    metadata = {"config": {"algo": "dtql", "lr": 3e-4, "hidden": [256, 256]}, "step": 1234}

    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, state, metadata)
    restored, loaded_metadata = load_checkpoint(path, make_state(seed=5))

    assert restored["step"] == 1234 and isinstance(restored["step"], int)
    restored["step"] = jnp.int32(restored["step"])
    assert_bitwise_equal(restored, state)
    assert restored["key"].dtype == state["key"].dtype  # still a typed key
    assert restored["raw_key"].dtype == jnp.uint32
    assert restored["counters"].done.dtype == jnp.bool_
    assert isinstance(restored["host"], np.ndarray)
    assert isinstance(restored["params"]["params"]["kernel"], jax.Array)
    # The restored key draws the same numbers as the saved one.
    assert jnp.array_equal(jax.random.normal(restored["key"]), jax.random.normal(state["key"]))

    leaf_count = len(jax.tree_util.tree_leaves(state))
    assert loaded_metadata == {**metadata, "format_version": 1, "leaf_count": leaf_count}
    assert read_checkpoint_metadata(path) == loaded_metadata


def test_file_is_plain_safetensors(tmp_path):
    # The safetensors layout: 8-byte little-endian header length, JSON header, raw tensor bytes.
    # Nothing in it is pickle, so loading it cannot run code.
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, make_state(seed=0), {"step": 0})
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    assert header["__metadata__"]["format"] == "dtql-checkpoint"
    assert "['params']['params']['kernel']" in header
    assert "['target'].params['params']['kernel']" in header  # struct dataclass field
    assert header["['params']['params']['kernel']"]["dtype"] == "F32"
    assert header["['step']"]["dtype"] == "I64"


def test_shape_mismatch_names_file_and_leaf(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, make_state(seed=0, features=3), {})
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, make_state(seed=0, features=4))
    message = str(error.value)
    assert str(path) in message
    # Leaves are checked in flattening order; the first mismatch is Adam's mu of the bias.
    assert "leaf ['opt_state'][0].mu['params']['bias']" in message
    assert "expected shape (4,) float32, found shape (3,) float32" in message
    assert "more problems" in message  # the kernels and nu differ too
    assert "\n" not in message


def test_dtype_mismatch(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, make_state(seed=0), {})
    with pytest.raises(CheckpointError, match=r"expected shape \(3,\) float16.*found.*float32"):
        load_checkpoint(path, make_state(seed=0, dtype=jnp.float16))


def test_python_scalar_template_checks_kind(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, {"step": jnp.float32(3.0)}, {})
    with pytest.raises(CheckpointError, match=r"\['step'\].*int"):
        load_checkpoint(path, {"step": 0})


def test_missing_and_extra_leaves(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, {"a": jnp.zeros(2), "b": jnp.ones(3)}, {})
    with pytest.raises(CheckpointError, match=r"leaf \['c'\] is missing"):
        load_checkpoint(path, {"a": jnp.zeros(2), "b": jnp.ones(3), "c": jnp.ones(1)})
    extra = r"leaf \['b'\] is in the file but not in the template"
    with pytest.raises(CheckpointError, match=extra):
        load_checkpoint(path, {"a": jnp.zeros(2)})


@pytest.mark.parametrize("damage", ["garbage", "truncated", "appended", "empty"])
def test_damaged_file_raises_checkpoint_error(tmp_path, damage):
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, make_state(seed=0), {"step": 0})
    data = path.read_bytes()
    damaged = {
        "garbage": b"not a checkpoint at all" * 10,
        "truncated": data[: len(data) - 5],
        "appended": data + b"\x00\x01",
        "empty": b"",
    }[damage]
    path.write_bytes(damaged)
    with pytest.raises(CheckpointError, match="ckpt.safetensors"):
        load_checkpoint(path, make_state(seed=0))
    with pytest.raises(CheckpointError):
        read_checkpoint_metadata(path)


def test_a_flipped_byte_in_the_tensors_fails_the_checksum(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, make_state(seed=0), {"step": 0})
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10  # inside the last tensor: still a valid safetensors file
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path, make_state(seed=0))


def test_foreign_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    safetensors.numpy.save_file({"w": np.zeros(3, np.float32)}, path)
    with pytest.raises(CheckpointError, match="not a dtql checkpoint"):
        load_checkpoint(path, {"w": np.zeros(3, np.float32)})


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch, failing):
    path = checkpoint_path(tmp_path, 100)
    save_checkpoint(path, make_state(seed=0), {"step": 100})
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("simulated crash during write")

    # Both calls happen after the temp file exists and holds (part of) the new checkpoint.
    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(path, make_state(seed=1), {"step": 100})
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    restored, metadata = load_checkpoint(path, make_state(seed=1))
    assert_bitwise_equal(restored, make_state(seed=0))


def test_metadata_must_be_json(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    with pytest.raises(TypeError):
        save_checkpoint(path, {"a": jnp.zeros(1)}, {"bad": object()})
    assert not path.exists()


def test_checkpoint_paths_and_latest(tmp_path):
    assert checkpoint_path(tmp_path, 42) == tmp_path / "checkpoints" / "step_000000042.safetensors"
    assert latest_checkpoint(tmp_path) is None  # no checkpoints folder yet

    for step in (5, 1_000, 20):
        save_checkpoint(checkpoint_path(tmp_path, step), {"x": jnp.zeros(1)}, {"step": step})
    folder = tmp_path / "checkpoints"
    (folder / ".step_000009999.safetensors.abcd1234.tmp").write_bytes(b"partial")
    (folder / "notes.txt").write_text("not a checkpoint")
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 1_000)
