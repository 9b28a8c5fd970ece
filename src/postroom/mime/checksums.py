"""MD5, SHA-1 and SHA-256 of a part's content (Mailpit's `Checksums` of an attachment),
computed in one pass over the content as it is downloaded."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from postroom.core.types import Checksums


class Hashing:
    """The three digests, fed piece by piece."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()

    def update(self, data: bytes) -> None:
        if data:
            self._md5.update(data)
            self._sha1.update(data)
            self._sha256.update(data)

    def result(self) -> Checksums:
        return Checksums(self._md5.hexdigest(), self._sha1.hexdigest(), self._sha256.hexdigest())


def checksums_of(pieces: Iterable[bytes]) -> Checksums:
    hashing = Hashing()
    for piece in pieces:
        hashing.update(piece)
    return hashing.result()
