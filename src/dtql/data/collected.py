"""Names and places of the datasets `dtql collect` makes, beside the reader that finds them.

A collected dataset is ``dtql/<environment>-<level>-v0``: D4RL's locomotion level names on the
Gymnasium v5 envs, in the Minari namespace "dtql", version 0 because they are not D4RL's v2
data. ``dtql collect ENV`` writes by default to ``$DTQL_DATASETS_DIR/<environment>`` (default
~/.dtql/datasets/<environment>) as ``minari/dtql/<environment>-<level>-v0/`` (and
``d4rl/<environment>-<level>-v0.hdf5`` with --hdf5). There, `load_dataset` finds it by that id
or by the D4RL name of the same level (``walker2d-medium-replay-v2``) when D4RL's and Minari's own
folders do not hold that name. Names are matched by their spelling alone (no task registry: the
data layer knows no envs beyond these names).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dtql.data.transitions import PROVENANCE_KEY, DatasetError, check_provenance
from dtql.upgrade import upgrade_collect_record

COLLECTED_NAMESPACE = "dtql"
COLLECTED_VERSION = 0
# The environment names of collected datasets, and the Gymnasium env each is made in.
COLLECTED_ENV_IDS = {
    "hopper": "Hopper-v5",
    "halfcheetah": "HalfCheetah-v5",
    "walker2d": "Walker2d-v5",
    "ant": "Ant-v5",
}
COLLECTED_LEVELS = ("random", "medium", "medium-replay", "expert", "medium-expert")
# Where a record holds its dataset's fingerprint (`dtql data fingerprint NAME --record`).
FINGERPRINT_KEY = "fingerprint"


def collected_dataset_id(environment: str, level: str) -> str:
    """The id of a `dtql collect` dataset, e.g. 'dtql/hopper-medium-v0'."""
    return f"{COLLECTED_NAMESPACE}/{environment}-{level}-v{COLLECTED_VERSION}"


def collected_dataset_for(name: str) -> tuple[str, str] | None:
    """(environment, level) of the `dtql collect` dataset a name stands for, else None: the
    dataset's own id ('dtql/walker2d-medium-replay-v0') or the D4RL name of the same level
    ('walker2d-medium-replay-v2')."""
    for environment in COLLECTED_ENV_IDS:
        for level in COLLECTED_LEVELS:
            if name in (collected_dataset_id(environment, level), f"{environment}-{level}-v2"):
                return environment, level
    return None


def local_datasets_dir() -> Path:
    """Where local `dtql collect` datasets live: $DTQL_DATASETS_DIR, default ~/.dtql/datasets."""
    return Path(os.environ.get("DTQL_DATASETS_DIR", "~/.dtql/datasets")).expanduser()


def collect_out_paths(out: Path, environment: str, level: str) -> tuple[Path, Path]:
    """Where `dtql collect --out OUT` puts a level: the Minari dataset folder
    OUT/minari/dtql/<environment>-<level>-v0 and the D4RL file OUT/d4rl/<...>-v0.hdf5."""
    dataset = collected_dataset_id(environment, level)
    return out / "minari" / dataset, out / "d4rl" / f"{dataset.rpartition('/')[2]}.hdf5"


def collect_command(environment: str, level: str) -> str:
    """The `dtql collect` command that makes a level in the local datasets folder from the
    shipped behaviour-policy files (where a file is missing, it names the SAC run that makes it;
    medium-replay is replayed from the shipped actions of the SAC run)."""
    return f"dtql collect {COLLECTED_ENV_IDS[environment]} --from-policies --levels {level}"


def local_collected_record(environment: str, level: str) -> tuple[Path, dict] | None:
    """The local dataset of a level in $DTQL_DATASETS_DIR and its `dtql collect` record
    (collect_info.json, or the .json beside the .hdf5), without reading the data; None if
    absent. A record that is not a JSON object is a DatasetError naming the file."""
    folder, file = collect_out_paths(local_datasets_dir() / environment, environment, level)
    for path, record in ((folder, folder / "collect_info.json"), (file, file.with_suffix(".json"))):
        if record.is_file():
            try:
                value = json.loads(record.read_text())
            except ValueError as e:
                raise DatasetError(
                    f"{record}: not JSON ({type(e).__name__}), expected the record "
                    "`dtql collect` writes"
                ) from e
            check_provenance(str(record), record.name, value)
            return path, value
    return None


def collect_record_files(spec: str) -> list[Path]:
    """The `dtql collect` record files of a dataset, without reading its arrays: a Minari
    folder's collect_info.json and data/metadata.json (its "dtql_collect" entry), or the .json
    beside a D4RL file; a collected dataset's name finds its local copy. [] when there is none."""
    path = Path(spec).expanduser()
    if not path.exists():
        collected = collected_dataset_for(spec)
        local = local_collected_record(*collected) if collected is not None else None
        if local is None:
            return []
        path = local[0]
    if path.is_dir():
        folder = path if (path / "collect_info.json").is_file() else path.parent
        files = [folder / "collect_info.json", folder / "data" / "metadata.json"]
    else:
        files = [path.with_suffix(".json")]
    return [file for file in files if file.is_file()]


def recorded_fingerprint(dataset: str) -> dict[str, Any] | None:
    """The fingerprint recorded in a dataset's provenance, or None (reads no arrays)."""
    files = collect_record_files(dataset)
    if not files:
        return None
    record = provenance_part(files[0], json.loads(files[0].read_text()))
    return upgrade_collect_record(record).get(FINGERPRINT_KEY)


def provenance_part(file: Path, content: dict) -> dict:
    """The `dtql collect` record inside a record file's content: Minari's metadata.json holds
    it under "dtql_collect"; collect_info.json and the .json beside a D4RL file are it."""
    if file.name == "metadata.json":
        return content.setdefault(PROVENANCE_KEY, {})
    return content
