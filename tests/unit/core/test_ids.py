from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from postroom.core.ids import is_id, new_id


def test_ids_are_ulid_shaped_unique_and_time_ordered() -> None:
    at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    ids = [new_id(at) for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(is_id(i) for i in ids)
    assert all(i[0] in "01234567" for i in ids)  # 128 bits in 26 base32 digits
    assert new_id(at) < new_id(at + timedelta(milliseconds=1)) < new_id(at + timedelta(days=1))


def test_time_prefix_encodes_the_milliseconds() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    prefix = new_id(at)[:10]
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = 0
    for ch in prefix:
        value = value * 32 + alphabet.index(ch)
    assert value == int(at.timestamp() * 1000)


def test_forked_child_does_not_repeat_the_parent_sequence() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(write, new_id(at).encode())
        os._exit(0)
    os.close(write)
    mine = new_id(at)
    os.waitpid(pid, 0)
    theirs = os.read(read, 64).decode()
    os.close(read)
    assert is_id(theirs) and theirs != mine
