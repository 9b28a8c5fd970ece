"""Property-based fuzzing of the sans-IO SMTP session (hypothesis).

Random command sequences, random message bytes and random splits of the input: the session
never raises, every reply is well formed, a DATA message ends only at <CRLF>.<CRLF> (a BDAT
message only with its LAST chunk), and the same input split anywhere gives the same replies
and messages. The settings profile (tests/conftest.py) keeps this short in `make test`;
bench/fuzz_long.py runs the same properties for as long as you like.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from postroom.smtp.protocol import SessionPolicy

from .fuzz_support import (
    Driver,
    HarnessError,
    bdat_chunks,
    check_framing,
    check_reply,
    command,
    cut_points,
    data_body,
    make_policy,
    policies,
    run,
    same,
    session_input,
    split_invariance,
)

TRANSACTION = b"EHLO client.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"


@given(st.data(), session_input(), policies())
def test_any_input_split_anywhere_gives_the_same_well_formed_replies(
    data: st.DataObject, wire: bytes, policy: SessionPolicy
) -> None:
    policy = make_policy(
        bare_line_endings=policy.bare_line_endings,
        max_text_line=policy.max_text_line,
        max_message_size=policy.max_message_size,
        auth_required=policy.auth_required,
        starttls_available=False,
    )
    split_invariance(wire, data.draw(cut_points(wire)), policy)


@given(st.data(), session_input(), policies(), st.booleans())
def test_starttls_and_closing_sessions_never_raise(
    data: st.DataObject, wire: bytes, policy: SessionPolicy, tls: bool
) -> None:
    """With STARTTLS offered and required, and after a QUIT or 421: still no exception, every
    reply well formed, nothing after Close (the driver checks as it goes)."""
    run(wire, data.draw(cut_points(wire)), policy, tls=tls)


@given(st.lists(data_body(), min_size=1, max_size=3), policies())
# Found by the fuzzer: a message exactly at the size limit was refused when fed octet by
# octet; an oversized one with a NUL got 554 whole but 552 in pieces (test_data_split.py).
@example(bodies=[b"12345678\r\n.\r\n"], policy=make_policy(max_message_size=10))
@example(bodies=[b"x" * 40 + b"\0\r\n.\r\n"], policy=make_policy(max_message_size=20))
def test_data_ends_only_at_crlf_dot_crlf(bodies: list[bytes], policy: SessionPolicy) -> None:
    """Fed octet by octet, a DATA message is handed over exactly at the first <CRLF>.<CRLF>
    with the reference unstuffing as its content, and the outcome equals feeding it whole."""
    wire = b"EHLO client.test\r\n" + b"".join(
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" + body
        for body in bodies
    )
    policy = make_policy(
        bare_line_endings=policy.bare_line_endings,
        max_message_size=policy.max_message_size,
        max_text_line=policy.max_text_line,
        starttls_available=False,
    )
    same(run(wire, [], policy), check_framing(wire, policy), "octet by octet")


@given(st.lists(st.binary(max_size=300), max_size=4), st.booleans(), st.data())
def test_a_correct_client_gets_its_exact_message(
    messages: list[bytes], binary: bool, data: st.DataObject
) -> None:
    """Dot-stuffed by the client, unstuffed by the session: byte for byte what was meant
    (DATA), and BDAT chunks concatenated; split anywhere."""
    policy = make_policy(
        max_text_line=0, max_message_size=10_000, bare_line_endings="accept", max_errors=0
    )
    wire = bytearray(b"EHLO client.test\r\n")
    expected: list[bytes] = []
    for message in messages:
        if binary:
            wire += b"MAIL FROM:<a@example.com> BODY=BINARYMIME\r\nRCPT TO:<b@example.org>\r\n"
            cut = len(message) // 2
            wire += f"BDAT {cut}\r\n".encode() + message[:cut]
            wire += f"BDAT {len(message) - cut} LAST\r\n".encode() + message[cut:]
            expected.append(message)
            continue
        text = message.replace(b"\0", b"").replace(b"\r", b"").replace(b"\n", b"\r\n")
        if text and not text.endswith(b"\r\n"):
            text += b"\r\n"
        if b"REJECT" in text or b"DEFER" in text:
            continue
        stuffed = b"\r\n" + text
        stuffed = stuffed.replace(b"\r\n.", b"\r\n..")[2:]
        wire += b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
        wire += stuffed + b".\r\n"
        expected.append(text)
    wire += b"QUIT\r\n"
    t = run(bytes(wire), data.draw(cut_points(bytes(wire))), policy)
    assert [m.data for m in t.messages] == expected
    assert t.closed and t.close_reason == "quit"
    assert bytes(t.replies).count(b"\r\n250 2.0.0 Ok: queued as") == len(expected)


@given(bdat_chunks(), st.data())
def test_bdat_messages_end_only_with_the_last_chunk(wire: bytes, data: st.DataObject) -> None:
    policy = make_policy(max_message_size=4096)
    t = split_invariance(TRANSACTION + wire, data.draw(cut_points(TRANSACTION + wire)), policy)
    assert len(t.messages) <= 1
    if t.messages:
        assert b" LAST\r\n" in wire.upper() or b" LAST\r\n" in wire


@given(st.lists(command(), max_size=6))
# Found by the fuzzer: replies quoting long arguments were longer than 512 octets.
@example(commands=[b"HELP " + b"y" * 500 + b"\r\n", b"EHLO " + b"h" * 500 + b"\r\n"])
@example(commands=[b"MAIL FROM:<a@b.c> " + b"ENVID" * 130 + b"=\r\n"])
def test_held_input_is_replayed_in_order_after_each_answer(commands: list[bytes]) -> None:
    """Everything pipelined behind a message or AUTH is held and then processed: feeding it
    all at once equals feeding command by command."""
    wire = b"".join(commands)
    policy = make_policy(starttls_available=False)
    pieces = [len(b"".join(commands[: i + 1])) for i in range(len(commands))]
    split_invariance(TRANSACTION + wire, [len(TRANSACTION) + p for p in pieces], policy)


def test_the_driver_rejects_malformed_replies() -> None:
    """The checker itself can fail (a fuzz test that cannot fail proves nothing)."""
    for bad in (
        b"250 ok",
        b"25 2.0.0 ok\r\n",
        b"250 ok\r\n",
        b"550 2.0.0 wrong class\r\n",
        b"250-2.0.0 a\r\n251 2.0.0 b\r\n",
        b"250-2.0.0 a\r\n",
        b"250 2.0.0 " + b"x" * 600 + b"\r\n",
        b"250 2.0.0 a\rb\r\n",
    ):
        try:
            check_reply(bad)
        except HarnessError:
            continue
        raise AssertionError(f"accepted {bad!r}")
    check_reply(b"250-mx.fuzz.test Hello x\r\n250 PIPELINING\r\n")
    check_reply(b"354 End data with <CR><LF>.<CR><LF>\r\n")


def test_the_driver_refuses_outputs_it_does_not_know() -> None:
    class Surprise:
        pass

    driver = Driver(make_policy())
    try:
        driver.answer(Surprise())
    except HarnessError as exc:
        assert "teach Driver.answer" in str(exc)
    else:
        raise AssertionError("unknown output accepted")
