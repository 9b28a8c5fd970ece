"""CheckSender / CheckRecipient: the door judges MAIL and RCPT while the session holds the input.

The session asks only when its policy says so; until the answer comes back, whatever the client
pipelined stays unread, and it is answered afterwards in the order it was sent.
"""

from __future__ import annotations

import pytest

from postroom.core.errors import Refusal, RefusalKind
from postroom.smtp.protocol import CheckRecipient, CheckSender

from .support import Client, Close, DeliverMessage, make_policy

REFUSED = Refusal(RefusalKind.RELAY_DENIED, "Sender domain not allowed")


def checking(sender: bool = True, recipient: bool = False) -> Client:
    return Client(make_policy(check_sender=sender, check_recipient=recipient), ehlo=True)


def test_without_the_policy_nothing_is_asked() -> None:
    client = Client(ehlo=True)
    outputs = client.feed(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
    assert [type(o) for o in outputs] == [type(outputs[0])]
    assert client.codes(outputs=outputs) == ["250 2.1.0", "250 2.1.5"]


def test_mail_asks_the_door_and_waits_for_the_answer() -> None:
    client = checking()
    outputs = client.feed(b"MAIL FROM:<a@example.com> SIZE=100 BODY=8BITMIME\r\n")
    assert outputs == [CheckSender("a@example.com", {"SIZE": "100", "BODY": "8BITMIME"})]
    assert client.session.busy
    assert client.session.envelope is None
    assert client.replies(outputs=client.session.sender_result(None)) == [
        "250 2.1.0 Sender <a@example.com> ok"
    ]
    assert not client.session.busy
    envelope = client.session.envelope
    assert envelope is not None
    assert envelope.mail_from == "a@example.com"
    assert dict(envelope.mail_params) == {"SIZE": "100", "BODY": "8BITMIME"}


def test_the_null_sender_is_asked_about_too() -> None:
    client = checking()
    assert client.feed(b"MAIL FROM:<>\r\n") == [CheckSender("", {})]


def test_a_refused_sender_gets_the_doors_reply_and_is_not_an_error() -> None:
    client = checking()
    client.feed(b"MAIL FROM:<x@blocked.example>\r\n")
    assert client.replies(outputs=client.session.sender_result(REFUSED)) == [
        "550 5.7.1 Sender domain not allowed"
    ]
    assert client.session.envelope is None
    assert client.session.errors == 0
    assert client.session.take_rejections() == ["sender_rejected"]
    # the next MAIL is asked about afresh
    assert client.feed(b"MAIL FROM:<x@fine.example>\r\n") == [CheckSender("x@fine.example", {})]


def test_syntax_errors_are_answered_without_asking() -> None:
    client = checking(recipient=True)
    assert client.codes(b"MAIL FROM:a@example.com\r\n") == ["501 5.1.7"]
    assert client.codes(b"MAIL FROM:<a@example.com> SIZE=999999999999\r\n") == ["552 5.3.4"]
    client.feed(b"MAIL FROM:<a@example.com>\r\n")
    client.session.sender_result(None)
    assert client.codes(b"RCPT TO:<not an address>\r\n") == ["501 5.1.3"]


def test_pipelined_commands_after_a_pending_mail_check_are_answered_in_order() -> None:
    client = checking()
    outputs = client.feed(
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"
        b"RCPT TO:<c@example.org>\r\nDATA\r\n"
    )
    assert outputs == [CheckSender("a@example.com", {})]
    # more input while the check is pending is held too, even split mid-line
    assert client.feed(b"Subject: hi\r\n\r\nbo") == []
    assert client.feed(b"dy\r\n.\r\n") == []
    assert client.session.pending_bytes > 0
    outputs = client.session.sender_result(None)
    assert client.codes(outputs=outputs) == ["250 2.1.0", "250 2.1.5", "250 2.1.5", "354"]
    delivery = client.delivery()
    assert delivery.message_envelope.recipients == ("b@example.org", "c@example.org")
    assert delivery.data == b"Subject: hi\r\n\r\nbody\r\n"
    assert isinstance(outputs[-1], DeliverMessage)


def test_pipelined_commands_after_a_refused_sender_see_no_transaction() -> None:
    client = checking()
    client.feed(b"MAIL FROM:<x@blocked.example>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
    outputs = client.session.sender_result(REFUSED)
    assert client.replies(outputs=outputs) == [
        "550 5.7.1 Sender domain not allowed",
        "503 5.5.1 Send MAIL FROM first",
        "503 5.5.1 Send MAIL FROM first",
    ]
    assert not any(isinstance(o, DeliverMessage) for o in outputs)


def test_recipients_are_asked_one_at_a_time_in_order() -> None:
    client = checking(sender=False, recipient=True)
    assert client.codes(b"MAIL FROM:<a@example.com>\r\n") == ["250 2.1.0"]
    outputs = client.feed(
        b"RCPT TO:<one@hosted.example> NOTIFY=FAILURE\r\n"
        b"RCPT TO:<two@elsewhere.example>\r\nRCPT TO:<three@hosted.example>\r\nDATA\r\n"
    )
    assert outputs == [CheckRecipient("one@hosted.example", {"NOTIFY": "FAILURE"}, "a@example.com")]
    outputs = client.session.recipient_result(None)
    assert client.codes(outputs=outputs) == ["250 2.1.5"]
    assert outputs[-1] == CheckRecipient("two@elsewhere.example", {}, "a@example.com")
    outputs = client.session.recipient_result(Refusal(RefusalKind.RELAY_DENIED, "Relaying denied"))
    assert client.replies(outputs=outputs) == ["550 5.7.1 Relaying denied"]
    assert outputs[-1] == CheckRecipient("three@hosted.example", {}, "a@example.com")
    outputs = client.session.recipient_result(None)
    assert client.codes(outputs=outputs) == ["250 2.1.5", "354"]
    envelope = client.session.envelope
    assert envelope is not None
    assert envelope.recipients == ("one@hosted.example", "three@hosted.example")
    assert envelope.rcpt_params == ({"NOTIFY": "FAILURE"}, {})
    assert client.session.take_rejections() == ["recipient_rejected"]


def test_sender_then_recipient_checks_chain() -> None:
    client = checking(sender=True, recipient=True)
    outputs = client.feed(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
    assert outputs == [CheckSender("a@example.com", {})]
    outputs = client.session.sender_result(None)
    assert client.codes(outputs=outputs) == ["250 2.1.0"]
    assert outputs[-1] == CheckRecipient("b@example.org", {}, "a@example.com")
    assert client.codes(outputs=client.session.recipient_result(None)) == ["250 2.1.5"]


def test_the_recipient_limit_is_applied_before_asking() -> None:
    client = Client(make_policy(check_recipient=True, max_recipients=1), ehlo=True)
    client.feed(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
    client.session.recipient_result(None)
    assert client.feed(b"RCPT TO:<c@example.org>\r\n") == client.outputs
    assert client.last_codes() == ["452 4.5.3"]
    assert not any(isinstance(o, CheckRecipient) for o in client.outputs)


def test_quit_behind_a_pending_check_closes_after_the_answer() -> None:
    client = checking()
    client.feed(b"MAIL FROM:<a@example.com>\r\nQUIT\r\n")
    outputs = client.session.sender_result(None)
    assert client.codes(outputs=outputs) == ["250 2.1.0", "221 2.0.0"]
    assert isinstance(outputs[-1], Close)


def test_an_answer_nobody_asked_for_is_a_bug() -> None:
    client = checking()
    with pytest.raises(RuntimeError):
        client.session.sender_result(None)
    client.feed(b"MAIL FROM:<a@example.com>\r\n")
    with pytest.raises(RuntimeError):
        client.session.recipient_result(None)
    with pytest.raises(RuntimeError):
        client.session.auth_result("bob")


def test_pipelining_split_at_every_byte_gives_the_same_replies() -> None:
    script = (
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"
        b"RCPT TO:<c@blocked.example>\r\nDATA\r\nSubject: s\r\n\r\nx\r\n.\r\nQUIT\r\n"
    )

    def run(chunks: list[bytes]) -> list[str]:
        client = Client(make_policy(check_sender=True, check_recipient=True), ehlo=True)
        replies: list[str] = []
        outputs = []
        for chunk in chunks:
            outputs += client.feed(chunk)
            while outputs:
                replies += client.replies(outputs=outputs)
                last = outputs[-1]
                outputs = []
                if isinstance(last, CheckSender):
                    outputs = client.session.sender_result(None)
                elif isinstance(last, CheckRecipient):
                    refusal = (
                        Refusal(RefusalKind.RELAY_DENIED, "No")
                        if "blocked" in last.address
                        else None
                    )
                    outputs = client.session.recipient_result(refusal)
                elif isinstance(last, DeliverMessage):
                    outputs = client.session.message_result("ID1")
        return replies

    whole = run([script])
    assert [r[:9] for r in whole] == [
        "250 2.1.0",
        "250 2.1.5",
        "550 5.7.1",
        "354 End d",
        "250 2.0.0",
        "221 2.0.0",
    ]
    for cut in range(1, len(script)):
        assert run([script[:cut], script[cut:]]) == whole, cut
    assert run([script[i : i + 1] for i in range(len(script))]) == whole
