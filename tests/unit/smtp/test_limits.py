from __future__ import annotations

import base64

import pytest

from postroom.core.errors import ConfigError
from postroom.smtp.protocol import Close, DeliverMessage, Reply

from .support import Client, make_policy

# Command lines ---------------------------------------------------------------------------


def test_command_line_of_exactly_the_limit_is_fine() -> None:
    client = Client()
    line = b"NOOP " + b"x" * (512 - 7) + b"\r\n"
    assert len(line) == 512
    assert client.codes(line) == ["250 2.0.0"]


def test_command_line_over_the_limit_is_500() -> None:
    client = Client()
    line = b"NOOP " + b"x" * (512 - 6) + b"\r\n"
    assert len(line) == 513
    assert client.replies(line) == ["500 5.5.2 Line too long"]
    assert client.codes(b"NOOP\r\n") == ["250 2.0.0"]


def test_endless_line_is_consumed_without_growing() -> None:
    client = Client()
    for _ in range(100):
        assert client.feed(b"A" * 10_000) == []
    assert len(client.session._inbuf) == 0
    assert client.codes(b"tail\r\nNOOP\r\n") == ["500 5.5.2", "250 2.0.0"]


def test_over_long_line_split_across_feeds() -> None:
    client = Client()
    assert client.feed(b"NOOP " + b"y" * 400) == []
    assert client.feed(b"y" * 400) == []
    assert client.codes(b"y\r\nNOOP\r\n") == ["500 5.5.2", "250 2.0.0"]


def test_mail_and_rcpt_get_room_for_parameters() -> None:
    client = Client(ehlo=True)
    envid = "E" * 100
    orcpt = "rfc822;" + "o" * 480 + "@example.org"
    line = f"MAIL FROM:<{'s' * 200}@example.com> ENVID={envid} AUTH=<{'a' * 200}@example.com>"
    assert len(line) > 512
    assert client.codes(line.encode() + b"\r\n") == ["250 2.1.0"]
    assert client.codes(f"RCPT TO:<b@example.org> ORCPT={orcpt}\r\n".encode()) == ["250 2.1.5"]
    too_long = "RCPT TO:<b@example.org> ORCPT=" + "x" * 1600
    assert client.codes(too_long.encode() + b"\r\n") == ["500 5.5.2"]


def test_auth_lines_may_be_long_but_not_endless() -> None:
    client = Client(make_policy(auth_without_tls=True), ehlo=True)
    response = base64.b64encode(b"\0bob\0" + b"p" * 8000)
    assert len(response) > 512
    outputs = client.feed(b"AUTH PLAIN " + response + b"\r\n")
    assert [type(o).__name__ for o in outputs] == ["CheckAuth"]
    client.session.auth_result(None)
    client.feed(b"AUTH LOGIN\r\n")
    assert client.codes(b"A" * 13000 + b"\r\n") == ["500 5.5.2"]
    assert client.codes(b"NOOP\r\n") == ["250 2.0.0"]


def test_custom_command_limit() -> None:
    client = Client(make_policy(max_command_line=100))
    assert client.codes(b"NOOP " + b"z" * 100 + b"\r\n") == ["500 5.5.2"]


# Text lines ------------------------------------------------------------------------------


def test_text_line_of_998_characters_is_fine() -> None:
    body = b"x" * 998 + b"\r\n"
    delivery = Client(ehlo=True).send_message(body + b".\r\n")
    assert delivery is not None
    assert delivery.data == body


def test_text_line_limit_ignores_the_stuffed_dot() -> None:
    delivery = Client(ehlo=True).send_message(b"." + b"x" * 998 + b"\r\n.\r\n")
    assert delivery is not None


def test_text_line_over_the_limit_drops_the_message() -> None:
    client = Client(ehlo=True)
    client.start_data()
    assert client.feed(b"ok\r\n" + b"x" * 999 + b"\r\nmore\r\n") == []
    assert client.replies(b".\r\n") == [
        "500 5.5.2 Line too long: text lines may hold at most 998 characters"
    ]
    assert client.session.envelope is None
    assert client.codes(b"NOOP\r\n") == ["250 2.0.0"]


def test_last_text_line_counts_too() -> None:
    client = Client(make_policy(max_text_line=10), ehlo=True)
    assert client.send_message(b"12345678\r\n.\r\n") is not None
    client.session.message_result("x")
    client.send_message(b"ok\r\n123456789\r\n.\r\n")
    assert client.last_codes() == ["500 5.5.2"]


def test_text_line_limit_zero_means_unlimited() -> None:
    body = b"y" * 50_000 + b"\r\n"
    delivery = Client(make_policy(max_text_line=0), ehlo=True).send_message(body + b".\r\n")
    assert delivery is not None
    assert delivery.data == body


# Message size ----------------------------------------------------------------------------


def test_message_of_exactly_the_limit_is_accepted() -> None:
    body = b"a" * 98 + b"\r\n"
    delivery = Client(make_policy(max_message_size=100), ehlo=True).send_message(body + b".\r\n")
    assert delivery is not None
    assert delivery.data == body


def test_stuffed_dots_do_not_count_towards_the_size() -> None:
    body = b"..\r\n" * 25  # 100 octets on the wire, 75 once unstuffed
    client = Client(make_policy(max_message_size=80), ehlo=True)
    client.start_data()
    for start in range(0, len(body), 7):
        client.feed(body[start : start + 7])
    client.feed(b".\r\n")
    assert client.delivery().data == b".\r\n" * 25


def test_message_over_the_limit_is_552_after_the_terminator() -> None:
    client = Client(make_policy(max_message_size=100), ehlo=True)
    client.start_data()
    assert client.feed(b"a" * 99 + b"\r\n") == []
    assert client.replies(b".\r\nNOOP\r\n") == [
        "552 5.3.4 Message size exceeds the maximum of 100 octets",
        "250 2.0.0 Ok",
    ]
    assert client.session.envelope is None
    assert client.session.errors == 0


def test_oversized_data_is_consumed_without_keeping_it() -> None:
    limit = 10_000
    client = Client(make_policy(max_message_size=limit), ehlo=True)
    client.start_data()
    chunk = b"z" * 997 + b"\r\n"
    for _ in range(200):
        assert client.feed(chunk) == []
        assert client.session.data_buffered <= limit + len(chunk) + 2
    # the terminator split across two feeds is still found after the overflow
    assert client.feed(b"\r\n.") == []
    assert client.codes(b"\r\nNOOP\r\n") == ["552 5.3.4", "250 2.0.0"]
    assert client.session.data_buffered == 0


def test_size_limit_with_mail_size_parameter_bypassed() -> None:
    # A client that lies about SIZE is still stopped by the data size.
    client = Client(make_policy(max_message_size=50), ehlo=True)
    client.codes(b"MAIL FROM:<a@example.com> SIZE=10\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
    client.feed(b"q" * 200 + b"\r\n.\r\n")
    assert client.last_codes() == ["552 5.3.4"]
    assert not any(isinstance(o, DeliverMessage) for o in client.outputs)


# Errors per session ----------------------------------------------------------------------


def test_too_many_errors_closes_with_421() -> None:
    client = Client(make_policy(max_errors=3))
    assert client.codes(b"BOGUS\r\nBOGUS\r\n") == ["500 5.5.2", "500 5.5.2"]
    outputs = client.feed(b"BOGUS\r\nNOOP\r\n")
    assert client.replies(outputs=outputs) == [
        "500 5.5.2 Command not recognised",
        "421 4.7.0 mx.test Too many errors, closing connection",
    ]
    assert outputs[-1] == Close()
    assert client.session.closed
    assert client.session.close_reason == "too_many_errors"
    assert client.feed(b"NOOP\r\n") == []


def test_error_limit_counts_all_kinds_of_mistakes() -> None:
    client = Client(make_policy(max_errors=4, auth_without_tls=True))
    client.codes(b"MAIL FROM:<a@example.com>\r\n")  # 503
    client.codes(b"EHLO\r\n")  # 501
    client.codes(b"EHLO c.test\r\n")
    client.feed(b"AUTH PLAIN AGJvYgB4\r\n")
    client.session.auth_result(None)  # 535
    assert client.session.errors == 3
    assert Close() in client.feed(b"NOOP " + b"x" * 600 + b"\r\n")  # line too long


def test_zero_means_no_error_limit() -> None:
    client = Client(make_policy(max_errors=0))
    outputs = client.feed(b"BOGUS\r\n" * 100)
    assert client.codes(outputs=outputs) == ["500 5.5.2"] * 100
    assert not client.session.closed


def test_policy_refusals_do_not_count_as_errors() -> None:
    client = Client(make_policy(max_errors=1, max_message_size=10, max_recipients=1), ehlo=True)
    client.codes(b"MAIL FROM:<a@example.com> SIZE=99\r\n")
    client.start_transaction("a@example.com", "b@example.org")
    client.codes(b"RCPT TO:<c@example.org>\r\n")
    client.codes(b"DATA\r\n")
    client.feed(b"x" * 20 + b"\r\n.\r\n")
    assert client.session.errors == 0
    assert not client.session.closed
    assert client.session.take_rejections() == [
        "message_too_large",
        "too_many_recipients",
        "message_too_large",
    ]


# Timeouts --------------------------------------------------------------------------------


def test_timed_out_says_421_and_closes() -> None:
    client = Client(ehlo=True)
    outputs = client.session.timed_out()
    assert outputs == [Reply(b"421 4.4.2 mx.test Timeout, closing connection\r\n"), Close()]
    assert client.session.close_reason == "timeout"
    assert client.session.timed_out() == []


def test_default_timeouts_follow_rfc_5321() -> None:
    client = Client(ehlo=True)
    assert client.session.idle_timeout() == 300.0
    client.start_data()
    assert client.session.idle_timeout() == 180.0


# Policy validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"hostname": ""},
        {"hostname": "two words"},
        {"max_command_line": 10},
        {"max_text_line": -1},
        {"max_recipients": 0},
        {"max_message_size": 0},
        {"max_errors": -1},
        {"command_timeout": 0},
        {"data_timeout": -1.0},
        {"auth_mechanisms": ("CRAM-MD5",)},
        {"bare_line_endings": "maybe"},
    ],
)
def test_bad_policies_are_config_errors(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        make_policy(**overrides)


# Steps (how the edge judges the least active session) --------------------------------------


def test_only_steps_towards_mail_count() -> None:
    client = Client()
    assert client.session.steps == 0
    client.feed(b"NOOP\r\nRSET\r\nHELP\r\nVRFY x\r\nBOGUS\r\nMAIL FROM:<a@example.com>\r\n")
    assert client.session.steps == 0  # MAIL refused before EHLO
    client.feed(b"EHLO c.test\r\n")
    client.feed(b"EHLO c.test\r\nNOOP\r\n")
    assert client.session.steps == 1  # a repeated EHLO is no step
    client.feed(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
    assert client.session.steps == 4
    client.feed(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    assert client.session.steps == 5
