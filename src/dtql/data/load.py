"""`load_dataset`: one entry point that finds a dataset by path or name and picks its reader.

Nothing here downloads: a name is looked up in D4RL's and Minari's local folders, and in the
folder of local `dtql collect` datasets ($DTQL_DATASETS_DIR, default ~/.dtql/datasets; see
`dtql.data.collected`), only.
"""

from __future__ import annotations

import os
from pathlib import Path

from dtql.data import d4rl, npz
from dtql.data import minari as minari_reader
from dtql.data.collected import (
    collect_command,
    collect_out_paths,
    collected_dataset_for,
    local_datasets_dir,
)
from dtql.data.transitions import DatasetError, ObsAdapter, Transitions, validate_transitions

D4RL_SUFFIXES = (".hdf5", ".h5")


def d4rl_dataset_dir() -> Path:
    """Where D4RL keeps its downloads: $D4RL_DATASET_DIR, default ~/.d4rl/datasets."""
    return Path(os.environ.get("D4RL_DATASET_DIR", "~/.d4rl/datasets")).expanduser()


def d4rl_candidates(name: str) -> list[Path]:
    """Files a D4RL name may be stored as.

    D4RL's own cache names files after their download URL, e.g. "hopper-medium-replay-v2" is saved
    as "hopper_medium_replay-v2.hdf5"; both that and "<name>.hdf5" are accepted.
    """
    root = d4rl_dataset_dir()
    stem, dash, version = name.rpartition("-")
    candidates = [root / f"{name}.hdf5"]
    if dash and version.startswith("v"):
        cache_name = f"{stem.replace('-', '_')}-{version}.hdf5"
        if cache_name != f"{name}.hdf5":
            candidates.append(root / cache_name)
    return candidates


def load_dataset(
    spec: str | os.PathLike[str], obs_adapter: ObsAdapter | None = None
) -> Transitions:
    """Load a dataset as `Transitions` and check it (see `validate_transitions`).

    `spec` is tried as: an existing path (.hdf5/.h5 in the D4RL layout, .npz in the layout of
    npz.py, or a Minari dataset folder: the one holding metadata.json, or its parent holding data/);
    else a D4RL name looked up in $D4RL_DATASET_DIR (default ~/.d4rl/datasets); else a Minari id
    looked up in $MINARI_DATASETS_PATH (default ~/.minari/datasets). Nothing is ever downloaded.

    `obs_adapter` maps dict observations (a dict of [T, ...] arrays) to a [T, obs_dim] array; it is
    required for dict observations (Minari AntMaze, Kitchen) and unused for array observations.
    """
    spec = os.fspath(spec)
    path = Path(spec).expanduser()
    if path.is_file():
        if path.name == "main_data.hdf5" and (path.parent / "metadata.json").is_file():
            t = minari_reader.read_minari(path.parent, obs_adapter, source=spec)
        elif path.suffix.lower() in D4RL_SUFFIXES:
            t = d4rl.read_d4rl(path, obs_adapter)
        elif path.suffix.lower() == ".npz":
            t = npz.read_npz(path)
        else:
            raise DatasetError(
                f"{spec}: unsupported file type '{path.suffix}', expected .hdf5/.h5 (D4RL), "
                ".npz or a Minari dataset folder"
            )
    elif path.is_dir():
        data_dir = minari_reader.minari_data_dir(path)
        if data_dir is None:
            raise DatasetError(
                f"{spec}: folder is not a Minari dataset, expected metadata.json in it or in "
                f"{path / 'data'}"
            )
        t = minari_reader.read_minari(data_dir, obs_adapter, source=spec)
    else:
        t = _load_by_name(spec, obs_adapter)
    validate_transitions(t)
    return t


def locate_by_name(spec: str) -> tuple[str, Path, str] | list[str]:
    """Where a dataset name is found locally, without reading it: (reader, path, source) with
    reader 'd4rl' or 'minari' (source names the file for a name that resolved to dtql's own
    data); else the places tried, in order."""
    tried = [f"path {spec}"]
    # Something that looks like a file name is only ever a path.
    looks_like_file = Path(spec).suffix.lower() in (*D4RL_SUFFIXES, ".npz")
    if not looks_like_file and "/" not in spec and os.sep not in spec:
        for candidate in d4rl_candidates(spec):
            if candidate.is_file():
                return "d4rl", candidate, spec
            tried.append(f"D4RL file {candidate}")
    if not looks_like_file and not Path(spec).is_absolute():
        folder = minari_reader.minari_root() / spec
        data_dir = minari_reader.minari_data_dir(folder)
        if data_dir is not None:
            return "minari", data_dir, spec
        tried.append(f"Minari dataset {folder / 'data'}")
    collected = collected_dataset_for(spec)
    if collected is not None:
        folder, file = collect_out_paths(local_datasets_dir() / collected[0], *collected)
        data_dir = minari_reader.minari_data_dir(folder)
        if data_dir is not None:
            return "minari", data_dir, f"{spec} ({folder})"
        if file.is_file():
            return "d4rl", file, f"{spec} ({file})"
        tried += [f"local dtql dataset {folder / 'data'}", f"local dtql file {file}"]
    return tried


def _load_by_name(spec: str, obs_adapter: ObsAdapter | None) -> Transitions:
    found = locate_by_name(spec)
    if isinstance(found, tuple):
        reader, path, source = found
        if reader == "d4rl":
            return d4rl.read_d4rl(path, obs_adapter, source=source)
        return minari_reader.read_minari(path, obs_adapter, source=source)
    collected = collected_dataset_for(spec)
    hint = f"; make the local one with `{collect_command(*collected)}`" if collected else ""
    raise DatasetError(
        f"{spec}: dataset not found, expected one of: {'; '.join(found)} "
        f"(set D4RL_DATASET_DIR, MINARI_DATASETS_PATH or DTQL_DATASETS_DIR, or pass a path){hint}"
    )
