from __future__ import annotations

import pytest

from postroom.smtp.protocol import Close, DeliverMessage, Reply

from .support import Client, make_policy

MESSAGE = b"Subject: chunked\r\n\r\nHello\r\n"


def ready(policy_max: int | None = None, mail_params: str = "") -> Client:
    policy = make_policy(max_message_size=policy_max) if policy_max else make_policy()
    client = Client(policy, ehlo=True)
    assert client.codes(f"MAIL FROM:<a@example.com>{mail_params}\r\n".encode()) == ["250 2.1.0"]
    assert client.codes(b"RCPT TO:<b@example.org>\r\n") == ["250 2.1.5"]
    return client


def test_single_last_chunk_delivers_exact_bytes() -> None:
    client = ready()
    outputs = client.feed(b"BDAT %d LAST\r\n" % len(MESSAGE) + MESSAGE)
    assert outputs == [DeliverMessage(client.delivery().message_envelope, MESSAGE, False)]
    assert client.codes(outputs=client.session.message_result("id1")) == ["250 2.0.0"]
    assert client.session.envelope is None


def test_intermediate_chunks_get_250_immediately() -> None:
    client = ready()
    assert client.replies(b"BDAT 9\r\nSubject: ") == ["250 2.0.0 9 octets received"]
    assert client.replies(b"BDAT 4\r\nabc\n") == ["250 2.0.0 4 octets received"]
    assert client.replies(b"BDAT 0\r\n") == ["250 2.0.0 0 octets received"]
    client.feed(b"BDAT 0 LAST\r\n")
    # "abc\n" holds a bare LF; with the default policy it is refused
    assert client.last_codes() == ["550 5.6.11"]


def test_chunks_are_concatenated_and_bdat_0_last_ends() -> None:
    client = ready()
    client.codes(b"BDAT 10\r\n" + MESSAGE[:10])
    client.codes(b"BDAT %d\r\n" % (len(MESSAGE) - 10) + MESSAGE[10:])
    client.feed(b"BDAT 0 last\r\n")
    assert client.delivery().data == MESSAGE


def test_bdat_0_last_alone_delivers_an_empty_message() -> None:
    client = ready()
    client.feed(b"BDAT 0 LAST\r\n")
    assert client.delivery().data == b""


def test_chunk_spanning_feeds_and_followed_by_pipelined_commands() -> None:
    client = ready()
    assert client.feed(b"BDAT 20 LAST\r\nSubject: x\r\n") == []
    assert client.session.idle_timeout() == client.session.policy.data_timeout
    outputs = client.feed(b"\r\nabcd\r\nNOOP\r\n")
    assert [type(o) for o in outputs] == [DeliverMessage]
    assert client.delivery().data == b"Subject: x\r\n\r\nabcd\r\n"
    assert client.codes(outputs=client.session.message_result("id")) == ["250 2.0.0", "250 2.0.0"]


def test_chunk_content_is_opaque_no_dot_handling() -> None:
    body = b"a\r\n..b\r\n.\r\nMAIL FROM:<x@y.z>\r\n"
    client = ready()
    client.feed(b"BDAT %d LAST\r\n" % len(body) + body)
    assert client.delivery().data == body


def test_missing_crlf_at_the_end_is_added() -> None:
    client = ready()
    client.feed(b"BDAT 5 LAST\r\nhello")
    assert client.delivery().data == b"hello\r\n"


def test_bdat_without_transaction_consumes_the_chunk() -> None:
    client = Client(ehlo=True)
    assert client.codes(b"BDAT 6\r\nRSET\r\nNOOP\r\n") == ["503 5.5.1", "250 2.0.0"]
    client.codes(b"MAIL FROM:<a@example.com>\r\n")
    assert client.replies(b"BDAT 2 LAST\r\nxy") == [
        "503 5.5.1 Send RCPT TO first: no valid recipients"
    ]


@pytest.mark.parametrize(
    "line", ["BDAT", "BDAT x", "BDAT -1", "BDAT 5 FIRST", "BDAT 5 LAST more", "BDAT 1.5"]
)
def test_bad_bdat_syntax_is_501(line: str) -> None:
    client = ready()
    assert client.codes(f"{line}\r\n".encode()) == ["501 5.5.4"]
    assert client.session.envelope is not None


def test_a_chunk_larger_than_the_limit_is_refused_at_once_and_closes() -> None:
    client = ready(policy_max=100)
    outputs = client.feed(b"BDAT 500 LAST\r\n")  # not one octet of the chunk sent
    assert outputs == [
        Reply(
            b"552 5.3.4 Message size exceeds the maximum of 100 octets\r\n"
            b"421 4.3.4 mx.test The rest of that 500-octet chunk will not be read, "
            b"closing connection\r\n"
        ),
        Close(linger=True),
    ]
    assert client.session.closed
    assert client.session.close_reason == "chunk_too_large"
    assert client.session.errors == 0
    assert client.feed(b"x" * 500 + b"NOOP\r\n") == []


def test_a_terabyte_chunk_is_not_awaited() -> None:
    client = ready()
    codes = client.codes(b"BDAT 1000000000000 LAST\r\n")
    assert codes == ["552 5.3.4", "421 4.3.4"]
    assert client.session.closed and not client.session.in_data


def test_a_chunk_that_overflows_the_total_is_refused_before_its_octets_then_skipped() -> None:
    client = ready(policy_max=100)
    assert client.codes(b"BDAT 60\r\n" + b"a" * 60) == ["250 2.0.0"]
    assert client.codes(b"BDAT 60\r\n") == ["552 5.3.4"]
    assert client.session.envelope is None
    # its octets are read and dropped, whatever they hold: nothing in them runs
    smuggled = b"RCPT TO:<c@example.org>\r\nRSET\r\n"
    assert client.feed(smuggled + b"b" * (60 - len(smuggled))) == []
    assert client.session.data_buffered == 0
    assert client.codes(b"BDAT 2 LAST\r\nbbNOOP\r\n") == ["503 5.5.1", "250 2.0.0"]
    assert not [o for o in client.outputs if isinstance(o, DeliverMessage)]
    assert not client.session.closed


def test_total_over_the_limit_across_chunks() -> None:
    client = ready(policy_max=100)
    assert client.codes(b"BDAT 60\r\n" + b"a" * 60) == ["250 2.0.0"]
    assert client.codes(b"BDAT 60\r\n" + b"b" * 60) == ["552 5.3.4"]
    assert client.codes(b"BDAT 1 LAST\r\nc") == ["503 5.5.1"]
    assert not [o for o in client.outputs if isinstance(o, DeliverMessage)]


def test_exactly_the_limit_is_accepted() -> None:
    client = ready(policy_max=100)
    client.feed(b"BDAT 100 LAST\r\n" + b"z" * 98 + b"\r\n")
    assert len(client.delivery().data) == 100


def test_data_after_bdat_is_503() -> None:
    client = ready()
    assert client.codes(b"BDAT 3\r\nabc") == ["250 2.0.0"]
    assert client.codes(b"DATA\r\n") == ["503 5.5.1"]
    assert client.codes(b"RCPT TO:<c@example.org>\r\n") == ["503 5.5.1"]


def test_binarymime_content_is_not_checked() -> None:
    body = b"\x00\x01bare\nlf\rcr\xff"
    client = ready(mail_params=" BODY=BINARYMIME")
    client.feed(b"BDAT %d LAST\r\n" % len(body) + body)
    delivery = client.delivery()
    assert delivery.data == body
    assert delivery.bare_line_endings is False


def test_text_chunks_are_checked_like_data() -> None:
    client = ready()
    client.feed(b"BDAT 5 LAST\r\na\0b\r\n")
    assert client.last_codes() == ["554 5.6.0"]
    client = ready()
    client.feed(b"BDAT 6 LAST\r\nab\ncd\n")
    assert client.last_codes() == ["550 5.6.11"]
    client = Client(make_policy(bare_line_endings="accept"), ehlo=True)
    client.start_transaction()
    client.feed(b"BDAT 6 LAST\r\nab\ncd\n")
    assert client.delivery().data == b"ab\r\ncd\r\n"
    assert client.delivery().bare_line_endings is True


def test_rset_abandons_a_bdat_transfer() -> None:
    client = ready()
    client.codes(b"BDAT 3\r\nabc")
    assert client.codes(b"RSET\r\n") == ["250 2.0.0"]
    client.start_transaction()
    client.feed(b"BDAT 3 LAST\r\nxyz")
    assert client.delivery().data == b"xyz\r\n"


def test_pipelined_bdat_transaction_in_one_feed() -> None:
    client = Client()
    outputs = client.feed(
        b"EHLO c.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"
        b"BDAT 4\r\nab\r\nBDAT 4 LAST\r\ncd\r\nQUIT\r\n"
    )
    assert [type(o) for o in outputs] == [Reply, DeliverMessage]
    assert client.codes(outputs=outputs[:1]) == ["250", "250 2.1.0", "250 2.1.5", "250 2.0.0"]
    delivery = outputs[1]
    assert isinstance(delivery, DeliverMessage)
    assert delivery.data == b"ab\r\ncd\r\n"
    assert client.codes(outputs=client.session.message_result("i")) == ["250 2.0.0", "221 2.0.0"]
