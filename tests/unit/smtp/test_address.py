from __future__ import annotations

import pytest

from postroom.smtp.address import (
    AddressError,
    ParamError,
    is_xtext,
    parse_path,
    split_params,
)
from postroom.smtp.replies import multiline, reply


def test_parse_path_returns_address_and_parameters() -> None:
    path = parse_path("<a@example.com> SIZE=10  BODY=8BITMIME", null_ok=False, postmaster_ok=False)
    assert path.address == "a@example.com"
    assert path.rest == "SIZE=10  BODY=8BITMIME"
    assert path.utf8 is False


def test_quoted_local_part_may_hold_angle_brackets_and_escapes() -> None:
    path = parse_path('<"a>b\\"c"@example.com> X=1', null_ok=False, postmaster_ok=False)
    assert path.address == '"a>b\\"c"@example.com'
    assert path.rest == "X=1"


def test_route_with_ipv6_literal_is_stripped() -> None:
    path = parse_path(
        "<@[IPv6:2001:db8::1],@b.example:u@c.example>", null_ok=False, postmaster_ok=False
    )
    assert path.address == "u@c.example"


def test_postmaster_only_where_allowed() -> None:
    assert parse_path("<postmaster>", null_ok=False, postmaster_ok=True).address == "postmaster"
    with pytest.raises(AddressError):
        parse_path("<postmaster>", null_ok=False, postmaster_ok=False)


def test_null_path_only_where_allowed() -> None:
    assert parse_path("<>", null_ok=True, postmaster_ok=False).address == ""
    with pytest.raises(AddressError):
        parse_path("<>", null_ok=False, postmaster_ok=True)


def test_utf8_address_is_flagged() -> None:
    assert parse_path("<ü@example.com>", null_ok=False, postmaster_ok=False).utf8 is True


def test_path_length_counts_octets() -> None:
    local = "é" * 125  # 125 characters, 250 octets in UTF-8
    with pytest.raises(AddressError):
        parse_path(f"<{local}@example.com>", null_ok=False, postmaster_ok=False)


def test_split_params() -> None:
    assert split_params("size=1 SMTPUTF8 Body=7bit", utf8=False) == {
        "SIZE": "1",
        "SMTPUTF8": "",
        "BODY": "7bit",
    }
    with pytest.raises(ParamError):
        split_params("A=1 a=2", utf8=False)
    with pytest.raises(ParamError):
        split_params("A=x=y", utf8=False)
    with pytest.raises(ParamError):
        split_params("A=é", utf8=False)
    assert split_params("A=é", utf8=True) == {"A": "é"}


@pytest.mark.parametrize(
    ("value", "ok"),
    [("abc", True), ("a+2Bb", True), ("a+2b", False), ("a=b", False), ("", False), ("a b", False)],
)
def test_xtext(value: str, ok: bool) -> None:
    assert is_xtext(value) is ok


def test_reply_formatting() -> None:
    assert reply(250, "2.0.0", "Ok") == b"250 2.0.0 Ok\r\n"
    assert reply(354, "", "Go") == b"354 Go\r\n"
    assert reply(550, "5.7.1", "one\ntwo") == b"550-5.7.1 one\r\n550 5.7.1 two\r\n"
    assert multiline(250, "", ["a", "b"]) == b"250-a\r\n250 b\r\n"
