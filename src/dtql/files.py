"""Atomic file writes: a reader or a crash sees the old file or the new one, never a part.

Every module that writes a result, a config, a checkpoint or a dataset record uses these:
`write_bytes_atomic` / `write_json_atomic` for data in memory, `atomic_path` for files that a
library writes through its own API (h5py, stable-baselines3).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers and crashes see the old or the new file.

    Writes a hidden temp file in the same folder (``os.replace`` is atomic only within one file
    system), fsyncs it, and renames it over ``path``. On any error the temp file is removed and
    ``path`` is untouched. Creates the parent folder if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # os.open with mode 0o666 (not tempfile.mkstemp, which forces 0o600) so the final file gets
    # the usual permissions of the user's umask.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON (keys in their given order) to ``path`` atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path beside ``path`` to write through a library's own API, renamed over ``path``
    when the block ends without an error (and removed, leaving ``path`` untouched, when it fails).

    The temp name keeps the suffix (``.x.<hex>.tmp.zip`` for ``x.zip``) for libraries that add or
    check one. The written file and the rename are fsynced, as in `write_bytes_atomic`. Creates
    the parent folder if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield temp
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
