"""The sans-IO SMTP client session: a scripted server's replies in, commands and results out."""

from __future__ import annotations

import base64

import pytest

from postroom.core.errors import ConfigError
from postroom.smtp.client_protocol import (
    ClientPolicy,
    ClientSession,
    Close,
    Failed,
    Finished,
    OutboundMessage,
    OutboundRecipient,
    Output,
    Ready,
    Send,
    ServerReply,
    StartTls,
    TransactionResult,
    dot_stuff,
)

EHLO_FULL = (
    b"250-mx.example.net Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
    b"250-SMTPUTF8\r\n250-DSN\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-STARTTLS\r\n"
    b"250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n"
)
EHLO_PLAIN = b"250-mx.example.net\r\n250 8BITMIME\r\n"


def sent(outputs: list[Output]) -> bytes:
    return b"".join(o.data for o in outputs if isinstance(o, Send))


def finished(outputs: list[Output]) -> TransactionResult:
    results = [o.result for o in outputs if isinstance(o, Finished)]
    assert len(results) == 1, outputs
    return results[0]


def message(
    *recipients: str, data: bytes = b"Subject: hi\r\n\r\nbody\r\n", **kw: object
) -> OutboundMessage:
    rcpts = tuple(OutboundRecipient(r) for r in recipients) or (OutboundRecipient("b@example.net"),)
    return OutboundMessage("a@example.com", rcpts, data, **kw)  # type: ignore[arg-type]


def ready(policy: ClientPolicy | None = None, ehlo: bytes = EHLO_PLAIN) -> ClientSession:
    session = ClientSession(policy or ClientPolicy("client.example.com", tls="none"))
    out = session.feed(b"220 mx.example.net ESMTP\r\n")
    assert sent(out) == b"EHLO client.example.com\r\n"
    out = session.feed(ehlo)
    assert any(isinstance(o, Ready) for o in out), out
    return session


def test_plain_transaction_one_command_at_a_time() -> None:
    session = ready()
    out = session.send(message("b@example.net", "c@example.net"))
    assert sent(out) == b"MAIL FROM:<a@example.com>\r\n"
    assert sent(session.feed(b"250 2.1.0 Ok\r\n")) == b"RCPT TO:<b@example.net>\r\n"
    assert sent(session.feed(b"250 2.1.5 Ok\r\n")) == b"RCPT TO:<c@example.net>\r\n"
    assert sent(session.feed(b"550 5.1.1 No such user\r\n")) == b"DATA\r\n"
    assert sent(session.feed(b"354 go ahead\r\n")) == b"Subject: hi\r\n\r\nbody\r\n.\r\n"
    result = finished(session.feed(b"250 2.0.0 Ok: queued as X\r\n"))
    assert result.delivered == ("b@example.net",)
    by_address = {r.address: r.reply for r in result.recipients}
    assert str(by_address["c@example.net"]) == "550 5.1.1 No such user"
    assert by_address["b@example.net"].text == "Ok: queued as X"
    assert session.state == "ready"


def test_pipelining_sends_mail_rcpts_and_data_in_one_write() -> None:
    session = ready(ehlo=EHLO_FULL.replace(b"250-STARTTLS\r\n", b""))
    out = session.send(message("b@example.net", "c@example.net"))
    assert sent(out) == (
        b"MAIL FROM:<a@example.com> SIZE=21\r\nRCPT TO:<b@example.net>\r\n"
        b"RCPT TO:<c@example.net>\r\nDATA\r\n"
    )
    out = session.feed(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n")
    assert sent(out).endswith(b"body\r\n.\r\n")
    result = finished(session.feed(b"250 2.0.0 queued\r\n"))
    assert result.delivered == ("b@example.net", "c@example.net")


def test_pipelining_every_recipient_refused_and_data_refused() -> None:
    session = ready(ehlo=b"250-x\r\n250 PIPELINING\r\n")
    session.send(message("b@example.net"))
    result = finished(
        session.feed(b"250 Ok\r\n550 5.1.1 unknown\r\n554 5.5.1 no valid recipients\r\n")
    )
    assert result.delivered == ()
    assert result.recipients[0].reply.enhanced == "5.1.1"
    # The next transaction starts with RSET (the server may hold the failed one open).
    assert sent(session.send(message())).startswith(b"RSET\r\nMAIL FROM:")


def test_pipelining_354_after_every_recipient_refused_ends_the_empty_data() -> None:
    session = ready(ehlo=b"250-x\r\n250 PIPELINING\r\n")
    session.send(message("b@example.net"))
    out = session.feed(b"250 Ok\r\n550 5.1.1 unknown\r\n354 go\r\n")
    assert sent(out) == b".\r\n"
    result = finished(session.feed(b"554 no recipients\r\n"))
    assert str(result.recipients[0].reply) == "550 5.1.1 unknown"


def test_mail_refused_fails_every_recipient() -> None:
    session = ready()
    session.send(message("b@example.net", "c@example.net"))
    result = finished(session.feed(b"451 4.7.1 Greylisted, try later\r\n"))
    assert [r.reply.code for r in result.recipients] == [451, 451]
    assert result.recipients[0].reply.temporary


def test_data_refused_after_dot() -> None:
    session = ready()
    session.send(message())
    session.feed(b"250 ok\r\n")
    session.feed(b"250 ok\r\n")
    session.feed(b"354 go\r\n")
    result = finished(session.feed(b"554 5.7.1 Spam\r\n"))
    assert result.recipients[0].reply.permanent
    assert str(result.data) == "554 5.7.1 Spam"


def test_multiline_reply_and_enhanced_code_only_when_classes_agree() -> None:
    session = ready()
    session.send(message())
    result = finished(session.feed(b"550-5.1.1 first line\r\n550 5.1.1 second\r\n"))
    reply = result.recipients[0].reply
    assert reply.lines == ("5.1.1 first line", "5.1.1 second")
    assert reply.enhanced == "5.1.1" and reply.text == "first line 5.1.1 second"
    assert ServerReply(550, ("4.1.1 odd",)).text == "4.1.1 odd"


def test_dot_stuffing() -> None:
    assert dot_stuff(b".a\r\n..b\r\nc.\r\n") == b"..a\r\n...b\r\nc.\r\n.\r\n"
    assert dot_stuff(b"no final newline") == b"no final newline\r\n.\r\n"
    assert dot_stuff(b"") == b".\r\n"


def test_esmtp_parameters_only_where_offered() -> None:
    session = ready(
        ehlo=EHLO_FULL.replace(b"250-STARTTLS\r\n", b"").replace(b"250-AUTH PLAIN LOGIN\r\n", b"")
    )
    msg = OutboundMessage(
        "a@example.com",
        (OutboundRecipient("ü@example.net", notify="FAILURE,DELAY", orcpt="rfc822;x@example.net"),),
        "Subject: é\r\n\r\nx\r\n".encode(),
        smtputf8=True,
        ret="HDRS",
        envid="abc",
    )
    out = sent(session.send(msg))
    assert out.startswith(
        b"MAIL FROM:<a@example.com> SIZE=18 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=abc\r\n"
        + "RCPT TO:<ü@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;x@example.net\r\n".encode()
    )
    plain = ready()
    assert (
        sent(
            plain.send(
                OutboundMessage(
                    "a@x", (OutboundRecipient("b@y", notify="NEVER"),), b"x\r\n", ret="FULL"
                )
            )
        )
        == b"MAIL FROM:<a@x>\r\n"
    )


@pytest.mark.parametrize(
    ("ehlo", "kw", "code", "enhanced"),
    [
        (b"250-x\r\n250 SIZE 10\r\n", {}, 552, "5.3.4"),
        (b"250 x\r\n", {"smtputf8": True}, 553, "5.6.7"),
        (b"250-x\r\n250 CHUNKING\r\n", {"binary": True}, 554, "5.6.3"),
    ],
)
def test_refusals_decided_locally_send_nothing(
    ehlo: bytes, kw: dict[str, bool], code: int, enhanced: str
) -> None:
    session = ready(ehlo=ehlo)
    out = session.send(message(data=b"Subject: more than ten octets\r\n\r\n", **kw))
    assert sent(out) == b""
    reply = finished(out).recipients[0].reply
    assert (reply.code, reply.enhanced, reply.local) == (code, enhanced, True)
    assert session.state == "ready"


def test_binary_message_goes_by_bdat() -> None:
    session = ready(ehlo=b"250-x\r\n250-CHUNKING\r\n250 BINARYMIME\r\n")
    data = b"Subject: b\r\n\r\n\x00\x01.\r\n"
    assert (
        sent(session.send(message(data=data, binary=True)))
        == b"MAIL FROM:<a@example.com> BODY=BINARYMIME\r\n"
    )
    session.feed(b"250 ok\r\n")
    out = session.feed(b"250 ok\r\n")
    assert sent(out) == f"BDAT {len(data)} LAST\r\n".encode() + data
    assert finished(session.feed(b"250 2.0.0 ok\r\n")).delivered == ("b@example.net",)


def test_ehlo_refused_falls_back_to_helo() -> None:
    session = ClientSession(ClientPolicy("c.example", tls="none"))
    session.feed(b"220 old\r\n")
    assert sent(session.feed(b"502 what\r\n")) == b"HELO c.example\r\n"
    assert any(isinstance(o, Ready) for o in session.feed(b"250 old\r\n"))
    assert session.extensions == {}


def test_starttls_then_ehlo_again_forgetting_clear_text_extensions() -> None:
    session = ClientSession(ClientPolicy("c.example", tls="opportunistic"))
    session.feed(b"220 mx\r\n")
    assert sent(session.feed(b"250-mx\r\n250-SIZE 5\r\n250 STARTTLS\r\n")) == b"STARTTLS\r\n"
    out = session.feed(b"220 2.0.0 go\r\n250 injected\r\n")
    assert any(isinstance(o, StartTls) for o in out)
    assert sent(session.tls_started()) == b"EHLO c.example\r\n"
    assert any(isinstance(o, Ready) for o in session.feed(b"250 mx\r\n"))
    assert session.tls_active and "SIZE" not in session.extensions


def test_tls_required_but_not_offered_fails_temporarily() -> None:
    session = ClientSession(ClientPolicy("c.example", tls="required"))
    session.feed(b"220 mx\r\n")
    out = session.feed(b"250 mx\r\n")
    failed = [o for o in out if isinstance(o, Failed)]
    assert failed and failed[0].stage == "starttls" and failed[0].reply.enhanced == "4.7.4"
    assert isinstance(out[-1], Close)


def test_opportunistic_tls_continues_in_clear_when_starttls_refused() -> None:
    session = ClientSession(ClientPolicy("c.example", tls="opportunistic"))
    session.feed(b"220 mx\r\n")
    session.feed(b"250-mx\r\n250 STARTTLS\r\n")
    assert any(isinstance(o, Ready) for o in session.feed(b"454 4.7.0 TLS not available\r\n"))
    assert not session.tls_active


def test_auth_plain_and_login() -> None:
    policy = ClientPolicy("c", tls="none", username="user", password="pw", auth_without_tls=True)
    session = ClientSession(policy)
    session.feed(b"220 x\r\n")
    out = session.feed(b"250-x\r\n250 AUTH LOGIN PLAIN\r\n")
    assert sent(out) == b"AUTH PLAIN " + base64.b64encode(b"\0user\0pw") + b"\r\n"
    assert any(isinstance(o, Ready) for o in session.feed(b"235 2.7.0 ok\r\n"))

    session = ClientSession(policy)
    session.feed(b"220 x\r\n")
    assert sent(session.feed(b"250-x\r\n250-AUTH=LOGIN\r\n250 8BITMIME\r\n")) == b"AUTH LOGIN\r\n"
    assert sent(session.feed(b"334 VXNlcm5hbWU6\r\n")) == base64.b64encode(b"user") + b"\r\n"
    assert sent(session.feed(b"334 UGFzc3dvcmQ6\r\n")) == base64.b64encode(b"pw") + b"\r\n"
    assert any(isinstance(o, Ready) for o in session.feed(b"235 ok\r\n"))


def test_auth_refused_and_credentials_never_in_clear() -> None:
    session = ClientSession(
        ClientPolicy("c", tls="none", username="u", password="p", auth_without_tls=True)
    )
    session.feed(b"220 x\r\n")
    session.feed(b"250-x\r\n250 AUTH PLAIN\r\n")
    out = session.feed(b"535 5.7.8 bad credentials\r\n")
    assert [o.stage for o in out if isinstance(o, Failed)] == ["auth"]
    assert b"QUIT" in sent(out)

    session = ClientSession(ClientPolicy("c", tls="opportunistic", username="u", password="p"))
    session.feed(b"220 x\r\n")
    out = session.feed(b"250-x\r\n250 AUTH PLAIN\r\n")
    assert b"AUTH" not in sent(out)
    assert [o.reply.enhanced for o in out if isinstance(o, Failed)] == ["4.7.0"]


def test_greeting_refused() -> None:
    session = ClientSession(ClientPolicy("c", tls="none"))
    out = session.feed(b"554 5.7.1 go away\r\n")
    assert [str(o.reply) for o in out if isinstance(o, Failed)] == ["554 5.7.1 go away"]
    assert sent(out) == b"QUIT\r\n" and session.closed


@pytest.mark.parametrize(
    "garbage",
    [b"HTTP/1.1 400 Bad Request\r\n", b"25\r\n", b"250x\r\n", b"x" * 5000],
)
def test_malformed_replies_fail_the_transaction_temporarily(garbage: bytes) -> None:
    session = ready()
    session.send(message("b@example.net"))
    out = session.feed(garbage)
    result = finished(out)
    assert result.recipients[0].reply.temporary and result.recipients[0].reply.local
    assert session.closed


def test_connection_lost_after_dot_is_temporary() -> None:
    session = ready()
    session.send(message())
    session.feed(b"250 ok\r\n")
    session.feed(b"250 ok\r\n")
    session.feed(b"354 go\r\n")
    assert session.timeout() == session.policy.data_end_timeout
    result = finished(session.connection_lost())
    assert result.recipients[0].reply.code == 451 and session.closed


def test_421_mid_transaction_keeps_earlier_refusals() -> None:
    session = ready()
    session.send(message("b@example.net", "c@example.net"))
    session.feed(b"250 ok\r\n")
    session.feed(b"550 5.1.1 unknown\r\n")
    result = finished(session.feed(b"421 4.3.2 shutting down\r\n"))
    assert [r.reply.code for r in result.recipients] == [550, 421]


def test_timeout_and_quit() -> None:
    session = ready()
    out = session.quit()
    assert sent(out) == b"QUIT\r\n"
    assert isinstance(session.feed(b"221 bye\r\n")[-1], Close)
    session = ClientSession(ClientPolicy("c", tls="none"))
    assert session.timeout() == 300.0
    assert [o.reply.enhanced for o in session.timed_out() if isinstance(o, Failed)] == ["4.4.2"]


def test_replies_split_at_every_byte_give_the_same_result() -> None:
    ehlo = EHLO_FULL.replace(b"250-STARTTLS\r\n", b"").replace(b"250-AUTH PLAIN LOGIN\r\n", b"")
    pre = b"220 mx\r\n" + ehlo
    post = b"250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n250-2.0.0 queued\r\n250 2.0.0 as X\r\n"
    for split in range(1, len(post)):
        session = ClientSession(ClientPolicy("c", tls="none"))
        assert any(isinstance(o, Ready) for o in session.feed(pre))
        session.send(message("b@example.net", "c@example.net"))
        out = session.feed(post[:split]) + session.feed(post[split:])
        result = finished(out)
        assert result.delivered == ("b@example.net",)
        assert str(result.recipients[1].reply) == "550 5.1.1 no"
        assert result.data is not None and result.data.lines == ("2.0.0 queued", "2.0.0 as X")


def test_policy_validation() -> None:
    with pytest.raises(ConfigError):
        ClientPolicy("bad name")
    with pytest.raises(ConfigError):
        ClientPolicy("c", username="u")


def test_reset_before_reusing_a_kept_connection() -> None:
    session = ready()
    session.send(message())
    for reply in (b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n"):
        session.feed(reply)
    finished(session.feed(b"250 2.0.0 queued\r\n"))
    assert sent(session.reset()) == b"RSET\r\n"
    assert session.timeout() == session.policy.command_timeout
    assert any(isinstance(o, Ready) for o in session.feed(b"250 2.0.0 Ok\r\n"))
    # The RSET just sent makes the next transaction's own RSET unnecessary.
    assert sent(session.send(message())) == b"MAIL FROM:<a@example.com>\r\n"


def test_reuse_pipelines_the_rset_with_the_next_transaction() -> None:
    session = ready(ehlo=EHLO_FULL)
    assert session.reuse() is True
    out = session.send(message())
    # One write: RSET, MAIL, RCPT and DATA (RFC 2920 allows RSET in the group).
    assert [o.data for o in out if isinstance(o, Send)] == [
        b"RSET\r\nMAIL FROM:<a@example.com> SIZE=21\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
    ]
    session.feed(b"250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n")
    result = finished(session.feed(b"250 2.0.0 queued\r\n"))
    assert result.delivered == ("b@example.net",)


def test_reuse_refused_rset_fails_the_transaction_before_mail() -> None:
    session = ready(ehlo=EHLO_FULL)
    session.reuse()
    session.send(message())
    result = finished(session.feed(b"421 4.4.2 idle too long\r\n"))
    assert result.mail is None and session.closed  # nothing was accepted
    assert [r.reply.code for r in result.recipients] == [421]


def test_reuse_needs_pipelining() -> None:
    session = ready()  # no PIPELINING: reset() first
    assert session.reuse() is False
    assert sent(session.send(message())) == b"MAIL FROM:<a@example.com>\r\n"


def test_reset_after_a_failed_transaction_leaves_nothing_open() -> None:
    session = ready()
    session.send(message())
    finished(session.feed(b"451 4.7.1 later\r\n"))
    session.reset()
    session.feed(b"250 Ok\r\n")
    assert sent(session.send(message())).startswith(b"MAIL FROM:")


@pytest.mark.parametrize(
    ("reply", "quits"), [(b"421 4.4.2 idle too long\r\n", False), (b"500 5.5.1 no\r\n", True)]
)
def test_reset_refused_fails_and_closes(reply: bytes, quits: bool) -> None:
    session = ready()
    session.reset()
    out = session.feed(reply)
    failures = [o for o in out if isinstance(o, Failed)]
    assert [(f.stage, f.reply.code) for f in failures] == [("rset", int(reply[:3]))]
    assert (sent(out) == b"QUIT\r\n") is quits
    assert session.closed and isinstance(out[-1], Close)


def test_reset_connection_lost_fails() -> None:
    session = ready()
    session.reset()
    out = session.connection_lost()
    assert [o.stage for o in out if isinstance(o, Failed)] == ["rset"]
    with pytest.raises(RuntimeError):
        session.reset()
