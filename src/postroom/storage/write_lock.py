"""The SQLite write lock shared by the server and its writer process.

SQLite lets one writer at a time in; a writer that finds the database locked sleeps in its busy
handler (1, 2, 5, 10 ms... between tries) however soon the lock is free again. The server's
message writes are committed by the writer process (writer_process.py) while the server's own
threads write too (the delivery side's claims and results): each side slept on the other's
commits (measured: 2.1 ms of each 5 ms group commit of the writer process).

`SqliteWriteLock` is held around every write transaction of both: an exclusive `flock` on
`<database>-writelock` (woken by the kernel as soon as the holder lets go; a process that dies
lets go with it) and, inside one process, a thread lock (flock does not exclude threads sharing
one open file). SQLite's own lock still decides: writers that do not take this lock (the CLI,
another server) are waited for by the busy handler as before. When the lock file cannot be
opened (a read-only directory) only the thread lock is taken.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from types import TracebackType

from postroom.storage.private import FILE_MODE

log = logging.getLogger("postroom.storage")

SUFFIX = "-writelock"


def lock_path(database: Path) -> Path:
    """The lock file of the SQLite database file `database`."""
    return database.with_name(database.name + SUFFIX)


class SqliteWriteLock:
    """A context manager: exclusive among the threads of this process and, through the lock
    file, among the processes that use the same database file's lock."""

    def __init__(self, database: Path) -> None:
        self._path = lock_path(database)
        self._thread = threading.Lock()
        self._fd: int | None = None
        self._unusable = False
        self._held = False

    def __enter__(self) -> SqliteWriteLock:
        self._thread.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._held = True
        except OSError as exc:
            log.warning("the write lock %s cannot be taken (%s); SQLite's alone", self._path, exc)
            self._unusable = True
        except BaseException:
            self._thread.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._held:
                self._held = False
                assert self._fd is not None
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()

    def _file(self) -> int | None:
        """The lock file's descriptor (opened at the first use), or None when unusable."""
        if self._fd is None and not self._unusable:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            except OSError as exc:
                log.warning(
                    "the write lock file %s cannot be opened (%s); SQLite's lock alone",
                    self._path,
                    exc,
                )
                self._unusable = True
        return self._fd

    def close(self) -> None:
        """Close the lock file (not while held)."""
        with self._thread:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
