"""Which recipient addresses the MX door may take at all (before any look-up): a local part
and a host name; never one that hides a route to somewhere else."""

from __future__ import annotations

import pytest

from postroom.doors.mx import split_recipient


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("help@example.com", ("help", "example.com")),
        ("Help@EXAMPLE.Com", ("Help", "example.com")),
        ("bounces+abc@rp.example.com", ("bounces+abc", "rp.example.com")),
        ("x@b\u00fccher.example", ("x", "xn--bcher-kva.example")),
    ],
)
def test_plain_addresses_split(address: str, expected: tuple[str, str]) -> None:
    assert split_recipient(address) == expected


@pytest.mark.parametrize(
    "address",
    [
        "postmaster",  # no domain
        "user%elsewhere.example@example.com",  # percent hack
        "elsewhere.example!user@example.com",  # bang path
        '"user@elsewhere.example"@example.com',  # quoted local part with @
        '"user"@example.com',  # any quoted local part
        "user@[192.0.2.1]",  # IP literal
        "user@[IPv6:2001:db8::1]",
        "user@example.com.",  # trailing dot
        "user@localhost",  # a single label is no host name of a domain
        "@example.com",
        "user@",
    ],
)
def test_addresses_that_route_elsewhere_do_not(address: str) -> None:
    assert split_recipient(address) is None
