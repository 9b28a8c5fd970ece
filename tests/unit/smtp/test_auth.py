from __future__ import annotations

import base64

import pytest

from postroom.core.errors import Refusal, RefusalKind
from postroom.smtp.protocol import CheckAuth, Close, Reply

from .support import Client, make_policy


def b64(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw)


def auth_client(**overrides: object) -> Client:
    values: dict[str, object] = {"auth_without_tls": True}
    values.update(overrides)
    return Client(make_policy(**values), ehlo=True)


def test_plain_with_initial_response() -> None:
    client = auth_client()
    outputs = client.feed(b"AUTH PLAIN " + b64("\0bob\0s3cret") + b"\r\n")
    assert outputs == [CheckAuth("PLAIN", "bob", "s3cret")]
    assert client.session.busy
    assert client.session.auth_result("bob") == [Reply(b"235 2.7.0 Authentication successful\r\n")]
    assert client.session.auth_user == "bob"


def test_plain_with_empty_challenge() -> None:
    client = auth_client()
    assert client.feed(b"auth plain\r\n") == [Reply(b"334 \r\n")]
    assert client.feed(b64("bob\0bob\0pw") + b"\r\n") == [CheckAuth("PLAIN", "bob", "pw")]


def test_plain_with_utf8_credentials() -> None:
    client = auth_client()
    client.feed(b"AUTH PLAIN " + b64("\0jöran\0pässwörd") + b"\r\n")
    assert client.outputs == [CheckAuth("PLAIN", "jöran", "pässwörd")]


def test_login_step_by_step() -> None:
    client = auth_client()
    assert client.feed(b"AUTH LOGIN\r\n") == [Reply(b"334 VXNlcm5hbWU6\r\n")]
    assert client.feed(b64("alice") + b"\r\n") == [Reply(b"334 UGFzc3dvcmQ6\r\n")]
    assert client.feed(b64("pw") + b"\r\n") == [CheckAuth("LOGIN", "alice", "pw")]


def test_login_with_initial_username() -> None:
    client = auth_client()
    assert client.feed(b"AUTH LOGIN " + b64("alice") + b"\r\n") == [Reply(b"334 UGFzc3dvcmQ6\r\n")]
    assert client.feed(b64("pw") + b"\r\n") == [CheckAuth("LOGIN", "alice", "pw")]


def test_empty_initial_response_is_an_equals_sign() -> None:
    client = auth_client()
    assert client.feed(b"AUTH LOGIN =\r\n") == [Reply(b"334 UGFzc3dvcmQ6\r\n")]
    assert client.feed(b"=\r\n") == [CheckAuth("LOGIN", "", "")]


def test_bad_credentials_are_535() -> None:
    client = auth_client()
    client.feed(b"AUTH PLAIN " + b64("\0bob\0wrong") + b"\r\n")
    assert client.codes(outputs=client.session.auth_result(None)) == ["535 5.7.8"]
    assert client.session.auth_user is None
    assert client.session.errors == 1
    assert client.session.take_rejections() == ["auth_failed"]


def test_credential_store_failure_is_454() -> None:
    client = auth_client()
    client.feed(b"AUTH PLAIN " + b64("\0bob\0pw") + b"\r\n")
    assert client.codes(outputs=client.session.auth_unavailable()) == ["454 4.7.0"]
    assert client.session.auth_user is None
    assert client.session.errors == 0


def test_a_throttled_client_gets_454_then_421_and_the_close() -> None:
    throttled = Refusal(RefusalKind.AUTH_THROTTLED, "Too many failed attempts; try later")
    client = auth_client()
    client.feed(b"AUTH PLAIN " + b64("\0bob\0pw") + b"\r\n")
    assert client.replies(outputs=client.session.auth_refused(throttled)) == [
        "454 4.7.0 Too many failed attempts; try later"
    ]
    assert client.session.errors == 0 and not client.session.closed
    client.feed(b"AUTH PLAIN " + b64("\0bob\0pw") + b"\r\n")
    outputs = client.session.auth_refused(throttled)
    assert client.replies(outputs=outputs) == [
        "421 4.7.0 mx.test Too many failed authentication attempts, closing connection"
    ]
    assert isinstance(outputs[-1], Close) and client.session.close_reason == "auth_refused"
    assert client.session.take_rejections() == ["auth_refused", "auth_refused"]


def test_other_auth_refusals_are_sent_as_rendered() -> None:
    client = auth_client()
    client.feed(b"AUTH PLAIN " + b64("\0bob\0pw") + b"\r\n")
    refusal = Refusal(RefusalKind.TEMPORARY_FAILURE, "Try again later")
    assert client.replies(outputs=client.session.auth_refused(refusal)) == [
        "451 4.3.0 Try again later"
    ]
    client.feed(b"AUTH PLAIN " + b64("\0bob\0pw") + b"\r\n")
    assert client.codes(outputs=client.session.auth_refused(refusal)) == ["451 4.3.0"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_star_cancels(mechanism: str) -> None:
    client = auth_client()
    client.feed(f"AUTH {mechanism}\r\n".encode())
    assert client.replies(b"*\r\n") == ["501 5.0.0 Authentication cancelled"]
    assert client.codes(b"NOOP\r\n") == ["250 2.0.0"]


def test_star_cancels_at_the_password_prompt() -> None:
    client = auth_client()
    client.feed(b"AUTH LOGIN " + b64("alice") + b"\r\n")
    assert client.codes(b"*\r\n") == ["501 5.0.0"]
    assert client.session.auth_user is None


@pytest.mark.parametrize(
    "line",
    [
        b"AUTH PLAIN not*base64\r\n",
        b"AUTH PLAIN AGJvYgBzZWNyZXQ\r\n",  # missing padding
        b"AUTH LOGIN !!!!\r\n",
    ],
)
def test_bad_base64_is_501_5_5_2(line: bytes) -> None:
    client = auth_client()
    assert client.codes(line) == ["501 5.5.2"]
    assert client.codes(b"NOOP\r\n") == ["250 2.0.0"]


def test_bad_base64_in_a_continuation_is_501() -> None:
    client = auth_client()
    client.feed(b"AUTH LOGIN\r\n")
    assert client.codes(b"%%%\r\n") == ["501 5.5.2"]
    client.feed(b"AUTH LOGIN\r\n")
    client.feed(b64("alice") + b"\r\n")
    assert client.codes(b"%%%\r\n") == ["501 5.5.2"]


@pytest.mark.parametrize("raw", [b"bob\0pw", b"a\0b\0c\0d", b"\0\xff\0pw"])
def test_malformed_plain_is_501(raw: bytes) -> None:
    client = auth_client()
    assert client.codes(b"AUTH PLAIN " + b64(raw) + b"\r\n") == ["501 5.5.2"]


def test_plain_refuses_acting_for_another_identity() -> None:
    client = auth_client()
    assert client.codes(b"AUTH PLAIN " + b64("admin\0bob\0pw") + b"\r\n") == ["535 5.7.8"]


def test_unknown_mechanism_is_504() -> None:
    client = auth_client()
    assert client.codes(b"AUTH CRAM-MD5\r\n") == ["504 5.5.4"]
    client = auth_client(auth_mechanisms=("PLAIN",))
    assert client.codes(b"AUTH LOGIN\r\n") == ["504 5.5.4"]


@pytest.mark.parametrize("line", [b"AUTH\r\n", b"AUTH PLAIN a b\r\n"])
def test_auth_argument_count_is_501(line: bytes) -> None:
    assert auth_client().codes(line) == ["501 5.5.4"]


def test_auth_without_tls_when_not_allowed_is_530() -> None:
    client = Client(make_policy(starttls_available=True), ehlo=True)
    assert client.replies(b"AUTH PLAIN\r\n") == ["530 5.7.0 Must issue a STARTTLS command first"]
    assert Client(make_policy(), tls=True, ehlo=True).feed(b"AUTH PLAIN\r\n") == [
        Reply(b"334 \r\n")
    ]


def test_auth_when_no_mechanisms_is_502() -> None:
    client = auth_client(auth_mechanisms=())
    assert client.codes(b"AUTH PLAIN\r\n") == ["502 5.5.1"]


def test_auth_twice_is_503() -> None:
    client = auth_client()
    client.feed(b"AUTH PLAIN " + b64("\0bob\0pw") + b"\r\n")
    client.session.auth_result("bob")
    assert client.codes(b"AUTH PLAIN " + b64("\0eve\0pw") + b"\r\n") == ["503 5.5.1"]
    assert client.session.auth_user == "bob"


def test_auth_during_a_transaction_is_503() -> None:
    client = auth_client()
    client.start_transaction()
    assert client.codes(b"AUTH PLAIN\r\n") == ["503 5.5.1"]


def test_auth_before_ehlo_is_503() -> None:
    client = Client(make_policy(auth_without_tls=True))
    assert client.codes(b"AUTH PLAIN\r\n") == ["503 5.5.1"]


def test_pipelined_commands_wait_for_the_auth_result() -> None:
    client = auth_client(auth_required=True)
    outputs = client.feed(b"AUTH PLAIN " + b64("\0bob\0pw") + b"\r\nMAIL FROM:<a@example.com>\r\n")
    assert outputs == [CheckAuth("PLAIN", "bob", "pw")]
    assert client.codes(outputs=client.session.auth_result("bob")) == ["235 2.7.0", "250 2.1.0"]


def test_pipelined_commands_after_failed_auth_are_refused() -> None:
    client = auth_client(auth_required=True)
    client.feed(b"AUTH PLAIN " + b64("\0bob\0pw") + b"\r\nMAIL FROM:<a@example.com>\r\n")
    assert client.codes(outputs=client.session.auth_result(None)) == ["535 5.7.8", "530 5.7.0"]


def test_password_is_not_in_the_repr() -> None:
    check = CheckAuth("PLAIN", "bob", "hunter2")
    assert "hunter2" not in repr(check)


def test_long_sasl_responses_are_allowed() -> None:
    client = auth_client()
    password = "p" * 3000
    client.feed(b"AUTH PLAIN " + b64("\0bob\0" + password) + b"\r\n")
    assert client.outputs == [CheckAuth("PLAIN", "bob", password)]
