"""Private state on disk: the data directory is 0700 and the files in it 0600.

The data directory holds every captured message, every tenant's DKIM private keys (in the
SQLite database) and the generated TLS key, so nobody but the server's own user may read it.
What Postroom creates, it creates private (`private_dir`, `private_file`); what it finds
looser (made by an older version, or by hand) it does not change behind the operator's back
but names in a warning at start (`warn_if_loose`), with the command that fixes it.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("postroom.storage")

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create `path` (and missing parents) if absent; a directory it creates is 0700.

    An existing directory keeps its mode (see `warn_if_loose`). Raises OSError."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        return  # made meanwhile by another process; its mode is checked at start
    os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask; be exact


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist (an existing file is left as
    it is). SQLite then opens the empty file as a new database, and gives its -wal and -shm
    files the database file's mode. Raises OSError."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def loose(path: Path) -> int | None:
    """The permission bits of `path` when group or others may use it; None when it is private
    or absent."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def warn_if_loose(paths: Iterable[Path]) -> list[Path]:
    """Log a warning for each existing path that group or others may read; return them."""
    found: list[Path] = []
    for path in paths:
        mode = loose(path)
        if mode is None:
            continue
        found.append(path)
        wanted = DIR_MODE if path.is_dir() else FILE_MODE
        log.warning(
            "%s is mode %04o: other users of this machine can read it (it holds messages and "
            "keys); run: chmod %o %s",
            path,
            mode,
            wanted,
            path,
            extra={"path": str(path), "mode": f"{mode:04o}"},
        )
    return found
