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
    """`size` octets of the file at `path`, from `offset`."""

    path: str
    size: int
    offset: int = 0

    def after(self, skip: int) -> SpooledData:
        """The same octets without the first `skip`."""
        skip = min(skip, self.size)
        return SpooledData(self.path, self.size - skip, self.offset + skip)


def spooled_chunks(spooled: SpooledData, chunk: int = READ_CHUNK) -> Iterator[bytes]:
    """The octets of `spooled`, `chunk` at a time; StorageError when the file is gone or
    shorter than it should be."""
    left = spooled.size
    try:
        with open(spooled.path, "rb", buffering=0) as file:
            if spooled.offset:
                file.seek(spooled.offset)
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


def read_head(spooled: SpooledData, limit: int) -> bytes:
    """The octets up to and including the first empty line (CRLF CRLF), if it comes within
    `limit` octets; else b""."""
    held = bytearray()
    for data in spooled_chunks(spooled, min(READ_CHUNK, limit)):
        start = max(len(held) - 3, 0)
        held += data
        end = held.find(b"\r\n\r\n", start)
        if end >= 0:
            return bytes(held[: end + 4])
        if len(held) >= limit:
            return b""
    return b""


def read_spooled(spooled: SpooledData) -> bytes:
    """The whole content (for the few steps that need a message in one piece)."""
    return b"".join(spooled_chunks(spooled))
