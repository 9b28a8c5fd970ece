"""Where the SMTP edge keeps the data of the messages being received: in memory while they
are small, in a file beyond a threshold, under one memory budget for the whole process.

The session hands message data over in pieces as it arrives (smtp/protocol.py, `MessageData`);
each connection keeps them in a `MessageBuffer`. A buffer holds its pieces in memory until they
pass `threshold` octets, then writes them, and every later piece, to a file of the spool
directory (created 0700; files 0600, named smtp-*.eml, deleted once the message is stored or
refused; leftovers of a crash are deleted when the spool is first used: a file's name holds the
id of the process that wrote it, and those of processes still running are left alone, should
several servers share the data directory). Such a message travels
on by its path (core/spooled.py): the store reads it from the file.

`MemoryBudget` counts the octets of message data that the SMTP sessions of this process hold in
memory (every listener shares it): what sessions and buffers hold, and the small messages
being accepted. While it is spent, a buffer writes to its file at once. A new DATA or first BDAT
chunk that finds it spent first makes the buffers still in memory go to their files (`spill`:
a client that sends a megabyte and then stalls must not keep the budget from others); only
when that does not bring the memory under the budget does the edge answer 452 4.3.1 (the client
tries again later; sessions already receiving go on).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path

from postroom.core.errors import StorageError
from postroom.core.spooled import SpooledData

log = logging.getLogger("postroom.smtp")

DEFAULT_THRESHOLD = 1024 * 1024
DEFAULT_BUDGET = 256 * 1024 * 1024
PREFIX = "smtp-"
SUFFIX = ".eml"


class MemoryBudget:
    """Octets of message data held in memory, against `limit`."""

    __slots__ = ("held", "limit")

    def __init__(self, limit: int = DEFAULT_BUDGET) -> None:
        if limit < 1:
            raise ValueError("the memory budget must be at least 1 octet")
        self.limit = limit
        self.held = 0

    def spent(self) -> bool:
        return self.held >= self.limit


class Spool:
    """The spool directory, the threshold above which a message goes to a file, and the
    budget. `directory` None: no files, every message is kept in memory (the budget is still
    counted and enforced at the start of each transfer)."""

    def __init__(
        self,
        directory: Path | None,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        budget: MemoryBudget | None = None,
    ) -> None:
        if threshold < 0:
            raise ValueError("the spool threshold must be 0 or more")
        self.directory = directory
        self.threshold = threshold
        self.budget = budget if budget is not None else MemoryBudget(sys.maxsize)
        self._ready = False
        self._in_memory: set[MessageBuffer] = set()  # buffers holding pieces in memory

    def spill(self) -> None:
        """While the budget is spent, move buffers from memory to their files, largest
        first, until it is not (or none is left). Blocking: at most the memory they hold is
        written, a threshold's worth per buffer."""
        budget = self.budget
        if self.directory is None or not budget.spent():
            return
        for buffer in sorted(self._in_memory, key=lambda b: b.memory, reverse=True):
            buffer.to_file()
            if not budget.spent():
                return

    def prepare(self) -> None:
        """Create the directory (0700) and delete what a previous run left there. Blocking;
        idempotent (only the first call cleans)."""
        if self._ready or self.directory is None:
            return
        directory = self.directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        for leftover in directory.glob(f"{PREFIX}*{SUFFIX}"):
            if _writer_alive(leftover.name):
                continue
            with contextlib.suppress(OSError):
                leftover.unlink()
        self._ready = True

    def buffer(self) -> MessageBuffer:
        return MessageBuffer(self)


class MessageBuffer:
    """One message's data as it arrives: pieces in memory, or a file once past the
    threshold (or at once while the budget is spent)."""

    __slots__ = ("_error", "_file", "_path", "_pieces", "_spool", "memory", "size")

    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        self._pieces: list[bytes] = []
        self._file: int | None = None  # descriptor of the spool file
        self._path = ""
        self._error: OSError | None = None
        self.memory = 0  # octets held in memory
        self.size = 0

    @property
    def spooled(self) -> bool:
        return self._file is not None

    def add(self, data: bytes) -> None:
        """Keep the next octets of the message."""
        self.size += len(data)
        if self._error is not None:
            return
        spool = self._spool
        if (
            self._file is None
            and spool.directory is not None
            and (self.memory + len(data) > spool.threshold or spool.budget.spent())
        ):
            self._open()
            if self._error is not None:
                return
        if self._file is None:
            self._pieces.append(data)
            self._charge(len(data))
            return
        self._write(data)

    def to_file(self) -> None:
        """Move what is held in memory to the file (see Spool.spill)."""
        if self._file is None and self._error is None and self._spool.directory is not None:
            self._open()

    def _charge(self, size: int) -> None:
        """Count `size` more (or fewer) octets held in memory, here and in the budget."""
        spool = self._spool
        self.memory += size
        spool.budget.held += size
        if self.memory:
            spool._in_memory.add(self)
        else:
            spool._in_memory.discard(self)

    def finish(self, tail: bytes) -> tuple[bytes, SpooledData | None]:
        """The whole message: its octets when in memory, else its file (closed; the caller
        deletes it with `discard` once done). StorageError when the file could not be
        written."""
        self.add(tail)
        if self._error is not None:
            error = self._error
            self.discard()
            raise StorageError(f"the message could not be spooled: {error.strerror}")
        if self._file is None:
            data = b"".join(self._pieces)
            self._pieces = []
            self._charge(-self.memory)  # the caller counts the message it delivers
            return data, None
        fd, self._file = self._file, None
        os.close(fd)
        return b"", SpooledData(self._path, self.size)

    def discard(self) -> None:
        """Forget the message: free its memory, delete its file."""
        self._pieces = []
        self._charge(-self.memory)
        if self._file is not None:
            with contextlib.suppress(OSError):
                os.close(self._file)
            self._file = None
        if self._path:
            with contextlib.suppress(OSError):
                os.unlink(self._path)
            self._path = ""

    def _open(self) -> None:
        directory = self._spool.directory
        assert directory is not None
        try:
            self._spool.prepare()
            fd, self._path = tempfile.mkstemp(
                prefix=f"{PREFIX}{os.getpid()}-", suffix=SUFFIX, dir=directory
            )
        except OSError as exc:
            log.error("cannot create a spool file in %s: %s", directory, exc)
            self._fail(exc)
            return
        self._file = fd
        pieces, self._pieces = self._pieces, []
        self._charge(-self.memory)
        for piece in pieces:
            self._write(piece)

    def _write(self, data: bytes) -> None:
        fd = self._file
        assert fd is not None
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            log.error("cannot write the spool file %s: %s", self._path, exc)
            self._fail(exc)

    def _fail(self, error: OSError) -> None:
        """The rest of the message is dropped; `finish` says so."""
        self.discard()
        self._error = error


def _writer_alive(name: str) -> bool:
    """Whether the process that wrote spool file `name` (smtp-PID-....eml) still runs (and is
    not this one, whose earlier files are leftovers)."""
    pid_text = name[len(PREFIX) :].partition("-")[0]
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True
