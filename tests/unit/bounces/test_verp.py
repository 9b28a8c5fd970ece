"""VERP return paths: a token maps back to its queue entry, read in any case; nothing else
does — not a changed id, a changed or truncated MAC, another key's token, or another spelling
of the id."""

from __future__ import annotations

from pathlib import Path

import pytest

from postroom.bounces.verp import MAC_LENGTH, Verp

KEY = bytes(range(32))


def test_addresses_map_back_to_their_entry() -> None:
    verp = Verp(KEY)
    for entry_id in (0, 1, 31, 32, 1_000_000, 2**63 - 1):
        address = verp.address(entry_id, "rp.example.com")
        local = address.partition("@")[0]
        assert local.startswith("bounces+") and len(local) <= 64
        assert verp.entry_of(address) == entry_id
        assert verp.entry_of(address.upper()) == entry_id  # servers may change the case
        assert verp.entry_of(f"<{address}>") == entry_id


def test_forgeries_map_to_nothing() -> None:
    verp = Verp(KEY)
    address = verp.address(4242, "rp.example.com")
    local, _, domain = address.partition("@")
    token = local.partition("+")[2]
    ident, mac = token[:-MAC_LENGTH], token[-MAC_LENGTH:]
    other_id = verp.token(4243)[:-MAC_LENGTH]
    flipped = ("b" if mac[0] == "a" else "a") + mac[1:]
    forged = [
        f"bounces+{other_id}{mac}@{domain}",  # another entry with this MAC
        f"bounces+{ident}{flipped}@{domain}",  # a changed MAC
        f"bounces+{ident}{mac[:-1]}@{domain}",  # a truncated MAC
        f"bounces+a{ident}{mac}@{domain}",  # the id spelt with a leading zero digit
        f"bounces+{ident}-{mac}@{domain}",
        f"bouncez+{token}@{domain}",
        f"bounces{token}@{domain}",
        f"bounces+@{domain}",
        "ann@example.com",
        Verp(bytes(32)).address(4242, domain),  # another server's key
    ]
    for address in forged:
        assert verp.entry_of(address) is None, address


def test_the_key_is_created_once_and_kept(tmp_path: Path) -> None:
    first = Verp.load_or_create(tmp_path)
    key_file = tmp_path / "verp.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = Verp.load_or_create(tmp_path)
    assert again.entry_of(first.address(7, "rp.example.com")) == 7
    with pytest.raises(ValueError):
        Verp(b"short")
