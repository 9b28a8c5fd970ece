"""Message data handed to the edge in pieces (`data_chunk`), and the edge's say before a
transfer starts (`check_data`): the sans-IO side of spooling and the memory budget."""

from __future__ import annotations

from postroom.core.errors import Refusal, RefusalKind
from postroom.smtp.body import BodyCheck, Unstuffer
from postroom.smtp.protocol import (
    CheckData,
    DeliverMessage,
    DiscardMessage,
    MessageData,
    Output,
    Reply,
    SmtpSession,
)

from .support import make_policy

BUSY = Refusal(RefusalKind.SERVER_BUSY, "Too much mail at once; try again later")
TRANSACTION = b"EHLO c.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"


def replies(outputs: list[Output]) -> bytes:
    return b"".join(o.data for o in outputs if isinstance(o, Reply))


def of(kind: type, outputs: list[Output]) -> list[object]:
    return [o for o in outputs if isinstance(o, kind)]


def body(size: int) -> bytes:
    line = b"." + b"x" * 70 + b"\r\n"  # every line dot-stuffed on the wire
    return (line * (size // len(line) + 1))[: size // len(line) * len(line)]


def stuffed(message: bytes) -> bytes:
    return message.replace(b"\r\n.", b"\r\n..").replace(b".x", b"..x", 1)


def test_a_big_data_message_comes_out_in_pieces_then_its_end() -> None:
    session = SmtpSession(make_policy(data_chunk=1000, max_text_line=0))
    outputs = session.feed(TRANSACTION + b"DATA\r\n")
    assert replies(outputs).endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    message = body(10_000)
    wire = stuffed(message) + b".\r\n"
    outputs = []
    for i in range(0, len(wire), 333):
        outputs += session.feed(wire[i : i + 333])
    pieces = of(MessageData, outputs)
    [deliver] = of(DeliverMessage, outputs)
    assert len(pieces) > 5 and all(isinstance(p, MessageData) for p in pieces)
    assert isinstance(deliver, DeliverMessage) and deliver.streamed
    got = b"".join(p.data for p in pieces if isinstance(p, MessageData)) + deliver.data
    assert got == message
    assert session.data_buffered < 1000 + 333


def test_a_small_message_is_not_streamed() -> None:
    session = SmtpSession(make_policy(data_chunk=1000))
    outputs = session.feed(TRANSACTION + b"DATA\r\nSubject: hi\r\n\r\nhello\r\n.\r\n")
    assert of(MessageData, outputs) == []
    [deliver] = of(DeliverMessage, outputs)
    assert isinstance(deliver, DeliverMessage)
    assert (deliver.data, deliver.streamed) == (b"Subject: hi\r\n\r\nhello\r\n", False)


def test_a_streamed_message_over_the_limit_is_discarded_as_soon_as_it_is_sure() -> None:
    session = SmtpSession(make_policy(data_chunk=1000, max_message_size=5000, max_text_line=0))
    session.feed(TRANSACTION + b"DATA\r\n")
    outputs = session.feed(stuffed(body(8000)))
    assert of(DiscardMessage, outputs) == [DiscardMessage()]
    assert session.data_buffered <= 4
    outputs = session.feed(b"more\r\n.\r\n")
    assert replies(outputs) == b"552 5.3.4 Message size exceeds the maximum of 5000 octets\r\n"
    assert of(DeliverMessage, outputs) == []


def test_a_streamed_message_refused_at_its_end_is_discarded() -> None:
    session = SmtpSession(make_policy(data_chunk=1000, max_text_line=0))
    session.feed(TRANSACTION + b"DATA\r\n")
    outputs = session.feed(stuffed(body(5000)))
    assert of(MessageData, outputs) != []
    outputs = session.feed(b"a NUL \x00 at the end\r\n.\r\n")
    assert of(DiscardMessage, outputs) == [DiscardMessage()]
    assert replies(outputs) == b"554 5.6.0 The message contains NUL characters\r\n"


def test_check_data_refused_ends_the_transaction_and_drops_a_bdat_chunk() -> None:
    session = SmtpSession(make_policy(check_data=True))
    outputs = session.feed(TRANSACTION + b"DATA\r\n")
    assert of(CheckData, outputs) == [CheckData()] and session.busy
    outputs = session.data_result(BUSY)
    assert replies(outputs) == b"452 4.3.1 Too much mail at once; try again later\r\n"
    assert session.envelope is None and not session.busy
    session.feed(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
    outputs = session.feed(b"BDAT 5 LAST\r\nhello")
    assert of(CheckData, outputs) == [CheckData()]
    outputs = session.data_result(BUSY) + session.feed(b"NOOP\r\n")
    assert replies(outputs) == (
        b"452 4.3.1 Too much mail at once; try again later\r\n250 2.0.0 Ok\r\n"
    )
    assert of(DeliverMessage, outputs) == []


def test_check_data_accepted_starts_the_transfer() -> None:
    session = SmtpSession(make_policy(check_data=True))
    session.feed(TRANSACTION)
    outputs = session.feed(b"BDAT 7 LAST\r\nhello\r\n")
    assert of(CheckData, outputs) == [CheckData()]
    outputs = session.data_result(None)
    [deliver] = of(DeliverMessage, outputs)
    assert isinstance(deliver, DeliverMessage) and deliver.data == b"hello\r\n"


def test_body_check_verdicts_do_not_depend_on_the_pieces() -> None:
    message = b"a\rb\nline\r\n" + b"y" * 300 + b"\r\nend\r"
    for cut in range(1, len(message)):
        whole = BodyCheck(binary=False, reject_bare=False, line_limit=200)
        expected = whole.whole(message, chunked=True)
        pieces = BodyCheck(binary=False, reject_bare=False, line_limit=200)
        got = pieces.feed(message[:cut]) + pieces.feed(message[cut:])
        got += pieces.finish(chunked=True)
        assert got == expected == (b"a\r\nb\r\nline\r\n" + b"y" * 300 + b"\r\nend\r\n")
        assert (pieces.bare, pieces.too_long, pieces.size_out) == (True, True, len(expected))


def test_unstuffing_does_not_depend_on_the_pieces() -> None:
    stream = b"\r\n..a\r\n.\r\n..\r\nb.\r\n.c\r\n"
    expected = b".a\r\n\r\n.\r\nb.\r\nc\r\n"
    for cut in range(len(stream) + 1):
        unstuffer = Unstuffer()
        got = unstuffer.feed(stream[:cut]) + unstuffer.feed(stream[cut:], final=True)
        assert got == expected
