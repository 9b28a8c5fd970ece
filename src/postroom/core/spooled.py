"""Message octets kept in a file instead of memory: how a big message travels from the SMTP
edge that spooled it to the process that stores it (the writer child reads the file itself).

The file belongs to whoever spooled it (smtp/spool.py): it is deleted once the message is
stored or refused; readers only read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from postroom.core.errors import StorageError

READ_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SpooledData:
    """`size` octets of the file at `path`, from its start."""

    path: str
    size: int


def spooled_chunks(spooled: SpooledData, chunk: int = READ_CHUNK) -> Iterator[bytes]:
    """The octets of `spooled`, `chunk` at a time; StorageError when the file is gone or
    shorter than it should be."""
    left = spooled.size
    try:
        with open(spooled.path, "rb", buffering=0) as file:
            while left > 0:
                data = file.read(min(chunk, left))
                if not data:
                    break
                left -= len(data)
                yield data
    except OSError as exc:
        raise StorageError(f"the spooled message cannot be read: {exc.strerror}") from exc
    if left:
        raise StorageError(f"the spooled message is {left} octets shorter than it was")


def read_spooled(spooled: SpooledData) -> bytes:
    """The whole content (for the few steps that need a message in one piece)."""
    return b"".join(spooled_chunks(spooled))
