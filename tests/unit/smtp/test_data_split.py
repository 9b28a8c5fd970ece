"""The verdict on a DATA message does not depend on how the network split it. Found by the
fuzzer (test_session_fuzz.py): the size limit was judged on bytes that could still turn out to
be the terminator, and a message over the limit got 552 when it arrived in pieces but 554 or
500 (NUL, long line) when it arrived in one read."""

from __future__ import annotations

import pytest

from .support import Client, make_policy


def verdicts(body: bytes, size: int, *, bytewise: bool, **policy: object) -> list[str]:
    client = Client(make_policy(max_message_size=size, **policy), ehlo=True)
    client.start_data()
    if not bytewise:
        return client.codes(body)
    codes: list[str] = []
    for i in range(len(body)):
        codes += client.codes(body[i : i + 1])
    return codes


@pytest.mark.parametrize("bytewise", [False, True])
def test_a_message_exactly_at_the_limit_is_accepted_however_it_arrives(bytewise: bool) -> None:
    body = b"12345678\r\n.\r\n"  # the message is "12345678\r\n": 10 octets
    assert verdicts(body, 10, bytewise=bytewise) == []  # handed to the pipeline
    assert verdicts(b"123456789\r\n.\r\n", 10, bytewise=bytewise) == ["552 5.3.4"]


@pytest.mark.parametrize("bytewise", [False, True])
def test_a_stuffed_dot_at_the_limit_is_not_counted(bytewise: bool) -> None:
    body = b"..234567\r\n.\r\n"  # unstuffed ".234567\r\n": 9 octets
    assert verdicts(body, 9, bytewise=bytewise) == []


@pytest.mark.parametrize(
    ("body", "policy"),
    [
        (b"x" * 40 + b"\0\r\n.\r\n", {}),
        (b"x" * 40 + b"\r\n.\r\n", {"max_text_line": 10}),
        (b"x" * 40 + b"\nbare\r\n.\r\n", {"bare_line_endings": "reject"}),
    ],
)
def test_an_oversized_message_gets_552_however_it_arrives(
    body: bytes, policy: dict[str, object]
) -> None:
    whole = verdicts(body, 20, bytewise=False, **policy)
    assert whole == ["552 5.3.4"]
    assert verdicts(body, 20, bytewise=True, **policy) == whole
