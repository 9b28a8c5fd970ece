from __future__ import annotations

import pytest

from postroom.core.errors import Refusal, RefusalKind
from postroom.smtp.protocol import DeliverMessage, Reply

from .support import Client, make_policy

MESSAGE = b"Subject: hello\r\n\r\nBody line\r\n"


def test_data_before_mail_or_rcpt_is_503() -> None:
    client = Client(ehlo=True)
    assert client.codes(b"DATA\r\n") == ["503 5.5.1"]
    client.codes(b"MAIL FROM:<a@example.com>\r\n")
    assert client.replies(b"DATA\r\n") == ["503 5.5.1 Send RCPT TO first: no valid recipients"]


def test_data_with_argument_is_501() -> None:
    client = Client(ehlo=True)
    client.start_transaction()
    assert client.codes(b"DATA now\r\n") == ["501 5.5.4"]
    assert client.codes(b"DATA\r\n") == ["354"]


def test_binarymime_needs_bdat() -> None:
    client = Client(ehlo=True)
    client.codes(b"MAIL FROM:<a@example.com> BODY=BINARYMIME\r\nRCPT TO:<b@example.org>\r\n")
    assert client.codes(b"DATA\r\n") == ["503 5.5.1"]


def test_a_message_is_handed_out_then_acknowledged() -> None:
    client = Client(ehlo=True)
    client.start_transaction("a@example.com", "b@example.org", "c@example.org")
    assert client.replies(b"DATA\r\n") == ["354 End data with <CR><LF>.<CR><LF>"]
    outputs = client.feed(MESSAGE + b".\r\n")
    assert len(outputs) == 1
    delivery = outputs[0]
    assert isinstance(delivery, DeliverMessage)
    assert delivery.data == MESSAGE
    assert delivery.bare_line_endings is False
    assert delivery.message_envelope.mail_from == "a@example.com"
    assert delivery.message_envelope.recipients == ("b@example.org", "c@example.org")
    assert client.session.busy
    outputs = client.session.message_result("01ABC")
    assert outputs == [Reply(b"250 2.0.0 Ok: queued as 01ABC\r\n")]
    assert client.session.messages == 1
    assert client.session.envelope is None
    assert not client.session.busy


def test_refusal_from_the_pipeline_is_relayed_and_resets() -> None:
    client = Client(ehlo=True)
    client.send_message(MESSAGE + b".\r\n")
    refusal = Refusal(RefusalKind.RELAY_DENIED, "Sender not verified")
    assert client.replies(outputs=client.session.message_result(refusal)) == [
        "550 5.7.1 Sender not verified"
    ]
    assert client.session.envelope is None
    assert client.codes(b"RCPT TO:<b@example.org>\r\n") == ["503 5.5.1"]
    assert client.session.errors == 1  # the 503; the pipeline's refusal is not the client's error
    assert client.session.rejects == 2


def test_several_messages_in_one_session() -> None:
    client = Client(ehlo=True)
    for number in range(3):
        delivery = client.send_message(b"Subject: %d\r\n\r\nx\r\n.\r\n" % number)
        assert delivery is not None
        assert delivery.data == b"Subject: %d\r\n\r\nx\r\n" % number
        client.session.message_result(f"id{number}")
    assert client.session.messages == 3


@pytest.mark.parametrize(
    ("sent", "received"),
    [
        (b"..leading dot\r\n", b".leading dot\r\n"),
        (b"a\r\n..\r\nb\r\n", b"a\r\n.\r\nb\r\n"),
        (b"a\r\n...\r\n", b"a\r\n..\r\n"),
        (b"a\r\n.unstuffed by a sloppy client\r\n", b"a\r\nunstuffed by a sloppy client\r\n"),
        (b"a.\r\nb..c\r\n", b"a.\r\nb..c\r\n"),
        (b"", b""),
        (b"\r\n", b"\r\n"),
    ],
)
def test_dot_unstuffing(sent: bytes, received: bytes) -> None:
    client = Client(ehlo=True)
    delivery = client.send_message(sent + b".\r\n")
    assert delivery is not None
    assert delivery.data == received


def test_terminator_split_at_every_position() -> None:
    wire = MESSAGE + b".\r\nNOOP\r\n"
    for cut in range(1, len(wire)):
        client = Client(ehlo=True)
        client.start_data()
        first = client.feed(wire[:cut])
        second = client.feed(wire[cut:])
        deliveries = [o for o in first + second if isinstance(o, DeliverMessage)]
        assert len(deliveries) == 1, cut
        assert deliveries[0].data == MESSAGE
        assert client.codes(outputs=client.session.message_result("x")) == [
            "250 2.0.0",
            "250 2.0.0",
        ]


def test_byte_by_byte() -> None:
    client = Client(ehlo=True)
    client.start_data()
    outputs = []
    for byte in MESSAGE + b".\r\n":
        outputs += client.feed(bytes([byte]))
    assert [o.data for o in outputs if isinstance(o, DeliverMessage)] == [MESSAGE]


def test_commands_pipelined_after_the_data_wait_for_the_result() -> None:
    client = Client(ehlo=True)
    client.start_data()
    outputs = client.feed(
        MESSAGE + b".\r\nMAIL FROM:<n@example.com>\r\nRCPT TO:<m@example.org>\r\n"
    )
    assert [type(o) for o in outputs] == [DeliverMessage]
    assert client.session.pending_bytes > 0
    assert client.codes(outputs=client.session.message_result("id1")) == [
        "250 2.0.0",
        "250 2.1.0",
        "250 2.1.5",
    ]
    assert client.feed(b"NOOP\r\n") == [Reply(b"250 2.0.0 Ok\r\n")]


def test_input_arriving_while_busy_is_held() -> None:
    client = Client(ehlo=True)
    client.send_message(MESSAGE + b".\r\n")
    assert client.feed(b"NOOP\r\n") == []
    assert client.feed(b"QUIT\r\n") == []
    assert client.codes(outputs=client.session.message_result("id1")) == [
        "250 2.0.0",
        "250 2.0.0",
        "221 2.0.0",
    ]
    assert client.session.closed


def test_whole_transaction_pipelined_in_one_feed() -> None:
    client = Client()
    wire = (
        b"EHLO c.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"
        b"RCPT TO:<c@example.org>\r\nDATA\r\n" + MESSAGE + b".\r\nQUIT\r\n"
    )
    outputs = client.feed(wire)
    assert [type(o) for o in outputs] == [Reply, DeliverMessage]
    assert client.codes(outputs=outputs[:1]) == [
        "250",
        "250 2.1.0",
        "250 2.1.5",
        "250 2.1.5",
        "354",
    ]
    delivery = outputs[1]
    assert isinstance(delivery, DeliverMessage)
    assert delivery.data == MESSAGE
    assert delivery.message_envelope.recipients == ("b@example.org", "c@example.org")
    final = client.session.message_result("id1")
    assert client.codes(outputs=final) == ["250 2.0.0", "221 2.0.0"]


def test_eight_bit_and_utf8_data_pass_unchanged() -> None:
    body = "Subject: héllo\r\n\r\nGrüße, 日本\r\n".encode() + bytes(range(0x80, 0x100)) + b"\r\n"
    delivery = Client(ehlo=True).send_message(body + b".\r\n")
    assert delivery is not None
    assert delivery.data == body


def test_message_result_without_outstanding_delivery_is_a_bug() -> None:
    client = Client(ehlo=True)
    with pytest.raises(RuntimeError):
        client.session.message_result("id")
    client.send_message(MESSAGE + b".\r\n")
    with pytest.raises(RuntimeError):
        client.session.auth_result("bob")


def test_idle_timeout_depends_on_the_state() -> None:
    client = Client(make_policy(command_timeout=30.0, data_timeout=20.0), ehlo=True)
    assert client.session.idle_timeout() == 30.0
    client.start_data()
    assert client.session.idle_timeout() == 20.0
    client.feed(b"partial line")
    assert client.session.idle_timeout() == 20.0
    client.feed(b"\r\n.\r\n")
    client.session.message_result("x")
    assert client.session.idle_timeout() == 30.0


def test_envelope_parameters_travel_with_the_message() -> None:
    client = Client(ehlo=True)
    client.codes(b"MAIL FROM:<a@example.com> BODY=8BITMIME ENVID=e1\r\n")
    client.codes(b"RCPT TO:<b@example.org> NOTIFY=NEVER\r\nRCPT TO:<c@example.org>\r\n")
    client.codes(b"DATA\r\n")
    client.feed(MESSAGE + b".\r\n")
    envelope = client.delivery().message_envelope
    assert envelope.mail_params == {"BODY": "8BITMIME", "ENVID": "e1"}
    assert envelope.rcpt_params == ({"NOTIFY": "NEVER"}, {})
