"""One writer per folder: a run folder, or a grid's, is written by one process at a time.

A writer holds an exclusive `flock` on ``<folder>/.lock`` for as long as it writes there, and
writes its pid, host and start time into the file. A second writer cannot take the lock and
stops with one line naming the holder. The operating system drops the lock when the holder's
process ends, however it ends, so a holder killed with -9 leaves only the file's text: the next
writer takes the lock, sees that text and says that it took over. Readers (`dtql eval`, `dtql
report`, `dtql export`) never take it. The file is emptied, never deleted, on release (deleting
it would let two writers lock two different files of the same name).

`flock` works between processes of one machine (and on most local file systems); on a network
file system shared by several hosts it may not exclude writers on different hosts.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO

LOCK_NAME = ".lock"


class FolderLocked(ValueError):
    """Another process holds the folder's lock; the message names it, in one line."""


class FolderLock:
    """``with FolderLock(folder, "run"):`` holds the folder's lock (made, with the folder, if
    absent) for the block, or raises FolderLocked naming the holder."""

    def __init__(self, folder: str | Path, what: str) -> None:
        self.folder, self.what = Path(folder), what
        self.path = self.folder / LOCK_NAME
        self._file: IO[str] | None = None

    def __enter__(self) -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held until __exit__)
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read(file))
            file.close()
            raise FolderLocked(
                f"{self.folder}: another process writes this {self.what} ({holder}); wait for "
                "it to end or stop it, then run the command again"
            ) from None
        previous = _read(file)
        if previous:  # a holder that ended without releasing: killed, or its machine crashed
            print(
                f"note: {self.folder}: took over the lock left by {_describe(previous)}, which "
                "no longer holds it",
                file=sys.stderr,
            )
        file.seek(0)
        file.truncate()
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        file.write(json.dumps(holder) + "\n")
        file.flush()
        self._file = file
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()  # a clean release leaves an empty file: nothing to take over
        self._file.flush()
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None


def _read(file: IO[str]) -> dict | None:
    """The holder record in the lock file, or None when it is empty or unreadable."""
    file.seek(0)
    text = file.read().strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return {"text": text[:80]}
    return record if isinstance(record, dict) else {"text": text[:80]}


def _describe(holder: dict | None) -> str:
    if holder is None or "pid" not in holder:
        return "a process that has not written its pid yet"
    return f"pid {holder['pid']} on host {holder.get('host', '?')}, since {holder.get('since')}"
